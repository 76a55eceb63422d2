// The only file that knows Python: converts, checks shapes, releases the GIL, calls the core.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <string>
#include <vector>

#include "gemm.hpp"
#include "lm.hpp"
#include "network.hpp"
#include "runtime/peak.hpp"

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
    std::atomic<std::thread::id> owner{};  // the thread inside the core, while one is
    std::vector<T> saved;                  // parameters set aside by loss_and_grad
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
        // The clock is read every `stride_` calls, the stride sized from the calls' measured
        // length so that a read comes about every 0.25 ms: W1's steps take well under a
        // microsecond, and a clock read per step cost 5% of them.
        if (++calls_ < stride_) return false;
        const auto now = std::chrono::steady_clock::now();
        const auto per_call = (now - read_) / calls_;
        read_ = now;
        calls_ = 0;
        // The stride at most doubles per read: a first interval measured too short (a call
        // polled right after this object was made) must not stop the reads for 4096 calls.
        const auto target = std::chrono::microseconds(250);
        const long most = std::min<long>(4096, 2 * stride_);
        stride_ = per_call.count() > 0 ? std::clamp<long>(long(target / per_call), 1, most) : most;
        if (now - last_ < std::chrono::milliseconds(20)) return false;
        last_ = now;
        py::gil_scoped_acquire gil;
        return PyErr_CheckSignals() != 0;
    }

private:
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now(), read_ = last_;
    long calls_ = 0, stride_ = 1;
};

const char* stop_name(fp::Stop stop) {
    switch (stop) {
        case fp::Stop::done: return "done";
        case fp::Stop::interrupted: return "interrupted";
        case fp::Stop::callback: return "callback";
        case fp::Stop::non_finite: return "non_finite";
        case fp::Stop::early_stopping: return "early_stopping";
        case fp::Stop::converged: return "converged";
    }
    return "?";
}

// Runs work(workspace) on the network without the GIL, one thread at a time. A call from
// inside fit's own callback (the same thread, already inside) gets a workspace of its own,
// so that it cannot disturb the fit around it. An interruption re-raises the exception
// that the signal handler set.
template <class T, class Work> void run_nogil(Bound<T>& self, Work&& work) {
    bool interrupted = false;
    {
        py::gil_scoped_release no_gil;
        try {
            if (self.owner.load() == std::this_thread::get_id()) {
                fp::Workspace<T> own;
                work(own);
            } else {
                std::lock_guard<std::mutex> lock(self.mutex);
                self.owner = std::this_thread::get_id();
                struct Leave {
                    std::atomic<std::thread::id>& owner;
                    ~Leave() { owner = std::thread::id(); }
                } leave{self.owner};
                work(self.ws);
            }
        } catch (const fp::Interrupted&) {
            interrupted = true;
        }
    }
    if (interrupted) throw py::error_already_set();
}

fp::OptimizerConfig optimizer_config(const py::dict& d) {
    fp::OptimizerConfig c;
    const auto method = d["method"].cast<std::string>();
    if (method == "sgd") c.method = fp::Method::sgd;
    else if (method == "adam") c.method = fp::Method::adam;
    else if (method == "adamw") c.method = fp::Method::adamw;
    else if (method == "rprop") c.method = fp::Method::rprop;
    else throw std::invalid_argument("unknown optimiser method '" + method + "'");
    auto get = [&d](const char* key, double fallback) {
        return d.contains(key) ? d[key].cast<double>() : fallback;
    };
    c.lr = get("lr", c.lr);
    c.weight_decay = get("weight_decay", c.weight_decay);
    c.momentum = get("momentum", c.momentum);
    c.nesterov = d.contains("nesterov") && d["nesterov"].cast<bool>();
    c.beta1 = get("beta1", c.beta1);
    c.beta2 = get("beta2", c.beta2);
    c.eps = get("eps", c.eps);
    c.eta_minus = get("eta_minus", c.eta_minus);
    c.eta_plus = get("eta_plus", c.eta_plus);
    c.step_min = get("step_min", c.step_min);
    c.step_max = get("step_max", c.step_max);
    return c;
}

