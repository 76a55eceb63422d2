// GFLOP/s (2·M·N·K per second) of fastprop::gemm next to OpenBLAS, timed in the same process
// with the same loop: the OpenBLAS that NumPy bundles is dlopen()ed (path as argv[1] or
// $OPENBLAS_LIB; bench_numpy.py prints it), so no link-time dependency. Shapes: the three
// calls of a dense layer (forward, dE_dW, dE_da) summed over the layers of each network, then
// square products. Each time is the best of 2-3 interleaved medians over 5-15 repeats of a
// batch of calls lasting >= 2 ms.
//   ./bench_gemm [libopenblas.so] [--threads 1,2] [--quick]
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/gemm.hpp"
#include "runtime/threads.hpp"

using fastprop::Trans;
using std::size_t;

namespace {

// CBLAS of scipy-openblas (64-bit integers, symbols with a scipy_ prefix and 64_ suffix)
using blasint = long;
constexpr int row_major = 101, no_trans = 111, trans = 112;
using sgemm_fn = void (*)(int, int, int, blasint, blasint, blasint, float, const float*, blasint,
                          const float*, blasint, float, float*, blasint);
using dgemm_fn = void (*)(int, int, int, blasint, blasint, blasint, double, const double*,
                          blasint, const double*, blasint, double, double*, blasint);
using set_threads_fn = void (*)(int);

struct OpenBlas {
    sgemm_fn sgemm = nullptr;
    dgemm_fn dgemm = nullptr;
    set_threads_fn set_threads = nullptr;
    bool loaded() const { return sgemm && dgemm && set_threads; }
};

OpenBlas load_openblas(const char* path) {
    OpenBlas o;
    if (path == nullptr) return o;
    void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
        std::fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
        return o;
    }
    o.sgemm = reinterpret_cast<sgemm_fn>(dlsym(h, "scipy_cblas_sgemm64_"));
    o.dgemm = reinterpret_cast<dgemm_fn>(dlsym(h, "scipy_cblas_dgemm64_"));
    o.set_threads = reinterpret_cast<set_threads_fn>(dlsym(h, "scipy_openblas_set_num_threads64_"));
    if (!o.loaded()) std::fprintf(stderr, "%s lacks the scipy_cblas_*64_ symbols\n", path);
    return o;
}

void blas_gemm(const OpenBlas& o, Trans ta, Trans tb, size_t M, size_t N, size_t K,
               const float* A, size_t lda, const float* B, size_t ldb, float* C, size_t ldc) {
    o.sgemm(row_major, ta == Trans::N ? no_trans : trans, tb == Trans::N ? no_trans : trans,
            blasint(M), blasint(N), blasint(K), 1.0f, A, blasint(lda), B, blasint(ldb), 0.0f, C,
            blasint(ldc));
}
void blas_gemm(const OpenBlas& o, Trans ta, Trans tb, size_t M, size_t N, size_t K,
               const double* A, size_t lda, const double* B, size_t ldb, double* C, size_t ldc) {
    o.dgemm(row_major, ta == Trans::N ? no_trans : trans, tb == Trans::N ? no_trans : trans,
            blasint(M), blasint(N), blasint(K), 1.0, A, blasint(lda), B, blasint(ldb), 0.0, C,
            blasint(ldc));
}

struct Call {
    Trans ta, tb;
    size_t M, N, K;
};

// One row of the table: a list of gemm calls timed together.
struct Row {
    std::string name;
    std::vector<Call> calls;
};

// z (t, l_out) = a W_iᵀ; dE_dW (l_out, l_in) = δᵀ a; dE_da (t, l_in) = δ W_i
std::vector<Row> network_rows(const std::vector<size_t>& layers, size_t t) {
    std::string net = "[";
    for (size_t i = 0; i < layers.size(); ++i) net += (i ? "," : "") + std::to_string(layers[i]);
    net += "] t=" + std::to_string(t);
    Row fwd{net + " forward", {}}, dW{net + " dE_dW", {}}, da{net + " dE_da", {}};
    for (size_t i = 0; i + 1 < layers.size(); ++i) {
        const size_t l_in = layers[i], l_out = layers[i + 1];
        fwd.calls.push_back({Trans::N, Trans::T, t, l_out, l_in});
        dW.calls.push_back({Trans::T, Trans::N, l_out, l_in, t});
        da.calls.push_back({Trans::N, Trans::N, t, l_in, l_out});
    }
    return {fwd, dW, da};
}

template <class T>
struct Operands {
    std::vector<std::vector<T>> A, B, C;
    explicit Operands(const std::vector<Call>& calls) {
        std::mt19937 rng(7);
        std::uniform_real_distribution<float> u(-1.0f, 1.0f);
        for (const Call& c : calls) {
            A.emplace_back(c.M * c.K);
            B.emplace_back(c.K * c.N);
            C.emplace_back(c.M * c.N);
            for (T& x : A.back()) x = u(rng);
            for (T& x : B.back()) x = u(rng);
        }
    }
};

double flops(const std::vector<Call>& calls) {
    double f = 0;
    for (const Call& c : calls) f += 2.0 * double(c.M) * double(c.N) * double(c.K);
    return f;
}

