// The first layer's passes when a_0 = x comes as a sparse matrix in compressed sparse rows
// (CSR, as scipy.sparse.csr_matrix holds it): z_1 = W_0 a_0 (+ b_0) and ∂E/∂W_0 = δ_1ᵀ a_0
// read only the non-zeros, so a_0 is never dense and the memory is that of its non-zeros.
// Nothing propagates below layer 0, so ∂E/∂a_0 is never needed.
//
// Each element of a result is summed in an order fixed by the matrix (z_sj over the row's
// columns in ascending order, duplicates in the row's order; ∂E/∂W_jk over the samples in
// order), so results are the same bits on any number of threads; they differ from the dense
// kernels' (another order of the same sums) by rounding only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/dense.hpp"

namespace fastprop {

// Rows of a CSR matrix: row s holds the entries [indptr[s], indptr[s + 1]) of indices (their
// columns) and data (their values). indptr[0] need not be 0, so a view of rows r0.. is
// `indptr + r0` over the same indices and data. Columns may repeat within a row (their values
// add up, as scipy.sparse sums duplicates) and need not be sorted.
template <class T> struct CsrRows {
    const std::int64_t* indptr = nullptr;   // (t + 1)
    const std::int64_t* indices = nullptr;  // (nnz), each in [0, l_0)
    const T* data = nullptr;                // (nnz)

    explicit operator bool() const { return indptr != nullptr; }
    CsrRows from(std::size_t r0) const { return {indptr + r0, indices, data}; }
};

// z_1 = a_0 W_0ᵀ + b_0    a_0 (t, l_in) in CSR, W_0 (l_out, l_in), b_0 (l_out) or null
// -> z_1 (t, l_out), then `activate` when given (as dense_forward).
template <class T>
void sparse_forward(T* z_next, const CsrRows<T>& a, const T* W, const T* b, std::size_t t,
                    std::size_t l_in, std::size_t l_out, const Activate<T>* activate = nullptr);

// forward was z_1 = a_0 W_0ᵀ + b_0, so with delta_next = δ_1 (t, l_out):
//   dE_dW = δ_1ᵀ a_0 (l_out, l_in), zero in every column no row of a_0 has an entry in
//   dE_db = Σ_s δ_1 (l_out), or null without bias.
// Both are added to when `accumulate`. With `check`, inf or NaN in what was written raises
// check->seen.
template <class T>
void sparse_backward(T* dE_dW, T* dE_db, const T* delta_next, const CsrRows<T>& a,
                     std::size_t t, std::size_t l_in, std::size_t l_out, bool accumulate,
                     const NonFinite* check = nullptr);

}  // namespace fastprop
