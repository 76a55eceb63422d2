// Networks of the same shape trained together in SIMD lanes (kernels/lanes.hpp): W networks
// (16 float or 8 double with AVX-512, 8 or 4 with AVX2), lane j holding network j's numbers,
// so that every instruction of a training step, and every per-call cost of its passes, serves
// W networks. For small networks a step is mostly such costs: [8, 16, 1] on 16 rows is 14k
// flops.
//
// Each network ends at the bits of its own Trainer::fit: every lane repeats the operations of
// a single fit's step in the same order with the same rounding (kernels/lanes.hpp), σ and σ'
// are the same elementwise passes (apply_sigma_keep_prime, elementwise::bias_relu) run over
// the lanes, E is summed per lane as the loss sums it, and the update rounds as the
// optimiser's own. A network whose loss, gradient or update is not finite stops alone, at
// its last finite parameters (Stop::non_finite), as its own fit would; the others step on.
//
// What a lane group covers (lanes_can_fit): dense X and Y, shared by the group or each
// network its own, all rows or each network its own rows of them (Batch::index: the folds
// of a cross-validation, bootstrap samples; each lane then gathers its own minibatch), and
// sample weights; SGD (learning rate, weight decay and momentum per network; whether with
// momentum, Nesterov's, or weight decay at all, shared by the group), Adam or AdamW (every
// hyperparameter per network); any loss (sse and mse in lanes, the others lane by lane
// through the single fits' own function); any activations; each network's schedule of the
// learning rate, epoch hook (run with every network written back and the group's locks
// released), validation data (its loss by the single fits' own pass), early stopping and
// gradient clipping; minibatches of one chunk (split in halves where a single fit splits
// them, passes.cpp); no resumption, no data-parallel blocks; the AVX2 or AVX-512 kernels.
// Networks in one group share what lanes_key lists (layers, bias, activations, loss, rows,
// batch size, epochs, the sample order: no shuffling, or the same seed; the kind of
// update).
#pragma once

#include <cstddef>
#include <functional>
#include <limits>
#include <mutex>
#include <vector>

#include "kernels/lanes.hpp"
#include "train/session.hpp"

