// Correctness of fastprop::gemm against a plain triple loop: every size 0..70 in each dimension,
// all four (ta, tb), padded leading dimensions, accumulate on and off, float and double, both
// kernel sets (AVX-512, AVX2, portable: those this CPU has); bit-identical results for 1, 2
// and 3 threads, and for the AVX2 and AVX-512 kernels; the epilogue called once per element
// of C after its sum is complete, its bias and scale the bits of separate passes, its finite
// check catching inf; concurrent callers; fork.
// Exits non-zero on the first failure class, printing what failed.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/gemm.hpp"
#include "runtime/threads.hpp"

using fastprop::Trans;
using std::size_t;

namespace {

int g_failures = 0;

void fail(const std::string& what) {
    if (++g_failures <= 20) std::fprintf(stderr, "FAIL: %s\n", what.c_str());
}

// Relative to Σ_k |a_ik b_kj| (+ |C0|): rounding error grows with K times that, and
// cancellation makes |C| itself a useless yardstick. float: sqrt(K)·eps ≈ 2e-6 at K = 1000.
template <class T> constexpr double tolerance = 0.0;
template <> constexpr double tolerance<float> = 1e-5;
template <> constexpr double tolerance<double> = 1e-13;

template <class T>
struct Case {
    Trans ta, tb;
    size_t M, N, K, lda, ldb, ldc;
    bool accumulate;
    std::vector<T> A, B, C0;
};

std::mt19937_64 g_rng(12345);

template <class T>
std::vector<T> random_values(size_t n) {
    std::uniform_real_distribution<double> u(-1.0, 1.0);
    std::vector<T> v(n);
    for (T& x : v) x = static_cast<T>(u(g_rng));
    return v;
}

template <class T>
Case<T> make_case(Trans ta, Trans tb, size_t M, size_t N, size_t K, size_t pad, bool accumulate) {
    Case<T> c{ta, tb, M, N, K, 0, 0, 0, accumulate, {}, {}, {}};
    c.lda = (ta == Trans::N ? K : M) + pad;
    c.ldb = (tb == Trans::N ? N : K) + pad;
    c.ldc = N + pad;
    const size_t a_rows = ta == Trans::N ? M : K, b_rows = tb == Trans::N ? K : N;
    c.A = random_values<T>(a_rows * c.lda + 1);
    c.B = random_values<T>(b_rows * c.ldb + 1);
    c.C0 = random_values<T>(M * c.ldc + 1);
    if (!accumulate)  // C must be written, never read: NaN would leak into the result
        for (size_t i = 0; i < M; ++i)
            for (size_t j = 0; j < N; ++j)
                c.C0[i * c.ldc + j] = std::numeric_limits<T>::quiet_NaN();
    return c;
}

template <class T>
std::vector<T> run(const Case<T>& c) {
    std::vector<T> C = c.C0;
    fastprop::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, c.A.data(), c.lda, c.B.data(), c.ldb,
                      c.accumulate, C.data(), c.ldc);
    return C;
}

template <class T>
std::string describe(const Case<T>& c) {
    char s[200];
    std::snprintf(s, sizeof s, "%s ta=%c tb=%c M=%zu N=%zu K=%zu lda=%zu ldb=%zu ldc=%zu acc=%d",
                  sizeof(T) == 4 ? "float" : "double", c.ta == Trans::N ? 'N' : 'T',
                  c.tb == Trans::N ? 'N' : 'T', c.M, c.N, c.K, c.lda, c.ldb, c.ldc,
                  c.accumulate ? 1 : 0);
    return s;
}

