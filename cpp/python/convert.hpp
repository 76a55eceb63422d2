// What the register_*.cpp files share: array conversion and shape checks, running the core
// without the GIL, polling Python's signal handlers, and the interpreter's shutdown.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <thread>
#include <tuple>
#include <utility>

#include "model/params_gate.hpp"
#include "runtime/interrupt.hpp"

namespace fastprop::python {

namespace py = pybind11;

template <class T> using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

// The values of a py::enum_ from the core's list of structs (each with `id` and `name`).
template <class List, class Enum, std::size_t... k>
void enum_values(py::enum_<Enum>& e, std::index_sequence<k...>) {
    (e.value(std::tuple_element_t<k, List>::name, std::tuple_element_t<k, List>::id), ...);
}
template <class List, class Enum> void enum_values(py::enum_<Enum>& e) {
    enum_values<List>(e, std::make_index_sequence<std::tuple_size_v<List>>());
}

inline std::size_t rows(const py::array& a) { return static_cast<std::size_t>(a.shape(0)); }

inline void require_matrix(const py::array& a, std::size_t cols, const char* name) {
    if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != cols)
        throw std::invalid_argument(std::string(name) + " must have shape (t, " +
                                    std::to_string(cols) + ")");
}

inline void require_rows(const py::array& a, std::size_t t, const char* name) {
    if (static_cast<std::size_t>(a.shape(0)) != t)
        throw std::invalid_argument(std::string(name) + " must have " + std::to_string(t) +
                                    " rows, as X has, got " + std::to_string(a.shape(0)));
}

inline void require_vector(const py::array& a, std::size_t n, const char* name) {
    if (a.ndim() != 1 || static_cast<std::size_t>(a.shape(0)) != n)
        throw std::invalid_argument(std::string(name) + " must have shape (" +
                                    std::to_string(n) + ",)");
}

inline bool interpreter_finalizing() {
#if PY_VERSION_HEX >= 0x030D0000
    return Py_IsFinalizing() != 0;
#else
    return _Py_IsFinalizing() != 0;
#endif
}

// A thread that comes back from the core while the interpreter shuts down (a daemon thread
// at exit) must not take the GIL: CPython would end it in the middle of C++ frames. It waits
// here instead, holding nothing of the core's threads, until the process is gone.
[[noreturn]] inline void park_forever() {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

inline void restore_gil(PyThreadState* state) {
    if (interpreter_finalizing()) park_forever();
    PyEval_RestoreThread(state);
}

// work() without the GIL; its result, or its exception, once the GIL is back.
template <class Work> decltype(auto) without_gil(Work&& work) {
    PyThreadState* state = PyEval_SaveThread();
    try {
        if constexpr (std::is_void_v<decltype(work())>) {
            work();
            restore_gil(state);
        } else {
            decltype(auto) out = work();
            restore_gil(state);
            return out;
        }
    } catch (...) {
        restore_gil(state);
        throw;
    }
}

// fn() with the GIL, from a thread of the core.
template <class Fn> decltype(auto) with_gil(Fn&& fn) {
    if (interpreter_finalizing()) park_forever();
    py::gil_scoped_acquire gil;
    return fn();
}

// A poll for the core: runs Python's signal handlers (Ctrl-C's among them) at most every
// 20 ms; true (stop) when a handler raised, leaving its exception set for the binding to
// re-raise. With a gate, the parameters count as between two updates while it runs, so a
// handler may take a snapshot.
inline Poll signal_poll(ParamsGate* gate = nullptr) {
    return ThrottledPoll([gate] {
        ParamsGate::Parked parked(gate);
        return with_gil([] { return PyErr_CheckSignals() != 0; });
    });
}

// After the core returned Interrupted: the exception the signal handler set.
[[noreturn]] inline void raise_interrupted() {
    if (PyErr_Occurred()) throw py::error_already_set();
    PyErr_SetNone(PyExc_KeyboardInterrupt);
    throw py::error_already_set();
}

// work() without the GIL, Interrupted turned into the signal handler's exception.
template <class Work> decltype(auto) run_core(Work&& work) {
    try {
        return without_gil(std::forward<Work>(work));
    } catch (const Interrupted&) {
        raise_interrupted();
    }
}

}  // namespace fastprop::python
