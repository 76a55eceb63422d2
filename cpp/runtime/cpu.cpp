#include "runtime/cpu.hpp"

#include <atomic>

#include "runtime/settings.hpp"

namespace fastprop {
namespace {

// FASTPROP_AVX2 is defined where the build compiled the AVX2 and AVX-512 translation units.
// The AVX-512 check covers the OS too: libgcc reports AVX-512 only when the kernel saves the
// zmm registers.
Isa best_isa() {
#if defined(FASTPROP_AVX2)
    __builtin_cpu_init();  // in case this runs before the CPU model is initialised
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        return __builtin_cpu_supports("avx512f") ? Isa::avx512 : Isa::avx2;
#endif
    return Isa::portable;
}

std::atomic<Isa> g_max_isa{max_isa_from_environment().value_or(Isa::avx512)};
// Set once g_max_isa holds the environment's cap (dynamic initialisation, after it): an answer
// asked for before that, from another file's static initialiser, is not kept.
const bool g_cap_read = g_max_isa.load() >= Isa::portable;

}  // namespace

std::atomic<int> detail::g_kernel_isa{-1};

Isa detail::kernel_isa_slow() {
    static const Isa best = best_isa();
    const Isa cap = g_max_isa.load(std::memory_order_relaxed);
    const Isa isa = cap < best ? cap : best;
    if (g_cap_read) g_kernel_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "portable";
    }
}

void set_max_isa(Isa isa) {
    g_max_isa.store(isa);
    detail::g_kernel_isa.store(-1);  // asked again at the next kernel_isa()
}

}  // namespace fastprop