// The reference loop is the test's own arithmetic on vectors it sized itself: the sanitizers
// would only slow it (half the gemm test's time under ASan); the products it checks stay
// instrumented.
template <class T>
__attribute__((no_sanitize("address", "undefined"))) void check_against_loop(const Case<T>& c, const std::vector<T>& C) {
    for (size_t i = 0; i < c.M; ++i) {
        for (size_t j = 0; j < c.N; ++j) {
            double sum = 0.0, scale = 0.0;
            for (size_t k = 0; k < c.K; ++k) {
                const double a = c.ta == Trans::N ? c.A[i * c.lda + k] : c.A[k * c.lda + i];
                const double b = c.tb == Trans::N ? c.B[k * c.ldb + j] : c.B[j * c.ldb + k];
                sum += a * b;
                scale += std::fabs(a * b);
            }
            if (c.accumulate) {
                sum += c.C0[i * c.ldc + j];
                scale += std::fabs(c.C0[i * c.ldc + j]);
            }
            const double got = C[i * c.ldc + j];
            if (!(std::fabs(got - sum) <= tolerance<T> * scale + 1e-300)) {
                char s[120];
                std::snprintf(s, sizeof s, " at (%zu, %zu): got %.17g, expected %.17g", i, j,
                              got, sum);
                fail(describe(c) + s);
                return;
            }
        }
    }
    // the padding between rows of C and the element past the end stay untouched
    for (size_t i = 0; i < c.M; ++i)
        for (size_t j = c.N; j < c.ldc; ++j)
            if (std::memcmp(&C[i * c.ldc + j], &c.C0[i * c.ldc + j], sizeof(T)) != 0)
                return fail(describe(c) + " wrote into the padding of C");
    if (std::memcmp(&C.back(), &c.C0.back(), sizeof(T)) != 0)
        fail(describe(c) + " wrote past the end of C");
}

// The epilogue must see each element of C exactly once, inside C, after its sum is complete:
// this one counts its visits and doubles what it finds (exact), so the result must be
// twice the result without an epilogue, bit for bit.
template <class T> struct Visits {
    const T* C;
    size_t M, N, ldc;
    std::vector<int> count;
    bool outside = false;
};

template <class T>
void double_and_count(const void* context, T* block, size_t ldc, size_t i0, size_t m, size_t j0,
                      size_t n) {
    Visits<T>& v = *static_cast<Visits<T>*>(const_cast<void*>(context));
    if (ldc != v.ldc || i0 + m > v.M || j0 + n > v.N || block != v.C + i0 * ldc + j0) {
        v.outside = true;
        return;
    }
    for (size_t r = 0; r < m; ++r)
        for (size_t j = 0; j < n; ++j) {
            ++v.count[(i0 + r) * v.N + j0 + j];
            block[r * ldc + j] *= T(2);
        }
}

template <class T>
void check_epilogue(const Case<T>& c, const std::vector<T>& plain) {
    std::vector<T> C = c.C0;
    Visits<T> visits{C.data(), c.M, c.N, c.ldc, std::vector<int>(c.M * c.N, 0)};
    fastprop::Epilogue<T> epilogue;
    epilogue.apply = &double_and_count<T>;
    epilogue.context = &visits;
    fastprop::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, c.A.data(), c.lda, c.B.data(), c.ldb,
                      c.accumulate, C.data(), c.ldc, epilogue);
    if (visits.outside) return fail(describe(c) + " epilogue given a block outside C");
    for (size_t i = 0; i < c.M; ++i)
        for (size_t j = 0; j < c.N; ++j) {
            const T twice = plain[i * c.ldc + j] * T(2);
            if (visits.count[i * c.N + j] != 1)
                return fail(describe(c) + " epilogue visited an element " +
                            std::to_string(visits.count[i * c.N + j]) + " times");
            if (std::memcmp(&C[i * c.ldc + j], &twice, sizeof(T)) != 0)
                return fail(describe(c) + " epilogue saw an unfinished sum");
        }
}

