#include "network.hpp"

#include <algorithm>
#include <cmath>
#include <exception>
#include <numeric>

#include "elementwise.hpp"
#include "gemm.hpp"  // get_num_threads
#include "kernels.hpp"
#include "passes.hpp"
#include "random.hpp"
#include "threads.hpp"

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

template <class T>
std::size_t Workspace<T>::chunk_rows(const Layout& layout, bool polled) {
    // Memory: z, a and δ of every layer after the input, plus the gathered x and y, per row.
    const std::size_t per_row = 3 * layout.units_after_input() + layout.l_in() + layout.l_out();
    constexpr std::size_t table_budget = std::size_t(1) << 23;  // entries
    std::size_t rows = table_budget / per_row;
    if (polled) {
        // Time: the chunk is the unit between two checks for Ctrl-C, so its forward and
        // backward work (6 flops per weight per row) is kept near 12 GFLOP, well under 0.1 s
        // here.
        std::size_t weights = 0;
        for (std::size_t i = 0; i < layout.n(); ++i) weights += layout[i].l_in * layout[i].l_out;
        constexpr double flop_budget = 12e9;
        const double by_time = flop_budget / (6.0 * double(std::max<std::size_t>(weights, 1)));
        rows = std::min(rows, std::size_t(std::max(by_time, 1.0)));
    }
    return std::clamp<std::size_t>(rows, 64, 8192);
}

template <class T> void Workspace<T>::reserve_grad(const Layout& layout) {
    if (grad.size() != layout.n_params()) grad.assign(layout.n_params(), T(0));
}

