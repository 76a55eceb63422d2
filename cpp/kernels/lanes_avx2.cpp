// kernels/lanes.hpp with AVX2 + FMA: 8 float or 4 double lanes (lanes_kernels.inc). Built with
// -mavx2 -mfma -ffp-contract=off (CMakeLists.txt); lanes.cpp calls in here only after checking
// the CPU. Everything but the two table getters has internal linkage (see gemm_avx2.cpp).
#include <immintrin.h>

#include <cstddef>

#include "kernels/lanes.hpp"

namespace fastprop::lanes::detail {
namespace {

using std::size_t;

template <class T> struct Vec;

template <> struct Vec<float> {
    using R = __m256;
    using D = __m256d;
    static constexpr size_t lanes = 8, parts = 2;
    static R zero() { return _mm256_setzero_ps(); }
    static R load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, R v) { _mm256_storeu_ps(p, v); }
    static R broadcast(const float* p) { return _mm256_broadcast_ss(p); }
    static R set1(float v) { return _mm256_set1_ps(v); }
    static R add(R a, R b) { return _mm256_add_ps(a, b); }
    static R sub(R a, R b) { return _mm256_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm256_mul_ps(a, b); }
    static R div(R a, R b) { return _mm256_div_ps(a, b); }
    static R sqrt(R a) { return _mm256_sqrt_ps(a); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
    static D part(R v, size_t h) {
        return _mm256_cvtps_pd(h == 0 ? _mm256_castps256_ps128(v) : _mm256_extractf128_ps(v, 1));
    }
    static D dzero() { return _mm256_setzero_pd(); }
    static D dadd(D a, D b) { return _mm256_add_pd(a, b); }
    static D dmul(D a, D b) { return _mm256_mul_pd(a, b); }
    static void dstore(double* p, D v) { _mm256_storeu_pd(p, v); }
    static LaneMask nonzero(R v) {
        return LaneMask(_mm256_movemask_ps(_mm256_cmp_ps(v, zero(), _CMP_NEQ_UQ)));
    }
    static R select(LaneMask m, R a, R b) {
        const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
        const __m256i on =
            _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32(int(m)), bits), bits);
        return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(on));
    }
};

template <> struct Vec<double> {
    using R = __m256d;
    using D = __m256d;
    static constexpr size_t lanes = 4, parts = 1;
    static R zero() { return _mm256_setzero_pd(); }
    static R load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, R v) { _mm256_storeu_pd(p, v); }
    static R broadcast(const double* p) { return _mm256_broadcast_sd(p); }
    static R set1(double v) { return _mm256_set1_pd(v); }
    static R add(R a, R b) { return _mm256_add_pd(a, b); }
    static R sub(R a, R b) { return _mm256_sub_pd(a, b); }
    static R mul(R a, R b) { return _mm256_mul_pd(a, b); }
    static R div(R a, R b) { return _mm256_div_pd(a, b); }
    static R sqrt(R a) { return _mm256_sqrt_pd(a); }
    static R fmadd(R a, R b, R c) { return _mm256_fmadd_pd(a, b, c); }
    static D part(R v, size_t) { return v; }
    static D dzero() { return _mm256_setzero_pd(); }
    static D dadd(D a, D b) { return _mm256_add_pd(a, b); }
    static D dmul(D a, D b) { return _mm256_mul_pd(a, b); }
    static void dstore(double* p, D v) { _mm256_storeu_pd(p, v); }
    static LaneMask nonzero(R v) {
        return LaneMask(_mm256_movemask_pd(_mm256_cmp_pd(v, zero(), _CMP_NEQ_UQ)));
    }
    static R select(LaneMask m, R a, R b) {
        const __m256i bits = _mm256_setr_epi64x(1, 2, 4, 8);
        const __m256i on = _mm256_cmpeq_epi64(
            _mm256_and_si256(_mm256_set1_epi64x(static_cast<long long>(m)), bits), bits);
        return _mm256_blendv_pd(b, a, _mm256_castsi256_pd(on));
    }
};

#include "lanes_kernels.inc"

}  // namespace

const Kernels<float>& avx2_f32() {
    static const Kernels<float> kernels = make_kernels<float>();
    return kernels;
}

const Kernels<double>& avx2_f64() {
    static const Kernels<double> kernels = make_kernels<double>();
    return kernels;
}

}  // namespace fastprop::lanes::detail
