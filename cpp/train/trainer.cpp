#include "train/trainer.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <stdexcept>
#include <string>

#include "kernels/elementwise.hpp"
#include "runtime/epoch_clock.hpp"
#include "runtime/random.hpp"
#include "train/blocks.hpp"
#include "runtime/format.hpp"
#include "train/lm.hpp"
#include "train/per_sample.hpp"

namespace fastprop {

const char* stop_name(Stop stop) {
    switch (stop) {
        case Stop::done: return "done";
        case Stop::interrupted: return "interrupted";
        case Stop::callback: return "callback";
        case Stop::non_finite: return "non_finite";
        case Stop::early_stopping: return "early_stopping";
        case Stop::converged: return "converged";
    }
    return "?";
}

double Schedule::lr(double base, std::size_t epoch, double samples_seen) const {
    constexpr double pi = 3.14159265358979323846;
    switch (kind) {
        case Kind::constant: return base;
        case Kind::step: return base * std::pow(gamma, double(epoch / step_size));
        case Kind::cosine: {
            const double e = double(std::min(epoch, t_max));
            return eta_min + (base - eta_min) * (1.0 + std::cos(pi * e / double(t_max))) / 2.0;
        }
        case Kind::invscaling: return base / std::pow(1.0 + samples_seen, power_t);
    }
    return base;
}

namespace {
void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}
}  // namespace

void Schedule::check() const {
    require(step_size >= 1, "step_size must be >= 1, got " + std::to_string(step_size));
    require(std::isfinite(gamma) && gamma > 0,
            "gamma must be a finite number > 0, got " + format_number(gamma));
    require(t_max >= 1, "t_max must be >= 1, got " + std::to_string(t_max));
    require(std::isfinite(eta_min) && eta_min >= 0,
            "eta_min must be a finite number >= 0, got " + format_number(eta_min));
    require(std::isfinite(power_t) && power_t >= 0,
            "power_t must be a finite number >= 0, got " + format_number(power_t));
}

void TrainOptions::check() const {
    require(std::isfinite(min_delta) && min_delta >= 0,
            "min_delta must be a finite number >= 0, got " + format_number(min_delta));
    require(std::isfinite(clip_norm) && clip_norm >= 0,
            "clip_norm must be a finite number >= 0 (0: no clipping), got " +
                format_number(clip_norm));
    schedule.check();
}

namespace {

// g ← g · min(1, max_norm / (‖g‖ + 1e-6)), as torch.nn.utils.clip_grad_norm_ (the norm in
// double).
template <class T> void clip_gradient(T* g, std::size_t n, double max_norm) {
    double sum = 0.0;
    for (std::size_t k = 0; k < n; ++k) sum += double(g[k]) * double(g[k]);
    const double coef = max_norm / (std::sqrt(sum) + 1e-6);
    if (coef >= 1.0) return;
    const T c = T(coef);
    for (std::size_t k = 0; k < n; ++k) g[k] *= c;
}

// Tracks the monitored loss for early stopping, and keeps the parameters it was measured
// at: the validation loss is taken after an epoch's updates, but an epoch's training loss
// before each of them, so without validation the best parameters are those at the start of
// the best epoch (exactly the ones that had that loss, for full-batch training).
template <class T> class EarlyStopping {
public:
    EarlyStopping(const TrainOptions& options, bool validation, std::vector<T>& best,
                  std::vector<T>& start)
        : options_(options), validation_(validation), best_(best), start_(start),
          keep_(options.patience > 0 && options.restore_best) {
        best_.clear();
        start_.clear();
    }

    // Continues from a checkpoint: the best loss so far (NaN: none), its epoch, the epochs
    // waited since, and the parameters to restore (or null).
    void resume(const TrainOptions& options, const T* best, std::size_t n) {
        if (!std::isnan(options.best_loss)) best_E_ = options.best_loss;
        best_epoch_ = options.best_epoch;
        waited_ = options.waited;
        if (keep_ && best) best_.assign(best, best + n);
    }

    void epoch_begins(const Network<T>& net) {
        if (keep_ && !validation_) start_.assign(net.params(), net.params() + net.n_params());
    }

    // After epoch `epoch` with monitored loss `E`; true when training should stop.
    bool stop_after(std::size_t epoch, double E, const Network<T>& net) {
        if (options_.patience == 0) return false;
        if (std::isfinite(E) && E < best_E_ - options_.min_delta) {
            best_E_ = E;
            best_epoch_ = epoch;
            waited_ = 0;
            if (keep_ && validation_)
                best_.assign(net.params(), net.params() + net.n_params());
            else if (keep_)
                best_.swap(start_);
            return false;
        }
        return ++waited_ >= options_.patience;
    }

    void restore(Network<T>& net) const {
        if (keep_ && !best_.empty()) std::copy(best_.begin(), best_.end(), net.params());
    }

    std::size_t best_epoch() const { return best_epoch_; }

private:
    const TrainOptions& options_;
    const bool validation_;
    std::vector<T>& best_;
    std::vector<T>& start_;
    const bool keep_;
    double best_E_ = std::numeric_limits<double>::infinity();
    std::size_t best_epoch_ = 0, waited_ = 0;
};

}  // namespace

