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
    check_count, check_sample_weight, check_seed, message, real_array, typed
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

    and the output is z_n, with no activation.

    The defaults are for a first fit on ordinary data: biases on, the mean squared error
    (``loss="mse"``, E / (t·l_n), so that a step does not grow with the number of rows) and
    :meth:`fit` with Adam at torch's lr = 0.001, as scikit-learn's MLP does. The classic
    model, E = Σ_samples ||y − z_n||² without biases trained by plain gradient descent (what
    :mod:`fastprop.reference` writes out), is one explicit call away::

        net = fastprop.Network(layers, bias=False, loss="sse")
        net.fit(X, Y, epochs, lr=0.01, optimizer="sgd")

    Parameters
    ----------
    layers : sequence of int
        Layer sizes (l_0, ..., l_n), at least two, each ≥ 1.
    activation : str or sequence of str, default "sigmoid"
        σ of the hidden layers: one name for all, or a list of n−1 names, one per hidden
        layer. One of "sigmoid", "tanh", "relu", "leaky_relu" (slope 0.01), "softplus",
        "identity".
    bias : bool, default True
        Add b_i to every layer (an offset in the target needs them). False is the classic
        model.
    dtype : "float64" or "float32", default "float64"
        Precision of the parameters and of every computation.
    seed : int or None
        Seed of the deterministic initialisation (Glorot uniform, He uniform before relu and
        leaky_relu; zero biases). None draws a fresh seed, kept in ``net.seed``.
    loss : str, default "mse"
        "sse" (the classic model's E, summed over samples), "mse" (its mean over all t·l_n
        elements, as torch.nn.MSELoss),
        "cross_entropy" (softmax of z_n, mean over samples of −Σ_j y_j log p_j, as
        torch.nn.CrossEntropyLoss; Y as target probabilities (t, l_n) or integer labels
        (t,)), "binary_cross_entropy" (sigmoid of z_n, mean over all t·l_n elements, as
        torch.nn.BCEWithLogitsLoss), "poisson" (z_n the log of the rate of counts Y >= 0,
        mean over all t·l_n elements of e^{z_n} − y z_n, as
        torch.nn.PoissonNLLLoss(log_input=True)) or "huber" (with d = z_n − y, mean over all
        t·l_n elements of ½d² where |d| ≤ huber_delta and huber_delta·(|d| − ½huber_delta)
        beyond, as torch.nn.HuberLoss(delta=huber_delta)).
    huber_delta : float, default 1.0
        The delta of loss "huber", a finite number > 0 (ignored by the other losses).

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
    >>> losses = net.fit(X, Y, epochs=2000, lr=0.01)
    >>> bool(losses[-1] < 1e-6)
    True
    >>> (net.predict(X) > 0.5).astype(int).ravel().tolist()
    [0, 1, 1, 0]
    """

    def __init__(
        self,
        layers: Sequence[int],
        activation: str | Sequence[str] = "sigmoid",
        bias: bool = True,
        dtype: DTypeLike = "float64",
        seed: int | None = None,
        loss: str = "mse",
        huber_delta: float = 1.0,
    ) -> None:
        layers = check_layers(layers)
        self._activations = check_activations(activation, len(layers) - 1, ACTIVATIONS)
        self._bias = check_bool(bias, "bias")
        self._dtype = check_dtype(dtype)
        self._loss = check_choice(loss, "loss", LOSSES)
        self._huber_delta = check_real(huber_delta, "huber_delta", low=0, low_open=True)
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
            bias=self._bias, loss=loss_id, seed=self._seed, delta=self._huber_delta)
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
    def huber_delta(self) -> float:
        """The delta of loss "huber" (where its square becomes linear)."""
        return self._huber_delta

    @property
    def seed(self) -> int:
        """The initialisation seed (drawn at construction when none was given)."""
        return self._seed

    @property
    def n_params(self) -> int:
        return int(self._core.n_params)

    def __repr__(self) -> str:
        delta = f", huber_delta={self._huber_delta!r}" if self._loss == "huber" else ""
        return (f"Network(layers={self.layers}, activation={self.activation!r}, "
                f"bias={self.bias}, dtype='{self.dtype.name}', loss='{self.loss_name}'{delta})")

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
    def weights(self) -> LayerViews:
        """W_0 … W_{n−1}: writable views of shape (l_{i+1}, l_i) into :attr:`params`;
        ``net.weights[i] = W`` copies W into W_i (a :class:`LayerViews`)."""
        p = self._core.params
        return LayerViews([p[W:W + l_out * l_in].reshape(l_out, l_in)
                           for l_in, l_out, W, _ in self._core.slices], "weights")

    @property
    def biases(self) -> LayerViews:
        """b_0 … b_{n−1}: writable views of shape (l_{i+1},) into :attr:`params`, none without
        bias; ``net.biases[i] = b`` copies b into b_i."""
        p = self._core.params
        return LayerViews([p[b:b + l_out] for _, l_out, _, b in self._core.slices]
                          if self._bias else [], "biases")

    def init(self, seed: int | None = None) -> None:
        """Draw the parameters again, as a new network with this ``seed`` would have them."""
        self._seed = _fresh_seed() if seed is None else check_seed(seed)
        self._fits = 0
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

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The prediction for X, from z_n through the loss's link.

        - "sse", "mse" (and other losses of a real target): z_n itself, shape (t, l_n).
        - "poisson": the rate e^{z_n} (z_n is its log), shape (t, l_n).
        - "cross_entropy": the class, argmax_j z_n,j (the most probable under softmax), an
          int64 array of shape (t,).
        - "binary_cross_entropy": each output's label, 1 where σ(z_n) > 0.5 (z_n > 0) and 0
          elsewhere, int64 of shape (t, l_n).

        One sample of shape (l_0,) gives one prediction (the batch's first axis dropped).
        """
        X, single = self._inputs(X)
        z_n = self._core.forward(X)
        link = _core.link(_core.Loss.__members__[self._loss]).name
        if link == "softmax":
            out = np.argmax(z_n, axis=1).astype(np.int64)
        elif link == "sigmoid":
            out = (z_n > 0).astype(np.int64)
        elif link == "exp":
            with np.errstate(over="ignore"):
                out = np.exp(z_n)
        else:
            out = z_n
        return out[0] if single else out

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities for X: softmax(z_n) for "cross_entropy" (each row sums to 1),
        σ(z_n) of each output for "binary_cross_entropy"; shape (t, l_n), or (l_n,) for one
        sample of shape (l_0,).

        Raises
        ------
        ValueError
            For a loss of a real target ("sse", "mse", "poisson", ...), which has no classes.
        """
        link = _core.link(_core.Loss.__members__[self._loss]).name
        if link not in ("softmax", "sigmoid"):
            raise ValueError(f"predict_proba needs a classification loss ('cross_entropy' or "
                             f"'binary_cross_entropy'); this network's loss is "
                             f"{self._loss!r}, a regression loss: use predict(X)")
        X, single = self._inputs(X)
        z_n = self._core.forward(X).astype(np.float64, copy=False)
        if link == "softmax":
            with np.errstate(under="ignore"):
                e = np.exp(z_n - z_n.max(axis=1, keepdims=True))
            p = e / e.sum(axis=1, keepdims=True)
        else:  # σ(z) = e^{min(z,0)} / (1 + e^{−|z|}), without overflow for either sign
            with np.errstate(under="ignore"):
                p = np.exp(np.minimum(z_n, 0)) / (1 + np.exp(-np.abs(z_n)))
        p = p.astype(self._dtype, copy=False)
        return p[0] if single else p

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

    def jacobian(self, X: ArrayLike, wrt: str = "params") -> np.ndarray:
        """The Jacobian of the outputs z_n, by backpropagation (one backward pass per output
        unit, δ_n = e_j).

        ``wrt="params"`` (default): J = ∂z_n/∂params, float64 of shape (t·l_n, n_params):
        row s·l_n + j is the gradient of output j of sample s, in the layout of
        :attr:`params`.

        ``wrt="input"``: J[s] = ∂z_n/∂x for each sample, of shape (t, l_n, l_0) in the
        network's dtype (J[s, j, k] = ∂z_n[s, j]/∂x_s[k]); for one sample of shape (l_0,),
        (l_n, l_0).
        """
        check_choice(wrt, "wrt", ["params", "input"])
        X, single = self._inputs(self._dense_only(X, "jacobian"))
        if wrt == "params":
            return self._core.jacobian(X)
        J = self._core.input_jacobian(X)
        return J[0] if single else J

    def per_sample_gradients(self, X: ArrayLike, Y: ArrayLike,
                             sample_weight: ArrayLike | None = None) -> np.ndarray:
        """∂E_s/∂params for each sample: shape (t, n_params), in the layout of :attr:`params`.

        E_s is sample s's term of E (E = Σ_s E_s; for a mean loss E_s includes the division
        by t, or by the total weight), so the rows sum to the gradient of the batch. Row s
        is δ_{i+1,s} a_{i,s}ᵀ at the offset of each W_i and δ_{i+1,s} at that of b_i, from
        one forward and one backward pass. ``sample_weight`` as in :meth:`loss`.
        """
        X, Y = self._batch(self._dense_only(X, "per_sample_gradients"), Y)
        _, G = self._core.per_sample_gradients(X, Y, self._weights(sample_weight, len(X)))
        return G

    def per_sample_gradient_norms(self, X: ArrayLike, Y: ArrayLike,
                                  sample_weight: ArrayLike | None = None) -> np.ndarray:
        """||∂E_s/∂params||₂ for each sample, shape (t,), without forming the gradients.

        ||δ_{i+1,s} a_{i,s}ᵀ||_F = ||δ_{i+1,s}||·||a_{i,s}||, so the norms come from the
        backward pass's δ and a alone: memory O(t + n_params), not O(t·n_params). The same
        E_s as :meth:`per_sample_gradients`.
        """
        X, Y = self._batch(self._dense_only(X, "per_sample_gradient_norms"), Y)
        _, norms = self._core.per_sample_gradient_norms(X, Y,
                                                        self._weights(sample_weight, len(X)))
        return norms

    def input_gradient(self, X: ArrayLike, Y: ArrayLike,
                       sample_weight: ArrayLike | None = None) -> np.ndarray:
        """∂E/∂X, shape (t, l_0) (row s is W_0ᵀ δ_1 of sample s); for one sample, (l_0,).

        ``sample_weight`` as in :meth:`loss`.
        """
        single = np.ndim(X) == 1
        X, Y = self._batch(self._dense_only(X, "input_gradient"), Y)
        _, dX = self._core.input_gradient(X, Y, self._weights(sample_weight, len(X)))
        return dX[0] if single else dX

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
        elif isinstance(optimizer, type) and issubclass(optimizer, optim.Optimizer):
            raise TypeError(optim._class_given(optimizer))
        elif not isinstance(optimizer, optim.Optimizer):
            raise TypeError(message("optimizer", "a fastprop.optim.Optimizer", typed(optimizer)))
        config = optimizer.config(lr)
        X, Y = self._batch(X, Y)
        self._check_targets(Y)
        state = optimizer.state_for(self.n_params, self._dtype)
        E = self._core.step(X, Y, optimizer=config, state=state)  # counts in optimizer.steps
        return float(E)

    def fit(
        self,
        X: ArrayLike,
        Y: ArrayLike,
        epochs: int,
        lr: float | None = None,
        *,
        optimizer: str | optim.Optimizer = "adam",
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
        lr_schedule: optim.Schedule | Callable[[int], float] | None = None,
        clip_norm: float | None = None,
        block_rows: int | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        **hyperparameters: Any,
    ) -> History:
        """Train; the whole loop (gather, forward, backward, update) runs in C++ without the GIL.

        Parameters
        ----------
        X, Y : array-like of shape (t, l_0) and (t, l_n)
            Y may be of shape (t,) when l_n = 1. For ``loss="cross_entropy"``, Y may also be
            class labels of shape (t,): integers, or floats with integral values.
            X may be a scipy.sparse matrix (CSR, CSC, COO), as in every call but
            :meth:`trace`, :meth:`jacobian`, the per-sample and input gradients,
            ``optimizer="lm"`` and ``"dpsgd"``: it is never made dense.
        epochs : int
            Passes over the data (0 does nothing).
        lr : float or None
            Learning rate; None takes the optimiser's default, as torch.optim's (0.001 for
            "sgd", "momentum", "nesterov", "adam" and "adamw", 0.01 for "rprop").
        optimizer : str or optimiser object, default "adam"
            "adam" (torch.optim.Adam), "sgd" (the classic W_i −= lr·∂E/∂W_i), "momentum",
            "nesterov", "adamw", "rprop", "dpsgd" (differentially private SGD; see
            :mod:`fastprop.optim`), with keyword ``hyperparameters`` as in torch.optim
            (momentum, nesterov, betas, eps, weight_decay, etas, step_sizes; dpsgd:
            max_grad_norm, noise_multiplier, and the noise's own seed only through
            ``fastprop.optim.DPSGD(seed=...)``, since ``seed`` here is fit's);
            or "lm", Levenberg–Marquardt (full batch, "sse"/"mse" losses, at most 4096
            parameters; hyperparameters mu, mu_dec, mu_inc, mu_max, weight_decay). An
            optimiser object keeps its state across fit calls.
        batch_size : int or None
            None: full batch, one update per epoch on the gradient summed over all t samples
            (the classic method). An int: minibatches of that many rows, the last possibly
            smaller, one update each.
        shuffle : bool, default True
            With minibatches, permute the samples every epoch (from ``seed``).
        seed : int or None
            Seed of the permutations (and of DP-SGD's noise, unless its optimiser object has
            a seed of its own). None derives it from the network's seed and the number of
            fits it has run (since it was made or :meth:`init` was called), so that two
            networks made with the same ``seed`` and fitted alike end with the same bits. A
            pickle, copy or saved file keeps both, so its next fit draws what the original's
            next fit would.
        validation_data : (X_val, Y_val), (X_val, Y_val, sample_weight_val) or None
            Evaluated after every epoch (``history.val_loss``).
        validation_fraction : float or None
            Instead of validation_data: hold out this fraction (0, 1) of the rows, the last
            ones as they are given, as validation data (with their sample weights). Rows are
            not drawn at random: on data sorted by target or time, shuffle the rows first
            (``p = np.random.default_rng(0).permutation(len(X)); X, Y = X[p], Y[p]``), or the
            validation rows are all of one end.
        patience : int or None
            Early stopping: stop after this many epochs in which the validation loss (the
            training loss, without validation) did not improve by more than ``min_delta``.
            With ``restore_best`` the network ends at the parameters of the best epoch, also
            when all epochs ran (not when the callback stopped training): after that
            epoch's updates for the validation loss, before them for the training loss
            (which each update is measured before).
        callback : callable(epoch, logs) or None
            Called after every epoch with ``logs = {"loss", "val_loss" (with validation),
            "time", "lr" (not for "lm")}``; returning False stops. Setting ``logs["lr"]``
            changes the rate from the next epoch on (see ``lr_schedule``). Without callback,
            verbose, validation and a callable ``lr_schedule``, Python is not called back.
        verbose : bool
            Show a live progress bar (tqdm when installed, a plain one otherwise).
        sample_weight : array-like of shape (t,) or None
            A weight >= 0 per sample: it multiplies the sample's term of E (and of its
            gradient), and a mean loss divides by the total weight of the batch (of each
            minibatch for its update). For full-batch training a weight of 2 is the sample
            twice and a weight of 0 leaves it out; minibatches are still drawn from all t rows.
        lr_schedule : schedule, callable or None
            How the learning rate moves from epoch to epoch, for every optimiser but "lm":
            None keeps it constant; :class:`fastprop.optim.StepLR`,
            :class:`~fastprop.optim.CosineAnnealingLR` or :class:`~fastprop.optim.InvScaling`
            scale the base rate (``lr``, or the optimiser's) inside the core's loop;
            :class:`~fastprop.optim.Adaptive` (scikit-learn's "adaptive") divides it when the
            loss stops improving, decided between epochs; a callable
            ``epoch -> lr`` gives each epoch's rate itself (called before the first epoch and
            then between epochs, epoch counted from 0). Every rate must be a finite number
            > 0 (ValueError otherwise). A ``callback`` may also change the rate: setting
            ``logs["lr"]`` (or the optimiser object's ``lr``) sets the base rate from the next
            epoch on. :attr:`history` ``.lr`` holds the rate of every epoch. ("rprop" reads
            the rate once, for its first step sizes, as torch's Rprop: a schedule is recorded
            but changes none of its steps.)
        clip_norm : float or None
            When > 0, each minibatch gradient (in the flat layout of :attr:`params`) longer
            than ``clip_norm`` in L2 norm is scaled down to it before the update, as
            ``torch.nn.utils.clip_grad_norm_(params, clip_norm)``. None: no clipping.

        block_rows : int or None
            None: each minibatch's gradient is one pass over its rows. An int: the minibatch
            is cut into blocks of this many rows whose gradients (and losses, and the
            validation loss's) are summed in a fixed binary tree, the order
            :func:`fastprop.distributed.fit` sums in on any number of processes: with the same
            ``block_rows``, this fit and a data-parallel one give the same bits. Rounding
            differs from ``block_rows=None`` (a few ulps per step), and so does speed.
        checkpoint : path or None
            A .npz file written atomically every ``checkpoint_every`` epochs and after the
            last: parameters, optimiser state, epochs done, history, seed and early stopping's
            state. When the file exists, fit resumes from it (the same arguments otherwise; a
            checkpoint of another fit raises ValueError): the parameters at the end are those
            of an uninterrupted run, bit for bit, and the history is the whole run's.
        checkpoint_every : int, default 1
            Epochs between two checkpoints.

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
        plan = self._fit_plan(X, Y, epochs, lr, optimizer=optimizer, batch_size=batch_size,
                              shuffle=shuffle, seed=seed, validation_data=validation_data,
                              validation_fraction=validation_fraction, patience=patience,
                              min_delta=min_delta, restore_best=restore_best,
                              callback=callback, verbose=verbose,
                              sample_weight=sample_weight, lr_schedule=lr_schedule,
                              clip_norm=clip_norm, block_rows=block_rows,
                              checkpoint=checkpoint, checkpoint_every=checkpoint_every,
                              **hyperparameters)
        progress = Progress(plan.epochs, plan.t) if plan.verbose and plan.epochs > 0 else None
        # The core raises what stops it (KeyboardInterrupt, FloatingPointError, an exception of
        # the callback) after keeping the record of the completed epochs for the history.
        data = {"X_val": plan.X_val, "Y_val": plan.Y_val, "w_val": plan.w_val,
                "callback": plan.epoch_end(progress)}
        opt = plan.opt
        try:
            if plan.lm:
                self._core.fit_lm(plan.X, plan.Y, plan.w, options=plan.options,
                                  lm=opt.config(), **data)
            else:
                self._core.fit(plan.X, plan.Y, plan.w, options=plan.options,
                               optimizer=opt.config(plan.lr), state=plan.state,
                               best_params=plan.best_params, **data)
        finally:
            if progress is not None:
                progress.close()
            plan.finish(self._core.last_fit)
        return self.history

    def _fit_plan(self, *args: Any, **kwargs: Any) -> "_FitPlan":
        """:meth:`_make_fit_plan`, leaving the count of fits as it was when it raises: the
        count draws the next fit's seed, and a refused call trains nothing."""
        fits = self.__dict__.get("_fits")
        try:
            return self._make_fit_plan(*args, **kwargs)
        except BaseException:
            if fits is None:
                self.__dict__.pop("_fits", None)
            else:
                self._fits = fits
            raise

    def _make_fit_plan(self, X: ArrayLike, Y: ArrayLike, epochs: int,
                       lr: float | None = None, *,
                       optimizer: str | optim.Optimizer = "adam", batch_size: int | None = None,
                       shuffle: bool = True, seed: int | None = None,
                       validation_data: Any = None, validation_fraction: float | None = None,
                       patience: int | None = None, min_delta: float = 0.0,
                       restore_best: bool = True, callback: Any = None, verbose: bool = False,
                       sample_weight: ArrayLike | None = None, lr_schedule: Any = None,
                       clip_norm: float | None = None, index: ArrayLike | None = None,
                       block_rows: int | None = None, checkpoint: Any = None,
                       checkpoint_every: int = 1, **hyperparameters: Any) -> "_FitPlan":
        """Every argument of :meth:`fit` checked and converted, ready for the core (which
        :func:`fastprop.fit_many` shares). ``index``: the rows of X (an integer array) that
        make the training set, as if fit were given X[index] (without copying X)."""
        X, Y = self._batch(X, Y)
        if index is None and X.shape[0] == 0:
            raise ValueError("fit needs at least one sample, got X with 0 rows")
        w = self._weights(sample_weight, len(X))
        if index is not None:
            index = _check_index(index, len(X))
        self._check_targets(Y, index=index)
        if isinstance(epochs, (float, np.floating)) and 0 < epochs < 1:  # a learning rate?
            raise TypeError(message("epochs", "an int", typed(epochs)) + " (the argument after "
                            f"the data is the number of epochs: to give a learning rate, write "
                            f"lr={epochs!s})")
        epochs = check_count(epochs, "epochs", low=0)
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
        block = 0 if block_rows is None else check_count(block_rows, "block_rows", low=1)
        if lm and block:
            raise ValueError("optimizer 'lm' works on the whole batch: block_rows must be None")
        batch = 0 if batch_size is None else check_count(batch_size, "batch_size", low=1)
        shuffle = check_bool(shuffle, "shuffle")
        if index is not None and (lm or validation_fraction is not None):
            # The held-out rows (and Levenberg–Marquardt's whole batch) are taken as a copy.
            X, Y = X[index], Y[index]
            w = None if w is None else w[index]
            index = None
        X, Y, w, X_val, Y_val, w_val = self._validation(X, Y, w, validation_data,
                                                        validation_fraction)
        # What the core would refuse, refused here, before anything is trained.
        dpsgd = isinstance(opt, optim.DPSGD)
        if dpsgd:
            self._dense_only(X, "optimizer 'dpsgd'")
        if dpsgd and block:
            raise ValueError("block_rows works with the optimisers that update from the "
                             "minibatch's gradient, not with DP-SGD's per-sample clipping "
                             f"(block_rows must be None), got block_rows={block}")
        if is_sparse(X) and (block or index is not None):
            raise ValueError("a sparse X trains without block_rows and without an index of rows")
        seed_given = None if seed is None else check_seed(seed)
        if seed is not None:
            seed = seed_given
        elif shuffle or checkpoint is not None or dpsgd:
            seed = self._fit_seed()
        else:  # no sample order or noise to draw: the fit is counted, its seed never read
            self._fits = self.__dict__.get("_fits", 0) + 1
            seed = 0
        schedule, rate_of = self._schedule(lr_schedule, lm)
        clip_norm = 0.0 if clip_norm is None else check_real(clip_norm, "clip_norm", low=0,
                                                             low_open=True)
        if rate_of is not None:
            lr = rate_of(0)
        adaptive = lr_schedule._tracker(opt.lr if lr is None else lr) \
            if isinstance(lr_schedule, optim.Adaptive) else None
        patience = 0 if patience is None else check_count(patience, "patience", low=0)
        min_delta = check_real(min_delta, "min_delta", low=0)
        restore_best = check_bool(restore_best, "restore_best")
        callback = check_callable(callback, "callback")
        verbose = check_bool(verbose, "verbose")

        state = None if lm else opt.state_for(self.n_params, self._dtype)
        ckpt, resume = None, {}
        if checkpoint is not None:
            if lm:
                raise ValueError("checkpoint works with the first-order optimisers, not 'lm'")
            if rate_of is not None or adaptive is not None:
                raise ValueError("checkpoint works with the core's schedules (StepLR, "
                                 "CosineAnnealingLR, InvScaling) or none, not with a callable "
                                 "or Adaptive lr_schedule")
            from ._checkpoint import Checkpoint

            ckpt = Checkpoint(
                checkpoint, checkpoint_every, params=self.params, state=state, epochs=epochs,
                patience=patience, min_delta=min_delta, restore_best=restore_best,
                validation=X_val is not None,
                identity={"network": [self.layers, self._activations, self._bias,
                                      self._dtype.name, self._loss],
                          "rows": len(X) if index is None else len(index),
                          "validation rows": 0 if X_val is None else len(X_val),
                          "batch_size": batch, "shuffle": shuffle, "seed": seed_given,
                          "optimizer": repr(opt),
                          "lr": lr, "block_rows": block, "patience": patience,
                          "lr_schedule": repr(lr_schedule), "clip_norm": clip_norm,
                          "min_delta": min_delta, "restore_best": restore_best})
            ckpt.seed = seed
            saved = ckpt.read()
            if saved is not None:
                resume = ckpt.resume(saved)  # the saved step count too, in opt's state
                seed = ckpt.seed
        if dpsgd:  # the noise of the fit's seed, a resumed fit's that of the interrupted one
            opt._seed_noise_from(seed)
        best_params = resume.pop("best_params", None)

        options = _core.TrainOptions(epochs=epochs, batch_size=batch, shuffle=shuffle, seed=seed,
                                     patience=patience, min_delta=min_delta,
                                     restore_best=restore_best, schedule=schedule,
                                     clip_norm=clip_norm, block_rows=block, **resume)
        plan = _FitPlan(self, X, Y, w, index, X_val, Y_val, w_val, epochs, lr, opt, lm, options)
        plan.state, plan.ckpt, plan.best_params = state, ckpt, best_params
        plan.t = len(X) if index is None else len(index)
        plan.patience, plan.callback, plan.verbose = patience, callback, verbose
        plan.rate_of, plan.adaptive = rate_of, adaptive
        plan.seed_given = seed_given is not None
        return plan

    def _fit_plan_like(self, plan: "_FitPlan", lr: float | None) -> "_FitPlan | None":
        """The plan _fit_plan would make for this network from the very arguments ``plan``
        was made from, but for ``lr``, without checking them again: fit_many's shortcut for
        many networks given the same arguments. None where it cannot be copied (the fit
        draws a seed, has state or data of its own, or the networks differ in what the data
        is converted to): make that plan with _fit_plan."""
        first, opt = plan.net, plan.opt
        if not plan.copyable() or not self._copies_plan_of(plan, lr):
            return None
        arguments = opt._arguments()
        if lr is not None:
            lr = check_lr(lr)
            arguments["lr"] = lr
        new = type(opt)(**arguments)
        if not plan.seed_given:  # counted as _fit_plan counts a fit that draws no seed
            self._fits = self.__dict__.get("_fits", 0) + 1
        copy = _FitPlan(self, plan.X, plan.Y, plan.w, plan.index, plan.X_val, plan.Y_val,
                        plan.w_val, plan.epochs, lr, new, False, plan.options)
        copy.config = new.config()  # the new object's lr is the fit's
        copy.state = new.state_for(self.n_params, self._dtype, copy.config)
        copy.ckpt, copy.best_params = None, None
        copy.t, copy.patience, copy.callback, copy.verbose = plan.t, plan.patience, None, \
            plan.verbose
        copy.rate_of, copy.adaptive, copy.seed_given = None, None, plan.seed_given
        return copy

    def _copies_plan_of(self, plan: "_FitPlan", lr: float | None) -> bool:
        """Whether this network's fit with lr may copy ``plan`` (a copyable one, see
        _FitPlan.copyable): the data converts to the same arrays for it (dtype, loss, l_0 and
        l_n as the plan's network) and lr is given when the plan's was."""
        first = plan.net
        if lr is None and plan.lr is not None:
            return False
        if self._dtype != first._dtype or self._loss != first._loss:
            return False
        mine, theirs = self._core.layers, first._core.layers
        return mine[0] == theirs[0] and mine[-1] == theirs[-1]

    def _fit_seed(self) -> int:
        """The shuffling seed of this network's next fit: from its seed and the count of its
        fits, so that the same seed and the same calls give the same bits."""
        count = self.__dict__.get("_fits", 0)
        self._fits = count + 1
        words = np.random.SeedSequence([self._seed, count]).generate_state(2, np.uint64)
        return int(words[0])

    @staticmethod
    def _schedule(lr_schedule: Any, lm: bool) -> tuple[Any, Callable[[int], float] | None]:
        """The core's Schedule and, for a callable lr_schedule, the checked rate of an epoch."""
        if lr_schedule is None:
            return _core.Schedule(), None
        if lm:
            raise ValueError("optimizer 'lm' has no learning rate to schedule: lr_schedule "
                             "must be None")
        if isinstance(lr_schedule, optim.Schedule):
            return lr_schedule._core_schedule(), None
        if callable(lr_schedule):

            def rate_of(epoch: int) -> float:
                return check_lr(lr_schedule(epoch), f"lr_schedule({epoch})")

            return _core.Schedule(), rate_of
        raise TypeError(message("lr_schedule", "a fastprop.optim schedule (StepLR, "
                                "CosineAnnealingLR, InvScaling), a callable epoch -> lr or None",
                                typed(lr_schedule)))

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
                      state["dtype"], state["seed"], state["loss"],
                      state.get("huber_delta", 1.0))
        self.params = state["params"]
        self.history = state.get("history", History(np.empty(0)))
        self._fits = int(state.get("fits", 0))  # a pickle from before it was kept: 0

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
        if self._loss == "cross_entropy" and self._are_labels(Y, single, l_n, y_name):
            Y = self._one_hot(Y.reshape(-1), l_n, y_name)
        elif single and Y.shape == (l_n,):
            Y = Y[np.newaxis, :]
        elif Y.ndim == 1 and l_n == 1:  # one target per row for a single output
            Y = Y[:, np.newaxis]
        if Y.ndim != 2 or Y.shape[1] != l_n:
            raise ValueError(f"{y_name} must have shape (t, {l_n})"
                             f"{' or (t,)' if l_n == 1 else ''}, got {Y.shape}")
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"{x_name} and {y_name} must have the same number of rows "
                             f"(samples), got {X.shape[0]} and {Y.shape[0]}")
        return X, self._convert(Y)

    # The targets each loss can be trained on, (lowest, highest, what that is): beyond them
    # the loss has no minimum and training runs z_n off to ±inf. `loss`, `gradient` and
    # `loss_and_grad` take any target, as torch's losses do; `fit`, `step` and fit_many check
    # (NaN passes: a fit stops on it with FloatingPointError).
    _TARGETS = {"cross_entropy": (0.0, 1.0, "target probabilities in [0, 1]"),
                "binary_cross_entropy": (0.0, 1.0, "probabilities or labels in [0, 1]"),
                "poisson": (0.0, np.inf, "counts >= 0")}

    def _check_targets(self, Y: np.ndarray, name: str = "Y",
                       index: np.ndarray | None = None) -> None:
        """Y (or its rows ``index``) within the loss's targets; read in blocks of rows, with
        NaN skipped by fmin and fmax, so that no copy of Y is made unless one is refused."""
        if self._loss not in self._TARGETS:
            return
        low, high, what = self._TARGETS[self._loss]
        rows = len(Y) if index is None else len(index)
        block = max(1, (1 << 16) // max(1, Y.shape[1]))
        for start in range(0, rows, block):
            part = Y[start:start + block] if index is None else Y[index[start:start + block]]
            if part.size and (np.fmin.reduce(part, axis=None) < low
                              or np.fmax.reduce(part, axis=None) > high):
                out = ((part < low) | (part > high)).reshape(-1)
                value = part.reshape(-1)[np.argmax(out)].item()
                raise ValueError(message(f"{name} to train on with loss {self._loss!r}", what,
                                         f"the value {value!r}"))

    @staticmethod
    def _dense_only(X: Any, what: str) -> Any:
        if is_sparse(X):
            raise TypeError(f"{what} needs a dense X (an array), got a sparse matrix; "
                            f"pass X.toarray() for a small one")
        return X

    @staticmethod
    def _are_labels(Y: np.ndarray, single: bool, l_n: int, name: str) -> bool:
        """True when Y of a cross-entropy network holds class labels, shape (t,) or (t, 1)
        (integers, or floats with integral values); a float Y of that shape with other
        values is refused with what was expected."""
        if single and Y.shape == (l_n,):
            return False  # one sample's target probabilities
        if not (Y.ndim <= 1 or (Y.ndim == 2 and Y.shape[1] == 1)):
            return False
        if Y.dtype.kind in "iub":
            return True
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(Y) & (Y == np.round(Y)))
        if bad.any():
            raise ValueError(f"{name} for loss 'cross_entropy' must be class labels, integers "
                             f"in [0, {l_n}) of shape (t,), or target probabilities of shape "
                             f"(t, {l_n}); got shape {Y.shape} with the non-integral value "
                             f"{Y.reshape(-1)[np.argmax(bad.reshape(-1))].item()!r}")
        return True

    @staticmethod
    def _one_hot(labels: np.ndarray, l_n: int, name: str = "Y") -> np.ndarray:
        """Integer class labels (t,) as target probabilities (t, l_n)."""
        if labels.size and (labels.min() < 0 or labels.max() >= l_n):
            raise ValueError(f"class labels must be integers in [0, {l_n}) for l_n = {l_n} "
                             f"outputs, got values from {labels.min()} to {labels.max()} "
                             f"(in {name})")
        Y = np.zeros((labels.size, l_n))
        Y[np.arange(labels.size), labels.astype(np.intp)] = 1
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
        if A.dtype == self._dtype and A.flags.c_contiguous and A.flags.aligned:
            return A  # as np.require would: the common case, without its cost per call
        with np.errstate(over="ignore"):
            return np.require(A, dtype=self._dtype, requirements=("C", "A"))


class LayerViews(list):
    """One writable view per layer into a network's parameters (``net.weights``,
    ``net.biases``, and the scikit-learn estimators' ``coefs_`` and ``intercepts_``): a list
    whose item assignment copies the array into that layer's view (``net.weights[0] = W``
    sets W_0, as ``net.weights[0][...] = W`` does), after checking its shape, where a plain
    list would take the array and leave the network as it was."""

    def __init__(self, views: Sequence[np.ndarray], name: str) -> None:
        super().__init__(views)
        self._name = name

    def __setitem__(self, index: Any, value: ArrayLike) -> None:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"{self._name}[i] = array sets one layer's values, i an int; "
                            f"got index {index!r}")
        view = self[index]
        name = f"{self._name}[{index}]"
        array = real_array(value, name)
        if array.ndim and array.shape != view.shape:  # a number fills the layer
            raise ValueError(message(name, f"shape {view.shape}", str(array.shape),
                                     verb="have"))
        with np.errstate(over="ignore"):  # beyond float32's range: ±inf, as params= does
            view[...] = array

    def __reduce__(self) -> tuple[Any, ...]:  # pickled as a plain list of arrays
        return list, (list(self),)


