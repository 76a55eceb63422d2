// Parameter updates, with the semantics of torch.optim so that trajectories can be compared
// step for step. State buffers share the parameter buffer's layout and are owned by the
// caller (they outlive a fit call), so an update is one flat loop over n_params entries.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "elementwise.hpp"

namespace fastprop {

enum class Method { sgd, adam, adamw, rprop };

struct OptimizerConfig {
    Method method = Method::sgd;
    double lr = 0.01;
    double weight_decay = 0.0;  // L2: λ·p added to the gradient (adamw: decoupled decay)
    double momentum = 0.0;      // sgd; torch's dampening = 0
    bool nesterov = false;      // sgd
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;              // adam, adamw
    double eta_minus = 0.5, eta_plus = 1.2;                     // rprop
    double step_min = 1e-6, step_max = 50.0;                    // rprop
};

// m: sgd's momentum buffer, adam's first moment, rprop's previous gradient.
// v: adam's second moment, rprop's per-parameter step sizes (start at lr).
// steps: updates done so far (adam's bias correction; sgd's first momentum step).
template <class T> struct OptimizerState {
    T* m = nullptr;
    T* v = nullptr;
    std::uint64_t steps = 0;
};

// Which state buffers a configuration needs: 0, 1 (m) or 2 (m and v).
inline int state_buffers(const OptimizerConfig& c) {
    switch (c.method) {
        case Method::sgd: return c.momentum != 0.0 ? 1 : 0;
        case Method::adam:
        case Method::adamw:
        case Method::rprop: return 2;
    }
    return 0;
}

// One update of p (n entries) with gradient g. The formulas follow torch.optim's
// single-tensor implementations line by line.
template <class T>
void update(const OptimizerConfig& c, OptimizerState<T>& s, T* p, const T* g, std::size_t n) {
    const T lr = T(c.lr), wd = T(c.weight_decay);
    const bool first = s.steps == 0;
    ++s.steps;
    switch (c.method) {
        case Method::sgd: {
            if (c.momentum == 0.0 && c.weight_decay == 0.0) {  // the model's dW_i = −m ∂E/∂W_i
                elementwise::sgd(p, g, lr, n);
                return;
            }
            if (c.momentum == 0.0) {
                for (std::size_t k = 0; k < n; ++k) p[k] -= lr * (g[k] + wd * p[k]);
                return;
            }
            const T mu = T(c.momentum);
            for (std::size_t k = 0; k < n; ++k) {
                const T d = g[k] + wd * p[k];
                s.m[k] = first ? d : mu * s.m[k] + d;  // buf = μ buf + d
                p[k] -= lr * (c.nesterov ? d + mu * s.m[k] : s.m[k]);
            }
            return;
        }
        case Method::adam:
        case Method::adamw: {
            const bool decoupled = c.method == Method::adamw;
            const T b1 = T(c.beta1), b2 = T(c.beta2), eps = T(c.eps);
            const double t = double(s.steps);
            const T step_size = T(c.lr / (1.0 - std::pow(c.beta1, t)));
            const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(c.beta2, t)));
            const T decay = T(1.0 - c.lr * c.weight_decay);
            for (std::size_t k = 0; k < n; ++k) {
                T d = g[k];
                if (decoupled)
                    p[k] *= decay;  // p ← p (1 − lr λ)
                else
                    d += wd * p[k];
                s.m[k] += (T(1) - b1) * (d - s.m[k]);             // m ← β1 m + (1 − β1) g
                s.v[k] = b2 * s.v[k] + (T(1) - b2) * d * d;        // v ← β2 v + (1 − β2) g²
                p[k] -= step_size * (s.m[k] / (std::sqrt(s.v[k]) / bc2_sqrt + eps));
            }
            return;
        }
        case Method::rprop: {
            const T eta_minus = T(c.eta_minus), eta_plus = T(c.eta_plus);
            const T step_min = T(c.step_min), step_max = T(c.step_max);
            if (first) std::fill(s.v, s.v + n, lr);
            for (std::size_t k = 0; k < n; ++k) {
                T d = g[k] + wd * p[k];
                const T agreement = d * s.m[k];
                const T factor = agreement > T(0) ? eta_plus : agreement < T(0) ? eta_minus : T(1);
                s.v[k] = std::clamp(s.v[k] * factor, step_min, step_max);
                if (agreement < T(0)) d = T(0);  // a sign change: no step, forget the gradient
                p[k] -= (d > T(0) ? s.v[k] : d < T(0) ? -s.v[k] : T(0));
                s.m[k] = d;
            }
            return;
        }
    }
    throw std::logic_error("unknown optimiser");
}

}  // namespace fastprop
