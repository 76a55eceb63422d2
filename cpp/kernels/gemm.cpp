// Blocked gemm after Goto / BLIS: for each (NC) column block of C and (KC) slice of k, pack
// op(B) (KC, NC) once into panels of NR columns (or, for small row-stored B and few rows of C,
// read B's rows in place), then sweep (MC) row blocks of A, which the micro-kernel reads in
// place (a broadcast load takes any stride) or from MR-row panels when that repays the copy.
// Threads split C into disjoint row or column ranges; k is never split, so every C element
// is summed in the same order whatever the thread count.
#include "kernels/gemm.hpp"

#include "runtime/cpu.hpp"

#include <atomic>
#include <cstdint>
#include <new>

#include "runtime/threads.hpp"

namespace fastprop {
namespace {

using gemm_detail::Kernels;
using gemm_detail::TileEnd;
using std::size_t;

size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

// The register part of `epilogue` for the block of C at (i, j): null when there is none.
template <class T>
const TileEnd<T>* tile_end_at(const Epilogue<T>& epilogue, size_t i, size_t j, TileEnd<T>& out) {
    if (epilogue.bias == nullptr && epilogue.scale == nullptr && !epilogue.check_finite)
        return nullptr;
    out = {epilogue.bias != nullptr ? epilogue.bias + j : nullptr,
           epilogue.scale != nullptr ? epilogue.scale + i * epilogue.ld_scale + j : nullptr,
           epilogue.ld_scale, epilogue.check_finite};
    return &out;
}

// The element at (i, j) of a block, its sum and old value taken, through the block's `end`
// (bias, then scale, each one rounding as in the SIMD kernels); `finite` cleared when it is
// inf or NaN.
template <class T>
T end_element(T v, const TileEnd<T>* end, size_t i, size_t j, bool& finite) {
    if (end == nullptr) return v;
    if (end->bias != nullptr) v = v + end->bias[j];
    if (end->scale != nullptr) v = v * end->scale[i * end->ld_scale + j];
    if (end->check_finite && !(v - v == T(0))) finite = false;
    return v;
}

// ---------------------------------------------------------------------------------------------
// Portable kernels: the same layout and loop nest as gemm_avx2.cpp in plain C++ (SSE2 at most
// after auto-vectorisation), for CPUs without AVX2 + FMA.

constexpr size_t portable_MR = 4;
template <class T> constexpr size_t portable_NR = 16 / sizeof(T) * 2;  // two SSE registers

// B's columns [0, nb) are read: NR when B is packed (zero-padded), nr when it is read in place.
// The tile sits at row i0, column j0 of the block that `end` belongs to.
template <class T, size_t mr>
bool portable_micro_kernel(size_t kc, const T* A, size_t rs_a, size_t cs_a, const T* B,
                           size_t rs_b, size_t nb, T* C, size_t ldc, size_t nr, bool add,
                           const TileEnd<T>* end, size_t i0, size_t j0) {
    constexpr size_t NR = portable_NR<T>;
    T c[mr][NR] = {};
    for (size_t k = 0; k < kc; ++k) {
        const T* b = B + k * rs_b;
        for (size_t r = 0; r < mr; ++r) {
            const T a_rk = A[r * rs_a + k * cs_a];
            for (size_t j = 0; j < nb; ++j) c[r][j] += a_rk * b[j];
        }
    }
    bool finite = true;
    for (size_t r = 0; r < mr; ++r)
        for (size_t j = 0; j < nr; ++j)
            C[r * ldc + j] = end_element(add ? C[r * ldc + j] + c[r][j] : c[r][j], end, i0 + r,
                                         j0 + j, finite);
    return finite;
}

template <class T>
bool portable_macro_kernel(size_t mc, size_t nc, size_t kc, const T* A, size_t ps_a,
                           size_t rs_a, size_t cs_a, const T* B, size_t ps_b, size_t rs_b,
                           bool b_padded, T* C, size_t ldc, bool add, const TileEnd<T>* end) {
    constexpr size_t NR = portable_NR<T>;
    constexpr size_t MR = portable_MR;
    bool finite = true;
    for (size_t jr = 0, p = 0; jr < nc; jr += NR, ++p) {
        const size_t nr = min_size(NR, nc - jr);
        const size_t nb = b_padded ? NR : nr;
        const T* b = B + p * ps_b;
        T* c = C + jr;
        const T* a = A;
        size_t ir = 0;
        for (; ir + MR <= mc; ir += MR, a += ps_a)
            finite &= portable_micro_kernel<T, MR>(kc, a, rs_a, cs_a, b, rs_b, nb, c + ir * ldc,
                                                   ldc, nr, add, end, ir, jr);
        c += ir * ldc;
        switch (mc - ir) {
            case 3: finite &= portable_micro_kernel<T, 3>(kc, a, rs_a, cs_a, b, rs_b, nb, c, ldc, nr, add, end, ir, jr); break;
            case 2: finite &= portable_micro_kernel<T, 2>(kc, a, rs_a, cs_a, b, rs_b, nb, c, ldc, nr, add, end, ir, jr); break;
            case 1: finite &= portable_micro_kernel<T, 1>(kc, a, rs_a, cs_a, b, rs_b, nb, c, ldc, nr, add, end, ir, jr); break;
            default: break;
        }
    }
    return finite;
}

template <class T>
void portable_pack_b(T* Bp, Trans tb, const T* B, size_t ldb, size_t k0, size_t kc, size_t j0,
                     size_t nc) {
    constexpr size_t NR = portable_NR<T>;
    for (size_t jr = 0; jr < nc; jr += NR) {
        const size_t nr = min_size(NR, nc - jr);
        T* dst = Bp + jr * kc;
        for (size_t k = 0; k < kc; ++k) {
            for (size_t j = 0; j < nr; ++j)
                dst[k * NR + j] = tb == Trans::N ? B[(k0 + k) * ldb + j0 + jr + j]
                                                 : B[(j0 + jr + j) * ldb + k0 + k];
            for (size_t j = nr; j < NR; ++j) dst[k * NR + j] = T(0);
        }
    }
}

template <class T>
void portable_pack_a(T* Ap, Trans ta, const T* A, size_t lda, size_t i0, size_t mc, size_t k0,
                     size_t kc) {
    constexpr size_t MR = portable_MR;
    for (size_t ir = 0; ir < mc; ir += MR, Ap += MR * kc) {
        const size_t mr = min_size(MR, mc - ir);
        for (size_t k = 0; k < kc; ++k)
            for (size_t r = 0; r < mr; ++r)
                Ap[k * MR + r] = ta == Trans::T ? A[(k0 + k) * lda + i0 + ir + r]
                                                : A[(i0 + ir + r) * lda + k0 + k];
    }
}

template <class T>
const Kernels<T>& portable_kernels() {
    static const Kernels<T> kernels{portable_MR, portable_NR<T>, 64, 256, 1024,
                                    &portable_pack_b<T>, &portable_pack_a<T>,
                                    &portable_macro_kernel<T>, {}};
    return kernels;
}

// ---------------------------------------------------------------------------------------------
// Run-time choice of kernels

#if defined(FASTPROP_AVX2)  // gemm_avx2.cpp and gemm_avx512.cpp are part of the build
template <class T> struct IsaKernels;
template <> struct IsaKernels<float> {
    static const Kernels<float>& avx2() { return gemm_detail::avx2_kernels_f32(); }
    static const Kernels<float>& avx512() { return gemm_detail::avx512_kernels_f32(); }
};
template <> struct IsaKernels<double> {
    static const Kernels<double>& avx2() { return gemm_detail::avx2_kernels_f64(); }
    static const Kernels<double>& avx512() { return gemm_detail::avx512_kernels_f64(); }
};
#endif

template <class T>
const Kernels<T>& kernels() {
    switch (kernel_isa()) {
#if defined(FASTPROP_AVX2)
        case Isa::avx512: return IsaKernels<T>::avx512();
        case Isa::avx2: return IsaKernels<T>::avx2();
#endif
        default: break;
    }
    return portable_kernels<T>();
}

// ---------------------------------------------------------------------------------------------
// Packing buffer: one per thread (user threads and pool workers alike), grown to the largest
// block seen and then reused, so steady-state calls allocate nothing.

class PackBuffer {
public:
    PackBuffer() = default;
    PackBuffer(const PackBuffer&) = delete;
    PackBuffer& operator=(const PackBuffer&) = delete;
    ~PackBuffer() { release(); }

