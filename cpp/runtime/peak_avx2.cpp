// AVX2 + FMA blocks of the peak measurement (peak.hpp), built with -mavx2 -mfma; peak.cpp
// calls in here only after checking the CPU. As in gemm_avx2.cpp, only <immintrin.h> and
// headers of plain declarations (<cstddef>, <cstdint>) are included and the helpers have
// internal linkage, so no AVX2 code can reach the generic paths.
#include <immintrin.h>

#include <cstddef>

#include "runtime/peak.hpp"

namespace fastprop {
namespace peak_detail {
namespace {

#include "peak_chains.inc"

}  // namespace

double avx2_block_f32(std::size_t iterations) {
    const __m256 sum = run<avx2_chains>(iterations, _mm256_set1_ps(0.999f), _mm256_set1_ps(1e-3f),
                           [](__m256 c, __m256 a, __m256 b) { return _mm256_fmadd_ps(c, a, b); },
                           [](__m256 x, __m256 y) { return _mm256_add_ps(x, y); });
    return static_cast<double>(_mm256_cvtss_f32(sum));
}

double avx2_block_f64(std::size_t iterations) {
    const __m256d sum = run<avx2_chains>(iterations, _mm256_set1_pd(0.999), _mm256_set1_pd(1e-3),
                            [](__m256d c, __m256d a, __m256d b) {
                                return _mm256_fmadd_pd(c, a, b);
                            },
                            [](__m256d x, __m256d y) { return _mm256_add_pd(x, y); });
    return _mm256_cvtsd_f64(sum);
}

}  // namespace peak_detail
}  // namespace fastprop
