// The passes every trainer is made of, shared by network.cpp (gradient descent and its
// variants) and lm.cpp (Levenberg–Marquardt). Internal: not part of the core's interface.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>

#include "activations.hpp"
#include "kernels.hpp"
#include "network.hpp"

namespace fastprop::detail {

// The forward recurrence for `rows` samples: z_{i+1} = a_i W_iᵀ + b_i, a_{i+1} = σ(z_{i+1}).
// z_n goes to z_n_out, every other z_i and a_i to the table. For training (keep_prime),
// the table's z_i is overwritten by σ'(z_i), all that the backward pass needs of it.
template <class T>
void forward_rows(const Network<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                  T* z_n_out, bool keep_prime) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const T* a_i = x;  // a_0 = x
    for (std::size_t i = 0; i < n; ++i) {
        const LayerSlice& s = L[i];
        if (i + 1 == n) {
            dense_forward(z_n_out, a_i, net.W(i), net.b(i), rows, s.l_in, s.l_out);
            break;
        }
        const Activate<T> activate{net.sigma(i + 1), ws.a(i + 1), keep_prime};
        dense_forward(ws.z(i + 1), a_i, net.W(i), net.b(i), rows, s.l_in, s.l_out, &activate);
        a_i = ws.a(i + 1);
    }
}

// The backward dynamic programme for `rows` samples (of a batch of t), after
// forward_rows(keep_prime) left z_n in ws.z(n) and σ'(z_i) in ws.z(i):
//   δ_n = ∂E/∂z_n (−2(y − z_n) for the model's E)
//   for i = n−1 down to 0:  ∂E/∂W_i = δ_{i+1}ᵀ a_i,  ∂E/∂b_i = Σ_s δ_{i+1},
//                           δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i)  when i >= 1.
// Gradients are added to dE_dparams when `accumulate` (a later chunk of the same batch).
// With `check`, inf or NaN in the gradient raises check->seen (dense_backward).
template <class T>
double backward_rows(const Network<T>& net, const T* x, const T* y, std::size_t rows,
                     std::size_t t, Workspace<T>& ws, T* dE_dparams, bool accumulate,
                     const NonFinite* check = nullptr) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const double E = loss_and_delta(net.loss(), ws.delta(n), ws.z(n), y, rows, L.l_out(), t);
    for (std::size_t i = n; i-- > 0;) {
        const LayerSlice& s = L[i];
        const T* a_i = i == 0 ? x : ws.a(i);
        T* dE_db = L.bias() ? dE_dparams + s.b : nullptr;
        dense_backward(i >= 1 ? ws.delta(i) : nullptr, dE_dparams + s.W, dE_db, ws.delta(i + 1),
                       a_i, net.W(i), rows, s.l_in, s.l_out, accumulate,
                       i >= 1 ? ws.z(i) : nullptr, check);
    }
    return E;
}

inline void check_poll(const Poll& poll) {
    if (poll && poll()) throw Interrupted();
}


// Tracks the monitored loss for early stopping, and keeps the parameters it was measured
// at: the validation loss is taken after an epoch's updates, but an epoch's training loss
// before each of them, so without validation the best parameters are those at the start of
// the best epoch (exactly the ones that had that loss, for full-batch training).
template <class T> class EarlyStopping {
public:
    EarlyStopping(const FitOptions<T>& options, Workspace<T>& ws)
        : options_(options), ws_(ws), keep_(options.patience > 0 && options.restore_best) {}

    void epoch_begins(const Network<T>& net) {
        if (keep_ && options_.t_val == 0) ws_.start.assign(net.params(), net.params() + net.n_params());
    }

    // After epoch `epoch` with monitored loss `E`; true when training should stop.
    bool stop_after(std::size_t epoch, double E, const Network<T>& net) {
        if (options_.patience == 0) return false;
        if (std::isfinite(E) && E < best_E_ - options_.min_delta) {
            best_E_ = E;
            best_epoch_ = epoch;
            waited_ = 0;
            if (keep_ && options_.t_val > 0)
                ws_.best.assign(net.params(), net.params() + net.n_params());
            else if (keep_)
                ws_.best.swap(ws_.start);
            return false;
        }
        return ++waited_ >= options_.patience;
    }

    void restore(Network<T>& net) const {
        if (keep_ && !ws_.best.empty()) std::copy(ws_.best.begin(), ws_.best.end(), net.params());
    }

    std::size_t best_epoch() const { return best_epoch_; }

private:
    const FitOptions<T>& options_;
    Workspace<T>& ws_;
    const bool keep_;
    double best_E_ = std::numeric_limits<double>::infinity();
    std::size_t best_epoch_ = 0, waited_ = 0;
};

// The epoch loop of every trainer. `epoch_updates(E_epoch)` runs one epoch's updates, sets
// the epoch's loss and returns Stop::done to go on (or why to stop: interrupted, non_finite,
// converged). Around it: the validation loss, the records, early stopping and the callback.
template <class T, class EpochUpdates>
FitResult run_epochs(Network<T>& net, const FitOptions<T>& options, const FitRecord& record,
                     Workspace<T>& ws, const FitHooks& hooks, EpochUpdates&& epoch_updates) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    ws.best.clear();
    ws.start.clear();
    EarlyStopping<T> early(options, ws);
    FitResult result;
    for (std::size_t epoch = 0; epoch < options.epochs; ++epoch) {
        early.epoch_begins(net);
        double E_epoch = 0.0;
        const Stop stop = epoch_updates(E_epoch);
        if (stop == Stop::interrupted || stop == Stop::non_finite) {
            result.stop = stop;
            return result;
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
        if (stop != Stop::done) {
            early.restore(net);
            result.stop = stop;
            return result;
        }
    }
    early.restore(net);  // all epochs ran: still end at the best parameters
    return result;
}

}  // namespace fastprop::detail
