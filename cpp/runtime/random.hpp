// A small, fixed pseudo-random generator, so that a seed means the same network and the
// same sample order on every platform and compiler (std:: distributions are not portable).
#pragma once

#include <cstddef>
#include <cstdint>

namespace fastprop {

class SplitMix64 {
public:
    explicit SplitMix64(std::uint64_t seed) : state_(seed) {}

    std::uint64_t next() {
        std::uint64_t x = (state_ += 0x9E3779B97F4A7C15ull);
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
        return x ^ (x >> 31);
    }

    // Uniform on [0, 1) with 53 random bits.
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }

    // Uniform on {0, ..., bound - 1}, bound >= 1, without modulo bias: draws below
    // 2^64 mod bound are rejected, leaving a range that is a multiple of bound.
    std::size_t below(std::size_t bound) {
        const auto b = static_cast<std::uint64_t>(bound);
        const std::uint64_t threshold = (0 - b) % b;
        std::uint64_t r = next();
        while (r < threshold) r = next();
        return static_cast<std::size_t>(r % b);
    }

private:
    std::uint64_t state_;
};

}  // namespace fastprop
