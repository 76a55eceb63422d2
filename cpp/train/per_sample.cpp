#include "train/per_sample.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/elementwise.hpp"

namespace fastprop {

namespace {

// The forward pass (σ' kept) and the δ recurrence alone, for `rows` samples:
//   δ_n = ∂E/∂z_n,   δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i) for i = n−1 down to 1,
// every δ left in the table; no weight gradient is formed. `size` is what a mean loss
// divides by. Returns the rows' E.
template <class T>
double deltas_rows(const Model<T>& net, const Batch<T>& rows, double size, Workspace<T>& ws) {
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    detail::forward_rows(net, rows.X, rows.t, ws, ws.z(n), true);
    const double E = loss_and_delta(
        net.loss(), LossRows<T>{ws.delta(n), ws.z(n), rows.Y, rows.w, rows.t, L.l_out(), size,
                                net.loss_delta()});
    for (std::size_t i = n - 1; i >= 1; --i) {
        const LayerSlice& s = L[i];
        dense_backward<T>(ws.delta(i), nullptr, nullptr, ws.delta(i + 1), ws.a(i), net.W(i),
                          rows.t, s.l_in, s.l_out, false, ws.z(i));
    }
    return E;
}

template <class T> const T* a_of(Workspace<T>& ws, const T* x, std::size_t i) {
    return i == 0 ? x : ws.a(i);  // a_0 = x
}

// sq[s] = ||∂E_s/∂params||² = Σ_i ||δ_{i+1,s}||² (||a_{i,s}||² + 1 with bias), in double.
template <class T>
void squared_norms_rows(const Model<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                        double* sq) {
    const Layout& L = net.layout();
    std::fill(sq, sq + rows, 0.0);
    for (std::size_t i = 0; i < net.n(); ++i) {
        const LayerSlice& sl = L[i];
        const T* a_i = a_of(ws, x, i);
        const T* delta_next = ws.delta(i + 1);
        for (std::size_t s = 0; s < rows; ++s) {
            double aa = L.bias() ? 1.0 : 0.0, dd = 0.0;
            const T* a_s = a_i + s * sl.l_in;
            const T* d_s = delta_next + s * sl.l_out;
            for (std::size_t k = 0; k < sl.l_in; ++k) aa += double(a_s[k]) * double(a_s[k]);
            for (std::size_t o = 0; o < sl.l_out; ++o) dd += double(d_s[o]) * double(d_s[o]);
            sq[s] += dd * aa;
        }
    }
}

// Row s of G (t, n_params) for each of `rows` samples: ∂E_s/∂W_i = δ_{i+1,s} a_{i,s}ᵀ at
// W_i's offset, ∂E_s/∂b_i = δ_{i+1,s} at b_i's; row by row, each written front to back (a
// third faster than layer by layer). On one thread: the rows stream to memory, and on a loaded
// 2-core Zen 4 both a split of the rows over two threads and two halves of the whole pass
// (forward, δ, rows) on two threads were slower than one (0.5-0.9x at batches of 32 and 256).
template <class T>
void write_outer_products(const Model<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                          T* G) {
    const Layout& L = net.layout();
    const std::size_t P = L.n_params();
    for (std::size_t s = 0; s < rows; ++s) {
        T* row = G + s * P;
        for (std::size_t i = 0; i < L.n(); ++i) {
            const LayerSlice& sl = L[i];
            const T* d_s = ws.delta(i + 1) + s * sl.l_out;
            const T* a_s = a_of(ws, x, i) + s * sl.l_in;
            elementwise::outer(row + sl.W, sl.l_in, d_s, a_s, sl.l_out, sl.l_in);
            if (L.bias()) std::copy(d_s, d_s + sl.l_out, row + sl.b);
        }
    }
}

// Per-sample passes read a_0 of every sample: a sparse X (kernels/sparse.hpp) is refused.
template <class T> void require_dense(const Batch<T>& batch) {
    if (batch.sparse())
        throw std::invalid_argument("per-sample gradients (and DP-SGD) need a dense X, got a "
                                    "sparse matrix");
}

// Runs chunk(r0, count) over t rows in chunks of rows the table holds, polling between them.
template <class T, class Chunk>
double over_chunks(const Model<T>& net, std::size_t t, Workspace<T>& ws, const Poll& poll,
                   Chunk&& chunk) {
    const Layout& L = net.layout();
    const std::size_t rows_max =
        std::max<std::size_t>(1, std::min(t, Workspace<T>::chunk_rows(L)));
    ws.reserve(L, rows_max);
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += rows_max) {
        check_poll(poll);
        E += chunk(r0, std::min(rows_max, t - r0));
    }
    return E;
}

// The same over the rows of a batch: chunk(rows, r0).
template <class T, class Chunk>
double over_chunks(const Model<T>& net, const Batch<T>& batch, Workspace<T>& ws,
                   const Poll& poll, Chunk&& chunk) {
    require_dense(batch);
    const Layout& L = net.layout();
    return over_chunks(net, batch.t, ws, poll, [&](std::size_t r0, std::size_t count) {
        return chunk(batch.rows(r0, count, L.l_in(), L.l_out()), r0);
    });
}

}  // namespace

