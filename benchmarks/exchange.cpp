// What it costs two cores to hand each other data every step, as a training step split over
// two threads would: each thread reads the half of a buffer the other just wrote, then writes
// its own half, with a spin barrier between the phases. The same loop on two private buffers
// (nothing crosses between the cores) is the baseline; the difference is the exchange. The
// first row, 0 bytes, is the two barriers alone.
//
//   g++ -O3 -march=native -pthread benchmarks/exchange.cpp -o /tmp/exchange && /tmp/exchange
//
// A W2 step ([64, 64, 64, 10], bias, minibatches of 32) split over two threads by samples for
// the forward and backward passes and by rows of W_i for ∂E/∂W_i and the update (the split
// that keeps every sum's order, so the bits of one thread) moves, per thread and step, the
// other half of the updated parameters (8,970 / 2 entries) and the other half of the batch's
// a_i and δ_i (about 4,300 entries): about 35 KB in float32 and 70 KB in float64.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

namespace {

std::atomic<unsigned> arrived{0}, generation{0};

void barrier(unsigned& seen) {
    const unsigned g = seen;
    if (arrived.fetch_add(1, std::memory_order_acq_rel) == 1) {
        arrived.store(0, std::memory_order_relaxed);
        generation.store(g + 1, std::memory_order_release);
    } else {
        while (generation.load(std::memory_order_acquire) == g) __builtin_ia32_pause();
    }
    seen = g + 1;
}

__attribute__((noinline)) float read_all(const float* p, std::size_t n) {
    float sums[16] = {};
    for (std::size_t j = 0; j + 16 <= n; j += 16)
        for (int l = 0; l < 16; ++l) sums[l] += p[j + l];
    float s = 0;
    for (float v : sums) s += v;
    return s;
}

__attribute__((noinline)) void write_all(float* p, std::size_t n, float v) {
    for (std::size_t j = 0; j < n; ++j) p[j] = v + float(j);
}

// Microseconds per step, best of 5 runs of `steps`: each thread reads `bytes` and writes as
// many, thread 0 reading [half, 2·half) of its buffer and writing [0, half), thread 1 the
// opposite. shared: one buffer for both threads, so each reads what the other wrote.
double step_us(std::size_t bytes, bool shared, int steps) {
    const std::size_t half = bytes / sizeof(float) / 16 * 16;
    std::vector<float> a(2 * half, 1.0f), b(2 * half, 1.0f);
    float* mine = a.data();
    float* theirs = shared ? a.data() : b.data();
    double best = 1e30;
    for (int run = 0; run < 5; ++run) {
        unsigned seen0 = generation.load(), seen1 = seen0;
        std::thread other([&] {
            volatile float sink = 0;
            for (int i = 0; i < steps; ++i) {
                barrier(seen1);
                sink = read_all(theirs, half);
                barrier(seen1);
                write_all(theirs + half, half, sink);
            }
            barrier(seen1);
        });
        float acc = 0;
        const auto t0 = std::chrono::steady_clock::now();
        for (int i = 0; i < steps; ++i) {
            barrier(seen0);
            acc += read_all(mine + half, half);
            barrier(seen0);
            write_all(mine, half, acc);
        }
        barrier(seen0);
        const auto t1 = std::chrono::steady_clock::now();
        other.join();
        best = std::min(best, std::chrono::duration<double, std::micro>(t1 - t0).count() / steps);
    }
    return best;
}

}  // namespace

int main() {
    std::printf("%10s %14s %14s %14s\n", "bytes read", "private (us)", "shared (us)", "exchange (us)");
    for (std::size_t bytes : {0, 17920, 35840, 71680}) {
        const double own = step_us(bytes, false, 20000);
        const double both = step_us(bytes, true, 20000);
        std::printf("%10zu %14.2f %14.2f %14.2f\n", bytes, own, both, both - own);
    }
}
