// Session<T>: a network as the outside world uses it, from any number of threads: the
// network, the workspace and trainer its calls share, and the rules that keep them safe.
//
// - One call at a time uses the workspace and writes the parameters: each call holds the
//   session's lock. A fit lets go of the lock while its epoch hook runs (the parameters are
//   between two updates then), so a hook may use the network itself, or wait for another
//   thread that does, without a deadlock; a fit started from such a hook gets a trainer of
//   its own.
// - Evaluation at other parameters (an outside optimiser's trial point) reads them through a
//   Model view: the network's own buffer is never touched.
// - snapshot() copies the parameters as they are between two updates, even while another
//   thread trains the network (ParamsGate).
// - After fork(), a child whose parent had a thread inside the session gets a working
//   session (with the parameters as the fork found them) instead of a lock nobody releases.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "model/network.hpp"
#include "model/params_gate.hpp"
#include "model/workspace.hpp"
#include "train/lm.hpp"
#include "train/passes.hpp"
#include "train/trainer.hpp"

namespace fastprop {

template <class T> class Session {
public:
    explicit Session(Network<T> net);

    const Network<T>& network() const { return net_; }
    ParamsGate& gate() { return gate_; }
    // The parameter buffer, for zero-copy views; writes through it are not synchronised
    // with calls running in other threads (set_params is).
    T* params() { return net_.params(); }

    // The exclusive use of the workspace and of the parameters, for one call.
    std::unique_lock<std::mutex> lock();

    void forward(const T* X, std::size_t t, T* out, const Poll& poll,
                 const CsrRows<T>& Xs = {});  // X sparse in Xs when X is null
    // forward_trace into `ws`, the caller's own (a trace holds the whole batch at once).
    void trace(const T* X, std::size_t t, Workspace<T>& ws);
    double loss(const Batch<T>& batch, const Poll& poll);
    // E and ∂E/∂params at the network's parameters, or at `at` (n_params entries) when given.
    double gradient(const Batch<T>& batch, const T* at, T* dE_dparams, const Poll& poll);
    void jacobian(const T* X, std::size_t t, double* J, const Poll& poll);
    // Per-sample gradients (t, n_params), their norms (t), ∂E/∂X (t, l_0) and ∂z_n/∂x
    // (t, l_n, l_0): per_sample.hpp.
    double per_sample_gradients(const Batch<T>& batch, T* G, const Poll& poll);
    double per_sample_gradient_norms(const Batch<T>& batch, T* norms, const Poll& poll);
    double input_gradient(const Batch<T>& batch, T* dE_dX, const Poll& poll);
    void input_jacobian(const T* X, std::size_t t, T* J, const Poll& poll);

    double step(const Batch<T>& batch, const OptimizerConfig& config, OptimizerState<T>& state,
                const Poll& poll);
    FitRecord fit(const Batch<T>& train, const Batch<T>* val, const TrainOptions& options,
                  const OptimizerConfig& config, OptimizerState<T>& state,
                  const TrainHooks<T>& hooks);
    FitRecord fit_lm(const Batch<T>& train, const Batch<T>* val, const TrainOptions& options,
                     LmConfig& config, const TrainHooks<T>& hooks);

    void init(std::uint64_t seed);
    void set_params(const T* values);  // n_params entries
    void snapshot(T* out);             // n_params entries, a state between two updates

private:
    // The trainer for a fit or step: the session's own, or a fresh one when the session's is
    // inside a fit paused in its epoch hook.
    template <class Run> auto with_trainer(Run&& run);
    void recover_after_fork();

    Network<T> net_;
    Workspace<T> ws_;
    ParamsGate gate_;
    Trainer<T> trainer_;
    bool trainer_busy_ = false;  // under mutex_
    std::mutex mutex_;
    std::atomic<std::uint64_t> forks_seen_;
};

}  // namespace fastprop
