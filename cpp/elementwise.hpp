// Elementwise loops: over whole parameter-sized vectors between two training steps (the two
// halves' gradients summed, the sum checked for inf and NaN, plain SGD's update), on two
// threads from 2^16 entries on, and over the blocks of a layer's product (bias, bias
// gradient, δ ⊙ σ', relu, the gradient's check for inf and NaN). Where their data is in L1 or
// L2 they are instruction-bound, so where the CPU has AVX2 or AVX-512 they run from
// elementwise_avx2.cpp or elementwise_avx512.cpp, 8 or 16 floats per instruction instead of
// 4; the long vectors of large networks stream from L3 or memory, hence the second thread.
// The arithmetic per element is the same (no fused multiply-add in any build), and so are
// the results, bit for bit.
#pragma once

#include <cstddef>

namespace fastprop::elementwise {

template <class T> void add(T* y, const T* x, std::size_t n);        // y += x
template <class T> bool all_finite(const T* v, std::size_t n);       // no inf, no NaN
template <class T> void sgd(T* p, const T* g, T lr, std::size_t n);  // p -= lr g

// The same for the per-layer passes on (m, n) blocks of row-major matrices with leading
// dimensions, run on each block of a layer's product (kernels.cpp), on the calling thread:
// no inf and no NaN in the block
template <class T> bool all_finite_rows(const T* v, std::size_t ld, std::size_t m, std::size_t n);
// z[r][j] += b[j]                 (the bias, added to every row)
template <class T> void add_row(T* z, std::size_t ldz, const T* b, std::size_t m, std::size_t n);
// y[j] += x[0][j] + … in row order (the bias gradient, a sum over samples)
template <class T>
void sum_rows(T* y, const T* x, std::size_t ldx, std::size_t m, std::size_t n);
// d[r][j] *= s[r][j]              (δ ⊙ σ')
template <class T>
void multiply(T* d, std::size_t ldd, const T* s, std::size_t lds, std::size_t m, std::size_t n);

// The forward tail of a relu layer in one pass: v = z[r][j] + b[j] (b may be null), then
// a[r][j] = σ(v) and z[r][j] = σ'(v) when keep_prime, else v. σ is relu for slope 0
// (σ(v) = v < 0 ? 0 : v, which keeps −0 and NaN) and leaky relu otherwise
// (σ(v) = v < 0 ? slope·v : v).
template <class T>
void bias_relu(T* z, std::size_t ldz, const T* b, T* a, std::size_t lda, std::size_t m,
               std::size_t n, double slope, bool keep_prime);

}  // namespace fastprop::elementwise
