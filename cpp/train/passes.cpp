#include "train/passes.hpp"

#include <algorithm>
#include <exception>

#include "kernels/elementwise.hpp"
#include "runtime/threads.hpp"

namespace fastprop {

template <class T> double Batch<T>::size() const {
    if (w == nullptr) return double(t);
    double total = 0.0;
    for (std::size_t s = 0; s < t; ++s) total += double(w[index ? index[s] : s]);
    return total;
}

namespace detail {

template <class T>
void forward_rows(const Model<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                  T* z_n_out, bool keep_prime, const CsrRows<T>& xs) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const T* a_i = x;  // a_0 = x
    for (std::size_t i = 0; i < n; ++i) {
        const LayerSlice& s = L[i];
        const bool last = i + 1 == n;
        T* z_next = last ? z_n_out : ws.z(i + 1);
        const Activate<T> activate{last ? Activation{} : net.sigma(i + 1),
                                   last ? nullptr : ws.a(i + 1), keep_prime};
        const Activate<T>* tail = last ? nullptr : &activate;
        if (i == 0 && xs)
            sparse_forward(z_next, xs, net.W(i), net.b(i), rows, s.l_in, s.l_out, tail);
        else
            dense_forward(z_next, a_i, net.W(i), net.b(i), rows, s.l_in, s.l_out, tail);
        if (last) break;
        a_i = ws.a(i + 1);
    }
}

namespace {

// The backward dynamic programme for `rows` samples, after forward_rows(keep_prime) left z_n
// in ws.z(n) and σ'(z_i) in ws.z(i):
//   δ_n = ∂E/∂z_n (−2(y − z_n) for the model's E)
//   for i = n−1 down to 0:  ∂E/∂W_i = δ_{i+1}ᵀ a_i,  ∂E/∂b_i = Σ_s δ_{i+1},
//                           δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i)  when i >= 1.
// Gradients are added to dE_dparams when `accumulate` (a later chunk of the same batch).
template <class T>
double backward_rows(const Model<T>& net, const Batch<T>& rows, double batch_size,
                     Workspace<T>& ws, T* dE_dparams, bool accumulate, const NonFinite* check) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    const double E = loss_and_delta(
        net.loss(), LossRows<T>{ws.delta(n), ws.z(n), rows.Y, rows.w, rows.t, L.l_out(), batch_size,
                                  net.loss_delta()});
    for (std::size_t i = n; i-- > 0;) {
        const LayerSlice& s = L[i];
        const T* a_i = i == 0 ? rows.X : ws.a(i);
        T* dE_db = L.bias() ? dE_dparams + s.b : nullptr;
        if (i == 0 && rows.sparse()) {  // a_0 sparse: nothing propagates below it
            sparse_backward(dE_dparams + s.W, dE_db, ws.delta(1), rows.Xs, rows.t, s.l_in,
                            s.l_out, accumulate, check);
            continue;
        }
        dense_backward(i >= 1 ? ws.delta(i) : nullptr, dE_dparams + s.W, dE_db, ws.delta(i + 1),
                       a_i, net.W(i), rows.t, s.l_in, s.l_out, accumulate,
                       i >= 1 ? ws.z(i) : nullptr, check);
    }
    return E;
}

// E of some rows (of a batch of size batch_size) on one thread and, when dE_dparams is
// given, their gradient written to (or, when accumulating, added to) it.
template <class T>
double rows_pass(const Model<T>& net, const Batch<T>& rows, double batch_size, T* dE_dparams,
                 Workspace<T>& ws, bool accumulate, const NonFinite* check) {
    const std::size_t n = net.n();
    const bool backward = dE_dparams != nullptr;
    forward_rows(net, rows.X, rows.t, ws, ws.z(n), backward, rows.Xs);
    if (backward) return backward_rows(net, rows, batch_size, ws, dE_dparams, accumulate, check);
    return loss_and_delta(net.loss(), LossRows<T>{ws.delta(n), ws.z(n), rows.Y, rows.w, rows.t,
                                                  net.layout().l_out(), batch_size,
                                                  net.loss_delta()});
}

// Whether a chunk of `rows` samples runs as two halves, each through the forward and backward
// passes on its own thread with its own table and gradient, the two gradients summed after.
// That pays for small layers, whose matrix products are too short to be split over threads
// themselves (such a split costs a hand-off per product; the halves cost one per step). The
// choice depends on the rows and the layout alone, never on the number of threads, so that
// the sums, and with them the results, are the same bits on any number of threads (one
// thread runs both halves).
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
// Up to 2^22 multiply-adds (was 2^21): [64]x4 and [65]x4 on 256 rows and ten layers of 32 on
// 256 (2.6-3.2M), whose products are too small to split (under 2^21 each), ran at 1.6-1.75x on
// 2 threads in halves against 1.0x unsplit, and within noise (±3%) on one (Zen 4, fit of the
// bench's sweep shapes, one and two threads alternated in one process).
constexpr std::size_t halves_min_rows = 128;
constexpr std::size_t halves_min_work = std::size_t(1) << 14;
constexpr std::size_t halves_max_work = std::size_t(1) << 22;

}  // namespace