// The register part of the epilogue: + bias[j], then × scale[i][j], must give the bits of
// two passes over the plain result, leave C's padding alone, and check_finite must report an
// inf brought in by scale, and one that comes out of the sum itself (inf in a row of A).
template <class T>
void check_tile_end(const Case<T>& c, const std::vector<T>& plain, size_t variant) {
    const size_t ld_scale = c.N + variant % 3;
    std::vector<T> bias = random_values<T>(c.N + 1), scale = random_values<T>(c.M * ld_scale + 1);
    fastprop::Epilogue<T> epilogue;
    epilogue.bias = bias.data();
    epilogue.scale = scale.data();
    epilogue.ld_scale = ld_scale;
    epilogue.check_finite = true;
    const auto run_end = [&](const Case<T>& with, std::vector<T>& C) {
        C = with.C0;
        return fastprop::gemm<T>(with.ta, with.tb, with.M, with.N, with.K, with.A.data(),
                                 with.lda, with.B.data(), with.ldb, with.accumulate, C.data(),
                                 with.ldc, epilogue);
    };
    std::vector<T> C;
    if (!run_end(c, C)) return fail(describe(c) + " check_finite saw inf or NaN in finite data");
    for (size_t i = 0; i < c.M; ++i) {
        for (size_t j = 0; j < c.N; ++j) {
            const T expected = (plain[i * c.ldc + j] + bias[j]) * scale[i * ld_scale + j];
            if (std::memcmp(&C[i * c.ldc + j], &expected, sizeof(T)) != 0)
                return fail(describe(c) + " bias and scale in registers differ from two passes");
        }
        for (size_t j = c.N; j < c.ldc; ++j)
            if (std::memcmp(&C[i * c.ldc + j], &c.C0[i * c.ldc + j], sizeof(T)) != 0)
                return fail(describe(c) + " bias and scale wrote into the padding of C");
    }
    if (c.M == 0 || c.N == 0) return;
    const size_t i = variant % c.M, j = variant / 3 % c.N;
    scale[i * ld_scale + j] = std::numeric_limits<T>::infinity();
    if (run_end(c, C))
        return fail(describe(c) + " check_finite missed an inf at (" + std::to_string(i) + ", " +
                    std::to_string(j) + ")");
    if (c.K == 0) return;
    scale[i * ld_scale + j] = T(1);
    epilogue.bias = nullptr;
    epilogue.scale = nullptr;
    Case<T> bad = c;  // op(A)[i][k] = inf: row i of C is ±inf or NaN
    const size_t k = variant % c.K;
    bad.A[c.ta == Trans::N ? i * c.lda + k : k * c.lda + i] = std::numeric_limits<T>::infinity();
    if (run_end(bad, C))
        fail(describe(c) + " check_finite missed an inf in row " + std::to_string(i) + " of C");
}

constexpr Trans trans_values[2] = {Trans::N, Trans::T};

template <class T>
void check_shape(size_t M, size_t N, size_t K, size_t variant) {
    for (Trans ta : trans_values)
        for (Trans tb : trans_values) {
            const Case<T> c = make_case<T>(ta, tb, M, N, K, variant % 3 == 0 ? 0 : 3 + variant % 5,
                                           variant % 2 == 1);
            const std::vector<T> C = run(c);
            check_against_loop(c, C);
            if (variant % 4 == 0) check_epilogue(c, C);
            if (variant % 4 == 1) check_tile_end(c, C, variant);
        }
}

template <class T>
void check_small_sizes() {
    // Full cube over the sizes where the blocking changes (micro-tile 6 x 16 / 6 x 8 in AVX2,
    // 12 x 32 / 12 x 16 in AVX-512, portable 4 x 8 / 4 x 4), and every value 0..70 in each
    // dimension against a few partners.
    const size_t cube[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 13, 15, 16, 17, 23, 24, 25, 31, 32, 33, 47, 49, 64, 70};
    size_t variant = 0;
    for (size_t M : cube)
        for (size_t N : cube)
            for (size_t K : cube) check_shape<T>(M, N, K, variant++);
    const size_t partners[] = {1, 7, 16, 33, 70};
    for (size_t v = 0; v <= 70; ++v)
        for (size_t p : partners)
            for (size_t q : partners) {
                check_shape<T>(v, p, q, variant++);
                check_shape<T>(p, v, q, variant++);
                check_shape<T>(p, q, v, variant++);
            }
}

