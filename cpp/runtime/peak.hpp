// The machine's peak floating-point rate, measured where fastprop runs: independent chains
// of fused multiply-adds on k threads, with the instruction set the kernels use (kernel_isa()).
// The benchmarks report each rate as a share of it, instead of a peak assumed for one CPU.
#pragma once
#include <cstddef>
#include <cstdint>

namespace fastprop {

// GFLOP/s of `threads` threads (1..1024) each running chains of multiply-adds for about
// `seconds` (in (0, 60]) in `dtype` ("float32" or "float64"); a multiply-add counts two
// flops. The vectors are those of kernel_isa(): AVX-512 or AVX2 + FMA where the kernels use
// them, else the portable code's (a multiply and an add, as the portable kernels do).
// Throws std::invalid_argument for another dtype or a count or duration out of range.
double fma_peak(const char* dtype, std::int64_t threads, double seconds);

namespace peak_detail {

// One block of multiply-adds on independent chains (enough of them to cover the latency of
// every FMA pipe): `iterations` rounds, each of chains_* vector FMAs. Returns a sum of the
// chains, so that no compiler can drop the work. Defined in peak_avx2.cpp (-mavx2 -mfma) and
// peak_avx512.cpp (-mavx512f); call only where kernel_isa() allows them.
double avx2_block_f32(std::size_t iterations);
double avx2_block_f64(std::size_t iterations);
double avx512_block_f32(std::size_t iterations);
double avx512_block_f64(std::size_t iterations);
// Flops of one round: chains × lanes × 2.
constexpr std::size_t avx2_chains = 12;     // of the 16 ymm registers
constexpr std::size_t avx512_chains = 24;   // of the 32 zmm registers

}  // namespace peak_detail
}  // namespace fastprop
