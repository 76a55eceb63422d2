// Loops over whole parameter-sized vectors that run between two training steps, on one
// thread while any other waits: the two halves' gradients summed, the sum checked for inf and
// NaN, plain SGD's update. They are instruction-bound (a W2 step's gradient fits in L1), so
// where the CPU has AVX2 they run from elementwise_avx2.cpp, 8 floats or 4 doubles per
// instruction instead of 4 or 2. The arithmetic per element is the same (no fused
// multiply-add in either build), and so are the results, bit for bit.
#pragma once

#include <cstddef>

namespace fastprop::elementwise {

template <class T> void add(T* y, const T* x, std::size_t n);        // y += x
template <class T> bool all_finite(const T* v, std::size_t n);       // no inf, no NaN
template <class T> void sgd(T* p, const T* g, T lr, std::size_t n);  // p -= lr g

}  // namespace fastprop::elementwise
