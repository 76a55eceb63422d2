// First-order optimisers, with the semantics of torch.optim so that trajectories can be
// compared step for step. State buffers share the parameter buffer's layout, so an update is
// one flat loop over n_params entries.
//
// Adding an optimiser: a struct below (its name, how many state buffers it keeps, the checks
// of its hyperparameters and its update), its entry in Method and in `Methods`, in this order;
// new hyperparameters go in OptimizerConfig and in `hyperparameters()`, from which the Python
// binding takes their names. The Python class in fastprop/optim.py and the reference update in
// fastprop/reference.py follow.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "kernels/elementwise.hpp"
#include "runtime/format.hpp"
#include "runtime/random.hpp"

namespace fastprop {

enum class Method { sgd, adam, adamw, rprop, dpsgd };

struct OptimizerConfig {
    Method method = Method::sgd;
    double lr = 0.01;           // the base learning rate (a schedule scales it per epoch)
    double weight_decay = 0.0;  // L2: λ·p added to the gradient (adamw: decoupled decay)
    double momentum = 0.0;      // sgd; torch's dampening = 0
    bool nesterov = false;      // sgd
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
    double eta_minus = 0.5, eta_plus = 1.2;         // rprop
    double step_min = 1e-6, step_max = 50.0;        // rprop
    double max_grad_norm = 1.0, noise_multiplier = 1.0;  // dpsgd
    std::uint64_t noise_seed = 0;                         // dpsgd: the Gaussian noise's seed
};

// The real-valued hyperparameters by name, for bindings and messages.
inline const std::vector<std::pair<const char*, double OptimizerConfig::*>>& hyperparameters() {
    static const std::vector<std::pair<const char*, double OptimizerConfig::*>> table = {
        {"lr", &OptimizerConfig::lr},
        {"weight_decay", &OptimizerConfig::weight_decay},
        {"momentum", &OptimizerConfig::momentum},
        {"beta1", &OptimizerConfig::beta1},
        {"beta2", &OptimizerConfig::beta2},
        {"eps", &OptimizerConfig::eps},
        {"eta_minus", &OptimizerConfig::eta_minus},
        {"eta_plus", &OptimizerConfig::eta_plus},
        {"step_min", &OptimizerConfig::step_min},
        {"step_max", &OptimizerConfig::step_max},
        {"max_grad_norm", &OptimizerConfig::max_grad_norm},
        {"noise_multiplier", &OptimizerConfig::noise_multiplier},
    };
    return table;
}

// The optimiser's memory between updates, owned here, in the parameter layout.
// m: sgd's momentum buffer, adam's first moment, rprop's previous gradient.
// v: adam's second moment, rprop's per-parameter step sizes (start at lr).
// steps: updates done so far (adam's bias correction; sgd's first momentum step).
template <class T> struct OptimizerState {
    std::vector<T> m, v;
    std::uint64_t steps = 0;
};

namespace optimizer {

// Throws std::invalid_argument naming the hyperparameter (as torch.optim names it), the
// range and the value.
inline void require(bool ok, const char* name, const char* range, double value) {
    if (!ok)
        throw std::invalid_argument(std::string(name) + " must be a finite number " + range +
                                    ", got " + format_number(value));
}
inline bool finite(double x) { return std::isfinite(x); }
// 1 for inf or NaN: x − x is NaN for those and +0 otherwise (an int, so that loops that
// `|=` it vectorise).
template <class T> int not_finite(T x) { return (x - x) != T(0); }

inline void check_common(const OptimizerConfig& c) {
    require(finite(c.lr) && c.lr > 0, "lr", "> 0", c.lr);
    require(finite(c.weight_decay) && c.weight_decay >= 0, "weight_decay", ">= 0",
            c.weight_decay);
}

// p −= lr·(g + λp), optionally with (Nesterov) momentum b = μ b + d, as torch.optim.SGD.
struct Sgd {
    static constexpr Method id = Method::sgd;
    static constexpr const char* name = "sgd";
    static constexpr bool per_sample = false;  // updates from the batch's gradient
    static std::size_t buffers(const OptimizerConfig& c) { return c.momentum != 0.0 ? 1 : 0; }
    static void check(const OptimizerConfig& c) {
        check_common(c);
        require(finite(c.momentum) && c.momentum >= 0 && c.momentum <= 1, "momentum", "in [0, 1]",
                c.momentum);
        if (c.nesterov && c.momentum == 0.0)
            throw std::invalid_argument("nesterov needs a momentum > 0");
    }
    template <class T, bool commit>
    static bool apply(const OptimizerConfig& c, const OptimizerState<T>& s, T* p, const T* g,
                      std::size_t n, double lr_now) {
        const T lr = T(lr_now), wd = T(c.weight_decay);
        const bool first = s.steps == 0;
        if (c.momentum == 0.0 && c.weight_decay == 0.0) {  // the model's dW_i = −m ∂E/∂W_i
            if constexpr (!commit) {
                int bad = 0;
                for (std::size_t k = 0; k < n; ++k) bad |= not_finite(T(p[k] - lr * g[k]));
                return bad == 0;
            }
            elementwise::sgd(p, g, lr, n);
            return true;
        }
        int bad = 0;
        if (c.momentum == 0.0) {
            for (std::size_t k = 0; k < n; ++k) {
                const T p_k = p[k] - lr * (g[k] + wd * p[k]);
                if constexpr (commit) p[k] = p_k; else bad |= not_finite(p_k);
            }
            return bad == 0;
        }
        const T mu = T(c.momentum);
        T* m = const_cast<T*>(s.m.data());  // written only when committing
        for (std::size_t k = 0; k < n; ++k) {
            const T d = g[k] + wd * p[k];
            const T m_k = first ? d : mu * m[k] + d;  // buf = μ buf + d
            const T p_k = p[k] - lr * (c.nesterov ? d + mu * m_k : m_k);
            if constexpr (commit) { m[k] = m_k; p[k] = p_k; } else bad |= not_finite(p_k);
        }
        return bad == 0;
    }
};

// Adam with bias correction (torch.optim.Adam); adamw decays p ← p (1 − lr λ) instead of
// adding λp to the gradient (torch.optim.AdamW).
template <Method method, bool decoupled> struct AdamLike {
    static constexpr Method id = method;
    static constexpr const char* name = decoupled ? "adamw" : "adam";
    static constexpr bool per_sample = false;
    static std::size_t buffers(const OptimizerConfig&) { return 2; }
    static void check(const OptimizerConfig& c) {
        check_common(c);
        require(finite(c.beta1) && c.beta1 >= 0 && c.beta1 < 1, "betas[0]", "in [0, 1)", c.beta1);
        require(finite(c.beta2) && c.beta2 >= 0 && c.beta2 < 1, "betas[1]", "in [0, 1)", c.beta2);
        require(finite(c.eps) && c.eps >= 0, "eps", ">= 0", c.eps);
    }
    template <class T, bool commit>
    static bool apply(const OptimizerConfig& c, const OptimizerState<T>& s, T* p, const T* g,
                      std::size_t n, double lr_now) {
        const T wd = T(c.weight_decay);
        const T b1 = T(c.beta1), b2 = T(c.beta2), eps = T(c.eps);
        const double t = double(s.steps + 1);
        const T step_size = T(lr_now / (1.0 - std::pow(c.beta1, t)));
        const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(c.beta2, t)));
        const T decay = T(1.0 - lr_now * c.weight_decay);
        // For each k, with d = g + λp (adam) or p ← p (1 − lr λ) first (adamw):
        //   m ← β1 m + (1 − β1) d,  v ← β2 v + (1 − β2) d²,  p −= step_size·m / (√v/bc2 + eps)
        // every entry every step (a zero gradient still decays m and v), in one vectorised
        // pass on two threads: over a large first layer (sparse input) it is most of a step.
        // Without commit, the same arithmetic only checks that every new p is finite.
        const elementwise::AdamStep<T> step{b1, b2, wd, step_size, bc2_sqrt, eps, decay,
                                            decoupled};
        T* m = const_cast<T*>(s.m.data());  // written only when committing
        T* v = const_cast<T*>(s.v.data());
        if constexpr (commit) {
            elementwise::adam(p, m, v, g, step, n);
            return true;
        } else {
            return elementwise::adam_is_finite(p, m, v, g, step, n);
        }
    }
};
using Adam = AdamLike<Method::adam, false>;
using AdamW = AdamLike<Method::adamw, true>;

