// fastprop._core: the only place that knows Python. Each register_*.cpp binds one concept;
// they convert, release the GIL, call the core and translate its exceptions, nothing more.
#include <pybind11/pybind11.h>

#include "runtime/threads.hpp"

namespace py = pybind11;

namespace fastprop::python {
void register_runtime(py::module_& m);
void register_train(py::module_& m);
void register_network(py::module_& m);
}  // namespace fastprop::python

// For threadpoolctl: its controller for fastprop (fastprop/_threadpool.py) finds the loaded
// extension by these symbols and reads and sets the core's threads through them.
extern "C" {
__attribute__((visibility("default"))) int fastprop_get_num_threads() {
    return static_cast<int>(fastprop::get_num_threads());
}
__attribute__((visibility("default"))) void fastprop_set_num_threads(int k) {
    if (k >= 1 && static_cast<std::size_t>(k) <= fastprop::max_threads())
        fastprop::set_num_threads(static_cast<std::size_t>(k));
}
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastprop's C++ core: forward pass and backpropagation on one parameter buffer.";
    fastprop::python::register_runtime(m);
    fastprop::python::register_train(m);
    fastprop::python::register_network(m);
}
