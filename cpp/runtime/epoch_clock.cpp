#include "runtime/epoch_clock.hpp"

#include <algorithm>

#if defined(FASTPROP_EPOCH_TICKS)
#include <cpuid.h>
#endif

namespace fastprop {
namespace {

// CPUID 0x8000'0007, EDX bit 8: the counter runs at a constant rate in every power state.
bool invariant_counter() {
#if defined(FASTPROP_EPOCH_TICKS)
    static const bool invariant = [] {
        unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
        return __get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) != 0 && (edx >> 8 & 1u) != 0;
    }();
    return invariant;
#else
    return false;
#endif
}

}  // namespace

EpochClock::EpochClock(bool live) : counter_(!live && invariant_counter()) {
    start_ = clock::now();
    if (counter_) ticks0_ = ticks();
}

void EpochClock::finish(std::vector<double>& seconds) const {
    if (!counter_ || seconds.empty()) return;
    const double span = double(ticks() - ticks0_);
    const double total = std::chrono::duration<double>(clock::now() - start_).count();
    const double per_tick = span > 0 ? total / span : 0.0;
    double previous = 0.0;
    for (double& s : seconds) {
        s = std::clamp(s * per_tick, previous, total);
        previous = s;
    }
}

}  // namespace fastprop
