#include "cpu.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

namespace fastprop {
namespace {

Isa best_isa() {
    if (cpu_has_avx512f()) return Isa::avx512;
    if (cpu_has_avx2_fma()) return Isa::avx2;
    return Isa::portable;
}

// FASTPROP_MAX_ISA, when it names a kernel set; anything else leaves the cap off.
Isa isa_from_environment() {
    const char* s = std::getenv("FASTPROP_MAX_ISA");
    for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512})
        if (s != nullptr && std::strcmp(s, isa_name(isa)) == 0) return isa;
    return Isa::avx512;
}

std::atomic<Isa> g_max_isa{isa_from_environment()};

}  // namespace

Isa kernel_isa() {
    static const Isa best = best_isa();
    const Isa cap = g_max_isa.load(std::memory_order_relaxed);
    return cap < best ? cap : best;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "portable";
    }
}

void set_max_isa(Isa isa) { g_max_isa.store(isa); }

}  // namespace fastprop
