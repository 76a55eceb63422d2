// The error E of a batch and δ_n = ∂E/∂z_n, side by side for each loss.
//
// "sse" is the model's own E = Σ_s ||y_s − z_n,s||², δ_n = −2(y − z_n). The others follow
// torch.nn: "mse" is the mean over all t·l_n elements (MSELoss), "cross_entropy" the mean
// over samples of −Σ_j p_j log softmax(z_n)_j for target probabilities p (CrossEntropyLoss),
// "binary_cross_entropy" the mean over all t·l_n elements of −y log σ(z) − (1 − y) log(1 − σ(z))
// (BCEWithLogitsLoss).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>

namespace fastprop {

enum class Loss { sse, mse, cross_entropy, binary_cross_entropy };

constexpr const char* loss_names = "sse, mse, cross_entropy, binary_cross_entropy";

inline Loss loss_from_name(const std::string& name) {
    if (name == "sse") return Loss::sse;
    if (name == "mse") return Loss::mse;
    if (name == "cross_entropy") return Loss::cross_entropy;
    if (name == "binary_cross_entropy") return Loss::binary_cross_entropy;
    throw std::invalid_argument("loss must be one of " + std::string(loss_names) + "; got '" +
                                name + "'");
}

inline const char* loss_name(Loss loss) {
    switch (loss) {
        case Loss::sse: return "sse";
        case Loss::mse: return "mse";
        case Loss::cross_entropy: return "cross_entropy";
        case Loss::binary_cross_entropy: return "binary_cross_entropy";
    }
    return "?";
}

// e^{a − b} without the rounding of a − b: e^x turns a relative error ε of x into a
// relative error x·ε of the result, so the difference is taken exactly as hi + lo
// (Knuth's TwoSum) and e^{hi + lo} = e^{hi} (1 + lo) to within lo².
inline double exp_difference(double a, double b) {
    const double hi = a - b;
    const double b_virtual = a - hi;
    const double lo = (a - (hi + b_virtual)) + (b_virtual - b);
    return std::exp(hi) * (1.0 + lo);
}

// A mean loss divides by the batch size, so a sum over minibatches must weight each by its rows.
inline bool is_mean(Loss loss) { return loss != Loss::sse; }

// Σ_k (y_k − z_k)² in double, and δ_k = scale (y_k − z_k). The sum runs as eight partial
// sums (k mod 8) added in a fixed order at the end, rather than one chain of dependent
// additions, which cost 2% of a W2 step (320 entries, 4 cycles each).
template <class T>
double squared_error(T* delta_n, const T* z_n, const T* Y, std::size_t count, T scale) {
    constexpr std::size_t lanes = 8;
    double partial[lanes] = {};
    const auto add = [&](std::size_t k, std::size_t j) {
        const T r = Y[k] - z_n[k];
        partial[j] += double(r) * double(r);
        delta_n[k] = scale * r;
    };
    std::size_t k = 0;
    for (; k + lanes <= count; k += lanes)
        for (std::size_t j = 0; j < lanes; ++j) add(k + j, j);
    for (std::size_t j = 0; k + j < count; ++j) add(k + j, j);
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) +
           ((partial[4] + partial[5]) + (partial[6] + partial[7]));
}

// E of `rows` samples out of a batch of t (t matters for the means) and δ_n for them.
//   z_n, Y, delta_n: (rows, l_n)
// E is accumulated in double so that a float32 network still reports its loss accurately.
template <class T>
double loss_and_delta(Loss loss, T* delta_n, const T* z_n, const T* Y, std::size_t rows,
                      std::size_t l_n, std::size_t t) {
    double E = 0.0;
    const std::size_t count = rows * l_n;
    switch (loss) {
        case Loss::sse:  // E = Σ ||y − z_n||², δ_n = −2(y − z_n)
            return squared_error(delta_n, z_n, Y, count, T(-2));
        case Loss::mse: {  // E = Σ ||y − z_n||² / (t l_n), δ_n = −2(y − z_n) / (t l_n)
            const T scale = T(-2) / T(double(t) * double(l_n));
            return squared_error(delta_n, z_n, Y, count, scale) / (double(t) * double(l_n));
        }
        case Loss::cross_entropy: {
            // In double whatever T is, about m = max_j z_j (at j = k), each e^{z_j − m} from
            // the exact difference: with rest = Σ_{j≠k} e^{z_j − m}, lse(z) = m + log1p(rest), so
            //   E_s = Σ_j p_j (m − z_j) + (Σ_j p_j) log1p(rest)
            // stays exact when the target is the largest logit (log of a sum near 1 would
            // not), and δ_s = (softmax(z) Σ_j p_j − p) / t.
            for (std::size_t s = 0; s < rows; ++s) {
                const T* z = z_n + s * l_n;
                const T* p = Y + s * l_n;
                T* d = delta_n + s * l_n;
                const std::size_t k = std::size_t(std::max_element(z, z + l_n) - z);
                const double m = double(z[k]);
                double rest = 0.0, sum_p = 0.0, p_gap = 0.0;
                for (std::size_t j = 0; j < l_n; ++j) {
                    if (j != k) rest += exp_difference(double(z[j]), m);
                    sum_p += double(p[j]);
                    p_gap += double(p[j]) * (m - double(z[j]));
                }
                E += p_gap + sum_p * std::log1p(rest);
                const double scale = sum_p / (1.0 + rest);
                for (std::size_t j = 0; j < l_n; ++j)
                    d[j] = T((exp_difference(double(z[j]), m) * scale - double(p[j])) / double(t));
            }
            return E / double(t);
        }
        case Loss::binary_cross_entropy: {
            // −y log σ(z) − (1 − y) log(1 − σ(z)) = max(z, 0) − y z + log1p(e^{−|z|}),
            // δ = (σ(z) − y) / (t l_n).
            const T inv_count = T(1) / T(double(t) * double(l_n));
            for (std::size_t k = 0; k < count; ++k) {
                const T z = z_n[k];
                const T e = std::exp(-std::abs(z));
                E += double(std::max(z, T(0)) - Y[k] * z + std::log1p(e));
                const T sigma_z = z >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
                delta_n[k] = (sigma_z - Y[k]) * inv_count;
            }
            return E / (double(t) * double(l_n));
        }
    }
    throw std::logic_error("unknown loss");
}

}  // namespace fastprop
