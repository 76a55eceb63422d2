#include "train/trainer.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>

#include "kernels/elementwise.hpp"
#include "runtime/random.hpp"
#include "runtime/format.hpp"
#include "train/lm.hpp"
#include "train/per_sample.hpp"

namespace fastprop {

const char* stop_name(Stop stop) {
    switch (stop) {
        case Stop::done: return "done";
        case Stop::interrupted: return "interrupted";
        case Stop::callback: return "callback";
        case Stop::non_finite: return "non_finite";
        case Stop::early_stopping: return "early_stopping";
        case Stop::converged: return "converged";
    }
    return "?";
}

double Schedule::lr(double base, std::size_t epoch, double samples_seen) const {
    constexpr double pi = 3.14159265358979323846;
    switch (kind) {
        case Kind::constant: return base;
        case Kind::step: return base * std::pow(gamma, double(epoch / step_size));
        case Kind::cosine: {
            const double e = double(std::min(epoch, t_max));
            return eta_min + (base - eta_min) * (1.0 + std::cos(pi * e / double(t_max))) / 2.0;
        }
        case Kind::invscaling: return base / std::pow(1.0 + samples_seen, power_t);
    }
    return base;
}

namespace {
void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}
}  // namespace

void Schedule::check() const {
    require(step_size >= 1, "step_size must be >= 1, got " + std::to_string(step_size));
    require(std::isfinite(gamma) && gamma > 0,
            "gamma must be a finite number > 0, got " + format_number(gamma));
    require(t_max >= 1, "t_max must be >= 1, got " + std::to_string(t_max));
    require(std::isfinite(eta_min) && eta_min >= 0,
            "eta_min must be a finite number >= 0, got " + format_number(eta_min));
    require(std::isfinite(power_t) && power_t >= 0,
            "power_t must be a finite number >= 0, got " + format_number(power_t));
}

void TrainOptions::check() const {
    require(std::isfinite(min_delta) && min_delta >= 0,
            "min_delta must be a finite number >= 0, got " + format_number(min_delta));
    require(std::isfinite(clip_norm) && clip_norm >= 0,
            "clip_norm must be a finite number >= 0 (0: no clipping), got " +
                format_number(clip_norm));
    schedule.check();
}

namespace {

// g ← g · min(1, max_norm / (‖g‖ + 1e-6)), as torch.nn.utils.clip_grad_norm_ (the norm in
// double).
template <class T> void clip_gradient(T* g, std::size_t n, double max_norm) {
    double sum = 0.0;
    for (std::size_t k = 0; k < n; ++k) sum += double(g[k]) * double(g[k]);
    const double coef = max_norm / (std::sqrt(sum) + 1e-6);
    if (coef >= 1.0) return;
    const T c = T(coef);
    for (std::size_t k = 0; k < n; ++k) g[k] *= c;
}

// Tracks the monitored loss for early stopping, and keeps the parameters it was measured
// at: the validation loss is taken after an epoch's updates, but an epoch's training loss
// before each of them, so without validation the best parameters are those at the start of
// the best epoch (exactly the ones that had that loss, for full-batch training).
template <class T> class EarlyStopping {
public:
    EarlyStopping(const TrainOptions& options, bool validation, std::vector<T>& best,
                  std::vector<T>& start)
        : options_(options), validation_(validation), best_(best), start_(start),
          keep_(options.patience > 0 && options.restore_best) {
        best_.clear();
        start_.clear();
    }

    void epoch_begins(const Network<T>& net) {
        if (keep_ && !validation_) start_.assign(net.params(), net.params() + net.n_params());
    }

    // After epoch `epoch` with monitored loss `E`; true when training should stop.
    bool stop_after(std::size_t epoch, double E, const Network<T>& net) {
        if (options_.patience == 0) return false;
        if (std::isfinite(E) && E < best_E_ - options_.min_delta) {
            best_E_ = E;
            best_epoch_ = epoch;
            waited_ = 0;
            if (keep_ && validation_)
                best_.assign(net.params(), net.params() + net.n_params());
            else if (keep_)
                best_.swap(start_);
            return false;
        }
        return ++waited_ >= options_.patience;
    }

    void restore(Network<T>& net) const {
        if (keep_ && !best_.empty()) std::copy(best_.begin(), best_.end(), net.params());
    }

    std::size_t best_epoch() const { return best_epoch_; }

private:
    const TrainOptions& options_;
    const bool validation_;
    std::vector<T>& best_;
    std::vector<T>& start_;
    const bool keep_;
    double best_E_ = std::numeric_limits<double>::infinity();
    std::size_t best_epoch_ = 0, waited_ = 0;
};

}  // namespace

