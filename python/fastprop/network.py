"""fastprop.Network: the user-facing network, a thin layer over the C++ core."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from . import _core, _state, optim
from ._progress import Progress
from ._sparse import as_csr_rows, is_sparse
from ._runtime import _warn_about_ignored_settings  # noqa: F401  (importable from here, as before)
from ._runtime import get_num_threads, set_num_threads
from ._validate import check_activations, check_bool, check_callable, check_choice, \
    check_dtype, check_int, check_layers, check_lr, check_memory, check_pair, check_real, \
    check_sample_weight, check_seed, message, real_array, typed
from ._validate import fresh_seed as _fresh_seed  # looked up here, so that tests can replace it
from .history import History, Trace

# The names the core knows, read from it: the one source of truth.
ACTIVATIONS = tuple(_core.Activation.__members__)
LOSSES = tuple(_core.Loss.__members__)

__all__ = ["Network", "Trace", "History", "set_num_threads", "get_num_threads",
           "network_from_state"]

_DTYPES = {np.dtype(np.float64): _core.Network64, np.dtype(np.float32): _core.Network32}


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
        (t,)), "binary_cross_entropy" (sigmoid of z_n, mean over all t·l_n elements, as
        torch.nn.BCEWithLogitsLoss) or "poisson" (z_n the log of the rate of counts Y >= 0,
        mean over all t·l_n elements of e^{z_n} − y z_n, as
        torch.nn.PoissonNLLLoss(log_input=True)).

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
        layers = check_layers(layers)
        self._activations = check_activations(activation, len(layers) - 1, ACTIVATIONS)
        self._bias = check_bool(bias, "bias")
        self._dtype = check_dtype(dtype)
        self._loss = check_choice(loss, "loss", LOSSES)
        self._seed = _fresh_seed() if seed is None else check_seed(seed)
        check_memory(layers, self._bias, self._dtype)
        core_class = _DTYPES[self._dtype]
        loss_id = _core.Loss.__members__[self._loss]
        if layers[-1] < _core.min_outputs(loss_id):
            raise ValueError(message("layers", f"at least {_core.min_outputs(loss_id)} outputs "
                                     f"(l_n) for loss {self._loss!r} (softmax of one output is "
                                     f"always 1: for two classes use 'binary_cross_entropy' "
                                     f"with l_n = 1)", f"l_n = {layers[-1]}", verb="have"))
        self._core = core_class(
            layers=list(layers),
            activations=[_core.Activation.__members__[name] for name in self._activations],
            bias=self._bias, loss=loss_id, seed=self._seed)
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
        values = real_array(values, "params")
        if values.shape != (self.n_params,):
            raise ValueError(message("params", f"shape ({self.n_params},)", str(values.shape),
                                     verb="have"))
        self._core.set_params(self._convert(values))

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
        self._seed = _fresh_seed() if seed is None else check_seed(seed)
        self._core.init(self._seed)

    def _split(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Views of a flat buffer in the parameter layout, shaped like weights and biases."""
        dW = [flat[W:W + l_out * l_in].reshape(l_out, l_in)
              for l_in, l_out, W, _ in self._core.slices]
        db = [flat[b:b + l_out] for _, l_out, _, b in self._core.slices] if self._bias else []
        return dW, db

    # ------------------------------------------------------------------ computation
    def forward(self, X: ArrayLike) -> np.ndarray:
        """z_n for X of shape (t, l_0): shape (t, l_n); for one sample of shape (l_0,): (l_n,).

        X may be a scipy.sparse matrix (CSR, CSC, COO): the first layer's product reads its
        non-zeros, and X is never made dense.
        """
        X, single = self._inputs(X)
        out = self._core.forward(X)
        return out[0] if single else out

    __call__ = forward

    def trace(self, X: ArrayLike) -> Trace:
        """Every z_i and a_i of a forward pass (for teaching and debugging); see :class:`Trace`."""
        X, single = self._inputs(self._dense_only(X, "trace"))
        z, a = self._core.trace(X)
        z, a = [None, *z], [X, *a, None]
        if single:
            z = [None if v is None else v[0] for v in z]
            a = [None if v is None else v[0] for v in a]
        return Trace(z, a)

    def loss(self, X: ArrayLike, Y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """E of the batch; for "sse", the sum over samples of ||y − z_n||².

        ``sample_weight`` (t,): each sample's term of E is multiplied by its weight, and a
        mean loss divides by the total weight instead of t (a weight of 2 is the sample
        twice, a weight of 0 leaves it out).
        """
        X, Y = self._batch(X, Y)
        return float(self._core.loss(X, Y, self._weights(sample_weight, len(X))))

    def gradient(self, X: ArrayLike, Y: ArrayLike, sample_weight: ArrayLike | None = None,
                 ) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        """(E, dW, db): dW[i] = ∂E/∂W_i shaped like W_i, db[i] = ∂E/∂b_i ([] without bias).

        Gradients are summed over the samples. An empty batch gives E = 0 and zero gradients.
        ``sample_weight`` as in :meth:`loss`.
        """
        X, Y = self._batch(X, Y)
        E, flat = self._core.gradient(X, Y, self._weights(sample_weight, len(X)))
        dW, db = self._split(flat)
        return float(E), dW, db

    def loss_and_grad(self, X: ArrayLike, Y: ArrayLike, params: ArrayLike | None = None, *,
                      sample_weight: ArrayLike | None = None) -> tuple[float, np.ndarray]:
        """(E, ∂E/∂params) as one flat array in the layout of :attr:`params`.

        With ``params`` given, both are evaluated at those parameters instead of the
        network's, which stay as they are. Ready for outside optimisers::

            scipy.optimize.minimize(lambda p: net.loss_and_grad(X, Y, p), net.params.copy(),
                                    jac=True, method="L-BFGS-B")

        ``sample_weight`` as in :meth:`loss`.
        """
        X, Y = self._batch(X, Y)
        w = self._weights(sample_weight, len(X))
        if params is not None:
            params = real_array(params, "params")
            if params.shape != (self.n_params,):
                raise ValueError(message("params", f"shape ({self.n_params},)",
                                         str(params.shape), verb="have"))
            params = self._convert(params)
        E, flat = self._core.gradient(X, Y, w, params=params)
        return float(E), flat

    def jacobian(self, X: ArrayLike) -> np.ndarray:
        """J = ∂z_n/∂params, float64 of shape (t·l_n, n_params): row s·l_n + j is the
        gradient of output j of sample s, in the layout of :attr:`params`.

        Computed by backpropagation, one backward pass per output unit (δ_n = e_j).
        """
        X, _ = self._inputs(self._dense_only(X, "jacobian"))
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
            optimizer = optim.SGD(lr=check_lr(lr))
        elif not isinstance(optimizer, optim.Optimizer):
            raise TypeError(message("optimizer", "a fastprop.optim.Optimizer", typed(optimizer)))
        config = optimizer.config(lr)
        X, Y = self._batch(X, Y)
        state = optimizer.state_for(self.n_params, self._dtype)
        E = self._core.step(X, Y, optimizer=config, state=state)
        optimizer.steps = state.steps
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
        sample_weight: ArrayLike | None = None,
        **hyperparameters: Any,
    ) -> History:
        """Train; the whole loop (gather, forward, backward, update) runs in C++ without the GIL.

        Parameters
        ----------
        X, Y : array-like of shape (t, l_0) and (t, l_n)
            For ``loss="cross_entropy"``, Y may also be integer class labels of shape (t,).
            X may be a scipy.sparse matrix (CSR, CSC, COO), as in every call but
            :meth:`trace`, :meth:`jacobian` and ``optimizer="lm"``: it is never made dense.
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
        validation_data : (X_val, Y_val), (X_val, Y_val, sample_weight_val) or None
            Evaluated after every epoch (``history.val_loss``).
        validation_fraction : float or None
            Instead of validation_data: hold out this fraction (0, 1) of the rows, the last
            ones, as validation data (with their sample weights).
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
        sample_weight : array-like of shape (t,) or None
            A weight >= 0 per sample: it multiplies the sample's term of E (and of its
            gradient), and a mean loss divides by the total weight of the batch (of each
            minibatch for its update). For full-batch training a weight of 2 is the sample
            twice and a weight of 0 leaves it out; minibatches are still drawn from all t rows.

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
        w = self._weights(sample_weight, len(X))
        epochs = check_int(epochs, "epochs", low=0)
        if lr is not None:
            lr = check_lr(lr)
        if isinstance(optimizer, (optim.Optimizer, optim.LevenbergMarquardt)):
            if hyperparameters:
                raise TypeError(f"hyperparameters {sorted(hyperparameters)} go to the optimizer "
                                f"object's constructor, not to fit")
            opt = optimizer
        else:
            opt = optim.make(optimizer, lr, **hyperparameters)
        lm = isinstance(opt, optim.LevenbergMarquardt)
        if lm and batch_size is not None:
            raise ValueError("optimizer 'lm' works on the whole batch: batch_size must be None")
        batch = 0 if batch_size is None else check_int(batch_size, "batch_size", low=1)
        shuffle = check_bool(shuffle, "shuffle")
        X, Y, w, X_val, Y_val, w_val = self._validation(X, Y, w, validation_data,
                                                        validation_fraction)
        if seed is not None:
            seed = check_seed(seed)
        else:  # drawn only when the core shuffles: the OS's entropy costs more than a small step
            seed = _fresh_seed() if shuffle and 0 < batch < len(X) else 0
        patience = 0 if patience is None else check_int(patience, "patience", low=0)
        min_delta = check_real(min_delta, "min_delta", low=0)
        restore_best = check_bool(restore_best, "restore_best")
        callback = check_callable(callback, "callback")
        verbose = check_bool(verbose, "verbose")

        options = _core.TrainOptions(epochs=epochs, batch_size=batch, shuffle=shuffle, seed=seed,
                                     patience=patience, min_delta=min_delta,
                                     restore_best=restore_best)

        progress = Progress(epochs, len(X)) if verbose and epochs > 0 else None
        epoch_end = None
        if callback is not None or progress is not None:

            def epoch_end(log: Any) -> Any:
                """After each epoch, from the core: the progress bar, then the callback."""
                logs = {"loss": log.loss, "time": log.time}
                if X_val is not None:
                    logs["val_loss"] = log.val_loss
                if progress is not None:
                    progress.update(log.epoch, logs)
                if callback is not None and callback(log.epoch, logs) is False:
                    return _core.EpochControl(stop=True)
                return None

        # The core raises what stops it (KeyboardInterrupt, FloatingPointError, an exception of
        # the callback) after keeping the record of the completed epochs for the history.
        data = {"X_val": X_val, "Y_val": Y_val, "w_val": w_val, "callback": epoch_end}
        try:
            if lm:
                self._core.fit_lm(X, Y, w, options=options, lm=opt.config(), **data)
            else:
                state = opt.state_for(self.n_params, self._dtype)
                try:
                    self._core.fit(X, Y, w, options=options, optimizer=opt.config(lr),
                                   state=state, **data)
                finally:
                    opt.steps = state.steps
        finally:
            if progress is not None:
                progress.close()
            record = self._core.last_fit
            if record is not None:
                stop = record.stop.name
                self.history = History(
                    record.loss, record.val_loss if X_val is not None else None, record.time,
                    record.best_epoch if patience else None,
                    stop if stop in ("early_stopping", "callback", "converged") else "done")
        return self.history

    def _validation(self, X, Y, w, validation_data, validation_fraction):
        """(X, Y, w, X_val, Y_val, w_val): the training rows and the validation set (None
        without one), each with its sample weights (None without them)."""
        if validation_data is not None and validation_fraction is not None:
            raise ValueError("give validation_data or validation_fraction, not both")
        if validation_fraction is not None:
            fraction = check_real(validation_fraction, "validation_fraction", low=0)
            n_val = int(round(fraction * len(X)))
            if not 0 < fraction < 1 or n_val < 1 or n_val >= len(X):
                raise ValueError(f"validation_fraction must leave at least one row on each side "
                                 f"of the split, in (0, 1); got {validation_fraction} for "
                                 f"{len(X)} rows")
            if w is None:
                return X[:-n_val], Y[:-n_val], None, X[-n_val:], Y[-n_val:], None
            w_train = self._weights(w[:-n_val], len(X) - n_val)
            w_val = self._weights(w[-n_val:], n_val, "sample_weight of the validation rows")
            return X[:-n_val], Y[:-n_val], w_train, X[-n_val:], Y[-n_val:], w_val
        if validation_data is None:
            return X, Y, w, None, None, None
        w_val = None
        if isinstance(validation_data, (tuple, list)) and len(validation_data) == 3:
            X_val, Y_val, w_val = validation_data
        else:
            X_val, Y_val = check_pair(validation_data, "validation_data",
                                      "a pair (X_val, Y_val) or a triple (X_val, Y_val, "
                                      "sample_weight_val)")
        X_val, Y_val = self._batch(X_val, Y_val, ("X_val", "Y_val"))
        if len(X_val) == 0:
            raise ValueError("validation_data must have at least one row, got 0")
        return X, Y, w, X_val, Y_val, self._weights(w_val, len(X_val), "sample_weight_val")

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike, *, extra: dict[str, np.ndarray] | None = None) -> str:
        """Write the network to a .npz file (format: :mod:`fastprop.io`), atomically.

        ".npz" is appended when missing, as numpy.savez does. Returns the path written.
        """
        return _state.save(self, path, extra=extra)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """A network written by :meth:`save` (see :func:`fastprop.io.load`)."""
        return _state.load(path, network_from_state)[0]

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


    def _snapshot(self) -> np.ndarray:
        """A copy of the parameters as they are between two updates, even while another
        thread trains this network (what saving, pickling and copying read)."""
        return self._core.snapshot()

    def __getstate__(self) -> dict[str, Any]:
        """:func:`fastprop._state.state` (what fastprop.io saves too) and the history."""
        return {**_state.state(self), "history": self.history}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        """The network of ``state`` (:meth:`__getstate__`'s, or a saved file's): a network
        made anew from its description, with its parameters copied in."""
        activations = state["activations"] if "activations" in state else state["activation"]
        self.__init__(state["layers"], activations, state["bias"],  # type: ignore[misc]
                      state["dtype"], state["seed"], state["loss"])
        self.params = state["params"]
        self.history = state.get("history", History(np.empty(0)))

    # ------------------------------------------------------------------ conversion
    def _inputs(self, X: ArrayLike, name: str = "X") -> tuple[np.ndarray, bool]:
        """X as a C-contiguous (t, l_0) array of the network's dtype; True for one sample.
        A scipy.sparse X becomes CsrRows (never dense; see fastprop._sparse)."""
        if is_sparse(X):
            return as_csr_rows(X, self.layers[0], self._dtype, name), False
        X = real_array(X, name)
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
        Y = real_array(Y, y_name)
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
    def _dense_only(X: Any, what: str) -> Any:
        if is_sparse(X):
            raise TypeError(f"{what} needs a dense X (an array), got a sparse matrix; "
                            f"pass X.toarray() for a small one")
        return X

    @staticmethod
    def _one_hot(labels: np.ndarray, l_n: int) -> np.ndarray:
        """Integer class labels (t,) as target probabilities (t, l_n)."""
        if labels.size and (labels.min() < 0 or labels.max() >= l_n):
            raise ValueError(f"class labels must be integers in [0, {l_n}) for l_n = {l_n} "
                             f"outputs, got values from {labels.min()} to {labels.max()}")
        Y = np.zeros((labels.size, l_n))
        Y[np.arange(labels.size), labels] = 1
        return Y

    def _weights(self, sample_weight: ArrayLike | None, t: int,
                 name: str = "sample_weight") -> np.ndarray | None:
        """Sample weights for t rows in the network's dtype (checked), or None for none."""
        if sample_weight is None:
            return None
        return check_sample_weight(sample_weight, t, self._dtype, name)

    def _convert(self, A: np.ndarray) -> np.ndarray:
        # A copy only when the dtype, byte order, alignment or memory order needs one. Values
        # beyond float32's range become ±inf, as IEEE says, without a warning.
        with np.errstate(over="ignore"):
            return np.require(A, dtype=self._dtype, requirements=("C", "A"))


def network_from_state(state: Mapping[str, Any]) -> Network:
    """The network a state describes (:func:`fastprop._state.state`), as unpickling makes it.

    ``fastprop.io.load`` makes networks from files with it, so that a file and a pickle of
    the same network give the same network.
    """
    net = Network.__new__(Network)
    net.__setstate__(state)
    return net