// The optimiser state arrays m and v (or None), each n_params entries of T.
template <class T>
fp::OptimizerState<T> optimizer_state(const fp::OptimizerConfig& c, py::object m, py::object v,
                                      std::uint64_t steps, std::size_t n_params) {
    fp::OptimizerState<T> state;
    state.steps = steps;
    const int needed = fp::state_buffers(c);
    auto buffer = [n_params](py::object a, const char* name) -> T* {
        if (a.is_none()) throw std::invalid_argument(std::string("optimiser state ") + name + " is missing");
        // No conversion: the state is updated in place, in the caller's array.
        if (!py::isinstance<py::array_t<T>>(a))
            throw std::invalid_argument(std::string("optimiser state ") + name +
                                        " must be an array of the network's dtype");
        auto arr = py::reinterpret_borrow<py::array_t<T>>(a);
        if (arr.ndim() != 1 || static_cast<std::size_t>(arr.shape(0)) != n_params ||
            !(arr.flags() & py::array::c_style) || !arr.writeable())
            throw std::invalid_argument(std::string("optimiser state ") + name +
                                        " must be a writable contiguous array of n_params entries");
        return arr.mutable_data();
    };
    if (needed >= 1) state.m = buffer(m, "m");
    if (needed >= 2) state.v = buffer(v, "v");
    return state;
}

// What every fit binding shares: the checked data, the options of validation and early
// stopping, the record arrays, and the hooks that call back into Python.
template <class T> struct FitCall {
    FitCall(Bound<T>& self, Array<T> X_, Array<T> Y_, std::size_t epochs, py::object X_val,
            py::object Y_val, std::size_t patience, double min_delta, bool restore_best,
            py::object epoch_end_)
        : X(std::move(X_)), Y(std::move(Y_)), epoch_end(std::move(epoch_end_)) {
        const fp::Layout& L = self.net.layout();
        require_matrix(X, L.l_in(), "X");
        require_matrix(Y, L.l_out(), "Y");
        require_same_rows(X, Y);
        x = X.data();
        y = Y.data();
        t = rows(X);
        options.epochs = epochs;
        options.patience = patience;
        options.min_delta = min_delta;
        options.restore_best = restore_best;
        if (!X_val.is_none()) {
            X_v = X_val.cast<Array<T>>();
            Y_v = Y_val.cast<Array<T>>();
            require_matrix(*X_v, L.l_in(), "X_val");
            require_matrix(*Y_v, L.l_out(), "Y_val");
            require_same_rows(*X_v, *Y_v);
            options.X_val = X_v->data();
            options.Y_val = Y_v->data();
            options.t_val = rows(*X_v);
        }
        const auto count = static_cast<py::ssize_t>(epochs);
        E = py::array_t<double>(count);
        E_val = py::array_t<double>(X_v ? count : 0);
        seconds = py::array_t<double>(count);
        record = {E.mutable_data(), X_v ? E_val.mutable_data() : nullptr, seconds.mutable_data()};
        hooks.poll = std::ref(poll);
        if (!epoch_end.is_none())
            hooks.epoch_end = [this](std::size_t epoch, double E_epoch, double E_val_epoch,
                                     double elapsed) {
                py::gil_scoped_acquire gil;
                return epoch_end(epoch, E_epoch, E_val_epoch, elapsed).template cast<bool>();
            };
    }

    // The records of the completed epochs, why training stopped, and the exception a
    // signal handler raised if it was interrupted.
    py::dict finish(const fp::FitResult& result) {
        py::object error = py::none();
        if (result.stop == fp::Stop::interrupted && PyErr_Occurred())
            error = py::error_already_set().value();
        py::slice done(0, static_cast<py::ssize_t>(result.epochs), 1);
        return py::dict(py::arg("loss") = E[done],
                        py::arg("val_loss") = X_v ? py::object(E_val[done]) : py::none(),
                        py::arg("time") = seconds[done], py::arg("stop") = stop_name(result.stop),
                        py::arg("best_epoch") = result.best_epoch, py::arg("error") = error);
    }

    FitCall(const FitCall&) = delete;
    FitCall& operator=(const FitCall&) = delete;

    Array<T> X, Y;
    std::optional<Array<T>> X_v, Y_v;
    const T *x = nullptr, *y = nullptr;
    std::size_t t = 0;
    fp::FitOptions<T> options;
    py::array_t<double> E, E_val, seconds;
    fp::FitRecord record;
    SignalPoll poll;
    fp::FitHooks hooks;
    py::object epoch_end;
};

