// The exp-based activations with AVX2 + FMA: the only other translation unit built with
// -mavx2 -mfma (see CMakeLists.txt). Called through activations.cpp after a CPU check.
//
// e^x is taken for x = −|z| <= 0 only: x = n ln 2 + r with |r| <= ln 2 / 2 (Cody–Waite),
// e^r by a polynomial, 2^n put into the exponent bits. Lanes below the normal range (where
// e^x is subnormal or 0) are recomputed with std::exp, so results stay exact to a few ulps
// for every finite z, and ±inf and NaN behave as in the scalar code.
#include <immintrin.h>

#include <cmath>
#include <cstddef>

namespace fastprop::simd {

namespace {

// ---- double: 4 lanes, e^r by its Taylor series to r^13 (truncation < 5e-18 on |r| <= 0.347)
inline __m256d exp_nonpositive(__m256d x) {
    const __m256d n = _mm256_round_pd(_mm256_mul_pd(x, _mm256_set1_pd(1.4426950408889634)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125e-1), x);
    r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212e-6), r);
    static constexpr double inverse_factorial[14] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800};
    __m256d p = _mm256_set1_pd(inverse_factorial[13]);
    for (int k = 12; k >= 0; --k) p = _mm256_fmadd_pd(p, r, _mm256_set1_pd(inverse_factorial[k]));
    const __m256i exponent = _mm256_slli_epi64(
        _mm256_add_epi64(_mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n)), _mm256_set1_epi64x(1023)),
        52);
    return _mm256_mul_pd(p, _mm256_castsi256_pd(exponent));
}

// ---- float: 8 lanes, Cephes' expf polynomial (about 1 ulp)
inline __m256 exp_nonpositive(__m256 x) {
    const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i exponent = _mm256_slli_epi32(
        _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

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
    static V neg_abs(V v) { return _mm256_or_pd(v, _mm256_set1_pd(-0.0)); }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {  // z >= 0 ? a : b (NaN: b)
        return _mm256_blendv_pd(otherwise, if_nonneg, _mm256_cmp_pd(z, _mm256_setzero_pd(), _CMP_GE_OQ));
    }
    static int below(V x, double bound) {
        return _mm256_movemask_pd(_mm256_cmp_pd(x, _mm256_set1_pd(bound), _CMP_LT_OQ));
    }
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
    static V neg_abs(V v) { return _mm256_or_ps(v, _mm256_set1_ps(-0.0f)); }
    static V select_nonneg(V z, V if_nonneg, V otherwise) {
        return _mm256_blendv_ps(otherwise, if_nonneg, _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ));
    }
    static int below(V x, float bound) {
        return _mm256_movemask_ps(_mm256_cmp_ps(x, _mm256_set1_ps(bound), _CMP_LT_OQ));
    }
};

// e^{scale·|z|} for one vector of z (scale < 0), exact also where it is subnormal.
template <class T>
typename Lanes<T>::V exp_scaled_abs(const T* z, T scale) {
    using L = Lanes<T>;
    const auto x = L::mul(L::neg_abs(L::load(z)), L::set1(-scale));
    auto e = exp_nonpositive(x);
    if (L::below(x, L::normal_min)) {
        alignas(32) T xs[L::width], es[L::width];
        L::store(xs, x);
        L::store(es, e);
        for (std::size_t k = 0; k < L::width; ++k)
            if (xs[k] < L::normal_min) es[k] = std::exp(xs[k]);
        e = L::load(es);
    }
    return e;
}

// Runs body(k, arrays) over count entries, a vector at a time; the tail goes through a
// padded vector too, so that every entry takes the same arithmetic. The first n_written
// arrays are outputs.
template <class T, class Body>
void over_vectors(std::size_t count, T* const* arrays, int n_arrays, int n_written, Body&& body) {
    constexpr std::size_t W = Lanes<T>::width;
    std::size_t k = 0;
    for (; k + W <= count; k += W) body(k, arrays);
    if (k == count) return;
    alignas(32) T pad[3][W] = {};
    T* tail[3];
    for (int i = 0; i < n_arrays; ++i) {
        for (std::size_t j = 0; j < count - k; ++j) pad[i][j] = arrays[i][k + j];
        tail[i] = pad[i] - k;  // so that tail[i] + k is the padded copy
    }
    body(k, tail);
    for (int i = 0; i < n_written; ++i)
        for (std::size_t j = 0; j < count - k; ++j) arrays[i][k + j] = pad[i][j];
}

// a = σ(z) = 1/(1 + e) for z >= 0, e/(1 + e) below, with e = e^{−|z|}; and when
// prime is not null, σ'(z) = e/(1 + e)² written over it.
template <class T> void sigmoid(T* a, T* z_or_prime, bool keep_prime, std::size_t count) {
    using L = Lanes<T>;
    T* arrays[2] = {a, z_or_prime};
    over_vectors<T>(count, arrays, 2, keep_prime ? 2 : 1, [keep_prime](std::size_t k, T* const* p) {
        const auto z = L::load(p[1] + k);
        const auto e = exp_scaled_abs<T>(p[1] + k, T(-1));
        const auto d = L::div(L::set1(T(1)), L::add(L::set1(T(1)), e));
        L::store(p[0] + k, L::select_nonneg(z, d, L::mul(e, d)));
        if (keep_prime) L::store(p[1] + k, L::mul(e, L::mul(d, d)));
    });
}

// tanh'(z) = 4e/(1 + e)² with e = e^{−2|z|}, written over z.
template <class T> void tanh_prime(T* z_to_prime, std::size_t count) {
    using L = Lanes<T>;
    T* arrays[1] = {z_to_prime};
    over_vectors<T>(count, arrays, 1, 1, [](std::size_t k, T* const* p) {
        const auto e = exp_scaled_abs<T>(p[0] + k, T(-2));
        const auto d = L::div(L::set1(T(1)), L::add(L::set1(T(1)), e));
        L::store(p[0] + k, L::mul(L::mul(L::set1(T(4)), e), L::mul(d, d)));
    });
}

}  // namespace

void sigmoid_avx2(float* a, float* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void sigmoid_avx2(double* a, double* z, bool keep_prime, std::size_t count) { sigmoid(a, z, keep_prime, count); }
void tanh_prime_avx2(float* z, std::size_t count) { tanh_prime(z, count); }
void tanh_prime_avx2(double* z, std::size_t count) { tanh_prime(z, count); }

}  // namespace fastprop::simd