// The epoch loop of every trainer. `epoch_updates(lr, E_epoch)` runs one epoch's updates at
// the learning rate lr, sets the epoch's loss and returns Stop::done to go on (or why to
// stop: interrupted, non_finite, converged). Around it: the learning rate of each epoch, the
// validation loss, the records, early stopping and the epoch hook.
template <class T>
template <class EpochUpdates>
FitRecord Trainer<T>::run_epochs(const Batch<T>* val, const TrainOptions& options,
                                 double base_lr, double samples_per_epoch,
                                 EpochUpdates&& epoch_updates) {
    EpochClock clock(bool(hooks_->epoch_end));  // a hook is told each epoch's seconds
    const auto finished = [&clock](FitRecord& record) {
        clock.finish(record.seconds);
        return std::move(record);
    };
    EarlyStopping<T> early(options, val != nullptr, best_, start_);
    early.resume(options, hooks_->best_params, net_.n_params());
    FitRecord record;
    record.best_epoch = options.best_epoch;
    // The records' room for the epochs planned (up to 2^16 of them, 2 MiB in all): grown one
    // epoch at a time, their reallocations and first touches of fresh pages were 2-3% of a
    // W1 epoch (one step of four rows).
    if (options.epochs > options.start_epoch) {
        const std::size_t planned =
            std::min<std::size_t>(options.epochs - options.start_epoch, std::size_t(1) << 16);
        for (std::vector<double>* v : {&record.E, &record.E_val, &record.seconds, &record.lr})
            v->reserve(planned);
    }
    double samples_seen = samples_per_epoch * double(options.start_epoch);
    for (std::size_t epoch = options.start_epoch; epoch < options.epochs; ++epoch) {
        early.epoch_begins(net_);
        const double lr = options.schedule.lr(base_lr, epoch, samples_seen);
        double E_epoch = 0.0;
        const Stop stop = epoch_updates(lr, E_epoch);
        if (stop == Stop::interrupted || stop == Stop::non_finite) {
            record.stop = stop;
            return finished(record);
        }
        const double E_val = val ? validation_loss(*val, options)
                                 : std::numeric_limits<double>::quiet_NaN();
        const double seconds = clock.mark(record.seconds);
        record.E.push_back(E_epoch);
        record.E_val.push_back(E_val);
        record.lr.push_back(lr);
        samples_seen += samples_per_epoch;
        const bool stop_early = early.stop_after(epoch, val ? E_val : E_epoch, net_);
        record.best_epoch = early.best_epoch();
        if (hooks_->epoch_end) {
            ParamsGate::Parked parked(gate_);
            const EpochControl control = hooks_->epoch_end({epoch, E_epoch, E_val, seconds, lr});
            if (control.stop) {
                record.stop = Stop::callback;
                return finished(record);
            }
            if (!std::isnan(control.lr)) base_lr = control.lr;
        }
        if (stop_early) {
            early.restore(net_);
            record.stop = Stop::early_stopping;
            return finished(record);
        }
        if (stop != Stop::done) {
            early.restore(net_);
            record.stop = stop;
            return finished(record);
        }
    }
    early.restore(net_);  // all epochs ran: still end at the best parameters
    return finished(record);
}