bool split_in_halves(const Layout& L, std::size_t rows) {
    if (rows < halves_min_rows) return false;  // before the sum over layers: every small step
    std::size_t weights = 0;
    for (std::size_t i = 0; i < L.n(); ++i) weights += L[i].l_in * L[i].l_out;
    const std::size_t work = rows * weights;  // multiply-adds of the forward pass
    return rows >= halves_min_rows && work >= halves_min_work && work <= halves_max_work;
}

namespace {

template <class T> struct Halves {
    const Model<T>& net;
    Batch<T> part[2];
    double batch_size;
    Workspace<T>* ws[2];
    T* dE_dparams[2];  // both null for E alone
    bool accumulate;   // the first half adds to dE_dparams; the second always writes its own
    double E[2] = {0.0, 0.0};
    std::exception_ptr error[2];
};

template <class T> void run_half(void* context, std::size_t k) {
    Halves<T>& job = *static_cast<Halves<T>*>(context);
    try {  // nothing may escape a pool task; the caller rethrows
        job.E[k] = rows_pass(job.net, job.part[k], job.batch_size, job.dE_dparams[k], *job.ws[k],
                             k == 0 && job.accumulate, nullptr);
    } catch (...) {
        job.error[k] = std::current_exception();
    }
}

// rows_pass over one chunk, as two halves on two threads when split_in_halves says so: the
// second half's gradient goes to its own buffer and is then added, and E is the sum of the
// halves' in both loss() and gradient(), so the two give the same E bit for bit.
template <class T>
double chunk_pass(const Model<T>& net, const Batch<T>& rows, double batch_size, T* dE_dparams,
                  Workspace<T>& ws, bool accumulate, const NonFinite* check) {
    const Layout& L = net.layout();
    if (!split_in_halves(L, rows.t))
        return rows_pass(net, rows, batch_size, dE_dparams, ws, accumulate, check);
    const bool backward = dE_dparams != nullptr;
    Workspace<T>& other = ws.half();
    other.reserve(L, rows.t / 2);
    if (backward && other.grad.size() != L.n_params()) other.grad.assign(L.n_params(), T(0));
    const std::size_t first = rows.t - rows.t / 2;
    Halves<T> job{net,
                  {rows.rows(0, first, L.l_in(), L.l_out()),
                   rows.rows(first, rows.t / 2, L.l_in(), L.l_out())},
                  batch_size,
                  {&ws, &other},
                  {dE_dparams, backward ? other.grad.data() : nullptr},
                  accumulate,
                  {0.0, 0.0},
                  {}};
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
}  // namespace detail

template <class T>
void forward(const Model<T>& net, const T* X, std::size_t t, T* out, Workspace<T>& ws,
             const Poll& poll, const CsrRows<T>& Xs) {
    const std::size_t chunk = Workspace<T>::chunk_for(t, net.layout(), true, bool(Xs));
    ws.reserve(net.layout(), chunk);
    const std::size_t l_0 = net.layout().l_in(), l_n = net.layout().l_out();
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        check_poll(poll);
        detail::forward_rows(net, Xs ? nullptr : X + r0 * l_0, std::min(chunk, t - r0), ws,
                             out + r0 * l_n, false, Xs ? Xs.from(r0) : CsrRows<T>{});
    }
}

