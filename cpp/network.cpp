#include "network.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <numeric>

#include "kernels.hpp"
#include "random.hpp"

namespace fastprop {

template <class T>
Network<T>::Network(Layout layout, std::vector<Activation> sigma, Loss loss)
    : layout_(std::move(layout)), sigma_(std::move(sigma)), loss_(loss),
      params_(layout_.n_params(), T(0)) {
    if (sigma_.size() != layout_.n() - 1)
        throw std::invalid_argument("a network with " + std::to_string(layout_.n()) +
                                    " weight matrices needs " + std::to_string(layout_.n() - 1) +
                                    " hidden activations, got " + std::to_string(sigma_.size()));
}

template <class T> void Network<T>::init(std::uint64_t seed) {
    SplitMix64 rng(seed);
    const std::size_t n_ = n();
    for (std::size_t i = 0; i < n_; ++i) {
        const LayerSlice& s = layout_[i];
        const std::size_t following = i + 1 < n_ ? i + 1 : n_ - 1;  // σ after W_i
        const bool he = following >= 1 && (sigma(following) == Activation::relu ||
                                            sigma(following) == Activation::leaky_relu);
        const double r = he ? std::sqrt(6.0 / double(s.l_in))
                            : std::sqrt(6.0 / double(s.l_in + s.l_out));
        T* W_i = params_.data() + s.W;
        for (std::size_t k = 0; k < s.l_out * s.l_in; ++k) W_i[k] = T((2 * rng.uniform() - 1) * r);
        if (layout_.bias()) std::fill(params_.data() + s.b, params_.data() + s.b + s.l_out, T(0));
    }
}

template <class T> std::size_t Workspace<T>::chunk_rows(const Layout& layout) {
    // z, a and δ of every layer after the input, plus the gathered x and y: per row.
    const std::size_t per_row = 3 * layout.units_after_input() + layout.l_in() + layout.l_out();
    constexpr std::size_t budget = std::size_t(1) << 23;  // table entries
    return std::clamp<std::size_t>(budget / per_row, 256, 8192);
}

template <class T> void Workspace<T>::reserve(const Layout& layout, std::size_t rows) {
    if (grad.size() != layout.n_params()) grad.assign(layout.n_params(), T(0));
    if (rows <= rows_ && z_.size() == layout.n() + 1) return;
    rows = std::max(rows, rows_);
    const std::size_t n = layout.n();
    z_.assign(n + 1, 0);
    a_.assign(n + 1, 0);
    delta_.assign(n + 1, 0);
    std::size_t offset = 0;
    for (std::size_t i = 1; i <= n; ++i) {
        const std::size_t size = Layout::checked_mul(rows, layout.layers()[i]);
        z_[i] = offset;
        offset = Layout::checked_add(offset, size);
        delta_[i] = offset;
        offset = Layout::checked_add(offset, size);
        if (i < n) {
            a_[i] = offset;
            offset = Layout::checked_add(offset, size);
        }
    }
    table_.resize(offset);
    rows_ = rows;
}

namespace {

// The forward recurrence for `rows` samples: z_{i+1} = a_i W_iᵀ + b_i, a_{i+1} = σ(z_{i+1}).
// z_n goes to z_n_out, every other z_i and a_i to the table.
template <class T>
void forward_rows(const Network<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                  T* z_n_out) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const T* a_i = x;  // a_0 = x
    for (std::size_t i = 0; i < n; ++i) {
        const LayerSlice& s = L[i];
        T* z_next = i + 1 == n ? z_n_out : ws.z(i + 1);
        dense_forward(z_next, a_i, net.W(i), net.b(i), rows, s.l_in, s.l_out);
        if (i + 1 < n) {
            apply_sigma(net.sigma(i + 1), ws.a(i + 1), z_next, rows * s.l_out);
            a_i = ws.a(i + 1);
        }
    }
}

// The backward dynamic programme for `rows` samples (of a batch of t), after forward_rows
// left z_n in ws.z(n):
//   δ_n = ∂E/∂z_n (−2(y − z_n) for the model's E)
//   for i = n−1 down to 0:  ∂E/∂W_i = δ_{i+1}ᵀ a_i,  ∂E/∂b_i = Σ_s δ_{i+1},
//                           δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i)  when i >= 1.
// Gradients are added to dE_dparams when `accumulate` (a later chunk of the same batch).
template <class T>
double backward_rows(const Network<T>& net, const T* x, const T* y, std::size_t rows,
                     std::size_t t, Workspace<T>& ws, T* dE_dparams, bool accumulate) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const double E = loss_and_delta(net.loss(), ws.delta(n), ws.z(n), y, rows, L.l_out(), t);
    for (std::size_t i = n; i-- > 0;) {
        const LayerSlice& s = L[i];
        const T* a_i = i == 0 ? x : ws.a(i);
        T* dE_db = L.bias() ? dE_dparams + s.b : nullptr;
        dense_backward(i >= 1 ? ws.delta(i) : nullptr, dE_dparams + s.W, dE_db, ws.delta(i + 1),
                       a_i, net.W(i), rows, s.l_in, s.l_out, accumulate);
        if (i >= 1) apply_sigma_prime(net.sigma(i), ws.delta(i), ws.z(i), rows * s.l_in);
    }
    return E;
}

