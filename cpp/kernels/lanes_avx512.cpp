// kernels/lanes.hpp with AVX-512: 16 float or 8 double lanes (lanes_kernels.inc). Built with
// -mavx512f -mavx2 -mfma -ffp-contract=off (CMakeLists.txt); lanes.cpp calls in here only
// after checking the CPU. As in gemm_avx512.cpp, everything but the two table getters has
// internal linkage, so no AVX-512 code can reach the generic paths.
#include <immintrin.h>

// GCC 12 flags the _mm512_undefined_*() inside its own cvtps2pd and extract intrinsics as
// uninitialised (GCC bug 105593; see activations_avx512.cpp).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <cstddef>

#include "kernels/lanes.hpp"

namespace fastprop::lanes::detail {
namespace {

using std::size_t;

template <class T> struct Vec;

template <> struct Vec<float> {
    using R = __m512;
    using D = __m512d;
    static constexpr size_t lanes = 16, parts = 2;
    static R zero() { return _mm512_setzero_ps(); }
    static R load(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, R v) { _mm512_storeu_ps(p, v); }
    static R broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static R set1(float v) { return _mm512_set1_ps(v); }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static R sub(R a, R b) { return _mm512_sub_ps(a, b); }
    static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    static R div(R a, R b) { return _mm512_div_ps(a, b); }
    static R sqrt(R a) { return _mm512_sqrt_ps(a); }
    static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static D part(R v, size_t h) {
        const __m256 half = h == 0 ? _mm512_castps512_ps256(v)
                                   : _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
        return _mm512_cvtps_pd(half);
    }
    static D dzero() { return _mm512_setzero_pd(); }
    static D dadd(D a, D b) { return _mm512_add_pd(a, b); }
    static D dmul(D a, D b) { return _mm512_mul_pd(a, b); }
    static void dstore(double* p, D v) { _mm512_storeu_pd(p, v); }
    static LaneMask nonzero(R v) { return _mm512_cmp_ps_mask(v, zero(), _CMP_NEQ_UQ); }
    static R select(LaneMask m, R a, R b) { return _mm512_mask_blend_ps(__mmask16(m), b, a); }
};

template <> struct Vec<double> {
    using R = __m512d;
    using D = __m512d;
    static constexpr size_t lanes = 8, parts = 1;
    static R zero() { return _mm512_setzero_pd(); }
    static R load(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, R v) { _mm512_storeu_pd(p, v); }
    static R broadcast(const double* p) { return _mm512_set1_pd(*p); }
    static R set1(double v) { return _mm512_set1_pd(v); }
    static R add(R a, R b) { return _mm512_add_pd(a, b); }
    static R sub(R a, R b) { return _mm512_sub_pd(a, b); }
    static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
    static R div(R a, R b) { return _mm512_div_pd(a, b); }
    static R sqrt(R a) { return _mm512_sqrt_pd(a); }
    static R fmadd(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
    static D part(R v, size_t) { return v; }
    static D dzero() { return _mm512_setzero_pd(); }
    static D dadd(D a, D b) { return _mm512_add_pd(a, b); }
    static D dmul(D a, D b) { return _mm512_mul_pd(a, b); }
    static void dstore(double* p, D v) { _mm512_storeu_pd(p, v); }
    static LaneMask nonzero(R v) { return _mm512_cmp_pd_mask(v, zero(), _CMP_NEQ_UQ); }
    static R select(LaneMask m, R a, R b) { return _mm512_mask_blend_pd(__mmask8(m), b, a); }
};

#include "lanes_kernels.inc"

}  // namespace

const Kernels<float>& avx512_f32() {
    static const Kernels<float> kernels = make_kernels<float>();
    return kernels;
}

const Kernels<double>& avx512_f64() {
    static const Kernels<double> kernels = make_kernels<double>();
    return kernels;
}

}  // namespace fastprop::lanes::detail
