"""Optimisers for :meth:`fastprop.Network.fit`, with torch.optim's names and semantics.

An optimiser object holds its hyperparameters and its state (momentum buffers, moments,
step sizes: arrays in the layout of ``net.params``), so passing the same object to several
``fit`` calls continues where the last one stopped. By name, ``fit(optimizer="adam",
betas=...)`` makes a fresh one each call. The update itself runs in the C++ core, one fused
loop over the flat parameter buffer.

========== ================================================= ====================================
name       update (g = ∂E/∂p + weight_decay·p)               class
========== ================================================= ====================================
"sgd"      p −= lr·g                                         ``SGD()``
"momentum" b = μ b + g;  p −= lr·b   (μ = 0.9)               ``SGD(momentum=0.9)``
"nesterov" b = μ b + g;  p −= lr·(g + μ b)                   ``SGD(momentum=0.9, nesterov=True)``
"adam"     Adam with bias correction (torch.optim.Adam)      ``Adam()``
"adamw"    Adam with decoupled decay p ← p(1 − lr·λ)         ``AdamW()``
"rprop"    sign-based steps, adapted per parameter           ``Rprop()``
"lm"       Levenberg–Marquardt: (JᵀJ + (μ+κ)I) Δ = Jᵀr − κp  ``LevenbergMarquardt()``
"dpsgd"    g = (Σ_s clip_C(g_s) + N(0, (σC)²)) / B, then SGD ``DPSGD()``
========== ================================================= ====================================

Learning-rate schedules for ``fit(lr_schedule=...)``, applied by the core's epoch loop to every
first-order optimiser (epoch e from 0, base rate lr, the optimiser's):

=========================================== =========================================================
``StepLR(step_size, gamma)``                lr · gamma^⌊e / step_size⌋ (torch's StepLR)
``CosineAnnealingLR(T_max, eta_min)``       eta_min + (lr − eta_min)(1 + cos(π e / T_max)) / 2,
                                            held at eta_min after T_max epochs (torch's
                                            CosineAnnealingLR)
``InvScaling(power_t)``                     lr / (1 + s)^power_t, s the samples seen before the epoch
                                            (scikit-learn's "invscaling")
``Adaptive(tol, n_iter_no_change, factor)`` lr kept while the loss improves; multiplied by ``factor``
                                            once more than n_iter_no_change epochs in a row did not
                                            improve the best loss by tol (scikit-learn's "adaptive",
                                            factor 1/5)
a callable ``epoch -> lr``                  the rate of each epoch, called between epochs
=========================================== =========================================================
"""

from __future__ import annotations

import copy
import difflib
import inspect
from typing import Any

import numpy as np

from . import _core
from ._validate import check_bool, check_choice, check_count, check_int, check_lr, check_pair, \
    check_real, check_seed, fresh_seed

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Rprop", "DPSGD", "LevenbergMarquardt", "make",
           "OPTIMIZERS", "Schedule", "StepLR", "CosineAnnealingLR", "InvScaling", "Adaptive"]


_STATES = {np.dtype(np.float64): _core.OptimizerState64, np.dtype(np.float32): _core.OptimizerState32}


