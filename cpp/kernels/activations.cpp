#include "kernels/activations.hpp"

#include <cmath>

#include "runtime/cpu.hpp"

namespace fastprop {

namespace simd {
#if defined(FASTPROP_AVX2)  // activations_avx2.cpp, activations_avx512.cpp
void sigmoid_avx2(float* a, float* z, bool keep_prime, std::size_t count);
void sigmoid_avx2(double* a, double* z, bool keep_prime, std::size_t count);
void tanh_avx2(float* a, float* z, bool keep_prime, std::size_t count);
void tanh_avx2(double* a, double* z, bool keep_prime, std::size_t count);
void sigmoid_avx512(float* a, float* z, bool keep_prime, std::size_t count);
void sigmoid_avx512(double* a, double* z, bool keep_prime, std::size_t count);
void tanh_avx512(float* a, float* z, bool keep_prime, std::size_t count);
void tanh_avx512(double* a, double* z, bool keep_prime, std::size_t count);
#else  // never called: kernel_isa() is portable
template <class T> void sigmoid_avx2(T*, T*, bool, std::size_t) {}
template <class T> void tanh_avx2(T*, T*, bool, std::size_t) {}
template <class T> void sigmoid_avx512(T*, T*, bool, std::size_t) {}
template <class T> void tanh_avx512(T*, T*, bool, std::size_t) {}
#endif

// The vector paths: false where only the scalar code may run. Both widths give the same bits.
// The portable build keeps std::exp and std::tanh (model/activations.hpp): a scalar copy of
// the vector sequence would need std::fma, a slow library call without FMA hardware, to give
// the vectors' bits, and the portable path is the one for such machines; so its σ (and, for
// sigmoid, σ') may differ from the vector paths' in the last bits, within a few ulps.
template <class T> bool sigmoid_vector(T* a, T* z_or_prime, bool keep_prime, std::size_t count) {
    switch (kernel_isa()) {
        case Isa::avx512: sigmoid_avx512(a, z_or_prime, keep_prime, count); return true;
        case Isa::avx2: sigmoid_avx2(a, z_or_prime, keep_prime, count); return true;
        default: return false;
    }
}

template <class T> bool tanh_vector(T* a, T* z_or_prime, bool keep_prime, std::size_t count) {
    switch (kernel_isa()) {
        case Isa::avx512: tanh_avx512(a, z_or_prime, keep_prime, count); return true;
        case Isa::avx2: tanh_avx2(a, z_or_prime, keep_prime, count); return true;
        default: return false;
    }
}
}  // namespace simd

template <class T> void apply_sigma(Activation f, T* a, const T* z, std::size_t count) {
    if (f == Activation::sigmoid && simd::sigmoid_vector(a, const_cast<T*>(z), false, count))
        return;  // reads z only
    if (f == Activation::tanh && simd::tanh_vector(a, const_cast<T*>(z), false, count))
        return;  // reads z only
    visit(f, [&](auto act) {
        for (std::size_t k = 0; k < count; ++k) a[k] = decltype(act)::sigma(z[k]);
    });
}

template <class T> void apply_sigma_keep_prime(Activation f, T* a, T* z, std::size_t count) {
    if (f == Activation::sigmoid && simd::sigmoid_vector(a, z, true, count)) return;
    if (f == Activation::tanh && simd::tanh_vector(a, z, true, count)) return;
    visit(f, [&](auto act) {
        for (std::size_t k = 0; k < count; ++k) a[k] = decltype(act)::sigma(z[k]);
    });
    visit(f, [&](auto act) {
        for (std::size_t k = 0; k < count; ++k) z[k] = decltype(act)::sigma_prime(z[k]);
    });
}

template void apply_sigma<float>(Activation, float*, const float*, std::size_t);
template void apply_sigma<double>(Activation, double*, const double*, std::size_t);
template void apply_sigma_keep_prime<float>(Activation, float*, float*, std::size_t);
template void apply_sigma_keep_prime<double>(Activation, double*, double*, std::size_t);

}  // namespace fastprop
