// The only file that knows Python: converts, checks shapes, releases the GIL, calls the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "network.hpp"

namespace py = pybind11;
namespace fp = fastprop;

namespace {

template <class T> using Array = py::array_t<T, py::array::c_style | py::array::forcecast>;

// A network with the workspace its calls share; the mutex keeps two Python threads from
// using the one workspace at once (the GIL is released while the core computes).
template <class T> struct Bound {
    Bound(const std::vector<std::size_t>& layers, const std::vector<std::string>& sigma,
          bool bias, const std::string& loss, std::uint64_t seed)
        : net(fp::Layout(layers, bias), activations(sigma), fp::loss_from_name(loss)) {
        net.init(seed);
    }

    static std::vector<fp::Activation> activations(const std::vector<std::string>& names) {
        std::vector<fp::Activation> sigma;
        for (const auto& name : names) sigma.push_back(fp::activation_from_name(name));
        return sigma;
    }

    fp::Network<T> net;
    fp::Workspace<T> ws;
    std::mutex mutex;
};

std::size_t rows(const py::array& a) { return static_cast<std::size_t>(a.shape(0)); }

void require_matrix(const py::array& a, std::size_t cols, const char* name) {
    if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(1)) != cols)
        throw std::invalid_argument(std::string(name) + " must have shape (t, " +
                                    std::to_string(cols) + ")");
}

void require_same_rows(const py::array& X, const py::array& Y) {
    if (X.shape(0) != Y.shape(0))
        throw std::invalid_argument("X and Y must have the same number of rows, got " +
                                    std::to_string(X.shape(0)) + " and " +
                                    std::to_string(Y.shape(0)));
}

