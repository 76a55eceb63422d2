// The error E of a batch and δ_n = ∂E/∂z_n, side by side, one struct per loss.
//
// "sse" is the model's own E = Σ_s ||y_s − z_n,s||², δ_n = −2(y − z_n). The others follow
// torch.nn: "mse" is the mean over all t·l_n elements (MSELoss), "cross_entropy" the mean
// over samples of −Σ_j p_j log softmax(z_n)_j for target probabilities p (CrossEntropyLoss),
// "binary_cross_entropy" the mean over all t·l_n elements of −y log σ(z) − (1 − y) log(1 − σ(z))
// (BCEWithLogitsLoss), "poisson" the mean over all t·l_n elements of e^z − y z, z_n the log of
// the rate of counts y >= 0 (PoissonNLLLoss(log_input=True)), "huber" the mean over all
// t·l_n elements of ½d² where |d| <= delta, delta(|d| − ½delta) beyond, d = z_n − y
// (HuberLoss(delta=delta)).
//
// Sample weights: with a weight w_s per row, each sample's term of E (and so its δ) is
// multiplied by w_s, and a mean divides by the batch's total weight Σ_s w_s instead of its t
// rows (so a weight of 2 is the sample twice). Without weights every w_s is 1.
//
// Adding a loss: a struct below (name, the link that turns z_n into a prediction, whether it
// is a mean and a sum of squares, the fewest outputs it takes, and loss_and_delta), its entry
// in the enum and in `Losses`, in this order; the rest follows from these lists.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

namespace fastprop {

enum class Loss { sse, mse, cross_entropy, binary_cross_entropy, poisson, huber };

// How a prediction comes from z_n: itself (regression), softmax (one class of l_n), the
// logistic sigmoid of each output (independent labels), or e^z (a rate, from its log).
enum class Link { identity, softmax, sigmoid, exp };

// The rows a loss reads: z_n, Y and δ_n are (rows, l_n); w is (rows) or null (all 1); t is
// the whole batch's size, or its total weight with weights (the means divide by it).
template <class T> struct LossRows {
    T* delta_n;
    const T* z_n;
    const T* Y;
    const T* w;
    std::size_t rows, l_n;
    double t;
    double delta = 1.0;  // the loss's parameter, where it has one (huber's delta)
};

// e^{a − b} without the rounding of a − b: e^x turns a relative error ε of x into a
// relative error x·ε of the result, so the difference is taken exactly as hi + lo
// (Knuth's TwoSum) and e^{hi + lo} = e^{hi} (1 + lo) to within lo².
inline double exp_difference(double a, double b) {
    const double hi = a - b;
    const double b_virtual = a - hi;
    const double lo = (a - (hi + b_virtual)) + (b_virtual - b);
    return std::exp(hi) * (1.0 + lo);
}

// Σ_s w_s Σ_j (y − z)² in double, and δ = scale·w_s (y − z). Unweighted, the sum runs as
// eight partial sums (k mod 8) added in a fixed order at the end, rather than one chain of
// dependent additions, which cost 2% of a W2 step (320 entries, 4 cycles each).
template <class T> double squared_error(const LossRows<T>& r, T scale) {
    const std::size_t count = r.rows * r.l_n;
    if (r.w != nullptr) {
        double E = 0.0;
        for (std::size_t s = 0; s < r.rows; ++s) {
            const T ws = r.w[s];
            double E_s = 0.0;
            for (std::size_t j = s * r.l_n; j < (s + 1) * r.l_n; ++j) {
                const T d = r.Y[j] - r.z_n[j];
                E_s += double(d) * double(d);
                r.delta_n[j] = scale * ws * d;
            }
            E += double(ws) * E_s;
        }
        return E;
    }
    constexpr std::size_t lanes = 8;
    double partial[lanes] = {};
    const auto add = [&](std::size_t k, std::size_t j) {
        const T d = r.Y[k] - r.z_n[k];
        partial[j] += double(d) * double(d);
        r.delta_n[k] = scale * d;
    };
    std::size_t k = 0;
    for (; k + lanes <= count; k += lanes)
        for (std::size_t j = 0; j < lanes; ++j) add(k + j, j);
    for (std::size_t j = 0; k + j < count; ++j) add(k + j, j);
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
           ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

namespace losses {

struct Sse {  // E = Σ w ||y − z_n||², δ_n = −2 w (y − z_n)
    static constexpr Loss id = Loss::sse;
    static constexpr const char* name = "sse";
    static constexpr Link link = Link::identity;
    static constexpr bool mean = false, sum_of_squares = true;
    static constexpr std::size_t min_outputs = 1;
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        return squared_error(r, T(-2));
    }
};

struct Mse {  // E = Σ w ||y − z_n||² / (t l_n), δ_n = −2 w (y − z_n) / (t l_n)
    static constexpr Loss id = Loss::mse;
    static constexpr const char* name = "mse";
    static constexpr Link link = Link::identity;
    static constexpr bool mean = true, sum_of_squares = true;
    static constexpr std::size_t min_outputs = 1;
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        const double count = r.t * double(r.l_n);
        return squared_error(r, T(-2) / T(count)) / count;
    }
};

// In double whatever T is, about m = max_j z_j (at j = k), each e^{z_j − m} from the exact
// difference: with rest = Σ_{j≠k} e^{z_j − m}, lse(z) = m + log1p(rest), so
//   E_s = Σ_j p_j (m − z_j) + (Σ_j p_j) log1p(rest)
// stays exact when the target is the largest logit (log of a sum near 1 would not), and
// δ_s = w_s (softmax(z) Σ_j p_j − p) / t.
struct CrossEntropy {
    static constexpr Loss id = Loss::cross_entropy;
    static constexpr const char* name = "cross_entropy";
    static constexpr Link link = Link::softmax;
    static constexpr bool mean = true, sum_of_squares = false;
    static constexpr std::size_t min_outputs = 2;  // softmax of one output is always 1
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        const std::size_t l_n = r.l_n;
        constexpr std::size_t kept = 64;
        double e[kept];
        double E = 0.0;
        for (std::size_t s = 0; s < r.rows; ++s) {
            const T* z = r.z_n + s * l_n;
            const T* p = r.Y + s * l_n;
            T* d = r.delta_n + s * l_n;
            const double w_s = r.w ? double(r.w[s]) : 1.0;
            const std::size_t k = std::size_t(std::max_element(z, z + l_n) - z);
            const double m = double(z[k]);
            // Each e^{z_j − m} is taken once and kept for δ (up to `kept` outputs; beyond,
            // taken again: the same value either way).
            double rest = 0.0, sum_p = 0.0, p_gap = 0.0;
            for (std::size_t j = 0; j < l_n; ++j) {
                const double e_j = exp_difference(double(z[j]), m);
                if (j < kept) e[j] = e_j;
                if (j != k) rest += e_j;
                sum_p += double(p[j]);
                p_gap += double(p[j]) * (m - double(z[j]));
            }
            const double E_s = p_gap + sum_p * std::log1p(rest);
            E += r.w ? w_s * E_s : E_s;
            const double scale = sum_p / (1.0 + rest);
            for (std::size_t j = 0; j < l_n; ++j) {
                const double e_j = j < kept ? e[j] : exp_difference(double(z[j]), m);
                const double d_j = (e_j * scale - double(p[j])) / r.t;
                d[j] = T(r.w ? w_s * d_j : d_j);
            }
        }
        return E / r.t;
    }
};

