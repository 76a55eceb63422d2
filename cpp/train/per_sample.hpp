// Per-sample quantities from one forward and one backward pass: the gradient of each sample's
// term of E, its L2 norm (without the gradients themselves), ∂E/∂X, the Jacobian ∂z_n/∂x, and
// the clipped sum of per-sample gradients that DP-SGD takes.
//
// The backward pass has every δ_{i+1} and a_i of every sample in hand. Sample s's term of
// ∂E/∂W_i is the outer product δ_{i+1,s} a_{i,s}ᵀ and of ∂E/∂b_i it is δ_{i+1,s}, so
//   ||∂E_s/∂params||² = Σ_i ||δ_{i+1,s}||² (||a_{i,s}||² + 1)     (the 1 only with bias)
// without forming a single outer product, and a sum Σ_s c_s ∂E_s/∂params of scaled
// per-sample gradients is the batch gradient's product δᵀ a with row s of every δ scaled by
// c_s (the backward pass is linear in δ_n, sample by sample).
//
// "Sample s's term": E = Σ_s E_s with E_s = w_s ℓ_s / size for a mean loss (size = t, or the
// total weight) and w_s ℓ_s for a sum, so the per-sample gradients of a batch add up to its
// gradient. DP-SGD clips the gradient of each sample's own loss, w_s ℓ_s, whatever the
// reduction (as Opacus does: its per-sample gradients of a mean loss are multiplied back by
// the batch size).
#pragma once

#include <cstddef>
#include <vector>

#include "kernels/dense.hpp"
#include "model/network.hpp"
#include "model/workspace.hpp"
#include "runtime/interrupt.hpp"
#include "train/passes.hpp"

namespace fastprop {

// E, and row s of G (t, n_params) = ∂E_s/∂params in the parameter layout.
template <class T>
double per_sample_gradients(const Model<T>& net, const Batch<T>& batch, T* G, Workspace<T>& ws,
                            const Poll& poll = {});

// E, and norms[s] = ||∂E_s/∂params|| (t), from the δ and a of the backward pass alone:
// memory O(t + n_params) (the table of one chunk of rows), never O(t · n_params).
template <class T>
double per_sample_gradient_norms(const Model<T>& net, const Batch<T>& batch, T* norms,
                                 Workspace<T>& ws, const Poll& poll = {});

// E, and dE_dX (t, l_0) = ∂E/∂X: row s is δ_1,s W_0 (sample s's term alone reaches x_s).
template <class T>
double input_gradient(const Model<T>& net, const Batch<T>& batch, T* dE_dX, Workspace<T>& ws,
                      const Poll& poll = {});

// J (t, l_n, l_0): J[s, j, :] = ∂z_n[s, j]/∂x_s, by one backward pass per output unit
// (δ_n = e_j) down to δ_0 = δ_1 W_0.
template <class T>
void input_jacobian(const Model<T>& net, const T* X, std::size_t t, T* J, Workspace<T>& ws,
                    const Poll& poll = {});

// DP-SGD's sum: sum = Σ_s c_s g_s (n_params), g_s = ∂(w_s ℓ_s)/∂params and
// c_s = min(1, max_norm / (||g_s|| + 1e-6)) (Opacus's clipping factor). Returns E of the
// batch (as loss() would). `norms` is scratch (resized to a chunk's rows). With `check`,
// inf or NaN in the sum raises check->seen.
template <class T>
double clipped_gradient_sum(const Model<T>& net, const Batch<T>& batch, double max_norm, T* sum,
                            Workspace<T>& ws, std::vector<double>& norms, const Poll& poll = {},
                            const NonFinite* check = nullptr);

}  // namespace fastprop