// Runs Python's signal handlers from inside a GIL-free computation, at most every 20 ms;
// true (stop) when a handler raised, leaving that exception set for the caller.
class SignalPoll {
public:
    bool operator()() {
        const auto now = std::chrono::steady_clock::now();
        if (now - last_ < std::chrono::milliseconds(20)) return false;
        last_ = now;
        py::gil_scoped_acquire gil;
        return PyErr_CheckSignals() != 0;
    }

private:
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

const char* stop_name(fp::Stop stop) {
    switch (stop) {
        case fp::Stop::done: return "done";
        case fp::Stop::interrupted: return "interrupted";
        case fp::Stop::callback: return "callback";
        case fp::Stop::non_finite: return "non_finite";
    }
    return "?";
}

// Runs `work` on the network without the GIL; an interruption re-raises the exception the
// signal handler set.
template <class T, class Work> void run_nogil(Bound<T>& self, Work&& work) {
    bool interrupted = false;
    {
        py::gil_scoped_release no_gil;
        std::lock_guard<std::mutex> lock(self.mutex);
        try {
            work();
        } catch (const fp::Interrupted&) {
            interrupted = true;
        }
    }
    if (interrupted) throw py::error_already_set();
}

template <class T> void bind_network(py::module_& m, const char* name) {
    using B = Bound<T>;
    py::class_<B>(m, name)
        .def(py::init<const std::vector<std::size_t>&, const std::vector<std::string>&, bool,
                      const std::string&, std::uint64_t>(),
             py::arg("layers"), py::arg("activations"), py::arg("bias"), py::arg("loss"),
             py::arg("seed"))
        .def_property_readonly("layers", [](const B& self) { return self.net.layout().layers(); })
        .def_property_readonly("n_params", [](const B& self) { return self.net.n_params(); })
        .def_property_readonly("slices",
                               [](const B& self) {
                                   py::list out;
                                   const fp::Layout& L = self.net.layout();
                                   for (std::size_t i = 0; i < L.n(); ++i)
                                       out.append(py::make_tuple(L[i].l_in, L[i].l_out, L[i].W,
                                                                 L[i].b));
                                   return out;
                               })
        .def_property_readonly(
            "params",
            [](py::object self_obj) {
                B& self = self_obj.cast<B&>();
                // A view whose base is the network, so it keeps the network alive.
                return py::array_t<T>({static_cast<py::ssize_t>(self.net.n_params())},
                                      {static_cast<py::ssize_t>(sizeof(T))}, self.net.params(),
                                      self_obj);
            })
        .def("init", [](B& self, std::uint64_t seed) {
            run_nogil(self, [&] { self.net.init(seed); });
        })
        .def("forward",
             [](B& self, Array<T> X) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 Array<T> out({X.shape(0), static_cast<py::ssize_t>(self.net.layout().l_out())});
                 const T* x = X.data();
                 T* z_n = out.mutable_data();
                 SignalPoll poll;
                 run_nogil(self, [&] { fp::forward(self.net, x, rows(X), z_n, self.ws, poll); });
                 return out;
             })
        .def("trace",
             [](B& self, Array<T> X) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 const std::size_t t = rows(X), n = self.net.n();
                 const T* x = X.data();
                 fp::Workspace<T> ws;  // its own: a trace holds the whole batch at once
                 run_nogil(self, [&] { fp::forward_trace(self.net, x, t, ws); });
                 py::list z, a;
                 for (std::size_t i = 1; i <= n; ++i) {
                     const auto l_i = static_cast<py::ssize_t>(self.net.layout().layers()[i]);
                     const std::size_t count = t * static_cast<std::size_t>(l_i);
                     Array<T> z_i({static_cast<py::ssize_t>(t), l_i});
                     std::copy(ws.z(i), ws.z(i) + count, z_i.mutable_data());
                     z.append(z_i);
                     if (i < n) {
                         Array<T> a_i({static_cast<py::ssize_t>(t), l_i});
                         std::copy(ws.a(i), ws.a(i) + count, a_i.mutable_data());
                         a.append(a_i);
                     }
                 }
                 return py::make_tuple(z, a);
             })
        .def("loss",
             [](B& self, Array<T> X, Array<T> Y) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 require_matrix(Y, self.net.layout().l_out(), "Y");
                 require_same_rows(X, Y);
                 const T *x = X.data(), *y = Y.data();
                 double E = 0;
                 SignalPoll poll;
                 run_nogil(self, [&] { E = fp::loss(self.net, x, y, rows(X), self.ws, poll); });
                 return E;
             })
        .def("gradient",
             [](B& self, Array<T> X, Array<T> Y) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 require_matrix(Y, self.net.layout().l_out(), "Y");
                 require_same_rows(X, Y);
                 Array<T> grad({static_cast<py::ssize_t>(self.net.n_params())});
                 const T *x = X.data(), *y = Y.data();
                 T* g = grad.mutable_data();
                 double E = 0;
                 SignalPoll poll;
                 run_nogil(self, [&] {
                     E = fp::gradient(self.net, x, y, rows(X), g, self.ws, poll);
                 });
                 return py::make_tuple(E, grad);
             })
        .def("step",
             [](B& self, Array<T> X, Array<T> Y, double lr) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 require_matrix(Y, self.net.layout().l_out(), "Y");
                 require_same_rows(X, Y);
                 const T *x = X.data(), *y = Y.data();
                 double E = 0;
                 SignalPoll poll;
                 run_nogil(self, [&] {
                     E = fp::step(self.net, x, y, rows(X), fp::Sgd<T>{T(lr)}, self.ws, poll);
                 });
                 return E;
             })
        .def(
            "fit",
            [](B& self, Array<T> X, Array<T> Y, std::size_t epochs, double lr,
               std::size_t batch_size, bool shuffle, std::uint64_t seed, py::object epoch_end) {
                require_matrix(X, self.net.layout().l_in(), "X");
                require_matrix(Y, self.net.layout().l_out(), "Y");
                require_same_rows(X, Y);
                py::array_t<double> E(static_cast<py::ssize_t>(epochs));
                double* E_per_epoch = E.mutable_data();
                const T *x = X.data(), *y = Y.data();
                SignalPoll poll;
                fp::FitHooks hooks;
                hooks.poll = std::ref(poll);
                if (!epoch_end.is_none())
                    hooks.epoch_end = [&epoch_end](std::size_t epoch, double E_epoch) {
                        py::gil_scoped_acquire gil;
                        return epoch_end(epoch, E_epoch).template cast<bool>();
                    };
                fp::FitOptions options;
                options.epochs = epochs;
                options.batch_size = batch_size;
                options.shuffle = shuffle;
                options.seed = seed;
                fp::FitResult result;
                run_nogil(self, [&] {
                    result = fp::fit(self.net, x, y, rows(X), options, fp::Sgd<T>{T(lr)},
                                     E_per_epoch, self.ws, hooks);
                });
                py::object error = py::none();
                if (result.stop == fp::Stop::interrupted && PyErr_Occurred())
                    error = py::error_already_set().value();
                E.resize({static_cast<py::ssize_t>(result.epochs)});
                return py::make_tuple(E, stop_name(result.stop), error);
            },
            py::arg("X"), py::arg("Y"), py::arg("epochs"), py::arg("lr"), py::arg("batch_size"),
            py::arg("shuffle"), py::arg("seed"), py::arg("epoch_end"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastprop's C++ core: forward pass and backpropagation on one parameter buffer.";
    bind_network<double>(m, "Network64");
    bind_network<float>(m, "Network32");
    m.attr("activation_names") = fp::activation_names;
    m.attr("loss_names") = fp::loss_names;
}
