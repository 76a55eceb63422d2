#include "activations.hpp"

#include "cpu.hpp"

namespace fastprop {

namespace simd {
#if defined(FASTPROP_AVX2)  // activations_avx2.cpp
void sigmoid_avx2(float* a, float* z, bool keep_prime, std::size_t count);
void sigmoid_avx2(double* a, double* z, bool keep_prime, std::size_t count);
void tanh_prime_avx2(float* z, std::size_t count);
void tanh_prime_avx2(double* z, std::size_t count);
#else  // never called: cpu_has_avx2_fma() is false
template <class T> void sigmoid_avx2(T*, T*, bool, std::size_t) {}
template <class T> void tanh_prime_avx2(T*, std::size_t) {}
#endif
}  // namespace simd

namespace {

// σ'(z) = σ(z) σ(−z) = e / (1 + e)² with e = e^{−|z|}: exact where it is tiny, where
// σ(z)(1 − σ(z)) from a rounded σ(z) = 1 would give 0.
template <class T> inline T sigmoid_prime(T z) {
    const T e = std::exp(-std::abs(z));
    return e / ((T(1) + e) * (T(1) + e));
}

// tanh'(z) = 1 − tanh²(z) = 4e / (1 + e)² with e = e^{−2|z|}, exact for large |z| too.
template <class T> inline T tanh_prime(T z) {
    const T e = std::exp(T(-2) * std::abs(z));
    return T(4) * e / ((T(1) + e) * (T(1) + e));
}

}  // namespace

template <class T> void apply_sigma(Activation f, T* a, const T* z, std::size_t count) {
    const T slope = T(leaky_relu_slope);
    switch (f) {
        case Activation::sigmoid:
            if (cpu_has_avx2_fma()) {  // reads z only: keep_prime is false
                simd::sigmoid_avx2(a, const_cast<T*>(z), false, count);
                return;
            }
            for (std::size_t k = 0; k < count; ++k) a[k] = sigmoid(z[k]);
            return;
        case Activation::tanh:
            for (std::size_t k = 0; k < count; ++k) a[k] = std::tanh(z[k]);
            return;
        case Activation::relu:  // z < 0 ? 0 : z keeps NaN
            for (std::size_t k = 0; k < count; ++k) a[k] = z[k] < T(0) ? T(0) : z[k];
            return;
        case Activation::leaky_relu:
            for (std::size_t k = 0; k < count; ++k) a[k] = z[k] < T(0) ? slope * z[k] : z[k];
            return;
        case Activation::softplus:
            for (std::size_t k = 0; k < count; ++k) a[k] = softplus(z[k]);
            return;
        case Activation::identity:
            std::copy(z, z + count, a);
            return;
    }
}

template <class T> void apply_sigma_keep_prime(Activation f, T* a, T* z, std::size_t count) {
    const T slope = T(leaky_relu_slope);
    switch (f) {
        case Activation::sigmoid:
            if (cpu_has_avx2_fma()) {
                simd::sigmoid_avx2(a, z, true, count);
                return;
            }
            for (std::size_t k = 0; k < count; ++k) {
                a[k] = sigmoid(z[k]);
                z[k] = sigmoid_prime(z[k]);
            }
            return;
        case Activation::tanh:
            for (std::size_t k = 0; k < count; ++k) a[k] = std::tanh(z[k]);
            if (cpu_has_avx2_fma()) {
                simd::tanh_prime_avx2(z, count);
                return;
            }
            for (std::size_t k = 0; k < count; ++k) z[k] = tanh_prime(z[k]);
            return;
        case Activation::relu:
            for (std::size_t k = 0; k < count; ++k) {
                a[k] = z[k] < T(0) ? T(0) : z[k];
                z[k] = z[k] > T(0) ? T(1) : T(0);
            }
            return;
        case Activation::leaky_relu:
            for (std::size_t k = 0; k < count; ++k) {
                a[k] = z[k] < T(0) ? slope * z[k] : z[k];
                z[k] = z[k] > T(0) ? T(1) : slope;
            }
            return;
        case Activation::softplus:  // softplus' = sigmoid
            for (std::size_t k = 0; k < count; ++k) {
                a[k] = softplus(z[k]);
                z[k] = sigmoid(z[k]);
            }
            return;
        case Activation::identity:
            std::copy(z, z + count, a);
            std::fill(z, z + count, T(1));
            return;
    }
}

template void apply_sigma<float>(Activation, float*, const float*, std::size_t);
template void apply_sigma<double>(Activation, double*, const double*, std::size_t);
template void apply_sigma_keep_prime<float>(Activation, float*, float*, std::size_t);
template void apply_sigma_keep_prime<double>(Activation, double*, double*, std::size_t);

}  // namespace fastprop
