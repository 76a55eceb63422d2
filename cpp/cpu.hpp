// What the CPU running us can do, asked once, and which code paths run: the AVX2 + FMA and
// AVX-512 paths are compiled for any x86-64 but only taken where the CPU has them.
#pragma once

namespace fastprop {

// FASTPROP_AVX2 is defined where the build compiled the AVX2 and AVX-512 translation units.
inline bool cpu_has_avx2_fma() {
#if defined(FASTPROP_AVX2)
    static const bool yes = [] {
        __builtin_cpu_init();  // in case this runs before the CPU model is initialised
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return yes;
#else
    return false;
#endif
}

// The check covers the OS too: libgcc reports AVX-512 only when the kernel saves the zmm
// registers.
inline bool cpu_has_avx512f() {
#if defined(FASTPROP_AVX2)
    static const bool yes = [] {
        __builtin_cpu_init();
        return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
    }();
    return yes;
#else
    return false;
#endif
}

// The instruction sets the kernels (matrix products, activations, elementwise passes) come
// in, from the least to the most capable.
enum class Isa { portable, avx2, avx512 };

// The kernels in use: the most capable this build has and the CPU supports, capped by the
// environment variable FASTPROP_MAX_ISA (portable, avx2 or avx512; read once, another value
// caps nothing) and by set_max_isa. Defined in cpu.cpp.
Isa kernel_isa();
const char* isa_name(Isa isa);  // as in FASTPROP_MAX_ISA
// Caps the kernels at isa from now on (tests and benchmarks compare the paths); a cap above
// what the CPU has changes nothing. Not for use while another thread runs the core.
void set_max_isa(Isa isa);

}  // namespace fastprop
