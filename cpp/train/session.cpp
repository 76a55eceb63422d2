#include "train/session.hpp"

#include <pthread.h>

#include <algorithm>
#include <new>
#include <utility>

#include "train/per_sample.hpp"

namespace fastprop {
namespace {

// Counts the fork()s of this process, as seen by the child: a session compares it with the
// count it last saw to learn that it lives in a child now.
std::atomic<std::uint64_t> g_forks{0};
std::once_flag g_atfork_once;

void count_fork_in_child() { g_forks.fetch_add(1, std::memory_order_relaxed); }

std::uint64_t forks() {
    std::call_once(g_atfork_once, [] { pthread_atfork(nullptr, nullptr, &count_fork_in_child); });
    return g_forks.load(std::memory_order_relaxed);
}

}  // namespace

template <class T>
Session<T>::Session(Network<T> net)
    : net_(std::move(net)), trainer_(net_, ws_, &gate_), forks_seen_(forks()) {}

template <class T> void Session<T>::recover_after_fork() {
    const std::uint64_t now = forks();
    std::uint64_t seen = forks_seen_.load();
    if (seen == now || !forks_seen_.compare_exchange_strong(seen, now)) return;
    // Only the thread that forked lives on in the child: whatever the parent's other
    // threads held is held by nobody now.
    new (&mutex_) std::mutex();
    gate_.reset_after_fork();
    trainer_busy_ = false;
}

template <class T> std::unique_lock<std::mutex> Session<T>::lock() {
    recover_after_fork();
    return std::unique_lock<std::mutex>(mutex_);
}

template <class T>
template <class Run>
auto Session<T>::with_trainer(Run&& run) {
    // Called with the lock held.
    if (trainer_busy_) {
        Trainer<T> own(net_, ws_, &gate_);
        return run(own);
    }
    trainer_busy_ = true;
    struct Free {
        bool& busy;
        ~Free() { busy = false; }
    } free{trainer_busy_};
    return run(trainer_);
}

template <class T>
void Session<T>::forward(const T* X, std::size_t t, T* out, const Poll& poll,
                         const CsrRows<T>& Xs) {
    auto held = lock();
    fastprop::forward(net_.model(), X, t, out, ws_, poll, Xs);
}

template <class T> void Session<T>::trace(const T* X, std::size_t t, Workspace<T>& ws) {
    auto held = lock();
    forward_trace(net_.model(), X, t, ws);
}

template <class T> double Session<T>::loss(const Batch<T>& batch, const Poll& poll) {
    auto held = lock();
    return fastprop::loss(net_.model(), batch, ws_, poll);
}

template <class T>
double Session<T>::gradient(const Batch<T>& batch, const T* at, T* dE_dparams, const Poll& poll) {
    auto held = lock();
    return fastprop::gradient(at ? net_.model_at(at) : net_.model(), batch, dE_dparams, ws_, poll);
}

template <class T>
void Session<T>::jacobian(const T* X, std::size_t t, double* J, const Poll& poll) {
    auto held = lock();
    fastprop::jacobian(net_.model(), X, t, J, ws_, poll);
}

template <class T>
double Session<T>::per_sample_gradients(const Batch<T>& batch, T* G, const Poll& poll) {
    auto held = lock();
    return fastprop::per_sample_gradients(net_.model(), batch, G, ws_, poll);
}

template <class T>
double Session<T>::per_sample_gradient_norms(const Batch<T>& batch, T* norms, const Poll& poll) {
    auto held = lock();
    return fastprop::per_sample_gradient_norms(net_.model(), batch, norms, ws_, poll);
}

template <class T>
double Session<T>::input_gradient(const Batch<T>& batch, T* dE_dX, const Poll& poll) {
    auto held = lock();
    return fastprop::input_gradient(net_.model(), batch, dE_dX, ws_, poll);
}

template <class T>
void Session<T>::input_jacobian(const T* X, std::size_t t, T* J, const Poll& poll) {
    auto held = lock();
    fastprop::input_jacobian(net_.model(), X, t, J, ws_, poll);
}

template <class T>
double Session<T>::step(const Batch<T>& batch, const OptimizerConfig& config,
                        OptimizerState<T>& state, const Poll& poll) {
    auto held = lock();
    TrainHooks<T> hooks;
    hooks.poll = poll;
    return with_trainer([&](Trainer<T>& trainer) { return trainer.step(batch, config, state, hooks); });
}

namespace {

// The hooks of a fit as the session runs them: the epoch hook without the session's lock.
template <class T>
TrainHooks<T> unlocked_epoch_hook(const TrainHooks<T>& hooks, std::unique_lock<std::mutex>& held) {
    TrainHooks<T> out = hooks;
    if (hooks.epoch_end)
        out.epoch_end = [&held, &hooks](const EpochLog& log) {
            held.unlock();
            struct Relock {
                std::unique_lock<std::mutex>& held;
                ~Relock() { held.lock(); }
            } relock{held};
            return hooks.epoch_end(log);
        };
    return out;
}

}  // namespace

template <class T>
FitRecord Session<T>::fit(const Batch<T>& train, const Batch<T>* val,
                          const TrainOptions& options, const OptimizerConfig& config,
                          OptimizerState<T>& state, const TrainHooks<T>& hooks) {
    auto held = lock();
    const TrainHooks<T> run = unlocked_epoch_hook(hooks, held);
    return with_trainer([&](Trainer<T>& trainer) {
        return trainer.fit(train, val, options, config, state, run);
    });
}

template <class T>
FitRecord Session<T>::fit_lm(const Batch<T>& train, const Batch<T>* val,
                             const TrainOptions& options, LmConfig& config,
                             const TrainHooks<T>& hooks) {
    auto held = lock();
    const TrainHooks<T> run = unlocked_epoch_hook(hooks, held);
    return with_trainer([&](Trainer<T>& trainer) {
        return trainer.fit_lm(train, val, options, config, run);
    });
}

template <class T> void Session<T>::init(std::uint64_t seed) {
    auto held = lock();
    ParamsGate::Writing writing(gate_);
    net_.init(seed);
}

template <class T> void Session<T>::set_params(const T* values) {
    auto held = lock();
    ParamsGate::Writing writing(gate_);
    std::copy(values, values + net_.n_params(), net_.params());
}

template <class T> void Session<T>::snapshot(T* out) {
    recover_after_fork();
    gate_.read([&] { std::copy(net_.params(), net_.params() + net_.n_params(), out); });
}

template class Session<float>;
template class Session<double>;

}  // namespace fastprop
