// Elementwise loops: over whole parameter-sized vectors between two training steps (the two
// halves' gradients summed, the sum checked for inf and NaN, plain SGD's update), on two
// threads from 2^16 entries on, and over the blocks of a layer's product (bias, bias
// gradient, δ ⊙ σ', relu, the gradient's check for inf and NaN). Where their data is in L1 or
// L2 they are instruction-bound, so where the CPU has AVX2 or AVX-512 they run from
// elementwise_avx2.cpp or elementwise_avx512.cpp, 8 or 16 floats per instruction instead of
// 4; the long vectors of large networks stream from L3 or memory, hence the second thread.
// The arithmetic per element is the same (no fused multiply-add in any build), and so are
// the results, bit for bit.
//
// Adding an operation: one entry in a list below (its result, name, parameters and the names
// they pass on) and its loop, `name_loop`, in elementwise_loops.inc. The declarations, the
// instruction-set builds and the dispatch follow from the lists.
#pragma once

#include <cstddef>

namespace fastprop::elementwise {

// The constants of one Adam step (train/optimizer.hpp).
template <class T> struct AdamStep {
    T beta1, beta2, weight_decay, step_size, bc2_sqrt, eps, decay;
    bool decoupled;  // AdamW: p ← p·decay instead of λp added to the gradient
};

// Over whole parameter-sized vectors, split over two threads from 2^16 entries on:
//   add          y += x
//   all_finite   no inf and no NaN in v
//   sgd          p −= lr g
//   sgd_keep     p −= lr g, keeping the previous p in g; true when every new p is finite
//                (when not, copying g back into p undoes the update exactly)
//   adam         torch.optim.Adam's step (AdamW's with `decoupled`), every moment of every
//                entry decayed each step (train/optimizer.hpp states it): d = g + λp (or
//                p ← p·decay), m ← m + (1 − β1)(d − m), v ← β2 v + (1 − β2) d², then
//                p −= step_size · m / (√v / bc2_sqrt + eps); one pass over p, g, m and v
//   adam_is_finite  whether every p adam would write is finite (nothing written)
#define FASTPROP_ELEMENTWISE_VECTOR_OPS(X)                                                     \
    X(void, add, (T * y, const T* x, std::size_t n), (y, x, n))                                \
    X(bool, all_finite, (const T* v, std::size_t n), (v, n))                                   \
    X(void, sgd, (T * p, const T* g, T lr, std::size_t n), (p, g, lr, n))                      \
    X(bool, sgd_keep, (T * p, T* g, T lr, std::size_t n), (p, g, lr, n))                       \
    X(void, adam,                                                                              \
      (T * p, T* m, T* v, const T* g, const AdamStep<T>& c, std::size_t n),                    \
      (p, m, v, g, c, n))                                                                      \
    X(bool, adam_is_finite,                                                                    \
      (const T* p, const T* m, const T* v, const T* g, const AdamStep<T>& c, std::size_t n),   \
      (p, m, v, g, c, n))

// Over (m, n) blocks of row-major matrices with leading dimensions, on the calling thread
// (run on each block of a layer's product, kernels/dense.cpp):
//   all_finite_rows   no inf and no NaN in the block
//   sum_rows          y[j] += x[0][j] + … in row order (the bias gradient, a sum over samples)
//   multiply          d[r][j] *= s[r][j]  (δ ⊙ σ')
//   bias_relu         the forward tail of a relu layer in one pass: v = z[r][j] + b[j] (b may
//                     be null), then a[r][j] = σ(v) and z[r][j] = σ'(v) when keep_prime, else
//                     v. σ is relu for slope 0 (σ(v) = v < 0 ? 0 : v, which keeps −0 and NaN)
//                     and leaky relu otherwise (σ(v) = v < 0 ? slope·v : v).
//   outer             y[r][j] = d[r] x[j]  (one sample's ∂E/∂W_i = δ_{i+1} a_iᵀ, per_sample.cpp)
#define FASTPROP_ELEMENTWISE_BLOCK_OPS(X)                                                      \
    X(void, outer, (T * y, std::size_t ldy, const T* d, const T* x, std::size_t m,            \
                    std::size_t n),                                                            \
      (y, ldy, d, x, m, n))                                                                    \
    X(bool, all_finite_rows, (const T* v, std::size_t ld, std::size_t m, std::size_t n),        \
      (v, ld, m, n))                                                                           \
    X(void, sum_rows, (T * y, const T* x, std::size_t ldx, std::size_t m, std::size_t n),      \
      (y, x, ldx, m, n))                                                                       \
    X(void, multiply,                                                                          \
      (T * d, std::size_t ldd, const T* s, std::size_t lds, std::size_t m, std::size_t n),     \
      (d, ldd, s, lds, m, n))                                                                  \
    X(void, bias_relu,                                                                         \
      (T * z, std::size_t ldz, const T* b, T* a, std::size_t lda, std::size_t m,               \
       std::size_t n, double slope, bool keep_prime),                                          \
      (z, ldz, b, a, lda, m, n, slope, keep_prime))

#define FASTPROP_ELEMENTWISE_OPS(X) FASTPROP_ELEMENTWISE_VECTOR_OPS(X) FASTPROP_ELEMENTWISE_BLOCK_OPS(X)

#define FASTPROP_DECLARE(ret, name, params, args) template <class T> ret name params;
FASTPROP_ELEMENTWISE_OPS(FASTPROP_DECLARE)
#undef FASTPROP_DECLARE

}  // namespace fastprop::elementwise