// Resilient backpropagation, as torch.optim.Rprop: step sizes start at lr, grow by eta_plus
// while the gradient keeps its sign, shrink by eta_minus when it flips (and that step is
// skipped), within [step_min, step_max].
struct Rprop {
    static constexpr Method id = Method::rprop;
    static constexpr const char* name = "rprop";
    static constexpr bool per_sample = false;
    static std::size_t buffers(const OptimizerConfig&) { return 2; }
    static void check(const OptimizerConfig& c) {
        check_common(c);
        require(finite(c.eta_minus) && c.eta_minus > 0 && c.eta_minus < 1, "etas[0]", "in (0, 1)",
                c.eta_minus);
        require(finite(c.eta_plus) && c.eta_plus > 1, "etas[1]", "> 1", c.eta_plus);
        require(finite(c.step_min) && c.step_min >= 0, "step_sizes[0]", ">= 0", c.step_min);
        require(finite(c.step_max) && c.step_max >= 0, "step_sizes[1]", ">= 0", c.step_max);
        if (c.step_min > c.step_max)
            throw std::invalid_argument("step_sizes must be (min, max) with min <= max, got (" +
                                        format_number(c.step_min) + ", " +
                                        format_number(c.step_max) + ")");
    }
    template <class T, bool commit>
    static bool apply(const OptimizerConfig& c, const OptimizerState<T>& s, T* p, const T* g,
                      std::size_t n, double lr_now) {
        const T wd = T(c.weight_decay);
        const T eta_minus = T(c.eta_minus), eta_plus = T(c.eta_plus);
        const T step_min = T(c.step_min), step_max = T(c.step_max);
        const bool first = s.steps == 0;  // the step sizes start at lr
        T* m = const_cast<T*>(s.m.data());  // written only when committing
        T* v = const_cast<T*>(s.v.data());
        int bad = 0;
        for (std::size_t k = 0; k < n; ++k) {
            T d = g[k] + wd * p[k];
            const T agreement = d * m[k];
            const T factor = agreement > T(0) ? eta_plus : agreement < T(0) ? eta_minus : T(1);
            const T v_k = std::clamp((first ? T(lr_now) : v[k]) * factor, step_min, step_max);
            if (agreement < T(0)) d = T(0);  // a sign change: no step, forget the gradient
            const T p_k = p[k] - (d > T(0) ? v_k : d < T(0) ? -v_k : T(0));
            if constexpr (commit) {
                v[k] = v_k;
                p[k] = p_k;
                m[k] = d;
            } else {
                bad |= not_finite(p_k);
            }
        }
        return bad == 0;
    }
};

