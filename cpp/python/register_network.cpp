// Network32 and Network64: a Session of the core, and the calls Python makes on it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "python/convert.hpp"
#include "runtime/threads.hpp"
#include "train/lanes.hpp"
#include "train/session.hpp"

namespace fastprop::python {

namespace {

template <class T> struct Bound {
    Bound(const std::vector<std::size_t>& layers, const std::vector<Activation>& sigma, bool bias,
          Loss loss, std::uint64_t seed, double delta)
        : session(Network<T>(Layout(layers, bias), sigma, loss, delta)) {
        session.init(seed);
    }
    Session<T> session;
    std::optional<FitRecord> last_fit;  // of the last fit that ended, completed or not
    std::size_t parallel_ranks = 1;     // of the last fit
};

using Index = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

// A sparse X in compressed sparse rows: the arrays of any object with scipy.sparse's CSR
// attributes (data, indices, indptr, shape), as fastprop._sparse.CsrRows or a
// scipy.sparse.csr_matrix holds them, converted to the network's dtype and int64 indices
// (copies only when they differ) and checked here once, so that the core can index with them.
template <class T> struct PyCsr {
    explicit PyCsr(const py::object& X)
        : data(X.attr("data").cast<Array<T>>()), indices(X.attr("indices").cast<Index>()),
          indptr(X.attr("indptr").cast<Index>()) {
        const py::tuple shape = X.attr("shape");
        if (shape.size() != 2)
            throw std::invalid_argument("a sparse X must be 2-D, got " +
                                        std::to_string(shape.size()) + " dimensions");
        t = shape[0].cast<std::size_t>();
        cols = shape[1].cast<std::size_t>();
        if (data.ndim() != 1 || indices.ndim() != 1 || indptr.ndim() != 1)
            throw std::invalid_argument("a CSR matrix's data, indices and indptr must be 1-D");
        const std::size_t nnz = static_cast<std::size_t>(data.shape(0));
        if (static_cast<std::size_t>(indices.shape(0)) != nnz)
            throw std::invalid_argument("a CSR matrix's indices must have as many entries as "
                                        "its data (" + std::to_string(nnz) + "), got " +
                                        std::to_string(indices.shape(0)));
        if (static_cast<std::size_t>(indptr.shape(0)) != t + 1)
            throw std::invalid_argument("a CSR matrix of " + std::to_string(t) + " rows must "
                                        "have an indptr of " + std::to_string(t + 1) +
                                        " entries, got " + std::to_string(indptr.shape(0)));
        const std::int64_t* p = indptr.data();
        if (p[0] != 0 || static_cast<std::size_t>(p[t]) != nnz)
            throw std::invalid_argument("a CSR matrix's indptr must go from 0 to its number of "
                                        "entries (" + std::to_string(nnz) + ")");
        for (std::size_t s = 0; s < t; ++s)
            if (p[s + 1] < p[s])
                throw std::invalid_argument("a CSR matrix's indptr must not decrease");
        const std::int64_t* k = indices.data();
        for (std::size_t e = 0; e < nnz; ++e)
            if (k[e] < 0 || static_cast<std::size_t>(k[e]) >= cols)
                throw std::invalid_argument("a CSR matrix's column indices must be in [0, " +
                                            std::to_string(cols) + "), got " +
                                            std::to_string(k[e]));
    }
    CsrRows<T> view() const { return {indptr.data(), indices.data(), data.data()}; }

    Array<T> data;
    Index indices, indptr;
    std::size_t t = 0, cols = 0;
};

// X from Python: a dense array, or a sparse matrix in CSR; kept alive while the core reads it.
template <class T> struct PyX {
    std::optional<Array<T>> dense;
    std::shared_ptr<PyCsr<T>> csr;
    const T* X = nullptr;
    CsrRows<T> Xs;
    std::size_t t = 0;
};

template <class T> PyX<T> input_x(const py::object& X, std::size_t l_0, const char* name) {
    PyX<T> out;
    if (!py::isinstance<py::array>(X) && py::hasattr(X, "indptr")) {  // no lookup for arrays
        if (py::hasattr(X, "format") && X.attr("format").cast<std::string>() != "csr")
            throw std::invalid_argument(std::string(name) + " must be a CSR matrix here, got "
                                        "format " + X.attr("format").cast<std::string>() +
                                        " (convert it with .tocsr())");
        out.csr = std::make_shared<PyCsr<T>>(X);
        if (out.csr->cols != l_0)
            throw std::invalid_argument(std::string(name) + " must have shape (t, " +
                                        std::to_string(l_0) + "), got a sparse matrix of " +
                                        std::to_string(out.csr->cols) + " columns");
        out.Xs = out.csr->view();
        out.t = out.csr->t;
        return out;
    }
    out.dense = X.cast<Array<T>>();
    require_matrix(*out.dense, l_0, name);
    out.X = out.dense->data();
    out.t = rows(*out.dense);
    return out;
}

// A batch from Python: the converted arrays (kept alive) and the core's view of them.
template <class T> struct PyBatch {
    PyX<T> X;
    Array<T> Y;
    std::optional<Array<T>> w;
    Batch<T> batch;
};

template <class T>
PyBatch<T> make_batch(const Network<T>& net, const py::object& X, Array<T> Y, const py::object& w,
                      const char* x_name, const char* y_name, const char* w_name) {
    PyX<T> x = input_x<T>(X, net.layout().l_in(), x_name);
    require_matrix(Y, net.layout().l_out(), y_name);
    require_rows(Y, x.t, y_name);
    PyBatch<T> out{std::move(x), std::move(Y), std::nullopt, {}};
    if (!w.is_none()) {
        out.w = w.cast<Array<T>>();
        require_vector(*out.w, out.X.t, w_name);
    }
    out.batch = {out.X.X, out.Y.data(), out.w ? out.w->data() : nullptr, out.X.t, nullptr,
                 out.X.Xs};
    return out;
}

// The hooks of a fit from Python: Ctrl-C, and the callback(log) -> EpochControl or None,
// whose exception (kept in `error`) stops the fit and is raised after it. With `halt_all`
// (fit_many's), a KeyboardInterrupt or SystemExit from the callback (Ctrl-C while it ran)
// also stops every other fit of the call, as Ctrl-C between two updates would.
template <class T>
TrainHooks<T> python_hooks(Session<T>& session, const py::object& callback,
                           std::exception_ptr& error, Poll poll = {},
                           std::atomic<bool>* halt_all = nullptr) {
    TrainHooks<T> hooks;
    hooks.poll = poll ? std::move(poll) : signal_poll(&session.gate());
    if (!callback.is_none())
        hooks.epoch_end = [&callback, &error, halt_all](const EpochLog& log) {
            return with_gil([&] {
                const auto stop_fit = [&error] {
                    error = std::current_exception();
                    EpochControl stop;
                    stop.stop = true;
                    return stop;
                };
                try {
                    py::object control = callback(log);
                    return control.is_none() ? EpochControl{} : control.cast<EpochControl>();
                } catch (py::error_already_set& e) {
                    if (halt_all && !e.matches(PyExc_Exception)) halt_all->store(true);
                    return stop_fit();
                } catch (...) {
                    return stop_fit();
                }
            });
        };
    return hooks;
}

// What FloatingPointError says when a fit stopped on a non-finite value (fit_many's results
// and the estimators' jobs say the same, through _core.non_finite_message).
std::string non_finite_message(std::size_t epochs) {
    return "the loss, its gradient or the updated parameters became NaN or infinite in epoch " +
           std::to_string(epochs) +
           "; parameters are left at the last finite state (check the data for NaN or inf, or "
           "try a smaller lr or weight_decay)";
}

// After a fit: keeps its record, then raises what ended it, if anything should be raised.
template <class T>
FitRecord finish_fit(Bound<T>& self, FitRecord record, const std::exception_ptr& error) {
    self.last_fit = record;
    if (error) std::rethrow_exception(error);
    if (record.stop == Stop::interrupted) raise_interrupted();
    if (record.stop == Stop::non_finite) {
        std::string message = non_finite_message(record.epochs());
        if (record.fault_rank >= 0 && self.parallel_ranks > 1)  // where it started, data-parallel
            message.insert(message.find(';'), " (first in the part computed on rank " +
                                                  std::to_string(record.fault_rank) + ")");
        PyErr_SetString(PyExc_FloatingPointError, message.c_str());
        throw py::error_already_set();
    }
    return record;
}

template <class T> py::array_t<T> new_array(std::size_t rows_, std::size_t cols) {
    return py::array_t<T>({static_cast<py::ssize_t>(rows_), static_cast<py::ssize_t>(cols)});
}

template <class T> void bind_network(py::module_& m, const char* name) {
    using B = Bound<T>;
    py::class_<B>(m, name)
        .def(py::init<const std::vector<std::size_t>&, const std::vector<Activation>&, bool, Loss,
                      std::uint64_t, double>(),
             py::kw_only(), py::arg("layers"), py::arg("activations"), py::arg("bias"),
             py::arg("loss"), py::arg("seed"), py::arg("delta") = 1.0)
        .def_property_readonly("layers",
                               [](const B& self) { return self.session.network().layout().layers(); })
        .def_property_readonly("n_params",
                               [](const B& self) { return self.session.network().n_params(); })
        .def_property_readonly("slices",
                               [](const B& self) {
                                   py::list out;
                                   const Layout& L = self.session.network().layout();
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
                return py::array_t<T>({static_cast<py::ssize_t>(self.session.network().n_params())},
                                      {static_cast<py::ssize_t>(sizeof(T))},
                                      self.session.params(), self_obj);
            })
        .def_property_readonly("last_fit", [](const B& self) { return self.last_fit; })
        .def("init", [](B& self, std::uint64_t seed) {
            run_core([&] { self.session.init(seed); });
        }, py::arg("seed"))
        .def("set_params",
             [](B& self, Array<T> values) {
                 require_vector(values, self.session.network().n_params(), "params");
                 const T* v = values.data();
                 run_core([&] { self.session.set_params(v); });
             },
             py::arg("values"), "Set every parameter, between two updates of a running fit.")
        .def("snapshot",
             [](B& self) {
                 py::array_t<T> out(static_cast<py::ssize_t>(self.session.network().n_params()));
                 T* o = out.mutable_data();
                 run_core([&] { self.session.snapshot(o); });
                 return out;
             },
             "A copy of the parameters as they are between two updates.")
        .def("forward",
             [](B& self, py::object X) {
                 const Layout& L = self.session.network().layout();
                 const PyX<T> x = input_x<T>(X, L.l_in(), "X");
                 auto out = new_array<T>(x.t, L.l_out());
                 T* z_n = out.mutable_data();
                 const Poll poll = signal_poll();
                 run_core([&] { self.session.forward(x.X, x.t, z_n, poll, x.Xs); });
                 return out;
             },
             py::arg("X"))
        .def("trace",
             [](B& self, Array<T> X) {
                 const Layout& L = self.session.network().layout();
                 require_matrix(X, L.l_in(), "X");
                 const std::size_t t = rows(X), n = L.n();
                 const T* x = X.data();
                 Workspace<T> ws;
                 run_core([&] { self.session.trace(x, t, ws); });
                 py::list z, a;
                 for (std::size_t i = 1; i <= n; ++i) {
                     const std::size_t l_i = L.layers()[i];
                     auto z_i = new_array<T>(t, l_i);
                     std::copy(ws.z(i), ws.z(i) + t * l_i, z_i.mutable_data());
                     z.append(z_i);
                     if (i < n) {
                         auto a_i = new_array<T>(t, l_i);
                         std::copy(ws.a(i), ws.a(i) + t * l_i, a_i.mutable_data());
                         a.append(a_i);
                     }
                 }
                 return py::make_tuple(z, a);
             },
             py::arg("X"))
        .def("loss",
             [](B& self, py::object X, Array<T> Y, py::object w) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 const Poll poll = signal_poll();
                 return run_core([&] { return self.session.loss(b.batch, poll); });
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none())
        .def("gradient",
             [](B& self, py::object X, Array<T> Y, py::object w, py::object params) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 const std::size_t n_params = self.session.network().n_params();
                 std::optional<Array<T>> at;
                 if (!params.is_none()) {
                     at = params.cast<Array<T>>();
                     require_vector(*at, n_params, "params");
                 }
                 py::array_t<T> grad(static_cast<py::ssize_t>(n_params));
                 T* g = grad.mutable_data();
                 const T* p = at ? at->data() : nullptr;
                 const Poll poll = signal_poll();
                 const double E =
                     run_core([&] { return self.session.gradient(b.batch, p, g, poll); });
                 return py::make_tuple(E, grad);
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none(), py::kw_only(),
             py::arg("params") = py::none(),
             "(E, ∂E/∂params) at the network's parameters, or at `params` without touching "
             "the network's.")
        .def("jacobian",
             [](B& self, Array<T> X) {
                 const Network<T>& net = self.session.network();
                 require_matrix(X, net.layout().l_in(), "X");
                 const std::size_t t = rows(X);
                 py::array_t<double> J({static_cast<py::ssize_t>(t * net.layout().l_out()),
                                        static_cast<py::ssize_t>(net.n_params())});
                 const T* x = X.data();
                 double* j = J.mutable_data();
                 const Poll poll = signal_poll();
                 run_core([&] { self.session.jacobian(x, t, j, poll); });
                 return J;
             },
             py::arg("X"))
        .def("per_sample_gradients",
             [](B& self, Array<T> X, Array<T> Y, py::object w) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 auto G = new_array<T>(b.batch.t, self.session.network().n_params());
                 T* g = G.mutable_data();
                 const Poll poll = signal_poll();
                 const double E = run_core(
                     [&] { return self.session.per_sample_gradients(b.batch, g, poll); });
                 return py::make_tuple(E, G);
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none(),
             "(E, G): row s of G (t, n_params) is the gradient of sample s's term of E.")
        .def("per_sample_gradient_norms",
             [](B& self, Array<T> X, Array<T> Y, py::object w) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 py::array_t<T> norms(static_cast<py::ssize_t>(b.batch.t));
                 T* o = norms.mutable_data();
                 const Poll poll = signal_poll();
                 const double E = run_core(
                     [&] { return self.session.per_sample_gradient_norms(b.batch, o, poll); });
                 return py::make_tuple(E, norms);
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none())
        .def("input_gradient",
             [](B& self, Array<T> X, Array<T> Y, py::object w) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 auto dX = new_array<T>(b.batch.t, self.session.network().layout().l_in());
                 T* o = dX.mutable_data();
                 const Poll poll = signal_poll();
                 const double E =
                     run_core([&] { return self.session.input_gradient(b.batch, o, poll); });
                 return py::make_tuple(E, dX);
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none())
        .def("input_jacobian",
             [](B& self, Array<T> X) {
                 const Layout& L = self.session.network().layout();
                 require_matrix(X, L.l_in(), "X");
                 const std::size_t t = rows(X);
                 py::array_t<T> J({static_cast<py::ssize_t>(t), static_cast<py::ssize_t>(L.l_out()),
                                   static_cast<py::ssize_t>(L.l_in())});
                 const T* x = X.data();
                 T* j = J.mutable_data();
                 const Poll poll = signal_poll();
                 run_core([&] { self.session.input_jacobian(x, t, j, poll); });
                 return J;
             },
             py::arg("X"))
        .def("step",
             [](B& self, py::object X, Array<T> Y, py::object w, const OptimizerConfig& optimizer,
                OptimizerState<T>& state) {
                 PyBatch<T> b = make_batch(self.session.network(), X, Y, w, "X", "Y", "w");
                 const Poll poll = signal_poll(&self.session.gate());
                 try {
                     return run_core(
                         [&] { return self.session.step(b.batch, optimizer, state, poll); });
                 } catch (const NonFiniteStep& e) {
                     PyErr_SetString(PyExc_FloatingPointError, e.what());
                     throw py::error_already_set();
                 }
             },
             py::arg("X"), py::arg("Y"), py::arg("w") = py::none(), py::kw_only(),
             py::arg("optimizer"), py::arg("state"))
        .def(
            "fit",
            [](B& self, py::object X, Array<T> Y, py::object w, const TrainOptions& options,
               const OptimizerConfig& optimizer, OptimizerState<T>& state, py::object X_val,
               py::object Y_val, py::object w_val, py::object callback,
               py::object best_params) {
                const Network<T>& net = self.session.network();
                PyBatch<T> train = make_batch(net, X, Y, w, "X", "Y", "w");
                std::optional<PyBatch<T>> val;
                if (!X_val.is_none())
                    val = make_batch(net, X_val, Y_val.cast<Array<T>>(), w_val,
                                     "X_val", "Y_val", "w_val");
                std::exception_ptr error;
                TrainHooks<T> hooks = python_hooks(self.session, callback, error);
                std::optional<Array<T>> best;
                if (!best_params.is_none()) {
                    best = best_params.cast<Array<T>>();
                    require_vector(*best, net.n_params(), "best_params");
                    hooks.best_params = best->data();
                }
                self.parallel_ranks = 1;
                FitRecord record = without_gil([&] {
                    return self.session.fit(train.batch, val ? &val->batch : nullptr, options,
                                            optimizer, state, hooks);
                });
                return finish_fit(self, std::move(record), error);
            },
            py::arg("X"), py::arg("Y"), py::arg("w") = py::none(), py::kw_only(),
            py::arg("options"), py::arg("optimizer"), py::arg("state"),
            py::arg("X_val") = py::none(), py::arg("Y_val") = py::none(),
            py::arg("w_val") = py::none(), py::arg("callback") = py::none(),
            py::arg("best_params") = py::none())
        .def(
            "fit_parallel",
            [](B& self, std::size_t t, py::object w, const TrainOptions& options,
               const OptimizerConfig& optimizer, OptimizerState<T>& state, std::size_t rank,
               std::size_t ranks, py::object epoch_rows, py::object exchange,
               py::object scatter, py::object val_rows_xyw,
               py::object w_val, std::size_t t_val, py::object callback,
               py::object best_params) {
                // Data-parallel training (DataParallel in train/trainer.hpp): the train batch
                // is t rows of which this rank holds none but their weights; epoch_rows(order)
                // returns (X, Y, w or None), the rows of this rank's blocks of the epoch;
                // exchange(send, recv, counts) all-gathers bytes (send None: in place);
                // scatter(send, counts_to, displs_to, recv, counts_from) is the all-to-all;
                // val_rows = (X, Y, w or None)
                // are this rank's blocks of the validation set of t_val rows (w_val: all of its
                // weights, or None).
                const Network<T>& net = self.session.network();
                if (options.block_rows == 0)
                    throw std::invalid_argument("fit_parallel needs options.block_rows > 0");
                std::optional<Array<T>> w_all;
                if (!w.is_none()) {
                    w_all = w.cast<Array<T>>();
                    require_vector(*w_all, t, "w");
                }
                Batch<T> train{nullptr, nullptr, w_all ? w_all->data() : nullptr, t};
                std::optional<PyBatch<T>> val_rows;
                std::optional<Array<T>> w_val_all;
                Batch<T> val{nullptr, nullptr, nullptr, t_val};
                DataParallel<T> parallel;
                parallel.rank = rank;
                parallel.ranks = ranks;
                if (!val_rows_xyw.is_none()) {
                    py::tuple xyw = val_rows_xyw;
                    val_rows = make_batch(net, xyw[0].cast<Array<T>>(), xyw[1].cast<Array<T>>(),
                                          xyw[2], "X_val rows", "Y_val rows", "w_val rows");
                    if (!w_val.is_none()) {
                        w_val_all = w_val.cast<Array<T>>();
                        require_vector(*w_val_all, t_val, "w_val");
                        val.w = w_val_all->data();
                    }
                    parallel.val_rows = val_rows->batch;
                }
                std::exception_ptr error;
                std::optional<PyBatch<T>> held;  // the epoch's rows, kept alive
                parallel.epoch_rows = [&](const std::size_t* order, std::size_t n) {
                    return with_gil([&]() -> Batch<T> {
                        try {
                            py::array_t<std::size_t> order_view(
                                {static_cast<py::ssize_t>(n)}, {sizeof(std::size_t)}, order,
                                py::str());
                            py::tuple rows_xyw = epoch_rows(order_view);
                            held = make_batch(net, rows_xyw[0].cast<Array<T>>(),
                                              rows_xyw[1].cast<Array<T>>(), rows_xyw[2],
                                              "X rows", "Y rows", "w rows");
                            return held->batch;
                        } catch (...) {
                            error = std::current_exception();
                            throw Interrupted();
                        }
                    });
                };
                parallel.exchange = [&](const unsigned char* send, unsigned char* recv,
                                        const std::size_t* counts) {
                    with_gil([&] {
                        try {
                            std::size_t total = 0;
                            py::list sizes;
                            for (std::size_t q = 0; q < ranks; ++q) {
                                sizes.append(counts[q]);
                                total += counts[q];
                            }
                            std::size_t at = 0;  // this rank's part of recv
                            for (std::size_t q = 0; q < rank; ++q) at += counts[q];
                            // None: in place, this rank's part already in recv
                            py::object s = py::none();
                            if (send != recv + at)
                                s = py::memoryview::from_memory(
                                    send, static_cast<py::ssize_t>(counts[rank]));
                            auto r = py::memoryview::from_memory(
                                recv, static_cast<py::ssize_t>(total), false);
                            exchange(s, r, sizes);
                        } catch (...) {
                            error = std::current_exception();
                            throw Interrupted();
                        }
                    });
                };
                if (!scatter.is_none())
                    parallel.scatter = [&](const unsigned char* send, const std::size_t* to,
                                           const std::size_t* displs, unsigned char* recv,
                                           const std::size_t* from) {
                        with_gil([&] {
                            try {
                                std::size_t end_to = 0, total_from = 0;
                                py::list counts_to, displs_to, counts_from;
                                for (std::size_t q = 0; q < ranks; ++q) {
                                    counts_to.append(to[q]);
                                    displs_to.append(displs[q]);
                                    counts_from.append(from[q]);
                                    end_to = std::max(end_to, displs[q] + to[q]);
                                    total_from += from[q];
                                }
                                auto s = py::memoryview::from_memory(
                                    send, static_cast<py::ssize_t>(end_to));
                                auto r = py::memoryview::from_memory(
                                    recv, static_cast<py::ssize_t>(total_from), false);
                                scatter(s, counts_to, displs_to, r, counts_from);
                            } catch (...) {
                                error = std::current_exception();
                                throw Interrupted();
                            }
                        });
                    };
                TrainHooks<T> hooks = python_hooks(self.session, callback, error);
                hooks.parallel = &parallel;
                std::optional<Array<T>> best;
                if (!best_params.is_none()) {
                    best = best_params.cast<Array<T>>();
                    require_vector(*best, net.n_params(), "best_params");
                    hooks.best_params = best->data();
                }
                self.parallel_ranks = ranks;
                FitRecord record = without_gil([&] {
                    return self.session.fit(train, val_rows ? &val : nullptr, options,
                                            optimizer, state, hooks);
                });
                held.reset();
                return finish_fit(self, std::move(record), error);
            },
            py::arg("t"), py::arg("w") = py::none(), py::kw_only(), py::arg("options"),
            py::arg("optimizer"), py::arg("state"), py::arg("rank"), py::arg("ranks"),
            py::arg("epoch_rows"), py::arg("exchange"), py::arg("scatter") = py::none(),
            py::arg("val_rows") = py::none(),
            py::arg("w_val") = py::none(), py::arg("t_val") = 0,
            py::arg("callback") = py::none(), py::arg("best_params") = py::none())
        .def(
            "fit_lm",
            [](B& self, py::object X, Array<T> Y, py::object w, const TrainOptions& options,
               LmConfig& lm, py::object X_val, py::object Y_val, py::object w_val,
               py::object callback) {
                const Network<T>& net = self.session.network();
                PyBatch<T> train = make_batch(net, X, Y, w, "X", "Y", "w");
                std::optional<PyBatch<T>> val;
                if (!X_val.is_none())
                    val = make_batch(net, X_val, Y_val.cast<Array<T>>(), w_val,
                                     "X_val", "Y_val", "w_val");
                std::exception_ptr error;
                const TrainHooks<T> hooks = python_hooks(self.session, callback, error);
                FitRecord record = without_gil([&] {
                    return self.session.fit_lm(train.batch, val ? &val->batch : nullptr, options,
                                               lm, hooks);
                });
                return finish_fit(self, std::move(record), error);
            },
            py::arg("X"), py::arg("Y"), py::arg("w") = py::none(), py::kw_only(),
            py::arg("options"), py::arg("lm"), py::arg("X_val") = py::none(),
            py::arg("Y_val") = py::none(), py::arg("w_val") = py::none(),
            py::arg("callback") = py::none());
}

// One network's fit in a fit_many call: everything Network.fit hands the core, kept alive
// for the call, and what came of it.
struct ManyJob {
    virtual ~ManyJob() = default;
    virtual double cost() const = 0;           // for the order the jobs start in
    virtual void run(const Poll& poll) = 0;    // never throws: an error is kept
    virtual void keep_record() = 0;            // with the GIL, after the call
    virtual bool interrupted() const = 0;
    std::atomic<bool>* halt_all = nullptr;     // fit_many's: set by a callback's Ctrl-C
};

template <class T> struct FitJob final : ManyJob {
    FitJob(py::object net, Array<T> X, Array<T> Y, py::object w, py::object index,
           const TrainOptions& options_, py::object optimizer, py::object state_,
           py::object lm_, py::object X_val, py::object Y_val, py::object w_val,
           py::object callback_)
        : owner(std::move(net)), self(owner.cast<Bound<T>&>()),
          train(make_batch(self.session.network(), std::move(X), std::move(Y), w, "X", "Y",
                           "sample_weight")),
          options(options_), state_obj(std::move(state_)), lm_obj(std::move(lm_)),
          callback(std::move(callback_)) {
        const Network<T>& net_ = self.session.network();
        if (!index.is_none()) {
            auto idx = index.cast<py::array_t<std::int64_t, py::array::c_style |
                                                               py::array::forcecast>>();
            if (idx.ndim() != 1) throw std::invalid_argument("indices must be 1-D");
            const std::size_t t = train.X.t;
            rows_.reserve(static_cast<std::size_t>(idx.size()));
            for (py::ssize_t s = 0; s < idx.size(); ++s) {
                const std::int64_t r = idx.data()[s];
                if (r < 0 || static_cast<std::size_t>(r) >= t)
                    throw std::invalid_argument("indices must be in [0, " + std::to_string(t) +
                                                "), got " + std::to_string(r));
                rows_.push_back(static_cast<std::size_t>(r));
            }
            train.batch.index = rows_.data();
            train.batch.t = rows_.size();
        }
        if (!X_val.is_none())
            val = make_batch(net_, X_val.cast<Array<T>>(), Y_val.cast<Array<T>>(), w_val,
                             "X_val", "Y_val", "w_val");
        if (lm_obj.is_none()) {
            config = optimizer.cast<OptimizerConfig>();
            state = &state_obj.cast<OptimizerState<T>&>();
        } else {
            lm = &lm_obj.cast<LmConfig&>();
        }
    }

    // The fit of `net` with every argument of `first` but the learning rate (`lr`, or the
    // first's when None) and a fresh optimiser state of its own: fit_many's jobs for networks
    // given the same arguments, made without checking them again. `first` is a plain fit
    // (first-order optimiser, no indices, validation or callback) and `net` has its dtype and
    // its l_0 and l_n (checked).
    FitJob(const FitJob& first, py::object net, std::optional<double> lr)
        : owner(std::move(net)), self(owner.cast<Bound<T>&>()), train(first.train),
          options(first.options), config(first.config), owned_state(), callback(py::none()) {
        if (first.lm || first.val || !first.rows_.empty() || !first.callback.is_none())
            throw std::invalid_argument("FitJob.like: the first job must be a plain fit");
        const Layout& mine = self.session.network().layout();
        const Layout& theirs = first.self.session.network().layout();
        if (mine.l_in() != theirs.l_in() || mine.l_out() != theirs.l_out())
            throw std::invalid_argument("FitJob.like: the network must have the first's l_0 "
                                        "and l_n");
        if (lr) config->lr = *lr;
        check(*config);
        owned_state = std::make_unique<OptimizerState<T>>(
            make_state<T>(*config, self.session.network().n_params()));
        state = owned_state.get();
    }

    double cost() const override {
        return double(options.epochs) * double(train.batch.t) *
               double(self.session.network().n_params());
    }

    void run(const Poll& poll) override {
        try {
            const TrainHooks<T> hooks =
                python_hooks(self.session, callback, error, poll, halt_all);
            const Batch<T>* v = val ? &val->batch : nullptr;
            record = lm ? self.session.fit_lm(train.batch, v, options, *lm, hooks)
                        : self.session.fit(train.batch, v, options, *config, *state, hooks);
        } catch (...) {
            if (!error) error = std::current_exception();
        }
    }

    bool interrupted() const override { return record && record->stop == Stop::interrupted; }

    void keep_record() override {
        if (record) self.last_fit = record;
    }

    // Whether this fit may be stepped in lanes with others (train/lanes.hpp); an epoch hook
    // (callback, progress bar, schedule or checkpoint in Python) runs after each epoch as in
    // a single fit.
    bool lanes_can_fit() const {
        return lm == nullptr &&
               state_fits(*config, *state, self.session.network().n_params()) &&
               fastprop::lanes_can_fit<T>(self.session.network(), train.batch,
                                          val ? &val->batch : nullptr, options, *config);
    }

    py::object owner;
    Bound<T>& self;
    PyBatch<T> train;
    std::vector<std::size_t> rows_;  // the indices, as the core reads them
    std::optional<PyBatch<T>> val;
    TrainOptions options;
    std::optional<OptimizerConfig> config;
    py::object state_obj, lm_obj;
    std::unique_ptr<OptimizerState<T>> owned_state;  // FitJob.like's: nobody else reads it
    OptimizerState<T>* state = nullptr;
    LmConfig* lm = nullptr;
    py::object callback;
    std::exception_ptr error;  // the callback's exception, or the core's
    std::optional<FitRecord> record;
    std::size_t lanes = 0;  // the networks of its lane group, itself included; 0: alone
};

// Fits stepped together in SIMD lanes (train/lanes.hpp): one task of the pool for all of them.
template <class T> struct LaneJob final : ManyJob {
    explicit LaneJob(std::vector<FitJob<T>*> members_) : members(std::move(members_)) {}

    // A step of the group costs a few single steps (its passes are W times wider, their
    // overheads paid once).
    double cost() const override { return 4.0 * members.front()->cost(); }

    void run(const Poll& poll) override {
        try {
            std::vector<LaneFit<T>> fits(members.size());
            std::vector<LaneFit<T>*> pointers;
            for (std::size_t j = 0; j < members.size(); ++j) {
                FitJob<T>& job = *members[j];
                fits[j].session = &job.self.session;
                fits[j].config = &*job.config;
                fits[j].state = job.state;
                fits[j].train = job.train.batch;
                fits[j].epoch_end =
                    python_hooks(job.self.session, job.callback, job.error, {}, halt_all)
                        .epoch_end;
                fits[j].schedule = &job.options.schedule;
                fits[j].options = &job.options;
                fits[j].val = job.val ? &job.val->batch : nullptr;
                pointers.push_back(&fits[j]);
            }
            const FitJob<T>& first = *members.front();
            LaneGroup<T> group(pointers, first.train.batch, first.options);
            if (poll) {
                group.fit(poll);
            } else {
                // Alone on the calling thread: Python's signal handlers run from the poll, as
                // for a single fit; the parameters go home first, so a handler may take a
                // snapshot of any of the networks.
                group.fit(ThrottledPoll([&] {
                    if (halt_all && halt_all->load()) return true;  // a member's callback
                    group.publish();
                    std::deque<ParamsGate::Parked> parked;
                    for (LaneFit<T>& fit : fits) parked.emplace_back(&fit.session->gate());
                    return with_gil([] { return PyErr_CheckSignals() != 0; });
                }));
            }
            for (std::size_t j = 0; j < members.size(); ++j) {
                members[j]->record = std::move(fits[j].record);
                members[j]->lanes = members.size();
            }
        } catch (...) {
            for (FitJob<T>* job : members)
                if (!job->error) job->error = std::current_exception();
        }
    }

    bool interrupted() const override {
        return std::any_of(members.begin(), members.end(),
                           [](const FitJob<T>* job) { return job->interrupted(); });
    }

    void keep_record() override {
        for (FitJob<T>* job : members) job->keep_record();
    }

    std::vector<FitJob<T>*> members;
};

// Tests step every eligible fit in lanes, even alone, whatever lanes_min_networks says.
std::atomic<bool> lanes_forced{false};

// Splits `jobs` (of T) into groups of the same lanes_key, each cut into lane groups of at most
// lane_width networks, appended to `out` (owned by `owned`); the fits that cannot be stepped
// in lanes are appended alone.
template <class T>
void group_in_lanes(const std::vector<FitJob<T>*>& jobs, std::vector<ManyJob*>& out,
                    std::vector<std::unique_ptr<ManyJob>>& owned) {
    const std::size_t W = lane_width<T>();
    std::map<std::vector<std::size_t>, std::vector<FitJob<T>*>> groups;
    for (FitJob<T>* job : jobs) {
        if (W > 1 && job->lanes_can_fit())
            groups[lanes_key(job->self.session.network(), job->train.batch, job->options,
                             *job->config)]
                .push_back(job);
        else
            out.push_back(job);
    }
    for (auto& [key, members] : groups) {
        const FitJob<T>& first = *members.front();
        const std::size_t fewest =
            lanes_forced.load() ? 1
                                : lanes_min_networks(first.self.session.network(),
                                                     first.train.batch, first.options);
        for (std::size_t k = 0; k < members.size(); k += W) {
            const std::size_t count = std::min(W, members.size() - k);
            if (count < fewest) {
                out.insert(out.end(), members.begin() + long(k), members.begin() + long(k + count));
                continue;
            }
            owned.push_back(std::make_unique<LaneJob<T>>(std::vector<FitJob<T>*>(
                members.begin() + long(k), members.begin() + long(k + count))));
            out.push_back(owned.back().get());
        }
    }
}

template <class T> void bind_fit_job(py::module_& m, const char* name) {
    using J = FitJob<T>;
    py::class_<J>(m, name, "One network's fit of a fit_many call.")
        .def(py::init<py::object, Array<T>, Array<T>, py::object, py::object,
                      const TrainOptions&, py::object, py::object, py::object, py::object,
                      py::object, py::object, py::object>(),
             py::arg("network"), py::arg("X"), py::arg("Y"), py::arg("w") = py::none(),
             py::kw_only(), py::arg("index") = py::none(), py::arg("options"),
             py::arg("optimizer") = py::none(), py::arg("state") = py::none(),
             py::arg("lm") = py::none(), py::arg("X_val") = py::none(),
             py::arg("Y_val") = py::none(), py::arg("w_val") = py::none(),
             py::arg("callback") = py::none())
        .def_static(
            "like",
            [](const J& first, const py::list& networks, const py::list& lrs) {
                if (networks.size() != lrs.size())
                    throw std::invalid_argument("FitJob.like: one lr per network");
                py::list jobs;
                for (std::size_t k = 0; k < networks.size(); ++k) {
                    std::optional<double> lr;
                    if (!lrs[k].is_none()) lr = lrs[k].cast<double>();
                    jobs.append(py::cast(std::make_unique<J>(first, networks[k], lr)));
                }
                return jobs;
            },
            py::arg("first"), py::arg("networks"), py::arg("lrs"),
            "The jobs of `networks` (their cores) with every argument of `first` (a plain fit: "
            "first-order optimiser, no indices, validation data or callback) but the learning "
            "rate, one per network (None: the first's), each with a fresh optimiser state.")
        .def_static(
            "outcomes",
            [](const py::list& jobs) {
                // Per job, what fit_many's result needs of it in one call: (stop name or None
                // when it never ran, loss, time, lr, best_epoch, epochs, failed).
                const auto values = [](const std::vector<double>& v) {
                    py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
                    std::copy(v.begin(), v.end(), out.mutable_data());
                    return out;
                };
                py::list out;
                for (py::handle h : jobs) {
                    const J& job = h.cast<const J&>();
                    if (!job.record) {
                        out.append(py::make_tuple(py::none(), py::none(), py::none(),
                                                  py::none(), 0, 0, bool(job.error)));
                        continue;
                    }
                    const FitRecord& r = *job.record;
                    out.append(py::make_tuple(stop_name(r.stop), values(r.E), values(r.seconds),
                                              values(r.lr), r.best_epoch, r.epochs(),
                                              bool(job.error)));
                }
                return out;
            },
            py::arg("jobs"))
        .def_property_readonly("record", [](const J& self) { return self.record; })
        .def_property_readonly("failed", [](const J& self) { return bool(self.error); })
        .def_property_readonly("lanes", [](const J& self) { return self.lanes; },
                               "How many networks were stepped together with this one in SIMD "
                               "lanes, itself included (0: it trained alone).")
        .def("raise_error", [](const J& self) {
            if (self.error) std::rethrow_exception(self.error);
        });
}

// The jobs of one fit_many call, handed out one network at a time to the threads.
struct ManyRun {
    std::vector<ManyJob*> jobs;  // largest first
    std::atomic<std::size_t> next{0};
    Poll poll;
};

void run_jobs(void* context, std::size_t) {
    auto& run = *static_cast<ManyRun*>(context);
    for (;;) {
        const std::size_t i = run.next.fetch_add(1, std::memory_order_relaxed);
        if (i >= run.jobs.size()) return;
        run.jobs[i]->run(run.poll);
    }
}

// Trains every job; true when Ctrl-C (a signal handler's exception, left set) stopped them.
bool fit_many(const py::list& list) {
    ManyRun run;
    std::vector<FitJob<float>*> jobs32;
    std::vector<FitJob<double>*> jobs64;
    for (py::handle job : list) {
        if (py::isinstance<FitJob<float>>(job))
            jobs32.push_back(&job.cast<FitJob<float>&>());
        else
            jobs64.push_back(&job.cast<FitJob<double>&>());
    }
    for (FitJob<float>* job : jobs32) job->lanes = 0;
    for (FitJob<double>* job : jobs64) job->lanes = 0;
    std::vector<std::unique_ptr<ManyJob>> lane_jobs;
    group_in_lanes(jobs32, run.jobs, lane_jobs);
    group_in_lanes(jobs64, run.jobs, lane_jobs);
    // Longest first, so that the last network to finish is a short one. The order a network
    // starts in does not change its bits: each runs on one thread, its sums in a fixed order.
    std::stable_sort(run.jobs.begin(), run.jobs.end(),
                     [](const ManyJob* a, const ManyJob* b) { return a->cost() > b->cost(); });
    std::atomic<bool> stop{false};
    std::atomic<bool> halt{false};  // a callback raised KeyboardInterrupt or SystemExit
    for (ManyJob* job : run.jobs) job->halt_all = &halt;
    const std::size_t k = std::min(get_num_threads(), run.jobs.size());
    without_gil([&] {
        if (k <= 1) {
            // One after the other on this thread, as single fits run (each polls Python's
            // signal handlers itself; a lone network keeps the threads of its products).
            // After Ctrl-C the rest stop before their first update.
            run.poll = [&stop, &halt] { return stop.load() || halt.load(); };
            for (ManyJob* job : run.jobs) {
                if (stop.load() || halt.load())
                    job->run(run.poll);
                else if (job->run({}); job->interrupted() && !halt.load())
                    stop = true;  // Ctrl-C (not a callback's, which its own error raises)
            }
            return;
        }
        // k threads of the pool take one network at a time (each network single-threaded
        // inside its task); this thread, the only one whose signal handlers run, waits and
        // checks for Ctrl-C every 20 ms.
        run.poll = [&stop, &halt] {
            return stop.load(std::memory_order_relaxed) || halt.load(std::memory_order_relaxed);
        };
        std::mutex m;
        std::condition_variable cv;
        bool finished = false;
        std::thread runner([&] {
            threads::parallel_for(k, &run_jobs, &run);
            std::lock_guard<std::mutex> lock(m);
            finished = true;
            cv.notify_all();
        });
        std::unique_lock<std::mutex> lock(m);
        while (!cv.wait_for(lock, std::chrono::milliseconds(20), [&] { return finished; })) {
            if (stop.load()) continue;
            lock.unlock();
            if (with_gil([] { return PyErr_CheckSignals() != 0; })) stop = true;
            lock.lock();
        }
        lock.unlock();
        runner.join();
    });
    for (ManyJob* job : run.jobs) job->keep_record();
    return stop.load();
}

}  // namespace

void register_network(py::module_& m) {
    py::enum_<Activation> activation(m, "Activation", "The hidden-layer activations σ.");
    enum_values<Activations>(activation);
    py::enum_<Loss> loss(m, "Loss", "The losses E.");
    enum_values<Losses>(loss);
    py::enum_<Link>(m, "Link", "How a prediction comes from z_n.")
        .value("identity", Link::identity)
        .value("softmax", Link::softmax)
        .value("sigmoid", Link::sigmoid)
        .value("exp", Link::exp);
    m.def("link", &link_of, py::arg("loss"));
    m.def("is_mean", &is_mean, py::arg("loss"));
    m.def("min_outputs", &min_outputs, py::arg("loss"));
    m.attr("leaky_relu_slope") = leaky_relu_slope;
    bind_network<double>(m, "Network64");
    bind_network<float>(m, "Network32");
    bind_fit_job<double>(m, "FitJob64");
    bind_fit_job<float>(m, "FitJob32");
    m.def("non_finite_message", &non_finite_message, py::arg("epochs"));
    m.def(
        "_force_lanes", [](bool on) { lanes_forced = on; }, py::arg("on"),
        "For tests: step every fit a lane group can reproduce in lanes, however few networks "
        "share its shape (fit_many otherwise groups them only where that is faster).");
    m.def(
        "lane_width",
        [](const std::string& dtype) {
            if (dtype == "float32") return lane_width<float>();
            if (dtype == "float64") return lane_width<double>();
            throw std::invalid_argument("dtype must be 'float32' or 'float64', got '" + dtype +
                                        "'");
        },
        py::arg("dtype"),
        "How many networks of dtype fit_many steps together in SIMD lanes with the kernels in "
        "use; 0 when it trains every network alone (the portable kernels).");
    m.def(
        "fit_many",
        [](const py::list& jobs) {
            if (fit_many(jobs)) raise_interrupted();
        },
        py::arg("jobs"),
        "Trains every FitJob32/64, the networks spread over the threads, without the GIL; "
        "raises KeyboardInterrupt after all stopped when Ctrl-C stopped them.");
}

}  // namespace fastprop::python
