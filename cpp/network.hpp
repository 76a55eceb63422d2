// Network<T>: the layers, their activations, the loss and the one parameter buffer.
// Workspace<T>: the dynamic-programming table (z_i, a_i, δ_i for a chunk of rows), the
// gradient buffer and the minibatch buffers, grown to the largest size seen and reused,
// so that steady-state calls allocate nothing.
//
// The model: z_{i+1} = W_i a_i (+ b_i), a_i = σ(z_i) for 1 <= i <= n−1, a_0 = x, output z_n.
// With samples as rows, a layer is one matrix product over the batch: z_{i+1} = a_i W_iᵀ + b_i.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <vector>

#include "activations.hpp"
#include "layout.hpp"
#include "loss.hpp"
#include "optimizer.hpp"

namespace fastprop {

template <class T> class Network {
public:
    // sigma holds σ_1, ..., σ_{n−1}, one per hidden layer (empty when n = 1).
    Network(Layout layout, std::vector<Activation> sigma, Loss loss = Loss::sse);

    const Layout& layout() const { return layout_; }
    std::size_t n() const { return layout_.n(); }
    Activation sigma(std::size_t i) const { return sigma_[i - 1]; }  // 1 <= i <= n−1
    Loss loss() const { return loss_; }

    std::size_t n_params() const { return params_.size(); }
    T* params() { return params_.data(); }
    const T* params() const { return params_.data(); }
    const T* W(std::size_t i) const { return params_.data() + layout_[i].W; }
    const T* b(std::size_t i) const {
        return layout_.bias() ? params_.data() + layout_[i].b : nullptr;
    }

    // Deterministic from the seed: each W_i uniform on [−r, r], with Glorot's
    // r = sqrt(6 / (l_i + l_{i+1})), or He's r = sqrt(6 / l_i) when the activation that
    // follows W_i (σ_{i+1}; for the output layer, σ_{n−1}) is relu or leaky_relu. b_i = 0.
    void init(std::uint64_t seed);

private:
    Layout layout_;
    std::vector<Activation> sigma_;
    Loss loss_;
    std::vector<T> params_;
};

template <class T> class Workspace {
public:
    // The most rows the table holds at once for this layout: bigger batches are run in
    // chunks of this many rows, so memory stays bounded whatever the batch size. Where a
    // chunk is the unit between two checks for Ctrl-C (`polled`: forward, loss, gradient),
    // its work is bounded too. fit's chunks are bounded by memory alone: a minibatch in one
    // chunk needs no second pass over ∂E/∂W to add up parts. fit checks between minibatches
    // and, in a batch too large for one chunk, between its chunks, each at most a table's
    // worth (tens of ms for W3's layers).
    static std::size_t chunk_rows(const Layout& layout, bool polled = true);

    // Make the table hold `rows` rows of every z_i, a_i, δ_i (1 <= i <= n). Grows, never
    // shrinks.
    void reserve(const Layout& layout, std::size_t rows);
    // Make the gradient buffer hold n_params entries (training needs it, inference not).
    void reserve_grad(const Layout& layout);
    std::size_t rows() const { return rows_; }

    T* z(std::size_t i) { return table_.data() + z_[i]; }          // (rows, l_i), 1 <= i <= n
    T* a(std::size_t i) { return table_.data() + a_[i]; }          // (rows, l_i), 1 <= i <= n−1
    T* delta(std::size_t i) { return table_.data() + delta_[i]; }  // (rows, l_i), 1 <= i <= n

    std::vector<T> grad;              // ∂E/∂params, in the parameter buffer's layout
    std::vector<T> best, start;       // early stopping: the best parameters, an epoch's first
    std::vector<T> x, y;              // a shuffled minibatch, gathered: (rows, l_0), (rows, l_n)
    std::vector<std::size_t> order;   // the sample order of the current epoch

    // For the second half of a chunk that gradient() splits over two threads: a workspace of
    // its own (table and gradient), made on first use and kept.
    Workspace& half();

private:
    std::unique_ptr<Workspace> half_;
    std::vector<T> table_;
    std::vector<std::size_t> z_, a_, delta_;  // offsets into table_, indexed by layer
    std::size_t rows_ = 0;
};

// Asked between chunks and between updates; returning true stops the work.
using Poll = std::function<bool()>;

// Thrown by forward, loss, gradient and step when the poll asks them to stop.
struct Interrupted : std::exception {
    const char* what() const noexcept override { return "interrupted"; }
};

// z_n for t rows of X (t, l_0) -> out (t, l_n).
template <class T>
void forward(const Network<T>& net, const T* X, std::size_t t, T* out, Workspace<T>& ws,
             const Poll& poll = {});

// Every z_i (1 <= i <= n) and a_i (1 <= i <= n−1) of a forward pass over all t rows at
// once, left in ws (reserved here to t rows; meant for inspection, not for speed).
template <class T>
void forward_trace(const Network<T>& net, const T* X, std::size_t t, Workspace<T>& ws);

// E of t rows of X (t, l_0) against Y (t, l_n).
template <class T>
double loss(const Network<T>& net, const T* X, const T* Y, std::size_t t, Workspace<T>& ws,
            const Poll& poll = {});

// E, and ∂E/∂params written to dE_dparams (n_params entries, the parameter layout),
// summed over the t samples. t = 0 gives E = 0 and a zero gradient.
template <class T>
double gradient(const Network<T>& net, const T* X, const T* Y, std::size_t t, T* dE_dparams,
                Workspace<T>& ws, const Poll& poll = {});

// One update of the parameters from the gradient of the t samples; returns E before it.
template <class T>
double step(Network<T>& net, const T* X, const T* Y, std::size_t t, const OptimizerConfig& config,
            OptimizerState<T>& state, Workspace<T>& ws, const Poll& poll = {});

template <class T> struct FitOptions {
    std::size_t epochs = 1;
    std::size_t batch_size = 0;  // 0: the whole batch, the classic full-batch descent
    bool shuffle = false;        // permute the samples every epoch (minibatches only)
    std::uint64_t seed = 0;      // of the permutations
    const T* X_val = nullptr;    // validation set (t_val, l_0), (t_val, l_n); E_val after
    const T* Y_val = nullptr;    // every epoch when t_val > 0
    std::size_t t_val = 0;
    std::size_t patience = 0;    // > 0: stop after this many epochs without improvement of
    double min_delta = 0.0;      // the monitored loss (E_val, else E) by more than min_delta
    bool restore_best = true;    // and end at the parameters of the best epoch (also when all
                                 // epochs ran; not when the callback stopped training)
};

// converged: Levenberg–Marquardt's damping grew past its limit without finding a better point.
enum class Stop { done, interrupted, callback, non_finite, early_stopping, converged };

// Per-epoch records, each an array of `epochs` entries (E_val may be null without validation).
struct FitRecord {
    double* E = nullptr;
    double* E_val = nullptr;
    double* seconds = nullptr;  // wall time since fit began, at the end of each epoch
};

struct FitResult {
    std::size_t epochs = 0;  // completed epochs, whose records are written
    Stop stop = Stop::done;
    std::size_t best_epoch = 0;  // of the monitored loss, when patience > 0
};

struct FitHooks {
    Poll poll;  // between two updates
    std::function<bool(std::size_t epoch, double E, double E_val, double seconds)> epoch_end;
};

// `epochs` passes over the t samples, one update per minibatch. record.E[e] receives the
// loss of epoch e: the sum (for a mean loss, the row-weighted mean) of the minibatch losses,
// each taken before its update. A non-finite minibatch loss stops training before its
// update, so the parameters stay at the last finite state.
template <class T>
FitResult fit(Network<T>& net, const T* X, const T* Y, std::size_t t, const FitOptions<T>& options,
              const OptimizerConfig& config, OptimizerState<T>& state, const FitRecord& record,
              Workspace<T>& ws, const FitHooks& hooks);

}  // namespace fastprop