class Optimizer:
    """Base class: hyperparameters, the core's typed configuration made from them
    (:meth:`config`), and state buffers created for a network at first use."""

    method = ""

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr = check_lr(lr)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0)
        self._steps = 0
        self._state: Any = None

    @property
    def steps(self) -> int:
        """Updates made so far with this object (Adam's bias correction counts them). Live
        during a fit: a callback reads the count of the updates made before it."""
        state = self.__dict__.get("_state")
        return state.steps if state is not None else self.__dict__.get("_steps", 0)

    @steps.setter
    def steps(self, value: int) -> None:
        value = check_count(value, "steps", low=0)  # Adam's t + 1 stays in the core's 64 bits
        self._check_steps(value)
        state = self.__dict__.get("_state")
        if state is not None:
            state.steps = value
        self._steps = value

    def _check_steps(self, value: int) -> None:
        """Refuses a step count this optimiser cannot take (DPSGD: one that goes back)."""

    def _hyperparameters(self) -> dict[str, Any]:
        """The hyperparameters by the core's names (see OptimizerConfig)."""
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def config(self, lr: float | None = None) -> Any:
        """The core's ``OptimizerConfig``; ``lr``, when given, overrides the object's."""
        hyperparameters = self._hyperparameters()
        if lr is not None:
            hyperparameters["lr"] = check_lr(lr)
        return _core.OptimizerConfig(getattr(_core.Method, self.method), **hyperparameters)

    @property
    def state(self) -> dict[str, np.ndarray]:
        """The state buffers by name ("m", "v"): views in the layout of ``net.params``."""
        if self._state is None:
            return {}
        return {key: buffer for key in ("m", "v")
                if (buffer := getattr(self._state, key)) is not None}

    def state_for(self, n_params: int, dtype: np.dtype, config: Any = None) -> Any:
        """The core's state for a network of n_params parameters of dtype: kept, or made new
        (zero buffers, as many as the core says this optimiser keeps), the step count carried.
        ``config``: this optimiser's ``config()``, when the caller has it already."""
        dtype = np.dtype(dtype)
        state, config = self._state, self.config() if config is None else config
        if state is not None:
            m = state.m
            if m is not None and (m.shape != (n_params,) or m.dtype != dtype):
                raise ValueError(
                    f"this {type(self).__name__} holds state for {m.size} parameters of "
                    f"{m.dtype}; the network has {n_params} of {dtype}. Use a new optimiser "
                    f"(or call reset()) for another network")
            if isinstance(state, _STATES[dtype]) and state.fits(config, n_params):
                return state  # its step count is this object's
        state = _STATES[dtype](config=config, n_params=n_params)
        state.steps = self.steps
        self._state = state
        return state

    def reset(self) -> None:
        """Forget the state (momentum, moments, step sizes) and the step count."""
        self._steps = 0
        self._state = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickles and copies carry the step count of the state, also when taken in a fit's
        callback (not from another thread while a fit runs: the state is then changing)."""
        state = self.__dict__.copy()
        state["_steps"] = state["steps"] = self.steps  # "steps": as earlier versions read it
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        steps = state.pop("steps", None)  # a plain attribute in pickles of earlier releases
        if "_steps" not in state:
            state["_steps"] = steps or 0
        self.__dict__.update(state)

    def __copy__(self) -> Optimizer:
        """A copy with its own state buffers (two optimisers never share moments); the rest of
        its attributes shared, as a shallow copy shares them."""
        new = type(self).__new__(type(self))
        new.__setstate__(self.__getstate__())
        new._state = copy.deepcopy(self.__dict__.get("_state"))
        return new

    def _arguments(self) -> dict[str, Any]:
        return {"lr": self.lr, "weight_decay": self.weight_decay}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._arguments().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Gradient descent, optionally with (Nesterov) momentum, as torch.optim.SGD (dampening 0)."""

    method = "sgd"

    def __init__(self, lr: float = 1e-3, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        self.momentum = check_real(momentum, "momentum", low=0, high=1.0)
        self.nesterov = check_bool(nesterov, "nesterov")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs a momentum > 0")

    def _hyperparameters(self) -> dict[str, Any]:
        return {**super()._hyperparameters(), "momentum": self.momentum,
                "nesterov": self.nesterov}

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "momentum": self.momentum, "nesterov": self.nesterov}


class Adam(Optimizer):
    """Adam, as torch.optim.Adam: weight_decay is L2 added to the gradient."""

    method = "adam"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        beta1, beta2 = check_pair(betas, "betas")
        self.betas = (check_real(beta1, "betas[0]", low=0, high=1.0, high_open=True),
                      check_real(beta2, "betas[1]", low=0, high=1.0, high_open=True))
        self.eps = check_real(eps, "eps", low=0)

    def _hyperparameters(self) -> dict[str, Any]:
        return {**super()._hyperparameters(), "beta1": self.betas[0], "beta2": self.betas[1],
                "eps": self.eps}

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "betas": self.betas, "eps": self.eps}


class AdamW(Adam):
    """AdamW, as torch.optim.AdamW: decoupled weight decay p ← p(1 − lr·λ) before Adam."""

    method = "adamw"

    def __init__(self, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01) -> None:
        super().__init__(lr, betas, eps, weight_decay)


