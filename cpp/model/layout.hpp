// The one parameter buffer of a network, carved per layer.
//
// Order: W_0, b_0, W_1, b_1, ..., W_{n-1}, b_{n-1} (no b_i when bias is off).
// W_i has shape (l_{i+1}, l_i) and is stored row-major; b_i has l_{i+1} entries.
// The gradient buffer and every optimiser state buffer use this same layout, so an
// update is one flat loop. Slices are offsets, not pointers, so copies stay valid.
#pragma once

#include <cstddef>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

namespace fastprop {

struct LayerSlice {
    std::size_t l_in, l_out;  // W_i is (l_out, l_in), row-major
    std::size_t W, b;         // offsets into the parameter buffer (b unused without bias)
};

class Layout {
public:
    // layers = (l_0, ..., l_n), n >= 1, every l_i >= 1. Throws std::invalid_argument for a
    // malformed list and std::length_error when the parameter count overflows size_t.
    Layout(std::vector<std::size_t> layers, bool bias) : layers_(std::move(layers)), bias_(bias) {
        if (layers_.size() < 2)
            throw std::invalid_argument("layers must list at least 2 sizes (l_0, ..., l_n), got " +
                                        std::to_string(layers_.size()));
        for (std::size_t i = 0; i < layers_.size(); ++i)
            if (layers_[i] < 1)
                throw std::invalid_argument("layer sizes must be >= 1, got l_" + std::to_string(i) +
                                            " = " + std::to_string(layers_[i]));
        std::size_t offset = 0;
        for (std::size_t i = 0; i + 1 < layers_.size(); ++i) {
            LayerSlice s{layers_[i], layers_[i + 1], 0, 0};
            s.W = offset;
            offset = checked_add(offset, checked_mul(s.l_out, s.l_in));
            s.b = offset;
            if (bias_) offset = checked_add(offset, s.l_out);
            slices_.push_back(s);
        }
        n_params_ = offset;
    }

    std::size_t n() const { return slices_.size(); }  // number of weight matrices
    const std::vector<std::size_t>& layers() const { return layers_; }
    const LayerSlice& operator[](std::size_t i) const { return slices_[i]; }
    bool bias() const { return bias_; }
    std::size_t n_params() const { return n_params_; }
    std::size_t l_in() const { return layers_.front(); }
    std::size_t l_out() const { return layers_.back(); }

    // Sum of l_1..l_n: the entries one sample needs for each of z, a and delta.
    std::size_t units_after_input() const {
        std::size_t sum = 0;
        for (std::size_t i = 1; i < layers_.size(); ++i) sum = checked_add(sum, layers_[i]);
        return sum;
    }

    static std::size_t checked_mul(std::size_t a, std::size_t b) {
        if (a != 0 && b > std::numeric_limits<std::size_t>::max() / a)
            throw std::length_error("network too large: parameter count overflows");
        return a * b;
    }
    static std::size_t checked_add(std::size_t a, std::size_t b) {
        if (b > std::numeric_limits<std::size_t>::max() - a)
            throw std::length_error("network too large: parameter count overflows");
        return a + b;
    }

private:
    std::vector<std::size_t> layers_;
    bool bias_;
    std::vector<LayerSlice> slices_;
    std::size_t n_params_ = 0;
};

}  // namespace fastprop
