// AVX-512 blocks of the peak measurement (peak.hpp), built with -mavx512f -mavx2 -mfma;
// peak.cpp calls in here only after checking the CPU. As in gemm_avx512.cpp, only <immintrin.h> and
// headers of plain declarations (<cstddef>, <cstdint>) are included and the helpers have
// internal linkage, so no AVX-512 code can reach the generic paths.
#include <immintrin.h>

#include <cstddef>

#include "runtime/peak.hpp"

namespace fastprop {
namespace peak_detail {
namespace {

#include "peak_chains.inc"

}  // namespace

double avx512_block_f32(std::size_t iterations) {
    const __m512 sum = run<avx512_chains>(iterations, _mm512_set1_ps(0.999f), _mm512_set1_ps(1e-3f),
                           [](__m512 c, __m512 a, __m512 b) { return _mm512_fmadd_ps(c, a, b); },
                           [](__m512 x, __m512 y) { return _mm512_add_ps(x, y); });
    return static_cast<double>(_mm512_cvtss_f32(sum));
}

double avx512_block_f64(std::size_t iterations) {
    const __m512d sum = run<avx512_chains>(iterations, _mm512_set1_pd(0.999), _mm512_set1_pd(1e-3),
                            [](__m512d c, __m512d a, __m512d b) {
                                return _mm512_fmadd_pd(c, a, b);
                            },
                            [](__m512d x, __m512d y) { return _mm512_add_pd(x, y); });
    return _mm512_cvtsd_f64(sum);
}

}  // namespace peak_detail
}  // namespace fastprop
