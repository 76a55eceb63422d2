// What the CPU running us can do, asked once: the AVX2 + FMA code paths are compiled for
// any x86-64 but only taken where this says yes.
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

}  // namespace fastprop
