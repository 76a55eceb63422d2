// elementwise.hpp's loops built with -mavx2 (and without -mfma: a fused multiply-add would
// round p − lr·g differently from the portable build). Called by elementwise.cpp after a CPU
// check.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace fastprop::elementwise::avx2 {

namespace {
#include "elementwise_loops.inc"
}  // namespace

template <class T> void add(T* y, const T* x, std::size_t n) { add_loop(y, x, n); }
template <class T> bool all_finite(const T* v, std::size_t n) { return all_finite_loop(v, n); }
template <class T> void sgd(T* p, const T* g, T lr, std::size_t n) { sgd_loop(p, g, lr, n); }
template <class T> void add_row(T* z, std::size_t ldz, const T* b, std::size_t m, std::size_t n) {
    add_row_loop(z, ldz, b, m, n);
}
template <class T> void sum_rows(T* y, const T* x, std::size_t ldx, std::size_t m, std::size_t n) {
    sum_rows_loop(y, x, ldx, m, n);
}
template <class T>
void multiply(T* d, std::size_t ldd, const T* s, std::size_t lds, std::size_t m, std::size_t n) {
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

}  // namespace fastprop::elementwise::avx2