namespace fastprop {

// One network of a lane group: its session (locked by the group for the whole fit), its
// optimiser, and, afterwards, the record of its fit (what Trainer::fit would return).
template <class T> struct LaneFit {
    Session<T>* session = nullptr;
    const OptimizerConfig* config = nullptr;
    OptimizerState<T>* state = nullptr;
    // The fit's training rows (X, Y, sample weights, index): the same arrays for every
    // network of a group (one minibatch for all), or each its own (gathered per lane).
    Batch<T> train;
    // TrainHooks::epoch_end of the fit, or empty. Hooks run after each epoch with every
    // network of the group written back and every lock of the group released (a hook may
    // use any network, start a fit of one, or change parameters and optimiser state: the
    // lanes are read back from the networks afterwards).
    std::function<EpochControl(const EpochLog&)> epoch_end;
    const Schedule* schedule = nullptr;  // the rate of each epoch (null: constant)
    const TrainOptions* options = nullptr;  // its patience, min_delta, restore_best, clip_norm
    const Batch<T>* val = nullptr;          // its validation rows, or null
    FitRecord record;
};

// How many networks of T one group steps together on this CPU; 0 on the portable path.
template <class T> std::size_t lane_width();

// Whether Trainer::fit(train, val, options, config) of `net`, with an epoch hook and a poll
// at most, is what a lane group reproduces.
template <class T>
bool lanes_can_fit(const Network<T>& net, const Batch<T>& train, const Batch<T>* val,
                   const TrainOptions& options, const OptimizerConfig& config);

// What the networks of one group share; networks with equal keys may be stepped together.
template <class T>
std::vector<std::size_t> lanes_key(const Network<T>& net, const Batch<T>& train,
                                   const TrainOptions& options, const OptimizerConfig& config);

// The fewest networks worth a group of such fits (all with equal lanes_key), or more than
// lane_width<T>() when no group is worth it: a group's step costs the same with idle lanes,
// and for larger networks a single fit's products run near the FMA peak already.
template <class T>
std::size_t lanes_min_networks(const Network<T>& net, const Batch<T>& train,
                               const TrainOptions& options);

// Up to lane_width<T>() fits with equal lanes_key, each lanes_can_fit, stepped together.
template <class T> class LaneGroup {
public:
    LaneGroup(std::vector<LaneFit<T>*> fits, const Batch<T>& train, const TrainOptions& options);

    // Trains every network, as Trainer::fit would with hooks.poll = poll (asked before each
    // step; when it says stop, every network still training stops with Stop::interrupted).
    // Each fit's record goes to its LaneFit. Holds every session's lock meanwhile.
    void fit(const Poll& poll);

    // Writes the parameters of the networks still training to the networks, for a poll that
    // lets snapshots read them (the lanes hold them between two steps).
    void publish();

private:
    void step(const T* x, const T* y, std::size_t rows);
    void passes(const T* x, const T* y, std::size_t rows, std::size_t r0, T* G, double* E);
    void to_network(std::size_t j);    // lane j's parameters (and moments) to network j
    void from_network(std::size_t j);  // and back
    void stop(std::size_t j, Stop why);
    void lane_params(std::size_t j, std::vector<T>& out) const;
    bool stop_after(std::size_t j, std::size_t epoch, double E);
    void restore_best(std::size_t j);
    void epoch_hooks(std::size_t epoch, double seconds,
                     std::vector<std::unique_lock<std::mutex>>& locks,
                     const std::vector<LaneFit<T>*>& by_address);

    const lanes::Kernels<T>& kern_;
    const std::size_t W_;
    std::vector<LaneFit<T>*> fits_;
    const Network<T>& net_;  // the first network: the layout, activations and loss of all
    const Batch<T> train_;
    const TrainOptions options_;
    lanes::LaneMask active_ = 0;
    // In lanes, aligned to the vector width: the parameters, the gradient, the momentum
    // buffers (with momentum), SGD's hyperparameters, and the table of z_i (σ'(z_i)), a_i,
    // δ_i for a minibatch (offsets per layer).
    std::vector<T> buffer_;
    T *P_ = nullptr, *G_ = nullptr, *table_ = nullptr;
    T *M_ = nullptr, *V_ = nullptr;  // SGD's momentum buffers or Adam's m; Adam's v
    // One per lane: SGD's and Adam's hyperparameters, Adam's constants of the step.
    T *lr_ = nullptr, *weight_decay_ = nullptr, *momentum_ = nullptr;
    T *one_minus_beta1_ = nullptr, *beta2_ = nullptr, *one_minus_beta2_ = nullptr, *eps_ = nullptr;
    T *step_size_ = nullptr, *bc2_sqrt_ = nullptr, *decay_ = nullptr;
    static constexpr std::size_t n_rates = 10;  // of those
    bool fused_sgd_ = true;  // plain SGD: no momentum, no weight decay (update_if_finite)
    bool adam_ = false, c0_decoupled_ = false;
    std::vector<std::size_t> z_, a_, delta_;
    std::vector<double> E_, E2_, E_epoch_;
    std::vector<double> base_lr_;  // each network's learning rate (a hook may change it)
    std::vector<double> lr_now_;   // and the epoch's, from its schedule
    // Early stopping per network (trainer.cpp's EarlyStopping): the best monitored loss, its
    // epoch, the epochs waited since, the parameters to restore and those at the epoch's start.
    struct Early {
        double best = std::numeric_limits<double>::infinity();
        std::size_t best_epoch = 0, waited = 0;
        std::vector<T> best_params, start;
        bool keep = false;
    };
    std::vector<Early> early_;
    Workspace<T> ws_;  // the validation passes
    bool clip_ = false;  // some network clips its gradient
    // Sample weights: each lane's weights of the minibatch's rows (w_lanes_ when gathered),
    // each lane's minibatch size (rows, or total weight) and total over its training rows.
    std::vector<const T*> w_rows_;
    std::vector<T> w_lanes_;
    std::vector<double> size_, total_;
    std::vector<T> clip_factor_;
    std::vector<T> G2_;  // the second half's gradient, in lanes (minibatches split in halves)
    std::vector<T> z_lane_, y_lane_, delta_lane_;  // one lane's z_n, y, δ_n (other losses)
    std::vector<T> x_, y_;  // a shuffled minibatch, gathered (in lanes, with indices)
    bool gathered_ = false;  // each lane gathers its own minibatch
    std::vector<std::size_t> order_;
};

}  // namespace fastprop
