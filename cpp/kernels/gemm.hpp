#pragma once
#include <cstddef>
#include <iterator>  // std::size

#include "runtime/cpu.hpp"  // Isa, kernel_isa, set_max_isa: which kernels run

namespace fastprop {

enum class Trans { N, T };

// What happens to C after its sums, while it is still in registers or in cache.
// First, by the micro-kernel on each tile before it is stored, each element's sum (plus C's
// old value, when accumulating) gets + bias[j] on column j, then × scale[i * ld_scale + j]
// (each a separate rounding, as two passes over C would give), and with check_finite gemm
// returns whether every element of C came out finite.
// Then, on finished blocks of C, by the thread that computed each block while it is still in
// cache: apply(context, C + i0 * ldc + j0, ldc, i0, m, j0, n) for rows [i0, i0 + m) and
// columns [j0, j0 + n) of C, once per element. Blocks run on any thread in any order, so apply
// may write only to its block (and to places that match it), and must not throw.
template <class T> struct Epilogue {
    const T* bias = nullptr;   // (N) or null
    const T* scale = nullptr;  // (M, N) with leading dimension ld_scale, or null
    std::size_t ld_scale = 0;
    bool check_finite = false;
    void (*apply)(const void* context, T* C_block, std::size_t ldc, std::size_t i0,
                  std::size_t m, std::size_t j0, std::size_t n) = nullptr;
    const void* context = nullptr;
};

// C (M, N) = op(A) op(B) (+ C when accumulate), row-major with leading dimensions, then
// epilogue (when given) on every block of C.
// op(A) is (M, K): A is (M, K) with lda>=K when ta == N, (K, M) with lda>=M when ta == T.
// op(B) is (K, N): B is (K, N) with ldb>=N when tb == N, (N, K) with ldb>=K when tb == T.
// K == 0 writes zeros (or leaves C when accumulate). M or N == 0 does nothing.
// Each C element is summed over k in an order fixed by (M, N, K) and the code path (AVX2 or
// portable) alone, so any thread count gives the same bits. With the SIMD kernels (AVX2 and
// AVX-512 alike) it is one FMA chain over k ascending from zero per k slice (kc a function of
// K alone; one slice for K <= 256): C's old value (when accumulating) + the first chain, +
// each later chain in turn, then + bias, × scale; for small products (the small path) and
// large ones (the blocked path) alike. The portable kernels multiply and add separately.
// Returns false when epilogue.check_finite and some element of C is inf or NaN, else true.
template <class T>
bool gemm(Trans ta, Trans tb, std::size_t M, std::size_t N, std::size_t K,
          const T* A, std::size_t lda, const T* B, std::size_t ldb,
          bool accumulate, T* C, std::size_t ldc, const Epilogue<T>& epilogue = {});

// The slice of k that gemm sums as one FMA chain for a product with inner dimension K, with
// the AVX2 and AVX-512 kernels (even slices of at most KC: no short last slice); each element
// is then the slices' chains added in order. kernels/lanes.hpp repeats it.
template <class T> std::size_t gemm_kc(std::size_t K);

namespace gemm_detail {

// The pieces of the blocked path that are compiled once per instruction set: gemm.cpp owns
// the blocking, the threads and the buffers, and calls these through a table picked at run
// time. Packed B (kc, nc) is stored as ceil(nc / NR) panels of (kc, NR), columns past nc zero.
// The register part of an Epilogue for one block of C: bias at the block's first column,
// scale at its first element.
template <class T> struct TileEnd {
    const T* bias;
    const T* scale;
    std::size_t ld_scale;
    bool check_finite;
};

// The parts of a tile end, as bits: Kernels::small has one copy of the small path for each
// of small_kinds, in that order: none, bias alone, scale alone, the finite check alone (the
// ends of a dense layer's products), and small_any for the others, tested element by element.
inline constexpr unsigned small_bias = 1, small_scale = 2, small_check = 4, small_any = 8;
inline constexpr unsigned small_kinds[5] = {0, small_bias, small_scale, small_check, small_any};

template <class T>
struct Kernels {
    std::size_t MR, NR;  // register tile of the micro-kernel
    std::size_t MC, KC, NC;  // cache blocks: A (MC, KC) stays in L2, packed B (KC, NC) in L3
    static constexpr std::size_t pack_a_slack = 8;
    // Bp <- op(B)[k0 : k0 + kc, j0 : j0 + nc] in the panel layout above.
    void (*pack_b)(T* Bp, Trans tb, const T* B, std::size_t ldb, std::size_t k0,
                   std::size_t kc, std::size_t j0, std::size_t nc);
    // Ap <- op(A)[i0 : i0 + mc, k0 : k0 + kc] as ceil(mc / MR) panels of (kc, MR): element
    // (r, k) of panel p at Ap[p * MR * kc + k * MR + r], rows past mc left unset; may write
    // up to pack_a_slack elements past the last panel.
    void (*pack_a)(T* Ap, Trans ta, const T* A, std::size_t lda, std::size_t i0,
                   std::size_t mc, std::size_t k0, std::size_t kc);
    // C (mc, nc) = (or +=, when add) A (mc, kc) B (kc, nc). A is read where it lies: element
    // (r, k) of the p-th MR-row panel at A[p * ps_a + r * rs_a + k * cs_a], so A, Aᵀ and
    // packed A all work (a broadcast load takes any stride). B likewise: row k of its p-th
    // NR-column panel at B[p * ps_b + k * rs_b], which is packed B with (ps_b, rs_b) =
    // (NR * kc, NR) and b_padded (its last panel zero-filled to NR columns), or row-stored B
    // read in place with (NR, ldb) and not b_padded (columns past nc are then never read).
    // With `end`, each tile gets its bias and scale before the store; returns false when
    // end->check_finite and an element of C is inf or NaN.
    bool (*macro_kernel)(std::size_t mc, std::size_t nc, std::size_t kc, const T* A,
                         std::size_t ps_a, std::size_t rs_a, std::size_t cs_a, const T* B,
                         std::size_t ps_b, std::size_t rs_b, bool b_padded, T* C,
                         std::size_t ldc, bool add, const TileEnd<T>* end);
    // The small path, for products too small to pack, K <= KC: C (M, N) = (or +=, when add)
    // op(A) B, op(A)[i][k] at A[i * rs_a + k * cs_a], B (k, j) at
    // B[j / NR * ps_b + k * rs_b + j % NR] (row-stored B in place: ps_b = NR, rs_b = ldb;
    // B packed by pack_b: NR * K, NR), the tile end of the whole of C in registers; each
    // element the FMA chain of the blocked path, so the same bits. Null for the portable
    // kernels (gemm.cpp's direct loop instead). One copy per kind of tile end,
    // small[small_kind(end)], each without the tests for the parts of an end it cannot have.
    using Small = bool (*)(std::size_t M, std::size_t N, std::size_t K, const T* A,
                           std::size_t rs_a, std::size_t cs_a, const T* B, std::size_t ps_b,
                           std::size_t rs_b, T* C, std::size_t ldc, bool add,
                           const TileEnd<T>* end);
    Small small[std::size(small_kinds)];
};

// Which of Kernels::small serves a tile end: the index of its parts in small_kinds.
template <class T> inline std::size_t small_kind(const TileEnd<T>* end) {
    if (end == nullptr) return 0;
    const unsigned parts = (end->bias != nullptr ? small_bias : 0u) |
                           (end->scale != nullptr ? small_scale : 0u) |
                           (end->check_finite ? small_check : 0u);
    constexpr std::size_t any = std::size(small_kinds) - 1;
    for (std::size_t kind = 0; kind < any; ++kind)
        if (small_kinds[kind] == parts) return kind;
    return any;
}

// gemm takes the small path (Kernels::small, one block, no threads) for products of at most
// small_max_work multiply-adds with 0 < K <= KC, when the kernels have one; a column C (M, 1)
// of small_column_min_rows rows or more (with a contiguous scale, if any) it takes as a row.
constexpr std::size_t small_max_work = 4096;
constexpr std::size_t small_column_min_rows = 8;
// There, Bᵀ of fewer than small_pack_b_min entries is copied as rows of op(B) (K, N) by a plain
// loop, and packed into NR-column panels from small_pack_b_min entries on.
constexpr std::size_t small_pack_b_min = 64;

// That plain copy: op(B) = Bᵀ (K, N) as rows, Bt[k * N + j] = B[j * ldb + k]. Also dense.cpp's
// copy of W_iᵀ for the forward products it hands to the small path directly.
template <class T>
inline void copy_transposed(T* Bt, const T* B, std::size_t ldb, std::size_t K, std::size_t N) {
    for (std::size_t j = 0; j < N; ++j)
        for (std::size_t k = 0; k < K; ++k) Bt[k * N + j] = B[j * ldb + k];
}

// The kernel set gemm uses now (kernel_isa()) when it has a small path, else null (portable
// kernels). For callers that make many tiny products with B read where it lies (the backward
// products of small dense layers, kernels/dense.cpp): they call `small` with the arguments
// gemm's small path would pass, skipping its dispatch, and so get its bits.
template <class T> const Kernels<T>* small_path_kernels();

// Defined in gemm_avx2.cpp, built with -mavx2 -mfma, and gemm_avx512.cpp, built with
// -mavx512f as well; call only where kernel_isa() (cpu.hpp) allows them. All three kernel
// sets sum each C element in the same order for the same kc; AVX2 and AVX-512 (both with
// FMA) give the same bits.
const Kernels<float>& avx2_kernels_f32();
const Kernels<double>& avx2_kernels_f64();
const Kernels<float>& avx512_kernels_f32();
const Kernels<double>& avx512_kernels_f64();

}  // namespace gemm_detail
}  // namespace fastprop