// −y log σ(z) − (1 − y) log(1 − σ(z)) = max(z, 0) − y z + log1p(e^{−|z|}),
// δ = w (σ(z) − y) / (t l_n).
struct BinaryCrossEntropy {
    static constexpr Loss id = Loss::binary_cross_entropy;
    static constexpr const char* name = "binary_cross_entropy";
    static constexpr Link link = Link::sigmoid;
    static constexpr bool mean = true, sum_of_squares = false;
    static constexpr std::size_t min_outputs = 1;
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        const T inv_count = T(1) / T(r.t * double(r.l_n));
        double E = 0.0;
        for (std::size_t s = 0; s < r.rows; ++s) {
            const T w_s = r.w ? r.w[s] : T(1);
            double E_s = 0.0;
            double& sum = r.w ? E_s : E;  // unweighted: one running sum over every element
            for (std::size_t k = s * r.l_n; k < (s + 1) * r.l_n; ++k) {
                const T z = r.z_n[k];
                const T e = std::exp(-std::abs(z));
                sum += double(std::max(z, T(0)) - r.Y[k] * z + std::log1p(e));
                const T sigma_z = z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
                r.delta_n[k] = r.w ? w_s * ((sigma_z - r.Y[k]) * inv_count)
                                   : (sigma_z - r.Y[k]) * inv_count;
            }
            if (r.w) E += double(w_s) * E_s;
        }
        return E / (r.t * double(r.l_n));
    }
};

