#include "lm.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "elementwise.hpp"
#include "kernels.hpp"
#include "passes.hpp"

namespace fastprop {

namespace {

// Rows of J for `rows` samples whose training forward pass (σ' kept) is in ws, for output
// unit j: δ_n = e_j,
// δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i), and the row of sample s holds δ_{i+1}[s] a_i[s]ᵀ at the
// offset of W_i and δ_{i+1}[s] at that of b_i. Row s starts at J_rows + s·ld.
template <class T>
void jacobian_rows(const Network<T>& net, const T* x, std::size_t rows, std::size_t j,
                   Workspace<T>& ws, double* J_rows, std::size_t ld) {
    const Layout& L = net.layout();
    const std::size_t n = net.n(), l_n = L.l_out();
    T* delta_n = ws.delta(n);
    std::fill(delta_n, delta_n + rows * l_n, T(0));
    for (std::size_t s = 0; s < rows; ++s) delta_n[s * l_n + j] = T(1);
    for (std::size_t i = n; i-- > 0;) {
        const LayerSlice& sl = L[i];
        const T* a_i = i == 0 ? x : ws.a(i);
        const T* delta_next = ws.delta(i + 1);
        for (std::size_t s = 0; s < rows; ++s) {
            double* row = J_rows + s * ld;
            const T* a_s = a_i + s * sl.l_in;
            for (std::size_t o = 0; o < sl.l_out; ++o) {
                const double d = double(delta_next[s * sl.l_out + o]);
                double* dW = row + sl.W + o * sl.l_in;
                for (std::size_t k = 0; k < sl.l_in; ++k) dW[k] = d * double(a_s[k]);
                if (L.bias()) row[sl.b + o] = d;
            }
        }
        if (i >= 1) {
            dense_backward<T>(ws.delta(i), nullptr, nullptr, delta_next, a_i, net.W(i), rows,
                              sl.l_in, sl.l_out, false, ws.z(i));  // δ_i, with ⊙ σ'(z_i)
        }
    }
}

// Rows per Jacobian block: a block of J is rows × n_params doubles, kept to 32 MiB.
template <class T> std::size_t block_rows(const Network<T>& net) {
    const std::size_t by_memory = std::max<std::size_t>(1, (std::size_t(1) << 22) / net.n_params());
    return std::min(by_memory, Workspace<T>::chunk_rows(net.layout()));
}

// M = L Lᵀ in place (the lower triangle of row-major M becomes L); false when M is not
// numerically positive definite. Polls every 64 columns (throws Interrupted).
bool cholesky(double* M, std::size_t P, const Poll& poll) {
    for (std::size_t j = 0; j < P; ++j) {
        if (j % 64 == 0) detail::check_poll(poll);
        double* L_j = M + j * P;
        for (std::size_t i = j; i < P; ++i) {
            double* L_i = M + i * P;
            double sum = L_i[j];
            for (std::size_t k = 0; k < j; ++k) sum -= L_i[k] * L_j[k];
            if (i == j) {
                if (!(sum > 0.0)) return false;
                L_j[j] = std::sqrt(sum);
            } else {
                L_i[j] = sum / L_j[j];
            }
        }
    }
    return true;
}

// Solves L Lᵀ x = b in place (b becomes x).
void cholesky_solve(const double* Lm, std::size_t P, double* b) {
    for (std::size_t i = 0; i < P; ++i) {  // L y = b
        double sum = b[i];
        for (std::size_t k = 0; k < i; ++k) sum -= Lm[i * P + k] * b[k];
        b[i] = sum / Lm[i * P + i];
    }
    for (std::size_t i = P; i-- > 0;) {  // Lᵀ x = y
        double sum = b[i];
        for (std::size_t k = i + 1; k < P; ++k) sum -= Lm[k * P + i] * b[k];
        b[i] = sum / Lm[i * P + i];
    }
}

// The buffers of one LM fit, allocated once for all its iterations.
struct Normal {
    explicit Normal(std::size_t P, std::size_t rows)
        : A(P * P), M(P * P), g(P), step(P), J(rows * P), r(rows) {}
    std::vector<double> A, M;  // JᵀJ, and JᵀJ + μ I factorised
    std::vector<double> g, step;  // Jᵀ r, and Δ
    std::vector<double> J, r;  // a block of rows of J, and its residuals for one output
};

// E, and A = JᵀJ, g = Jᵀ r at the current parameters, block by block of rows.
template <class T>
double normal_equations(const Network<T>& net, const T* X, const T* Y, std::size_t t,
                        Workspace<T>& ws, Normal& ne, const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t P = net.n_params(), l_0 = L.l_in(), l_n = L.l_out(), n = net.n();
    const std::size_t block = block_rows(net);
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += block) {
        const std::size_t rows = std::min(block, t - r0);
        const T* x = X + r0 * l_0;
        const T* y = Y + r0 * l_n;
        detail::forward_rows(net, x, rows, ws, ws.z(n), true);
        E += loss_and_delta(net.loss(), ws.delta(n), ws.z(n), y, rows, l_n, t);
        for (std::size_t j = 0; j < l_n; ++j) {
            detail::check_poll(poll);
            for (std::size_t s = 0; s < rows; ++s)
                ne.r[s] = double(y[s * l_n + j]) - double(ws.z(n)[s * l_n + j]);
            jacobian_rows(net, x, rows, j, ws, ne.J.data(), P);
            const bool accumulate = r0 > 0 || j > 0;
            // A += J_blockᵀ J_block and g += J_blockᵀ r: the weight-gradient kernel's δᵀ a.
            dense_backward<double>(nullptr, ne.A.data(), nullptr, ne.J.data(), ne.J.data(),
                                   nullptr, rows, P, P, accumulate);
            dense_backward<double>(nullptr, ne.g.data(), nullptr, ne.J.data(), ne.r.data(),
                                   nullptr, rows, 1, P, accumulate);
        }
    }
    return E;
}

// One iteration from the parameters in `saved` (= the network's now): E_epoch receives E
// there; the network ends at the accepted step, or at `saved` when μ ran out.
template <class T>
Stop lm_iteration(Network<T>& net, const T* X, const T* Y, std::size_t t, LmConfig& config,
                  Workspace<T>& ws, Normal& ne, const std::vector<T>& saved, const Poll& poll,
                  double& E_epoch) {
    const std::size_t P = net.n_params();
    E_epoch = normal_equations(net, X, Y, t, ws, ne, poll);
    if (!std::isfinite(E_epoch) || !elementwise::all_finite(ne.g.data(), P)) return Stop::non_finite;
    T* p = net.params();
    while (true) {
        detail::check_poll(poll);
        ne.M = ne.A;
        for (std::size_t k = 0; k < P; ++k) ne.M[k * P + k] += config.mu;
        if (cholesky(ne.M.data(), P, poll)) {
            ne.step = ne.g;
            cholesky_solve(ne.M.data(), P, ne.step.data());
            for (std::size_t k = 0; k < P; ++k) p[k] = T(double(saved[k]) + ne.step[k]);
            const double E_new = loss(net, X, Y, t, ws, poll);
            if (E_new < E_epoch) {
                config.mu *= config.mu_dec;
                return Stop::done;
            }
            std::copy(saved.begin(), saved.end(), p);
        }
        config.mu *= config.mu_inc;
        if (config.mu > config.mu_max) return Stop::converged;
    }
}

template <class T> void require_lm(const Network<T>& net) {
    if (net.loss() != Loss::sse && net.loss() != Loss::mse)
        throw std::invalid_argument(std::string("Levenberg-Marquardt needs a sum-of-squares loss "
                                                "(sse or mse), got ") + loss_name(net.loss()));
    if (net.n_params() > lm_max_params)
        throw std::invalid_argument("Levenberg-Marquardt is limited to " +
                                    std::to_string(lm_max_params) + " parameters (its normal "
                                    "matrix has n_params^2 entries); this network has " +
                                    std::to_string(net.n_params()));
}

}  // namespace