template <class T> void bind_network(py::module_& module, const char* name) {
    using B = Bound<T>;
    py::class_<B>(module, name)
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
            run_nogil(self, [&](fp::Workspace<T>&) { self.net.init(seed); });
        })
        .def("forward",
             [](B& self, Array<T> X) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 Array<T> out({X.shape(0), static_cast<py::ssize_t>(self.net.layout().l_out())});
                 const T* x = X.data();
                 T* z_n = out.mutable_data();
                 SignalPoll poll;
                 run_nogil(self, [&](fp::Workspace<T>& ws) { fp::forward(self.net, x, rows(X), z_n, ws, poll); });
                 return out;
             })
        .def("trace",
             [](B& self, Array<T> X) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 const std::size_t t = rows(X), n = self.net.n();
                 const T* x = X.data();
                 fp::Workspace<T> ws;  // its own: a trace holds the whole batch at once
                 run_nogil(self, [&](fp::Workspace<T>&) { fp::forward_trace(self.net, x, t, ws); });
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
                 run_nogil(self, [&](fp::Workspace<T>& ws) { E = fp::loss(self.net, x, y, rows(X), ws, poll); });
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
                 run_nogil(self, [&](fp::Workspace<T>& ws) {
                     E = fp::gradient(self.net, x, y, rows(X), g, ws, poll);
                 });
                 return py::make_tuple(E, grad);
             })
        .def("loss_and_grad",
             [](B& self, Array<T> X, Array<T> Y, py::object params) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 require_matrix(Y, self.net.layout().l_out(), "Y");
                 require_same_rows(X, Y);
                 const std::size_t n_params = self.net.n_params();
                 std::optional<Array<T>> p;
                 if (!params.is_none()) {
                     p = params.cast<Array<T>>();
                     if (p->ndim() != 1 || static_cast<std::size_t>(p->shape(0)) != n_params)
                         throw std::invalid_argument("params must have shape (" +
                                                     std::to_string(n_params) + ",)");
                 }
                 Array<T> grad({static_cast<py::ssize_t>(n_params)});
                 const T *x = X.data(), *y = Y.data(), *other = p ? p->data() : nullptr;
                 T* g = grad.mutable_data();
                 double E = 0;
                 SignalPoll poll;
                 run_nogil(self, [&](fp::Workspace<T>& ws) {
                     if (!other) {
                         E = fp::gradient(self.net, x, y, rows(X), g, ws, poll);
                         return;
                     }
                     // Evaluate at the given parameters, then put the network's back.
                     T* own = self.net.params();
                     self.saved.assign(own, own + n_params);
                     std::copy(other, other + n_params, own);
                     try {
                         E = fp::gradient(self.net, x, y, rows(X), g, ws, poll);
                     } catch (...) {
                         std::copy(self.saved.begin(), self.saved.end(), own);
                         throw;
                     }
                     std::copy(self.saved.begin(), self.saved.end(), own);
                 });
                 return py::make_tuple(E, grad);
             })
        .def("step",
             [](B& self, Array<T> X, Array<T> Y, const py::dict& optimizer, py::object m,
                py::object v, std::uint64_t steps) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 require_matrix(Y, self.net.layout().l_out(), "Y");
                 require_same_rows(X, Y);
                 const fp::OptimizerConfig config = optimizer_config(optimizer);
                 fp::OptimizerState<T> state =
                     optimizer_state<T>(config, m, v, steps, self.net.n_params());
                 const T *x = X.data(), *y = Y.data();
                 double E = 0;
                 SignalPoll poll;
                 run_nogil(self, [&](fp::Workspace<T>& ws) {
                     E = fp::step(self.net, x, y, rows(X), config, state, ws, poll);
                 });
                 return py::make_tuple(E, state.steps);
             })
        .def(
            "fit",
            [](B& self, Array<T> X, Array<T> Y, std::size_t epochs, std::size_t batch_size,
               bool shuffle, std::uint64_t seed, py::object X_val, py::object Y_val,
               std::size_t patience, double min_delta, bool restore_best,
               const py::dict& optimizer, py::object m, py::object v, std::uint64_t steps,
               py::object epoch_end) {
                const fp::OptimizerConfig config = optimizer_config(optimizer);
                fp::OptimizerState<T> state =
                    optimizer_state<T>(config, m, v, steps, self.net.n_params());
                FitCall<T> call(self, X, Y, epochs, X_val, Y_val, patience, min_delta,
                                restore_best, epoch_end);
                call.options.batch_size = batch_size;
                call.options.shuffle = shuffle;
                call.options.seed = seed;
                fp::FitResult result;
                run_nogil(self, [&](fp::Workspace<T>& ws) {
                    result = fp::fit(self.net, call.x, call.y, call.t, call.options, config, state,
                                     call.record, ws, call.hooks);
                });
                py::dict out = call.finish(result);
                out["steps"] = state.steps;
                return out;
            },
            py::arg("X"), py::arg("Y"), py::arg("epochs"), py::arg("batch_size"),
            py::arg("shuffle"), py::arg("seed"), py::arg("X_val"), py::arg("Y_val"),
            py::arg("patience"), py::arg("min_delta"), py::arg("restore_best"),
            py::arg("optimizer"), py::arg("m"), py::arg("v"), py::arg("steps"),
            py::arg("epoch_end"))
        .def("jacobian",
             [](B& self, Array<T> X) {
                 require_matrix(X, self.net.layout().l_in(), "X");
                 const std::size_t t = rows(X);
                 py::array_t<double> J({static_cast<py::ssize_t>(t * self.net.layout().l_out()),
                                        static_cast<py::ssize_t>(self.net.n_params())});
                 const T* x = X.data();
                 double* j = J.mutable_data();
                 SignalPoll poll;
                 run_nogil(self, [&](fp::Workspace<T>& ws) {
                     fp::jacobian(self.net, x, t, j, ws, poll);
                 });
                 return J;
             })
        .def(
            "fit_lm",
            [](B& self, Array<T> X, Array<T> Y, std::size_t epochs, py::object X_val,
               py::object Y_val, std::size_t patience, double min_delta, bool restore_best,
               const py::dict& lm, py::object epoch_end) {
                fp::LmConfig config;
                config.mu = lm["mu"].cast<double>();
                config.mu_dec = lm["mu_dec"].cast<double>();
                config.mu_inc = lm["mu_inc"].cast<double>();
                config.mu_max = lm["mu_max"].cast<double>();
                FitCall<T> call(self, X, Y, epochs, X_val, Y_val, patience, min_delta,
                                restore_best, epoch_end);
                fp::FitResult result;
                run_nogil(self, [&](fp::Workspace<T>& ws) {
                    result = fp::fit_lm(self.net, call.x, call.y, call.t, call.options, config,
                                        call.record, ws, call.hooks);
                });
                py::dict out = call.finish(result);
                out["mu"] = config.mu;
                return out;
            },
            py::arg("X"), py::arg("Y"), py::arg("epochs"), py::arg("X_val"), py::arg("Y_val"),
            py::arg("patience"), py::arg("min_delta"), py::arg("restore_best"), py::arg("lm"),
            py::arg("epoch_end"));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "fastprop's C++ core: forward pass and backpropagation on one parameter buffer.";
    bind_network<double>(m, "Network64");
    bind_network<float>(m, "Network32");
    m.def("set_num_threads", [](std::size_t k) { fp::set_num_threads(k); }, py::arg("k"));
    m.def("get_num_threads", [] { return fp::get_num_threads(); });
    m.def("kernel_isa", [] { return std::string(fp::isa_name(fp::kernel_isa())); },
          "The kernels in use: 'avx512', 'avx2' or 'portable'.");
    m.def("fma_peak", [](const std::string& dtype, std::int64_t threads, double seconds) {
              py::gil_scoped_release nogil;
              return fp::fma_peak(dtype.c_str(), threads, seconds);
          }, py::arg("dtype"), py::arg("threads"), py::arg("seconds"),
          "GFLOP/s of `threads` threads running chains of fused multiply-adds in dtype "
          "('float32' or 'float64') for about `seconds`, with the kernels' instructions.");
    m.attr("activation_names") = fp::activation_names;
    m.attr("loss_names") = fp::loss_names;
}
