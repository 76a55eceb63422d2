#include "kernels/lanes.hpp"

#include "runtime/cpu.hpp"

namespace fastprop::lanes {

namespace {
template <class T> struct IsaKernels;
#if defined(FASTPROP_AVX2)
template <> struct IsaKernels<float> {
    static const Kernels<float>* avx2() { return &detail::avx2_f32(); }
    static const Kernels<float>* avx512() { return &detail::avx512_f32(); }
};
template <> struct IsaKernels<double> {
    static const Kernels<double>* avx2() { return &detail::avx2_f64(); }
    static const Kernels<double>* avx512() { return &detail::avx512_f64(); }
};
#endif
}  // namespace

template <class T> const Kernels<T>* kernels() {
    switch (kernel_isa()) {
#if defined(FASTPROP_AVX2)
        case Isa::avx512: return IsaKernels<T>::avx512();
        case Isa::avx2: return IsaKernels<T>::avx2();
#endif
        default: break;
    }
    return nullptr;  // portable: the micro-kernels sum without FMA, in another order
}

template const Kernels<float>* kernels<float>();
template const Kernels<double>* kernels<double>();

}  // namespace fastprop::lanes
