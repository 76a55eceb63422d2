// Threads, the kernels in use, and the settings read from the environment.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "convert.hpp"
#include "kernels/activations.hpp"

#include <map>
#include <optional>
#include <string>

#include "runtime/cpu.hpp"
#include "runtime/peak.hpp"
#include "runtime/settings.hpp"
#include "runtime/threads.hpp"

namespace py = pybind11;

namespace fastprop::python {

namespace {

// (σ(z), σ'(z) or None) by the kernels the passes use, for tests of their accuracy.
template <class T> py::tuple activation_pass(const std::string& name, Array<T> z, bool keep_prime) {
    const Activation f = activation_from_name(name);
    if (z.ndim() != 1)
        throw std::invalid_argument("z must be one-dimensional, got " + std::to_string(z.ndim()) +
                                    " dimensions");
    const auto count = static_cast<std::size_t>(z.shape(0));
    py::array_t<T> a(static_cast<py::ssize_t>(count));
    py::array_t<T> prime(static_cast<py::ssize_t>(count));
    std::copy(z.data(), z.data() + count, prime.mutable_data());
    {
        py::gil_scoped_release nogil;
        if (keep_prime)
            apply_sigma_keep_prime(f, a.mutable_data(), prime.mutable_data(), count);
        else
            apply_sigma(f, a.mutable_data(), static_cast<const T*>(prime.data()), count);
    }
    return py::make_tuple(a, keep_prime ? py::object(prime) : py::object(py::none()));
}

}  // namespace

void register_runtime(py::module_& m) {
    m.def("set_num_threads", [](long long k) { set_num_threads(k); }, py::arg("k"),
          "Use k threads (1 <= k <= max_threads()) for every network of the process.");
    m.def("get_num_threads", [] { return get_num_threads(); });
    m.def("max_threads", [] { return max_threads(); },
          "The most threads fastprop uses: max(64, 4 x the number of CPUs).");
    m.def("kernel_isa", [] { return std::string(isa_name(kernel_isa())); },
          "The kernels in use: 'avx512', 'avx2' or 'portable'.");
    m.def("_activation_pass32", &activation_pass<float>, py::arg("activation"), py::arg("z"),
          py::arg("keep_prime"),
          "(σ(z), σ'(z) if keep_prime else None) for a 1-D float32 z, by the kernels in use.");
    m.def("_activation_pass64", &activation_pass<double>, py::arg("activation"), py::arg("z"),
          py::arg("keep_prime"),
          "(σ(z), σ'(z) if keep_prime else None) for a 1-D float64 z, by the kernels in use.");
    m.def(
        "fma_peak",
        [](const std::string& dtype, std::int64_t threads, double seconds) {
            py::gil_scoped_release nogil;
            return fma_peak(dtype.c_str(), threads, seconds);
        },
        py::arg("dtype"), py::arg("threads"), py::arg("seconds"),
        "GFLOP/s of `threads` threads running chains of fused multiply-adds in dtype "
        "('float32' or 'float64') for about `seconds`, with the kernels' instructions.");
    m.def(
        "ignored_settings",
        [](std::optional<std::map<std::string, std::string>> environ) {
            std::vector<IgnoredSetting> ignored;
            if (environ) {
                ignored = ignored_settings([&](const char* name) -> const char* {
                    const auto found = environ->find(name);
                    return found == environ->end() ? nullptr : found->second.c_str();
                });
            } else {
                ignored = ignored_settings();
            }
            py::list out;
            for (const IgnoredSetting& s : ignored)
                out.append(py::make_tuple(s.variable, s.value, s.effect));
            return out;
        },
        py::arg("environ") = py::none(),
        "(variable, value, effect) for each setting of the environment (or of `environ`) "
        "that the core ignores or caps.");
}

}  // namespace fastprop::python
