// Per-layer passes on raw row-major buffers: samples are rows, t of them.
//
// Outputs first, then inputs, then sizes. Each kernel *writes* its outputs (or adds to
// them when `accumulate`, for a batch processed in chunks), summing over samples inside,
// always in sample order, so a result does not depend on how the work is split.
#pragma once

#include <atomic>
#include <cstddef>

#include "kernels/activations.hpp"

namespace fastprop {

// What follows z_{i+1} in a hidden layer: a_{i+1} = σ(z_{i+1}) (t, l_out) into a_next, and,
// when keep_prime, σ'(z_{i+1}) written over z_{i+1}: all that the backward pass needs of it.
template <class T> struct Activate {
    Activation sigma;
    T* a_next;
    bool keep_prime;
};

// z_{i+1} = a_i W_iᵀ + b_i    a_i (t, l_in), W_i (l_out, l_in), b_i (l_out) or null -> (t, l_out)
// then `activate` when given, on each block of z_{i+1} as soon as the product completes it.
template <class T>
void dense_forward(T* z_next, const T* a, const T* W, const T* b, std::size_t t,
                   std::size_t l_in, std::size_t l_out, const Activate<T>* activate = nullptr);

// Raised by dense_backward when a gradient it wrote holds inf or NaN, checked on each tile of
// ∂E/∂W_i in registers before it is stored (tiles run on any thread, hence the atomic).
struct NonFinite {
    mutable std::atomic<bool> seen{false};
};

// forward was z_{i+1} = a_i W_iᵀ + b_i, so with delta_next = δ_{i+1} (t, l_out):
//   dE_dW = δ_{i+1}ᵀ a_i (l_out, l_in)   dE_db = Σ_s δ_{i+1} (l_out)   dE_da = δ_{i+1} W_i (t, l_in)
// dE_db may be null (no bias), dE_da null (i = 0, nothing below to propagate to) and dE_dW
// null (only δ is wanted, as when building a Jacobian).
// dE_dW and dE_db are added to when `accumulate`; dE_da is always written, and multiplied
// elementwise by sigma_prime (t, l_in) when given: δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i).
// With `check`, inf or NaN in dE_dW or dE_db (as written or summed) raises check->seen.
template <class T>
void dense_backward(T* dE_da, T* dE_dW, T* dE_db, const T* delta_next, const T* a, const T* W,
                    std::size_t t, std::size_t l_in, std::size_t l_out, bool accumulate,
                    const T* sigma_prime = nullptr, const NonFinite* check = nullptr);

// The same two passes as plain loops: the definition the fast kernels are tested against.
// No output may overlap an input (inputs may overlap each other).
template <class T>
void dense_forward_plain(T* z_next, const T* a, const T* W, const T* b, std::size_t t,
                         std::size_t l_in, std::size_t l_out);
template <class T>
void dense_backward_plain(T* dE_da, T* dE_dW, T* dE_db, const T* delta_next, const T* a,
                          const T* W, std::size_t t, std::size_t l_in, std::size_t l_out,
                          bool accumulate);

}  // namespace fastprop
