// Hidden-layer activations: σ and σ' side by side, stable for every finite z.
//
// a_i = σ(z_i) for hidden layers; the backward pass needs σ'(z_i). Each σ' is taken from z
// in a form that stays exact where it is tiny: σ(z)(1 − σ(z)) from a rounded σ(z) = 1 would
// give 0 instead of e^{−z}.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace fastprop {

enum class Activation { sigmoid, tanh, relu, leaky_relu, softplus, identity };

constexpr const char* activation_names = "sigmoid, tanh, relu, leaky_relu, softplus, identity";
constexpr double leaky_relu_slope = 0.01;  // as torch.nn.LeakyReLU

inline Activation activation_from_name(const std::string& name) {
    if (name == "sigmoid") return Activation::sigmoid;
    if (name == "tanh") return Activation::tanh;
    if (name == "relu") return Activation::relu;
    if (name == "leaky_relu") return Activation::leaky_relu;
    if (name == "softplus") return Activation::softplus;
    if (name == "identity") return Activation::identity;
    throw std::invalid_argument("activation must be one of " + std::string(activation_names) +
                                "; got '" + name + "'");
}

inline const char* activation_name(Activation f) {
    switch (f) {
        case Activation::sigmoid: return "sigmoid";
        case Activation::tanh: return "tanh";
        case Activation::relu: return "relu";
        case Activation::leaky_relu: return "leaky_relu";
        case Activation::softplus: return "softplus";
        case Activation::identity: return "identity";
    }
    return "?";
}

// 1 / (1 + e^{-z}) without overflow: exp is only ever taken of a non-positive number.
template <class T> inline T sigmoid(T z) {
    if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
    const T e = std::exp(z);
    return e / (T(1) + e);
}

// log(1 + e^z) = max(z, 0) + log1p(e^{-|z|}): exact for large |z|, no overflow.
template <class T> inline T softplus(T z) {
    return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
}

// a = σ(z) elementwise over count entries. NaN in z gives NaN in a.
template <class T> void apply_sigma(Activation f, T* a, const T* z, std::size_t count);

// The training pass: a = σ(z), and z overwritten by σ'(z), which is all that the backward
// pass needs of z_i (δ_i = (W_iᵀ δ_{i+1}) ⊙ σ'(z_i)), computed while e^{−|z|} is at hand.
template <class T> void apply_sigma_keep_prime(Activation f, T* a, T* z, std::size_t count);

}  // namespace fastprop