class Rprop(Optimizer):
    """Resilient backpropagation, as torch.optim.Rprop; best with full batches.

    Step sizes start at ``lr``, grow by etas[1] while the gradient keeps its sign, shrink by
    etas[0] when it flips (and that step is skipped), within step_sizes.

    ``lr`` is read once, for the first step sizes, as torch's Rprop reads it: an
    ``lr_schedule``, or a rate set from a callback, is recorded in ``history.lr`` but moves
    no step of a fit that has started.
    """

    method = "rprop"

    def __init__(self, lr: float = 0.01, etas: tuple[float, float] = (0.5, 1.2),
                 step_sizes: tuple[float, float] = (1e-6, 50.0), weight_decay: float = 0.0) -> None:
        super().__init__(lr, weight_decay)
        eta_minus, eta_plus = check_pair(etas, "etas")
        self.etas = (check_real(eta_minus, "etas[0]", low=0, low_open=True, high=1.0,
                                high_open=True),
                     check_real(eta_plus, "etas[1]", low=1.0, low_open=True))
        step_min, step_max = check_pair(step_sizes, "step_sizes")
        self.step_sizes = (check_real(step_min, "step_sizes[0]", low=0),
                           check_real(step_max, "step_sizes[1]", low=0))
        if self.step_sizes[0] > self.step_sizes[1]:
            raise ValueError(f"step_sizes must be (min, max) with min <= max, got {step_sizes}")

    def _hyperparameters(self) -> dict[str, Any]:
        return {**super()._hyperparameters(), "eta_minus": self.etas[0],
                "eta_plus": self.etas[1], "step_min": self.step_sizes[0],
                "step_max": self.step_sizes[1]}

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "etas": self.etas, "step_sizes": self.step_sizes}


class DPSGD(SGD):
    """Differentially private SGD, as Opacus's ``DPOptimizer`` around ``torch.optim.SGD``.

    Each minibatch of B rows: the per-sample gradients g_s = ∂(w_s ℓ_s)/∂params of each
    sample's own loss (for a mean loss, without the division by the batch size; w_s = 1
    without sample weights) are clipped to ``max_grad_norm`` C, summed, and Gaussian noise
    of standard deviation ``noise_multiplier``·C is added to each parameter:

        g = (Σ_s min(1, C / (||g_s|| + 1e-6)) g_s + N(0, (noise_multiplier·C)²)) / B

    (Opacus with ``expected_batch_size`` = B), then the SGD update with ``momentum``,
    ``nesterov`` and ``weight_decay`` as :class:`SGD`. The per-sample gradients are never
    formed: their norms come from ||δ_{i+1,s}||·||a_{i,s}|| and the clipped sum from the
    backward pass with each sample's δ scaled by its clipping factor. The noise comes from
    the core's generator, seeded by the step count and ``seed`` when given. By default
    (``seed=None``) each fit seeds it from the fit's own seed, which the network's seed and
    its count of fits make (or ``fit(seed=...)``): each fit of a network draws new noise, and
    a network built with a seed repeats its fits bit for bit. A fixed ``seed`` repeats the
    same noise in every fit that starts from step 0: for tests, not for privacy.

    Copies repeat noise. A pickle, ``copy.deepcopy`` or saved file of a network keeps its
    seed and count of fits, so the copy's next fit draws the very noise of the original's
    next fit (as a copied random generator repeats its stream), and a copy of a used DPSGD
    object the noise of the original's next steps. Two copies trained on neighbouring data
    sets would then share their noise, which cancels in the difference of the results: give
    each such fit its own seed, e.g. ``fit(..., seed=secrets.randbits(63))``. ``reset()``
    draws new noise for an object without a ``seed``.

    B is the rows of the minibatch whatever the loss, as Opacus with
    ``loss_reduction="mean"`` takes it: with ``loss="sse"`` (no mean) a step without
    clipping or noise is 1/B of an SGD step, where Opacus with ``loss_reduction="sum"``
    would not divide. An empty batch (``net.step`` on 0 rows) adds noise alone, divided by 1:
    Opacus too adds noise to an empty Poisson-sampled batch.

    Privacy accounting (ε, δ from noise_multiplier, sampling rate and steps) is left to a
    tool such as Opacus's accountants.
    """

    method = "dpsgd"

    def __init__(self, lr: float = 1e-3, max_grad_norm: float = 1.0,
                 noise_multiplier: float = 1.0, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0, seed: int | None = None) -> None:
        super().__init__(lr, momentum, nesterov, weight_decay)
        self.max_grad_norm = check_real(max_grad_norm, "max_grad_norm", low=0, low_open=True)
        self.noise_multiplier = check_real(noise_multiplier, "noise_multiplier", low=0)
        self.seed = None if seed is None else check_seed(seed, "seed")
        # Without a seed: the noise's seed of the next fit (set by Network.fit from the fit's
        # seed), or, for a step outside fit, one drawn from the OS here.
        self._noise_seed = fresh_seed() if seed is None else self.seed

    def _hyperparameters(self) -> dict[str, Any]:
        noise_seed = self.seed if self.seed is not None else self._noise_seed
        return {**super()._hyperparameters(), "max_grad_norm": self.max_grad_norm,
                "noise_multiplier": self.noise_multiplier, "noise_seed": noise_seed}

    def reset(self) -> None:
        """Forget the state and the step count; without a ``seed``, the noise of the steps
        to come is drawn anew too (the step count indexes it, so it would repeat)."""
        super().reset()
        if self.seed is None:
            self._noise_seed = fresh_seed()

    def _check_steps(self, value: int) -> None:
        if value < self.steps:
            raise ValueError(
                f"a DPSGD's step count indexes its noise: setting it back (to {value} from "
                f"{self.steps}) would add noise already added. reset() forgets the state and, "
                f"without a seed, draws new noise")

    def _seed_noise_from(self, fit_seed: int) -> None:
        """A fit's noise, when no seed was given: from the fit's seed (Network.fit)."""
        if self.seed is None:
            words = np.random.SeedSequence([fit_seed, 0x4450]).generate_state(2, np.uint64)
            self._noise_seed = int(words[0])

    def _arguments(self) -> dict[str, Any]:
        return {**super()._arguments(), "max_grad_norm": self.max_grad_norm,
                "noise_multiplier": self.noise_multiplier, "seed": self.seed}