template <class T>
void forward_trace(const Model<T>& net, const T* X, std::size_t t, Workspace<T>& ws) {
    ws.reserve(net.layout(), t);
    detail::forward_rows(net, X, t, ws, ws.z(net.n()), false);
}

template <class T>
double loss(const Model<T>& net, const Batch<T>& batch, Workspace<T>& ws, const Poll& poll) {
    return loss_of_rows(net, batch, batch.size(), ws, poll);
}

template <class T>
double loss_of_rows(const Model<T>& net, const Batch<T>& batch, double size, Workspace<T>& ws,
                    const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t chunk = Workspace<T>::chunk_for(batch.t, L, true, batch.sparse());
    ws.reserve(L, chunk);
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < batch.t; r0 += chunk) {
        check_poll(poll);
        const Batch<T> rows = batch.rows(r0, std::min(chunk, batch.t - r0), L.l_in(), L.l_out());
        E += detail::chunk_pass<T>(net, rows, size, nullptr, ws, false, nullptr);
    }
    return E;
}

// Non-finiteness survives every later sum (inf + x is inf or NaN), so a check of each chunk's
// sums as they are written, in cache, finds it in the whole.
template <class T>
double gradient(const Model<T>& net, const Batch<T>& batch, T* dE_dparams, Workspace<T>& ws,
                const Poll& poll, const NonFinite* check, bool work_cap) {
    return gradient_of_rows(net, batch, batch.size(), dE_dparams, ws, poll, check, work_cap);
}

template <class T>
double gradient_of_rows(const Model<T>& net, const Batch<T>& batch, double size, T* dE_dparams,
                        Workspace<T>& ws, const Poll& poll, const NonFinite* check,
                        bool work_cap) {
    const Layout& L = net.layout();
    const std::size_t chunk =
        Workspace<T>::chunk_for(batch.t, L, work_cap, batch.sparse());
    ws.reserve(L, chunk);
    if (batch.t == 0) std::fill(dE_dparams, dE_dparams + L.n_params(), T(0));
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < batch.t; r0 += chunk) {
        check_poll(poll);
        const Batch<T> rows = batch.rows(r0, std::min(chunk, batch.t - r0), L.l_in(), L.l_out());
        E += detail::chunk_pass(net, rows, size, dE_dparams, ws, r0 > 0, check);
    }
    return E;
}

#define FASTPROP_INSTANTIATE(T)                                                                \
    template struct Batch<T>;                                                                  \
    template void forward<T>(const Model<T>&, const T*, std::size_t, T*, Workspace<T>&,        \
                             const Poll&, const CsrRows<T>&);                                  \
    template void forward_trace<T>(const Model<T>&, const T*, std::size_t, Workspace<T>&);     \
    template double loss<T>(const Model<T>&, const Batch<T>&, Workspace<T>&, const Poll&);     \
    template double gradient<T>(const Model<T>&, const Batch<T>&, T*, Workspace<T>&,           \
                                const Poll&, const NonFinite*, bool);                          \
    template double loss_of_rows<T>(const Model<T>&, const Batch<T>&, double, Workspace<T>&,   \
                                    const Poll&);                                              \
    template double gradient_of_rows<T>(const Model<T>&, const Batch<T>&, double, T*,          \
                                        Workspace<T>&, const Poll&, const NonFinite*, bool);   \
    template void detail::forward_rows<T>(const Model<T>&, const T*, std::size_t,              \
                                          Workspace<T>&, T*, bool, const CsrRows<T>&);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
