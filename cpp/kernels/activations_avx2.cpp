// The exp-based activations with AVX2 + FMA (activations_simd.inc on 256-bit vectors). Built
// with -mavx2 -mfma (see CMakeLists.txt); called through activations.cpp after a CPU check.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

namespace fastprop::simd {

namespace {

template <class T> struct Lanes;

template <> struct Lanes<double> {
    using V = __m256d;
    static constexpr std::size_t width = 4;
    static constexpr double normal_min = -708.0;  // e^x normal above this
    static V load(const double* p) { return _mm256_loadu_pd(p); }
    static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
    static V set1(double v) { return _mm256_set1_pd(v); }
    static V add(V a, V b) { return _mm256_add_pd(a, b); }
    static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
    static V div(V a, V b) { return _mm256_div_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
    static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_pd(a, b, c); }
    static V round(V v) { return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V scale2(V p, V n) {  // p · 2^n: 2^n put into the exponent bits
        const __m256i n64 = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n));
        return _mm256_mul_pd(p, _mm256_castsi256_pd(_mm256_slli_epi64(
                                    _mm256_add_epi64(n64, _mm256_set1_epi64x(1023)), 52)));
    }
    static V abs(V v) { return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v); }
    static V with_sign_of(V r, V z) { return _mm256_or_pd(r, _mm256_and_pd(z, _mm256_set1_pd(-0.0))); }
    static V select_below(V x, double bound, V if_below, V otherwise) {
        return _mm256_blendv_pd(otherwise, if_below, _mm256_cmp_pd(x, _mm256_set1_pd(bound), _CMP_NGE_UQ));
    }
    static V neg_abs(V v) { return _mm256_or_pd(v, _mm256_set1_pd(-0.0)); }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {  // z >= 0 ? a : b (NaN: b)
        return _mm256_blendv_pd(otherwise, if_nonneg, _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_GE_OQ));
    }
    static int below(V x, double bound) {
        return _mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_set1_pd(bound), _CMP_LT_OQ));
    }
    static bool all_below(V x, double bound) { return below(x, bound) == 0xf; }
};

template <> struct Lanes<float> {
    using V = __m256;
    static constexpr std::size_t width = 8;
    static constexpr float normal_min = -87.0f;
    static V load(const float* p) { return _mm256_loadu_ps(p); }
    static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
    static V set1(float v) { return _mm256_set1_ps(v); }
    static V add(V a, V b) { return _mm256_add_ps(a, b); }
    static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
    static V div(V a, V b) { return _mm256_div_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
    static V fnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }
    static V round(V v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V scale2(V p, V n) {  // p · 2^n: 2^n put into the exponent bits
        return _mm256_mul_ps(p, _mm256_castsi256_ps(_mm256_slli_epi32(
                                    _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23)));
    }
    static V abs(V v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }
    static V with_sign_of(V r, V z) { return _mm256_or_ps(r, _mm256_and_ps(z, _mm256_set1_ps(-0.0f))); }
    static V select_below(V x, float bound, V if_below, V otherwise) {
        return _mm256_blendv_ps(otherwise, if_below, _mm256_cmp_ps(x, _mm256_set1_ps(bound), _CMP_NGE_UQ));
    }
    static V neg_abs(V v) { return _mm256_or_ps(v, _mm256_set1_ps(-0.0f)); }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {
        return _mm256_blendv_ps(otherwise, if_nonneg, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ));
    }
    static int below(V x, float bound) {
        return _mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(bound), _CMP_LT_OQ));
    }
    static bool all_below(V x, float bound) { return below(x, bound) == 0xff; }
};

#include "activations_simd.inc"

}  // namespace

void sigmoid_avx2(float* a, float* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void sigmoid_avx2(double* a, double* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void tanh_avx2(float* a, float* z, bool keep_prime, std::size_t count) { tanh(a, z, keep_prime, count); }
void tanh_avx2(double* a, double* z, bool keep_prime, std::size_t count) { tanh(a, z, keep_prime, count); }

}  // namespace fastprop::simd