// DP-SGD, as Opacus's DPOptimizer around torch.optim.SGD: the trainer gives it the sum of the
// per-sample gradients g_s = ∂(w_s ℓ_s)/∂params, each clipped to max_grad_norm C
// (per_sample.hpp, clipped_gradient_sum), and `privatise` makes that
//   g = (Σ_s min(1, C / (||g_s|| + 1e-6)) g_s + N(0, (noise_multiplier · C)² I)) / B
// for a minibatch of B rows (Opacus with expected_batch_size = B); then the SGD update, with
// momentum and weight decay as Sgd. The noise comes from SplitMix64 seeded by noise_seed and
// the step count, so a fit is the same bits for a given seed.
struct Dpsgd {
    static constexpr Method id = Method::dpsgd;
    static constexpr const char* name = "dpsgd";
    static constexpr bool per_sample = true;  // updates from clipped per-sample gradients
    static std::size_t buffers(const OptimizerConfig& c) { return Sgd::buffers(c); }
    static void check(const OptimizerConfig& c) {
        Sgd::check(c);
        require(finite(c.max_grad_norm) && c.max_grad_norm > 0, "max_grad_norm", "> 0",
                c.max_grad_norm);
        require(finite(c.noise_multiplier) && c.noise_multiplier >= 0, "noise_multiplier",
                ">= 0", c.noise_multiplier);
    }
    // g (n) ← (g + N(0, σ²)) / batch with σ = noise_multiplier · max_grad_norm; the normal
    // deviates by Box–Muller from the step's own stream.
    template <class T>
    static void privatise(const OptimizerConfig& c, std::uint64_t step, T* g, std::size_t n,
                          std::size_t batch) {
        const double sigma = c.noise_multiplier * c.max_grad_norm;
        const double scale = 1.0 / double(std::max<std::size_t>(batch, 1));
        if (sigma == 0.0) {
            for (std::size_t k = 0; k < n; ++k) g[k] = T(double(g[k]) * scale);
            return;
        }
        constexpr double two_pi = 6.283185307179586476925;
        SplitMix64 rng(SplitMix64(c.noise_seed ^ (step * 0xD1B54A32D192ED03ull)).next());
        for (std::size_t k = 0; k < n; k += 2) {
            const double r = sigma * std::sqrt(-2.0 * std::log(1.0 - rng.uniform()));
            const double angle = two_pi * rng.uniform();
            g[k] = T((double(g[k]) + r * std::cos(angle)) * scale);
            if (k + 1 < n) g[k + 1] = T((double(g[k + 1]) + r * std::sin(angle)) * scale);
        }
    }
    template <class T, bool commit>
    static bool apply(const OptimizerConfig& c, const OptimizerState<T>& s, T* p, const T* g,
                      std::size_t n, double lr_now) {
        return Sgd::apply<T, commit>(c, s, p, g, n, lr_now);
    }
};

}  // namespace optimizer