inline void check_poll(const Poll& poll) {
    if (poll && poll()) throw Interrupted();
}

}  // namespace

template <class T>
void forward(const Network<T>& net, const T* X, std::size_t t, T* out, Workspace<T>& ws,
             const Poll& poll) {
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(net.layout()));
    ws.reserve(net.layout(), chunk);
    const std::size_t l_0 = net.layout().l_in(), l_n = net.layout().l_out();
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        check_poll(poll);
        forward_rows(net, X + r0 * l_0, std::min(chunk, t - r0), ws, out + r0 * l_n);
    }
}

template <class T>
void forward_trace(const Network<T>& net, const T* X, std::size_t t, Workspace<T>& ws) {
    ws.reserve(net.layout(), t);
    forward_rows(net, X, t, ws, ws.z(net.n()));
}

template <class T>
double loss(const Network<T>& net, const T* X, const T* Y, std::size_t t, Workspace<T>& ws,
            const Poll& poll) {
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(net.layout()));
    ws.reserve(net.layout(), chunk);
    const Layout& L = net.layout();
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        forward_rows(net, X + r0 * L.l_in(), rows, ws, ws.z(net.n()));
        E += loss_and_delta(net.loss(), ws.delta(net.n()), ws.z(net.n()), Y + r0 * L.l_out(), rows,
                            L.l_out(), t);
    }
    return E;
}

template <class T>
double gradient(const Network<T>& net, const T* X, const T* Y, std::size_t t, T* dE_dparams,
                Workspace<T>& ws, const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(L));
    ws.reserve(L, chunk);
    if (t == 0) std::fill(dE_dparams, dE_dparams + L.n_params(), T(0));
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        const T* x = X + r0 * L.l_in();
        forward_rows(net, x, rows, ws, ws.z(net.n()));
        E += backward_rows(net, x, Y + r0 * L.l_out(), rows, t, ws, dE_dparams, r0 > 0);
    }
    return E;
}

template <class T>
double step(Network<T>& net, const T* X, const T* Y, std::size_t t, const OptimizerConfig& config,
            OptimizerState<T>& state, Workspace<T>& ws, const Poll& poll) {
    ws.reserve(net.layout(), 0);
    const double E = gradient(net, X, Y, t, ws.grad.data(), ws, poll);
    update(config, state, net.params(), ws.grad.data(), net.n_params());
    return E;
}

namespace {

// Tracks the monitored loss for early stopping; keeps the best parameters when asked.
template <class T> class EarlyStopping {
public:
    EarlyStopping(const FitOptions<T>& options, Workspace<T>& ws) : options_(options), ws_(ws) {}

    // After epoch `epoch` with monitored loss `E`; true when training should stop.
    bool stop_after(std::size_t epoch, double E, const Network<T>& net) {
        if (options_.patience == 0) return false;
        if (std::isfinite(E) && E < best_E_ - options_.min_delta) {
            best_E_ = E;
            best_epoch_ = epoch;
            waited_ = 0;
            if (options_.restore_best) ws_.best.assign(net.params(), net.params() + net.n_params());
            return false;
        }
        return ++waited_ >= options_.patience;
    }

    void restore(Network<T>& net) const {
        if (options_.patience > 0 && options_.restore_best && !ws_.best.empty())
            std::copy(ws_.best.begin(), ws_.best.end(), net.params());
    }

    std::size_t best_epoch() const { return best_epoch_; }

private:
    const FitOptions<T>& options_;
    Workspace<T>& ws_;
    double best_E_ = std::numeric_limits<double>::infinity();
    std::size_t best_epoch_ = 0, waited_ = 0;
};

}  // namespace