def _check_index(index: ArrayLike, t: int, name: str = "indices") -> np.ndarray:
    """Row indices into t rows: a non-empty 1-D integer array with values in [0, t)."""
    index = np.asarray(index)
    if index.dtype == bool or index.dtype.kind not in "iu" or index.ndim != 1:
        raise TypeError(message(name, "a 1-D array of integer row indices",
                                f"an array of dtype {index.dtype} and shape {index.shape}"))
    if index.size == 0:
        raise ValueError(f"{name} must select at least one row, got an empty array")
    low, high = int(index.min()), int(index.max())
    if low < 0 or high >= t:
        raise ValueError(f"{name} must be row numbers in [0, {t}) for X of {t} rows, got "
                         f"values from {low} to {high}")
    return np.ascontiguousarray(index, dtype=np.int64)


def _stops(answer: Any) -> bool:
    """Whether a callback's return value asks to stop: False, NumPy's False included."""
    return isinstance(answer, (bool, np.bool_)) and not answer


class _FitPlan:
    """One fit's arguments, checked and converted for the core (see Network._fit_plan)."""

    config: Any = None  # the optimiser's OptimizerConfig, when made already

    t: int
    patience: int
    callback: Any
    verbose: bool
    rate_of: Any
    adaptive: Any

    def __init__(self, net: Network, X, Y, w, index, X_val, Y_val, w_val, epochs: int, lr,
                 opt, lm: bool, options) -> None:
        self.net, self.X, self.Y, self.w, self.index = net, X, Y, w, index
        self.X_val, self.Y_val, self.w_val = X_val, Y_val, w_val
        self.epochs, self.lr, self.opt, self.lm, self.options = epochs, lr, opt, lm, options
        self.state: Any = None  # the optimiser's state (None for Levenberg–Marquardt)
        self.ckpt: Any = None  # the fit's Checkpoint, if any
        self.best_params: Any = None  # early stopping's best parameters, when resuming

    def copyable(self) -> bool:
        """Whether another network's fit from the same arguments (but lr) may copy this
        plan without checking them again (Network._fit_plan_like, FitJob.like): the fit draws
        no seed and has no state, hook or data of its own."""
        return not (self.lm or self.ckpt is not None or self.callback is not None
                    or self.rate_of is not None or self.adaptive is not None
                    or self.best_params is not None or self.X_val is not None
                    or self.index is not None or isinstance(self.opt, optim.DPSGD)
                    or (self.options.shuffle and not self.seed_given))

    def epoch_end(self, progress: Any, extra: dict[str, Any] | None = None) -> Any:
        """The core's epoch hook: the progress bar, the callback, then the rate of the next
        epoch when the schedule or the callback changed it (None when nothing needs Python).
        ``extra`` is added to the callback's logs."""
        callback, lm, opt, epochs = self.callback, self.lm, self.opt, self.epochs
        rate_of, adaptive, validation = self.rate_of, self.adaptive, self.X_val is not None
        ckpt = self.ckpt
        if (callback is None and progress is None and rate_of is None and adaptive is None
                and ckpt is None):
            return None

        def epoch_end(log: Any) -> Any:
            """After each epoch, from the core: the checkpoint, the progress bar, the
            callback, then the rate of the next epoch when the schedule or the callback
            changed it."""
            if ckpt is not None and ckpt.epoch_end(log.epoch, log.loss, log.val_loss,
                                                   log.time, log.lr):
                ckpt.write()
            logs = {"loss": log.loss, "time": log.time}
            rate = log.lr  # the very object, to see whether the callback replaced it
            if not lm:
                logs["lr"] = rate
            if validation:
                logs["val_loss"] = log.val_loss
            if extra:
                logs.update(extra)
            if progress is not None:
                progress.update(log.epoch, logs)
            opt_lr = getattr(opt, "lr", None)
            if callback is not None and _stops(callback(log.epoch, logs)):
                return _core.EpochControl(stop=True)
            lr_next = None
            if rate_of is not None and log.epoch + 1 < epochs:
                lr_next = rate_of(log.epoch + 1)
            if adaptive is not None:
                lr_next = adaptive.after_epoch(log.val_loss if validation else log.loss)
            if not lm and logs.get("lr") is not rate:
                lr_next = check_lr(logs.get("lr"), 'logs["lr"]')
            elif getattr(opt, "lr", None) != opt_lr:
                lr_next = check_lr(opt.lr, "optimizer.lr")
            if adaptive is not None:
                adaptive.lr = lr_next
            return None if lr_next is None else _core.EpochControl(lr=lr_next)

        return epoch_end

    def job(self, progress: Any = None, extra: dict[str, Any] | None = None) -> Any:
        """The core's FitJob for fit_many."""
        net = self.net
        job_class = _core.FitJob32 if net.dtype == np.float32 else _core.FitJob64
        data = {"index": self.index, "X_val": self.X_val, "Y_val": self.Y_val,
                "w_val": self.w_val, "callback": self.epoch_end(progress, extra)}
        if self.lm:
            return job_class(net._core, self.X, self.Y, self.w, options=self.options,
                             lm=self.opt.config(), **data)
        if self.state is None:
            self.state = self.opt.state_for(net.n_params, net.dtype)
        config = self.opt.config(self.lr) if self.config is None else self.config
        return job_class(net._core, self.X, self.Y, self.w, options=self.options,
                         optimizer=config, state=self.state, **data)

    def finish(self, record: Any) -> None:
        """The network's history from the core's record of the fit (None: it never ran)."""
        if record is None:
            return
        if self.ckpt is not None:
            self.net.history = self.ckpt.history(record, self.patience)
            return
        self.net.history = self.history_of(record, self.X_val is not None, self.patience,
                                           self.lm)

    @staticmethod
    def history_of(record: Any, validation: bool, patience: int, lm: bool = False) -> History:
        """The History of the core's record of a fit (not checkpointed)."""
        stop = record.stop.name
        return History(
            record.loss, record.val_loss if validation else None, record.time,
            record.best_epoch if patience else None,
            stop if stop in ("early_stopping", "callback", "converged") else "done",
            None if lm else record.lr)


def network_from_state(state: Mapping[str, Any]) -> Network:
    """The network a state describes (:func:`fastprop._state.state`), as unpickling makes it.

    ``fastprop.io.load`` makes networks from files with it, so that a file and a pickle of
    the same network give the same network.
    """
    net = Network.__new__(Network)
    net.__setstate__(state)
    return net
