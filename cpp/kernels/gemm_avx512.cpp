// AVX-512 pieces of the blocked gemm path: 512-bit registers, a 12 x 2-vector tile. Built
// with -mavx512f -mavx2 -mfma; gemm.cpp calls in here only after checking the CPU. As in
// gemm_avx2.cpp, everything but the two table getters has internal linkage and only
// <immintrin.h> and <cstddef> are included, so no AVX-512 code can reach the generic paths.
// The sums are those of the AVX2 kernels, in the same order: the same bits.
#include <immintrin.h>

#include <cstddef>

#include "kernels/gemm.hpp"

namespace fastprop {
namespace gemm_detail {
namespace {

using std::size_t;

template <class T> struct Vec;

template <> struct Vec<float> {
    using R = __m512;
    using M = __mmask16;
    static constexpr size_t lanes = 16;
    static R zero() { return _mm512_setzero_ps(); }
    static R load(const float* p) { return _mm512_load_ps(p); }
    static R loadu(const float* p) { return _mm512_loadu_ps(p); }
    static void store(float* p, R v) { _mm512_store_ps(p, v); }
    static void storeu(float* p, R v) { _mm512_storeu_ps(p, v); }
    static R broadcast(const float* p) { return _mm512_set1_ps(*p); }
    static R fmadd(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
    static R add(R a, R b) { return _mm512_add_ps(a, b); }
    static R mul(R a, R b) { return _mm512_mul_ps(a, b); }
    static R sub_masked(M m, R a, R b) { return _mm512_maskz_sub_ps(m, a, b); }
    static bool all_zero(R v) { return _mm512_cmp_ps_mask(v, zero(), _CMP_NEQ_UQ) == 0; }
    static M mask(long n) {
        return n <= 0 ? M(0) : n >= 16 ? M(0xFFFF) : static_cast<M>((1u << n) - 1u);
    }
    static R maskload(const float* p, M m) { return _mm512_maskz_loadu_ps(m, p); }
    static void maskstore(float* p, M m, R v) { _mm512_mask_storeu_ps(p, m, v); }
};

template <> struct Vec<double> {
    using R = __m512d;
    using M = __mmask8;
    static constexpr size_t lanes = 8;
    static R zero() { return _mm512_setzero_pd(); }
    static R load(const double* p) { return _mm512_load_pd(p); }
    static R loadu(const double* p) { return _mm512_loadu_pd(p); }
    static void store(double* p, R v) { _mm512_store_pd(p, v); }
    static void storeu(double* p, R v) { _mm512_storeu_pd(p, v); }
    static R broadcast(const double* p) { return _mm512_set1_pd(*p); }
    static R fmadd(R a, R b, R c) { return _mm512_fmadd_pd(a, b, c); }
    static R add(R a, R b) { return _mm512_add_pd(a, b); }
    static R mul(R a, R b) { return _mm512_mul_pd(a, b); }
    static R sub_masked(M m, R a, R b) { return _mm512_maskz_sub_pd(m, a, b); }
    static bool all_zero(R v) { return _mm512_cmp_pd_mask(v, zero(), _CMP_NEQ_UQ) == 0; }
    static M mask(long n) {
        return n <= 0 ? M(0) : n >= 8 ? M(0xFF) : static_cast<M>((1u << n) - 1u);
    }
    static R maskload(const double* p, M m) { return _mm512_maskz_loadu_pd(m, p); }
    static void maskstore(double* p, M m, R v) { _mm512_mask_storeu_pd(p, m, v); }
};

// 256-bit vectors for the narrow edge tiles (gemm_kernels.inc, macro_kernel): the AVX2
// kernels' own operations, with the same per-lane FMA chains.
#include "gemm_vec256.inc"

template <class T> using Half = Vec256<T>;

// Register tile: MR = 12 rows of A broadcast against NR = 2 vectors of packed B, 24 of the 32
// zmm registers as accumulators (32 floats / 16 doubles wide), twice the AVX2 tile's FMA
// chains for the same 4-cycle latency on two 512-bit FMA pipes.
constexpr size_t MR = 12;

#include "gemm_kernels.inc"

}  // namespace

// KC is the AVX2 kernels' (same kc, same bits). The (KC, NR) B panel is 32 KiB in float, in a
// 48 KiB L1d. A small (MC, KC) A block, 48 KiB, measured best on a Xeon (AVX-512, 2 MiB L2),
// one thread, float32 GF/s of W4's three products (bench_gemm --quick --only 1024):
// MC = 192: 132-140; 96: 139-144 (KC 384); 72: 144-152; 48: 141-155; 24: 141-151.
const Kernels<float>& avx512_kernels_f32() {
    static const Kernels<float> kernels = make_kernels<float>(48, 256, 2048);
    return kernels;
}

const Kernels<double>& avx512_kernels_f64() {
    static const Kernels<double> kernels = make_kernels<double>(48, 256, 1024);
    return kernels;
}

}  // namespace gemm_detail
}  // namespace fastprop