template <class T>
void jacobian(const Network<T>& net, const T* X, std::size_t t, double* J, Workspace<T>& ws,
              const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t P = net.n_params(), l_n = L.l_out();
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(L));
    ws.reserve(L, chunk);
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        detail::check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        const T* x = X + r0 * L.l_in();
        detail::forward_rows(net, x, rows, ws, ws.z(net.n()), true);
        for (std::size_t j = 0; j < l_n; ++j)
            jacobian_rows(net, x, rows, j, ws, J + (r0 * l_n + j) * P, l_n * P);
    }
}

template <class T>
FitResult fit_lm(Network<T>& net, const T* X, const T* Y, std::size_t t,
                 const FitOptions<T>& options, LmConfig& config, const FitRecord& record,
                 Workspace<T>& ws, const FitHooks& hooks) {
    require_lm(net);
    const std::size_t P = net.n_params();
    ws.reserve(net.layout(), std::min(t, block_rows(net)));
    Normal ne(P, std::min(t, block_rows(net)));
    std::vector<T> saved(P);
    return detail::run_epochs(net, options, record, ws, hooks, [&](double& E_epoch) {
        T* p = net.params();
        std::copy(p, p + P, saved.begin());
        try {
            return lm_iteration(net, X, Y, t, config, ws, ne, saved, hooks.poll, E_epoch);
        } catch (const Interrupted&) {
            std::copy(saved.begin(), saved.end(), p);  // back to the last completed update
            return Stop::interrupted;
        }
    });
}

#define FASTPROP_INSTANTIATE(T)                                                                 \
    template void jacobian<T>(const Network<T>&, const T*, std::size_t, double*, Workspace<T>&, \
                              const Poll&);                                                     \
    template FitResult fit_lm<T>(Network<T>&, const T*, const T*, std::size_t,                  \
                                 const FitOptions<T>&, LmConfig&, const FitRecord&,             \
                                 Workspace<T>&, const FitHooks&);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
