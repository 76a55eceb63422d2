#include "kernels/elementwise.hpp"

#include <cmath>
#include <cstddef>

#include "runtime/cpu.hpp"
#include "runtime/threads.hpp"

namespace fastprop::elementwise {

#if defined(FASTPROP_AVX2)
// elementwise_avx2.cpp and elementwise_avx512.cpp: the same loops, built for those
// instruction sets
#define FASTPROP_DECLARE(ret, name, params, args) template <class T> ret name params;
namespace avx2 {
FASTPROP_ELEMENTWISE_OPS(FASTPROP_DECLARE)
}
namespace avx512 {
FASTPROP_ELEMENTWISE_OPS(FASTPROP_DECLARE)
}
#undef FASTPROP_DECLARE

// Returns isa::f(args...) from the enclosing function where kernel_isa() allows that isa.
#define FASTPROP_DISPATCH(f, ...)                                   \
    switch (kernel_isa()) {                                         \
        case Isa::avx512: return avx512::f(__VA_ARGS__);            \
        case Isa::avx2: return avx2::f(__VA_ARGS__);                \
        default: break;                                             \
    }
#else
#define FASTPROP_DISPATCH(f, ...)
#endif

namespace {
#include "elementwise_loops.inc"
}  // namespace

// A pass over a parameter-sized vector of a large network (W3's 269k entries, W4's 3.1M)
// streams it from L3 or memory, tens to thousands of µs on the calling thread while the
// others wait; from this size on its two halves go to two threads. The arithmetic of each
// entry is unchanged, so the results are the same bits on any number of threads.
constexpr std::size_t split_min = std::size_t(1) << 16;

// f(half, k0, k1) over [0, n): once, with half 0, for the whole range, or for two halves
// (split at a multiple of 64 entries, whole cache lines) on two threads.
template <class F> void over_halves(std::size_t n, F&& f) {
    if (n < split_min || get_num_threads() < 2) {
        f(std::size_t(0), std::size_t(0), n);
        return;
    }
    struct Job {
        F* f;
        std::size_t mid, n;
    } job{&f, n / 2 / 64 * 64, n};
    threads::parallel_for(2, [](void* context, std::size_t half) {
        const Job& j = *static_cast<const Job*>(context);
        (*j.f)(half, half == 0 ? 0 : j.mid, half == 0 ? j.mid : j.n);
    }, &job);
}

template <class T> void add(T* y, const T* x, std::size_t n) {
    over_halves(n, [=](std::size_t, std::size_t k0, std::size_t k1) {
        FASTPROP_DISPATCH(add, y + k0, x + k0, k1 - k0)
        add_loop(y + k0, x + k0, k1 - k0);
    });
}

template <class T> bool all_finite(const T* v, std::size_t n) {
    bool finite[2] = {true, true};
    over_halves(n, [&](std::size_t half, std::size_t k0, std::size_t k1) {
        finite[half] = [&] {
            FASTPROP_DISPATCH(all_finite, v + k0, k1 - k0)
            return all_finite_loop(v + k0, k1 - k0);
        }();
    });
    return finite[0] && finite[1];
}

template <class T> void sgd(T* p, const T* g, T lr, std::size_t n) {
    over_halves(n, [=](std::size_t, std::size_t k0, std::size_t k1) {
        FASTPROP_DISPATCH(sgd, p + k0, g + k0, lr, k1 - k0)
        sgd_loop(p + k0, g + k0, lr, k1 - k0);
    });
}

template <class T> bool sgd_keep(T* p, T* g, T lr, std::size_t n) {
    bool finite[2] = {true, true};
    over_halves(n, [&](std::size_t half, std::size_t k0, std::size_t k1) {
        finite[half] = [&] {
            FASTPROP_DISPATCH(sgd_keep, p + k0, g + k0, lr, k1 - k0)
            return sgd_keep_loop(p + k0, g + k0, lr, k1 - k0);
        }();
    });
    return finite[0] && finite[1];
}

template <class T>
void adam(T* p, T* m, T* v, const T* g, const AdamStep<T>& c, std::size_t n) {
    over_halves(n, [=, &c](std::size_t, std::size_t k0, std::size_t k1) {
        FASTPROP_DISPATCH(adam, p + k0, m + k0, v + k0, g + k0, c, k1 - k0)
        adam_loop(p + k0, m + k0, v + k0, g + k0, c, k1 - k0);
    });
}

template <class T>
bool adam_is_finite(const T* p, const T* m, const T* v, const T* g, const AdamStep<T>& c,
                    std::size_t n) {
    bool finite[2] = {true, true};
    over_halves(n, [&](std::size_t half, std::size_t k0, std::size_t k1) {
        finite[half] = [&] {
            FASTPROP_DISPATCH(adam_is_finite, p + k0, m + k0, v + k0, g + k0, c, k1 - k0)
            return adam_is_finite_loop(p + k0, m + k0, v + k0, g + k0, c, k1 - k0);
        }();
    });
    return finite[0] && finite[1];
}

#define FASTPROP_DEFINE(ret, name, params, args)                                              \
    template <class T> ret name params {                                                       \
        FASTPROP_DISPATCH(name, FASTPROP_UNPACK args)                                          \
        return name##_loop args;                                                               \
    }
#define FASTPROP_UNPACK(...) __VA_ARGS__
FASTPROP_ELEMENTWISE_BLOCK_OPS(FASTPROP_DEFINE)
#undef FASTPROP_UNPACK
#undef FASTPROP_DEFINE

#undef FASTPROP_DISPATCH

// Explicit instantiations: T is a macro for the two lines that expand the list.
#define FASTPROP_INSTANTIATE(ret, name, params, args) template ret name<T> params;
#define T float
FASTPROP_ELEMENTWISE_OPS(FASTPROP_INSTANTIATE)
#undef T
#define T double
FASTPROP_ELEMENTWISE_OPS(FASTPROP_INSTANTIATE)
#undef T
#undef FASTPROP_INSTANTIATE

}  // namespace fastprop::elementwise
