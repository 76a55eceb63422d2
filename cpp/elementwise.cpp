#include "elementwise.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "cpu.hpp"

namespace fastprop::elementwise {

#if defined(FASTPROP_AVX2)
namespace avx2 {  // elementwise_avx2.cpp: the same, built with -mavx2
template <class T> void add(T* y, const T* x, std::size_t n);
template <class T> bool all_finite(const T* v, std::size_t n);
template <class T> void sgd(T* p, const T* g, T lr, std::size_t n);
template <class T> void add_row(T* z, std::size_t ldz, const T* b, std::size_t m, std::size_t n);
template <class T> void sum_rows(T* y, const T* x, std::size_t ldx, std::size_t m, std::size_t n);
template <class T>
void multiply(T* d, std::size_t ldd, const T* s, std::size_t lds, std::size_t m, std::size_t n);
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

template <class T> void add_row(T* z, std::size_t ldz, const T* b, std::size_t m, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::add_row(z, ldz, b, m, n);
#endif
    add_row_loop(z, ldz, b, m, n);
}

template <class T> void sum_rows(T* y, const T* x, std::size_t ldx, std::size_t m, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::sum_rows(y, x, ldx, m, n);
#endif
    sum_rows_loop(y, x, ldx, m, n);
}

template <class T>
void multiply(T* d, std::size_t ldd, const T* s, std::size_t lds, std::size_t m, std::size_t n) {
#if defined(FASTPROP_AVX2)
    if (cpu_has_avx2_fma()) return avx2::multiply(d, ldd, s, lds, m, n);
#endif
    multiply_loop(d, ldd, s, lds, m, n);
}

#define FASTPROP_INSTANTIATE(T)                                                                \
    template void add<T>(T*, const T*, std::size_t);                                           \
    template bool all_finite<T>(const T*, std::size_t);                                        \
    template void sgd<T>(T*, const T*, T, std::size_t);                                        \
    template void add_row<T>(T*, std::size_t, const T*, std::size_t, std::size_t);             \
    template void sum_rows<T>(T*, const T*, std::size_t, std::size_t, std::size_t);            \
    template void multiply<T>(T*, std::size_t, const T*, std::size_t, std::size_t, std::size_t);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop::elementwise
