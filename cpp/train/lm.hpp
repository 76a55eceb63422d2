// Levenberg–Marquardt for the network's own sum-of-squares error.
//
// With the residuals r = y − z_n (t·l_n of them) and the Jacobian J = ∂z_n/∂params
// (t·l_n × n_params), E = ||r||² has gradient −2 Jᵀr and Gauss–Newton Hessian 2 JᵀJ. One
// iteration solves (JᵀJ + μ I) Δ = Jᵀ r and moves the parameters by Δ when that lowers E
// (then μ ← μ·mu_dec); otherwise it tries again with μ ← μ·mu_inc, and past mu_max it has
// converged. Small μ makes it Gauss–Newton, large μ a short gradient step.
//
// With sample weights w_s, E = Σ_s w_s ||r_s||² (weighted least squares): the rows of J and
// r of sample s are scaled by √w_s, so JᵀJ becomes Jᵀ diag(w) J and Jᵀr becomes Jᵀ diag(w) r.
//
// With weight_decay λ > 0 it minimises E + λ/2·||params||², the L2 penalty whose gradient is
// the λ·p the first-order optimisers add (with decay_biases false, λ/2·Σ||W_i||²: the b_i go
// unpenalised, as in scikit-learn's objective). For E = c·||r||² (c = 1 for sse, 1/(Σw·l_n)
// for mse) and κ = λ/(2c), one iteration solves (JᵀJ + μ I + κ D) Δ = Jᵀr − κ D p, D the
// diagonal of the penalised entries, and a step is kept when it lowers the penalised error.
// The epoch's loss is still E; λ and D are those of the fit's start. μ is kept at or above
// the smallest normal double, so that μ·mu_inc always grows back past mu_max.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "model/network.hpp"
#include "model/workspace.hpp"
#include "runtime/interrupt.hpp"
#include "train/passes.hpp"
#include "train/trainer.hpp"

namespace fastprop {

struct LmConfig {
    double mu = 1e-3, mu_dec = 0.1, mu_inc = 10.0, mu_max = 1e10;  // MATLAB trainlm's defaults
    double weight_decay = 0.0;  // λ of the penalty λ/2·||params||² (0: none)
    bool decay_biases = true;   // false: the penalty is on the W_i only
    void check() const;  // std::invalid_argument for a value out of range
};

// The normal matrix JᵀJ holds n_params² doubles: 128 MiB at this limit.
constexpr std::size_t lm_max_params = 4096;

// J = ∂z_n/∂params for the t rows of X, by backpropagation: one backward pass per output
// unit j, starting from δ_n = e_j. J is (t·l_n, n_params); row s·l_n + j is ∂z_n[s, j]/∂params.
template <class T>
void jacobian(const Model<T>& net, const T* X, std::size_t t, double* J, Workspace<T>& ws,
              const Poll& poll = {});

// The iterations of one fit: the buffers are allocated once, in the constructor, which also
// refuses (std::invalid_argument) a loss that is not a sum of squares and networks of more
// than lm_max_params parameters. config.mu is left at its last value, so
// that a later fit continues.
template <class T> class LevenbergMarquardt {
public:
    LevenbergMarquardt(Network<T>& net, Workspace<T>& ws, const Batch<T>& batch, LmConfig& config);
    ~LevenbergMarquardt();
    // One iteration from the current parameters: E_epoch receives E there; the network ends
    // at the accepted step, or where it was when μ ran out (converged) or on Ctrl-C.
    Stop iteration(const Poll& poll, double& E_epoch);

private:
    struct Normal;
    Network<T>& net_;
    Workspace<T>& ws_;
    Batch<T> batch_;
    LmConfig& config_;
    std::unique_ptr<Normal> ne_;
    std::vector<T> saved_;
    std::vector<double> decayed_;  // 1 for the entries the penalty covers, else 0 (D)
    double lambda_ = 0.0, kappa_ = 0.0;  // λ as the fit began, and κ = λ/(2c)
};

}  // namespace fastprop