template <class T>
Stop Trainer<T>::minibatch_update(const Batch<T>& rows, const TrainOptions& options,
                                  const OptimizerConfig& config, OptimizerState<T>& state,
                                  double lr, double& E) {
    const NonFinite check;
    const bool dp = per_sample(config.method);
    try {  // checks for Ctrl-C before the minibatch, and between its chunks if several
        E = dp ? clipped_gradient_sum(net_.model(), rows, config.max_grad_norm, grad_.data(), ws_,
                                      norms_, hooks_->poll, &check)
               : gradient(net_.model(), rows, grad_.data(), ws_, hooks_->poll, &check, false);
    } catch (const Interrupted&) {
        return Stop::interrupted;  // before the update: the parameters are untouched
    }
    if (hooks_->reduce) hooks_->reduce(grad_.data(), grad_.size(), E);
    // A finite E can still have a NaN gradient (inf·0 from an infinite input into a
    // saturated σ): either stops training before the update.
    if (!std::isfinite(E) || check.seen.load()) return Stop::non_finite;
    if (hooks_->reduce && !elementwise::all_finite(grad_.data(), grad_.size()))
        return Stop::non_finite;
    if (dp) optimizer::Dpsgd::privatise(config, state.steps, grad_.data(), grad_.size(), rows.t);
    if (options.clip_norm > 0) clip_gradient(grad_.data(), grad_.size(), options.clip_norm);
    // A finite gradient can still step to inf (a huge lr, an overflowing momentum): such an
    // update is not committed either, so the parameters and the optimiser's state stay at
    // the last finite state.
    if (!update_if_finite(config, state, net_.params(), grad_.data(), net_.n_params(), lr))
        return Stop::non_finite;
    if (gate_) gate_->between_updates();
    return Stop::done;
}

template <class T>
double Trainer<T>::validation_loss(const Batch<T>& val, const TrainOptions& options) {
    if (options.block_rows == 0) return loss(net_.model(), val, ws_);
    const DataParallel<T>* par = hooks_->parallel;
    const bool remote = par && par->epoch_rows;
    double E = 0.0;
    tree_sum(remote ? par->val_rows : val, val.t, options.block_rows, val.size(), 0, nullptr, E);
    return E;
}

