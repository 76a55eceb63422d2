// The trainer's typed options, the optimisers' configurations and state, and a fit's record.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "python/convert.hpp"
#include "train/lm.hpp"
#include "train/optimizer.hpp"
#include "train/trainer.hpp"

namespace fastprop::python {

namespace {

// A numpy view of a state buffer, alive as long as the state object (or None when unused).
template <class T> py::object view(std::vector<T>& buffer, py::handle owner) {
    if (buffer.empty()) return py::none();
    return py::array_t<T>({static_cast<py::ssize_t>(buffer.size())}, {sizeof(T)}, buffer.data(),
                          owner);
}

template <class T> std::vector<T> from_array(const py::object& a) {
    if (a.is_none()) return {};
    auto arr = a.cast<py::array_t<T, py::array::c_style | py::array::forcecast>>();
    return std::vector<T>(arr.data(), arr.data() + arr.size());
}

template <class T> void bind_state(py::module_& m, const char* name) {
    using S = OptimizerState<T>;
    py::class_<S>(m, name, "An optimiser's memory between updates, in the parameter layout.")
        .def(py::init([](const OptimizerConfig& config, std::size_t n_params) {
                 check(config);
                 return make_state<T>(config, n_params);
             }),
             py::kw_only(), py::arg("config"), py::arg("n_params"))
        .def_property_readonly("m", [](py::object self) { return view(self.cast<S&>().m, self); })
        .def_property_readonly("v", [](py::object self) { return view(self.cast<S&>().v, self); })
        .def_readwrite("steps", &S::steps)
        .def("fits", [](const S& s, const OptimizerConfig& config,
                        std::size_t n_params) { return state_fits(config, s, n_params); })
        .def(py::pickle(
            [](py::object self) {
                S& s = self.cast<S&>();
                // A copy of each buffer, or None for one the method does not use (SGD
                // without momentum keeps no m, only Adam-like methods a v).
                const auto copied = [&](std::vector<T>& buffer) {
                    py::object a = view(buffer, self);
                    return a.is_none() ? a : a.attr("copy")();
                };
                return py::make_tuple(copied(s.m), copied(s.v), s.steps);
            },
            [](py::tuple t) {
                if (t.size() != 3) throw std::invalid_argument("bad optimiser state");
                S s;
                s.m = from_array<T>(t[0]);
                s.v = from_array<T>(t[1]);
                s.steps = t[2].cast<std::uint64_t>();
                return s;
            }));
}

template <class T> py::array_t<double> array(const std::vector<T>& values) {
    py::array_t<double> out(static_cast<py::ssize_t>(values.size()));
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

}  // namespace

void register_train(py::module_& m) {
    py::enum_<Method> methods(m, "Method", "The first-order optimisers of the core.");
    enum_values<Methods>(methods);

    py::class_<OptimizerConfig> config(m, "OptimizerConfig",
                                       "An optimiser and its hyperparameters (torch.optim's).");
    config.def(py::init([](Method method, py::kwargs kwargs) {
                   OptimizerConfig c;
                   c.method = method;
                   for (const auto& [key, value] : kwargs) {
                       const std::string name = py::str(key);
                       if (name == "nesterov") {
                           c.nesterov = value.cast<bool>();
                           continue;
                       }
                       if (name == "noise_seed") {
                           c.noise_seed = value.cast<std::uint64_t>();
                           continue;
                       }
                       bool found = false;
                       for (const auto& [hp, field] : hyperparameters())
                           if (name == hp) {
                               c.*field = value.cast<double>();
                               found = true;
                           }
                       if (!found)
                           throw py::type_error("OptimizerConfig has no hyperparameter '" + name +
                                                "'");
                   }
                   check(c);
                   return c;
               }),
               py::arg("method"))
        .def_readonly("method", &OptimizerConfig::method)
        .def_readonly("nesterov", &OptimizerConfig::nesterov)
        .def_readonly("noise_seed", &OptimizerConfig::noise_seed)
        .def("buffers", [](const OptimizerConfig& c) { return state_buffers(c); },
             "How many state buffers (m, then v) the optimiser keeps.")
        .def("__repr__", [](const OptimizerConfig& c) {
            std::string out = std::string("OptimizerConfig(") + method_name(c.method);
            for (const auto& [name, field] : hyperparameters())
                out += std::string(", ") + name + "=" + py::repr(py::float_(c.*field)).cast<std::string>();
            return out + ", nesterov=" + (c.nesterov ? "True" : "False") + ")";
        });
    for (const auto& [name, field] : hyperparameters())
        config.def_property_readonly(name, [field = field](const OptimizerConfig& c) {
            return c.*field;
        });
    bind_state<float>(m, "OptimizerState32");
    bind_state<double>(m, "OptimizerState64");

    py::class_<LmConfig>(m, "LmConfig", "Levenberg-Marquardt's damping and how it adapts.")
        .def(py::init([](double mu, double mu_dec, double mu_inc, double mu_max,
                         double weight_decay) {
                 LmConfig c{mu, mu_dec, mu_inc, mu_max, weight_decay};
                 c.check();
                 return c;
             }),
             py::kw_only(), py::arg("mu") = 1e-3, py::arg("mu_dec") = 0.1,
             py::arg("mu_inc") = 10.0, py::arg("mu_max") = 1e10, py::arg("weight_decay") = 0.0)
        .def_readwrite("mu", &LmConfig::mu)
        .def_readonly("mu_dec", &LmConfig::mu_dec)
        .def_readonly("mu_inc", &LmConfig::mu_inc)
        .def_readonly("mu_max", &LmConfig::mu_max)
        .def_readwrite("weight_decay", &LmConfig::weight_decay)
        .def_readwrite("decay_biases", &LmConfig::decay_biases);
    m.attr("lm_max_params") = lm_max_params;

    py::enum_<Schedule::Kind>(m, "ScheduleKind")
        .value("constant", Schedule::Kind::constant)
        .value("step", Schedule::Kind::step)
        .value("cosine", Schedule::Kind::cosine)
        .value("invscaling", Schedule::Kind::invscaling);
    py::class_<Schedule>(m, "Schedule", "How the learning rate moves from epoch to epoch.")
        .def(py::init([](Schedule::Kind kind, std::size_t step_size, double gamma,
                         std::size_t t_max, double eta_min, double power_t) {
                 Schedule s{kind, step_size, gamma, t_max, eta_min, power_t};
                 s.check();
                 return s;
             }),
             py::kw_only(), py::arg("kind") = Schedule::Kind::constant, py::arg("step_size") = 1,
             py::arg("gamma") = 0.1, py::arg("t_max") = 1, py::arg("eta_min") = 0.0,
             py::arg("power_t") = 0.5)
        .def_readonly("kind", &Schedule::kind)
        .def("lr", &Schedule::lr, py::arg("base"), py::arg("epoch"), py::arg("samples_seen"));

    py::class_<TrainOptions>(m, "TrainOptions", "The options of a fit.")
        .def(py::init([](std::size_t epochs, std::size_t batch_size, bool shuffle,
                         std::uint64_t seed, std::size_t patience, double min_delta,
                         bool restore_best, const Schedule& schedule, double clip_norm,
                         std::size_t block_rows, std::size_t start_epoch, double best_loss,
                         std::size_t best_epoch, std::size_t waited) {
                 TrainOptions o{epochs,     batch_size,  shuffle,    seed,        patience,
                                min_delta,  restore_best, schedule,  clip_norm,   block_rows,
                                start_epoch, best_loss,  best_epoch, waited};
                 o.check();
                 return o;
             }),
             py::kw_only(), py::arg("epochs"), py::arg("batch_size") = 0,
             py::arg("shuffle") = false, py::arg("seed") = 0, py::arg("patience") = 0,
             py::arg("min_delta") = 0.0, py::arg("restore_best") = true,
             py::arg("schedule") = Schedule{}, py::arg("clip_norm") = 0.0,
             py::arg("block_rows") = 0, py::arg("start_epoch") = 0,
             py::arg("best_loss") = std::numeric_limits<double>::quiet_NaN(),
             py::arg("best_epoch") = 0, py::arg("waited") = 0)
        .def_readonly("epochs", &TrainOptions::epochs)
        .def_readonly("batch_size", &TrainOptions::batch_size)
        .def_readonly("shuffle", &TrainOptions::shuffle)
        .def_readonly("seed", &TrainOptions::seed)
        .def_readonly("patience", &TrainOptions::patience)
        .def_readonly("block_rows", &TrainOptions::block_rows);

    py::enum_<Stop>(m, "Stop", "Why a fit ended.")
        .value("done", Stop::done)
        .value("interrupted", Stop::interrupted)
        .value("callback", Stop::callback)
        .value("non_finite", Stop::non_finite)
        .value("early_stopping", Stop::early_stopping)
        .value("converged", Stop::converged);

    py::class_<EpochLog>(m, "EpochLog", "What the epoch hook is told after each epoch.")
        .def_readonly("epoch", &EpochLog::epoch)
        .def_readonly("loss", &EpochLog::E)
        .def_readonly("val_loss", &EpochLog::E_val)
        .def_readonly("time", &EpochLog::seconds)
        .def_readonly("lr", &EpochLog::lr);
    py::class_<EpochControl>(m, "EpochControl", "What the epoch hook may ask for.")
        .def(py::init([](bool stop, std::optional<double> lr) {
                 EpochControl c;
                 c.stop = stop;
                 if (lr) {
                     if (!(std::isfinite(*lr) && *lr >= 0))
                         throw std::invalid_argument(
                             "the learning rate of the next epoch must be a finite number >= 0, "
                             "got " + py::repr(py::float_(*lr)).cast<std::string>());
                     c.lr = *lr;
                 }
                 return c;
             }),
             py::kw_only(), py::arg("stop") = false, py::arg("lr") = py::none());

    py::class_<FitRecord>(m, "FitRecord", "Per-epoch records of a fit and why it ended.")
        .def_property_readonly("epochs", &FitRecord::epochs)
        .def_property_readonly("loss", [](const FitRecord& r) { return array(r.E); })
        .def_property_readonly("val_loss", [](const FitRecord& r) { return array(r.E_val); })
        .def_property_readonly("time", [](const FitRecord& r) { return array(r.seconds); })
        .def_property_readonly("lr", [](const FitRecord& r) { return array(r.lr); })
        .def_readonly("stop", &FitRecord::stop)
        .def_readonly("best_epoch", &FitRecord::best_epoch)
        .def_readonly("fault_rank", &FitRecord::fault_rank);
}

}  // namespace fastprop::python