// Big enough to use the pool and several (KC) slices of k.
template <class T>
void check_threads_identical() {
    struct Shape { size_t M, N, K; };
    const Shape shapes[] = {{300, 517, 700}, {1000, 37, 513}, {7, 2000, 300},
                            {96, 1024, 1100}, {129, 130, 1030}, {2000, 5, 600}};
    size_t variant = 1;
    for (const Shape& s : shapes)
        for (Trans ta : trans_values)
            for (Trans tb : trans_values) {
                const Case<T> c = make_case<T>(ta, tb, s.M, s.N, s.K, variant % 3, variant % 2 == 0);
                ++variant;
                fastprop::set_num_threads(1);
                const std::vector<T> serial = run(c);
                check_against_loop(c, serial);
                for (size_t threads : {2, 3}) {
                    fastprop::set_num_threads(threads);
                    const std::vector<T> parallel = run(c);
                    if (std::memcmp(parallel.data(), serial.data(), serial.size() * sizeof(T)) != 0)
                        fail(describe(c) + " differs between 1 and " + std::to_string(threads) +
                             " threads");
                    check_epilogue(c, serial);
                    check_tile_end(c, serial, variant + threads);
                }
            }
}

// AVX2 and AVX-512 kernels take the same FMA chains in the same order: the same bits, for
// tiles of either width, edges, several k slices and in-place B.
template <class T>
void check_same_bits_across_isas() {
    using fastprop::Isa;
    using fastprop::set_max_isa;
    set_max_isa(Isa::avx512);
    if (fastprop::kernel_isa() != Isa::avx512) return;
    struct Shape { size_t M, N, K; };
    const Shape shapes[] = {{1, 1, 70},   {11, 31, 9},     {12, 32, 256}, {13, 33, 257},
                            {25, 70, 600}, {32, 64, 64},   {300, 517, 700}, {200, 10, 64},
                            {64, 100, 1030}, {7, 2000, 300}};
    size_t variant = 0;
    for (const Shape& s : shapes)
        for (Trans ta : trans_values)
            for (Trans tb : trans_values) {
                const Case<T> c = make_case<T>(ta, tb, s.M, s.N, s.K, variant % 3, variant % 2 == 0);
                ++variant;
                set_max_isa(Isa::avx512);
                const std::vector<T> wide = run(c);
                set_max_isa(Isa::avx2);
                const std::vector<T> narrow = run(c);
                set_max_isa(Isa::avx512);
                if (std::memcmp(wide.data(), narrow.data(), wide.size() * sizeof(T)) != 0)
                    fail(describe(c) + " differs between the AVX-512 and AVX2 kernels");
            }
}

// With the SIMD kernels and K within one k slice (KC = 256), each element of C is one FMA
// chain over k ascending from zero, then + C, + bias, × scale: the small path (products of up
// to 4096 multiply-adds) and the blocked one alike. Code that reproduces a product's bits
// elsewhere (several networks in the lanes of one vector) relies on it.
template <class T>
void check_fma_chains(fastprop::Isa isa) {
    using fastprop::Isa;
    fastprop::set_max_isa(isa);
    if (fastprop::kernel_isa() != isa || isa == Isa::portable) return;
    struct Shape { size_t M, N, K; };
    const Shape shapes[] = {{4, 8, 2},   {4, 8, 8},   {4, 1, 8},   {1, 8, 4},   {8, 2, 4},
                            {16, 16, 8}, {17, 33, 7}, {3, 70, 19}, {1, 1, 256}, {64, 64, 64},
                            {13, 100, 256}, {16, 1, 16}, {70, 1, 33}, {9, 1, 256},
                            // one row (a single sample): four vectors of columns at a time
                            {1, 64, 64}, {1, 130, 31}, {1, 70, 19}};
    size_t variant = 0;
    for (const Shape& s : shapes)
        for (Trans ta : trans_values)
            for (Trans tb : trans_values) {
                const Case<T> c = make_case<T>(ta, tb, s.M, s.N, s.K, variant % 3, variant % 2 == 0);
                ++variant;
                std::vector<T> bias = random_values<T>(c.N), scale = random_values<T>(c.M * c.N);
                fastprop::Epilogue<T> epilogue;
                epilogue.bias = bias.data();
                epilogue.scale = scale.data();
                epilogue.ld_scale = c.N;
                std::vector<T> C = c.C0;
                fastprop::gemm<T>(c.ta, c.tb, c.M, c.N, c.K, c.A.data(), c.lda, c.B.data(), c.ldb,
                                  c.accumulate, C.data(), c.ldc, epilogue);
                for (size_t i = 0; i < c.M; ++i)
                    for (size_t j = 0; j < c.N; ++j) {
                        T sum = T(0);
                        for (size_t k = 0; k < c.K; ++k)
                            sum = std::fma(c.ta == Trans::N ? c.A[i * c.lda + k] : c.A[k * c.lda + i],
                                           c.tb == Trans::N ? c.B[k * c.ldb + j] : c.B[j * c.ldb + k],
                                           sum);
                        if (c.accumulate) sum = c.C0[i * c.ldc + j] + sum;
                        const T expected = (sum + bias[j]) * scale[i * c.N + j];
                        if (std::memcmp(&C[i * c.ldc + j], &expected, sizeof(T)) != 0) {
                            fail(describe(c) + " is not one FMA chain per element (" +
                                 fastprop::isa_name(isa) + ")");
                            i = c.M;
                            break;
                        }
                    }
            }
    fastprop::set_max_isa(Isa::avx512);
}