// Every optimiser, in the order of the enum.
using Methods = std::tuple<optimizer::Sgd, optimizer::Adam, optimizer::AdamW, optimizer::Rprop,
                           optimizer::Dpsgd>;
constexpr std::size_t n_methods = std::tuple_size_v<Methods>;

namespace detail {
template <std::size_t... k> constexpr bool method_ids_in_order(std::index_sequence<k...>) {
    return ((std::tuple_element_t<k, Methods>::id == Method(k)) && ...);
}
}  // namespace detail
static_assert(detail::method_ids_in_order(std::make_index_sequence<n_methods>()),
              "Methods must list the structs in the order of the enum");

template <std::size_t k = 0, class F> decltype(auto) visit(Method method, F&& fn) {
    if constexpr (k + 1 == n_methods) {
        return fn(std::tuple_element_t<k, Methods>{});
    } else {
        if (method == Method(k)) return fn(std::tuple_element_t<k, Methods>{});
        return visit<k + 1>(method, std::forward<F>(fn));
    }
}

inline const char* method_name(Method method) {
    return visit(method, [](auto o) { return decltype(o)::name; });
}

// Whether the optimiser updates from clipped per-sample gradients (DP-SGD) rather than from
// the batch's gradient.
inline bool per_sample(Method method) {
    return visit(method, [](auto o) { return decltype(o)::per_sample; });
}

// Throws std::invalid_argument for hyperparameters out of their range.
inline void check(const OptimizerConfig& c) {
    visit(c.method, [&](auto o) { decltype(o)::check(c); });
}

// How many state buffers (0, 1 or 2: m, then v) the configuration needs.
inline std::size_t state_buffers(const OptimizerConfig& c) {
    return visit(c.method, [&](auto o) { return decltype(o)::buffers(c); });
}

// State for a network of n_params parameters: its buffers, zero, and no steps.
template <class T> OptimizerState<T> make_state(const OptimizerConfig& c, std::size_t n_params) {
    OptimizerState<T> s;
    const std::size_t buffers = state_buffers(c);
    if (buffers >= 1) s.m.assign(n_params, T(0));
    if (buffers >= 2) s.v.assign(n_params, T(0));
    return s;
}

// Whether `s` has the buffers that `c` needs for n_params parameters.
template <class T>
bool state_fits(const OptimizerConfig& c, const OptimizerState<T>& s, std::size_t n_params) {
    const std::size_t buffers = state_buffers(c);
    return (buffers < 1 || s.m.size() == n_params) && (buffers < 2 || s.v.size() == n_params);
}

// Whether the update of p (n entries) with gradient g at the learning rate lr would leave
// every parameter finite; nothing is written. The same arithmetic as `update`, so a true
// here means `update` gives finite parameters.
template <class T>
bool update_is_finite(const OptimizerConfig& c, const OptimizerState<T>& s, const T* p,
                      const T* g, std::size_t n, double lr) {
    return visit(c.method, [&](auto o) {
        return decltype(o)::template apply<T, false>(c, s, const_cast<T*>(p), g, n, lr);
    });
}

// One update of p (n entries) with gradient g at the learning rate lr (the config's lr
// scaled by a schedule), then steps + 1.
template <class T>
void update(const OptimizerConfig& c, OptimizerState<T>& s, T* p, const T* g, std::size_t n,
            double lr) {
    visit(c.method, [&](auto o) { decltype(o)::template apply<T, true>(c, s, p, g, n, lr); });
    ++s.steps;
}

// The update, made only when it leaves every parameter finite: true; otherwise false, with p
// and the state as they were (an overflowing step, from a huge lr or an update rule dividing
// by a tiny moment, is refused). g is used up: it holds anything afterwards. Plain SGD, the
// common case, updates and checks in one pass, keeping the previous p in g to undo with; the
// others check first (the same arithmetic as their update, nothing written), then update.
template <class T>
bool update_if_finite(const OptimizerConfig& c, OptimizerState<T>& s, T* p, T* g,
                      std::size_t n, double lr) {
    if ((c.method == Method::sgd || c.method == Method::dpsgd) && c.momentum == 0.0 &&
        c.weight_decay == 0.0) {
        if (!elementwise::sgd_keep(p, g, T(lr), n)) {
            std::copy(g, g + n, p);
            return false;
        }
        ++s.steps;
        return true;
    }
    if (!update_is_finite(c, s, p, g, n, lr)) return false;
    update(c, s, p, g, n, lr);
    return true;
}

}  // namespace fastprop
