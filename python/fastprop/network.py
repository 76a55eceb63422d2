"""fastprop.Network: the user-facing network, a thin layer over the C++ core."""

from __future__ import annotations

import math
import numbers
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core, optim
from .reference import ACTIVATIONS, LOSSES

__all__ = ["Network", "Trace", "History", "set_num_threads", "get_num_threads"]


def set_num_threads(k: int) -> None:
    """Use k >= 1 threads for the matrix products of every network in this process.

    The default is the environment variable FASTPROP_NUM_THREADS when set, else the number
    of CPUs. Small products stay on one thread whatever k is. Results are bit-identical for
    every k: each sum over samples is taken in the same order.
    """
    k = _check_count(k, "k")
    if k < 1:
        raise ValueError(f"k must be a positive number of threads, got {k}")
    _core.set_num_threads(k)


def get_num_threads() -> int:
    """The number of threads the matrix products may use (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def _warn_about_ignored_settings(environ: dict[str, str]) -> None:
    """A RuntimeWarning for each FASTPROP_* variable the core would ignore for its value."""
    isa = environ.get("FASTPROP_MAX_ISA")
    if isa is not None and isa not in ("portable", "avx2", "avx512"):
        warnings.warn(f"FASTPROP_MAX_ISA={isa!r} is ignored (the kernels are not capped): "
                      f"expected 'portable', 'avx2' or 'avx512'", RuntimeWarning, stacklevel=2)
    threads = environ.get("FASTPROP_NUM_THREADS")
    match = re.fullmatch(r"\s*\+?(\d+)", threads) if threads is not None else None
    if threads is not None and (match is None or int(match.group(1)) == 0):
        warnings.warn(f"FASTPROP_NUM_THREADS={threads!r} is ignored (the default is the number "
                      f"of CPUs): expected a positive integer", RuntimeWarning, stacklevel=2)


_warn_about_ignored_settings(dict(os.environ))

_DTYPES = {np.dtype(np.float64): _core.Network64, np.dtype(np.float32): _core.Network32}


class Trace(NamedTuple):
    """Every z_i and a_i of a forward pass, indexed by layer as in the model.

    ``z[i]`` for 1 ≤ i ≤ n (``z[0]`` is None) and ``a[i]`` for 0 ≤ i ≤ n−1 (``a[0]`` is the
    input, ``a[n]`` is None): arrays of shape (t, l_i), or (l_i,) for a single sample.
    """

    z: list[np.ndarray | None]
    a: list[np.ndarray | None]


class History(np.ndarray):
    """The loss of every epoch of a :meth:`Network.fit`: a float64 array, with more attached.

    Attributes
    ----------
    val_loss : ndarray or None
        The loss on the validation data after every epoch, when there was any.
    time : ndarray
        Wall-clock seconds since fit began, at the end of every epoch.
    best_epoch : int or None
        With ``patience``: the epoch of the best monitored loss (0-based).
    stop : str
        Why training ended: "done", "early_stopping", "callback", or "converged"
        (Levenberg–Marquardt found no better point).

    Arrays derived from it (slices, arithmetic) are plain data without these attributes.
    """

    val_loss: np.ndarray | None
    time: np.ndarray
    best_epoch: int | None
    stop: str

    def __new__(cls, loss: np.ndarray, val_loss: np.ndarray | None = None,
                time: np.ndarray | None = None, best_epoch: int | None = None,
                stop: str = "done") -> "History":
        obj = np.asarray(loss, dtype=np.float64).view(cls)
        obj.val_loss = val_loss
        obj.time = np.zeros(len(obj)) if time is None else time
        obj.best_epoch = best_epoch
        obj.stop = stop
        return obj

    def __array_finalize__(self, obj: Any) -> None:
        self.val_loss, self.time, self.best_epoch, self.stop = None, None, None, "done"

    def __reduce__(self):
        return (History, (np.asarray(self), self.val_loss, self.time, self.best_epoch, self.stop))


class _Progress:
    """A live progress bar for fit: tqdm when installed, a plain one-line bar otherwise."""

    def __init__(self, epochs: int, samples: int) -> None:
        self.epochs, self.samples = epochs, samples
        self.last = 0.0
        try:
            from tqdm import tqdm
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, unit="epoch", dynamic_ncols=True)

    def update(self, epoch: int, logs: dict[str, Any]) -> None:
        seconds = logs["time"]
        rate = self.samples * (epoch + 1) / seconds if seconds > 0 else float("inf")
        info = f"loss {logs['loss']:.4g}"
        if "val_loss" in logs:
            info += f", val {logs['val_loss']:.4g}"
        info += f", {rate:,.0f} samples/s"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix_str(info, refresh=False)
            return
        now = time.perf_counter()
        if now - self.last < 0.1 and epoch + 1 < self.epochs:
            return  # at most ten redraws a second
        self.last = now
        done = (epoch + 1) / self.epochs
        eta = seconds / done - seconds
        bar = "#" * int(24 * done)
        sys.stderr.write(f"\repoch {epoch + 1}/{self.epochs} [{bar:<24}] {info}, ETA {eta:.1f} s ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\n")


class Network:
    """A feedforward network trained by backpropagation in fastprop's C++ core.

    Layers 0..n have sizes ``layers = (l_0, ..., l_n)``. For a sample x (a row of X):

        z_{i+1} = W_i a_i (+ b_i),   a_i = σ(z_i) for 1 ≤ i ≤ n−1,   a_0 = x,

    and the output is z_n, with no activation. The error of a batch is, for the default
    ``loss="sse"``, E = Σ_samples ||y − z_n||².

    Parameters
    ----------
    layers : sequence of int
        Layer sizes (l_0, ..., l_n), at least two, each ≥ 1.
    activation : str or sequence of str, default "sigmoid"
        σ of the hidden layers: one name for all, or a list of n−1 names, one per hidden
        layer. One of "sigmoid", "tanh", "relu", "leaky_relu" (slope 0.01), "softplus",
        "identity".
    bias : bool, default False
        Add b_i to every layer. False reproduces the classic model exactly.
    dtype : "float64" or "float32", default "float64"
        Precision of the parameters and of every computation.
    seed : int or None
        Seed of the deterministic initialisation (Glorot uniform, He uniform before relu and
        leaky_relu; zero biases). None draws a fresh seed, kept in ``net.seed``.
    loss : str, default "sse"
        "sse" (the model's E), "mse" (mean over all t·l_n elements, as torch.nn.MSELoss),
        "cross_entropy" (softmax of z_n, mean over samples of −Σ_j y_j log p_j, as
        torch.nn.CrossEntropyLoss; Y as target probabilities (t, l_n) or integer labels
        (t,)) or "binary_cross_entropy" (sigmoid of z_n, mean over all t·l_n elements, as
        torch.nn.BCEWithLogitsLoss).

    Attributes
    ----------
    params : ndarray
        1-D writable view of the one parameter buffer: W_0, b_0, W_1, b_1, ... (no b_i
        without bias), each W_i row-major. ``weights`` and ``biases`` alias into it.
    history : History
        E of every epoch of the last :meth:`fit` (so far, if it was interrupted), with the
        validation loss and the wall time.

    Examples
    --------
    >>> import numpy as np, fastprop
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    >>> Y = np.array([[0], [1], [1], [0]], dtype=float)
    >>> net = fastprop.Network([2, 4, 1], seed=0)
    >>> losses = net.fit(X, Y, epochs=5000, lr=0.5)
    >>> bool(losses[-1] < 0.05)
    True
    """

    def __init__(
        self,
        layers: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        bias: bool = False,
        dtype: DTypeLike = "float64",
        seed: int | None = None,
        loss: str = "sse",
    ) -> None:
        layers = _check_layers(layers)
        self._activations = _check_activations(activation, len(layers) - 1)
        self._bias = _check_bool(bias, "bias")
        self._dtype = _check_dtype(dtype)
        self._loss = _check_name(loss, LOSSES, "loss")
        self._seed = _fresh_seed() if seed is None else _check_seed(seed)
        _check_memory(layers, self._bias, self._dtype)
        core_class = _DTYPES[self._dtype]
        self._core = core_class(list(layers), list(self._activations), self._bias, self._loss,
                                self._seed)
        self.history = History(np.empty(0))

    # ------------------------------------------------------------------ description
    @property
    def layers(self) -> tuple[int, ...]:
        """(l_0, ..., l_n)."""
        return tuple(self._core.layers)

    @property
    def n(self) -> int:
        """Number of weight matrices W_0 … W_{n−1}."""
        return len(self._core.layers) - 1

    @property
    def activations(self) -> tuple[str, ...]:
        """σ_1 … σ_{n−1}, one name per hidden layer."""
        return self._activations

    @property
    def activation(self) -> str | tuple[str, ...]:
        """The hidden activation as given: one name when all layers share it."""
        names = set(self._activations)
        return self._activations[0] if len(names) == 1 else self._activations

    @property
    def bias(self) -> bool:
        return self._bias

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def loss_name(self) -> str:
        return self._loss

    @property
    def seed(self) -> int:
        """The initialisation seed (drawn at construction when none was given)."""
        return self._seed

    @property
    def n_params(self) -> int:
        return int(self._core.n_params)

    def __repr__(self) -> str:
        return (f"Network(layers={self.layers}, activation={self.activation!r}, "
                f"bias={self.bias}, dtype='{self.dtype.name}', loss='{self.loss_name}')")

    # ------------------------------------------------------------------ parameters
    @property
    def params(self) -> np.ndarray:
        """1-D writable view of every parameter: W_0, (b_0,) W_1, (b_1,) ..."""
        return self._core.params

    @params.setter
    def params(self, values: ArrayLike) -> None:
        values = _real_array(values, "params")
        if values.shape != (self.n_params,):
            raise ValueError(f"params must have shape ({self.n_params},), got {values.shape}")
        self._core.params[...] = values

    @property
    def weights(self) -> list[np.ndarray]:
        """W_0 … W_{n−1}: writable views of shape (l_{i+1}, l_i) into :attr:`params`."""
        p = self._core.params
        return [p[W:W + l_out * l_in].reshape(l_out, l_in)
                for l_in, l_out, W, _ in self._core.slices]

    @property
    def biases(self) -> list[np.ndarray]:
        """b_0 … b_{n−1}: writable views of shape (l_{i+1},) into :attr:`params`; [] without bias."""
        if not self._bias:
            return []
        p = self._core.params
        return [p[b:b + l_out] for _, l_out, _, b in self._core.slices]

    def init(self, seed: int | None = None) -> None:
        """Draw the parameters again, as a new network with this ``seed`` would have them."""
        self._seed = _fresh_seed() if seed is None else _check_seed(seed)
        self._core.init(self._seed)

    def _split(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Views of a flat buffer in the parameter layout, shaped like weights and biases."""
        dW = [flat[W:W + l_out * l_in].reshape(l_out, l_in)
              for l_in, l_out, W, _ in self._core.slices]
        db = [flat[b:b + l_out] for _, l_out, _, b in self._core.slices] if self._bias else []
        return dW, db

    # ------------------------------------------------------------------ computation
    def forward(self, X: ArrayLike) -> np.ndarray:
        """z_n for X of shape (t, l_0): shape (t, l_n); for one sample of shape (l_0,): (l_n,)."""
        X, single = self._inputs(X)
        out = self._core.forward(X)
        return out[0] if single else out

    __call__ = forward

    def trace(self, X: ArrayLike) -> Trace:
        """Every z_i and a_i of a forward pass (for teaching and debugging); see :class:`Trace`."""
        X, single = self._inputs(X)
        z, a = self._core.trace(X)
        z, a = [None, *z], [X, *a, None]
        if single:
            z = [None if v is None else v[0] for v in z]
            a = [None if v is None else v[0] for v in a]
        return Trace(z, a)

    def loss(self, X: ArrayLike, Y: ArrayLike) -> float:
        """E of the batch; for "sse", the sum over samples of ||y − z_n||²."""
        return float(self._core.loss(*self._batch(X, Y)))

    def gradient(self, X: ArrayLike, Y: ArrayLike) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """(E, dW, db): dW[i] = ∂E/∂W_i shaped like W_i, db[i] = ∂E/∂b_i ([] without bias).

        Gradients are summed over the samples. An empty batch gives E = 0 and zero gradients.
        """
        E, flat = self._core.gradient(*self._batch(X, Y))
        dW, db = self._split(flat)
        return float(E), dW, db

    def loss_and_grad(self, X: ArrayLike, Y: ArrayLike,
                      params: ArrayLike | None = None) -> tuple[float, np.ndarray]:
        """(E, ∂E/∂params) as one flat array in the layout of :attr:`params`.

        With ``params`` given, both are evaluated at those parameters instead of the
        network's, which stay as they are. Ready for outside optimisers::

            scipy.optimize.minimize(lambda p: net.loss_and_grad(X, Y, p), net.params.copy(),
                                    jac=True, method="L-BFGS-B")
        """
        X, Y = self._batch(X, Y)
        if params is not None:
            params = _real_array(params, "params")
            if params.shape != (self.n_params,):
                raise ValueError(f"params must have shape ({self.n_params},), got {params.shape}")
            params = self._convert(params)
        E, flat = self._core.loss_and_grad(X, Y, params)
        return float(E), flat

    def jacobian(self, X: ArrayLike) -> np.ndarray:
        """J = ∂z_n/∂params, float64 of shape (t·l_n, n_params): row s·l_n + j is the
        gradient of output j of sample s, in the layout of :attr:`params`.

        Computed by backpropagation, one backward pass per output unit (δ_n = e_j).
        """
        X, _ = self._inputs(X)
        return self._core.jacobian(X)

    def step(self, X: ArrayLike, Y: ArrayLike, lr: float | None = None, *,
             optimizer: optim.Optimizer | None = None) -> float:
        """One update on the whole batch; returns E before it.

        By default plain gradient descent, W_i −= lr·∂E/∂W_i (and b_i). With an
        ``optimizer`` object (its state carried from call to call), its update instead;
        ``lr``, when given, then overrides the optimiser's.
        """
        if optimizer is None:
            if lr is None:
                raise TypeError("step needs lr (or an optimizer object)")
            optimizer = optim.SGD(lr=_check_positive(lr, "lr"))
        elif not isinstance(optimizer, optim.Optimizer):
            raise TypeError(f"optimizer must be a fastprop.optim.Optimizer, got "
                            f"{type(optimizer).__name__}")
        config = optimizer.config()
        if lr is not None:
            config["lr"] = _check_positive(lr, "lr")
        X, Y = self._batch(X, Y)
        m, v = optimizer.state_for(self.n_params, self._dtype)
        E, optimizer.steps = self._core.step(X, Y, config, m, v, optimizer.steps)
        return float(E)

    def fit(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        epochs: int,
        lr: float | None = None,
        *,
        optimizer: str | optim.Optimizer = "sgd",
        batch_size: int | None = None,
        shuffle: bool = True,
        seed: int | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        validation_fraction: float | None = None,
        patience: int | None = None,
        min_delta: float = 0.0,
        restore_best: bool = True,
        callback: Callable[[int, dict[str, Any]], Any] | None = None,
        verbose: bool = False,
        **hyperparameters: Any,
    ) -> History:
        """Train; the whole loop (gather, forward, backward, update) runs in C++ without the GIL.

        Parameters
        ----------
        X, Y : array-like of shape (t, l_0) and (t, l_n)
            For ``loss="cross_entropy"``, Y may also be integer class labels of shape (t,).
        epochs : int
            Passes over the data (0 does nothing).
        lr : float or None
            Learning rate; None takes the optimiser's default, as torch.optim's (0.001 for
            "sgd", "momentum", "nesterov", "adam" and "adamw", 0.01 for "rprop").
        optimizer : str or optimiser object, default "sgd"
            "sgd" (the model's W_i −= lr·∂E/∂W_i), "momentum", "nesterov", "adam", "adamw",
            "rprop" (see :mod:`fastprop.optim`), with keyword ``hyperparameters`` as in
            torch.optim (momentum, nesterov, betas, eps, weight_decay, etas, step_sizes);
            or "lm", Levenberg–Marquardt (full batch, "sse"/"mse" losses, at most 4096
            parameters; hyperparameters mu, mu_dec, mu_inc, mu_max). An optimiser object
            keeps its state across fit calls.
        batch_size : int or None
            None: full batch, one update per epoch on the gradient summed over all t samples
            (the classic method). An int: minibatches of that many rows, the last possibly
            smaller, one update each.
        shuffle : bool, default True
            With minibatches, permute the samples every epoch (from ``seed``).
        seed : int or None
            Seed of the permutations; None draws one (when there are any to draw).
        validation_data : (X_val, Y_val) or None
            Evaluated after every epoch (``history.val_loss``).
        validation_fraction : float or None
            Instead of validation_data: hold out this fraction (0, 1) of the rows, the last
            ones, as validation data.
        patience : int or None
            Early stopping: stop after this many epochs in which the validation loss (the
            training loss, without validation) did not improve by more than ``min_delta``.
            With ``restore_best`` the network ends at the parameters of the best epoch, also
            when all epochs ran (not when the callback stopped training): after that
            epoch's updates for the validation loss, before them for the training loss
            (which each update is measured before).
        callback : callable(epoch, logs) or None
            Called after every epoch with ``logs = {"loss", "val_loss" (with validation),
            "time"}``; returning False stops. Without callback, verbose and validation,
            Python is not called back at all.
        verbose : bool
            Show a live progress bar (tqdm when installed, a plain one otherwise).

        Returns
        -------
        History
            E of every epoch, a float64 array: with minibatches, the sum (for a mean loss,
            the row-weighted mean) of the minibatch losses, each taken before its update.
            Its ``val_loss``, ``time``, ``best_epoch`` and ``stop`` say more. Also kept in
            :attr:`history`.

        Raises
        ------
        FloatingPointError
            When a loss becomes NaN or infinite; the parameters stay at the last finite state.
        KeyboardInterrupt
            On Ctrl-C, between two updates (or, in a batch too large for one pass, between
            its chunks, dropping that step); the parameters stay at the last completed update
            and :attr:`history` holds the completed epochs.
        """
        X, Y = self._batch(X, Y)
        if X.shape[0] == 0:
            raise ValueError("fit needs at least one sample, got X with 0 rows")
        epochs = _check_count(epochs, "epochs")
        if lr is not None:
            lr = _check_positive(lr, "lr")
        if isinstance(optimizer, (optim.Optimizer, optim.LevenbergMarquardt)):
            if hyperparameters:
                raise TypeError(f"hyperparameters {sorted(hyperparameters)} go to the optimizer "
                                f"object's constructor, not to fit")
            opt = optimizer
        else:
            opt = optim.make(optimizer, lr, **hyperparameters)
        config = opt.config()
        lm = isinstance(opt, optim.LevenbergMarquardt)
        if lr is not None and not lm:
            config["lr"] = lr
        if lm and batch_size is not None:
            raise ValueError("optimizer 'lm' works on the whole batch: batch_size must be None")
        batch = 0 if batch_size is None else _check_count(batch_size, "batch_size")
        if batch_size is not None and batch == 0:
            raise ValueError("batch_size must be a positive integer or None, got 0")
        shuffle = _check_bool(shuffle, "shuffle")
        X, Y, X_val, Y_val = self._validation(X, Y, validation_data, validation_fraction)
        if seed is not None:
            seed = _check_seed(seed)
        else:  # drawn only when the core shuffles: the OS's entropy costs more than a small step
            seed = _fresh_seed() if shuffle and 0 < batch < len(X) else 0
        patience = 0 if patience is None else _check_count(patience, "patience")
        min_delta = _check_nonnegative(min_delta, "min_delta")
        restore_best = _check_bool(restore_best, "restore_best")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable or None, got {type(callback).__name__}")
        verbose = _check_bool(verbose, "verbose")

        errors: list[BaseException] = []
        progress = _Progress(epochs, len(X)) if verbose and epochs > 0 else None
        epoch_end = None
        if callback is not None or progress is not None:

            def epoch_end(epoch: int, E: float, E_val: float, seconds: float) -> bool:
                logs = {"loss": E, "time": seconds}
                if X_val is not None:
                    logs["val_loss"] = E_val
                try:
                    if progress is not None:
                        progress.update(epoch, logs)
                    return callback is None or callback(epoch, logs) is not False
                except BaseException as error:  # re-raised below, after the history is kept
                    errors.append(error)
                    return False

        try:
            if lm:
                out = self._core.fit_lm(X, Y, epochs, X_val, Y_val, patience, min_delta,
                                        restore_best, config, epoch_end)
                opt.mu = out["mu"]
            else:
                m, v = opt.state_for(self.n_params, self._dtype)
                out = self._core.fit(X, Y, epochs, batch, shuffle, seed, X_val, Y_val, patience,
                                     min_delta, restore_best, config, m, v, opt.steps, epoch_end)
                opt.steps = out["steps"]
        finally:
            if progress is not None:
                progress.close()
        stop = out["stop"]
        self.history = History(out["loss"], out["val_loss"], out["time"],
                               out["best_epoch"] if patience else None,
                               stop if stop in ("early_stopping", "callback", "converged") else "done")
        if errors:
            raise errors[0]
        if out["error"] is not None:
            raise out["error"]
        if stop == "non_finite":
            raise FloatingPointError(
                f"the loss or its gradient became NaN or infinite in epoch {len(self.history)}; "
                f"parameters are left at the last finite state (check the data for NaN or inf, "
                f"or try a smaller lr)")
        return self.history

    def _validation(self, X, Y, validation_data, validation_fraction):
        """(X, Y, X_val, Y_val): the training rows and the validation set, or None."""
        if validation_data is not None and validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        if validation_fraction is not None:
            fraction = _check_nonnegative(validation_fraction, "validation_fraction")
            n_val = int(round(fraction * len(X)))
            if not 0 < fraction < 1 or n_val < 1 or n_val >= len(X):
                raise ValueError(f"validation_fraction must leave at least one row on each side "
                                 f"of the split, in (0, 1); got {validation_fraction} for "
                                 f"{len(X)} rows")
            return X[:-n_val], Y[:-n_val], X[-n_val:], Y[-n_val:]
        if validation_data is None:
            return X, Y, None, None
        try:
            X_val, Y_val = validation_data
        except (TypeError, ValueError):
            raise TypeError("validation_data must be a pair (X_val, Y_val)") from None
        X_val, Y_val = self._batch(X_val, Y_val, ("X_val", "Y_val"))
        if len(X_val) == 0:
            raise ValueError("validation_data must have at least one row, got 0")
        return X, Y, X_val, Y_val

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, extra: dict[str, np.ndarray] | None = None) -> str:
        """Write the network to a .npz file (format: :mod:`fastprop.io`), atomically.

        ".npz" is appended when missing, as numpy.savez does. Returns the path written.
        """
        from .io import save

        return save(self, path, extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """A network written by :meth:`save` (see :func:`fastprop.io.load`)."""
        from .io import load

        return load(path)

    @classmethod
    def from_torch(cls, module: Any, dtype: DTypeLike | None = None, *,
                   loss: str = "sse") -> "Network":
        """From a torch ``nn.Sequential`` of Linear layers and supported activations."""
        from .interop import from_torch

        return from_torch(module, dtype, loss=loss)

    def to_torch(self) -> Any:
        """A torch ``nn.Sequential`` with copies of the parameters (see :mod:`fastprop.interop`)."""
        from .interop import to_torch

        return to_torch(self)

    @classmethod
    def from_sklearn(cls, estimator: Any, dtype: DTypeLike | None = None, *,
                     loss: str | None = None) -> "Network":
        """From a fitted scikit-learn (or fastprop.sklearn) MLPRegressor or MLPClassifier."""
        from .interop import from_sklearn

        return from_sklearn(estimator, dtype, loss=loss)

    def to_sklearn(self, classes: ArrayLike | None = None) -> Any:
        """A fitted scikit-learn MLPRegressor or MLPClassifier (see :mod:`fastprop.interop`)."""
        from .interop import to_sklearn

        return to_sklearn(self, classes)

    def to_onnx(self, path: str | os.PathLike | None = None, *,
                extra: dict[str, np.ndarray] | None = None, opset: int | None = None) -> Any:
        """The network as an ``onnx.ModelProto``, written to ``path`` when given.

        ``extra``: the standardisation and names of ``fastprop.load(path, return_extra=True)``,
        applied inside the graph. See :func:`fastprop.export.to_onnx`.
        """
        from .export.onnx import DEFAULT_OPSET, to_onnx

        return to_onnx(self, path, extra=extra, opset=DEFAULT_OPSET if opset is None else opset)

    @classmethod
    def from_onnx(cls, model: Any, dtype: DTypeLike | None = None, *, loss: str | None = None,
                  return_extra: bool = False) -> Any:
        """From an ONNX graph of a plain MLP (see :func:`fastprop.export.from_onnx`)."""
        from .export.onnx import from_onnx

        return from_onnx(model, dtype, loss=loss, return_extra=return_extra)

    def to_c(self, path: str | os.PathLike | None = None, name: str = "model", *,
             extra: dict[str, np.ndarray] | None = None) -> str:
        """The network as one C99 / C++ header; returns the code (see :mod:`fastprop.export.c`)."""
        from .export.c import to_c

        return to_c(self, path, name, extra=extra)

    def __getstate__(self) -> dict[str, Any]:
        return {"layers": self.layers, "activation": list(self._activations), "bias": self._bias,
                "dtype": self._dtype.name, "seed": self._seed, "loss": self._loss,
                "params": self.params.copy(), "history": self.history}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["layers"], state["activation"], state["bias"], state["dtype"],
                      state["seed"], state["loss"])
        self.params = state["params"]
        self.history = state["history"]

    # ------------------------------------------------------------------ conversion
    def _inputs(self, X: ArrayLike, name: str = "X") -> tuple[np.ndarray, bool]:
        """X as a C-contiguous (t, l_0) array of the network's dtype; True for one sample."""
        X = _real_array(X, name)
        l_0 = self.layers[0]
        if X.ndim == 1 and X.shape[0] == l_0:
            return self._convert(X[np.newaxis, :]), True
        if X.ndim != 2 or X.shape[1] != l_0:
            raise ValueError(f"{name} must have shape (t, {l_0}) or ({l_0},), got {X.shape}")
        return self._convert(X), False

    def _batch(self, X: ArrayLike, Y: ArrayLike,
               names: tuple[str, str] = ("X", "Y")) -> tuple[np.ndarray, np.ndarray]:
        """X (t, l_0) and Y (t, l_n), converted; a single sample becomes a batch of one."""
        x_name, y_name = names
        X, single = self._inputs(X, x_name)
        Y = _real_array(Y, y_name)
        l_n = self.layers[-1]
        if self._loss == "cross_entropy" and Y.dtype.kind in "iu" and Y.ndim <= 1:
            Y = self._one_hot(Y.reshape(-1), l_n)
        elif single and Y.shape == (l_n,):
            Y = Y[np.newaxis, :]
        if Y.ndim != 2 or Y.shape[1] != l_n:
            hint = " (use Y.reshape(-1, 1) for a single output)" if Y.ndim == 1 and l_n == 1 else ""
            raise ValueError(f"{y_name} must have shape (t, {l_n}), got {Y.shape}{hint}")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"{x_name} and {y_name} must have the same number of rows "
                             f"(samples), got {X.shape[0]} and {Y.shape[0]}")
        return X, self._convert(Y)

    @staticmethod
    def _one_hot(labels: np.ndarray, l_n: int) -> np.ndarray:
        """Integer class labels (t,) as target probabilities (t, l_n)."""
        if labels.size and (labels.min() < 0 or labels.max() >= l_n):
            raise ValueError(f"class labels must be integers in [0, {l_n}) for l_n = {l_n} "
                             f"outputs, got values from {labels.min()} to {labels.max()}")
        Y = np.zeros((labels.size, l_n))
        Y[np.arange(labels.size), labels] = 1
        return Y

    def _convert(self, A: np.ndarray) -> np.ndarray:
        # A copy only when the dtype, byte order, alignment or memory order needs one. Values
        # beyond float32's range become ±inf, as IEEE says, without a warning.
        with np.errstate(over="ignore"):
            return np.require(A, dtype=self._dtype, requirements=("C", "A"))


