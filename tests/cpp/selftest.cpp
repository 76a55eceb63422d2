// A C++-only driver of the core: no Python anywhere. It checks the fast kernels against
// the plain loops, the backward pass against central differences, training, and
// Levenberg–Marquardt. Built with -DFASTPROP_SELFTEST=ON, and run under the sanitizers in CI.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <thread>
#include <vector>

#include "kernels/dense.hpp"
#include "kernels/elementwise.hpp"
#include "kernels/sparse.hpp"
#include "model/network.hpp"
#include "runtime/epoch_clock.hpp"
#include "runtime/random.hpp"
#include "runtime/threads.hpp"
#include "train/lm.hpp"
#include "train/passes.hpp"
#include "train/per_sample.hpp"
#include "train/trainer.hpp"

namespace fp = fastprop;

// Every heap allocation of the process goes through here, so the test below can count them.
std::atomic<long> allocations{0};

void* operator new(std::size_t size) {
    ++allocations;
    if (void* p = std::malloc(size ? size : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

int failures = 0;

void check(bool ok, const char* what, double value) {
    if (!ok) {
        std::printf("FAIL %s (%g)\n", what, value);
        ++failures;
    }
}

std::vector<double> uniform(fp::SplitMix64& rng, std::size_t count) {
    std::vector<double> v(count);
    for (auto& x : v) x = 2 * rng.uniform() - 1;
    return v;
}

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
    double worst = 0;
    for (std::size_t k = 0; k < a.size(); ++k) worst = std::max(worst, std::abs(a[k] - b[k]));
    return worst;
}

// The parameter-sized passes, split over two threads for long vectors: the same results as
// one loop, and an inf or NaN found in either half.
void vector_passes_match_one_loop(fp::SplitMix64& rng) {
    fp::set_num_threads(2);
    for (std::size_t n : {std::size_t(1000), std::size_t(70001), std::size_t(200000)}) {
        const std::vector<double> g = uniform(rng, n), x = uniform(rng, n);
        std::vector<double> p = uniform(rng, n), p_loop = p, y = g, y_loop = g;
        fp::elementwise::sgd(p.data(), g.data(), 0.25, n);
        fp::elementwise::add(y.data(), x.data(), n);
        for (std::size_t k = 0; k < n; ++k) {
            p_loop[k] -= 0.25 * g[k];
            y_loop[k] += x[k];
        }
        check(p == p_loop, "elementwise::sgd over halves", double(n));
        check(y == y_loop, "elementwise::add over halves", double(n));
        check(fp::elementwise::all_finite(g.data(), n), "all_finite of finite values", double(n));
        for (std::size_t at : {std::size_t(0), n / 2 - 1, n / 2 + 1, n - 1}) {
            std::vector<double> v = g;
            v[at] = at % 2 ? std::nan("") : HUGE_VAL;
            check(!fp::elementwise::all_finite(v.data(), n), "all_finite finds inf or NaN",
                  double(at));
        }
    }
}

// The one-pass bias + relu tail against the bias, then σ, then σ' as separate passes, bit for
// bit: blocks of a wider matrix, with −0, 0, NaN and ±inf among the values.
template <class T> void bias_relu_matches_separate_passes(fp::SplitMix64& rng) {
    const std::size_t m = 7, n = 37, ld = 41;
    std::vector<T> z0(m * ld), b(n);
    for (T& v : z0) v = T(2 * rng.uniform() - 1);
    for (T& v : b) v = T(rng.uniform() - 0.5);
    const T specials[] = {T(-0.0), T(0), std::numeric_limits<T>::quiet_NaN(),
                          std::numeric_limits<T>::infinity(), -std::numeric_limits<T>::infinity()};
    for (std::size_t k = 0; k < 5; ++k) z0[k * 9] = specials[k];
    b[3] = T(0);  // so that z = −0 meets a zero bias
    for (fp::Activation f : {fp::Activation::relu, fp::Activation::leaky_relu})
        for (bool bias : {false, true})
            for (bool keep_prime : {false, true}) {
                std::vector<T> z = z0, a(m * n), z_s = z0, a_s(m * n);
                const double slope = f == fp::Activation::leaky_relu ? fp::leaky_relu_slope : 0.0;
                fp::elementwise::bias_relu(z.data(), ld, bias ? b.data() : nullptr, a.data(), n, m, n,
                                           slope, keep_prime);
                if (bias)
                    for (std::size_t r = 0; r < m; ++r)
                        for (std::size_t j = 0; j < n; ++j) z_s[r * ld + j] += b[j];
                for (std::size_t r = 0; r < m; ++r) {
                    if (keep_prime)
                        fp::apply_sigma_keep_prime(f, a_s.data() + r * n, z_s.data() + r * ld, n);
                    else
                        fp::apply_sigma(f, a_s.data() + r * n, z_s.data() + r * ld, n);
                }
                const bool same = std::memcmp(a.data(), a_s.data(), a.size() * sizeof(T)) == 0 &&
                                  std::memcmp(z.data(), z_s.data(), z.size() * sizeof(T)) == 0;
                check(same, "bias_relu against its separate passes (bits)",
                      double(int(f) * 4 + bias * 2 + keep_prime));
            }
}

// σ and σ' fused into the products (run on each block of the result) against the same
// steps one after the other.
void fused_tails_match_separate_steps(fp::SplitMix64& rng, std::size_t t, std::size_t l_in,
                                      std::size_t l_out) {
    auto a = uniform(rng, t * l_in), W = uniform(rng, l_out * l_in);
    auto b = uniform(rng, l_out), delta = uniform(rng, t * l_out);
    std::vector<double> z_plain(t * l_out);
    fp::dense_forward_plain(z_plain.data(), a.data(), W.data(), b.data(), t, l_in, l_out);
    for (fp::Activation f : {fp::Activation::sigmoid, fp::Activation::relu}) {
        for (bool keep_prime : {false, true}) {
            std::vector<double> z(t * l_out), a_next(t * l_out), z_s = z_plain, a_s(t * l_out);
            const fp::Activate<double> act{f, a_next.data(), keep_prime};
            fp::dense_forward(z.data(), a.data(), W.data(), b.data(), t, l_in, l_out, &act);
            if (keep_prime)
                fp::apply_sigma_keep_prime(act.sigma, a_s.data(), z_s.data(), t * l_out);
            else
                fp::apply_sigma(act.sigma, a_s.data(), z_s.data(), t * l_out);
            check(max_abs_diff(a_next, a_s) < 1e-12, "dense_forward then σ", max_abs_diff(a_next, a_s));
            check(max_abs_diff(z, z_s) < 1e-12, keep_prime ? "dense_forward keeps σ'" : "dense_forward keeps z",
                  max_abs_diff(z, z_s));
        }
    }
    auto prime = uniform(rng, t * l_in);
    std::vector<double> da(t * l_in), da_p(t * l_in);
    fp::dense_backward<double>(da.data(), nullptr, nullptr, delta.data(), a.data(), W.data(), t, l_in,
                       l_out, false, prime.data());
    fp::dense_backward_plain<double>(da_p.data(), nullptr, nullptr, delta.data(), a.data(), W.data(), t,
                             l_in, l_out, false);
    for (std::size_t k = 0; k < da_p.size(); ++k) da_p[k] *= prime[k];
    check(max_abs_diff(da, da_p) < 1e-12, "dense_backward then ⊙ σ'", max_abs_diff(da, da_p));
}

void kernels_match_plain_loops(fp::SplitMix64& rng) {
    // wider than a column block of the product (1024 doubles): blocks of part of a row
    fused_tails_match_separate_steps(rng, 40, 300, 1100);
    fused_tails_match_separate_steps(rng, 1100, 300, 40);
    for (std::size_t t : {1, 3, 17, 64})
        for (std::size_t l_in : {1, 5, 33})
            for (std::size_t l_out : {1, 8, 40}) {
                fused_tails_match_separate_steps(rng, t, l_in, l_out);
                auto a = uniform(rng, t * l_in), W = uniform(rng, l_out * l_in);
                auto b = uniform(rng, l_out), delta = uniform(rng, t * l_out);
                std::vector<double> z(t * l_out), z_plain(t * l_out);
                fp::dense_forward(z.data(), a.data(), W.data(), b.data(), t, l_in, l_out);
                fp::dense_forward_plain(z_plain.data(), a.data(), W.data(), b.data(), t, l_in, l_out);
                check(max_abs_diff(z, z_plain) < 1e-12, "dense_forward", max_abs_diff(z, z_plain));
                std::vector<double> da(t * l_in), dW(l_out * l_in), db(l_out);
                std::vector<double> da_p(t * l_in), dW_p(l_out * l_in), db_p(l_out);
                fp::dense_backward(da.data(), dW.data(), db.data(), delta.data(), a.data(),
                                   W.data(), t, l_in, l_out, false);
                fp::dense_backward_plain(da_p.data(), dW_p.data(), db_p.data(), delta.data(),
                                         a.data(), W.data(), t, l_in, l_out, false);
                check(max_abs_diff(da, da_p) < 1e-12, "dense_backward dE_da", max_abs_diff(da, da_p));
                check(max_abs_diff(dW, dW_p) < 1e-12, "dense_backward dE_dW", max_abs_diff(dW, dW_p));
                check(max_abs_diff(db, db_p) < 1e-12, "dense_backward dE_db", max_abs_diff(db, db_p));
            }
}

// The sparse first layer against the plain loops on the same matrix made dense: random rows
// with empty ones, repeated and unsorted columns, both modes of the gradient, any thread count.
void sparse_kernels_match_plain_loops(fp::SplitMix64& rng) {
    for (std::size_t t : {1, 4, 37, 300})
        for (std::size_t l_in : {1, 7, 1000})
            for (std::size_t l_out : {1, 9, 64}) {
                std::vector<std::int64_t> indptr{0}, indices;
                std::vector<double> data, a(t * l_in, 0.0);
                for (std::size_t s = 0; s < t; ++s) {
                    const std::size_t entries = s % 5 == 0 ? 0 : rng.below(6);
                    for (std::size_t e = 0; e < entries; ++e) {
                        const std::size_t k = rng.below(l_in);
                        const double x = 2 * rng.uniform() - 1;
                        indices.push_back(std::int64_t(k));
                        data.push_back(x);
                        a[s * l_in + k] += x;  // a repeated column adds up
                    }
                    indptr.push_back(std::int64_t(indices.size()));
                }
                const fp::CsrRows<double> X{indptr.data(), indices.data(), data.data()};
                auto W = uniform(rng, l_out * l_in), b = uniform(rng, l_out);
                auto delta = uniform(rng, t * l_out);
                std::vector<double> z(t * l_out), z_plain(t * l_out);
                fp::sparse_forward(z.data(), X, W.data(), b.data(), t, l_in, l_out);
                fp::dense_forward_plain(z_plain.data(), a.data(), W.data(), b.data(), t, l_in,
                                        l_out);
                check(max_abs_diff(z, z_plain) < 1e-12, "sparse_forward", max_abs_diff(z, z_plain));
                std::vector<double> dW(l_out * l_in, 7.0), db(l_out, 7.0);
                std::vector<double> dW_p(l_out * l_in), db_p(l_out);
                const fp::NonFinite seen;
                for (const bool accumulate : {false, true}) {
                    fp::sparse_backward(dW.data(), db.data(), delta.data(), X, t, l_in, l_out,
                                        accumulate, &seen);
                    fp::dense_backward_plain<double>(nullptr, dW_p.data(), db_p.data(),
                                                     delta.data(), a.data(), W.data(), t, l_in,
                                                     l_out, accumulate);
                    check(max_abs_diff(dW, dW_p) < 1e-12, "sparse_backward dE_dW",
                          max_abs_diff(dW, dW_p));
                    check(max_abs_diff(db, db_p) < 1e-12, "sparse_backward dE_db",
                          max_abs_diff(db, db_p));
                }
                check(!seen.seen.load(), "sparse_backward saw a non-finite value", 0);
                if (!data.empty()) {  // an infinite input reaches ∂E/∂W_0: the check sees it
                    data[0] = std::numeric_limits<double>::infinity();
                    const fp::NonFinite inf;
                    fp::sparse_backward(dW.data(), db.data(), delta.data(), X, t, l_in, l_out,
                                        false, &inf);
                    check(inf.seen.load(), "sparse_backward missed an inf", 0);
                }
            }
}

void gradient_matches_finite_differences(fp::SplitMix64& rng) {
    for (auto f : {fp::Activation::sigmoid, fp::Activation::tanh, fp::Activation::softplus}) {
        fp::Network<double> net(fp::Layout({3, 5, 4, 2}, true), {f, f});
        net.init(7);
        const std::size_t t = 6;
        auto X = uniform(rng, t * 3), Y = uniform(rng, t * 2);
        fp::Workspace<double> ws;
        std::vector<double> grad(net.n_params());
        const fp::Batch<double> batch{X.data(), Y.data(), nullptr, t};
        fp::gradient(net.model(), batch, grad.data(), ws);
        const double h = 1e-6;
        double worst = 0;
        for (std::size_t k = 0; k < net.n_params(); ++k) {
            const double saved = net.params()[k];
            net.params()[k] = saved + h;
            const double plus = fp::loss(net.model(), batch, ws);
            net.params()[k] = saved - h;
            const double minus = fp::loss(net.model(), batch, ws);
            net.params()[k] = saved;
            worst = std::max(worst, std::abs((plus - minus) / (2 * h) - grad[k]));
        }
        check(worst < 1e-6, "gradient vs central differences", worst);
    }
}

template <class T> void training_lowers_the_loss() {
    fp::Network<T> net(fp::Layout({2, 4, 1}, false), {fp::Activation::sigmoid});
    net.init(0);
    const T X[] = {0, 0, 0, 1, 1, 0, 1, 1}, Y[] = {0, 1, 1, 0};
    const fp::Batch<T> xor_batch{X, Y, nullptr, 4};
    fp::Workspace<T> ws;
    fp::Trainer<T> trainer(net, ws);
    fp::TrainOptions options;
    options.epochs = 5000;
    fp::OptimizerConfig sgd;
    sgd.lr = 0.5;
    fp::OptimizerState<T> state = fp::make_state<T>(sgd, net.n_params());
    const fp::FitRecord record = trainer.fit(xor_batch, nullptr, options, sgd, state);
    check(record.epochs() == 5000 && record.stop == fp::Stop::done, "fit ran every epoch",
          double(record.epochs()));
    check(record.E.back() < 0.05 && record.E.front() > 0.9, "XOR learned", record.E.back());

    // Minibatches with shuffling and Adam, on the same problem.
    fp::OptimizerConfig adam;
    adam.method = fp::Method::adam;
    fp::OptimizerState<T> adam_state = fp::make_state<T>(adam, net.n_params());
    options.epochs = 10;
    options.batch_size = 3;
    options.shuffle = true;
    trainer.fit(xor_batch, nullptr, options, adam, adam_state);
    check(adam_state.steps == 20, "two minibatch updates per epoch", double(adam_state.steps));
}

void levenberg_marquardt_fits_a_sine(fp::SplitMix64& rng) {
    fp::Network<double> net(fp::Layout({1, 8, 1}, true), {fp::Activation::tanh});
    net.init(1);
    const std::size_t t = 100;
    std::vector<double> X(t), Y(t);
    for (std::size_t s = 0; s < t; ++s) {
        X[s] = 3 * (2 * rng.uniform() - 1);
        Y[s] = std::sin(X[s]);
    }
    fp::Workspace<double> ws;
    fp::Trainer<double> trainer(net, ws);
    fp::TrainOptions options;
    options.epochs = 40;
    fp::LmConfig lm;
    const fp::FitRecord record =
        trainer.fit_lm({X.data(), Y.data(), nullptr, t}, nullptr, options, lm);
    check(record.E.back() < 1e-2 * record.E.front(), "LM lowers E a hundredfold",
          record.E.back() / record.E.front());
}

// The per-sample passes against the batch's: rows of G sum to the gradient, the norms are
// the rows', the clipped sum is Σ_s c_s g_s, and ∂E/∂X and ∂z_n/∂x are central differences.
void per_sample_passes_match_the_batch(fp::SplitMix64& rng) {
    for (auto f : {fp::Activation::sigmoid, fp::Activation::tanh}) {
        for (bool bias : {true, false}) {
            fp::Network<double> net(fp::Layout({3, 5, 4, 2}, bias), {f, fp::Activation::softplus});
            net.init(11);
            const std::size_t t = 7, P = net.n_params();
            auto X = uniform(rng, t * 3), Y = uniform(rng, t * 2), w = uniform(rng, t);
            for (auto& v : w) v = 1.5 + v;  // weights in [0.5, 2.5]
            const fp::Batch<double> batch{X.data(), Y.data(), w.data(), t};
            fp::Workspace<double> ws;
            std::vector<double> grad(P), G(t * P), norms(t), sum(P), scratch;
            const double E = fp::gradient(net.model(), batch, grad.data(), ws);
            const double E_rows = fp::per_sample_gradients(net.model(), batch, G.data(), ws);
            check(std::abs(E - E_rows) < 1e-12, "per-sample E", std::abs(E - E_rows));
            std::vector<double> rows_sum(P, 0.0), row_norm(t, 0.0);
            for (std::size_t s = 0; s < t; ++s)
                for (std::size_t k = 0; k < P; ++k) {
                    rows_sum[k] += G[s * P + k];
                    row_norm[s] += G[s * P + k] * G[s * P + k];
                }
            for (auto& v : row_norm) v = std::sqrt(v);
            check(max_abs_diff(rows_sum, grad) < 1e-12, "Σ rows of G = gradient",
                  max_abs_diff(rows_sum, grad));
            fp::per_sample_gradient_norms(net.model(), batch, norms.data(), ws);
            check(max_abs_diff(norms, row_norm) < 1e-12, "norms = ||rows||",
                  max_abs_diff(norms, row_norm));
            // sse: each sample's own loss is its term of E, so c_s = min(1, C/(||G_s|| + 1e-6))
            const double C = 0.5 * (row_norm[0] + row_norm[1]);
            fp::clipped_gradient_sum(net.model(), batch, C, sum.data(), ws, scratch);
            std::vector<double> expected(P, 0.0);
            int clipped = 0;
            for (std::size_t s = 0; s < t; ++s) {
                const double c = std::min(1.0, C / (row_norm[s] + 1e-6));
                clipped += c < 1.0;
                for (std::size_t k = 0; k < P; ++k) expected[k] += c * G[s * P + k];
            }
            check(clipped > 0 && clipped < int(t), "some samples clipped, not all", clipped);
            check(max_abs_diff(sum, expected) < 1e-12, "clipped sum = Σ c_s g_s",
                  max_abs_diff(sum, expected));
            std::vector<double> dX(t * 3), J(t * 2 * 3), out_p(t * 2), out_m(t * 2);
            fp::input_gradient(net.model(), batch, dX.data(), ws);
            fp::input_jacobian(net.model(), X.data(), t, J.data(), ws);
            const double h = 1e-6;
            double worst_dX = 0, worst_J = 0;
            for (std::size_t k = 0; k < t * 3; ++k) {
                const double saved = X[k];
                X[k] = saved + h;
                const double plus = fp::loss(net.model(), batch, ws);
                fp::forward(net.model(), X.data(), t, out_p.data(), ws);
                X[k] = saved - h;
                const double minus = fp::loss(net.model(), batch, ws);
                fp::forward(net.model(), X.data(), t, out_m.data(), ws);
                X[k] = saved;
                worst_dX = std::max(worst_dX, std::abs((plus - minus) / (2 * h) - dX[k]));
                const std::size_t s = k / 3, col = k % 3;
                for (std::size_t j = 0; j < 2; ++j) {
                    const double numeric = (out_p[s * 2 + j] - out_m[s * 2 + j]) / (2 * h);
                    worst_J = std::max(worst_J, std::abs(numeric - J[(s * 2 + j) * 3 + col]));
                }
            }
            check(worst_dX < 1e-6, "∂E/∂X vs central differences", worst_dX);
            check(worst_J < 1e-6, "∂z_n/∂x vs central differences", worst_J);
        }
    }
}

// A batch of indexed rows (Batch::index: a fold, a bootstrap sample) trains to the bits of
// the same rows copied into a contiguous batch, with and without minibatches, shuffling and
// sample weights.
template <class T> void indexed_rows_train_as_their_copy(fp::SplitMix64& rng) {
    const std::size_t t_all = 40, t = 27, l_0 = 5, l_n = 2;
    std::vector<T> X(t_all * l_0), Y(t_all * l_n), w(t_all);
    for (auto& x : X) x = T(2 * rng.uniform() - 1);
    for (auto& y : Y) y = T(rng.uniform());
    for (auto& v : w) v = T(rng.uniform());
    std::vector<std::size_t> index(t);
    for (auto& r : index) r = rng.below(t_all);  // rows repeated, as in a bootstrap sample
    std::vector<T> Xc(t * l_0), Yc(t * l_n), wc(t);
    for (std::size_t s = 0; s < t; ++s) {
        std::copy(&X[index[s] * l_0], &X[index[s] * l_0] + l_0, &Xc[s * l_0]);
        std::copy(&Y[index[s] * l_n], &Y[index[s] * l_n] + l_n, &Yc[s * l_n]);
        wc[s] = w[index[s]];
    }
    for (const std::size_t batch_size : {std::size_t(0), std::size_t(4)}) {
        for (const bool weighted : {false, true}) {
            fp::Network<T> a(fp::Layout({l_0, 6, l_n}, true), {fp::Activation::tanh}, fp::Loss::mse);
            a.init(5);
            fp::Network<T> b = a;
            fp::Batch<T> indexed{X.data(), Y.data(), weighted ? w.data() : nullptr, t};
            indexed.index = index.data();
            const fp::Batch<T> copied{Xc.data(), Yc.data(), weighted ? wc.data() : nullptr, t};
            fp::TrainOptions options;
            options.epochs = 4;
            options.batch_size = batch_size;
            options.shuffle = batch_size > 0;
            options.seed = 9;
            fp::OptimizerConfig adam;
            adam.method = fp::Method::adam;
            adam.lr = 0.01;
            fp::Workspace<T> ws_a, ws_b;
            fp::Trainer<T> trainer_a(a, ws_a), trainer_b(b, ws_b);
            fp::OptimizerState<T> state_a = fp::make_state<T>(adam, a.n_params()),
                                  state_b = fp::make_state<T>(adam, b.n_params());
            const fp::FitRecord ra = trainer_a.fit(indexed, nullptr, options, adam, state_a);
            const fp::FitRecord rb = trainer_b.fit(copied, nullptr, options, adam, state_b);
            const bool same = ra.E == rb.E &&
                              std::equal(a.params(), a.params() + a.n_params(), b.params());
            check(same, "indexed rows train as their copy (bits)", double(batch_size));
        }
    }
}

// Once a batch size has been seen, forward, gradient and step allocate nothing, and a fit
// allocates only for its records (once per doubling of the epochs), never per minibatch.
template <class T> void steady_state_allocates_nothing(fp::SplitMix64& rng) {
    fp::Network<T> net(fp::Layout({20, 64, 32, 3}, true),
                       {fp::Activation::sigmoid, fp::Activation::relu});
    net.init(3);
    const std::size_t t = 160;
    std::vector<T> X(t * 20), Y(t * 3), out(t * 3), grad(net.n_params());
    for (auto& x : X) x = T(rng.uniform());
    for (auto& y : Y) y = T(rng.uniform());
    const fp::Batch<T> batch{X.data(), Y.data(), nullptr, t};
    fp::Workspace<T> ws;
    fp::Trainer<T> trainer(net, ws);
    fp::OptimizerConfig adam;
    adam.method = fp::Method::adam;
    fp::OptimizerState<T> state = fp::make_state<T>(adam, net.n_params());
    fp::TrainOptions options;
    options.epochs = 3;
    options.shuffle = true;
    auto calls = [&] {
        fp::forward(net.model(), X.data(), t, out.data(), ws);
        fp::gradient(net.model(), batch, grad.data(), ws);
        trainer.step(batch, adam, state);
    };
    auto fit_allocations = [&](std::size_t batch_size) {
        options.batch_size = batch_size;
        trainer.fit(batch, nullptr, options, adam, state);  // warm-up: buffers grow to the sizes
        const long before = allocations.load();
        trainer.fit(batch, nullptr, options, adam, state);
        return allocations.load() - before;
    };
    calls();  // warm-up: the workspace grows to these sizes
    const long before = allocations.load();
    for (int k = 0; k < 100; ++k) calls();
    const long count = allocations.load() - before;
    check(count == 0, "allocations in steady state", double(count));
    const long ten_minibatches = fit_allocations(16), one_hundred_sixty = fit_allocations(1);
    check(ten_minibatches == one_hundred_sixty, "a fit's allocations do not grow with its updates",
          double(one_hundred_sixty - ten_minibatches));
    fp::OptimizerConfig dpsgd;  // DP-SGD's clipped sums and noise: nothing per update either
    dpsgd.method = fp::Method::dpsgd;
    fp::OptimizerState<T> dp_state = fp::make_state<T>(dpsgd, net.n_params());
    auto dp_allocations = [&](std::size_t batch_size) {
        options.batch_size = batch_size;
        trainer.fit(batch, nullptr, options, dpsgd, dp_state);
        const long before_fit = allocations.load();
        trainer.fit(batch, nullptr, options, dpsgd, dp_state);
        return allocations.load() - before_fit;
    };
    const long dp_ten = dp_allocations(16), dp_one_hundred_sixty = dp_allocations(1);
    check(dp_ten == dp_one_hundred_sixty, "DP-SGD fit's allocations do not grow with updates",
          double(dp_one_hundred_sixty - dp_ten));
}

// The epoch clock, reading the time-stamp counter (where the CPU has an invariant one) or
// steady_clock: its marks become the seconds since the start, a pause between two marks
// shows in full in their difference, and they never decrease nor pass the end.
void epoch_clock_marks_seconds() {
    using clock = std::chrono::steady_clock;
    for (const bool live : {false, true}) {
        const auto start = clock::now();
        fp::EpochClock epochs(live);
        std::vector<double> seconds;
        const double first = epochs.mark(seconds);
        std::this_thread::sleep_for(std::chrono::milliseconds(30));
        epochs.mark(seconds);
        epochs.mark(seconds);
        epochs.finish(seconds);
        const double total = std::chrono::duration<double>(clock::now() - start).count();
        check(seconds.size() == 3, "one entry per mark", double(seconds.size()));
        if (live) check(first == seconds[0], "a live mark returns its seconds", first);
        check(seconds[0] >= 0, "the first mark after the start", seconds[0]);
        check(seconds[1] - seconds[0] >= 0.0299, "a 30 ms pause between two marks",
              seconds[1] - seconds[0]);
        check(seconds[1] <= seconds[2] && seconds[2] <= total, "marks in order, before the end",
              seconds[2] - total);
    }
}

}  // namespace

int main() {
    fp::SplitMix64 rng(2026);
    kernels_match_plain_loops(rng);
    sparse_kernels_match_plain_loops(rng);
    vector_passes_match_one_loop(rng);
    bias_relu_matches_separate_passes<float>(rng);
    bias_relu_matches_separate_passes<double>(rng);
    gradient_matches_finite_differences(rng);
    per_sample_passes_match_the_batch(rng);
    training_lowers_the_loss<double>();
    training_lowers_the_loss<float>();
    levenberg_marquardt_fits_a_sine(rng);
    steady_state_allocates_nothing<float>(rng);
    steady_state_allocates_nothing<double>(rng);
    indexed_rows_train_as_their_copy<float>(rng);
    indexed_rows_train_as_their_copy<double>(rng);
    epoch_clock_marks_seconds();
    std::printf(failures ? "selftest: %d failed\n" : "selftest: all passed\n", failures);
    return failures ? EXIT_FAILURE : EXIT_SUCCESS;
}
