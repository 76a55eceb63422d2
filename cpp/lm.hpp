// Levenberg–Marquardt for the network's own sum-of-squares error.
//
// With the residuals r = y − z_n (t·l_n of them) and the Jacobian J = ∂z_n/∂params
// (t·l_n × n_params), E = ||r||² has gradient −2 Jᵀr and Gauss–Newton Hessian 2 JᵀJ. One
// iteration solves (JᵀJ + μ I) Δ = Jᵀ r and moves the parameters by Δ when that lowers E
// (then μ ← μ·mu_dec); otherwise it tries again with μ ← μ·mu_inc, and past mu_max it has
// converged. Small μ makes it Gauss–Newton, large μ a short gradient step.
#pragma once

#include <cstddef>

#include "network.hpp"

namespace fastprop {

struct LmConfig {
    double mu = 1e-3, mu_dec = 0.1, mu_inc = 10.0, mu_max = 1e10;  // MATLAB trainlm's defaults
};

// The normal matrix JᵀJ holds n_params² doubles: 128 MiB at this limit.
constexpr std::size_t lm_max_params = 4096;

// J = ∂z_n/∂params for the t rows of X, by backpropagation: one backward pass per output
// unit j, starting from δ_n = e_j. J is (t·l_n, n_params); row s·l_n + j is ∂z_n[s, j]/∂params.
template <class T>
void jacobian(const Network<T>& net, const T* X, std::size_t t, double* J, Workspace<T>& ws,
              const Poll& poll = {});

// `options.epochs` iterations on the whole batch (batch_size and shuffle do not apply);
// config.mu is left at its last value, so that a later call continues. Only for the
// losses "sse" and "mse" and at most lm_max_params parameters (std::invalid_argument).
template <class T>
FitResult fit_lm(Network<T>& net, const T* X, const T* Y, std::size_t t,
                 const FitOptions<T>& options, LmConfig& config, const FitRecord& record,
                 Workspace<T>& ws, const FitHooks& hooks);

}  // namespace fastprop