# ---------------------------------------------------------------------- validation
def _real_array(A: ArrayLike, name: str) -> np.ndarray:
    if isinstance(A, (str, bytes)):
        raise TypeError(f"{name} must be an array of real numbers, got {type(A).__name__}")
    try:
        arr = np.asarray(A)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{name} must be a rectangular array of real numbers: {error}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold real numbers (bool, int or float), got dtype "
                        f"{arr.dtype}")
    return arr


def _check_layers(layers: Sequence[int]) -> tuple[int, ...]:
    if isinstance(layers, (str, bytes)) or not isinstance(layers, (Sequence, np.ndarray)):
        raise TypeError(f"layers must be a sequence of ints (l_0, ..., l_n), got "
                        f"{type(layers).__name__}")
    sizes = []
    for i, size in enumerate(layers):
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
            raise TypeError(f"layer sizes must be integers, got l_{i} = {size!r}")
        if size < 1:
            raise ValueError(f"layer sizes must be >= 1, got l_{i} = {size}")
        sizes.append(int(size))
    if len(sizes) < 2:
        raise ValueError(f"layers must list at least 2 sizes (l_0, ..., l_n), got {len(sizes)}")
    return tuple(sizes)


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation, when the system says (Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _check_memory(layers: tuple[int, ...], bias: bool, dtype: np.dtype) -> None:
    """Refuse, before allocating anything, a network whose buffers cannot fit in memory."""
    n_params = sum(l_out * (l_in + bias) for l_in, l_out in zip(layers, layers[1:]))
    if n_params >= 2**63:
        raise ValueError(f"layers {layers} give {n_params} parameters, more than a 64-bit "
                         f"size can count")
    needed = 2 * n_params * dtype.itemsize  # the parameters and their gradient
    available = _available_memory()
    if available is not None and needed > available:
        raise MemoryError(f"layers {layers} need {n_params:,} parameters: {needed / 2**30:.1f} GiB "
                          f"for the parameters and their gradient, but only "
                          f"{available / 2**30:.1f} GiB of memory is available")


def _check_name(name: str, valid: Sequence[str], what: str) -> str:
    if not isinstance(name, str) or name not in valid:
        raise ValueError(f"{what} must be one of {', '.join(valid)}; got {name!r}")
    return name


def _check_activations(activation: str | Sequence[str], n: int) -> tuple[str, ...]:
    if isinstance(activation, str):
        return (_check_name(activation, ACTIVATIONS, "activation"),) * (n - 1)
    names = tuple(activation)
    if len(names) != n - 1:
        raise ValueError(f"activation must be one name or a list of n-1 = {n - 1} names (one "
                         f"per hidden layer), got {len(names)}")
    return tuple(_check_name(a, ACTIVATIONS, "activation") for a in names)


def _check_dtype(dtype: DTypeLike) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in _DTYPES:
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def _check_bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed must be an int or None, got {type(seed).__name__}")
    if not 0 <= seed < 2**64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed}")
    return int(seed)


def _fresh_seed() -> int:
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value}")
    return int(value)


def _check_nonnegative(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value}")
    return float(value)


def _check_positive(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)