template <class T> void Workspace<T>::reserve(const Layout& layout, std::size_t rows) {
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

template <class T> Workspace<T>& Workspace<T>::half() {
    if (!half_) half_ = std::make_unique<Workspace>();
    return *half_;
}

namespace {

// Whether gradient() (and loss(), for the same sum) splits a chunk of `rows` samples into
// two halves, each run through the forward and backward passes on its own thread with its own
// table and gradient, the two gradients summed after. That pays for small layers, whose
// matrix products are too short to be split over threads themselves (such a split costs a
// hand-off per product; the halves cost one per step). The choice depends on the rows and
// the layout alone, never on the number of threads, so that the sums, and with them the
// results, are the same bits on any number of threads (one thread runs both halves).
//
// The halves pay when each has enough rows to outweigh moving the parameters and the second
// gradient between the cores every step. Measured, [64, 64, 64, 10] (8.8k parameters),
// samples/s of fit with 2 threads (halves) against the unsplit batch on one:
//   Zen 3:              minibatch 32: 1.3x (float32), 1.17x (float64)
//   Xeon (AVX-512 VM):  minibatch 32: 0.55x / 0.70x;  64: 0.80x / 1.30x;  128: 1.22x / 1.51x
// and the halves cost 5-20% on one thread (half-height products, the gradients' sum).
// So a chunk is split from 128 rows on (halves of 64); [784, 256, 256, 10] on 128 rows
// (2^25 multiply-adds), where the products split themselves, gained nothing measurable and
// would double the gradient's memory.
constexpr std::size_t halves_min_rows = 128;
constexpr std::size_t halves_min_work = std::size_t(1) << 14;
constexpr std::size_t halves_max_work = std::size_t(1) << 21;

bool split_in_halves(const Layout& L, std::size_t rows) {
    std::size_t weights = 0;
    for (std::size_t i = 0; i < L.n(); ++i) weights += L[i].l_in * L[i].l_out;
    const std::size_t work = rows * weights;  // multiply-adds of the forward pass
    return rows >= halves_min_rows && work >= halves_min_work && work <= halves_max_work;
}

// E of `rows` samples (of a batch of t) on one thread and, when dE_dparams is given, their
// gradient written to (or, when accumulating, added to) it: the forward recurrence, then
// the backward one or E alone.
template <class T>
double rows_pass(const Network<T>& net, const T* x, const T* y, std::size_t rows,
                 std::size_t t, T* dE_dparams, Workspace<T>& ws, bool accumulate,
                 const NonFinite* check = nullptr) {
    const std::size_t n = net.n();
    const bool backward = dE_dparams != nullptr;
    detail::forward_rows(net, x, rows, ws, ws.z(n), backward);
    return backward ? detail::backward_rows(net, x, y, rows, t, ws, dE_dparams, accumulate,
                                            check)
                    : loss_and_delta(net.loss(), ws.delta(n), ws.z(n), y, rows,
                                     net.layout().l_out(), t);
}

template <class T> struct Halves {
    const Network<T>& net;
    const T* x;
    const T* y;
    std::size_t rows[2];
    std::size_t t;
    Workspace<T>* ws[2];
    T* dE_dparams[2];  // both null for E alone
    bool accumulate;   // the first half adds to dE_dparams; the second always writes its own
    double E[2] = {0.0, 0.0};
    std::exception_ptr error[2];
};

template <class T> void run_half(void* context, std::size_t k) {
    Halves<T>& job = *static_cast<Halves<T>*>(context);
    try {  // nothing may escape a pool task; the caller rethrows
        const Layout& L = job.net.layout();
        const std::size_t r0 = k == 0 ? 0 : job.rows[0];
        job.E[k] = rows_pass(job.net, job.x + r0 * L.l_in(), job.y + r0 * L.l_out(), job.rows[k],
                             job.t, job.dE_dparams[k], *job.ws[k], k == 0 && job.accumulate);
    } catch (...) {
        job.error[k] = std::current_exception();
    }
}

// rows_pass over one chunk, as two halves on two threads when split_in_halves says so: the
// second half's gradient goes to its own buffer and is then added, and E is the sum of the
// halves' in both loss() and gradient(), so the two give the same E bit for bit. With
// `check`, inf or NaN in the gradient (as summed so far) raises check->seen.
template <class T>
double chunk_pass(const Network<T>& net, const T* x, const T* y, std::size_t rows,
                  std::size_t t, T* dE_dparams, Workspace<T>& ws, bool accumulate,
                  const NonFinite* check = nullptr) {
    const Layout& L = net.layout();
    if (!split_in_halves(L, rows))
        return rows_pass(net, x, y, rows, t, dE_dparams, ws, accumulate, check);
    const bool backward = dE_dparams != nullptr;
    Workspace<T>& other = ws.half();
    other.reserve(L, rows / 2);
    if (backward) other.reserve_grad(L);
    Halves<T> job{net, x, y, {rows - rows / 2, rows / 2}, t, {&ws, &other},
                  {dE_dparams, backward ? other.grad.data() : nullptr}, accumulate, {0.0, 0.0}, {}};
    if (get_num_threads() > 1) {
        threads::parallel_for(2, &run_half<T>, &job);
    } else {
        run_half<T>(&job, 0);
        run_half<T>(&job, 1);
    }
    for (const std::exception_ptr& error : job.error)
        if (error) std::rethrow_exception(error);
    if (backward) {
        elementwise::add(dE_dparams, other.grad.data(), net.n_params());
        if (check && !elementwise::all_finite(dE_dparams, net.n_params())) check->seen = true;
    }
    return job.E[0] + job.E[1];
}

}  // namespace

template <class T>
void forward(const Network<T>& net, const T* X, std::size_t t, T* out, Workspace<T>& ws,
             const Poll& poll) {
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(net.layout()));
    ws.reserve(net.layout(), chunk);
    const std::size_t l_0 = net.layout().l_in(), l_n = net.layout().l_out();
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        detail::check_poll(poll);
        detail::forward_rows(net, X + r0 * l_0, std::min(chunk, t - r0), ws, out + r0 * l_n, false);
    }
}

template <class T>
void forward_trace(const Network<T>& net, const T* X, std::size_t t, Workspace<T>& ws) {
    ws.reserve(net.layout(), t);
    detail::forward_rows(net, X, t, ws, ws.z(net.n()), false);
}