// Two user threads at once, each with pool-sized work: no deadlock, same bits as alone.
template <class T>
void check_concurrent_callers() {
    fastprop::set_num_threads(2);
    const Case<T> a = make_case<T>(Trans::N, Trans::T, 256, 512, 384, 0, false);
    const Case<T> b = make_case<T>(Trans::T, Trans::N, 384, 256, 512, 1, true);
    const std::vector<T> alone_a = run(a), alone_b = run(b);
    std::vector<int> same(2, 1);
    std::thread other([&] {
        for (int r = 0; r < 30; ++r)
            if (std::memcmp(run(b).data(), alone_b.data(), alone_b.size() * sizeof(T)) != 0) same[1] = 0;
    });
    for (int r = 0; r < 30; ++r)
        if (std::memcmp(run(a).data(), alone_a.data(), alone_a.size() * sizeof(T)) != 0) same[0] = 0;
    other.join();
    if (!same[0] || !same[1]) fail("concurrent callers changed a result");
}

// After fork() the child has none of the parent's workers; gemm there must still finish.
void check_fork() {
    fastprop::set_num_threads(2);
    const Case<double> c = make_case<double>(Trans::N, Trans::N, 256, 256, 512, 0, false);
    const std::vector<double> parent = run(c);
    const pid_t pid = fork();
    if (pid == 0) {
        alarm(20);  // a deadlock shows up as a failure, not a hung test
        const std::vector<double> child = run(c);
        _exit(std::memcmp(child.data(), parent.data(), parent.size() * sizeof(double)) == 0 ? 0 : 1);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) fail("gemm after fork");
}

}  // namespace

// --threads-only skips the size sweep (for a ThreadSanitizer build, which is slow)
int main(int argc, char** argv) {
    const bool threads_only = argc > 1 && std::strcmp(argv[1], "--threads-only") == 0;
    using fastprop::Isa;
    for (Isa isa : {Isa::avx512, Isa::avx2, Isa::portable}) {
        fastprop::set_max_isa(isa);
        if (fastprop::kernel_isa() != isa) {  // this CPU or build lacks it
            std::printf("%s kernels: not available here\n", fastprop::isa_name(isa));
            continue;
        }
        std::printf("%s kernels\n", fastprop::isa_name(isa));
        fastprop::set_num_threads(2);
        if (!threads_only) {
            check_small_sizes<float>();
            check_small_sizes<double>();
        }
        check_threads_identical<float>();
        check_threads_identical<double>();
    }
    for (Isa isa : {Isa::avx512, Isa::avx2}) {
        check_fma_chains<float>(isa);
        check_fma_chains<double>(isa);
    }
    fastprop::set_max_isa(Isa::avx512);
    check_same_bits_across_isas<float>();
    check_same_bits_across_isas<double>();
    check_concurrent_callers<float>();
    check_concurrent_callers<double>();
    check_fork();
    if (g_failures > 0) {
        std::fprintf(stderr, "%d failures\n", g_failures);
        return 1;
    }
    std::printf("all gemm checks passed\n");
    return 0;
}
