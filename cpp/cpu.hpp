// What the CPU running us can do, asked once: the AVX2 + FMA and AVX-512 code paths are
// compiled for any x86-64 but only taken where this says yes.
#pragma once

namespace fastprop {

// FASTPROP_AVX2 is defined where the build compiled the AVX2 translation units.
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

// FASTPROP_AVX512 likewise. The check covers the OS: libgcc reports AVX-512 only when the
// kernel saves the zmm registers.
inline bool cpu_has_avx512f() {
#if defined(FASTPROP_AVX512)
    static const bool yes = [] {
        __builtin_cpu_init();
        return cpu_has_avx2_fma() && __builtin_cpu_supports("avx512f");
    }();
    return yes;
#else
    return false;
#endif
}

}  // namespace fastprop
