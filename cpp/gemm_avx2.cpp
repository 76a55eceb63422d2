// AVX2 + FMA pieces of the blocked gemm path. This is the only file built with -mavx2 -mfma;
// gemm.cpp calls in here only after checking the CPU. Everything but the two table getters
// sits in an anonymous namespace and only <immintrin.h> (always-inline intrinsics) and
// <cstddef> are included, so no AVX2-compiled inline function or template instantiation can be
// merged by the linker into a caller in the generic code.
#include <immintrin.h>

#include <cstddef>

#include "gemm.hpp"

namespace fastprop {
namespace gemm_detail {
namespace {

using std::size_t;

template <class T> struct Vec;

template <> struct Vec<float> {
    using R = __m256;
    static constexpr size_t lanes = 8;
    static R zero() { return _mm256_setzero_ps(); }
    static R load(const float* p) { return _mm256_load_ps(p); }
    static R loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, R v) { _mm256_store_ps(p, v); }
    static void storeu(float* p, R v) { _mm256_storeu_ps(p, v); }
    static R broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    // lanes [0, n) on, n clamped to [0, lanes] by the comparison
    static __m256i mask(long n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static R maskload(const float* p, __m256i m) { return _mm256_maskload_ps(p, m); }
    static void maskstore(float* p, __m256i m, R v) { _mm256_maskstore_ps(p, m, v); }
};

template <> struct Vec<double> {
    using R = __m256d;
    static constexpr size_t lanes = 4;
    static R zero() { return _mm256_setzero_pd(); }
    static R load(const double* p) { return _mm256_load_pd(p); }
    static R loadu(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, R v) { _mm256_store_pd(p, v); }
    static void storeu(double* p, R v) { _mm256_storeu_pd(p, v); }
    static R broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static __m256i mask(long n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static R maskload(const double* p, __m256i m) { return _mm256_maskload_pd(p, m); }
    static void maskstore(double* p, __m256i m, R v) { _mm256_maskstore_pd(p, m, v); }
};

// In-register transposes for packing the operand whose k runs along its rows: rows r of the
// input hold (row r, k .. k + lanes); outputs hold (rows 0 .. lanes, k + i).
void transpose(__m256 (&v)[8]) {
    const __m256 t0 = _mm256_unpacklo_ps(v[0], v[1]), t1 = _mm256_unpackhi_ps(v[0], v[1]);
    const __m256 t2 = _mm256_unpacklo_ps(v[2], v[3]), t3 = _mm256_unpackhi_ps(v[2], v[3]);
    const __m256 t4 = _mm256_unpacklo_ps(v[4], v[5]), t5 = _mm256_unpackhi_ps(v[4], v[5]);
    const __m256 t6 = _mm256_unpacklo_ps(v[6], v[7]), t7 = _mm256_unpackhi_ps(v[6], v[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    v[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    v[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    v[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    v[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    v[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    v[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    v[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    v[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

void transpose(__m256d (&v)[4]) {
    const __m256d t0 = _mm256_unpacklo_pd(v[0], v[1]), t1 = _mm256_unpackhi_pd(v[0], v[1]);
    const __m256d t2 = _mm256_unpacklo_pd(v[2], v[3]), t3 = _mm256_unpackhi_pd(v[2], v[3]);
    v[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    v[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    v[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    v[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

// dst[k * ld_dst + r] = src[r * ld_src + k] for r < lanes, k < lanes
template <class T>
void transpose_block(T* dst, size_t ld_dst, const T* src, size_t ld_src) {
    using V = Vec<T>;
    typename V::R v[V::lanes];
    for (size_t r = 0; r < V::lanes; ++r) v[r] = V::loadu(src + r * ld_src);
    transpose(v);
    for (size_t k = 0; k < V::lanes; ++k) V::store(dst + k * ld_dst, v[k]);
}

// Register tile: MR = 6 rows of A broadcast against NR = 2 vectors of packed B, 12 ymm
// accumulators (16 floats / 8 doubles wide), enough independent FMA chains to cover the
// 4-cycle latency on both FMA pipes.
constexpr size_t MR = 6;
template <class T> constexpr size_t NR = 2 * Vec<T>::lanes;

// C (mr, nr) = (or +=) A (mr, kc) B (kc, NR), row k of B at B + k * rs_b; nr <= NR. With
// masked_b, B's columns past nr are not read (B in place at the right edge of C). Each C
// element is one FMA chain over k from zero, then one add to C, whatever tile or thread it
// falls in: the bits depend only on kc, which depends only on K.
template <class T, size_t mr, bool masked_b>
void micro_kernel(size_t kc, const T* A, size_t rs_a, size_t cs_a, const T* B, size_t rs_b,
                  T* C, size_t ldc, size_t nr, bool add) {
    using V = Vec<T>;
    constexpr size_t L = V::lanes;
    typename V::R c0[mr], c1[mr];
#pragma GCC unroll 6
    for (size_t r = 0; r < mr; ++r) {
        c0[r] = c1[r] = V::zero();
        _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 2 * L - 1), _MM_HINT_T0);
    }
    const __m256i m0 = V::mask(static_cast<long>(nr));
    const __m256i m1 = V::mask(static_cast<long>(nr) - static_cast<long>(L));
    const T* a = A;
    const T* b = B;
#pragma GCC unroll 4
    for (size_t k = 0; k < kc; ++k) {
        const typename V::R b0 = masked_b ? V::maskload(b, m0) : V::loadu(b);
        const typename V::R b1 = masked_b ? V::maskload(b + L, m1) : V::loadu(b + L);
#pragma GCC unroll 6
        for (size_t r = 0; r < mr; ++r) {
            const typename V::R a_rk = V::broadcast(a + r * rs_a);
            c0[r] = V::fmadd(a_rk, b0, c0[r]);
            c1[r] = V::fmadd(a_rk, b1, c1[r]);
        }
        a += cs_a;
        b += rs_b;
    }
    if (nr == 2 * L) {
#pragma GCC unroll 6
        for (size_t r = 0; r < mr; ++r) {
            T* c = C + r * ldc;
            if (add) {
                c0[r] = V::add(V::loadu(c), c0[r]);
                c1[r] = V::add(V::loadu(c + L), c1[r]);
            }
            V::storeu(c, c0[r]);
            V::storeu(c + L, c1[r]);
        }
    } else {
#pragma GCC unroll 6
        for (size_t r = 0; r < mr; ++r) {
            T* c = C + r * ldc;
            if (add) {
                c0[r] = V::add(V::maskload(c, m0), c0[r]);
                c1[r] = V::add(V::maskload(c + L, m1), c1[r]);
            }
            V::maskstore(c, m0, c0[r]);
            V::maskstore(c + L, m1, c1[r]);
        }
    }
}

// The MR-row tiles of one NR-column panel, then the rows left over (mc % MR).
template <class T, bool masked_b>
void panel_kernel(size_t mc, size_t kc, const T* A, size_t ps_a, size_t rs_a, size_t cs_a,
                  const T* b, size_t rs_b, T* c, size_t ldc, size_t nr, bool add) {
    const T* a = A;
    size_t ir = 0;
    for (; ir + MR <= mc; ir += MR, a += ps_a)
        micro_kernel<T, MR, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c + ir * ldc, ldc, nr, add);
    c += ir * ldc;
    switch (mc - ir) {
        case 5: micro_kernel<T, 5, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, add); break;
        case 4: micro_kernel<T, 4, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, add); break;
        case 3: micro_kernel<T, 3, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, add); break;
        case 2: micro_kernel<T, 2, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, add); break;
        case 1: micro_kernel<T, 1, masked_b>(kc, a, rs_a, cs_a, b, rs_b, c, ldc, nr, add); break;
        default: break;
    }
}

template <class T>
void macro_kernel(size_t mc, size_t nc, size_t kc, const T* A, size_t ps_a, size_t rs_a,
                  size_t cs_a, const T* B, size_t ps_b, size_t rs_b, bool b_padded, T* C,
                  size_t ldc, bool add) {
    constexpr size_t nr_full = NR<T>;
    for (size_t jr = 0, p = 0; jr < nc; jr += nr_full, ++p) {
        const size_t nr = nc - jr < nr_full ? nc - jr : nr_full;
        const T* b = B + p * ps_b;
        if (nr == nr_full || b_padded)
            panel_kernel<T, false>(mc, kc, A, ps_a, rs_a, cs_a, b, rs_b, C + jr, ldc, nr, add);
        else
            panel_kernel<T, true>(mc, kc, A, ps_a, rs_a, cs_a, b, rs_b, C + jr, ldc, nr, add);
    }
}

template <class T>
void pack_b(T* Bp, Trans tb, const T* B, size_t ldb, size_t k0, size_t kc, size_t j0,
            size_t nc) {
    using V = Vec<T>;
    constexpr size_t L = V::lanes;
    constexpr size_t nr_full = NR<T>;
    for (size_t jr = 0; jr < nc; jr += nr_full) {
        const size_t nr = nc - jr < nr_full ? nc - jr : nr_full;
        T* dst = Bp + jr * kc;
        if (tb == Trans::N) {
            // op(B)[k][j] = B[k * ldb + j]: rows of the panel are contiguous in B
            const T* src = B + k0 * ldb + j0 + jr;
            if (nr == nr_full) {
                for (size_t k = 0; k < kc; ++k, src += ldb, dst += nr_full) {
                    V::store(dst, V::loadu(src));
                    V::store(dst + L, V::loadu(src + L));
                }
            } else {
                const __m256i m0 = V::mask(static_cast<long>(nr));
                const __m256i m1 = V::mask(static_cast<long>(nr) - static_cast<long>(L));
                for (size_t k = 0; k < kc; ++k, src += ldb, dst += nr_full) {
                    V::store(dst, V::maskload(src, m0));
                    V::store(dst + L, V::maskload(src + L, m1));
                }
            }
        } else {
            // op(B)[k][j] = B[j * ldb + k]: each panel column is a contiguous row of B, so
            // full panels go through (lanes x lanes) register transposes
            const T* src = B + (j0 + jr) * ldb + k0;
            size_t k = 0;
            if (nr == nr_full)
                for (; k + L <= kc; k += L) {
                    transpose_block(dst + k * nr_full, nr_full, src + k, ldb);
                    transpose_block(dst + k * nr_full + L, nr_full, src + L * ldb + k, ldb);
                }
            for (; k < kc; ++k) {
                for (size_t j = 0; j < nr; ++j) dst[k * nr_full + j] = src[j * ldb + k];
                for (size_t j = nr; j < nr_full; ++j) dst[k * nr_full + j] = T(0);
            }
        }
    }
}

// Rows r < MR of (k .. k + lanes) from A (MR rows, stride lda) into panel rows dst[k * MR + r];
// each store writes lanes values where MR belong, the extra ones overwritten by the next k
// (or landing in the slack past the buffer end, see Kernels::pack_a).
void pack_a_rows(float* dst, const float* src, size_t lda) {
    __m256 v[8];
    for (size_t r = 0; r < 8; ++r) v[r] = _mm256_loadu_ps(src + (r < MR ? r : MR - 1) * lda);
    transpose(v);
    for (size_t k = 0; k < 8; ++k) _mm256_storeu_ps(dst + k * MR, v[k]);
}

void pack_a_rows(double* dst, const double* src, size_t lda) {
    __m256d v[4];
    for (size_t r = 0; r < 4; ++r) v[r] = _mm256_loadu_pd(src + r * lda);
    transpose(v);
    const __m256d r4 = _mm256_loadu_pd(src + 4 * lda), r5 = _mm256_loadu_pd(src + 5 * lda);
    const __m256d even = _mm256_unpacklo_pd(r4, r5), odd = _mm256_unpackhi_pd(r4, r5);
    const __m128d tail[4] = {_mm256_castpd256_pd128(even), _mm256_castpd256_pd128(odd),
                             _mm256_extractf128_pd(even, 1), _mm256_extractf128_pd(odd, 1)};
    for (size_t k = 0; k < 4; ++k) {
        _mm256_storeu_pd(dst + k * MR, v[k]);
        _mm_storeu_pd(dst + k * MR + 4, tail[k]);
    }
}

template <class T>
void pack_a(T* Ap, Trans ta, const T* A, size_t lda, size_t i0, size_t mc, size_t k0,
            size_t kc) {
    constexpr size_t L = Vec<T>::lanes;
    for (size_t ir = 0; ir < mc; ir += MR, Ap += MR * kc) {
        const size_t mr = mc - ir < MR ? mc - ir : MR;
        if (ta == Trans::T) {
            // op(A)[i][k] = A[k * lda + i]: the panel's rows at each k are contiguous
            const T* src = A + k0 * lda + i0 + ir;
            for (size_t k = 0; k < kc; ++k, src += lda)
                for (size_t r = 0; r < mr; ++r) Ap[k * MR + r] = src[r];
        } else {
            // op(A)[i][k] = A[i * lda + k]: full panels through register transposes
            const T* src = A + (i0 + ir) * lda + k0;
            size_t k = 0;
            if (mr == MR)
                for (; k + L <= kc; k += L) pack_a_rows(Ap + k * MR, src + k, lda);
            for (; k < kc; ++k)
                for (size_t r = 0; r < mr; ++r) Ap[k * MR + r] = src[r * lda + k];
        }
    }
}

template <class T>
Kernels<T> make_kernels(size_t MC, size_t KC, size_t NC) {
    return Kernels<T>{MR, NR<T>, MC, KC, NC, &pack_b<T>, &pack_a<T>, &macro_kernel<T>};
}

}  // namespace

// Zen 3: 32 KiB L1d holds the (KC, NR) B panel (16 KiB) with room for the A rows streaming
// past it; 512 KiB L2 holds the (MC, KC) A block; the (KC, NC) packed B lives in L3.
const Kernels<float>& avx2_kernels_f32() {
    static const Kernels<float> kernels = make_kernels<float>(96, 256, 2048);
    return kernels;
}

const Kernels<double>& avx2_kernels_f64() {
    static const Kernels<double> kernels = make_kernels<double>(72, 256, 1024);
    return kernels;
}

}  // namespace gemm_detail
}  // namespace fastprop
