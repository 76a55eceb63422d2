#include "train/lanes.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <numeric>
#include <stdexcept>

#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"
#include "runtime/random.hpp"

namespace fastprop {

template <class T> std::size_t lane_width() {
    const lanes::Kernels<T>* kern = lanes::kernels<T>();
    return kern ? kern->width : 0;
}

namespace {

// The minibatch rows of a fit of t rows: every one but perhaps the last.
std::size_t batch_rows(const TrainOptions& options, std::size_t t) {
    return options.batch_size == 0 ? t : std::min(options.batch_size, t);
}

bool permuted(const TrainOptions& options, std::size_t t) {
    return options.shuffle && batch_rows(options, t) < t;
}

}  // namespace

template <class T>
bool lanes_can_fit(const Network<T>& net, const Batch<T>& train, const Batch<T>* val,
                   const TrainOptions& options, const OptimizerConfig& config) {
    if (lane_width<T>() == 0 || (val != nullptr && (val->index != nullptr || val->sparse())))
        return false;
    if (train.X == nullptr || train.sparse() || train.t == 0)
        return false;
    if (config.method != Method::sgd && config.method != Method::adam &&
        config.method != Method::adamw)
        return false;
    if (options.block_rows != 0 || options.start_epoch != 0)
        return false;
    try {  // what Trainer::fit refuses, it refuses itself (with its message)
        options.check();
        check(config);
    } catch (const std::invalid_argument&) {
        return false;
    }
    // Each minibatch one chunk of rows (perhaps in halves), as the lanes run it.
    const Layout& L = net.layout();
    return batch_rows(options, train.t) <= Workspace<T>::chunk_rows(L, false, false);
}

// Measured (Zen 4, AVX-512, float32, one thread, tanh, fit_many of n networks in one group
// against their loop of fits, CPU time, with gemm's small path and the vector tanh):
// [8, 16, 1] on minibatches of 16 (2.3k multiply-adds per step) costs 1.48x the loop with 4
// networks, 0.69x with 6, 0.36x with 16; [16, 32, 1] on 32 (17k) 1.36x with 8, 0.64x with
// 16; [32, 32, 32, 4] on 32 (70k) 0.89x with 16 and [64, 64, 64, 10] on 32 (283k, issue 17's
// E1) about 1.05x: a single fit's products run near the FMA peak there already.
template <class T>
std::size_t lanes_min_networks(const Network<T>& net, const Batch<T>& train,
                               const TrainOptions& options) {
    const std::size_t W = lane_width<T>();
    const Layout& L = net.layout();
    std::size_t weights = 0;
    for (std::size_t i = 0; i < L.n(); ++i) weights += L[i].l_in * L[i].l_out;
    const std::size_t work = batch_rows(options, train.t) * weights;  // forward multiply-adds
    if (work > (std::size_t(1) << 15)) return W + 1;
    if (work > (std::size_t(1) << 12)) return std::max<std::size_t>(2, (3 * W + 3) / 4);
    return std::max<std::size_t>(2, (W + 2) / 3);
}

namespace {

// The update, as update_if_finite chooses it: SGD's fused pass, SGD with weight decay alone,
// with momentum, with Nesterov's momentum, Adam, AdamW (each rounds its own way).
std::size_t update_kind(const OptimizerConfig& c) {
    if (c.method == Method::adam) return 4;
    if (c.method == Method::adamw) return 5;
    if (c.momentum == 0.0) return c.weight_decay == 0.0 ? 0 : 1;
    return c.nesterov ? 3 : 2;
}

}  // namespace

template <class T>
std::vector<std::size_t> lanes_key(const Network<T>& net, const Batch<T>& train,
                                   const TrainOptions& options, const OptimizerConfig& config) {
    const Layout& L = net.layout();
    std::vector<std::size_t> key(L.layers());
    key.push_back(L.bias());
    for (const Activation f : net.activations()) key.push_back(std::size_t(f));
    key.push_back(std::size_t(net.loss()));
    key.push_back(train.w != nullptr);
    key.push_back(train.t);
    key.push_back(batch_rows(options, train.t));
    key.push_back(options.epochs);
    key.push_back(permuted(options, train.t));
    key.push_back(permuted(options, train.t) ? std::size_t(options.seed) : 0);
    key.push_back(update_kind(config));
    key.insert(key.begin(), L.n());  // so that no two layouts' keys run into each other
    return key;
}

template <class T>
LaneGroup<T>::LaneGroup(std::vector<LaneFit<T>*> fits, const Batch<T>& train,
                        const TrainOptions& options)
    : kern_(*lanes::kernels<T>()), W_(kern_.width), fits_(std::move(fits)),
      net_(fits_.at(0)->session->network()), train_(train), options_(options) {
    if (fits_.size() > W_)
        throw std::invalid_argument("a lane group holds at most " + std::to_string(W_) +
                                    " networks, got " + std::to_string(fits_.size()));
    const Layout& L = net_.layout();
    const std::size_t n = L.n(), rows = batch_rows(options, train.t);
    // One buffer, each part a multiple of W entries from a vector-aligned start.
    z_.assign(n + 1, 0);
    a_.assign(n + 1, 0);
    delta_.assign(n + 1, 0);
    std::size_t size = 0;
    for (std::size_t i = 1; i <= n; ++i) {
        const std::size_t entries = rows * L.layers()[i] * W_;
        z_[i] = size;
        size += entries;
        if (i < n) {
            a_[i] = size;
            size += entries;
        }
        delta_[i] = size;
        size += entries;
    }
    const OptimizerConfig& c0 = *fits_[0]->config;
    adam_ = c0.method == Method::adam || c0.method == Method::adamw;
    c0_decoupled_ = c0.method == Method::adamw;
    fused_sgd_ = !adam_ && c0.momentum == 0.0 && c0.weight_decay == 0.0;
    const std::size_t moments = adam_ ? 2 : c0.momentum != 0.0 ? 1 : 0;
    const std::size_t params = L.n_params() * W_;
    constexpr std::size_t align = 64 / sizeof(T);
    buffer_.assign((2 + moments) * params + n_rates * W_ + size + align, T(0));
    T* base = buffer_.data();
    base += (align - reinterpret_cast<std::uintptr_t>(base) / sizeof(T) % align) % align;
    P_ = base;
    G_ = P_ + params;
    M_ = moments >= 1 ? G_ + params : nullptr;
    V_ = moments >= 2 ? M_ + params : nullptr;
    T* rate = G_ + (1 + moments) * params;
    auto take = [&] {
        T* out = rate;
        rate += W_;
        return out;
    };
    lr_ = take();
    weight_decay_ = take();
    momentum_ = take();
    one_minus_beta1_ = take();
    beta2_ = take();
    one_minus_beta2_ = take();
    eps_ = take();
    step_size_ = take();
    bc2_sqrt_ = take();
    decay_ = take();
    table_ = rate;
    E_.assign(W_, 0.0);
    E2_.assign(W_, 0.0);
    E_epoch_.assign(W_, 0.0);
    if (detail::split_in_halves(L, rows) || detail::split_in_halves(L, train.t % rows))
        G2_.assign(params, T(0));
    // The minibatch in lanes, each gathered from its network's own data, unless every
    // network reads the same rows of the same arrays (then one shared minibatch).
    const Batch<T>& b0 = fits_[0]->train;
    gathered_ = false;
    for (const LaneFit<T>* fit : fits_) {
        const Batch<T>& b = fit->train;
        gathered_ |= b.index != nullptr || b.X != b0.X || b.Y != b0.Y || b.w != b0.w;
        if (b.t != b0.t || (b.w == nullptr) != (b0.w == nullptr))
            throw std::invalid_argument("the networks of a lane group train on as many rows, "
                                        "all with sample weights or none");
    }
    for (std::size_t j = 0; j < fits_.size(); ++j) {  // the parameters: in fit(), locked
        const LaneFit<T>& fit = *fits_[j];
        const OptimizerConfig& c = *fit.config;
        base_lr_.push_back(c.lr);  // a hook may set another
        weight_decay_[j] = T(c.weight_decay);
        momentum_[j] = T(c.momentum);
        one_minus_beta1_[j] = T(1) - T(c.beta1);  // as elementwise::adam rounds 1 − β
        beta2_[j] = T(c.beta2);
        one_minus_beta2_[j] = T(1) - T(c.beta2);
        eps_[j] = T(c.eps);
        active_ |= lanes::LaneMask(1) << j;
    }
}

template <class T> void LaneGroup<T>::to_network(std::size_t j) {
    T* p = fits_[j]->session->params();
    for (std::size_t e = 0; e < net_.n_params(); ++e) p[e] = P_[e * W_ + j];
    if (M_ != nullptr) {
        T* m = fits_[j]->state->m.data();
        for (std::size_t e = 0; e < net_.n_params(); ++e) m[e] = M_[e * W_ + j];
    }
    if (V_ != nullptr) {
        T* v = fits_[j]->state->v.data();
        for (std::size_t e = 0; e < net_.n_params(); ++e) v[e] = V_[e * W_ + j];
    }
}

template <class T> void LaneGroup<T>::from_network(std::size_t j) {
    const T* p = fits_[j]->session->params();
    for (std::size_t e = 0; e < net_.n_params(); ++e) P_[e * W_ + j] = p[e];
    if (M_ != nullptr) {
        const T* m = fits_[j]->state->m.data();
        for (std::size_t e = 0; e < net_.n_params(); ++e) M_[e * W_ + j] = m[e];
    }
    if (V_ != nullptr) {
        const T* v = fits_[j]->state->v.data();
        for (std::size_t e = 0; e < net_.n_params(); ++e) V_[e * W_ + j] = v[e];
    }
}

template <class T> void LaneGroup<T>::publish() {
    for (std::size_t j = 0; j < fits_.size(); ++j)
        if (active_ >> j & 1) to_network(j);
}

// Lane j's network is done (or failed, or was interrupted): its parameters go home, and its
// lane is zeroed, so that the steps the others still take compute nothing costly in it (no
// inf or NaN running through σ's slow paths).
template <class T> void LaneGroup<T>::stop(std::size_t j, Stop why) {
    to_network(j);
    for (std::size_t e = 0; e < net_.n_params(); ++e) P_[e * W_ + j] = T(0);
    if (M_ != nullptr)
        for (std::size_t e = 0; e < net_.n_params(); ++e) M_[e * W_ + j] = T(0);
    if (V_ != nullptr)
        for (std::size_t e = 0; e < net_.n_params(); ++e) V_[e * W_ + j] = T(0);
    active_ &= ~(lanes::LaneMask(1) << j);
    fits_[j]->record.stop = why;
}

// One training step's passes for every lane (detail::chunk_pass): E_ and the gradient in G_.
// x (rows, l_0) and y (rows, l_n) are the minibatch, the same for all (in lanes when each
// lane gathers its own). A minibatch that a single fit splits in halves is split here too: the second
// half's gradient in its own buffer, then added to the first's, E the sum of the halves'.
template <class T> void LaneGroup<T>::step(const T* x, const T* y, std::size_t rows) {
    if (!detail::split_in_halves(net_.layout(), rows)) {
        passes(x, y, rows, 0, G_, E_.data());
        return;
    }
    const std::size_t first = rows - rows / 2, l_0 = net_.layout().l_in();
    const std::size_t l_n = net_.layout().l_out(), w = gathered_ ? W_ : 1;
    passes(x, y, first, 0, G_, E_.data());
    passes(x + first * l_0 * w, y + first * l_n * w, rows / 2, first, G2_.data(), E2_.data());
    elementwise::add(G_, G2_.data(), net_.n_params() * W_);
    for (std::size_t j = 0; j < W_; ++j) E_[j] += E2_[j];
}

// detail::rows_pass for every lane: forward_rows, then backward_rows, over `rows` rows of
// the minibatch from row r0 on (of its sample weights, w_rows_), the gradient written to G
// (in lanes) and E to E (one per lane); a mean loss divides by size_ (the minibatch's rows,
// or each lane's total weight).
template <class T>
void LaneGroup<T>::passes(const T* x, const T* y, std::size_t rows, std::size_t r0, T* G,
                          double* E) {
    const Layout& L = net_.layout();
    const std::size_t n = L.n(), W = W_;
    const bool bias = L.bias();
    auto z = [&](std::size_t i) { return table_ + z_[i]; };
    auto a = [&](std::size_t i) { return table_ + a_[i]; };
    auto delta = [&](std::size_t i) { return table_ + delta_[i]; };
    for (std::size_t i = 0; i < n; ++i) {  // z_{i+1} = a_i W_iᵀ + b_i, a_{i+1} = σ(z_{i+1})
        const LayerSlice& s = L[i];
        kern_.forward(gemm_kc<T>(s.l_in), z(i + 1),
                      i == 0 ? x : a(i), i == 0 && !gathered_, P_ + s.W * W,
                      bias ? P_ + s.b * W : nullptr, rows, s.l_in, s.l_out);
        if (i + 1 == n) break;
        const std::size_t count = rows * s.l_out * W;
        const Activation f = net_.sigma(i + 1);
        if (f == Activation::relu || f == Activation::leaky_relu)  // dense.cpp's forward_tail
            elementwise::bias_relu<T>(z(i + 1), count, nullptr, a(i + 1), count, 1, count,
                                      f == Activation::leaky_relu ? leaky_relu_slope : 0.0, true);
        else
            apply_sigma_keep_prime(f, a(i + 1), z(i + 1), count);
    }
    // E and δ_n: the squared errors in lanes, every other loss lane by lane through the very
    // function a single fit calls (on a copy of the lane's z_n, δ_n written back).
    const std::size_t l_n = L.l_out(), entries = rows * l_n;
    const Loss loss = net_.loss();
    if ((loss == Loss::sse || loss == Loss::mse) && train_.w == nullptr) {
        const double count = size_[0] * double(l_n);
        const bool mean = loss == Loss::mse;
        kern_.squared_error(delta(n), E, z(n), y, !gathered_, entries,
                            mean ? T(-2) / T(count) : T(-2));
        if (mean)
            for (std::size_t j = 0; j < W; ++j) E[j] /= count;
    } else {
        z_lane_.resize(entries);
        delta_lane_.resize(entries);
        if (gathered_) y_lane_.resize(entries);
        for (std::size_t j = 0; j < fits_.size(); ++j) {
            if (!(active_ >> j & 1)) continue;
            for (std::size_t k = 0; k < entries; ++k) z_lane_[k] = z(n)[k * W + j];
            const T* y_j = y;
            if (gathered_) {
                for (std::size_t k = 0; k < entries; ++k) y_lane_[k] = y[k * W + j];
                y_j = y_lane_.data();
            }
            const Network<T>& net_j = fits_[j]->session->network();
            E[j] = loss_and_delta(
                loss, LossRows<T>{delta_lane_.data(), z_lane_.data(), y_j,
                                  train_.w ? w_rows_[j] + r0 : nullptr, rows, l_n, size_[j],
                                  net_j.loss_delta()});
            for (std::size_t k = 0; k < entries; ++k) delta(n)[k * W + j] = delta_lane_[k];
        }
    }
    for (std::size_t i = n; i-- > 0;) {  // ∂E/∂W_i, ∂E/∂b_i, δ_i
        const LayerSlice& s = L[i];
        kern_.weight_gradient(gemm_kc<T>(rows), G + s.W * W, bias ? G + s.b * W : nullptr,
                              delta(i + 1), i == 0 ? x : a(i), i == 0 && !gathered_, rows,
                              s.l_in, s.l_out);
        if (i >= 1)
            kern_.input_delta(gemm_kc<T>(s.l_out), delta(i), delta(i + 1), P_ + s.W * W,
                              z(i), rows, s.l_in, s.l_out);
    }
}

// After an epoch: the epoch hooks of the networks still training (run_epochs's), with
// every lane written back, every lock of the group released and every gate parked, so that
// a hook may use or train any network; then the lanes are read back. A hook asking to stop
// stops its network (Stop::callback), one setting a rate sets that network's.
template <class T>
void LaneGroup<T>::epoch_hooks(std::size_t epoch, double seconds,
                               std::vector<std::unique_lock<std::mutex>>& locks,
                               const std::vector<LaneFit<T>*>& by_address) {
    const std::size_t m = fits_.size();
    bool any = false;
    for (std::size_t j = 0; j < m; ++j) any |= (active_ >> j & 1) && bool(fits_[j]->epoch_end);
    if (!any) return;
    publish();
    std::vector<bool> stop_j(m, false);
    {
        for (auto& held : locks) held.unlock();
        struct Relock {
            std::vector<std::unique_lock<std::mutex>>& locks;
            ~Relock() {
                for (auto& held : locks) held.lock();  // in address order, as taken
            }
        } relock{locks};
        std::deque<ParamsGate::Parked> parked;
        for (const LaneFit<T>* fit : by_address) parked.emplace_back(&fit->session->gate());
        for (std::size_t j = 0; j < m; ++j) {
            if (!(active_ >> j & 1) || !fits_[j]->epoch_end) continue;
            const FitRecord& record = fits_[j]->record;
            const EpochControl control = fits_[j]->epoch_end(
                {epoch, record.E.back(), record.E_val.back(), seconds, lr_now_[j]});
            if (control.stop) stop_j[j] = true;
            if (!std::isnan(control.lr)) base_lr_[j] = control.lr;
        }
    }
    for (std::size_t j = 0; j < m; ++j) {
        if (!(active_ >> j & 1)) continue;
        from_network(j);
        if (stop_j[j]) stop(j, Stop::callback);
    }
}

template <class T> void LaneGroup<T>::fit(const Poll& poll) {
    // Every session locked, in address order (two calls locking overlapping sets of networks
    // cannot deadlock), and every network's gate entered, as Session::fit and Trainer::fit do.
    std::vector<LaneFit<T>*> by_address(fits_);
    std::sort(by_address.begin(), by_address.end(),
              [](const LaneFit<T>* p, const LaneFit<T>* q) {
                  return std::less<const Session<T>*>()(p->session, q->session);
              });
    std::vector<std::unique_lock<std::mutex>> locks;
    for (LaneFit<T>* fit : by_address) locks.push_back(fit->session->lock());
    std::deque<ParamsGate::Writing> writing;
    for (LaneFit<T>* fit : fits_) writing.emplace_back(fit->session->gate());
    for (LaneFit<T>* fit : fits_) fit->record = FitRecord{};
    for (std::size_t j = 0; j < fits_.size(); ++j) from_network(j);

    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    const Layout& L = net_.layout();
    const std::size_t t = train_.t, l_0 = L.l_in(), l_n = L.l_out();
    const std::size_t batch = batch_rows(options_, t);
    const bool permute = permuted(options_, t), mean = is_mean(net_.loss());
    if (permute || gathered_) {
        order_.resize(t);
        std::iota(order_.begin(), order_.end(), std::size_t(0));
    }
    if (permute && !gathered_) {
        x_.resize(batch * l_0);
        y_.resize(batch * l_n);
    } else if (gathered_) {  // each lane its own rows: x and y in lanes
        x_.assign(batch * l_0 * W_, T(0));
        y_.assign(batch * l_n * W_, T(0));
    }
    SplitMix64 rng(options_.seed);
    const std::size_t m = fits_.size();
    double samples_seen = 0.0;  // before the epoch: invscaling's s
    lr_now_.assign(m, 0.0);
    early_.assign(m, Early{});
    // What a mean loss's epoch divides by: the rows, or each network's total weight
    // (Batch::size(), in row order).
    total_.assign(m, double(t));
    size_.assign(W_, 0.0);
    w_rows_.assign(W_, nullptr);
    if (train_.w != nullptr) {
        w_lanes_.assign(gathered_ ? W_ * batch : batch, T(0));
        for (std::size_t j = 0; j < m; ++j) total_[j] = fits_[j]->train.size();
    }
    clip_ = false;
    for (const LaneFit<T>* fit : fits_) clip_ |= fit->options->clip_norm > 0;
    clip_factor_.assign(W_, T(1));
    for (std::size_t j = 0; j < m; ++j) {
        const TrainOptions& o = *fits_[j]->options;
        early_[j].keep = o.patience > 0 && o.restore_best;
        early_[j].best_epoch = o.best_epoch;
    }
    for (std::size_t epoch = 0; epoch < options_.epochs && active_ != 0; ++epoch) {
        for (std::size_t j = 0; j < m; ++j)  // EarlyStopping::epoch_begins
            if ((active_ >> j & 1) && early_[j].keep && fits_[j]->val == nullptr)
                lane_params(j, early_[j].start);
        for (std::size_t j = 0; j < m; ++j) {  // the epoch's rate, as run_epochs takes it
            lr_now_[j] = fits_[j]->schedule ? fits_[j]->schedule->lr(base_lr_[j], epoch,
                                                                      samples_seen)
                                            : base_lr_[j];
            lr_[j] = T(lr_now_[j]);
        }
        if (permute)  // Fisher–Yates from the previous epoch's order, as Trainer::fit draws it
            for (std::size_t k = t; k > 1; --k) std::swap(order_[k - 1], order_[rng.below(k)]);
        std::fill(E_epoch_.begin(), E_epoch_.end(), 0.0);
        for (std::size_t r0 = 0; r0 < t && active_ != 0; r0 += batch) {
            const std::size_t rows = std::min(batch, t - r0);
            if (poll && poll()) {  // before the step: the parameters are those of the last one
                for (std::size_t j = 0; j < m; ++j)
                    if (active_ >> j & 1) stop(j, Stop::interrupted);
                return;
            }
            const T* x = train_.X + r0 * l_0;
            const T* y = train_.Y + r0 * l_n;
            if (gathered_) {  // Trainer::fit's gather, for every lane from its own rows
                for (std::size_t j = 0; j < m; ++j) {
                    if (!(active_ >> j & 1)) continue;
                    const Batch<T>& b = fits_[j]->train;
                    for (std::size_t s = 0; s < rows; ++s) {
                        const std::size_t src = b.index ? b.index[order_[r0 + s]] : order_[r0 + s];
                        for (std::size_t k = 0; k < l_0; ++k)
                            x_[(s * l_0 + k) * W_ + j] = b.X[src * l_0 + k];
                        for (std::size_t k = 0; k < l_n; ++k)
                            y_[(s * l_n + k) * W_ + j] = b.Y[src * l_n + k];
                    }
                }
                x = x_.data();
                y = y_.data();
            } else if (permute) {
                for (std::size_t s = 0; s < rows; ++s) {
                    const std::size_t src = order_[r0 + s];
                    std::copy(train_.X + src * l_0, train_.X + (src + 1) * l_0, x_.data() + s * l_0);
                    std::copy(train_.Y + src * l_n, train_.Y + (src + 1) * l_n, y_.data() + s * l_n);
                }
                x = x_.data();
                y = y_.data();
            }
            // Each lane's sample weights and minibatch size; a minibatch whose rows all weigh
            // 0 is left out of that network's epoch, as Trainer::fit leaves it out.
            lanes::LaneMask skip = 0;
            std::fill(size_.begin(), size_.end(), double(rows));
            if (train_.w != nullptr) {
                for (std::size_t j = 0; j < m; ++j) {
                    if (!(active_ >> j & 1)) continue;
                    if (gathered_) {
                        const Batch<T>& b = fits_[j]->train;
                        T* w_j = w_lanes_.data() + j * batch;
                        for (std::size_t s = 0; s < rows; ++s)
                            w_j[s] = b.w[b.index ? b.index[order_[r0 + s]] : order_[r0 + s]];
                        w_rows_[j] = w_j;
                    } else if (permute) {
                        if (j == 0)
                            for (std::size_t s = 0; s < rows; ++s)
                                w_lanes_[s] = train_.w[order_[r0 + s]];
                        w_rows_[j] = w_lanes_.data();
                    } else {
                        w_rows_[j] = train_.w + r0;
                    }
                    double size = 0.0;
                    for (std::size_t s = 0; s < rows; ++s) size += double(w_rows_[j][s]);
                    size_[j] = size;
                    if (!(size > 0)) skip |= lanes::LaneMask(1) << j;
                }
            }
            const lanes::LaneMask stepping = active_ & ~skip;
            if (stepping == 0) continue;
            step(x, y, rows);
            // minibatch_update: a non-finite E, gradient or update stops that network before
            // the update (a non-finite gradient always makes p − lr·g non-finite, lr > 0).
            for (std::size_t j = 0; j < m; ++j)
                if ((stepping >> j & 1) && !std::isfinite(E_[j])) stop(j, Stop::non_finite);
            if (clip_) {  // clip_gradient per lane: g · min(1, max_norm / (‖g‖ + 1e-6))
                kern_.sum_of_squares(E2_.data(), G_, net_.n_params());
                for (std::size_t j = 0; j < W_; ++j) {
                    const double max_norm = j < m ? fits_[j]->options->clip_norm : 0.0;
                    const double coef = max_norm / (std::sqrt(E2_[j]) + 1e-6);
                    clip_factor_[j] = coef >= 1.0 || max_norm == 0.0 ? T(1) : T(coef);
                }
                kern_.scale(G_, clip_factor_.data(), net_.n_params());
            }
            lanes::LaneMask failed = 0;
            if (fused_sgd_) {
                failed = kern_.sgd(P_, G_, lr_, net_.n_params(), active_ & ~skip);
            } else if (adam_) {
                for (std::size_t j = 0; j < m; ++j) {  // AdamLike::apply's constants
                    const OptimizerConfig& c = *fits_[j]->config;
                    const double lr = lr_now_[j], t_j = double(fits_[j]->state->steps + 1);
                    step_size_[j] = T(lr / (1.0 - std::pow(c.beta1, t_j)));
                    bc2_sqrt_[j] = T(std::sqrt(1.0 - std::pow(c.beta2, t_j)));
                    decay_[j] = T(1.0 - lr * c.weight_decay);
                }
                const lanes::LaneAdam<T> constants{
                    beta2_,    one_minus_beta1_, one_minus_beta2_, weight_decay_, step_size_,
                    bc2_sqrt_, eps_,             decay_,           c0_decoupled_};
                failed = kern_.adam(P_, M_, V_, G_, constants, net_.n_params(), active_ & ~skip);
            } else {
                lanes::LaneMask first = 0;
                for (std::size_t j = 0; j < m; ++j)
                    if (fits_[j]->state->steps == 0) first |= lanes::LaneMask(1) << j;
                const lanes::LaneRates<T> rates{lr_, weight_decay_, momentum_, first,
                                                M_ != nullptr, fits_[0]->config->nesterov};
                failed = kern_.sgd_momentum(P_, M_, G_, rates, net_.n_params(),
                                            active_ & ~skip);
            }
            for (std::size_t j = 0; j < m; ++j) {
                if (failed >> j & 1) stop(j, Stop::non_finite);
                if (!(active_ >> j & 1) || (skip >> j & 1)) continue;
                ++fits_[j]->state->steps;
                E_epoch_[j] += mean ? E_[j] * size_[j] / total_[j] : E_[j];
                ParamsGate& gate = fits_[j]->session->gate();
                if (gate.reader_waiting()) {  // a snapshot waits: the parameters go home first
                    to_network(j);
                    gate.between_updates();
                }
            }
        }
        // The validation loss of each network, by the very pass Trainer::validation_loss
        // runs, on the network itself (its lane written back first).
        std::vector<double> E_val(m, std::numeric_limits<double>::quiet_NaN());
        for (std::size_t j = 0; j < m; ++j) {
            if (!(active_ >> j & 1) || fits_[j]->val == nullptr) continue;
            to_network(j);
            E_val[j] = loss(fits_[j]->session->network().model(), *fits_[j]->val, ws_);
        }
        const double seconds = std::chrono::duration<double>(clock::now() - start).count();
        std::vector<bool> stop_early(m, false);
        for (std::size_t j = 0; j < m; ++j) {
            if (!(active_ >> j & 1)) continue;
            FitRecord& record = fits_[j]->record;
            record.E.push_back(E_epoch_[j]);
            record.E_val.push_back(E_val[j]);
            record.seconds.push_back(seconds);
            record.lr.push_back(lr_now_[j]);
            stop_early[j] = stop_after(j, epoch, fits_[j]->val ? E_val[j] : E_epoch_[j]);
            record.best_epoch = early_[j].best_epoch;
        }
        samples_seen += double(t);
        epoch_hooks(epoch, seconds, locks, by_address);
        for (std::size_t j = 0; j < m; ++j)
            if ((active_ >> j & 1) && stop_early[j]) {
                restore_best(j);
                stop(j, Stop::early_stopping);
            }
    }
    for (std::size_t j = 0; j < m; ++j)
        if (active_ >> j & 1) {
            restore_best(j);  // all epochs ran: still end at the best parameters
            stop(j, Stop::done);
        }
}

template <class T> void LaneGroup<T>::lane_params(std::size_t j, std::vector<T>& out) const {
    out.resize(net_.n_params());
    for (std::size_t e = 0; e < out.size(); ++e) out[e] = P_[e * W_ + j];
}

// EarlyStopping::stop_after for lane j: whether its network stops after this epoch, whose
// monitored loss (E_val, else E) is E.
template <class T> bool LaneGroup<T>::stop_after(std::size_t j, std::size_t epoch, double E) {
    const TrainOptions& o = *fits_[j]->options;
    Early& early = early_[j];
    if (o.patience == 0) return false;
    if (std::isfinite(E) && E < early.best - o.min_delta) {
        early.best = E;
        early.best_epoch = epoch;
        early.waited = 0;
        if (early.keep && fits_[j]->val != nullptr)
            lane_params(j, early.best_params);
        else if (early.keep)
            early.best_params.swap(early.start);
        return false;
    }
    return ++early.waited >= o.patience;
}

// EarlyStopping::restore: lane j back at its best parameters, when it keeps them.
template <class T> void LaneGroup<T>::restore_best(std::size_t j) {
    const Early& early = early_[j];
    if (!early.keep || early.best_params.empty()) return;
    for (std::size_t e = 0; e < net_.n_params(); ++e) P_[e * W_ + j] = early.best_params[e];
}

template std::size_t lane_width<float>();
template std::size_t lane_width<double>();
template bool lanes_can_fit<float>(const Network<float>&, const Batch<float>&,
                                   const Batch<float>*, const TrainOptions&,
                                   const OptimizerConfig&);
template bool lanes_can_fit<double>(const Network<double>&, const Batch<double>&,
                                    const Batch<double>*, const TrainOptions&,
                                    const OptimizerConfig&);
template std::size_t lanes_min_networks<float>(const Network<float>&, const Batch<float>&,
                                               const TrainOptions&);
template std::size_t lanes_min_networks<double>(const Network<double>&, const Batch<double>&,
                                                const TrainOptions&);
template std::vector<std::size_t> lanes_key<float>(const Network<float>&, const Batch<float>&,
                                                   const TrainOptions&, const OptimizerConfig&);
template std::vector<std::size_t> lanes_key<double>(const Network<double>&,
                                                    const Batch<double>&, const TrainOptions&,
                                                    const OptimizerConfig&);
template class LaneGroup<float>;
template class LaneGroup<double>;

}  // namespace fastprop