    void* get(size_t bytes) {
        if (bytes > capacity_) {
            release();
            size_t grown = 4096;  // powers of two: a handful of growths over a process
            while (grown < bytes) grown *= 2;
            data_ = ::operator new(grown, alignment);
            capacity_ = grown;
        }
        return data_;
    }

private:
    static constexpr std::align_val_t alignment{64};  // aligned ymm loads of the panels
    void release() {
        if (data_ != nullptr) ::operator delete(data_, alignment);
        data_ = nullptr;
        capacity_ = 0;
    }
    void* data_ = nullptr;
    size_t capacity_ = 0;
};

thread_local PackBuffer t_pack_buffer;

// ---------------------------------------------------------------------------------------------
// Direct path for tiny products, where packing and blocking cost more than the arithmetic:
// C[i][j] = Σ_k op(A)[i][k] op(B)[k][j], k ascending from zero, then + C when accumulating.

template <class T>
void gemm_direct(Trans ta, Trans tb, size_t M, size_t N, size_t K, const T* A, size_t lda,
                 const T* B, size_t ldb, bool accumulate, T* C, size_t ldc) {
    const size_t rs_a = ta == Trans::N ? lda : 1, cs_a = ta == Trans::N ? 1 : lda;
    const size_t rs_b = tb == Trans::N ? ldb : 1, cs_b = tb == Trans::N ? 1 : ldb;
    for (size_t i = 0; i < M; ++i) {
        const T* a = A + i * rs_a;
        T* c = C + i * ldc;
        for (size_t j = 0; j < N; ++j) {
            const T* b = B + j * cs_b;
            T sum = T(0);
            for (size_t k = 0; k < K; ++k) sum += a[k * cs_a] * b[k * rs_b];
            c[j] = accumulate ? c[j] + sum : sum;
        }
    }
}

// Below this many multiply-adds the direct loop (portable kernels) or the small path (SIMD
// kernels) wins over the blocked path (measured, bench_gemm.cpp); gemm.hpp holds the bound.
constexpr size_t direct_max_work = gemm_detail::small_max_work;

// With the SIMD kernels, the same small products (K within one k slice) go to the kernel
// set's small path (gemm_small below). Measured with benchmarks/small_steps.py: Bᵀ packed by
// register transposes from 64 entries on, a plain copy below; one-column products taken as a
// row from 8 rows on (benchmarks/README.md, "Second round").
using gemm_detail::small_pack_b_min;  // in gemm.hpp, with small_column_min_rows
using gemm_detail::small_column_min_rows;

// A column C (M, 1) stored contiguously (an output layer of one unit, z_n = a w_iᵀ), with any
// scale contiguous too, taken as its transpose: the row (1, M) = op(B)ᵀ op(A)ᵀ, so that a
// vector spans M rows of C rather than one lane of one row. Each element is the same FMA
// chain (a·b = b·a exactly), + C, + the bias (one value, repeated along the row), × scale:
// the same bits.
template <class T>
bool gemm_small_column(const Kernels<T>& kern, Trans ta, Trans tb, size_t M, size_t K,
                       const T* A, size_t lda, const T* B, size_t ldb, bool accumulate, T* C,
                       const Epilogue<T>& epilogue) {
    const size_t panels = ceil_div(M, kern.NR) * kern.NR * K;
    T* buffer = static_cast<T*>(t_pack_buffer.get((panels + M) * sizeof(T)));
    const T* rows = A;  // op(A)ᵀ (K, M): row k holds op(A)[i][k] for every i
    size_t ps = kern.NR, rs = lda;
    if (ta == Trans::N) {  // op(A)[i][k] = A[i * lda + k]: transposed into panels
        kern.pack_b(buffer, Trans::T, A, lda, 0, K, 0, M);
        rows = buffer;
        ps = kern.NR * K;
        rs = kern.NR;
    }
    TileEnd<T> row_end{nullptr, epilogue.scale, 1, epilogue.check_finite};
    if (epilogue.bias != nullptr) {
        T* bias_row = buffer + panels;
        for (size_t i = 0; i < M; ++i) bias_row[i] = epilogue.bias[0];
        row_end.bias = bias_row;
    }
    const bool any_end = epilogue.bias != nullptr || epilogue.scale != nullptr ||
                         epilogue.check_finite;
    // op(B)ᵀ (1, K): op(B)[k][0] = B[k] (Bᵀ stored) or B[k * ldb]
    const TileEnd<T>* end = any_end ? &row_end : nullptr;
    const bool finite = kern.small[gemm_detail::small_kind(end)](
        1, M, K, B, 0, tb == Trans::T ? 1 : ldb, rows, ps, rs, C, M, accumulate, end);
    if (epilogue.apply) epilogue.apply(epilogue.context, C, 1, 0, M, 0, 1);
    return finite;
}

// The small path: the kernel set's `small` on A and row-stored B in place; Bᵀ is copied
// first into the thread's buffer, as (K, N) rows by a plain loop when small, as pack_b's
// panels from small_pack_b_min entries on. None of the blocked path's job, split or thread
// checks.
template <class T>
bool gemm_small(const Kernels<T>& kern, Trans ta, Trans tb, size_t M, size_t N, size_t K,
                const T* A, size_t lda, const T* B, size_t ldb, bool accumulate, T* C,
                size_t ldc, const Epilogue<T>& epilogue) {
    if (N == 1 && ldc == 1 && M >= small_column_min_rows &&
        (epilogue.scale == nullptr || epilogue.ld_scale == 1))
        return gemm_small_column(kern, ta, tb, M, K, A, lda, B, ldb, accumulate, C, epilogue);
    const size_t rs_a = ta == Trans::N ? lda : 1, cs_a = ta == Trans::N ? 1 : lda;
    const T* b = B;
    size_t ps_b = kern.NR, rs_b = ldb;
    if (tb == Trans::T && N == 1) {  // op(B)[k][0] = B[k]: B's row is op(B)'s column, in place
        rs_b = 1;
    } else if (tb == Trans::T && K * N >= small_pack_b_min) {
        T* Bp = static_cast<T*>(t_pack_buffer.get(ceil_div(N, kern.NR) * kern.NR * K * sizeof(T)));
        kern.pack_b(Bp, tb, B, ldb, 0, K, 0, N);
        b = Bp;
        ps_b = kern.NR * K;
        rs_b = kern.NR;
    } else if (tb == Trans::T) {  // op(B)[k][j] = B[j * ldb + k]
        T* Bt = static_cast<T*>(t_pack_buffer.get(K * N * sizeof(T)));
        gemm_detail::copy_transposed(Bt, B, ldb, K, N);
        b = Bt;
        rs_b = N;
    }
    TileEnd<T> whole;
    const TileEnd<T>* end = tile_end_at(epilogue, 0, 0, whole);
    const bool finite = kern.small[gemm_detail::small_kind(end)](M, N, K, A, rs_a, cs_a, b, ps_b,
                                                                 rs_b, C, ldc, accumulate, end);
    if (epilogue.apply) epilogue.apply(epilogue.context, C, ldc, 0, M, 0, N);
    return finite;
}

// ---------------------------------------------------------------------------------------------
// Blocked path

template <class T>
struct Job {
    const Kernels<T>* kernels;
    Trans ta, tb;
    size_t M, N, K;
    const T* A;
    size_t lda;
    const T* B;
    size_t ldb;
    bool accumulate;
    T* C;
    size_t ldc;
    Epilogue<T> epilogue;
    size_t kc;              // nominal k slice, a function of K alone (the summation order)
    bool pack_a;            // copy A blocks into MR-row panels first
    bool pack_b;            // copy B slices into NR-column panels (else B (K, N) is read in place)
    size_t tasks_n;         // C split into tasks_m x tasks_n rectangles
    size_t m_step, n_step;  // their sizes, multiples of MR and NR
    std::atomic<bool> out_of_memory{false};  // a task could not get its packing buffer
    mutable std::atomic<bool> nonfinite{false};  // epilogue.check_finite found inf or NaN
};

// C[m0:m1, n0:n1] of the job, on the calling thread.
template <class T>
void gemm_block(const Job<T>& job, size_t m0, size_t m1, size_t n0, size_t n1) {
    const Kernels<T>& kern = *job.kernels;
    const size_t nc_max = ceil_div(min_size(kern.NC, n1 - n0), kern.NR) * kern.NR;
    const size_t mc_max = ceil_div(min_size(kern.MC, m1 - m0), kern.MR) * kern.MR;
    const size_t b_size = job.pack_b ? job.kc * nc_max : 0;
    const size_t a_size = job.pack_a ? job.kc * mc_max + Kernels<T>::pack_a_slack : 0;
    T* Bp = static_cast<T*>(t_pack_buffer.get((b_size + a_size) * sizeof(T)));
    T* Ap = Bp + b_size;  // b_size is a multiple of NR, so Ap stays 64-byte aligned
    const bool a_rows = job.ta == Trans::N;  // A (M, K) row-major, else A (K, M)
    const size_t rs_a = a_rows ? job.lda : 1, cs_a = a_rows ? 1 : job.lda;
    for (size_t jc = n0; jc < n1; jc += kern.NC) {
        const size_t nc = min_size(kern.NC, n1 - jc);
        for (size_t p = 0; p < job.K; p += job.kc) {
            const size_t kc = min_size(job.kc, job.K - p);
            // B's panels: packed (kc, NR) blocks one after another, or B's own rows
            const T* B = Bp;
            size_t ps_b = kern.NR * kc, rs_b = kern.NR;
            if (job.pack_b) {
                kern.pack_b(Bp, job.tb, job.B, job.ldb, p, kc, jc, nc);
            } else {
                B = job.B + p * job.ldb + jc;
                ps_b = kern.NR;
                rs_b = job.ldb;
            }
            // the first slice writes C unless accumulating; later slices add to it
            const bool add = job.accumulate || p > 0;
            const bool last = p + kc == job.K;
            for (size_t ic = m0; ic < m1; ic += kern.MC) {
                const size_t mc = min_size(kern.MC, m1 - ic);
                T* c = job.C + ic * job.ldc + jc;
                TileEnd<T> block_end;  // bias, scale and the finite check: on the last slice
                const TileEnd<T>* end = last ? tile_end_at(job.epilogue, ic, jc, block_end) : nullptr;
                bool finite;
                if (job.pack_a) {
                    kern.pack_a(Ap, job.ta, job.A, job.lda, ic, mc, p, kc);
                    finite = kern.macro_kernel(mc, nc, kc, Ap, kern.MR * kc, 1, kern.MR, B, ps_b,
                                               rs_b, job.pack_b, c, job.ldc, add, end);
                } else {
                    finite = kern.macro_kernel(mc, nc, kc, job.A + ic * rs_a + p * cs_a,
                                               kern.MR * rs_a, rs_a, cs_a, B, ps_b, rs_b,
                                               job.pack_b, c, job.ldc, add, end);
                }
                if (!finite) job.nonfinite.store(true, std::memory_order_relaxed);
                if (last && job.epilogue.apply)  // the (MC, NC) block is done and in L2
                    job.epilogue.apply(job.epilogue.context, c, job.ldc, ic, mc, jc, nc);
            }
        }
    }
}

template <class T>
void gemm_task(void* context, size_t i) {
    Job<T>& job = *static_cast<Job<T>*>(context);
    const size_t m0 = i / job.tasks_n * job.m_step, n0 = i % job.tasks_n * job.n_step;
    try {  // an exception must not escape a pool worker; the caller rethrows
        gemm_block(job, m0, min_size(job.M, m0 + job.m_step), n0,
                   min_size(job.N, n0 + job.n_step));
    } catch (const std::bad_alloc&) {
        job.out_of_memory.store(true);
    }
}

// Below this many multiply-adds per thread, handing work to the pool costs more than it saves.
// Measured (Xeon, AVX-512, fit of [w, w, w, w] on 256 rows, back to back, 2 threads against
// one): w = 64, whose products are 2^20 multiply-adds, ran at 0.92x split over the threads
// (7.5k against 8.1k steps/s) and w = 128 (2^22) at 1.14-1.2x, so a product is split only
// where each thread gets 2^20 or more (was 2^18, set when the single-thread kernels were
// slower).
constexpr size_t parallel_min_work_per_thread = size_t(1) << 20;

// Packing an A block costs about one pass over it and pays back on each of the N / NR panels
// of B it meets: reading A in place then touches one cache line per k for Aᵀ storage, and for
// row storage with lda a multiple of 1 KiB its MR rows fall into the same L1 set as each other.
bool pack_a_policy(size_t N, size_t NR, Trans ta) {
    return N >= (ta == Trans::T ? 8 : 16) * NR;
}

// Packing B pays back on each of the M / MR row tiles that read a panel. Stored (K, N), B can
// instead be read in place, NR contiguous values of a row per k, as many loads as from a
// packed panel; while B sits in L1/L2 that is as fast, so products with few row tiles (the
// backward products of small minibatches) skip the copy. Measured, [64, 64, 64, 10] trained
// on minibatches of 32 (one thread), whose dE/dW_0 and dE/dW_1 have 64 rows:
//   AVX2 (MR = 6), as two halves then: 335k -> 327k instructions per step (callgrind) when
//   products of fewer than 64 rows (about 10 tiles) read B in place;
//   AVX-512 (MR = 12): 58.5k -> 63.0k steps/s float32, 28.8k -> 29.9k float64 (means of
//   alternated runs) when the 64-row products (about 5 tiles) read it in place too.
constexpr size_t pack_b_min_tiles = 10;
constexpr size_t in_place_b_max = size_t(1) << 16;  // entries of B

bool pack_b_policy(size_t M, size_t N, size_t K, size_t MR, Trans tb) {
    return tb == Trans::T || M >= pack_b_min_tiles * MR || K * N > in_place_b_max;
}

template <class T>
bool gemm_blocked(const Kernels<T>& kern, Trans ta, Trans tb, size_t M, size_t N, size_t K,
                  const T* A, size_t lda, const T* B, size_t ldb, bool accumulate, T* C,
                  size_t ldc, const Epilogue<T>& epilogue) {
    const size_t kc = gemm_kc<T>(K);
    Job<T> job{&kern, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, epilogue, kc,
               false, true, 1, M, N, {}};
    job.pack_a = pack_a_policy(N, kern.NR, ta);
    job.pack_b = pack_b_policy(M, N, K, kern.MR, tb);

    const size_t work = M * N * K;
    size_t threads = min_size(get_num_threads(), work / parallel_min_work_per_thread);
    if (threads > 1) {
        // Split the longer side of C: a column split has every thread pack (or read) all of
        // A, (M, K), a row split all of B, (K, N), so this repeats the smaller operand.
        // Measured (2 threads, Zen 4): the three forward products of [784, 256, 256, 10] on
        // 4096 rows ran at 126-141 GF/s split by columns, 135-152 by rows.
        const size_t n_panels = ceil_div(N, kern.NR), m_panels = ceil_div(M, kern.MR);
        const size_t tasks_n = M > N ? 1 : min_size(threads, n_panels);
        const size_t tasks_m = min_size(threads / tasks_n, m_panels);
        job.n_step = ceil_div(n_panels, tasks_n) * kern.NR;
        job.m_step = ceil_div(m_panels, tasks_m) * kern.MR;
        job.tasks_n = ceil_div(N, job.n_step);
        const size_t tasks = job.tasks_n * ceil_div(M, job.m_step);
        if (tasks > 1) {
            threads::parallel_for(tasks, &gemm_task<T>, &job);
            if (job.out_of_memory.load()) throw std::bad_alloc();
            return !job.nonfinite.load();
        }
    }
    gemm_block(job, 0, M, 0, N);
    return !job.nonfinite.load();
}

}  // namespace

template <class T> const Kernels<T>* gemm_detail::small_path_kernels() {
    const Kernels<T>& kern = kernels<T>();
    return kern.small[0] != nullptr ? &kern : nullptr;
}

template <class T> size_t gemm_kc(size_t K) {
    const size_t KC = kernels<T>().KC;
    return K == 0 ? 0 : ceil_div(K, ceil_div(K, KC));
}

template <class T>
bool gemm(Trans ta, Trans tb, size_t M, size_t N, size_t K, const T* A, size_t lda, const T* B,
          size_t ldb, bool accumulate, T* C, size_t ldc, const Epilogue<T>& epilogue) {
    if (M == 0 || N == 0) return true;
    const Kernels<T>& kern = kernels<T>();
    const bool small = M * N * K <= direct_max_work;
    if (small && kern.small[0] != nullptr && K > 0) {
        if (K <= kern.KC)
            return gemm_small(kern, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc,
                              epilogue);
        return gemm_blocked(kern, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, epilogue);
    }
    if (K == 0 || small) {
        if (K > 0)
            gemm_direct(ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc);
        else if (!accumulate)
            for (size_t i = 0; i < M; ++i)
                for (size_t j = 0; j < N; ++j) C[i * ldc + j] = T(0);
        TileEnd<T> whole;
        bool finite = true;
        if (const TileEnd<T>* end = tile_end_at(epilogue, 0, 0, whole))
            for (size_t i = 0; i < M; ++i)
                for (size_t j = 0; j < N; ++j)
                    C[i * ldc + j] = end_element(C[i * ldc + j], end, i, j, finite);
        if (epilogue.apply) epilogue.apply(epilogue.context, C, ldc, 0, M, 0, N);
        return finite;
    }
    return gemm_blocked(kern, ta, tb, M, N, K, A, lda, B, ldb, accumulate, C, ldc, epilogue);
}

template const Kernels<float>* gemm_detail::small_path_kernels<float>();
template const Kernels<double>* gemm_detail::small_path_kernels<double>();
template size_t gemm_kc<float>(size_t);
template size_t gemm_kc<double>(size_t);
template bool gemm<float>(Trans, Trans, size_t, size_t, size_t, const float*, size_t,
                          const float*, size_t, bool, float*, size_t, const Epilogue<float>&);
template bool gemm<double>(Trans, Trans, size_t, size_t, size_t, const double*, size_t,
                           const double*, size_t, bool, double*, size_t,
                           const Epilogue<double>&);

}  // namespace fastprop
