// The activation passes over a block of a layer: a = σ(z), and in training σ'(z) kept in z's
// place. Each activation's scalar σ and σ' (model/activations.hpp) define them; sigmoid and
// tanh have vector versions for AVX2 and AVX-512 (activations_avx2.cpp, activations_avx512.cpp)
// that give the same bits on both widths (tanh within 1 ulp of the correctly rounded value in
// float32 and 1.33 ulps of the exact one in float64; see activations_simd.inc).
#pragma once

#include <cstddef>

#include "model/activations.hpp"

namespace fastprop {

// a = σ(z) elementwise over count entries. NaN in z gives NaN in a.
template <class T> void apply_sigma(Activation f, T* a, const T* z, std::size_t count);

// The training pass: a = σ(z), and z overwritten by σ'(z), which is all that the backward
// pass needs of z_i (δ_i = (W_iᵀ δ_{i+1}) ⊙ σ'(z_i)), computed while e^{−|z|} is at hand.
template <class T> void apply_sigma_keep_prime(Activation f, T* a, T* z, std::size_t count);

}  // namespace fastprop
