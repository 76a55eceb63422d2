#include "kernels/sparse.hpp"

#include <algorithm>

#include "kernels/elementwise.hpp"
#include "runtime/threads.hpp"

namespace fastprop {

namespace {

// Both passes go over W_0 (or ∂E/∂W_0) one row j at a time, and over the batch's entries for
// each: row j of W_0 is l_in long (tens of thousands of columns for text), and the entries it
// meets across the batch stay in cache while it is walked, where walking the batch one sample
// at a time would fetch a line of every row of W_0 per entry. The rows of W_0 split over the
// threads in contiguous blocks: each output element is written by one thread, in one order.
constexpr std::size_t threads_min_work = std::size_t(1) << 15;  // entries × l_out

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

}  // namespace

template <class T>
void sparse_forward(T* z_next, const CsrRows<T>& a, const T* W, const T* b, std::size_t t,
                    std::size_t l_in, std::size_t l_out, const Activate<T>* activate) {
    const std::int64_t* indptr = a.indptr;
    const std::int64_t* indices = a.indices;
    const T* data = a.data;
    const std::size_t entries = std::size_t(indptr[t] - indptr[0]);
    over_rows(l_out, entries * l_out, [&](std::size_t j0, std::size_t j1) {
        for (std::size_t j = j0; j < j1; ++j) {
            const T* W_j = W + j * l_in;
            const T b_j = b ? b[j] : T(0);
            for (std::size_t s = 0; s < t; ++s) {  // z_sj = b_j + Σ_k W_jk x_sk, entry order
                T z = b_j;
                for (std::int64_t p = indptr[s]; p < indptr[s + 1]; ++p)
                    z += W_j[indices[p]] * data[p];
                z_next[s * l_out + j] = z;
            }
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
    const std::int64_t* indptr = a.indptr;
    const std::int64_t* indices = a.indices;
    const T* data = a.data;
    const std::size_t entries = std::size_t(indptr[t] - indptr[0]);
    // Every row of ∂E/∂W_0 is written (zeroed first unless accumulating); only the entries'
    // columns can be non-zero, so only they are checked.
    over_rows(l_out, entries * l_out + (accumulate ? 0 : l_out * l_in / 8),
              [&](std::size_t j0, std::size_t j1) {
        if (!accumulate) std::fill(dE_dW + j0 * l_in, dE_dW + j1 * l_in, T(0));
        bool finite = true;
        for (std::size_t j = j0; j < j1; ++j) {
            T* dW_j = dE_dW + j * l_in;
            for (std::size_t s = 0; s < t; ++s) {  // ∂E/∂W_jk = Σ_s δ_sj x_sk, sample order
                const T delta_sj = delta_next[s * l_out + j];
                for (std::int64_t p = indptr[s]; p < indptr[s + 1]; ++p)
                    dW_j[indices[p]] += delta_sj * data[p];
            }
            if (check) {  // v − v is 0 exactly for finite v (elementwise.hpp's all_finite)
                T sum = T(0);
                for (std::int64_t p = indptr[0]; p < indptr[t]; ++p)
                    sum += dW_j[indices[p]] - dW_j[indices[p]];
                finite = finite && sum == T(0);
            }
        }
        if (!finite) check->seen.store(true, std::memory_order_relaxed);
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
