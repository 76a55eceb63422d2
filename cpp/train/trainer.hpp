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
    std::size_t block_rows = 0;  // > 0: each minibatch's gradient (and E, and the validation
                                 // loss) summed in the fixed tree of blocks of this many rows
                                 // (blocks.hpp): the same bits on any number of processes
    // Resuming a fit from a checkpoint taken after start_epoch epochs: the sample orders of
    // those epochs are drawn again (and skipped), the schedule continues from them, and early
    // stopping starts from best_loss (NaN: none yet), best_epoch and waited (and
    // TrainHooks::best_params, the parameters it would restore).
    std::size_t start_epoch = 0;
    double best_loss = std::numeric_limits<double>::quiet_NaN();
    std::size_t best_epoch = 0, waited = 0;

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

// Data-parallel training over `ranks` processes (with TrainOptions::block_rows > 0): the
// trainer of every rank walks the whole data set (t rows: the train batch holds only its
// sample weights, or none), every rank draws the same sample order, computes the tree nodes
// of its blocks of each minibatch (blocks::owned, blocks::nodes), and `exchange` gives every
// rank every rank's nodes, from which each completes the same tree and applies the same
// update.
template <class T> struct DataParallel {
    std::size_t rank = 0, ranks = 1;
    // At the start of every epoch, with its sample order (t global row indices): the rows of
    // this rank's blocks of every minibatch of the epoch, minibatch after minibatch. The rows
    // stay valid until the next call.
    std::function<Batch<T>(const std::size_t* order, std::size_t t)> epoch_rows;
    // This rank's blocks of the validation set (its rows, in order).
    Batch<T> val_rows;
    // An all-gather of bytes: `send` (counts[rank] bytes) from this rank, every rank's bytes
    // to `recv`, in rank order, counts[q] from rank q.
    std::function<void(const unsigned char* send, unsigned char* recv, const std::size_t* counts)>
        exchange;
    // An all-gather in place when `send` is recv + counts[0] + ... + counts[rank - 1].
    // Optional, an all-to-all of bytes: counts_to[q] bytes from send + displs_to[q] to rank
    // q, counts_from[q] bytes from rank q into `recv` (in rank order). With it, the
    // gradient's tree is summed as a reduce-scatter: rank q completes the tree over its slice
    // of the parameters alone, and `exchange` all-gathers the summed slices (2·n_params
    // values through each rank per step, at any number of ranks, instead of every rank's
    // nodes to every rank).
    std::function<void(const unsigned char* send, const std::size_t* counts_to,
                       const std::size_t* displs_to, unsigned char* recv,
                       const std::size_t* counts_from)>
        scatter;
};

template <class T> struct TrainHooks {
    Poll poll;  // between two updates, and between the chunks of a batch
    std::function<EpochControl(const EpochLog&)> epoch_end;
    // Between the backward pass and the update, on the minibatch's gradient and its E (for
    // example: summing both across processes). Optional.
    std::function<void(T* grad, std::size_t n_params, double& E)> reduce;
    // Data-parallel training (block_rows > 0). Optional.
    const DataParallel<T>* parallel = nullptr;
    // Resuming with early stopping (TrainOptions::start_epoch): the parameters it would
    // restore so far (n_params of them), or null for none.
    const T* best_params = nullptr;
};

// One entry per completed epoch: its loss E (the sum, for a mean loss the row-weighted mean,
// of its minibatch losses, each taken before its update), E_val (NaN without validation), the
// wall time since the fit began and the learning rate used.
struct FitRecord {
    std::vector<double> E, E_val, seconds, lr;
    Stop stop = Stop::done;
    std::size_t best_epoch = 0;  // of the monitored loss, when patience > 0
    long fault_rank = -1;        // data-parallel, Stop::non_finite: the first rank whose part
                                 // was not finite
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
    // The minibatch update in blocks (block_rows > 0): `mine` holds the rows of this rank's
    // blocks of a minibatch of `rows` rows whose size (rows or total weight) is `size`.
    Stop blocked_update(const Batch<T>& mine, std::size_t rows, double size,
                        const TrainOptions& options, const OptimizerConfig& config,
                        OptimizerState<T>& state, double lr, double& E);
    // The tree sum over the blocks of a batch of `rows` rows (E alone when n = 0, into out
    // otherwise), this rank's blocks from `mine`, exchanged with the other ranks. Returns
    // false when a rank was interrupted.
    bool tree_sum(const Batch<T>& mine, std::size_t rows, std::size_t block_rows, double size,
                  std::size_t n, T* out, double& E);
    double validation_loss(const Batch<T>& val, const TrainOptions& options);
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
    // blocked: buffers of the tree's nodes, the bytes exchanged, the fault's rank.
    std::vector<std::vector<T>> pool_;
    std::vector<unsigned char> send_, recv_, scatter_, tails_;
    std::vector<std::size_t> counts_, counts_to_, counts_from_, counts_tail_, displs_to_, slices_;
    long fault_rank_ = -1;
    std::vector<double> norms_;  // DP-SGD: the per-sample clipping factors of a chunk
};

}  // namespace fastprop