// z_n = log λ, the log of the rate of counts y >= 0: E = Σ w (e^z − y z) / (t l_n), the
// negative log-likelihood without its log(y!), δ = w (e^z − y) / (t l_n).
struct Poisson {
    static constexpr Loss id = Loss::poisson;
    static constexpr const char* name = "poisson";
    static constexpr Link link = Link::exp;
    static constexpr bool mean = true, sum_of_squares = false;
    static constexpr std::size_t min_outputs = 1;
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        const double count = r.t * double(r.l_n);
        const T inv_count = T(1) / T(count);
        double E = 0.0;
        for (std::size_t s = 0; s < r.rows; ++s) {
            const T w_s = r.w ? r.w[s] : T(1);
            double E_s = 0.0;
            for (std::size_t k = s * r.l_n; k < (s + 1) * r.l_n; ++k) {
                const T rate = std::exp(r.z_n[k]);
                E_s += double(rate) - double(r.Y[k]) * double(r.z_n[k]);
                r.delta_n[k] = w_s * ((rate - r.Y[k]) * inv_count);
            }
            E += r.w ? double(w_s) * E_s : E_s;
        }
        return E / count;
    }
};

// d = z − y: E = Σ w h(d) / (t l_n) with h(d) = ½d² for |d| <= delta, delta(|d| − ½delta)
// beyond (the two meet at |d| = delta), δ = w clamp(d, −delta, delta) / (t l_n).
struct Huber {
    static constexpr Loss id = Loss::huber;
    static constexpr const char* name = "huber";
    static constexpr Link link = Link::identity;
    static constexpr bool mean = true, sum_of_squares = false;
    static constexpr std::size_t min_outputs = 1;
    template <class T> static double loss_and_delta(const LossRows<T>& r) {
        const double count = r.t * double(r.l_n);
        const T inv_count = T(1) / T(count);
        const T delta = T(r.delta);
        double E = 0.0;
        for (std::size_t s = 0; s < r.rows; ++s) {
            const T w_s = r.w ? r.w[s] : T(1);
            double E_s = 0.0;
            for (std::size_t k = s * r.l_n; k < (s + 1) * r.l_n; ++k) {
                const T d = r.z_n[k] - r.Y[k];
                const double a = std::abs(double(d));
                E_s += a <= r.delta ? 0.5 * a * a : r.delta * (a - 0.5 * r.delta);
                r.delta_n[k] = w_s * (std::clamp(d, -delta, delta) * inv_count);
            }
            E += r.w ? double(w_s) * E_s : E_s;
        }
        return E / count;
    }
};

}  // namespace losses

// Every loss, in the order of the enum.
using Losses = std::tuple<losses::Sse, losses::Mse, losses::CrossEntropy, losses::BinaryCrossEntropy,
                          losses::Poisson, losses::Huber>;
constexpr std::size_t n_losses = std::tuple_size_v<Losses>;

namespace detail {
template <std::size_t... k> constexpr bool loss_ids_in_order(std::index_sequence<k...>) {
    return ((std::tuple_element_t<k, Losses>::id == Loss(k)) && ...);
}
}  // namespace detail
static_assert(detail::loss_ids_in_order(std::make_index_sequence<n_losses>()),
              "Losses must list the structs in the order of the enum");

// fn(the struct of `loss`); fn must return the same type for every loss.
template <std::size_t k = 0, class F> decltype(auto) visit(Loss loss, F&& fn) {
    if constexpr (k + 1 == n_losses) {
        return fn(std::tuple_element_t<k, Losses>{});
    } else {
        if (loss == Loss(k)) return fn(std::tuple_element_t<k, Losses>{});
        return visit<k + 1>(loss, std::forward<F>(fn));
    }
}

inline const char* loss_name(Loss loss) {
    return visit(loss, [](auto l) { return decltype(l)::name; });
}

inline std::string loss_names() {
    std::string out;
    for (std::size_t k = 0; k < n_losses; ++k)
        out += (k ? ", " : "") + std::string(loss_name(Loss(k)));
    return out;
}

inline Loss loss_from_name(const std::string& name) {
    for (std::size_t k = 0; k < n_losses; ++k)
        if (name == loss_name(Loss(k))) return Loss(k);
    throw std::invalid_argument("loss must be one of " + loss_names() + "; got '" + name + "'");
}

// A mean loss divides by the batch size, so a sum over minibatches must weight each by its rows.
inline bool is_mean(Loss loss) {
    return visit(loss, [](auto l) { return decltype(l)::mean; });
}
inline bool is_sum_of_squares(Loss loss) {
    return visit(loss, [](auto l) { return decltype(l)::sum_of_squares; });
}
inline Link link_of(Loss loss) {
    return visit(loss, [](auto l) { return decltype(l)::link; });
}
inline std::size_t min_outputs(Loss loss) {
    return visit(loss, [](auto l) { return decltype(l)::min_outputs; });
}

// E of the rows (out of a batch of total size or weight r.t) and δ_n for them. E is
// accumulated in double so that a float32 network still reports its loss accurately.
template <class T> double loss_and_delta(Loss loss, const LossRows<T>& rows) {
    return visit(loss, [&](auto l) { return decltype(l)::loss_and_delta(rows); });
}

}  // namespace fastprop
