// Which code paths run: the AVX2 + FMA and AVX-512 paths are compiled for any x86-64 but
// only taken where the CPU has them (asked once, in cpu.cpp).
#pragma once

#include <atomic>

namespace fastprop {

// The instruction sets the kernels (matrix products, activations, elementwise passes) come
// in, from the least to the most capable.
enum class Isa { portable, avx2, avx512 };

// The kernels in use: the most capable this build has and the CPU supports, capped by the
// environment variable FASTPROP_MAX_ISA (portable, avx2 or avx512; read once, another value
// caps nothing and is reported by ignored_settings() in settings.hpp) and by set_max_isa.
// Inline, one load: it is asked before every product and pass (16 times in a W1 step).
inline Isa kernel_isa();
const char* isa_name(Isa isa);  // as in FASTPROP_MAX_ISA
// Caps the kernels at isa from now on (tests and benchmarks compare the paths); a cap above
// what the CPU has changes nothing. Not for use while another thread runs the core.
void set_max_isa(Isa isa);

namespace detail {
// kernel_isa()'s answer as an int, −1 until first asked and after set_max_isa. Constant-
// initialised, so that it is valid before any static initialiser runs.
extern std::atomic<int> g_kernel_isa;
Isa kernel_isa_slow();  // computes, stores and returns it
}  // namespace detail

inline Isa kernel_isa() {
    const int isa = detail::g_kernel_isa.load(std::memory_order_relaxed);
    return isa >= 0 ? static_cast<Isa>(isa) : detail::kernel_isa_slow();
}

}  // namespace fastprop