template <class T>
double per_sample_gradients(const Model<T>& net, const Batch<T>& batch, T* G, Workspace<T>& ws,
                            const Poll& poll) {
    const double size = batch.size();
    const std::size_t P = net.n_params();
    return over_chunks(net, batch, ws, poll, [&](const Batch<T>& rows, std::size_t r0) {
        const double E = deltas_rows(net, rows, size, ws);
        write_outer_products(net, rows.X, rows.t, ws, G + r0 * P);
        return E;
    });
}

template <class T>
double per_sample_gradient_norms(const Model<T>& net, const Batch<T>& batch, T* norms,
                                 Workspace<T>& ws, const Poll& poll) {
    const double size = batch.size();
    std::vector<double> sq;
    return over_chunks(net, batch, ws, poll, [&](const Batch<T>& rows, std::size_t r0) {
        const double E = deltas_rows(net, rows, size, ws);
        sq.resize(rows.t);
        squared_norms_rows(net, rows.X, rows.t, ws, sq.data());
        for (std::size_t s = 0; s < rows.t; ++s) norms[r0 + s] = T(std::sqrt(sq[s]));
        return E;
    });
}

template <class T>
double input_gradient(const Model<T>& net, const Batch<T>& batch, T* dE_dX, Workspace<T>& ws,
                      const Poll& poll) {
    const double size = batch.size();
    const LayerSlice& first = net.layout()[0];
    return over_chunks(net, batch, ws, poll, [&](const Batch<T>& rows, std::size_t r0) {
        const double E = deltas_rows(net, rows, size, ws);
        dense_backward<T>(dE_dX + r0 * first.l_in, nullptr, nullptr, ws.delta(1), rows.X,
                          net.W(0), rows.t, first.l_in, first.l_out, false);  // δ_1 W_0
        return E;
    });
}

