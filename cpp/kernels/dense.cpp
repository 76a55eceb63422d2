#include "kernels/dense.hpp"

#include <algorithm>

#include "kernels/elementwise.hpp"
#include "kernels/gemm.hpp"

namespace fastprop {

// No output overlaps an input (__restrict): the loops then vectorise without run-time
// overlap checks, which cost more than the arithmetic at the sizes that come here.
template <class T>
void dense_forward_plain(T* __restrict z_next, const T* __restrict a, const T* __restrict W,
                         const T* __restrict b, std::size_t t, std::size_t l_in,
                         std::size_t l_out) {
    // z_j = b_j + Σ_k W_jk a_k, k ascending, for four j at a time: four sums advancing side by
    // side rather than one waiting on its own last addition; each is still the same sum.
    for (std::size_t s = 0; s < t; ++s) {
        const T* a_s = a + s * l_in;
        T* z = z_next + s * l_out;
        std::size_t j = 0;
        for (; j + 4 <= l_out; j += 4) {
            const T* W_j = W + j * l_in;
            T z0 = b ? b[j] : T(0), z1 = b ? b[j + 1] : T(0);
            T z2 = b ? b[j + 2] : T(0), z3 = b ? b[j + 3] : T(0);
            for (std::size_t k = 0; k < l_in; ++k) {
                z0 += W_j[k] * a_s[k];
                z1 += W_j[l_in + k] * a_s[k];
                z2 += W_j[2 * l_in + k] * a_s[k];
                z3 += W_j[3 * l_in + k] * a_s[k];
            }
            z[j] = z0;
            z[j + 1] = z1;
            z[j + 2] = z2;
            z[j + 3] = z3;
        }
        for (; j < l_out; ++j) {
            const T* W_j = W + j * l_in;
            T z_j = b ? b[j] : T(0);
            for (std::size_t k = 0; k < l_in; ++k) z_j += W_j[k] * a_s[k];
            z[j] = z_j;
        }
    }
}

template <class T>
void dense_backward_plain(T* __restrict dE_da, T* __restrict dE_dW, T* __restrict dE_db,
                          const T* __restrict delta_next, const T* __restrict a,
                          const T* __restrict W, std::size_t t, std::size_t l_in,
                          std::size_t l_out, bool accumulate) {
    if (dE_dW) {
        if (!accumulate) std::fill(dE_dW, dE_dW + l_out * l_in, T(0));
        for (std::size_t s = 0; s < t; ++s) {
            const T* delta_s = delta_next + s * l_out;
            const T* a_s = a + s * l_in;
            for (std::size_t j = 0; j < l_out; ++j) {
                T* dW_j = dE_dW + j * l_in;
                for (std::size_t k = 0; k < l_in; ++k) dW_j[k] += delta_s[j] * a_s[k];
            }
        }
    }
    if (dE_db) {
        if (!accumulate) std::fill(dE_db, dE_db + l_out, T(0));
        for (std::size_t s = 0; s < t; ++s)
            for (std::size_t j = 0; j < l_out; ++j) dE_db[j] += delta_next[s * l_out + j];
    }
    if (dE_da) {
        for (std::size_t s = 0; s < t; ++s) {
            const T* delta_s = delta_next + s * l_out;
            T* da_s = dE_da + s * l_in;
            std::fill(da_s, da_s + l_in, T(0));
            for (std::size_t j = 0; j < l_out; ++j) {
                const T* W_j = W + j * l_in;
                for (std::size_t k = 0; k < l_in; ++k) da_s[k] += delta_s[j] * W_j[k];
            }
        }
    }
}

// Below this many multiply-adds a product is done by the plain loops when the kernels are
// the portable ones: the blocked multiply's dispatch costs more than such a product (tiny
// networks such as [2, 8, 8, 1] on 4 samples). With AVX2 or AVX-512, gemm's small path
// (one block through the micro-kernels, no threads) is faster at every size.
constexpr std::size_t plain_max_work = 512;

// Up to this many entries of δ_{i+1}, the bias gradient and its finite check are loops here:
// the calls to the vector kernels cost more than such sums (W1's layers: 4 samples × 8).
constexpr std::size_t bias_inline_max = 64;

namespace {

bool plain_loops(std::size_t work) {
    return work <= plain_max_work && kernel_isa() == Isa::portable;
}

// The work after a layer's product, done by gemm on each block of the result while the block
// is in cache (rows [i0, i0 + m), columns [j0, j0 + n) of a (t, ld) result), or by the
// plain path on the whole of it. The bias is added here only with relu (bias_relu does both
// in one pass); otherwise gemm adds it in registers first (Epilogue::bias).
template <class T> struct ForwardTail {
    const T* b;
    const Activate<T>* activate;
    std::size_t l_out;
};

template <class T>
void forward_tail(const void* context, T* z, std::size_t ldz, std::size_t i0, std::size_t m,
                  std::size_t j0, std::size_t n) {
    const ForwardTail<T>& tail = *static_cast<const ForwardTail<T>*>(context);
    const Activate<T>* act = tail.activate;
    const T* b = tail.b ? tail.b + j0 : nullptr;
    if (act != nullptr &&
        (act->sigma == Activation::relu || act->sigma == Activation::leaky_relu)) {
        const double slope = act->sigma == Activation::leaky_relu ? leaky_relu_slope : 0.0;
        elementwise::bias_relu(z, ldz, b, act->a_next + i0 * tail.l_out + j0, tail.l_out, m, n,
                               slope, act->keep_prime);
        return;
    }
    if (act == nullptr) return;  // b is null here: gemm added the bias (or there is none)
    T* a = act->a_next + i0 * tail.l_out + j0;
    const bool whole_rows = n == ldz && n == tail.l_out;  // one contiguous run
    for (std::size_t r = 0, runs = whole_rows ? 1 : m, len = whole_rows ? m * n : n; r < runs;
         ++r) {
        if (act->keep_prime)
            apply_sigma_keep_prime(act->sigma, a + r * tail.l_out, z + r * ldz, len);
        else
            apply_sigma(act->sigma, a + r * tail.l_out, z + r * ldz, len);
    }
}

// gemm's small path, called here directly for the products whose op(B) is read where it lies
// (B stored (K, N): the backward products; one column of Bᵀ: an output layer of one unit)
// when gemm would take it: the same kernel with the same arguments, so the same bits, without
// gemm's dispatch, which cost a W1 step (4 samples, [2, 8, 8, 1]) as much as the products'
// arithmetic. Returns false, doing nothing, when gemm must do the product. `rs_b` is op(B)'s
// row stride (ldb for B stored (K, N), 1 for a row of Bᵀ as op(B)'s one column).
// `kern` is small_path_kernels(), asked once by the caller for a layer's products (null for a
// layer too large for the small path).
template <class T>
[[gnu::always_inline]] inline bool small_direct(
        const gemm_detail::Kernels<T>* kern, Trans ta, std::size_t M, std::size_t N,
        std::size_t K, const T* A, std::size_t lda, const T* B, std::size_t rs_b,
        bool accumulate, T* C, std::size_t ldc, const gemm_detail::TileEnd<T>* end,
        bool& finite) {
    if (kern == nullptr || K == 0 || M == 0 || N == 0 || K > kern->KC) return false;
    if (N == 1 && ldc == 1 && M >= gemm_detail::small_column_min_rows &&
        (end == nullptr || end->scale == nullptr || end->ld_scale == 1))
        return false;  // gemm takes such a column as a row
    const std::size_t rs_a = ta == Trans::N ? lda : 1, cs_a = ta == Trans::N ? 1 : lda;
    finite = kern->small[gemm_detail::small_kind(end)](M, N, K, A, rs_a, cs_a, B, kern->NR,
                                                        rs_b, C, ldc, accumulate, end);
    return true;
}

template <class T>
void finite_tail(const NonFinite* check, const T* g, std::size_t ld, std::size_t m, std::size_t n) {
    if (!elementwise::all_finite_rows(g, ld, m, n)) check->seen.store(true, std::memory_order_relaxed);
}

bool is_relu(const Activation sigma) {
    return sigma == Activation::relu || sigma == Activation::leaky_relu;
}

}  // namespace

// The fast kernels: each product over the batch is one blocked matrix multiply, the bias and
// σ (or σ') applied to each block of its result as it is finished.
template <class T>
void dense_forward(T* z_next, const T* a, const T* W, const T* b, std::size_t t,
                   std::size_t l_in, std::size_t l_out, const Activate<T>* activate) {
    if (plain_loops(t * l_in * l_out)) {
        dense_forward_plain(z_next, a, W, b, t, l_in, l_out);
        if (activate) {
            const ForwardTail<T> tail{nullptr, activate, l_out};
            forward_tail<T>(&tail, z_next, l_out, 0, t, 0, l_out);
        }
        return;
    }
    const bool relu = activate != nullptr && is_relu(activate->sigma);
    const ForwardTail<T> tail{relu ? b : nullptr, activate, l_out};
    Epilogue<T> epilogue;
    if (!relu) epilogue.bias = b;
    if ((l_out == 1 || l_out * l_in < gemm_detail::small_pack_b_min) && t > 0 && l_in > 0) {
        // op(B) = Wᵀ (l_in, l_out): w's row read in place when l_out is 1, else W copied as
        // rows of Wᵀ, as gemm's small path does below small_pack_b_min entries
        const gemm_detail::TileEnd<T> end{epilogue.bias, nullptr, 0, false};
        bool finite;
        const gemm_detail::Kernels<T>* kern = t * l_in * l_out <= gemm_detail::small_max_work
                                                  ? gemm_detail::small_path_kernels<T>()
                                                  : nullptr;
        T Wt[gemm_detail::small_pack_b_min];
        const T* B = W;
        if (l_out > 1 && kern != nullptr) {
            gemm_detail::copy_transposed(Wt, W, l_in, l_in, l_out);
            B = Wt;
        }
        if (small_direct(kern, Trans::N, t, l_out, l_in, a, l_in, B, l_out, false, z_next,
                         l_out, epilogue.bias != nullptr ? &end : nullptr, finite)) {
            if (activate != nullptr) forward_tail<T>(&tail, z_next, l_out, 0, t, 0, l_out);
            return;
        }
    }
    if (activate != nullptr) {
        epilogue.apply = &forward_tail<T>;
        epilogue.context = &tail;
    }
    gemm(Trans::N, Trans::T, t, l_out, l_in, a, l_in, W, l_in, false, z_next, l_out, epilogue);
}

template <class T>
void dense_backward(T* dE_da, T* dE_dW, T* dE_db, const T* delta_next, const T* a, const T* W,
                    std::size_t t, std::size_t l_in, std::size_t l_out, bool accumulate,
                    const T* sigma_prime, const NonFinite* check) {
    if (plain_loops(t * l_in * l_out)) {
        dense_backward_plain(dE_da, dE_dW, dE_db, delta_next, a, W, t, l_in, l_out, accumulate);
        if (dE_da && sigma_prime)  // σ' has δ's layout, (t, l_in)
            elementwise::multiply(dE_da, l_in, sigma_prime, l_in, t, l_in);
        if (check && dE_dW) finite_tail<T>(check, dE_dW, l_in, l_out, l_in);
        if (check && dE_db) finite_tail<T>(check, dE_db, l_out, 1, l_out);
        return;
    }
    // the kernels for small_direct: both products have t l_in l_out multiply-adds
    const gemm_detail::Kernels<T>* kern = t * l_in * l_out <= gemm_detail::small_max_work
                                              ? gemm_detail::small_path_kernels<T>()
                                              : nullptr;
    if (dE_dW) {  // δ_{i+1}ᵀ a_i: the sum over samples is the product's inner dimension
        Epilogue<T> epilogue;
        epilogue.check_finite = check != nullptr;  // on each tile, in registers
        const gemm_detail::TileEnd<T> end{nullptr, nullptr, 0, true};
        bool finite = true;
        if (!small_direct(kern, Trans::T, l_out, l_in, t, delta_next, l_out, a, l_in, accumulate,
                          dE_dW, l_in, check != nullptr ? &end : nullptr, finite))
            finite = gemm(Trans::T, Trans::N, l_out, l_in, t, delta_next, l_out, a, l_in,
                          accumulate, dE_dW, l_in, epilogue);
        if (!finite) check->seen.store(true, std::memory_order_relaxed);
    }
    if (dE_db) {
        if (!accumulate) std::fill(dE_db, dE_db + l_out, T(0));
        if (t * l_out <= bias_inline_max) {  // sum_rows' additions, in its order: same bits
            for (std::size_t s = 0; s < t; ++s)
                for (std::size_t j = 0; j < l_out; ++j) dE_db[j] += delta_next[s * l_out + j];
            if (check) {  // v − v is 0 for finite v, NaN for inf or NaN (all_finite_rows')
                T sum = T(0);
                for (std::size_t j = 0; j < l_out; ++j) sum += dE_db[j] - dE_db[j];
                if (!(sum == T(0))) check->seen.store(true, std::memory_order_relaxed);
            }
        } else {
            elementwise::sum_rows(dE_db, delta_next, l_out, t, l_out);
            if (check) finite_tail<T>(check, dE_db, l_out, 1, l_out);
        }
    }
    if (dE_da) {  // (δ_{i+1} W_i) ⊙ σ'(z_i), σ' (t, l_in) applied to each tile in registers
        Epilogue<T> epilogue;
        epilogue.scale = sigma_prime;
        epilogue.ld_scale = l_in;
        const gemm_detail::TileEnd<T> end{nullptr, sigma_prime, l_in, false};
        bool finite;
        if (!small_direct(kern, Trans::N, t, l_in, l_out, delta_next, l_out, W, l_in, false, dE_da,
                          l_in, sigma_prime != nullptr ? &end : nullptr, finite))
            gemm(Trans::N, Trans::N, t, l_in, l_out, delta_next, l_out, W, l_in, false, dE_da,
                 l_in, epilogue);
    }
}

#define FASTPROP_INSTANTIATE(T)                                                               \
    template void dense_forward<T>(T*, const T*, const T*, const T*, std::size_t, std::size_t, \
                                   std::size_t, const Activate<T>*);                          \
    template void dense_backward<T>(T*, T*, T*, const T*, const T*, const T*, std::size_t,     \
                                    std::size_t, std::size_t, bool, const T*,                 \
                                    const NonFinite*);                                        \
    template void dense_forward_plain<T>(T*, const T*, const T*, const T*, std::size_t,        \
                                         std::size_t, std::size_t);                           \
    template void dense_backward_plain<T>(T*, T*, T*, const T*, const T*, const T*,            \
                                          std::size_t, std::size_t, std::size_t, bool);
FASTPROP_INSTANTIATE(float)
FASTPROP_INSTANTIATE(double)
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop
