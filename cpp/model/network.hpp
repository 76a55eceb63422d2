// Network<T>: the layers, their activations, the loss and the one parameter buffer.
// Model<T>: what the passes read of a network, at its own parameters or at others in the same
// layout (an outside optimiser's trial point), so that evaluating elsewhere never touches the
// network's buffer.
//
// The model: z_{i+1} = W_i a_i (+ b_i), a_i = σ(z_i) for 1 <= i <= n−1, a_0 = x, output z_n.
// With samples as rows, a layer is one matrix product over the batch: z_{i+1} = a_i W_iᵀ + b_i.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "model/activations.hpp"
#include "model/layout.hpp"
#include "model/losses.hpp"

namespace fastprop {

template <class T> struct Model {
    const Layout& layout_;
    const std::vector<Activation>& sigma_;
    Loss loss_;
    const T* params_;
    double delta_ = 1.0;  // the loss's parameter (huber's delta)

    const Layout& layout() const { return layout_; }
    std::size_t n() const { return layout_.n(); }
    Activation sigma(std::size_t i) const { return sigma_[i - 1]; }  // 1 <= i <= n−1
    Loss loss() const { return loss_; }
    double loss_delta() const { return delta_; }
    std::size_t n_params() const { return layout_.n_params(); }
    const T* params() const { return params_; }
    const T* W(std::size_t i) const { return params_ + layout_[i].W; }
    const T* b(std::size_t i) const { return layout_.bias() ? params_ + layout_[i].b : nullptr; }
};

template <class T> class Network {
public:
    // sigma holds σ_1, ..., σ_{n−1}, one per hidden layer (empty when n = 1). Throws
    // std::invalid_argument when the counts do not match or the loss needs more outputs
    // than l_n (cross-entropy's softmax of one output is always 1).
    // `delta` is the loss's parameter, where it has one (huber's, a finite number > 0).
    Network(Layout layout, std::vector<Activation> sigma, Loss loss = Loss::sse,
            double delta = 1.0);

    const Layout& layout() const { return layout_; }
    std::size_t n() const { return layout_.n(); }
    Activation sigma(std::size_t i) const { return sigma_[i - 1]; }  // 1 <= i <= n−1
    const std::vector<Activation>& activations() const { return sigma_; }
    Loss loss() const { return loss_; }
    double loss_delta() const { return delta_; }

    std::size_t n_params() const { return params_.size(); }
    T* params() { return params_.data(); }
    const T* params() const { return params_.data(); }
    const T* W(std::size_t i) const { return params_.data() + layout_[i].W; }
    const T* b(std::size_t i) const {
        return layout_.bias() ? params_.data() + layout_[i].b : nullptr;
    }

    Model<T> model() const { return {layout_, sigma_, loss_, params_.data(), delta_}; }
    // The same network at other parameters (n_params entries in this layout).
    Model<T> model_at(const T* params) const { return {layout_, sigma_, loss_, params, delta_}; }

    // Deterministic from the seed: each W_i uniform on [−r, r], with Glorot's
    // r = sqrt(6 / (l_i + l_{i+1})), or He's r = sqrt(6 / l_i) when the activation that
    // follows W_i (σ_{i+1}; for the output layer, σ_{n−1}) suits it (relu, leaky_relu). b_i = 0.
    void init(std::uint64_t seed);

private:
    Layout layout_;
    std::vector<Activation> sigma_;
    Loss loss_;
    double delta_;
    std::vector<T> params_;
};

}  // namespace fastprop
