// The seconds since a fit started at the end of each of its epochs (FitRecord::seconds, which
// a History holds as `time`).
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FASTPROP_EPOCH_TICKS 1  // the counter is read by __builtin_ia32_rdtsc
#endif

namespace fastprop {

// Where the CPU's time-stamp counter runs at a constant rate (x86-64 with an invariant TSC),
// the end of an epoch is one reading of the counter, and the readings become seconds when the
// fit ends: scaled by the seconds steady_clock measures from the start to that end over the
// counter's ticks in the same span. On the AMD EPYC of benchmarks/results, under KVM, a reading
// took 13 ns and steady_clock::now() 37, 7% of a W1 step (four samples, [2, 8, 8, 1]).
// When `live` (an epoch hook wants each epoch's seconds as it ends), and on other CPUs, every
// mark reads steady_clock.
class EpochClock {
public:
    explicit EpochClock(bool live);

    // The end of an epoch, appended to `seconds`; returns its seconds when live, else 0 (the
    // value is the counter's until finish()).
    double mark(std::vector<double>& seconds) {
        if (!counter_) {
            const double s = std::chrono::duration<double>(clock::now() - start_).count();
            seconds.push_back(s);
            return s;
        }
        seconds.push_back(double(ticks() - ticks0_));  // exact below 2^53 ticks (weeks)
        return 0.0;
    }

    // Turns every mark in `seconds` into seconds since the start (nothing to do when each
    // mark read steady_clock). Non-decreasing and at most the seconds to now.
    void finish(std::vector<double>& seconds) const;

private:
    using clock = std::chrono::steady_clock;
    static std::uint64_t ticks() {
#if defined(FASTPROP_EPOCH_TICKS)
        return __builtin_ia32_rdtsc();
#else
        return 0;  // never called: counter_ is false
#endif
    }

    bool counter_;
    clock::time_point start_;
    std::uint64_t ticks0_ = 0;
};

}  // namespace fastprop
