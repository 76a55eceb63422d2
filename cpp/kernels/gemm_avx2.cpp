// AVX2 + FMA pieces of the blocked gemm path: 256-bit registers, a 6 x 2-vector tile. Built
// with -mavx2 -mfma; gemm.cpp calls in here only after checking the CPU. Everything but the
// two table getters sits in an anonymous namespace and only <immintrin.h> (always-inline
// intrinsics) and <cstddef> are included, so no AVX2-compiled inline function or template
// instantiation can be merged by the linker into a caller in the generic code.
#include <immintrin.h>

#include <cstddef>

#include "kernels/gemm.hpp"

namespace fastprop {
namespace gemm_detail {
namespace {

using std::size_t;

template <class T> struct Vec;

template <> struct Vec<float> {
    using R = __m256;
    using M = __m256i;
    static constexpr size_t lanes = 8;
    static R zero() { return _mm256_setzero_ps(); }
    static R load(const float* p) { return _mm256_load_ps(p); }
    static R loadu(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, R v) { _mm256_store_ps(p, v); }
    static void storeu(float* p, R v) { _mm256_storeu_ps(p, v); }
    static R broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    static R sub_masked(M m, R a, R b) { return _mm256_and_ps(_mm256_sub_ps(a, b), _mm256_castsi256_ps(m)); }
    static bool all_zero(R v) {
        return _mm256_movemask_ps(_mm256_cmp_ps(v, zero(), _CMP_NEQ_UQ)) == 0;
    }
    static M mask(long n) {
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)),
                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    }
    static R maskload(const float* p, M m) { return _mm256_maskload_ps(p, m); }
    static void maskstore(float* p, M m, R v) { _mm256_maskstore_ps(p, m, v); }
};

template <> struct Vec<double> {
    using R = __m256d;
    using M = __m256i;
    static constexpr size_t lanes = 4;
    static R zero() { return _mm256_setzero_pd(); }
    static R load(const double* p) { return _mm256_load_pd(p); }
    static R loadu(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, R v) { _mm256_store_pd(p, v); }
    static void storeu(double* p, R v) { _mm256_storeu_pd(p, v); }
    static R broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
    static R sub_masked(M m, R a, R b) { return _mm256_and_pd(_mm256_sub_pd(a, b), _mm256_castsi256_pd(m)); }
    static bool all_zero(R v) {
        return _mm256_movemask_pd(_mm256_cmp_pd(v, zero(), _CMP_NEQ_UQ)) == 0;
    }
    static M mask(long n) {
        return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), _mm256_setr_epi64x(0, 1, 2, 3));
    }
    static R maskload(const double* p, M m) { return _mm256_maskload_pd(p, m); }
    static void maskstore(double* p, M m, R v) { _mm256_maskstore_pd(p, m, v); }
};

// Register tile: MR = 6 rows of A broadcast against NR = 2 vectors of packed B, 12 of the 16
// ymm registers as accumulators (16 floats / 8 doubles wide), enough independent FMA chains
// to cover the 4-cycle latency on both FMA pipes.
constexpr size_t MR = 6;

// Narrow edges use the full vectors: there is no narrower one worth having.
template <class T> using Half = Vec<T>;

#include "gemm_kernels.inc"

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
