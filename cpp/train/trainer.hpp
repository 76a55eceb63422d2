// The one trainer: the epoch loop, the minibatch loop and the update, written once and shared
// by gradient descent (every first-order optimiser), Levenberg–Marquardt and what plugs in
// next (see ARCHITECTURE.md).
//
//   fit:    for each epoch: the learning rate of the epoch (schedule, or the last one the epoch
//           hook set); the epoch's updates (minibatches: gather, gradient by backpropagation,
//           hooks.reduce, clipping, the update); the validation loss; the records; early
//           stopping; the epoch hook. Stops early on Ctrl-C (poll), a non-finite loss or
//           gradient, the hook, early stopping or convergence (Levenberg–Marquardt).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <limits>
#include <vector>

#include "model/network.hpp"
#include "model/params_gate.hpp"
#include "model/workspace.hpp"
#include "runtime/interrupt.hpp"
#include "train/optimizer.hpp"
#include "train/passes.hpp"

namespace fastprop {

// Why a fit ended. converged: Levenberg–Marquardt's damping grew past its limit without
// finding a better point.
enum class Stop { done, interrupted, callback, non_finite, early_stopping, converged };

const char* stop_name(Stop stop);

// How the learning rate moves from epoch to epoch (epoch e from 0, base rate lr):
//   constant    lr
//   step        lr · gamma^⌊e / step_size⌋                         (torch's StepLR)
//   cosine      eta_min + (lr − eta_min)(1 + cos(π e / t_max)) / 2  (torch's CosineAnnealingLR,
//               held at eta_min past t_max)
//   invscaling  lr / (1 + s)^power_t, s the samples seen before the epoch (scikit-learn's)
struct Schedule {
    enum class Kind { constant, step, cosine, invscaling };
    Kind kind = Kind::constant;
    std::size_t step_size = 1;
    double gamma = 0.1;
    std::size_t t_max = 1;
    double eta_min = 0.0;
    double power_t = 0.5;

    double lr(double base, std::size_t epoch, double samples_seen) const;
    void check() const;  // std::invalid_argument for a parameter out of range
};

struct TrainOptions {
    std::size_t epochs = 1;
    std::size_t batch_size = 0;  // 0: the whole batch, the classic full-batch descent
    bool shuffle = false;        // permute the samples every epoch (minibatches only)
    std::uint64_t seed = 0;      // of the permutations
    std::size_t patience = 0;    // > 0: stop after this many epochs without improvement of
    double min_delta = 0.0;      // the monitored loss (E_val, else E) by more than min_delta
    bool restore_best = true;    // and end at the parameters of the best epoch (also when all
                                 // epochs ran; not when the hook stopped training)
    Schedule schedule;
    double clip_norm = 0.0;      // > 0: scale the gradient down to this global L2 norm when
                                 // it is longer (torch.nn.utils.clip_grad_norm_)

    void check() const;
};

struct EpochLog {
    std::size_t epoch;
    double E, E_val, seconds, lr;
};

// What the epoch hook may ask for: to stop, or another base learning rate from the next
// epoch on (NaN: unchanged).
struct EpochControl {
    bool stop = false;
    double lr = std::numeric_limits<double>::quiet_NaN();
};

template <class T> struct TrainHooks {
    Poll poll;  // between two updates, and between the chunks of a batch
    std::function<EpochControl(const EpochLog&)> epoch_end;
    // Between the backward pass and the update, on the minibatch's gradient and its E (for
    // example: summing both across processes). Optional.
    std::function<void(T* grad, std::size_t n_params, double& E)> reduce;
};

// One entry per completed epoch: its loss E (the sum, for a mean loss the row-weighted mean,
// of its minibatch losses, each taken before its update), E_val (NaN without validation), the
// wall time since the fit began and the learning rate used.
struct FitRecord {
    std::vector<double> E, E_val, seconds, lr;
    Stop stop = Stop::done;
    std::size_t best_epoch = 0;  // of the monitored loss, when patience > 0
    std::size_t epochs() const { return E.size(); }
};

// Thrown by Trainer::step when the loss, its gradient or the updated parameters would be NaN
// or infinite; nothing was written.
struct NonFiniteStep : std::exception {
    const char* what() const noexcept override {
        return "the loss, its gradient or the updated parameters would be NaN or infinite; "
               "the parameters are left as they were (check the data for NaN or inf, or try "
               "a smaller lr)";
    }
};

struct LmConfig;

template <class T> class Trainer {
public:
    // Trains `net` using `ws` for its passes. `gate`, when given, is told when the
    // parameters are between two updates (for snapshots from other threads). One trainer
    // runs one fit at a time: its buffers hold the fit's state between epochs.
    Trainer(Network<T>& net, Workspace<T>& ws, ParamsGate* gate = nullptr)
        : net_(net), ws_(ws), gate_(gate) {}

    // `options.epochs` passes over `train`, one update per minibatch. A non-finite
    // minibatch loss or gradient, or an update that would make a parameter non-finite,
    // stops training before that update, so the parameters stay at the last finite state.
    FitRecord fit(const Batch<T>& train, const Batch<T>* val, const TrainOptions& options,
                  const OptimizerConfig& config, OptimizerState<T>& state,
                  const TrainHooks<T>& hooks = {});

    // Levenberg–Marquardt: one iteration per epoch on the whole batch (lm.hpp).
    FitRecord fit_lm(const Batch<T>& train, const Batch<T>* val, const TrainOptions& options,
                     LmConfig& config, const TrainHooks<T>& hooks = {});

    // One update from the gradient of the whole batch; returns E before it. Interrupted
    // (from hooks.poll) and NonFiniteStep leave the parameters untouched.
    double step(const Batch<T>& batch, const OptimizerConfig& config, OptimizerState<T>& state,
                const TrainHooks<T>& hooks = {});

private:
    template <class EpochUpdates>
    FitRecord run_epochs(const Batch<T>* val, const TrainOptions& options, double base_lr,
                         double samples_per_epoch, EpochUpdates&& epoch_updates);
    // The gradient of one minibatch, reduced and clipped, then the update. Stop::done, or
    // why it did not update (interrupted, non_finite).
    Stop minibatch_update(const Batch<T>& rows, const TrainOptions& options,
                          const OptimizerConfig& config, OptimizerState<T>& state, double lr,
                          double& E);
    bool poll();
    CsrRows<T> gather_sparse(const CsrRows<T>& X, std::size_t r0, std::size_t rows);

    Network<T>& net_;
    Workspace<T>& ws_;
    ParamsGate* gate_;
    const TrainHooks<T>* hooks_ = nullptr;  // of the call in progress
    // The trainer's own memory, kept between fits (no allocation once sizes are seen): the
    // gradient, a shuffled minibatch gathered (of a sparse X: its rows' entries, x_ their
    // values), the sample order of the current epoch, and early stopping's parameters.
    std::vector<T> grad_, x_, y_, w_;
    std::vector<std::int64_t> x_indptr_, x_indices_;
    std::vector<std::size_t> order_;
    std::vector<T> best_, start_;
    std::vector<double> norms_;  // DP-SGD: the per-sample clipping factors of a chunk
};

}  // namespace fastprop