class LevenbergMarquardt:
    """Levenberg–Marquardt, the second-order method for sum-of-squares errors.

    Each epoch is one iteration on the whole batch: with residuals r = y − z_n and the
    Jacobian J = ∂z_n/∂params (computed by backpropagation, one backward pass per output
    unit), it solves (JᵀJ + μI) Δ = Jᵀr and moves the parameters by Δ when that lowers E,
    then μ ← μ·mu_dec; otherwise it retries with μ ← μ·mu_inc. Past mu_max no step helps
    and training stops (``history.stop == "converged"``). Defaults are MATLAB trainlm's.

    With ``weight_decay`` λ > 0 it minimises E + λ/2·||params||² instead (the L2 penalty
    whose gradient λ·p the other optimisers add, biases included): the system becomes
    (JᵀJ + (μ + κ) I) Δ = Jᵀr − κ p with κ = λ/2 for "sse" (λ·t·l_n/2 for "mse", t
    the samples or their total weight), and a step is kept when it lowers the penalised
    error.
    The history still records E. λ is read when a fit starts. μ is kept at or above the
    smallest normal double (2.2e-308), so that it can always grow past mu_max.

    Only for the losses "sse" and "mse" and networks of at most 4096 parameters (the
    normal matrix JᵀJ has n_params² entries). μ is kept across fit calls.
    """

    method = "lm"
    max_params = int(_core.lm_max_params)

    def __init__(self, mu: float = 1e-3, mu_dec: float = 0.1, mu_inc: float = 10.0,
                 mu_max: float = 1e10, weight_decay: float = 0.0) -> None:
        self._config = _core.LmConfig(
            mu=check_real(mu, "mu", low=0, low_open=True),
            mu_dec=check_real(mu_dec, "mu_dec", low=0, low_open=True, high=1.0, high_open=True),
            mu_inc=check_real(mu_inc, "mu_inc", low=1.0, low_open=True),
            mu_max=check_real(mu_max, "mu_max", low=0, low_open=True),
            weight_decay=check_real(weight_decay, "weight_decay", low=0) + 0.0)  # not -0.0

    @property
    def mu(self) -> float:
        """The damping now: it adapts every iteration and is kept across fit calls."""
        return float(self._config.mu)

    @mu.setter
    def mu(self, value: float) -> None:
        self._config.mu = check_real(value, "mu", low=0, low_open=True)

    mu_dec = property(lambda self: float(self._config.mu_dec), doc="μ's factor after a good step.")
    mu_inc = property(lambda self: float(self._config.mu_inc), doc="μ's factor after a bad step.")
    mu_max = property(lambda self: float(self._config.mu_max), doc="Past it: converged.")

    @property
    def weight_decay(self) -> float:
        """λ of the penalty λ/2·||params||² (0: none)."""
        return float(self._config.weight_decay)

    @weight_decay.setter
    def weight_decay(self, value: float) -> None:
        self._config.weight_decay = check_real(value, "weight_decay", low=0) + 0.0

    def config(self) -> Any:
        """The core's ``LmConfig``, whose μ each fit updates in place."""
        return self._config

    _FIELDS = ("mu", "mu_dec", "mu_inc", "mu_max", "weight_decay", "decay_biases")

    def __getstate__(self) -> dict[str, Any]:
        """Pickles (and deep copies) carry the configuration, μ as it is now."""
        return {name: getattr(self._config, name) for name in self._FIELDS}

    def __setstate__(self, state: dict[str, Any]) -> None:
        decay_biases = bool(state.pop("decay_biases", True))
        self.__init__(**state)  # checked again, as a fresh construction
        self._config.decay_biases = decay_biases

    def __repr__(self) -> str:
        return (f"LevenbergMarquardt(mu={self.mu!r}, mu_dec={self.mu_dec!r}, "
                f"mu_inc={self.mu_inc!r}, mu_max={self.mu_max!r}, "
                f"weight_decay={self.weight_decay!r})")