template <class T>
double loss(const Network<T>& net, const T* X, const T* Y, std::size_t t, Workspace<T>& ws,
            const Poll& poll) {
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(net.layout()));
    ws.reserve(net.layout(), chunk);
    const Layout& L = net.layout();
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        detail::check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        E += chunk_pass<T>(net, X + r0 * L.l_in(), Y + r0 * L.l_out(), rows, t, nullptr, ws, false);
    }
    return E;
}

namespace {

// gradient(), and with `check`, whether the gradient holds inf or NaN: non-finiteness survives
// every later sum (inf + x is inf or NaN), so a check of each chunk's sums as they are
// written, in cache, finds it in the whole. `poll` is checked before each chunk (Interrupted);
// with `work_cap` the chunks are also bounded by work (chunk_rows).
template <class T>
double gradient_checked(const Network<T>& net, const T* X, const T* Y, std::size_t t,
                        T* dE_dparams, Workspace<T>& ws, const Poll& poll,
                        const NonFinite* check, bool work_cap) {
    const Layout& L = net.layout();
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(L, work_cap));
    ws.reserve(L, chunk);
    if (t == 0) std::fill(dE_dparams, dE_dparams + L.n_params(), T(0));
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        detail::check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        E += chunk_pass(net, X + r0 * L.l_in(), Y + r0 * L.l_out(), rows, t, dE_dparams, ws,
                        r0 > 0, check);
    }
    return E;
}

}  // namespace

template <class T>
double gradient(const Network<T>& net, const T* X, const T* Y, std::size_t t, T* dE_dparams,
                Workspace<T>& ws, const Poll& poll) {
    return gradient_checked(net, X, Y, t, dE_dparams, ws, poll, nullptr, bool(poll));
}

template <class T>
double step(Network<T>& net, const T* X, const T* Y, std::size_t t, const OptimizerConfig& config,
            OptimizerState<T>& state, Workspace<T>& ws, const Poll& poll) {
    ws.reserve_grad(net.layout());
    const double E = gradient(net, X, Y, t, ws.grad.data(), ws, poll);
    update(config, state, net.params(), ws.grad.data(), net.n_params());
    return E;
}

template <class T>
FitResult fit(Network<T>& net, const T* X, const T* Y, std::size_t t, const FitOptions<T>& options,
              const OptimizerConfig& config, OptimizerState<T>& state, const FitRecord& record,
              Workspace<T>& ws, const FitHooks& hooks) {
    const Layout& L = net.layout();
    const std::size_t l_0 = L.l_in(), l_n = L.l_out();
    const std::size_t batch = options.batch_size == 0 ? t : std::min(options.batch_size, t);
    const bool gather = options.shuffle && batch < t;
    ws.reserve(L, std::min(batch, Workspace<T>::chunk_rows(L, false)));
    ws.reserve_grad(L);
    if (gather) {
        ws.x.resize(batch * l_0);
        ws.y.resize(batch * l_n);
        ws.order.resize(t);
        std::iota(ws.order.begin(), ws.order.end(), std::size_t(0));
    }
    SplitMix64 rng(options.seed);
    return detail::run_epochs(net, options, record, ws, hooks, [&](double& E_epoch) {
        if (gather)  // Fisher–Yates, continuing from the previous epoch's order
            for (std::size_t k = t; k > 1; --k) std::swap(ws.order[k - 1], ws.order[rng.below(k)]);
        E_epoch = 0.0;
        for (std::size_t r0 = 0; r0 < t; r0 += batch) {
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
            const NonFinite check;
            double E = 0.0;
            try {  // checks for Ctrl-C before the minibatch, and between its chunks if several
                E = gradient_checked(net, x, y, rows, ws.grad.data(), ws, hooks.poll, &check,
                                     false);
            } catch (const Interrupted&) {
                return Stop::interrupted;  // before the update: the parameters are untouched
            }
            // A finite E can still have a NaN gradient (inf·0 from an infinite input into a
            // saturated σ): either stops training before the update.
            if (!std::isfinite(E) || check.seen.load()) return Stop::non_finite;
            update(config, state, net.params(), ws.grad.data(), net.n_params());
            E_epoch += is_mean(net.loss()) ? E * double(rows) / double(t) : E;
        }
        return Stop::done;
    });
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