// The epoch loop of every trainer. `epoch_updates(lr, E_epoch)` runs one epoch's updates at
// the learning rate lr, sets the epoch's loss and returns Stop::done to go on (or why to
// stop: interrupted, non_finite, converged). Around it: the learning rate of each epoch, the
// validation loss, the records, early stopping and the epoch hook.
template <class T>
template <class EpochUpdates>
FitRecord Trainer<T>::run_epochs(const Batch<T>* val, const TrainOptions& options,
                                 double base_lr, double samples_per_epoch,
                                 EpochUpdates&& epoch_updates) {
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    EarlyStopping<T> early(options, val != nullptr, best_, start_);
    FitRecord record;
    double samples_seen = 0.0;
    for (std::size_t epoch = 0; epoch < options.epochs; ++epoch) {
        early.epoch_begins(net_);
        const double lr = options.schedule.lr(base_lr, epoch, samples_seen);
        double E_epoch = 0.0;
        const Stop stop = epoch_updates(lr, E_epoch);
        if (stop == Stop::interrupted || stop == Stop::non_finite) {
            record.stop = stop;
            return record;
        }
        const double E_val = val ? loss(net_.model(), *val, ws_)
                                 : std::numeric_limits<double>::quiet_NaN();
        const double seconds = std::chrono::duration<double>(clock::now() - start).count();
        record.E.push_back(E_epoch);
        record.E_val.push_back(E_val);
        record.seconds.push_back(seconds);
        record.lr.push_back(lr);
        samples_seen += samples_per_epoch;
        const bool stop_early = early.stop_after(epoch, val ? E_val : E_epoch, net_);
        record.best_epoch = early.best_epoch();
        if (hooks_->epoch_end) {
            ParamsGate::Parked parked(gate_);
            const EpochControl control = hooks_->epoch_end({epoch, E_epoch, E_val, seconds, lr});
            if (control.stop) {
                record.stop = Stop::callback;
                return record;
            }
            if (!std::isnan(control.lr)) base_lr = control.lr;
        }
        if (stop_early) {
            early.restore(net_);
            record.stop = Stop::early_stopping;
            return record;
        }
        if (stop != Stop::done) {
            early.restore(net_);
            record.stop = stop;
            return record;
        }
    }
    early.restore(net_);  // all epochs ran: still end at the best parameters
    return record;
}

template <class T>
Stop Trainer<T>::minibatch_update(const Batch<T>& rows, const TrainOptions& options,
                                  const OptimizerConfig& config, OptimizerState<T>& state,
                                  double lr, double& E) {
    const NonFinite check;
    const bool dp = per_sample(config.method);
    try {  // checks for Ctrl-C before the minibatch, and between its chunks if several
        E = dp ? clipped_gradient_sum(net_.model(), rows, config.max_grad_norm, grad_.data(), ws_,
                                      norms_, hooks_->poll, &check)
               : gradient(net_.model(), rows, grad_.data(), ws_, hooks_->poll, &check, false);
    } catch (const Interrupted&) {
        return Stop::interrupted;  // before the update: the parameters are untouched
    }
    if (hooks_->reduce) hooks_->reduce(grad_.data(), grad_.size(), E);
    // A finite E can still have a NaN gradient (inf·0 from an infinite input into a
    // saturated σ): either stops training before the update.
    if (!std::isfinite(E) || check.seen.load()) return Stop::non_finite;
    if (hooks_->reduce && !elementwise::all_finite(grad_.data(), grad_.size()))
        return Stop::non_finite;
    if (dp) optimizer::Dpsgd::privatise(config, state.steps, grad_.data(), grad_.size(), rows.t);
    if (options.clip_norm > 0) clip_gradient(grad_.data(), grad_.size(), options.clip_norm);
    // A finite gradient can still step to inf (a huge lr, an overflowing momentum): such an
    // update is not committed either, so the parameters and the optimiser's state stay at
    // the last finite state.
    if (!update_is_finite(config, state, net_.params(), grad_.data(), net_.n_params(), lr))
        return Stop::non_finite;
    update(config, state, net_.params(), grad_.data(), net_.n_params(), lr);
    if (gate_) gate_->between_updates();
    return Stop::done;
}

