#include "runtime/peak.hpp"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "runtime/cpu.hpp"

namespace fastprop {
namespace {

using std::size_t;

// Rounds per block: tens of microseconds of work between two looks at the stop flag, so that
// the look costs nothing and a thread overshoots the stop by no more than that.
constexpr size_t block_iterations = 4096;

// The portable code's block: a multiply and an add per element (ISO C++ contracts nothing),
// on enough independent chains for the compiler's SSE2 vectors to keep both pipes busy.
template <class T> constexpr size_t portable_chains = 64 / sizeof(T) * 2;  // 8 SSE registers

template <class T> double portable_block(size_t iterations) {
    constexpr size_t K = portable_chains<T>;
    T acc[K];
    const T a = T(0.999), b = T(1e-3);
    for (size_t j = 0; j < K; ++j) acc[j] = b;
    for (size_t it = 0; it < iterations; ++it)
        for (size_t j = 0; j < K; ++j) acc[j] = acc[j] * a + b;
    T sum = 0;
    for (size_t j = 0; j < K; ++j) sum += acc[j];
    return static_cast<double>(sum);
}

struct Block {
    double (*run)(size_t iterations);
    double flops;  // of one call of block_iterations rounds: rounds × chains × lanes × 2
};

Block make_block(double (*run)(size_t), size_t chains, size_t lanes) {
    return {run, static_cast<double>(block_iterations * chains * lanes * 2)};
}

// The instruction set of the kernels (kernel_isa(), FASTPROP_MAX_ISA included).
Block block_for(bool f64) {
#if defined(FASTPROP_AVX2)
    using namespace peak_detail;
    switch (kernel_isa()) {
        case Isa::avx512:
            return f64 ? make_block(&avx512_block_f64, avx512_chains, 8)
                       : make_block(&avx512_block_f32, avx512_chains, 16);
        case Isa::avx2:
            return f64 ? make_block(&avx2_block_f64, avx2_chains, 4)
                       : make_block(&avx2_block_f32, avx2_chains, 8);
        default: break;
    }
#endif
    return f64 ? make_block(&portable_block<double>, portable_chains<double>, 1)
               : make_block(&portable_block<float>, portable_chains<float>, 1);
}

// What the threads share: a start line, a stop flag, and one count of blocks per thread.
struct Race {
    std::atomic<std::int64_t> ready{0};
    std::atomic<bool> go{false}, stop{false};
    std::vector<std::uint64_t> blocks;
    std::vector<double> sinks;  // the blocks' results, kept so that the work is not dropped
};

void runner(Race& race, Block block, size_t k) {
    race.ready.fetch_add(1);
    while (!race.go.load(std::memory_order_acquire)) std::this_thread::yield();
    std::uint64_t blocks = 0;
    double sink = 0;
    while (!race.stop.load(std::memory_order_relaxed)) {
        sink += block.run(block_iterations);
        ++blocks;
    }
    race.blocks[k] = blocks;
    race.sinks[k] = sink;
}

std::string shown(double x) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", x);
    return text;
}

}  // namespace

double fma_peak(const char* dtype, std::int64_t threads, double seconds) {
    const bool f32 = dtype != nullptr && std::strcmp(dtype, "float32") == 0;
    const bool f64 = dtype != nullptr && std::strcmp(dtype, "float64") == 0;
    if (!f32 && !f64)
        throw std::invalid_argument(std::string("dtype must be 'float32' or 'float64', got '") +
                                    (dtype ? dtype : "") + "'");
    if (threads < 1 || threads > 1024)
        throw std::invalid_argument("threads must be in [1, 1024], got " +
                                    std::to_string(threads));
    if (!(std::isfinite(seconds) && seconds > 0 && seconds <= 60))
        throw std::invalid_argument("seconds must be a finite number in (0, 60], got " +
                                    shown(seconds));

    const Block block = block_for(f64);
    const auto k_threads = static_cast<size_t>(threads);
    Race race;
    race.blocks.assign(k_threads, 0);
    race.sinks.assign(k_threads, 0.0);
    std::vector<std::thread> pool;
    pool.reserve(k_threads);
    try {
        for (size_t k = 0; k < k_threads; ++k)
            pool.emplace_back(runner, std::ref(race), block, k);
    } catch (const std::system_error&) {  // no more threads: release those started, then say so
        race.stop.store(true);
        race.go.store(true, std::memory_order_release);
        for (auto& thread : pool) thread.join();
        throw;
    }
    while (race.ready.load() < threads) std::this_thread::yield();
    using clock = std::chrono::steady_clock;
    const auto start = clock::now();
    race.go.store(true, std::memory_order_release);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    race.stop.store(true, std::memory_order_relaxed);
    for (auto& thread : pool) thread.join();
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();

    double flops = 0, sink = 0;
    for (size_t k = 0; k < k_threads; ++k) {
        flops += static_cast<double>(race.blocks[k]) * block.flops;
        sink += race.sinks[k];
    }
    // The chains converge to b / (1 − a) = 1 per lane: a sum that is not finite and positive
    // would mean the blocks did not compute what they count.
    if (!(std::isfinite(sink) && sink >= 0))
        throw std::logic_error("fma_peak: the chains diverged");
    return flops / elapsed / 1e9;
}

}  // namespace fastprop
