#include "elementwise.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu.hpp"

namespace fastprop::elementwise {

#if defined(FASTPROP_AVX2)
namespace avx2 {  // elementwise_avx2.cpp
void add(float* y, const float* x, std::size_t n);
void add(double* y, const double* x, std::size_t n);
bool all_finite(const float* v, std::size_t n);
bool all_finite(const double* v, std::size_t n);
void sgd(float* p, const float* g, float lr, std::size_t n);
void sgd(double* p, const double* g, double lr, std::size_t n);
}  // namespace avx2
#endif

namespace {
#include "elementwise_loops.inc"
}  // namespace

template <class T> void add(T* y, const T* x, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::add(y, x, n);
#endif
    add_loop(y, x, n);
}

template <class T> bool all_finite(const T* v, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::all_finite(v, n);
#endif
    return all_finite_loop(v, n);
}

template <class T> void sgd(T* p, const T* g, T lr, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::sgd(p, g, lr, n);
#endif
    sgd_loop(p, g, lr, n);
}

template void add<float>(float*, const float*, std::size_t);
template void add<double>(double*, const double*, std::size_t);
template bool all_finite<float>(const float*, std::size_t);
template bool all_finite<double>(const double*, std::size_t);
template void sgd<float>(float*, const float*, float, std::size_t);
template void sgd<double>(double*, const double*, double, std::size_t);

}  // namespace fastprop::elementwise