OPTIMIZERS: dict[str, tuple[type, dict[str, Any]]] = {
    "sgd": (SGD, {}),
    "momentum": (SGD, {"momentum": 0.9}),
    "nesterov": (SGD, {"momentum": 0.9, "nesterov": True}),
    "adam": (Adam, {}),
    "adamw": (AdamW, {}),
    "rprop": (Rprop, {}),
    "lm": (LevenbergMarquardt, {}),
    "dpsgd": (DPSGD, {}),
}


def _class_given(cls: type) -> str:
    """What to say of an optimiser class given where an object or a name goes."""
    names = [key for key, (known, preset) in OPTIMIZERS.items() if known is cls and not preset]
    if cls is Optimizer:
        return ("optimizer must be a name or an Optimizer object, got the base class "
                "Optimizer: make an object of one of its subclasses, e.g. optimizer=Adam()")
    return (f"optimizer must be a name or an Optimizer object, got the class {cls.__name__}: "
            f"make one, optimizer={cls.__name__}(...)"
            + (f", or give its name, optimizer={names[0]!r}" if names else ""))


def make(name: str, lr: float | None = None,
         **hyperparameters: Any) -> Optimizer | LevenbergMarquardt:
    """An optimiser by name, with keyword hyperparameters (lr None: the optimiser's default)."""
    if isinstance(name, type) and issubclass(name, (Optimizer, LevenbergMarquardt)):
        raise TypeError(_class_given(name))
    check_choice(name, "optimizer", list(OPTIMIZERS),
                 expected=f"one of {', '.join(OPTIMIZERS)} (or an Optimizer object)")
    cls, preset = OPTIMIZERS[name]
    arguments = {**preset, **hyperparameters}
    if lr is not None and cls is LevenbergMarquardt:
        raise TypeError("optimizer 'lm' takes no lr: its step comes from the damping mu")
    if lr is not None:
        arguments["lr"] = lr
    try:
        return cls(**arguments)
    except TypeError as error:
        if "unexpected keyword argument" not in str(error):
            raise
        key = str(error).split("'")[1]
        valid = list(inspect.signature(cls).parameters)
        # fit passes the keywords it does not know on to the optimiser: a misspelt keyword
        # of fit (batchsize, optimiser) ends here, so the suggestion looks at both
        from .network import Network

        known = valid + [k for k in inspect.signature(Network.fit).parameters
                         if k not in ("self", "X", "Y", "hyperparameters")]
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise TypeError(f"{key!r} is neither a keyword of fit nor a hyperparameter of "
                        f"optimizer {name!r} (it takes {', '.join(valid)}){hint}") from None