template <class T>
FitRecord Trainer<T>::fit(const Batch<T>& train, const Batch<T>* val,
                          const TrainOptions& options, const OptimizerConfig& config,
                          OptimizerState<T>& state, const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    options.check();
    check(config);
    if (!state_fits(config, state, net_.n_params()))
        throw std::invalid_argument("the optimiser state does not fit this network and "
                                    "optimiser (its buffers have the wrong size)");
    const Layout& L = net_.layout();
    const std::size_t t = train.t, l_0 = L.l_in(), l_n = L.l_out();
    const std::size_t batch = options.batch_size == 0 ? t : std::min(options.batch_size, t);
    const bool gather = options.shuffle && batch < t;
    ws_.reserve(L, std::min(batch, Workspace<T>::chunk_rows(L, false, train.sparse())));
    grad_.resize(net_.n_params());
    if (gather) {
        if (train.sparse())
            x_indptr_.resize(batch + 1);
        else
            x_.resize(batch * l_0);
        y_.resize(batch * l_n);
        if (train.w) w_.resize(batch);
        order_.resize(t);
        std::iota(order_.begin(), order_.end(), std::size_t(0));
    }
    // A mean loss is a mean over the whole batch: each minibatch's share is its part of the
    // total size (rows, or weight).
    const double total = train.size();
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    SplitMix64 rng(options.seed);
    return run_epochs(val, options, config.lr, double(t), [&](double lr, double& E_epoch) {
        if (gather)  // Fisher–Yates, continuing from the previous epoch's order
            for (std::size_t k = t; k > 1; --k) std::swap(order_[k - 1], order_[rng.below(k)]);
        E_epoch = 0.0;
        for (std::size_t r0 = 0; r0 < t; r0 += batch) {
            const std::size_t rows = std::min(batch, t - r0);
            Batch<T> part = train.rows(r0, rows, l_0, l_n);
            if (gather) {
                for (std::size_t s = 0; s < rows; ++s) {
                    const std::size_t src = order_[r0 + s];
                    if (!train.sparse())
                        std::copy(train.X + src * l_0, train.X + (src + 1) * l_0,
                                  x_.data() + s * l_0);
                    std::copy(train.Y + src * l_n, train.Y + (src + 1) * l_n, y_.data() + s * l_n);
                    if (train.w) w_[s] = train.w[src];
                }
                const T* w = train.w ? w_.data() : nullptr;
                if (train.sparse())
                    part = {nullptr, y_.data(), w, rows, gather_sparse(train.Xs, r0, rows)};
                else
                    part = {x_.data(), y_.data(), w, rows};
            }
            // A minibatch whose rows all weigh 0 is left out, as each of its rows would be:
            // a mean over it would be 0/0, and an update from it would move the parameters.
            if (part.w && !(part.size() > 0)) continue;
            double E = 0.0;
            const Stop stop = minibatch_update(part, options, config, state, lr, E);
            if (stop != Stop::done) return stop;
            E_epoch += is_mean(net_.loss()) ? E * part.size() / total : E;
        }
        return Stop::done;
    });
}

// The minibatch's rows of a sparse X, in the order of order_[r0 ..], copied into x_indptr_,
// x_indices_ and x_ (data): memory of the minibatch's entries, never of a dense row.
template <class T>
CsrRows<T> Trainer<T>::gather_sparse(const CsrRows<T>& X, std::size_t r0, std::size_t rows) {
    std::size_t entries = 0;
    for (std::size_t s = 0; s < rows; ++s) {
        const std::size_t src = order_[r0 + s];
        entries += std::size_t(X.indptr[src + 1] - X.indptr[src]);
    }
    if (x_indices_.size() < entries) {
        x_indices_.resize(entries);
        x_.resize(entries);
    }
    x_indptr_[0] = 0;
    std::size_t p = 0;
    for (std::size_t s = 0; s < rows; ++s) {
        const std::size_t src = order_[r0 + s];
        const auto begin = std::size_t(X.indptr[src]), end = std::size_t(X.indptr[src + 1]);
        std::copy(X.indices + begin, X.indices + end, x_indices_.data() + p);
        std::copy(X.data + begin, X.data + end, x_.data() + p);
        p += end - begin;
        x_indptr_[s + 1] = std::int64_t(p);
    }
    return {x_indptr_.data(), x_indices_.data(), x_.data()};
}

template <class T>
double Trainer<T>::step(const Batch<T>& batch, const OptimizerConfig& config,
                        OptimizerState<T>& state, const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    check(config);
    if (!state_fits(config, state, net_.n_params()))
        throw std::invalid_argument("the optimiser state does not fit this network and "
                                    "optimiser (its buffers have the wrong size)");
    grad_.resize(net_.n_params());
    const bool dp = per_sample(config.method);
    const double E = dp ? clipped_gradient_sum(net_.model(), batch, config.max_grad_norm,
                                               grad_.data(), ws_, norms_, hooks_->poll)
                        : gradient(net_.model(), batch, grad_.data(), ws_, hooks_->poll);
    if (dp) optimizer::Dpsgd::privatise(config, state.steps, grad_.data(), grad_.size(), batch.t);
    if (!std::isfinite(E) || !elementwise::all_finite(grad_.data(), grad_.size()) ||
        !update_is_finite(config, state, net_.params(), grad_.data(), net_.n_params(), config.lr))
        throw NonFiniteStep();
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    update(config, state, net_.params(), grad_.data(), net_.n_params(), config.lr);
    return E;
}

template <class T>
FitRecord Trainer<T>::fit_lm(const Batch<T>& train, const Batch<T>* val,
                             const TrainOptions& options, LmConfig& config,
                             const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    options.check();
    if (train.sparse() || (val && val->sparse()))
        throw std::invalid_argument("Levenberg-Marquardt needs a dense X, got a sparse matrix");
    LevenbergMarquardt<T> lm(net_, ws_, train, config);
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    return run_epochs(val, options, std::numeric_limits<double>::quiet_NaN(), double(train.t),
                      [&](double, double& E_epoch) {
        const Stop stop = lm.iteration(hooks_->poll, E_epoch);
        if (gate_) gate_->between_updates();
        return stop;
    });
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace fastprop