// Median seconds per execution of f over `repeats` batches, each batch >= min_batch long.
double median_seconds(const std::function<void()>& f, int repeats, double min_batch) {
    using clock = std::chrono::steady_clock;
    f();  // warm caches, grow buffers, start threads
    size_t batch = 1;
    for (;;) {
        const auto t0 = clock::now();
        for (size_t i = 0; i < batch; ++i) f();
        const double s = std::chrono::duration<double>(clock::now() - t0).count();
        if (s >= min_batch) break;
        batch = s <= 0 ? batch * 10 : std::max(batch + 1, size_t(double(batch) * min_batch * 1.2 / s));
    }
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = clock::now();
        for (size_t i = 0; i < batch; ++i) f();
        times.push_back(std::chrono::duration<double>(clock::now() - t0).count() / double(batch));
    }
    std::nth_element(times.begin(), times.begin() + repeats / 2, times.end());
    return times[size_t(repeats / 2)];
}

template <class T>
void bench_row(const Row& row, const OpenBlas& blas, const std::vector<size_t>& thread_counts,
               int repeats, int rounds) {
    Operands<T> ops(row.calls);
    auto ours = [&] {
        for (size_t i = 0; i < row.calls.size(); ++i) {
            const Call& c = row.calls[i];
            fastprop::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, ops.A[i].data(),
                              c.ta == Trans::N ? c.K : c.M, ops.B[i].data(),
                              c.tb == Trans::N ? c.N : c.K, false, ops.C[i].data(), c.N);
        }
    };
    auto theirs = [&] {
        for (size_t i = 0; i < row.calls.size(); ++i) {
            const Call& c = row.calls[i];
            blas_gemm(blas, c.ta, c.tb, c.M, c.N, c.K, ops.A[i].data(),
                      c.ta == Trans::N ? c.K : c.M, ops.B[i].data(),
                      c.tb == Trans::N ? c.N : c.K, ops.C[i].data(), c.N);
        }
    };
    const double gflop = flops(row.calls) * 1e-9;
    std::printf("| %-32s | %s |", row.name.c_str(), sizeof(T) == 4 ? "f32" : "f64");
    for (size_t threads : thread_counts) {
        fastprop::set_num_threads(threads);
        if (blas.loaded()) blas.set_threads(int(threads));
        // Best of interleaved medians, so a burst of load from a neighbour hurts both sides
        // alike; the pauses let OpenBLAS's workers stop spinning (they busy-wait after a call)
        // before our threads need the cores, and ours (100 µs of spinning) before theirs.
        double s_ours = 1e300, s_theirs = 1e300;
        for (int round = 0; round < rounds; ++round) {
            s_ours = std::min(s_ours, median_seconds(ours, repeats, 2e-3));
            if (!blas.loaded()) continue;
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            s_theirs = std::min(s_theirs, median_seconds(theirs, repeats, 2e-3));
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
        if (blas.loaded())
            std::printf(" %6.1f | %6.1f | %4.2f | %9.2f |", gflop / s_ours, gflop / s_theirs,
                        s_theirs / s_ours, s_ours * 1e6);
        else
            std::printf(" %6.1f | - | - | %9.2f |", gflop / s_ours, s_ours * 1e6);
        std::fflush(stdout);
    }
    std::printf("\n");
}

}  // namespace

int main(int argc, char** argv) {
    const char* lib = std::getenv("OPENBLAS_LIB");
    std::vector<size_t> thread_counts = {1, 2};
    bool quick = false, portable = false;
    std::string only;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--threads" && i + 1 < argc) {
            thread_counts.clear();
            for (const char* p = argv[++i]; *p;) {
                char* end = nullptr;
                thread_counts.push_back(std::strtoul(p, &end, 10));
                p = *end ? end + 1 : end;
            }
        } else if (arg == "--quick") {
            quick = true;
        } else if (arg == "--portable") {
            portable = true;
        } else if (arg == "--only" && i + 1 < argc) {
            only = argv[++i];
        } else {
            lib = argv[i];
        }
    }
    if (portable) fastprop::set_max_isa(fastprop::Isa::portable);
    const OpenBlas blas = load_openblas(lib);
    std::vector<Row> rows;
    for (const auto& [layers, t] : std::vector<std::pair<std::vector<size_t>, size_t>>{
             {{2, 8, 8, 1}, 4}, {{64, 64, 64, 10}, 32}, {{784, 256, 256, 10}, 128},
             {{1024, 1024, 1024, 1024}, 512}})
        for (Row& r : network_rows(layers, t)) rows.push_back(r);
    rows.push_back(network_rows({784, 256, 256, 10}, 4096)[0]);  // inference chunk (W5)
    for (size_t n : {256, 512, 1024, 2048})
        rows.push_back({"square " + std::to_string(n) + " (N,N)", {{Trans::N, Trans::N, n, n, n}}});
    const int repeats = quick ? 5 : 15, rounds = quick ? 2 : 3;
    std::printf("| shape | dtype |");
    for (size_t t : thread_counts)
        std::printf(" fastprop %zuT GF/s | OpenBLAS %zuT GF/s | ratio | fastprop %zuT µs |", t, t, t);
    std::printf("\n|---|---|");
    for (size_t t = 0; t < thread_counts.size(); ++t) std::printf("---|---|---|---|");
    std::printf("\n");
    for (int dtype = 0; dtype < 2; ++dtype)
        for (const Row& r : rows) {
            if (!only.empty() && r.name.find(only) == std::string::npos) continue;
            if (dtype == 0) bench_row<float>(r, blas, thread_counts, repeats, rounds);
            else bench_row<double>(r, blas, thread_counts, repeats, rounds);
        }
    return 0;
}