class Schedule:
    """Base class of the learning-rate schedules the core applies between epochs; see the
    module's table."""

    def _core_schedule(self) -> Any:
        raise NotImplementedError

    def lr(self, base: float, epoch: int, samples_seen: float = 0.0) -> float:
        """The rate of epoch ``epoch`` (from 0) for the base rate ``base``, as the core sets it."""
        return float(self._core_schedule().lr(base=base, epoch=epoch, samples_seen=samples_seen))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class StepLR(Schedule):
    """lr · gamma^⌊epoch / step_size⌋, as torch.optim.lr_scheduler.StepLR stepped once an epoch."""

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        self.step_size = check_int(step_size, "step_size", low=1)
        self.gamma = check_real(gamma, "gamma", low=0, low_open=True)

    def _core_schedule(self) -> Any:
        return _core.Schedule(kind=_core.ScheduleKind.step, step_size=self.step_size,
                              gamma=self.gamma)


class CosineAnnealingLR(Schedule):
    """eta_min + (lr − eta_min)(1 + cos(π·epoch / T_max)) / 2, as torch's CosineAnnealingLR
    stepped once an epoch; held at eta_min after T_max epochs."""

    def __init__(self, T_max: int, eta_min: float = 0.0) -> None:  # noqa: N803 (torch's name)
        self.T_max = check_int(T_max, "T_max", low=1)
        self.eta_min = check_real(eta_min, "eta_min", low=0)

    def _core_schedule(self) -> Any:
        return _core.Schedule(kind=_core.ScheduleKind.cosine, t_max=self.T_max,
                              eta_min=self.eta_min)


class InvScaling(Schedule):
    """lr / (1 + s)^power_t, s the samples seen before the epoch (scikit-learn's "invscaling"
    with its rate updated once an epoch)."""

    def __init__(self, power_t: float = 0.5) -> None:
        self.power_t = check_real(power_t, "power_t", low=0)

    def _core_schedule(self) -> Any:
        return _core.Schedule(kind=_core.ScheduleKind.invscaling, power_t=self.power_t)


class Adaptive(Schedule):
    """scikit-learn's "adaptive" rate: kept while the loss improves, multiplied by ``factor``
    (scikit-learn: 1/5) each time more than ``n_iter_no_change`` epochs in a row did not bring
    the loss below the best so far minus ``tol``. The loss watched is the validation loss
    when there is validation data, else the training loss. Decided between epochs, from the
    core's epoch hook."""

    def __init__(self, tol: float = 1e-4, n_iter_no_change: int = 10,
                 factor: float = 0.2) -> None:
        self.tol = check_real(tol, "tol", low=0)
        self.n_iter_no_change = check_int(n_iter_no_change, "n_iter_no_change", low=0)
        self.factor = check_real(factor, "factor", low=0, high=1, low_open=True)

    def _core_schedule(self) -> Any:
        return _core.Schedule()  # constant between the hook's decisions

    def lr(self, base: float, epoch: int, samples_seen: float = 0.0) -> float:
        raise TypeError("Adaptive's rate depends on the losses of the fit, not on the epoch")

    def _tracker(self, lr: float) -> "_AdaptiveTracker":
        return _AdaptiveTracker(self, lr)


class _AdaptiveTracker:
    """One fit's state of an Adaptive schedule: the rate, the best loss and the count."""

    def __init__(self, rule: Adaptive, lr: float) -> None:
        self.rule, self.lr = rule, lr
        self.best = float("inf")
        self.count = 0

    def after_epoch(self, loss: float) -> float:
        """The rate of the next epoch, after an epoch with this monitored loss."""
        self.count = self.count + 1 if not loss <= self.best - self.rule.tol else 0
        self.best = min(self.best, loss)
        if self.count > self.rule.n_iter_no_change:
            self.lr *= self.rule.factor
            self.count = 0
        return self.lr
