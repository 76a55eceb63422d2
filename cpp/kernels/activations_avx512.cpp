// The exp-based activations with AVX-512 (activations_simd.inc on 512-bit vectors): the same
// operations per lane as activations_avx2.cpp, so the same bits. Built with -mavx512f -mavx2
// -mfma (see CMakeLists.txt); called through activations.cpp after a CPU check.
#include <immintrin.h>

// GCC 12 flags the _mm512_undefined_*() inside its own roundscale, cvtps2dq and slli
// intrinsics as uninitialised (GCC bug 105593); they are the "don't care" source of an
// all-ones mask.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cmath>
#include <cstddef>
#include <cstdint>

namespace fastprop::simd {

namespace {

template <class T> struct Lanes;

template <> struct Lanes<double> {
    using V = __m512d;
    static constexpr std::size_t width = 8;
    static constexpr double normal_min = -708.0;  // e^x normal above this
    static V load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
    static V set1(double v) { return _mm512_set1_pd(v); }
    static V add(V a, V b) { return _mm512_add_pd(a, b); }
    static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
    static V div(V a, V b) { return _mm512_div_pd(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
    static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_pd(a, b, c); }
    static V round(V v) { return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V scale2(V p, V n) { return _mm512_scalef_pd(p, n); }
    static V abs(V v) {
        return _mm512_castsi512_pd(_mm512_andnot_si512(_mm512_set1_epi64(std::int64_t(1) << 63),
                                                       _mm512_castpd_si512(v)));
    }
    static V with_sign_of(V r, V z) {
        const __m512i sign = _mm512_and_si512(_mm512_castpd_si512(z), _mm512_set1_epi64(std::int64_t(1) << 63));
        return _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(r), sign));
    }
    static V select_below(V x, double bound, V if_below, V otherwise) {
        return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(x, _mm512_set1_pd(bound), _CMP_NGE_UQ),
                                    otherwise, if_below);
    }
    static V neg_abs(V v) {  // the sign bit set (an integer or: AVX-512F has no _mm512_or_pd)
        return _mm512_castsi512_pd(_mm512_or_si512(_mm512_castpd_si512(v),
                                                   _mm512_set1_epi64(std::int64_t(1) << 63)));
    }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {  // z >= 0 ? a : b (NaN: b)
        return _mm512_mask_blend_pd(_mm512_cmp_pd_mask(z, _mm512_setzero_pd(), _CMP_GE_OQ),
                                    otherwise, if_nonneg);
    }
    static int below(V x, double bound) {
        return _mm512_cmp_pd_mask(x, _mm512_set1_pd(bound), _CMP_LT_OQ);
    }
    static bool all_below(V x, double bound) { return below(x, bound) == 0xff; }
};

template <> struct Lanes<float> {
    using V = __m512;
    static constexpr std::size_t width = 16;
    static constexpr float normal_min = -87.0f;
    static V load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
    static V set1(float v) { return _mm512_set1_ps(v); }
    static V add(V a, V b) { return _mm512_add_ps(a, b); }
    static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
    static V div(V a, V b) { return _mm512_div_ps(a, b); }
    static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
    static V fnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }
    static V round(V v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
    static V scale2(V p, V n) { return _mm512_scalef_ps(p, n); }
    static V abs(V v) {
        return _mm512_castsi512_ps(_mm512_andnot_si512(_mm512_set1_epi32(std::int32_t(0x80000000u)),
                                                       _mm512_castps_si512(v)));
    }
    static V with_sign_of(V r, V z) {
        const __m512i sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(std::int32_t(0x80000000u)));
        return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(r), sign));
    }
    static V select_below(V x, float bound, V if_below, V otherwise) {
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(x, _mm512_set1_ps(bound), _CMP_NGE_UQ),
                                    otherwise, if_below);
    }
    static V neg_abs(V v) {
        return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v),
                                                   _mm512_set1_epi32(std::int32_t(0x80000000u))));
    }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {
        return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ),
                                    otherwise, if_nonneg);
    }
    static int below(V x, float bound) {
        return _mm512_cmp_ps_mask(x, _mm512_set1_ps(bound), _CMP_LT_OQ);
    }
    static bool all_below(V x, float bound) { return below(x, bound) == 0xffff; }
};

#include "activations_simd.inc"

}  // namespace

void sigmoid_avx512(float* a, float* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void sigmoid_avx512(double* a, double* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void tanh_avx512(float* a, float* z, bool keep_prime, std::size_t count) { tanh(a, z, keep_prime, count); }
void tanh_avx512(double* a, double* z, bool keep_prime, std::size_t count) { tanh(a, z, keep_prime, count); }

}  // namespace fastprop::simd
