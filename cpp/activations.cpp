#include "activations.hpp"

#include "cpu.hpp"

namespace fastprop {

namespace simd {
#if defined(FASTPROP_AVX2)  // activations_avx2.cpp, activations_avx512.cpp
void sigmoid_avx2(float* a, float* z, bool keep_prime, std::size_t count);
void sigmoid_avx2(double* a, double* z, bool keep_prime, std::size_t count);
void tanh_prime_avx2(float* z, std::size_t count);
void tanh_prime_avx2(double* z, std::size_t count);
void sigmoid_avx512(float* a, float* z, bool keep_prime, std::size_t count);
void sigmoid_avx512(double* a, double* z, bool keep_prime, std::size_t count);
void tanh_prime_avx512(float* z, std::size_t count);
void tanh_prime_avx512(double* z, std::size_t count);
#else  // never called: kernel_isa() is portable
template <class T> void sigmoid_avx2(T*, T*, bool, std::size_t) {}
template <class T> void tanh_prime_avx2(T*, std::size_t) {}
template <class T> void sigmoid_avx512(T*, T*, bool, std::size_t) {}
template <class T> void tanh_prime_avx512(T*, std::size_t) {}
#endif

// The vector paths: false where only the scalar code may run. Both widths give the same bits.
template <class T> bool sigmoid_vector(T* a, T* z_or_prime, bool keep_prime, std::size_t count) {
    switch (kernel_isa()) {
        case Isa::avx512: sigmoid_avx512(a, z_or_prime, keep_prime, count); return true;
        case Isa::avx2: sigmoid_avx2(a, z_or_prime, keep_prime, count); return true;
        default: return false;
    }
}

template <class T> bool tanh_prime_vector(T* z_to_prime, std::size_t count) {
    switch (kernel_isa()) {
        case Isa::avx512: tanh_prime_avx512(z_to_prime, count); return true;
        case Isa::avx2: tanh_prime_avx2(z_to_prime, count); return true;
        default: return false;
    }
}
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
            if (simd::sigmoid_vector(a, const_cast<T*>(z), false, count)) return;  // reads z only
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
            if (simd::sigmoid_vector(a, z, true, count)) return;
            for (std::size_t k = 0; k < count; ++k) {
                a[k] = sigmoid(z[k]);
                z[k] = sigmoid_prime(z[k]);
            }
            return;
        case Activation::tanh:
            for (std::size_t k = 0; k < count; ++k) a[k] = std::tanh(z[k]);
            if (simd::tanh_prime_vector(z, count)) return;
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
