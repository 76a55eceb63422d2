// The rules a Session keeps for calls from many threads, driven from C++ alone: evaluation at
// other parameters leaves the network's untouched; snapshots taken while another thread trains
// are states between two updates; an epoch hook may use the network, or wait for a thread that
// does; after fork() the child can use a session whose lock a parent thread held; Ctrl-C (the
// poll) stops a fit at its last update; the thread count is bounded.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "runtime/random.hpp"
#include "runtime/settings.hpp"
#include "runtime/threads.hpp"
#include "train/session.hpp"

namespace fp = fastprop;

namespace {

int failures = 0;

void check(bool ok, const char* what) {
    if (!ok) {
        std::printf("FAIL %s\n", what);
        ++failures;
    }
}

struct Data {
    std::size_t t;
    std::vector<double> X, Y;
    fp::Batch<double> batch() const { return {X.data(), Y.data(), nullptr, t}; }
};

Data random_data(std::size_t t, std::size_t l_0, std::size_t l_n, std::uint64_t seed) {
    fp::SplitMix64 rng(seed);
    Data d{t, std::vector<double>(t * l_0), std::vector<double>(t * l_n)};
    for (double& x : d.X) x = 2 * rng.uniform() - 1;
    for (double& y : d.Y) y = 2 * rng.uniform() - 1;
    return d;
}

std::unique_ptr<fp::Session<double>> make_session(std::vector<std::size_t> layers) {
    fp::Network<double> net(fp::Layout(layers, true),
                            std::vector<fp::Activation>(layers.size() - 2, fp::Activation::tanh));
    auto session = std::make_unique<fp::Session<double>>(std::move(net));
    session->init(5);
    return session;
}

// FNV-1a over the bytes: states are compared by their hashes, to keep few in memory.
std::uint64_t hash_of(const std::vector<double>& v) {
    std::uint64_t h = 1469598103934665603ull;
    const auto* bytes = reinterpret_cast<const unsigned char*>(v.data());
    for (std::size_t k = 0; k < v.size() * sizeof(double); ++k) h = (h ^ bytes[k]) * 1099511628211ull;
    return h;
}

std::vector<double> params_of(fp::Session<double>& s) {
    std::vector<double> out(s.network().n_params());
    s.snapshot(out.data());
    return out;
}

void gradient_at_other_parameters_leaves_the_network_alone() {
    auto owner = make_session({5, 9, 3});
    fp::Session<double>& session = *owner;
    const Data d = random_data(20, 5, 3, 1);
    const std::size_t P = session.network().n_params();
    const std::vector<double> own = params_of(session);
    std::vector<double> other(P), g_other(P), g_set(P);
    for (std::size_t k = 0; k < P; ++k) other[k] = own[k] + 0.25;
    const double E_other = session.gradient(d.batch(), other.data(), g_other.data(), {});
    check(params_of(session) == own, "gradient at other parameters keeps the network's");
    session.set_params(other.data());
    const double E_set = session.gradient(d.batch(), nullptr, g_set.data(), {});
    check(E_other == E_set && g_other == g_set,
          "gradient at other parameters equals the gradient after setting them");
}

// Full-batch SGD: one update per epoch, each state recorded by the epoch hook; snapshots from
// another thread during the fit must each be one of those states (or the first).
void snapshots_during_a_fit_are_states_between_updates() {
    // Two rows and 180k parameters: the update is a good part of each step, so a copy that
    // ignored the updates would catch one in the middle (it does, when the gate is bypassed).
    auto owner = make_session({300, 300, 300, 4});
    fp::Session<double>& session = *owner;
    const Data d = random_data(2, 300, 4, 2);
    std::set<std::uint64_t> states{hash_of(params_of(session))};
    std::atomic<bool> done{false};
    std::vector<std::uint64_t> snapshots;
    std::thread reader([&] {
        while (!done.load()) snapshots.push_back(hash_of(params_of(session)));
    });
    fp::TrainOptions options;
    options.epochs = 200;
    fp::OptimizerConfig sgd;
    sgd.lr = 1e-3;
    fp::OptimizerState<double> state = fp::make_state<double>(sgd, session.network().n_params());
    fp::TrainHooks<double> hooks;
    hooks.epoch_end = [&](const fp::EpochLog&) {
        states.insert(hash_of(params_of(session)));
        return fp::EpochControl{};
    };
    session.fit(d.batch(), nullptr, options, sgd, state, hooks);
    done = true;
    reader.join();
    std::size_t torn = 0;
    for (const auto& s : snapshots) torn += states.count(s) == 0;
    std::printf("snapshots during a fit: %zu taken, %zu not a state between updates\n",
                snapshots.size(), torn);
    check(snapshots.size() > 0 && torn == 0, "every snapshot is a state between two updates");
}

// The hook calls the network itself, and waits for another thread that calls it too.
void an_epoch_hook_may_use_the_network_and_wait_for_others() {
    auto owner = make_session({4, 6, 2});
    fp::Session<double>& session = *owner;
    const Data d = random_data(16, 4, 2, 3);
    fp::TrainOptions options;
    options.epochs = 5;
    fp::OptimizerConfig sgd;
    fp::OptimizerState<double> state = fp::make_state<double>(sgd, session.network().n_params());
    std::vector<double> out(d.t * 2);
    int calls = 0;
    fp::TrainHooks<double> hooks;
    hooks.epoch_end = [&](const fp::EpochLog&) {
        session.forward(d.X.data(), d.t, out.data(), {});  // same thread
        std::thread other([&] { session.loss(d.batch(), {}); });
        other.join();  // another thread, waited for
        fp::OptimizerState<double> inner =
            fp::make_state<double>(sgd, session.network().n_params());
        fp::TrainOptions one;
        session.fit(d.batch(), nullptr, one, sgd, inner, {});  // a fit inside the fit
        ++calls;
        return fp::EpochControl{};
    };
    const fp::FitRecord record = session.fit(d.batch(), nullptr, options, sgd, state, hooks);
    check(calls == 5 && record.epochs() == 5 && state.steps == 5,
          "an epoch hook may use the network, a thread that does, and a fit of its own");
}

void a_poll_stops_a_fit_at_its_last_update() {
    auto owner = make_session({4, 6, 2});
    fp::Session<double>& session = *owner;
    const Data d = random_data(16, 4, 2, 4);
    fp::TrainOptions options;
    options.epochs = 1000;
    options.batch_size = 4;
    fp::OptimizerConfig sgd;
    fp::OptimizerState<double> state = fp::make_state<double>(sgd, session.network().n_params());
    int polls = 0;
    fp::TrainHooks<double> hooks;
    hooks.poll = [&] { return ++polls > 10; };  // the 11th poll: "Ctrl-C"
    const fp::FitRecord record = session.fit(d.batch(), nullptr, options, sgd, state, hooks);
    check(record.stop == fp::Stop::interrupted && state.steps == 10 && record.epochs() == 2,
          "the poll stops the fit between two updates, the records holding the epochs done");
}

// A thread holds the session's lock (inside a long forward) when the process forks: the
// child's calls on the session must still go through.
void a_child_can_use_a_session_locked_at_fork() {
    auto owner = make_session({256, 256, 256, 1});
    fp::Session<double>& session = *owner;
    const Data d = random_data(4000, 256, 1, 5);
    std::vector<double> out(d.t);
    std::atomic<bool> inside{false}, stop{false};
    std::thread busy([&] {
        while (!stop.load()) {
            auto held = session.lock();
            inside = true;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
    });
    while (!inside.load()) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    const pid_t child = fork();
    if (child == 0) {
        alarm(20);  // a hang fails the test instead of blocking it
        fp::set_num_threads(1);  // no new threads in the child (ThreadSanitizer forbids them)
        std::vector<double> z(d.t);
        session.forward(d.X.data(), d.t, z.data(), {});
        std::vector<double> p(session.network().n_params());
        session.snapshot(p.data());
        _exit(std::isfinite(z[0]) ? 0 : 3);
    }
    int status = 0;
    waitpid(child, &status, 0);
    stop = true;
    busy.join();
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "a child uses a session whose lock a thread of the parent held at fork");
}

void the_thread_count_is_bounded() {
    bool refused = false;
    try {
        fp::set_num_threads(static_cast<long long>(fp::max_threads()) + 1);
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    check(refused, "set_num_threads refuses more than max_threads()");
    const fp::ThreadCount huge = fp::parse_thread_count("100000000000000000000000");
    check(huge.value && *huge.value == fp::max_threads() && huge.capped,
          "a thread count past the bound in the environment is capped");
    check(!fp::parse_thread_count("3x").value && !fp::parse_thread_count("0").value &&
              *fp::parse_thread_count(" 4").value == 4,
          "thread counts parse as strtol reads them in full");
    fp::set_num_threads(2);
}

}  // namespace

int main() {
    gradient_at_other_parameters_leaves_the_network_alone();
    snapshots_during_a_fit_are_states_between_updates();
    an_epoch_hook_may_use_the_network_and_wait_for_others();
    a_poll_stops_a_fit_at_its_last_update();
    a_child_can_use_a_session_locked_at_fork();
    the_thread_count_is_bounded();
    std::printf(failures ? "session test: %d failed\n" : "session test: all passed\n", failures);
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
