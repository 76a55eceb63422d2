// Hidden-layer activations: σ and σ' side by side, one struct each, stable for every finite z.
//
// a_i = σ(z_i) for the hidden layers; the backward pass needs σ'(z_i). Each σ' is taken from
// z in a form that stays exact where it is tiny: σ(z)(1 − σ(z)) from a rounded σ(z) = 1 would
// give 0 instead of e^{−z}.
//
// Adding an activation: a struct below (name, σ, σ', and whether He's initialisation suits
// it), its entry in the enum and in `Activations`, in this order. Everything else (names,
// parsing, the passes over a layer, the Python enum) follows from these lists; the vector
// kernels in kernels/ are optional speed-ups for particular activations.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace fastprop {

enum class Activation { sigmoid, tanh, relu, leaky_relu, softplus, identity };

constexpr double leaky_relu_slope = 0.01;  // as torch.nn.LeakyReLU

namespace activation {

// 1 / (1 + e^{-z}) without overflow: exp is only ever taken of a non-positive number.
// σ'(z) = σ(z) σ(−z) = e / (1 + e)² with e = e^{−|z|}.
struct Sigmoid {
    static constexpr Activation id = Activation::sigmoid;
    static constexpr const char* name = "sigmoid";
    static constexpr bool he_init = false;
    template <class T> static T sigma(T z) {
        if (z >= T(0)) return T(1) / (T(1) + std::exp(-z));
        const T e = std::exp(z);
        return e / (T(1) + e);
    }
    template <class T> static T sigma_prime(T z) {
        const T e = std::exp(-std::abs(z));
        return e / ((T(1) + e) * (T(1) + e));
    }
};

// tanh'(z) = 1 − tanh²(z) = 4e / (1 + e)² with e = e^{−2|z|}, exact for large |z| too.
struct Tanh {
    static constexpr Activation id = Activation::tanh;
    static constexpr const char* name = "tanh";
    static constexpr bool he_init = false;
    template <class T> static T sigma(T z) { return std::tanh(z); }
    template <class T> static T sigma_prime(T z) {
        const T e = std::exp(T(-2) * std::abs(z));
        return T(4) * e / ((T(1) + e) * (T(1) + e));
    }
};

// z < 0 ? 0 : z keeps NaN and −0; σ'(0) = 0, as torch.
struct Relu {
    static constexpr Activation id = Activation::relu;
    static constexpr const char* name = "relu";
    static constexpr bool he_init = true;
    template <class T> static T sigma(T z) { return z < T(0) ? T(0) : z; }
    template <class T> static T sigma_prime(T z) { return z > T(0) ? T(1) : T(0); }
};

struct LeakyRelu {
    static constexpr Activation id = Activation::leaky_relu;
    static constexpr const char* name = "leaky_relu";
    static constexpr bool he_init = true;
    template <class T> static T sigma(T z) { return z < T(0) ? T(leaky_relu_slope) * z : z; }
    template <class T> static T sigma_prime(T z) { return z > T(0) ? T(1) : T(leaky_relu_slope); }
};

// log(1 + e^z) = max(z, 0) + log1p(e^{−|z|}): exact for large |z|, no overflow; σ' = sigmoid.
struct Softplus {
    static constexpr Activation id = Activation::softplus;
    static constexpr const char* name = "softplus";
    static constexpr bool he_init = false;
    template <class T> static T sigma(T z) {
        return std::max(z, T(0)) + std::log1p(std::exp(-std::abs(z)));
    }
    template <class T> static T sigma_prime(T z) { return Sigmoid::sigma(z); }
};

struct Identity {
    static constexpr Activation id = Activation::identity;
    static constexpr const char* name = "identity";
    static constexpr bool he_init = false;
    template <class T> static T sigma(T z) { return z; }
    template <class T> static T sigma_prime(T) { return T(1); }
};

}  // namespace activation

// Every activation, in the order of the enum.
using Activations = std::tuple<activation::Sigmoid, activation::Tanh, activation::Relu,
                               activation::LeakyRelu, activation::Softplus,
                               activation::Identity>;
constexpr std::size_t n_activations = std::tuple_size_v<Activations>;

namespace detail {
template <std::size_t... k> constexpr bool ids_in_order(std::index_sequence<k...>) {
    return ((std::tuple_element_t<k, Activations>::id == Activation(k)) && ...);
}
}  // namespace detail
static_assert(detail::ids_in_order(std::make_index_sequence<n_activations>()),
              "Activations must list the structs in the order of the enum");

// fn(the struct of f), e.g. visit(f, [](auto a) { return decltype(a)::name; }); fn must
// return the same type for every activation.
template <std::size_t k = 0, class F> decltype(auto) visit(Activation f, F&& fn) {
    if constexpr (k + 1 == n_activations) {
        return fn(std::tuple_element_t<k, Activations>{});
    } else {
        if (f == Activation(k)) return fn(std::tuple_element_t<k, Activations>{});
        return visit<k + 1>(f, std::forward<F>(fn));
    }
}

inline const char* activation_name(Activation f) {
    return visit(f, [](auto a) { return decltype(a)::name; });
}

// "sigmoid, tanh, ...": for messages.
inline std::string activation_names() {
    std::string out;
    for (std::size_t k = 0; k < n_activations; ++k)
        out += (k ? ", " : "") + std::string(activation_name(Activation(k)));
    return out;
}

inline Activation activation_from_name(const std::string& name) {
    for (std::size_t k = 0; k < n_activations; ++k)
        if (name == activation_name(Activation(k))) return Activation(k);
    throw std::invalid_argument("activation must be one of " + activation_names() + "; got '" +
                                name + "'");
}

inline bool he_init(Activation f) {
    return visit(f, [](auto a) { return decltype(a)::he_init; });
}

}  // namespace fastprop