template <class T>
FitResult fit(Network<T>& net, const T* X, const T* Y, std::size_t t, const FitOptions<T>& options,
              const OptimizerConfig& config, OptimizerState<T>& state, const FitRecord& record,
              Workspace<T>& ws, const FitHooks& hooks) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const Layout& L = net.layout();
    const std::size_t l_0 = L.l_in(), l_n = L.l_out();
    const std::size_t batch = options.batch_size == 0 ? t : std::min(options.batch_size, t);
    const bool gather = options.shuffle && batch < t;
    ws.reserve(L, std::min(batch, Workspace<T>::chunk_rows(L)));
    ws.best.clear();
    if (gather) {
        ws.x.resize(batch * l_0);
        ws.y.resize(batch * l_n);
        ws.order.resize(t);
        std::iota(ws.order.begin(), ws.order.end(), std::size_t(0));
    }
    SplitMix64 rng(options.seed);
    EarlyStopping<T> early(options, ws);
    FitResult result;
    for (std::size_t epoch = 0; epoch < options.epochs; ++epoch) {
        if (gather)  // Fisher–Yates, continuing from the previous epoch's order
            for (std::size_t k = t; k > 1; --k) std::swap(ws.order[k - 1], ws.order[rng.below(k)]);
        double E_epoch = 0.0;
        for (std::size_t r0 = 0; r0 < t; r0 += batch) {
            if (hooks.poll && hooks.poll()) {
                result.stop = Stop::interrupted;
                return result;
            }
            const std::size_t rows = std::min(batch, t - r0);
            const T* x = X + r0 * l_0;
            const T* y = Y + r0 * l_n;
            if (gather) {
                for (std::size_t s = 0; s < rows; ++s) {
                    const std::size_t src = ws.order[r0 + s];
                    std::copy(X + src * l_0, X + (src + 1) * l_0, ws.x.data() + s * l_0);
                    std::copy(Y + src * l_n, Y + (src + 1) * l_n, ws.y.data() + s * l_n);
                }
                x = ws.x.data();
                y = ws.y.data();
            }
            const double E = gradient(net, x, y, rows, ws.grad.data(), ws);
            if (!std::isfinite(E)) {
                result.stop = Stop::non_finite;
                return result;
            }
            update(config, state, net.params(), ws.grad.data(), net.n_params());
            E_epoch += is_mean(net.loss()) ? E * double(rows) / double(t) : E;
        }
        const double E_val = options.t_val > 0
                                 ? loss(net, options.X_val, options.Y_val, options.t_val, ws)
                                 : std::numeric_limits<double>::quiet_NaN();
        const double seconds = std::chrono::duration<double>(clock::now() - start).count();
        record.E[epoch] = E_epoch;
        if (record.E_val) record.E_val[epoch] = E_val;
        if (record.seconds) record.seconds[epoch] = seconds;
        result.epochs = epoch + 1;
        const bool stop_early = early.stop_after(epoch, options.t_val > 0 ? E_val : E_epoch, net);
        result.best_epoch = early.best_epoch();
        if (hooks.epoch_end && !hooks.epoch_end(epoch, E_epoch, E_val, seconds)) {
            result.stop = Stop::callback;
            return result;
        }
        if (stop_early) {
            early.restore(net);
            result.stop = Stop::early_stopping;
            return result;
        }
    }
    return result;
}

#define FASTPROP_INSTANTIATE(T)                                                                 \
    template class Network<T>;                                                                  \
    template class Workspace<T>;                                                                \
    template void forward<T>(const Network<T>&, const T*, std::size_t, T*, Workspace<T>&,       \
                             const Poll&);                                                      \
    template void forward_trace<T>(const Network<T>&, const T*, std::size_t, Workspace<T>&);    \
    template double loss<T>(const Network<T>&, const T*, const T*, std::size_t, Workspace<T>&,  \
                            const Poll&);                                                       \
    template double gradient<T>(const Network<T>&, const T*, const T*, std::size_t, T*,         \
                                Workspace<T>&, const Poll&);                                    \
    template double step<T>(Network<T>&, const T*, const T*, std::size_t,                      \
                            const OptimizerConfig&, OptimizerState<T>&, Workspace<T>&,          \
                            const Poll&);                                                       \
    template FitResult fit<T>(Network<T>&, const T*, const T*, std::size_t,                     \
                              const FitOptions<T>&, const OptimizerConfig&, OptimizerState<T>&, \
                              const FitRecord&, Workspace<T>&, const FitHooks&);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
