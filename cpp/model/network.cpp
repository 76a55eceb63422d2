#include "model/network.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "runtime/random.hpp"

namespace fastprop {

template <class T>
Network<T>::Network(Layout layout, std::vector<Activation> sigma, Loss loss, double delta)
    : layout_(std::move(layout)), sigma_(std::move(sigma)), loss_(loss), delta_(delta),
      params_(layout_.n_params(), T(0)) {
    if (!(std::isfinite(delta_) && delta_ > 0))
        throw std::invalid_argument("delta must be a finite number > 0, got " +
                                    std::to_string(delta_));
    if (sigma_.size() != layout_.n() - 1)
        throw std::invalid_argument("a network with " + std::to_string(layout_.n()) +
                                    " weight matrices needs " + std::to_string(layout_.n() - 1) +
                                    " hidden activations, got " + std::to_string(sigma_.size()));
    if (layout_.l_out() < min_outputs(loss_))
        throw std::invalid_argument(
            "loss '" + std::string(loss_name(loss_)) + "' needs at least " +
            std::to_string(min_outputs(loss_)) + " outputs (l_n), got " +
            std::to_string(layout_.l_out()) +
            (loss_ == Loss::cross_entropy ? " (softmax of one output is always 1: for two "
                                            "classes use binary_cross_entropy with l_n = 1)"
                                          : ""));
}

template <class T> void Network<T>::init(std::uint64_t seed) {
    SplitMix64 rng(seed);
    const std::size_t n_ = n();
    for (std::size_t i = 0; i < n_; ++i) {
        const LayerSlice& s = layout_[i];
        const std::size_t following = i + 1 < n_ ? i + 1 : n_ - 1;  // σ after W_i
        const bool he = following >= 1 && he_init(sigma(following));
        const double r = he ? std::sqrt(6.0 / double(s.l_in))
                            : std::sqrt(6.0 / double(s.l_in + s.l_out));
        T* W_i = params_.data() + s.W;
        for (std::size_t k = 0; k < s.l_out * s.l_in; ++k) W_i[k] = T((2 * rng.uniform() - 1) * r);
        if (layout_.bias()) std::fill(params_.data() + s.b, params_.data() + s.b + s.l_out, T(0));
    }
}

template class Network<float>;
template class Network<double>;

}  // namespace fastprop
