// Parameter updates. State buffers share the parameter buffer's layout, so an update is
// one flat loop over n_params entries.
#pragma once

#include <cstddef>
#include <vector>

namespace fastprop {

// Plain gradient descent, the model's training rule: W_i += dW_i = −lr ∂E/∂W_i, and the
// same for every b_i.
template <class T> struct Sgd {
    T lr;

    void update(T* params, const T* grad, std::size_t n_params) const {
        for (std::size_t k = 0; k < n_params; ++k) params[k] -= lr * grad[k];
    }
};

}  // namespace fastprop