template <class T>
void input_jacobian(const Model<T>& net, const T* X, std::size_t t, T* J, Workspace<T>& ws,
                    const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t n = net.n(), l_0 = L.l_in(), l_n = L.l_out();
    std::vector<T> delta_0;
    over_chunks(net, t, ws, poll, [&](std::size_t r0, std::size_t count) {
        const Batch<T> rows{X + r0 * l_0, nullptr, nullptr, count};
        detail::forward_rows(net, rows.X, rows.t, ws, ws.z(n), true);
        delta_0.resize(rows.t * l_0);
        T* delta_n = ws.delta(n);
        for (std::size_t j = 0; j < l_n; ++j) {
            std::fill(delta_n, delta_n + rows.t * l_n, T(0));
            for (std::size_t s = 0; s < rows.t; ++s) delta_n[s * l_n + j] = T(1);  // δ_n = e_j
            for (std::size_t i = n - 1; i >= 1; --i)
                dense_backward<T>(ws.delta(i), nullptr, nullptr, ws.delta(i + 1), ws.a(i),
                                  net.W(i), rows.t, L[i].l_in, L[i].l_out, false, ws.z(i));
            dense_backward<T>(delta_0.data(), nullptr, nullptr, ws.delta(1), rows.X, net.W(0),
                              rows.t, l_0, L[0].l_out, false);  // δ_0 = δ_1 W_0
            for (std::size_t s = 0; s < rows.t; ++s)
                std::copy(delta_0.data() + s * l_0, delta_0.data() + (s + 1) * l_0,
                          J + ((r0 + s) * l_n + j) * l_0);
        }
        return 0.0;
    });
}

template <class T>
double clipped_gradient_sum(const Model<T>& net, const Batch<T>& batch, double max_norm, T* sum,
                            Workspace<T>& ws, std::vector<double>& norms, const Poll& poll,
                            const NonFinite* check) {
    require_dense(batch);
    const Layout& L = net.layout();
    const std::size_t n = net.n();
    if (batch.t == 0) std::fill(sum, sum + L.n_params(), T(0));
    // δ of each sample's own loss w_s ℓ_s: a mean loss's division by the batch's size is
    // left out here (size 1) and applied to E alone.
    const double size = is_mean(net.loss()) ? batch.size() : 1.0;
    return over_chunks(net, batch, ws, poll, [&](const Batch<T>& rows, std::size_t r0) {
        const double E = deltas_rows(net, rows, 1.0, ws);
        norms.resize(rows.t);
        squared_norms_rows(net, rows.X, rows.t, ws, norms.data());
        for (std::size_t s = 0; s < rows.t; ++s)  // c_s = min(1, C / (||g_s|| + 1e-6))
            norms[s] = std::min(1.0, max_norm / (std::sqrt(norms[s]) + 1e-6));
        for (std::size_t i = 1; i <= n; ++i) {  // row s of every δ_i times c_s
            T* delta_i = ws.delta(i);
            const std::size_t l_i = L.layers()[i];
            for (std::size_t s = 0; s < rows.t; ++s) {
                const T c = T(norms[s]);
                for (std::size_t k = 0; k < l_i; ++k) delta_i[s * l_i + k] *= c;
            }
        }
        for (std::size_t i = n; i-- > 0;) {  // Σ_s c_s g_s = (c δ_{i+1})ᵀ a_i
            const LayerSlice& sl = L[i];
            dense_backward<T>(nullptr, sum + sl.W, L.bias() ? sum + sl.b : nullptr,
                              ws.delta(i + 1), a_of(ws, rows.X, i), net.W(i), rows.t, sl.l_in,
                              sl.l_out, r0 > 0, nullptr, check);
        }
        return E / size;
    });
}

#define FASTPROP_INSTANTIATE(T)                                                                \
    template double per_sample_gradients<T>(const Model<T>&, const Batch<T>&, T*,              \
                                            Workspace<T>&, const Poll&);                       \
    template double per_sample_gradient_norms<T>(const Model<T>&, const Batch<T>&, T*,         \
                                                 Workspace<T>&, const Poll&);                  \
    template double input_gradient<T>(const Model<T>&, const Batch<T>&, T*, Workspace<T>&,     \
                                      const Poll&);                                            \
    template void input_jacobian<T>(const Model<T>&, const T*, std::size_t, T*,                \
                                    Workspace<T>&, const Poll&);                               \
    template double clipped_gradient_sum<T>(const Model<T>&, const Batch<T>&, double, T*,      \
                                            Workspace<T>&, std::vector<double>&, const Poll&,  \
                                            const NonFinite*);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