template <class T>
bool Trainer<T>::tree_sum(const Batch<T>& mine, std::size_t rows, std::size_t block_rows,
                          double size, std::size_t n, T* out, double& E) {
    const DataParallel<T>* par = hooks_->parallel;
    const bool remote = par && par->epoch_rows;
    const std::size_t rank = remote ? par->rank : 0, ranks = remote ? par->ranks : 1;
    const Layout& L = net_.layout();
    const std::size_t nb = blocks::count(rows, block_rows);
    // Per rank: its nodes' values (n each), their E, and its status (0 done, 1 interrupted,
    // 2 a part not finite).
    const std::size_t node_bytes = n * sizeof(T);
    auto bytes = [&](std::size_t k) { return k * (node_bytes + sizeof(double)) + sizeof(double); };
    counts_.resize(ranks);
    for (std::size_t q = 0; q < ranks; ++q) {
        const auto [a, b] = blocks::owned(nb, q, ranks);
        counts_[q] = bytes(blocks::nodes(a, b, nb).size());
    }
    const auto [a, b] = blocks::owned(nb, rank, ranks);
    const std::vector<blocks::Node> own = blocks::nodes(a, b, nb);
    // With `scatter` (a reduce-scatter), rank q is sent slice q of each of this rank's nodes:
    // straight from the node's buffer when this rank has one node, else from scatter_, where
    // the nodes' slices are written by destination (this rank's own part last, not sent: the
    // combine reads it where it is). The nodes' E and the status (the tail, in send_) are
    // all-gathered first. Without it, the tail follows the nodes' values in send_.
    const bool scatter = ranks > 1 && n > 0 && par->scatter;
    const bool direct = scatter && own.size() == 1;
    const std::size_t tail = own.size() * sizeof(double) + sizeof(double);
    std::size_t m = n;  // the values of each node in `all`: all n, or this rank's slice
    if (scatter) {
        slices_.resize(ranks + 1);
        for (std::size_t q = 0; q <= ranks; ++q) slices_[q] = n * q / ranks;
        counts_to_.resize(ranks);
        counts_from_.resize(ranks);
        counts_tail_.resize(ranks);
        displs_to_.resize(ranks);
        m = slices_[rank + 1] - slices_[rank];
        std::size_t at = 0;
        for (std::size_t q = 0; q < ranks; ++q) {
            const std::size_t bytes_q = (slices_[q + 1] - slices_[q]) * sizeof(T);
            counts_to_[q] = q == rank ? 0 : own.size() * bytes_q;
            const auto [a_q, b_q] = blocks::owned(nb, q, ranks);
            const std::size_t k_q = blocks::nodes(a_q, b_q, nb).size();
            counts_from_[q] = q == rank ? 0 : k_q * m * sizeof(T);
            counts_tail_[q] = k_q * sizeof(double) + sizeof(double);
            displs_to_[q] = direct ? slices_[q] * sizeof(T) : at;
            at += counts_to_[q];
        }
        if (!direct) {
            displs_to_[rank] = at;
            scatter_.resize(at + own.size() * m * sizeof(T));
        }
        send_.resize(tail);
    } else {
        send_.resize(counts_[rank]);
    }
    unsigned char* const E_at = send_.data() + (scatter ? 0 : own.size() * node_bytes);
    const T* direct_root = nullptr;  // the one node's values, when direct
    double status = 0.0;
    const Poll none;
    try {
        std::size_t row = 0;  // in mine
        for (std::size_t k = 0; k < own.size(); ++k) {
            blocks::Tree<T> tree(n);
            if (n && pool_.size() < own[k].level + 2) pool_.resize(own[k].level + 2);
            for (std::size_t block = own[k].first; block < own[k].end; ++block) {
                const std::size_t r = std::min(block_rows, rows - block * block_rows);
                const Batch<T> part = mine.rows(row, r, L.l_in(), L.l_out());
                row += r;
                T* g = nullptr;
                if (n) {  // a buffer the stack does not hold
                    for (std::vector<T>& buffer : pool_) {
                        buffer.resize(n);
                        if (!tree.holds(buffer.data())) {
                            g = buffer.data();
                            break;
                        }
                    }
                }
                const double E_block =
                    n ? gradient_of_rows(net_.model(), part, size, g, ws_, hooks_->poll, nullptr,
                                         false)
                      : loss_of_rows(net_.model(), part, size, ws_, none);
                tree.push(0, g, E_block);
            }
            double E_node = 0.0;
            const T* root = tree.finish(E_node);
            if (direct) {
                direct_root = root;
            } else if (scatter) {
                for (std::size_t q = 0; q < ranks; ++q) {
                    const std::size_t bytes_q = (slices_[q + 1] - slices_[q]) * sizeof(T);
                    std::memcpy(scatter_.data() + displs_to_[q] + k * bytes_q,
                                root + slices_[q], bytes_q);
                }
            } else if (n) {
                std::memcpy(send_.data() + k * node_bytes, root, node_bytes);
            }
            std::memcpy(E_at + k * sizeof(double), &E_node, sizeof(double));
            if (ranks > 1 && status == 0.0 &&
                (!std::isfinite(E_node) || (n && !elementwise::all_finite(root, n))))
                status = 2.0;
        }
    } catch (const Interrupted&) {
        status = 1.0;
    }
    std::memcpy(E_at + own.size() * sizeof(double), &status, sizeof(double));
    unsigned char* all = send_.data();  // every rank's nodes' values, then (without scatter)
    const std::size_t* counts = counts_.data();  // their tails
    const unsigned char* own_values = nullptr;   // with scatter: this rank's slices
    if (scatter) {
        std::size_t total_tail = 0, total_from = 0;
        for (std::size_t q = 0; q < ranks; ++q) {
            total_tail += counts_tail_[q];
            total_from += counts_from_[q];
        }
        tails_.resize(total_tail);
        par->exchange(send_.data(), tails_.data(), counts_tail_.data());
        const unsigned char* values = scatter_.data();
        if (direct) {
            if (direct_root == nullptr) {  // interrupted before: any bytes (the status says so)
                scatter_.resize(node_bytes);
                direct_root = reinterpret_cast<const T*>(scatter_.data());
            }
            values = reinterpret_cast<const unsigned char*>(direct_root);
        }
        own_values = values + displs_to_[rank];
        recv_.resize(total_from);
        par->scatter(values, counts_to_.data(), displs_to_.data(), recv_.data(),
                     counts_from_.data());
        all = recv_.data();
        counts = counts_from_.data();
    } else if (ranks > 1) {
        std::size_t total = 0;
        for (std::size_t c : counts_) total += c;
        recv_.resize(total);
        par->exchange(send_.data(), recv_.data(), counts_.data());
        all = recv_.data();
    }
    // Every rank's nodes, in rank order, are the tree's nodes in block order (the tree is the
    // same for every parameter, so a slice of each node sums to that slice of the root).
    // With scatter, the root's last addition writes this rank's slice of `out` (then
    // all-gathered in place).
    const std::size_t m_bytes = m * sizeof(T);
    blocks::Tree<T> tree(m);
    bool interrupted = false;
    fault_rank_ = -1;
    std::size_t nodes_left = 0;
    for (std::size_t q = 0; q < ranks; ++q) {
        const auto [a_q, b_q] = blocks::owned(nb, q, ranks);
        nodes_left += blocks::nodes(a_q, b_q, nb).size();
    }
    T* const dest = scatter && m ? out + slices_[rank] : nullptr;
    const T* root = nullptr;
    for (std::size_t q = 0, offset = 0, toffset = 0; q < ranks;
         offset += counts[q], toffset += scatter ? counts_tail_[q] : 0, ++q) {
        const auto [a_q, b_q] = blocks::owned(nb, q, ranks);
        const std::vector<blocks::Node> theirs = blocks::nodes(a_q, b_q, nb);
        const unsigned char* values = scatter && q == rank ? own_values : all + offset;
        const unsigned char* tail_q =
            scatter ? tails_.data() + toffset : values + theirs.size() * m_bytes;
        double status_q = 0.0;
        std::memcpy(&status_q, tail_q + theirs.size() * sizeof(double), sizeof(double));
        if (status_q == 1.0) interrupted = true;
        if (status_q == 2.0 && fault_rank_ < 0) fault_rank_ = long(q);
        if (interrupted) continue;
        for (std::size_t k = 0; k < theirs.size(); ++k) {
            double E_node = 0.0;
            std::memcpy(&E_node, tail_q + k * sizeof(double), sizeof(double));
            // the values are only read (a merge writes into its left node, or into dest)
            T* g = m ? reinterpret_cast<T*>(const_cast<unsigned char*>(values) + k * m_bytes)
                     : nullptr;
            if (--nodes_left == 0 && dest)
                root = tree.finish_into(theirs[k].level, g, E_node, dest, E);
            else
                tree.push(theirs[k].level, g, E_node);
        }
    }
    if (interrupted) return false;  // on every rank: every rank saw every status
    if (!root) root = tree.finish(E);
    if (scatter) {  // every rank's summed slice, into out
        counts_to_.resize(ranks);
        for (std::size_t q = 0; q < ranks; ++q)
            counts_to_[q] = (slices_[q + 1] - slices_[q]) * sizeof(T);
        const unsigned char* mine_summed =
            m ? reinterpret_cast<const unsigned char*>(root) : send_.data();
        par->exchange(mine_summed, reinterpret_cast<unsigned char*>(out), counts_to_.data());
    } else if (n) {
        std::memcpy(out, root, node_bytes);
    }
    if (ranks == 1) fault_rank_ = 0;
    return true;
}

