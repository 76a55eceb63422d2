// Threads, the kernels in use, and the settings read from the environment.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "runtime/cpu.hpp"
#include "runtime/settings.hpp"
#include "runtime/threads.hpp"

namespace py = pybind11;

namespace fastprop::python {

void register_runtime(py::module_& m) {
    m.def("set_num_threads", [](std::size_t k) { set_num_threads(k); }, py::arg("k"),
          "Use k threads (1 <= k <= max_threads()) for every network of the process.");
    m.def("get_num_threads", [] { return get_num_threads(); });
    m.def("max_threads", [] { return max_threads(); },
          "The most threads fastprop uses: max(64, 4 x the number of CPUs).");
    m.def("kernel_isa", [] { return std::string(isa_name(kernel_isa())); },
          "The kernels in use: 'avx512', 'avx2' or 'portable'.");
    m.def(
        "ignored_settings",
        [] {
            py::list out;
            for (const IgnoredSetting& s : ignored_settings())
                out.append(py::make_tuple(s.variable, s.value, s.effect));
            return out;
        },
        "(variable, value, effect) for each environment setting the core ignored or capped.");
}

}  // namespace fastprop::python
