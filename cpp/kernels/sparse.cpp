#include "kernels/sparse.hpp"

#include <algorithm>
#include <vector>

#include "kernels/elementwise.hpp"
#include "runtime/threads.hpp"

namespace fastprop {

namespace {

// Both passes go over W_0 (or ∂E/∂W_0) one row j at a time, and within it over the batch's
// entries sorted by column: row j is then walked in ascending order, nearly a stream (text
// has entries in most cache lines of a row), where the rows' order would jump through all
// of it for every sample (measured on a 20,000 × 50,000 TF-IDF matrix, 200 rows a step:
// 2–3× less time). The rows of W_0 split over the threads in contiguous blocks: each output
// element is written by one thread, in one order.
constexpr std::size_t threads_min_work = std::size_t(1) << 15;  // entries × l_out

// The batch's entries by column (the rows' CSR transposed, a counting sort): column c of
// `columns` is k = columns[c], its entries [start[c], start[c + 1]) of (row[e], value[e]),
// rows ascending. Kept per thread and grown, so that steps allocate nothing once sizes are
// seen.
template <class T> struct ByColumn {
    std::vector<std::int64_t> count;  // (l_in), all 0 between calls
    std::vector<std::size_t> columns, start, row;
    std::vector<T> value;

    void build(const CsrRows<T>& a, std::size_t t, std::size_t l_in) {
        const std::int64_t* indptr = a.indptr;
        const std::size_t first = std::size_t(indptr[0]);
        const std::size_t entries = std::size_t(indptr[t]) - first;
        if (count.size() < l_in) count.assign(l_in, 0);
        row.resize(entries);
        value.resize(entries);
        columns.clear();
        for (std::size_t e = first; e < first + entries; ++e)
            if (count[std::size_t(a.indices[e])]++ == 0) columns.push_back(std::size_t(a.indices[e]));
        std::sort(columns.begin(), columns.end());
        start.resize(columns.size() + 1);
        std::size_t next = 0;
        for (std::size_t c = 0; c < columns.size(); ++c) {  // count[k] becomes k's next slot
            start[c] = next;
            const std::size_t k = columns[c];
            next += std::size_t(count[k]);
            count[k] = std::int64_t(start[c]);
        }
        start[columns.size()] = next;
        for (std::size_t s = 0; s < t; ++s)
            for (std::int64_t p = indptr[s]; p < indptr[s + 1]; ++p) {
                const std::size_t slot = std::size_t(count[std::size_t(a.indices[p])]++);
                row[slot] = s;
                value[slot] = a.data[p];
            }
        for (const std::size_t k : columns) count[k] = 0;
    }
};

template <class T> ByColumn<T>& by_column() {
    thread_local ByColumn<T> scratch;
    return scratch;
}

template <class Body> struct RowBlocks {
    std::size_t l_out, blocks;
    const Body* body;
};

template <class Body> void run_block(void* context, std::size_t k) {
    const RowBlocks<Body>& job = *static_cast<const RowBlocks<Body>*>(context);
    const std::size_t j0 = job.l_out * k / job.blocks, j1 = job.l_out * (k + 1) / job.blocks;
    (*job.body)(j0, j1);
}

// body(j0, j1) for the rows [j0, j1) of W_0, in blocks over the threads when the work pays.
template <class Body> void over_rows(std::size_t l_out, std::size_t work, const Body& body) {
    const std::size_t threads = get_num_threads();
    if (threads < 2 || l_out < 2 || work < threads_min_work || threads::in_task()) {
        body(std::size_t(0), l_out);
        return;
    }
    const RowBlocks<Body> job{l_out, std::min(threads, l_out), &body};
    threads::parallel_for(job.blocks, &run_block<Body>, const_cast<RowBlocks<Body>*>(&job));
}

// A column of a (t, l_out) matrix, contiguous, per thread.
template <class T> std::vector<T>& column_scratch() {
    thread_local std::vector<T> scratch;
    return scratch;
}

}  // namespace

template <class T>
void sparse_forward(T* z_next, const CsrRows<T>& a, const T* W, const T* b, std::size_t t,
                    std::size_t l_in, std::size_t l_out, const Activate<T>* activate) {
    ByColumn<T>& by = by_column<T>();
    by.build(a, t, l_in);
    const std::size_t entries = by.row.size();
    over_rows(l_out, entries * l_out, [&](std::size_t j0, std::size_t j1) {
        std::vector<T>& z_j = column_scratch<T>();
        z_j.resize(t);
        for (std::size_t j = j0; j < j1; ++j) {
            const T* W_j = W + j * l_in;
            std::fill(z_j.begin(), z_j.end(), T(0));
            for (std::size_t c = 0; c < by.columns.size(); ++c) {  // z_sj += W_jk x_sk
                const T w = W_j[by.columns[c]];
                for (std::size_t e = by.start[c]; e < by.start[c + 1]; ++e)
                    z_j[by.row[e]] += w * by.value[e];
            }
            const T b_j = b ? b[j] : T(0);
            for (std::size_t s = 0; s < t; ++s) z_next[s * l_out + j] = b_j + z_j[s];
        }
    });
    if (activate == nullptr) return;
    const Activation sigma = activate->sigma;
    if (sigma == Activation::relu || sigma == Activation::leaky_relu) {
        const double slope = sigma == Activation::leaky_relu ? leaky_relu_slope : 0.0;
        elementwise::bias_relu(z_next, l_out, static_cast<const T*>(nullptr), activate->a_next,
                               l_out, t, l_out, slope, activate->keep_prime);
    } else if (activate->keep_prime) {
        apply_sigma_keep_prime(sigma, activate->a_next, z_next, t * l_out);
    } else {
        apply_sigma(sigma, activate->a_next, static_cast<const T*>(z_next), t * l_out);
    }
}

template <class T>
void sparse_backward(T* dE_dW, T* dE_db, const T* delta_next, const CsrRows<T>& a,
                     std::size_t t, std::size_t l_in, std::size_t l_out, bool accumulate,
                     const NonFinite* check) {
    ByColumn<T>& by = by_column<T>();
    by.build(a, t, l_in);
    const std::size_t entries = by.row.size();
    // Every row of ∂E/∂W_0 is written (zeroed first unless accumulating); only the entries'
    // columns can be non-zero, so only they are checked.
    over_rows(l_out, entries * l_out + (accumulate ? 0 : l_out * l_in / 8),
              [&](std::size_t j0, std::size_t j1) {
        std::vector<T>& delta_j = column_scratch<T>();
        delta_j.resize(t);
        T finite = T(0);  // v − v is 0 exactly for finite v (elementwise.hpp's all_finite)
        for (std::size_t j = j0; j < j1; ++j) {
            T* dW_j = dE_dW + j * l_in;
            if (!accumulate) std::fill(dW_j, dW_j + l_in, T(0));
            for (std::size_t s = 0; s < t; ++s) delta_j[s] = delta_next[s * l_out + j];
            for (std::size_t c = 0; c < by.columns.size(); ++c) {  // Σ_s δ_sj x_sk, s ascending
                T sum = T(0);
                for (std::size_t e = by.start[c]; e < by.start[c + 1]; ++e)
                    sum += delta_j[by.row[e]] * by.value[e];
                T& g = dW_j[by.columns[c]];
                g += sum;
                finite += g - g;
            }
        }
        if (check && finite != T(0)) check->seen.store(true, std::memory_order_relaxed);
    });
    if (dE_db) {
        if (!accumulate) std::fill(dE_db, dE_db + l_out, T(0));
        elementwise::sum_rows(dE_db, delta_next, l_out, t, l_out);
        if (check && !elementwise::all_finite(dE_db, l_out))
            check->seen.store(true, std::memory_order_relaxed);
    }
}

#define FASTPROP_INSTANTIATE(T)                                                               \
    template void sparse_forward<T>(T*, const CsrRows<T>&, const T*, const T*, std::size_t,   \
                                    std::size_t, std::size_t, const Activate<T>*);            \
    template void sparse_backward<T>(T*, T*, const T*, const CsrRows<T>&, std::size_t,        \
                                     std::size_t, std::size_t, bool, const NonFinite*);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
