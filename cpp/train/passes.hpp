// The passes over a batch: forward, the loss, the gradient by backpropagation. Every trainer
// is made of them, and so are the calls a user makes one at a time.
//
// A batch is t rows: X (t, l_0), dense or sparse (CSR), Y (t, l_n), and optionally a weight
// per row (losses.hpp).
// Batches larger than the workspace's table run in chunks of rows; `poll` is asked before
// each chunk and stops the work by throwing Interrupted.
#pragma once

#include <cstddef>

#include "kernels/dense.hpp"
#include "kernels/sparse.hpp"
#include "model/network.hpp"
#include "model/workspace.hpp"
#include "runtime/interrupt.hpp"

namespace fastprop {

template <class T> struct Batch {
    const T* X = nullptr;  // (t, l_0), or null when Xs holds X
    const T* Y = nullptr;  // (t, l_n)
    const T* w = nullptr;  // (t) sample weights, or null: every weight 1
    std::size_t t = 0;
    // (t) the rows of X, Y and w that make the batch (a fold, a bootstrap sample), or null:
    // rows 0..t−1. Only Trainer::fit reads it (it gathers every minibatch); every other pass
    // takes contiguous rows.
    const std::size_t* index = nullptr;
    CsrRows<T> Xs = {};    // X as a sparse matrix (t rows of l_0 columns), when X is null

    // What a mean loss divides by: t, or the total weight (of the indexed rows, in order).
    double size() const;
    bool sparse() const { return bool(Xs); }
    Batch rows(std::size_t r0, std::size_t count, std::size_t l_0, std::size_t l_n) const {
        return {Xs ? nullptr : X + r0 * l_0, Y + r0 * l_n, w ? w + r0 : nullptr, count, nullptr,
                Xs ? Xs.from(r0) : CsrRows<T>{}};
    }
};

// z_n for t rows of X (t, l_0) -> out (t, l_n); X dense, or sparse in Xs when X is null.
template <class T>
void forward(const Model<T>& net, const T* X, std::size_t t, T* out, Workspace<T>& ws,
             const Poll& poll = {}, const CsrRows<T>& Xs = {});

// Every z_i (1 <= i <= n) and a_i (1 <= i <= n−1) of a forward pass over all t rows at
// once, left in ws (reserved here to t rows; meant for inspection, not for speed).
template <class T>
void forward_trace(const Model<T>& net, const T* X, std::size_t t, Workspace<T>& ws);

// E of the batch.
template <class T>
double loss(const Model<T>& net, const Batch<T>& batch, Workspace<T>& ws, const Poll& poll = {});

// E, and ∂E/∂params written to dE_dparams (n_params entries, the parameter layout), summed
// over the batch. t = 0 gives E = 0 and a zero gradient. With `check`, inf or NaN in the
// gradient raises check->seen (checked on each block as it is written). `work_cap` bounds
// the chunks by work as well as by memory (for calls between whose chunks Ctrl-C is
// checked); training chunks by memory alone.
template <class T>
double gradient(const Model<T>& net, const Batch<T>& batch, T* dE_dparams, Workspace<T>& ws,
                const Poll& poll = {}, const NonFinite* check = nullptr, bool work_cap = true);

// loss and gradient of some rows of a larger batch, for a mean loss a share of that batch:
// `size` is what the mean divides by (the whole batch's rows or total weight).
template <class T>
double loss_of_rows(const Model<T>& net, const Batch<T>& rows, double size, Workspace<T>& ws,
                    const Poll& poll = {});
template <class T>
double gradient_of_rows(const Model<T>& net, const Batch<T>& rows, double size, T* dE_dparams,
                        Workspace<T>& ws, const Poll& poll = {},
                        const NonFinite* check = nullptr, bool work_cap = true);

namespace detail {

// The forward recurrence for `rows` samples: z_{i+1} = a_i W_iᵀ + b_i, a_{i+1} = σ(z_{i+1}).
// z_n goes to z_n_out, every other z_i and a_i to the table. For training (keep_prime),
// the table's z_i is overwritten by σ'(z_i), all that the backward pass needs of it.
// a_0 = x, or the sparse rows xs when x is null.
template <class T>
void forward_rows(const Model<T>& net, const T* x, std::size_t rows, Workspace<T>& ws,
                  T* z_n_out, bool keep_prime, const CsrRows<T>& xs = {});

// Whether the training passes run a chunk of `rows` samples as two halves, one per thread,
// the second half's gradient added to the first's (passes.cpp says when and why).
bool split_in_halves(const Layout& L, std::size_t rows);

}  // namespace detail
}  // namespace fastprop
