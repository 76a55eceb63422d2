// elementwise.hpp's loops built with -mavx2 (and without -mfma: a fused multiply-add would
// round p − lr·g differently from the portable build). Called by elementwise.cpp after a CPU
// check.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace fastprop::elementwise::avx2 {

namespace {
#include "elementwise_loops.inc"
}  // namespace

void add(float* y, const float* x, std::size_t n) { add_loop(y, x, n); }
void add(double* y, const double* x, std::size_t n) { add_loop(y, x, n); }
bool all_finite(const float* v, std::size_t n) { return all_finite_loop(v, n); }
bool all_finite(const double* v, std::size_t n) { return all_finite_loop(v, n); }
void sgd(float* p, const float* g, float lr, std::size_t n) { sgd_loop(p, g, lr, n); }
void sgd(double* p, const double* g, double lr, std::size_t n) { sgd_loop(p, g, lr, n); }

}  // namespace fastprop::elementwise::avx2
