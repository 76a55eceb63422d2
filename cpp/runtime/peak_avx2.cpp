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

constexpr std::size_t K = avx2_chains;

// acc_j = acc_j · a + b on K chains: 12 chains of 4-cycle FMAs keep two FMA pipes busy with
// room to spare. a just below 1 keeps every chain finite and away from subnormals.
template <class R, class Fma, class Add>
R run(std::size_t iterations, R a, R b, Fma fma, Add add) {
    R acc[K];
    for (std::size_t j = 0; j < K; ++j) acc[j] = b;
    for (std::size_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
        for (std::size_t j = 0; j < K; ++j) acc[j] = fma(acc[j], a, b);
    }
    R sum = acc[0];
    for (std::size_t j = 1; j < K; ++j) sum = add(sum, acc[j]);
    return sum;
}

}  // namespace

double avx2_block_f32(std::size_t iterations) {
    const __m256 sum = run(iterations, _mm256_set1_ps(0.999f), _mm256_set1_ps(1e-3f),
                           [](__m256 c, __m256 a, __m256 b) { return _mm256_fmadd_ps(c, a, b); },
                           [](__m256 x, __m256 y) { return _mm256_add_ps(x, y); });
    return static_cast<double>(_mm256_cvtss_f32(sum));
}

double avx2_block_f64(std::size_t iterations) {
    const __m256d sum = run(iterations, _mm256_set1_pd(0.999), _mm256_set1_pd(1e-3),
                            [](__m256d c, __m256d a, __m256d b) {
                                return _mm256_fmadd_pd(c, a, b);
                            },
                            [](__m256d x, __m256d y) { return _mm256_add_pd(x, y); });
    return _mm256_cvtsd_f64(sum);
}

}  // namespace peak_detail
}  // namespace fastprop
