// The passes of one training step for several networks of the same shape at once, "in lanes":
// every buffer holds each entry of one network's buffer for `width` networks side by side
// (entry e of network j at e · width + j), so that one vector instruction does the same scalar
// operation for every network. train/lanes.cpp steps groups of networks with them.
//
// Each lane must end at the bits of that network's own fit, so each pass repeats, per lane,
// the exact operations and rounding of the pass a single fit runs (kernels/dense.cpp,
// kernels/gemm.cpp, model/losses.hpp, the elementwise passes of the optimisers). With the
// AVX2 and AVX-512 kernels, the only ones lanes run with, dense.cpp hands every product of a
// layer to gemm, and gemm sums every element through the micro-kernels (its small, column
// and blocked paths give the same bits): one fused multiply-add chain from 0 per slice of kc
// values of k (gemm_kc), the slices' sums added in order, then + b_j or × σ'(z_i), each one
// rounding. (dense.cpp's plain loops and gemm_direct serve the portable kernels alone.)
// Built for AVX2 and for AVX-512 (lanes_avx2.cpp, lanes_avx512.cpp, from lanes_kernels.inc)
// without contraction, fused multiply-adds written out where the kernels have them; there is
// no portable version: without AVX2 networks are trained one at a time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastprop::lanes {

// A mask of lanes: bit j for lane j.
using LaneMask = std::uint32_t;

// SGD's hyperparameters, one per lane (each network's own), and which lanes take their first
// step (sgd's momentum buffer starts as that step's d).
template <class T> struct LaneRates {
    const T* lr;
    const T* weight_decay;
    const T* momentum;
    LaneMask first;
    bool with_momentum, nesterov;  // the same for every lane of a group
};

// Adam's constants of one step, one per lane (elementwise::AdamStep's, with 1 − β1 and
// 1 − β2 as AdamStep's loops round them: T(1) − β).
template <class T> struct LaneAdam {
    const T *beta2, *one_minus_beta1, *one_minus_beta2, *weight_decay, *step_size, *bc2_sqrt,
        *eps, *decay;
    bool decoupled;  // AdamW; the same for every lane of a group
};

template <class T> struct Kernels {
    std::size_t width;  // lanes per vector: networks stepped together
    // z (rows, l_out) = a (rows, l_in) W_iᵀ + b_i (b null: no bias); kc: the slice of
    // k = l_in. a_shared: a holds one row set for every lane (a_0 = x, the minibatch every
    // network reads), not lanes.
    void (*forward)(std::size_t kc, T* z, const T* a, bool a_shared, const T* W, const T* b,
                    std::size_t rows, std::size_t l_in, std::size_t l_out);
    // dE_dW (l_out, l_in) = δ_{i+1}ᵀ a_i (kc: the slice of k = rows), dE_db (l_out) =
    // Σ_s δ_{i+1} in row order from 0 (dE_db null: no bias).
    void (*weight_gradient)(std::size_t kc, T* dE_dW, T* dE_db, const T* delta_next,
                            const T* a, bool a_shared, std::size_t rows, std::size_t l_in,
                            std::size_t l_out);
    // δ_i (rows, l_in) = (δ_{i+1} W_i) ⊙ σ'(z_i) (kc: the slice of k = l_out).
    void (*input_delta)(std::size_t kc, T* delta, const T* delta_next, const T* W,
                        const T* sigma_prime, std::size_t rows, std::size_t l_in,
                        std::size_t l_out);
    // The squared error of `count` entries as model/losses.hpp's squared_error sums it
    // (unweighted: eight partial sums by entry k mod 8, in double): d = y − z_n,
    // δ_n = scale · d, E (one double per lane) = Σ d². y_shared: y is one set for every lane.
    void (*squared_error)(T* delta_n, double* E, const T* z_n, const T* y, bool y_shared,
                          std::size_t count, T scale);
    // Plain SGD, p −= lr · g (lr: one per lane), on the lanes of `active`, as the fused pass
    // sgd_keep rounds it. A lane whose new parameters are not all finite keeps its old ones
    // (that update is undone, as update_if_finite does); returns those lanes. g is used up.
    LaneMask (*sgd)(T* p, T* g, const T* lr, std::size_t n, LaneMask active);
    // SGD with weight decay, and with (Nesterov) momentum when rates.with_momentum (m: the
    // momentum buffers in lanes), as optimizer::Sgd::apply rounds it: the new parameters of
    // every lane of `active` computed first, then written (p and m) on the lanes where all are
    // finite. Returns the other lanes of `active`, left as they were.
    LaneMask (*sgd_momentum)(T* p, T* m, const T* g, const LaneRates<T>& rates, std::size_t n,
                             LaneMask active);
    // Adam or AdamW (m, v: the moments in lanes), as elementwise::adam_is_finite then
    // elementwise::adam round it, on the lanes of `active` whose new parameters are all
    // finite. Returns the other lanes of `active`, left as they were.
    LaneMask (*adam)(T* p, T* m, T* v, const T* g, const LaneAdam<T>& c, std::size_t n,
                     LaneMask active);
    // Gradient clipping (trainer.cpp's clip_gradient): Σ g² per lane in double, k ascending,
    // into sum (width doubles); then g ← g · c, one factor per lane.
    void (*sum_of_squares)(double* sum, const T* g, std::size_t n);
    void (*scale)(T* g, const T* c, std::size_t n);
};

// The kernels of the instruction set kernel_isa() names, or null on the portable path.
template <class T> const Kernels<T>* kernels();

namespace detail {
const Kernels<float>& avx2_f32();
const Kernels<double>& avx2_f64();
const Kernels<float>& avx512_f32();
const Kernels<double>& avx512_f64();
}  // namespace detail

}  // namespace fastprop::lanes