template <class T>
Stop Trainer<T>::blocked_update(const Batch<T>& mine, std::size_t rows, double size,
                                const TrainOptions& options, const OptimizerConfig& config,
                                OptimizerState<T>& state, double lr, double& E) {
    if (!tree_sum(mine, rows, options.block_rows, size, grad_.size(), grad_.data(), E))
        return Stop::interrupted;  // on every rank: the statuses were exchanged
    if (hooks_->reduce) hooks_->reduce(grad_.data(), grad_.size(), E);
    if (!std::isfinite(E) || !elementwise::all_finite(grad_.data(), grad_.size()))
        return Stop::non_finite;
    if (options.clip_norm > 0) clip_gradient(grad_.data(), grad_.size(), options.clip_norm);
    // the same on every rank: every rank has the same gradient (spent by plain SGD's fused
    // pass, which keeps the old parameters in it)
    if (!update_if_finite(config, state, net_.params(), grad_.data(), net_.n_params(), lr))
        return Stop::non_finite;
    if (gate_) gate_->between_updates();
    return Stop::done;
}

template <class T>
FitRecord Trainer<T>::fit(const Batch<T>& train, const Batch<T>* val,
                          const TrainOptions& options, const OptimizerConfig& config,
                          OptimizerState<T>& state, const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    options.check();
    check(config);
    if (val && val->index)
        throw std::invalid_argument("the validation batch must be contiguous rows (no index)");
    if (!state_fits(config, state, net_.n_params()))
        throw std::invalid_argument("the optimiser state does not fit this network and "
                                    "optimiser (its buffers have the wrong size)");
    const Layout& L = net_.layout();
    const std::size_t t = train.t, l_0 = L.l_in(), l_n = L.l_out();
    const std::size_t batch = options.batch_size == 0 ? t : std::min(options.batch_size, t);
    // Minibatches are gathered when shuffled, and always from an indexed batch: the rows
    // gathered are the same values as a contiguous copy's, so the same bits.
    const bool gather = (options.shuffle && batch < t) || train.index != nullptr;
    const bool permute = options.shuffle && batch < t;
    const std::size_t B = options.block_rows;
    if (B > 0 && per_sample(config.method))
        throw std::invalid_argument("block_rows works with the optimisers that update from the "
                                    "minibatch's gradient, not with DP-SGD's per-sample "
                                    "clipping (block_rows must be 0)");
    const DataParallel<T>* par = B > 0 ? hooks.parallel : nullptr;
    const bool remote = par && par->epoch_rows;  // this rank holds its blocks' rows alone
    if (remote && (par->rank >= par->ranks || !par->exchange))
        throw std::invalid_argument("data-parallel training needs rank < ranks and an exchange");
    if (remote && train.index)
        throw std::invalid_argument("data-parallel training takes contiguous rows (no index)");
    if (train.sparse() && (B > 0 || train.index))
        throw std::invalid_argument("a sparse X trains without block_rows and without an index "
                                    "of rows");
    ws_.reserve(L, std::min(batch, Workspace<T>::chunk_rows(L, false, train.sparse())));
    grad_.resize(net_.n_params());
    if (gather && !remote) {
        if (train.sparse())
            x_indptr_.resize(batch + 1);
        else
            x_.resize(batch * l_0);
        y_.resize(batch * l_n);
        if (train.w) w_.resize(batch);
    }
    if (gather || remote) {
        order_.resize(t);
        std::iota(order_.begin(), order_.end(), std::size_t(0));
    }
    fault_rank_ = -1;
    // A mean loss is a mean over the whole batch: each minibatch's share is its part of the
    // total size (rows, or weight).
    const double total = train.size();
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    SplitMix64 rng(options.seed);
    auto shuffle = [&] {  // Fisher–Yates, continuing from the previous epoch's order
        for (std::size_t k = t; k > 1; --k) std::swap(order_[k - 1], order_[rng.below(k)]);
    };
    if (permute)  // resuming: the orders of the epochs before start_epoch
        for (std::size_t e = 0; e < options.start_epoch && e < options.epochs; ++e) shuffle();
    FitRecord record = run_epochs(val, options, config.lr, double(t),
                                  [&](double lr, double& E_epoch) {
        if (permute) shuffle();
        E_epoch = 0.0;
        Batch<T> mine;  // remote: the rows of this rank's blocks of the epoch's minibatches
        std::size_t used = 0;
        if (remote) {
            try {
                mine = par->epoch_rows(order_.data(), t);
            } catch (const Interrupted&) {
                return Stop::interrupted;
            }
        }
        for (std::size_t r0 = 0; r0 < t; r0 += batch) {
            const std::size_t rows = std::min(batch, t - r0);
            if (remote) {
                double size = double(rows);  // summed as Batch::size() sums a gathered part
                if (train.w) {
                    size = 0.0;
                    for (std::size_t s = 0; s < rows; ++s) size += double(train.w[order_[r0 + s]]);
                }
                const auto [a, b] = blocks::owned(blocks::count(rows, B), par->rank, par->ranks);
                const std::size_t count = std::min(b * B, rows) - std::min(a * B, rows);
                if (used + count > mine.t)
                    throw std::invalid_argument(
                        "epoch_rows gave " + std::to_string(mine.t) +
                        " rows, fewer than this rank's blocks of the epoch take");
                if (train.w && !(size > 0)) {  // all its rows weigh 0: left out, as below
                    used += count;
                    continue;
                }
                double E = 0.0;
                const Stop stop = blocked_update(mine.rows(used, count, l_0, l_n), rows, size,
                                                 options, config, state, lr, E);
                used += count;
                if (stop != Stop::done) return stop;
                E_epoch += is_mean(net_.loss()) ? E * size / total : E;
                continue;
            }
            Batch<T> part = train.rows(r0, rows, l_0, l_n);
            if (gather) {
                for (std::size_t s = 0; s < rows; ++s) {
                    const std::size_t src =
                        train.index ? train.index[order_[r0 + s]] : order_[r0 + s];
                    if (!train.sparse())
                        std::copy(train.X + src * l_0, train.X + (src + 1) * l_0,
                                  x_.data() + s * l_0);
                    std::copy(train.Y + src * l_n, train.Y + (src + 1) * l_n, y_.data() + s * l_n);
                    if (train.w) w_[s] = train.w[src];
                }
                const T* w = train.w ? w_.data() : nullptr;
                if (train.sparse())
                    part = {nullptr, y_.data(), w, rows, nullptr,
                            gather_sparse(train.Xs, r0, rows)};
                else
                    part = {x_.data(), y_.data(), w, rows};
            }
            // A minibatch whose rows all weigh 0 is left out, as each of its rows would be:
            // a mean over it would be 0/0, and an update from it would move the parameters.
            if (part.w && !(part.size() > 0)) continue;
            double E = 0.0;
            const Stop stop = B > 0 ? blocked_update(part, rows, part.size(), options, config,
                                                     state, lr, E)
                                    : minibatch_update(part, options, config, state, lr, E);
            if (stop != Stop::done) return stop;
            E_epoch += is_mean(net_.loss()) ? E * part.size() / total : E;
        }
        return Stop::done;
    });
    if (record.stop == Stop::non_finite) record.fault_rank = fault_rank_;
    return record;
}

// The minibatch's rows of a sparse X, in the order of order_[r0 ..], copied into x_indptr_,
// x_indices_ and x_ (data): memory of the minibatch's entries, never of a dense row.
template <class T>
CsrRows<T> Trainer<T>::gather_sparse(const CsrRows<T>& X, std::size_t r0, std::size_t rows) {
    std::size_t entries = 0;
    for (std::size_t s = 0; s < rows; ++s) {
        const std::size_t src = order_[r0 + s];
        entries += std::size_t(X.indptr[src + 1] - X.indptr[src]);
    }
    if (x_indices_.size() < entries) {
        x_indices_.resize(entries);
        x_.resize(entries);
    }
    x_indptr_[0] = 0;
    std::size_t p = 0;
    for (std::size_t s = 0; s < rows; ++s) {
        const std::size_t src = order_[r0 + s];
        const auto begin = std::size_t(X.indptr[src]), end = std::size_t(X.indptr[src + 1]);
        std::copy(X.indices + begin, X.indices + end, x_indices_.data() + p);
        std::copy(X.data + begin, X.data + end, x_.data() + p);
        p += end - begin;
        x_indptr_[s + 1] = std::int64_t(p);
    }
    return {x_indptr_.data(), x_indices_.data(), x_.data()};
}

template <class T>
double Trainer<T>::step(const Batch<T>& batch, const OptimizerConfig& config,
                        OptimizerState<T>& state, const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    check(config);
    if (!state_fits(config, state, net_.n_params()))
        throw std::invalid_argument("the optimiser state does not fit this network and "
                                    "optimiser (its buffers have the wrong size)");
    grad_.resize(net_.n_params());
    const bool dp = per_sample(config.method);
    const double E = dp ? clipped_gradient_sum(net_.model(), batch, config.max_grad_norm,
                                               grad_.data(), ws_, norms_, hooks_->poll)
                        : gradient(net_.model(), batch, grad_.data(), ws_, hooks_->poll);
    if (dp) optimizer::Dpsgd::privatise(config, state.steps, grad_.data(), grad_.size(), batch.t);
    if (!std::isfinite(E) || !elementwise::all_finite(grad_.data(), grad_.size()))
        throw NonFiniteStep();
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    if (!update_if_finite(config, state, net_.params(), grad_.data(), net_.n_params(), config.lr))
        throw NonFiniteStep();
    return E;
}

template <class T>
FitRecord Trainer<T>::fit_lm(const Batch<T>& train, const Batch<T>* val,
                             const TrainOptions& options, LmConfig& config,
                             const TrainHooks<T>& hooks) {
    hooks_ = &hooks;
    options.check();
    if (train.sparse() || (val && val->sparse()))
        throw std::invalid_argument("Levenberg-Marquardt needs a dense X, got a sparse matrix");
    if (train.index || (val && val->index))
        throw std::invalid_argument("Levenberg–Marquardt takes contiguous rows (no index)");
    LevenbergMarquardt<T> lm(net_, ws_, train, config);
    std::optional<ParamsGate::Writing> writing;
    if (gate_) writing.emplace(*gate_);
    return run_epochs(val, options, std::numeric_limits<double>::quiet_NaN(), double(train.t),
                      [&](double, double& E_epoch) {
        const Stop stop = lm.iteration(hooks_->poll, E_epoch);
        if (gate_) gate_->between_updates();
        return stop;
    });
}

template class Trainer<float>;
template class Trainer<double>;

}  // namespace fastprop
