#include "train/lm.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/dense.hpp"
#include "kernels/elementwise.hpp"
#include "runtime/format.hpp"
#include "train/passes.hpp"

namespace fastprop {

namespace {

// Rows of J for `rows` samples whose training forward pass (σ' kept) is in ws, for output
// unit j: δ_n = e_j,
// δ_i = (δ_{i+1} W_i) ⊙ σ'(z_i), and the row of sample s holds δ_{i+1}[s] a_i[s]ᵀ at the
// offset of W_i and δ_{i+1}[s] at that of b_i. Row s starts at J_rows + s·ld. With
// `sqrt_w` (rows), row s is scaled by sqrt_w[s] (δ_n = sqrt_w[s] e_j: the passes are linear
// in δ_n), the rows of weighted least squares.
template <class T>
void jacobian_rows(const Model<T>& net, const T* x, std::size_t rows, std::size_t j,
                   Workspace<T>& ws, double* J_rows, std::size_t ld,
                   const T* sqrt_w = nullptr) {
    const Layout& L = net.layout();
    const std::size_t n = net.n(), l_n = L.l_out();
    T* delta_n = ws.delta(n);
    std::fill(delta_n, delta_n + rows * l_n, T(0));
    for (std::size_t s = 0; s < rows; ++s) delta_n[s * l_n + j] = sqrt_w ? sqrt_w[s] : T(1);
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
template <class T> std::size_t block_rows(const Model<T>& net) {
    const std::size_t by_memory = std::max<std::size_t>(1, (std::size_t(1) << 22) / net.n_params());
    return std::min(by_memory, Workspace<T>::chunk_rows(net.layout()));
}

// M = L Lᵀ in place (the lower triangle of row-major M becomes L); false when M is not
// numerically positive definite. Polls every 64 columns (throws Interrupted).
bool cholesky(double* M, std::size_t P, const Poll& poll) {
    for (std::size_t j = 0; j < P; ++j) {
        if (j % 64 == 0) check_poll(poll);
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
template <class T> struct NormalBuffers {
    explicit NormalBuffers(std::size_t P, std::size_t rows, bool weighted)
        : A(P * P), M(P * P), g(P), step(P), J(rows * P), r(rows), sqrt_w(weighted ? rows : 0) {}
    std::vector<double> A, M;  // JᵀJ, and JᵀJ + μ I factorised
    std::vector<double> g, step;  // Jᵀ r, and Δ
    std::vector<double> J, r;  // a block of rows of J, and its residuals for one output
    std::vector<T> sqrt_w;     // √w_s of the block's rows, with sample weights
};

// E, and A = JᵀJ, g = Jᵀ r at the current parameters, block by block of rows. With sample
// weights w_s (E = Σ_s w_s ||y_s − z_n,s||², or its mean over Σ_s w_s l_n), the rows of J
// and r are scaled by √w_s: A = Jᵀ diag(w) J and g = Jᵀ diag(w) r, weighted least squares.
template <class T>
double normal_equations(const Model<T>& net, const Batch<T>& batch, Workspace<T>& ws,
                        NormalBuffers<T>& ne, const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t P = net.n_params(), l_0 = L.l_in(), l_n = L.l_out(), n = net.n();
    const std::size_t block = block_rows(net), t = batch.t;
    const double total = batch.size();
    double E = 0.0;
    for (std::size_t r0 = 0; r0 < t; r0 += block) {
        const std::size_t rows = std::min(block, t - r0);
        const T* x = batch.X + r0 * l_0;
        const T* y = batch.Y + r0 * l_n;
        const T* w = batch.w ? batch.w + r0 : nullptr;
        if (w)
            for (std::size_t s = 0; s < rows; ++s) ne.sqrt_w[s] = std::sqrt(w[s]);
        detail::forward_rows(net, x, rows, ws, ws.z(n), true);
        E += loss_and_delta(net.loss(), LossRows<T>{ws.delta(n), ws.z(n), y, w, rows, l_n, total,
                                                      net.loss_delta()});
        for (std::size_t j = 0; j < l_n; ++j) {
            check_poll(poll);
            for (std::size_t s = 0; s < rows; ++s) {
                ne.r[s] = double(y[s * l_n + j]) - double(ws.z(n)[s * l_n + j]);
                if (w) ne.r[s] *= double(ne.sqrt_w[s]);
            }
            jacobian_rows(net, x, rows, j, ws, ne.J.data(), P, w ? ne.sqrt_w.data() : nullptr);
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

}  // namespace

template <class T>
void jacobian(const Model<T>& net, const T* X, std::size_t t, double* J, Workspace<T>& ws,
              const Poll& poll) {
    const Layout& L = net.layout();
    const std::size_t P = net.n_params(), l_n = L.l_out();
    const std::size_t chunk = std::min(t, Workspace<T>::chunk_rows(L));
    ws.reserve(L, chunk);
    for (std::size_t r0 = 0; r0 < t; r0 += chunk) {
        check_poll(poll);
        const std::size_t rows = std::min(chunk, t - r0);
        const T* x = X + r0 * L.l_in();
        detail::forward_rows(net, x, rows, ws, ws.z(net.n()), true);
        for (std::size_t j = 0; j < l_n; ++j)
            jacobian_rows(net, x, rows, j, ws, J + (r0 * l_n + j) * P, l_n * P);
    }
}

void LmConfig::check() const {
    const auto require = [](bool ok, const char* name, const char* range, double value) {
        if (!ok)
            throw std::invalid_argument(std::string(name) + " must be a finite number " +
                                        range + ", got " + format_number(value));
    };
    require(std::isfinite(mu) && mu > 0, "mu", "> 0", mu);
    require(std::isfinite(mu_dec) && mu_dec > 0 && mu_dec < 1, "mu_dec", "in (0, 1)", mu_dec);
    require(std::isfinite(mu_inc) && mu_inc > 1, "mu_inc", "> 1", mu_inc);
    require(std::isfinite(mu_max) && mu_max > 0, "mu_max", "> 0", mu_max);
    require(std::isfinite(weight_decay) && weight_decay >= 0, "weight_decay", ">= 0",
            weight_decay);
}

template <class T> struct LevenbergMarquardt<T>::Normal : NormalBuffers<T> {
    using NormalBuffers<T>::NormalBuffers;
};

template <class T>
LevenbergMarquardt<T>::LevenbergMarquardt(Network<T>& net, Workspace<T>& ws,
                                          const Batch<T>& batch, LmConfig& config)
    : net_(net), ws_(ws), batch_(batch), config_(config) {
    config.check();
    if (!is_sum_of_squares(net.loss()))
        throw std::invalid_argument(std::string("Levenberg-Marquardt needs a sum-of-squares loss "
                                                "(sse or mse), got ") + loss_name(net.loss()));
    if (net.n_params() > lm_max_params)
        throw std::invalid_argument("Levenberg-Marquardt is limited to " +
                                    std::to_string(lm_max_params) + " parameters (its normal "
                                    "matrix has n_params^2 entries); this network has " +
                                    std::to_string(net.n_params()));
    const std::size_t rows = std::min(batch.t, block_rows(net.model()));
    ws.reserve(net.layout(), rows);
    ne_ = std::make_unique<Normal>(net.n_params(), rows, batch.w != nullptr);
    saved_.resize(net.n_params());
    // κ = λ/(2c) for E = c·||r||²: the penalty in the normal equations' scale
    const Layout& L = net.layout();
    const double c = net.loss() == Loss::mse ? 1.0 / (batch.size() * double(L.l_out())) : 1.0;
    lambda_ = config.weight_decay;
    kappa_ = lambda_ / (2.0 * c);
    if (!std::isfinite(kappa_))
        throw std::invalid_argument("weight_decay " + format_number(config.weight_decay) +
                                    " is too large for this loss and batch: its scale in the "
                                    "normal equations, weight_decay/(2c), overflows");
    decayed_.assign(net.n_params(), config.decay_biases ? 1.0 : 0.0);
    for (std::size_t i = 0; i < L.n(); ++i)
        std::fill(decayed_.begin() + std::ptrdiff_t(L[i].W),
                  decayed_.begin() + std::ptrdiff_t(L[i].W + L[i].l_out * L[i].l_in), 1.0);
}

template <class T> LevenbergMarquardt<T>::~LevenbergMarquardt() = default;

namespace {

// λ/2·Σ_k D_k p_k², the penalty of weight_decay λ on the entries D covers (0 when λ is 0).
template <class T>
double l2_penalty(double lambda, const double* D, const T* p, std::size_t P) {
    if (lambda == 0.0) return 0.0;
    double sum = 0.0;
    for (std::size_t k = 0; k < P; ++k) sum += D[k] * double(p[k]) * double(p[k]);
    return 0.5 * lambda * sum;
}

}  // namespace

template <class T> Stop LevenbergMarquardt<T>::iteration(const Poll& poll, double& E_epoch) {
    const std::size_t P = net_.n_params();
    T* p = net_.params();
    std::copy(p, p + P, saved_.begin());
    Normal& ne = *ne_;
    const double lambda = lambda_, kappa = kappa_;
    const double* D = decayed_.data();
    // a subnormal μ (as given) times mu_inc can round back to itself: μ would never grow
    config_.mu = std::max(config_.mu, std::numeric_limits<double>::min());
    try {
        E_epoch = normal_equations(net_.model(), batch_, ws_, ne, poll);
        if (!std::isfinite(E_epoch) || !elementwise::all_finite(ne.g.data(), P))
            return Stop::non_finite;
        const double objective = E_epoch + l2_penalty(lambda, D, p, P);
        if (kappa != 0.0) {  // Jᵀr − κ D p, which huge parameters or κ can overflow
            for (std::size_t k = 0; k < P; ++k) ne.g[k] -= kappa * D[k] * double(saved_[k]);
            if (!std::isfinite(objective) || !elementwise::all_finite(ne.g.data(), P))
                return Stop::non_finite;
        }
        while (true) {
            check_poll(poll);
            ne.M = ne.A;
            for (std::size_t k = 0; k < P; ++k) ne.M[k * P + k] += config_.mu + kappa * D[k];
            if (cholesky(ne.M.data(), P, poll)) {
                ne.step = ne.g;
                cholesky_solve(ne.M.data(), P, ne.step.data());
                for (std::size_t k = 0; k < P; ++k) p[k] = T(double(saved_[k]) + ne.step[k]);
                const double E_new = loss(net_.model(), batch_, ws_, poll);
                if (E_new + l2_penalty(lambda, D, p, P) < objective) {
                    // not below the smallest normal double: μ·mu_inc must be able to grow
                    config_.mu = std::max(config_.mu * config_.mu_dec,
                                          std::numeric_limits<double>::min());
                    return Stop::done;
                }
                std::copy(saved_.begin(), saved_.end(), p);
            }
            config_.mu *= config_.mu_inc;
            if (config_.mu > config_.mu_max) return Stop::converged;
        }
    } catch (const Interrupted&) {
        std::copy(saved_.begin(), saved_.end(), p);  // back to the last completed update
        return Stop::interrupted;
    }
}

#define FASTPROP_INSTANTIATE(T)                                                                 \
    template void jacobian<T>(const Model<T>&, const T*, std::size_t, double*, Workspace<T>&,   \
                              const Poll&);                                                     \
    template class LevenbergMarquardt<T>;
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
