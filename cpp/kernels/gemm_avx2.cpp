// AVX2 + FMA pieces of the blocked gemm path: 256-bit registers, a 6 x 2-vector tile. Built
// with -mavx2 -mfma; gemm.cpp calls in here only after checking the CPU. Everything but the
// two table getters sits in an anonymous namespace and only <immintrin.h> (always-inline
// intrinsics) and <cstddef> are included, so no AVX2-compiled inline function or template
// instantiation can be merged by the linker into a caller in the generic code.
#include <immintrin.h>

#include <cstddef>

#include "kernels/gemm.hpp"

namespace fastprop {
namespace gemm_detail {
namespace {

using std::size_t;

#include "gemm_vec256.inc"

template <class T> using Vec = Vec256<T>;

// Register tile: MR = 6 rows of A broadcast against NR = 2 vectors of packed B, 12 of the 16
// ymm registers as accumulators (16 floats / 8 doubles wide), enough independent FMA chains
// to cover the 4-cycle latency on both FMA pipes.
constexpr size_t MR = 6;

// Narrow edges use the full vectors: there is no narrower one worth having.
template <class T> using Half = Vec<T>;

#include "gemm_kernels.inc"

}  // namespace

// Zen 3: 32 KiB L1d holds the (KC, NR) B panel (16 KiB) with room for the A rows streaming
// past it; 512 KiB L2 holds the (MC, KC) A block; the (KC, NC) packed B lives in L3.
const Kernels<float>& avx2_kernels_f32() {
    static const Kernels<float> kernels = make_kernels<float>(96, 256, 2048);
    return kernels;
}

const Kernels<double>& avx2_kernels_f64() {
    static const Kernels<double> kernels = make_kernels<double>(72, 256, 1024);
    return kernels;
}

}  // namespace gemm_detail
}  // namespace fastprop
