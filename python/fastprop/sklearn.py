"""scikit-learn drop-ins trained by fastprop: :class:`MLPRegressor` and :class:`MLPClassifier`.

Every parameter of scikit-learn's MLPRegressor and MLPClassifier (1.9), with scikit-learn's
names, order, defaults and meanings, so that ``MLPClassifier(**sklearn_mlp.get_params())``
works; plus fastprop's extras ``dtype`` and the solvers "rprop" and "lm". Training runs in
fastprop's C++ core: one native loop over the epochs and minibatches per ``fit``, with Python
called once per epoch for scikit-learn's bookkeeping (the loss curve, the stopping rule, the
learning-rate schedule, ``verbose``). How each parameter reaches fastprop:

======================  =====================================================================
scikit-learn            fastprop
======================  =====================================================================
loss (regressor)        "squared_error" → fastprop's "mse"; "poisson" → fastprop's "poisson"
                        (z_n is the log of the rate, ``predict`` is e^{z_n}; y >= 0)
hidden_layer_sizes      ``Network([n_features, *hidden_layer_sizes, n_outputs], bias=True)``
activation              the hidden σ; "logistic" is fastprop's "sigmoid"
solver                  "sgd" → ``optim.SGD``, "adam" → ``optim.Adam``, "rprop" →
                        ``optim.Rprop`` (full batch), "lm" → ``optim.LevenbergMarquardt``
                        (full batch, squared_error only), "lbfgs" → SciPy's L-BFGS-B
                        on ``Network.loss_and_grad``
alpha                   ``weight_decay`` (see the scaling below); lbfgs and lm: the exact
                        penalty (lm: ``weight_decay = alpha/(s·Σw)`` on the weights only,
                        so that it minimises scikit-learn's objective)
batch_size              the core's minibatch size; "auto" is min(200, n_samples)
learning_rate           sgd only, as in scikit-learn: "constant"; "invscaling", the rate
                        learning_rate_init / (1 + t_)^power_t after each epoch (t_: samples
                        seen since the estimator was initialised); "adaptive", the rate
                        divided by 5 when n_iter_no_change epochs in a row did not improve by
                        tol, and training stops once it is <= 1e-6. The new rate is set from
                        the epoch hook (``EpochControl(lr=...)``) and used by the native loop
                        from the next epoch; the momentum buffer is rescaled so that the
                        update is scikit-learn's v ← μv − lr·g exactly.
learning_rate_init      ``lr`` (sgd: scaled, see below; adam: as is); rprop: the first step
power_t                 the exponent of "invscaling"
max_iter                epochs (lbfgs: its ``maxiter``)
max_fun                 lbfgs: its ``maxfun``
shuffle, random_state   the core's shuffle and its seed; ``Network(seed=...)``; the split
tol, n_iter_no_change   scikit-learn's rule, after each epoch (see below); lbfgs: gtol
early_stopping          a held-out set scored after each epoch, the best weights kept
validation_fraction     a (stratified for one-output classifiers) ``train_test_split``
verbose                 scikit-learn's lines: "Iteration %d, loss = %.8f", "Validation score:
                        %f" and why training stopped (also for lbfgs, rprop and lm)
warm_start              ``fit`` continues from the fitted network with a new optimiser,
                        keeping the loss curve, t_ and the stopping state, as scikit-learn
momentum                sgd: ``momentum``
nesterovs_momentum      sgd: ``nesterov``
beta_1, beta_2          adam: ``betas``
epsilon                 adam: ``eps`` (scaled, see below)
dtype (extra)           ``Network(dtype=...)``: "float64" or "float32"
======================  =====================================================================

``sample_weight`` in ``fit``, ``partial_fit`` and ``score``: a weight scales its sample's term
of the loss and of the gradient, and the means divide by the total weight (of the minibatch,
for its update), as in scikit-learn; for every solver. With full-batch training a weight of 2
is the sample twice and a weight of 0 leaves it out. All-ones weights are the same as none.

Stopping. After every epoch, exactly as scikit-learn's ``_update_no_improvement_count``:
without early_stopping, an epoch whose loss is above ``best_loss_ − tol`` counts as no
improvement (any other resets the count), and ``best_loss_`` is the smallest loss so far;
with early_stopping, the score (accuracy or R², with the sample weights) on the held-out set
is appended to ``validation_scores_``, an epoch that does not beat ``best_validation_score_
+ tol`` counts, and the weights of the best score are restored at the end. Training stops
once the count exceeds ``n_iter_no_change`` (adaptive sgd divides its rate instead, while it
is above 1e-6); a ConvergenceWarning says so when ``max_iter`` epochs ran without stopping.
``n_iter_`` counts the epochs of the last call (``fit`` or ``partial_fit``) and ``t_`` the
samples seen since the initialisation, as scikit-learn's.

Losses, and how they are scaled so that the hyperparameters mean what they mean in
scikit-learn. fastprop minimises its loss L; scikit-learn reports ``s·L`` (+ a constant):

- squared_error: L = "mse" (mean over all t·l_n entries), s = 1/2: ``loss_curve_`` is
  scikit-learn's squared_error/2 exactly;
- poisson: L = "poisson" (mean over all t·l_n entries of e^z − y z), s = l_n, plus the
  constant mean of Σ_j (y log y − y) that scikit-learn's deviance includes;
- multiclass: L = "cross_entropy" (softmax, mean over samples), s = 1;
- binary and multilabel: L = "binary_cross_entropy" (sigmoid, mean over all t·l_n entries),
  s = l_n, as scikit-learn sums the label losses.

scikit-learn's gradient is that of ``s·L`` except for squared_error with l_n > 1 outputs,
where it is l_n times larger (g = s_g·∇L with s_g = l_n/2). An update on ``g + alpha·W/B``
(B the minibatch's size, or total weight) is then exactly fastprop's update on L with ``lr =
learning_rate_init·s_g`` (SGD; Adam and Rprop are invariant to the scale, Adam's ``eps``
becomes ``epsilon/s_g``) and ``weight_decay = alpha/(B·s_g)``. ``loss_curve_`` includes
scikit-learn's penalty alpha/2·||W||² per minibatch over the total weight (for minibatches
with ||W||² interpolated between the epoch's start and end: the core reports one loss per
epoch).

Differences from scikit-learn that remain: ``weight_decay`` also decays the intercepts (as
torch.optim does; scikit-learn penalises only ``coefs_``, and so do lbfgs and lm here); the
initialisation is fastprop's (Glorot or He uniform, zero intercepts); with sample weights and
minibatches, the epoch's loss is the weighted mean over its samples (scikit-learn weights each
minibatch's weighted mean by its row count) and the decay uses the mean weight for B; the
last, smaller minibatch of an epoch is decayed as a full one (scikit-learn divides alpha by its
size); lbfgs
descends the true gradient of the reported objective for multi-output squared_error;
scipy.sparse inputs (CSR, CSC, COO) are accepted, but not by solver="lm"; a non-finite loss
stops training with FloatingPointError, the network left at its last finite state; sample
weights must be >= 0.
"""

from __future__ import annotations

import math
import numbers
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    import scipy.optimize
    from scipy.special import expit, softmax, xlogy
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import check_classification_targets, unique_labels
    from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError("fastprop.sklearn needs scikit-learn (>= 1.6) and SciPy: "
                      "pip install scikit-learn") from _error

from . import _core, optim
from ._validate import caller_stacklevel, check_bool, check_choice, check_count, check_dtype, \
    check_int, check_lr, check_real, check_sample_weight, message, real_array, shown, typed
from ._sparse import rows_for_core
from .history import History
from .ensemble import MLPEnsembleClassifier, MLPEnsembleRegressor
from .model_selection import GridSearchCV, RandomizedSearchCV, _take_trained, \
    cross_val_score, cross_validate
from .network import LOSSES, LayerViews, Network

__all__ = ["MLPRegressor", "MLPClassifier", "GridSearchCV", "RandomizedSearchCV",
           "cross_validate", "cross_val_score", "MLPEnsembleRegressor", "MLPEnsembleClassifier"]

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam", "lbfgs", "rprop", "lm")
_MINIBATCH_SOLVERS = ("sgd", "adam")  # the others take the whole batch every epoch
_INCREMENTAL_SOLVERS = ("sgd", "adam", "rprop", "lm")  # optimizer objects keep their state
_LEARNING_RATES = ("constant", "invscaling", "adaptive")
_REGRESSION_LOSSES = {"squared_error": "mse", "poisson": "poisson"}
_SMALLEST_ADAPTIVE_LR = 1e-6  # adaptive sgd stops instead of dividing its rate below this
_SPARSE_FORMATS = ("csr", "csc", "coo")  # scipy.sparse X, as scikit-learn's MLP takes it


class _Job:
    """One estimator's fit as a job of the core (``job``, for ``_core.fit_many``), and
    :meth:`end`, which completes the estimator afterwards as its own fit would have."""

    def __init__(self, job: Any, keep_record: Any, finish: Any) -> None:
        self.job, self._keep_record, self._finish = job, keep_record, finish

    def end(self) -> None:
        """Keeps the record; raises what the fit would have raised (FloatingPointError for a
        non-finite loss, the callback's exception); then ends the fit as scikit-learn does."""
        record = self.job.record
        self._keep_record(record)
        if self.job.failed:
            self.job.raise_error()
        if record is not None and record.stop.name == "non_finite":
            raise FloatingPointError(_core.non_finite_message(record.epochs))
        if record is not None and record.stop.name == "interrupted":
            raise KeyboardInterrupt
        self._finish(record)


class _BaseMLP(BaseEstimator):
    """The parameters, the training and the attributes shared by both estimators."""

    # Set at the first fit (see the module doc): fastprop's loss, s (scikit-learn's loss =
    # s·L + constant) and s_g (scikit-learn's gradient = s_g·∇L).
    _loss_name: str
    _loss_scale: float
    _grad_scale: float

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        dtype: str = "float64",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype

    # ------------------------------------------------------------------ fitted model
    @property
    def coefs_(self) -> LayerViews:
        """W_iᵀ, shape (l_i, l_{i+1}): scikit-learn's layout; writable views into the network.
        Assigning a list of such arrays copies them into the network, as setting
        scikit-learn's attribute replaces its weights; ``coefs_[i] = A`` copies A into W_iᵀ."""
        return LayerViews([W.T for W in self._fitted_net().weights], "coefs_")

    @coefs_.setter
    def coefs_(self, coefs: Sequence[ArrayLike]) -> None:
        self._assign(coefs, "coefs_")

    @property
    def intercepts_(self) -> LayerViews:
        """b_i, shape (l_{i+1},): writable views into the network; assigning a list of such
        arrays copies them in, ``intercepts_[i] = b`` one of them."""
        return LayerViews(self._fitted_net().biases, "intercepts_")

    @intercepts_.setter
    def intercepts_(self, intercepts: Sequence[ArrayLike]) -> None:
        self._assign(intercepts, "intercepts_")

    def _assign(self, values: Sequence[ArrayLike], name: str) -> None:
        """values into a copy of the parameters, then that copy into the network in one
        assignment: arrays that are views of these very weights (a permutation of coefs_)
        read the old ones, and a fit in another thread sees the old or the new, never half."""
        net = self._fitted_net()
        params = net._snapshot()
        W, b = net._split(params)
        _copy_into([w.T for w in W] if name == "coefs_" else b, values, name)
        net.params = params

    @property
    def network_(self) -> Network:
        """The trained :class:`fastprop.Network` (its output z_n is the prediction, the
        logits, or the log of the rate for loss="poisson")."""
        return self._fitted_net()

    def _fitted_net(self) -> Network:
        if "_net" not in vars(self):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self._net

    def __sklearn_is_fitted__(self) -> bool:
        return "_net" in vars(self)

    # ------------------------------------------------------------------ training
    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> _BaseMLP:
        """Train on X and y for up to ``max_iter`` epochs (a new network, unless warm_start).

        Parameters
        ----------
        X : array-like or scipy.sparse matrix (CSR, CSC, COO) of shape (n_samples, n_features)
            Input data; a sparse X is never made dense (the first layer reads its non-zeros).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: real values (regression) or class labels (classification).
        sample_weight : array-like of shape (n_samples,), default None
            A weight >= 0 per sample, scaling its term of the loss (see the module doc).

        Returns
        -------
        self
        """
        if _take_trained(self, X, y, sample_weight):  # trained ahead by a search's fit_many
            return self
        return self._fit(X, y, sample_weight, incremental=False)

    def _partial_fit_allowed(self) -> bool:
        if self.solver not in _INCREMENTAL_SOLVERS:
            raise AttributeError(f"partial_fit needs solver in {_INCREMENTAL_SOLVERS}, whose "
                                 f"optimizer state persists; got solver={self.solver!r}")
        return True

    def _fit_job(self, X: ArrayLike, y: ArrayLike,
                 sample_weight: ArrayLike | None = None) -> _Job | None:
        """What ``fit(X, y, sample_weight)`` does, as a job for one fit_many call of the core
        (fastprop.model_selection), or None for a solver that does not train in the core's
        loop (lbfgs). Running the job, then its ``end()``, is the fit, to the bits."""
        if self.solver == "lbfgs":
            return None
        return self._fit(X, y, sample_weight, incremental=False, as_job=True)

    def _fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None,
             incremental: bool, classes: ArrayLike | None = None,
             as_job: bool = False) -> Any:
        self._check_params()
        first = "_net" not in vars(self) or not (self.warm_start or incremental)
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.dtype(self.dtype),
                             y_numeric=not isinstance(self, ClassifierMixin), reset=first,
                             accept_sparse=_SPARSE_FORMATS)
        w = None
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, X.shape[0], self.dtype)
            if np.all(w == 1):
                w = None  # the same bits as no weights
        Y = np.ascontiguousarray(self._targets(y, first, classes), dtype=self.dtype)  # (t, l_n)
        rng = check_random_state(self.random_state)
        if first:
            self._initialize(X.shape[1], Y.shape[1], rng)
        else:
            self._check_continuation(Y.shape[1])
        X = rows_for_core(X)
        if as_job:
            return self._fit_epochs(X, Y, w, rng, incremental, as_job=True)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, w)
        else:
            self._fit_epochs(X, Y, w, rng, incremental)
        return self

    def _initialize(self, n_features: int, n_outputs: int, rng: np.random.RandomState) -> None:
        """A fresh network and the training state of a first fit, as scikit-learn's."""
        hidden = self._hidden_layer_sizes()
        if self._loss_name not in LOSSES:
            raise ValueError(f"this estimator needs fastprop's {self._loss_name!r} loss, which "
                             f"this build of fastprop's core does not have")
        self._net = Network([n_features, *hidden, n_outputs], _ACTIVATIONS[self.activation],
                            bias=True, dtype=self.dtype, seed=_seed(rng), loss=self._loss_name)
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.t_ = 0
        self.loss_curve_: list[float] = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_: list[float] | None = []
            self.best_validation_score_: float | None = -np.inf
            self.best_loss_: float | None = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None
        self._best_params = self._net.params.copy()
        self.__dict__.pop("_optimizer", None)  # a new network starts a new optimizer

    def _check_continuation(self, n_outputs: int) -> None:
        """warm_start and partial_fit continue the fitted network: the same shape and kind."""
        net = self._net
        if n_outputs != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} outputs as in the previous fit, "
                             f"got {n_outputs}")
        hidden = self._hidden_layer_sizes()
        if (list(net.layers[1:-1]) != hidden or net.activations[:1] not in
                ((), (_ACTIVATIONS[self.activation],)) or net.dtype != np.dtype(self.dtype)):
            raise ValueError(
                f"warm_start and partial_fit continue the fitted network "
                f"(hidden_layer_sizes={list(net.layers[1:-1])}, activation of the network "
                f"{net.activation!r}, dtype={net.dtype.name!r}); got hidden_layer_sizes="
                f"{shown(self.hidden_layer_sizes)}, activation={self.activation!r}, "
                f"dtype={self.dtype!r}: set them back, or fit with warm_start=False")
        if self.early_stopping and self.validation_scores_ is None:
            self.validation_scores_, self.best_validation_score_ = [], -np.inf
        if not self.early_stopping and self.best_loss_ is None:
            self.best_loss_ = np.inf

    def _loss_constant(self, Y: np.ndarray, w: np.ndarray | None) -> float:
        """What scikit-learn's loss adds to s·L: for poisson, the mean of Σ_j (y log y − y)."""
        if self._loss_name != "poisson":
            return 0.0
        return float(np.average(np.sum(xlogy(Y, Y) - Y, axis=1), weights=w))

    def _fit_epochs(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None,
                    rng: np.random.RandomState, incremental: bool,
                    as_job: bool = False) -> _Job | None:
        """Every solver but lbfgs: one native loop over the epochs, Python after each.
        ``as_job``: instead of training, the core's job for fit_many and what ends it."""
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        net, s = self._net, self._loss_scale
        X_val = Y_val = w_val = None
        if self.early_stopping:
            X, X_val, Y, Y_val, w, w_val = self._split(X, Y, w, rng)
        t = X.shape[0]
        total = t if w is None else float(np.sum(w, dtype=np.float64))  # what means divide by
        minibatch = self.solver in _MINIBATCH_SOLVERS
        batch = t
        if minibatch and self.batch_size != "auto":
            if self.batch_size > t:
                warnings.warn(f"batch_size={self.batch_size} is larger than the {t} training "
                              f"samples; it is clipped to {t}", UserWarning,
                              stacklevel=caller_stacklevel())
            batch = min(self.batch_size, t)
        elif minibatch:
            batch = min(200, t)
        n_batches = -(-t // batch)
        B = batch * total / t  # a minibatch's weight, on average
        if not incremental or "_optimizer" not in vars(self):
            self._optimizer = self._make_optimizer()
            self._learning_rate = float(self.learning_rate_init)  # sgd's, in sklearn's units
        opt = self._optimizer
        if self.solver != "lm":
            opt.weight_decay = self.alpha / (B * self._grad_scale)
        else:  # (s·L + alpha/(2·total)·Σ||W_i||²)/s = L + λ/2·Σ||W_i||²
            opt.weight_decay = self.alpha / (total * s)  # λ = alpha/(total·s)

        constant = self._loss_constant(Y, w)
        penalty = 0.5 * self.alpha / total  # scikit-learn's alpha/2·||W||² / (batch weight)
        squares = self._squared_coefs() if self.alpha else 0.0
        schedule = self.learning_rate if self.solver == "sgd" else "constant"
        state = None if self.solver == "lm" else opt.state_for(net.n_params, net.dtype)
        self.n_iter_ = 0
        reached_max_iter = False

        def epoch_end(log: Any) -> Any:
            """After each epoch, from the core: scikit-learn's bookkeeping and decisions."""
            nonlocal squares, reached_max_iter
            loss = s * log.loss + constant
            if self.alpha:
                squares_end = self._squared_coefs()
                loss += penalty * (n_batches * squares
                                   + (n_batches - 1) / 2 * (squares_end - squares))
                squares = squares_end
            self.n_iter_ += 1
            self.t_ += t
            self.loss_ = loss
            self.loss_curve_.append(loss)
            if self.verbose:
                _say("Iteration %d, loss = %.8f" % (self.n_iter_, loss))
            self._update_no_improvement_count(X_val, Y_val, w_val)
            lr = lr_next = self._learning_rate  # of this epoch (sgd), in scikit-learn's units
            if schedule == "invscaling":
                lr_next = self.learning_rate_init / (self.t_ + 1) ** self.power_t
            if self._no_improvement_count > self.n_iter_no_change:
                what = "Validation score" if self.early_stopping else "Training loss"
                reason = (f"{what} did not improve more than tol={self.tol:f} for "
                          f"{self.n_iter_no_change} consecutive epochs.")
                if schedule != "adaptive":
                    if self.verbose:
                        _say(reason + " Stopping.")
                    return _core.EpochControl(stop=True)
                if lr <= _SMALLEST_ADAPTIVE_LR:
                    if self.verbose:
                        _say(reason + " Learning rate too small. Stopping.")
                    return _core.EpochControl(stop=True)
                lr_next = lr / 5.0
                self._no_improvement_count = 0
                if self.verbose:
                    _say(reason + " Setting learning rate to %f" % lr_next)
            reached_max_iter = not incremental and self.n_iter_ == self.max_iter
            if lr_next == lr:
                return None
            # SGD's momentum buffer b holds −v/lr (scikit-learn's velocity v = μv − lr·g):
            # rescaled, the next update is scikit-learn's with the new rate.
            m = state.m
            if m is not None:
                m *= lr / lr_next
            self._learning_rate = lr_next
            opt.lr = lr_next * self._grad_scale
            return _core.EpochControl(lr=opt.lr)

        options = _core.TrainOptions(epochs=1 if incremental else self.max_iter,
                                     batch_size=batch if minibatch else 0, shuffle=self.shuffle,
                                     seed=_seed(rng), patience=0)
        data = {"X_val": None, "callback": epoch_end}

        def keep_record(record: Any) -> None:
            if record is not None:
                net.history = History(record.loss, None, record.time, None,
                                      "converged" if record.stop.name == "converged" else "done")

        def finish(record: Any) -> None:
            """After a completed fit (the history kept): as scikit-learn ends one."""
            if self.early_stopping:  # the weights of the best validation score
                net.params = self._best_params
            if reached_max_iter and record.stop.name != "converged":
                warnings.warn(f"{'Stochastic Optimizer' if minibatch else self.solver}: Maximum "
                              f"iterations ({self.max_iter}) reached and the optimization "
                              f"hasn't converged yet.", ConvergenceWarning,
                              stacklevel=caller_stacklevel())

        if as_job:  # for fastprop.fit_many's core call (model_selection)
            job_class = _core.FitJob32 if net.dtype == np.float32 else _core.FitJob64
            if self.solver == "lm":
                job = job_class(net._core, X, Y, w, options=options, lm=opt.config(), **data)
            else:
                job = job_class(net._core, X, Y, w, options=options, optimizer=opt.config(),
                                state=state, **data)
            return _Job(job, keep_record, finish)
        try:
            if self.solver == "lm":
                net._core.fit_lm(X, Y, w, options=options, lm=opt.config(), **data)
            else:
                net._core.fit(X, Y, w, options=options, optimizer=opt.config(), state=state,
                              **data)
        except KeyboardInterrupt:  # as scikit-learn: keep what was learnt so far
            warnings.warn("Training interrupted by user.", stacklevel=caller_stacklevel())
        finally:
            keep_record(net._core.last_fit)
        finish(net._core.last_fit)
        return None

    def _split(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None,
               rng: np.random.RandomState) -> tuple[Any, ...]:
        """(X, X_val, Y, Y_val, w, w_val): scikit-learn's held-out set for early stopping."""
        if self.validation_fraction == 0:
            raise ValueError("early_stopping=True needs validation_fraction in (0, 1), got 0")
        stratify = Y if isinstance(self, ClassifierMixin) and Y.shape[1] == 1 else None
        arrays = (X, Y) if w is None else (X, Y, w)
        parts = train_test_split(*arrays, test_size=self.validation_fraction, random_state=rng,
                                 stratify=stratify)
        X, X_val, Y, Y_val = parts[:4]
        w, w_val = (None, None) if w is None else parts[4:]
        if X_val.shape[0] < 2:
            raise ValueError(f"the validation set is too small ({X_val.shape[0]} rows): increase "
                             f"validation_fraction or the number of samples")
        return (rows_for_core(X), X_val, np.ascontiguousarray(Y), Y_val,
                None if w is None else np.ascontiguousarray(w), w_val)

    def _update_no_improvement_count(self, X_val: np.ndarray | None, Y_val: np.ndarray | None,
                                     w_val: np.ndarray | None) -> None:
        """scikit-learn's rule, after each epoch: counts the epochs without improvement by
        tol, and keeps the best loss, or the best validation score and its weights."""
        if self.early_stopping:
            score = self._score_outputs(self._net.forward(X_val), Y_val, w_val)
            self.validation_scores_.append(score)
            if self.verbose:
                _say("Validation score: %f" % score)
            if score < self.best_validation_score_ + self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params = self._net.params.copy()
        else:
            loss = self.loss_curve_[-1]
            if loss > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            if loss < self.best_loss_:
                self.best_loss_ = loss

    def _squared_coefs(self) -> float:
        """||W||² over every W_i (not the intercepts), as scikit-learn's penalty sums it."""
        return float(sum(np.dot(W.ravel(), W.ravel()) for W in self._net.weights))

    def _make_optimizer(self) -> Any:
        """The fastprop optimizer doing scikit-learn's update (see the module doc); its
        ``weight_decay`` is set for each call, from the minibatch's weight."""
        s_g = self._grad_scale
        if self.solver == "sgd":
            return optim.SGD(lr=self.learning_rate_init * s_g, momentum=self.momentum,
                             nesterov=self.nesterovs_momentum and self.momentum > 0)
        if self.solver == "adam":
            return optim.Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                              eps=self.epsilon / s_g)
        if self.solver == "rprop":
            return optim.Rprop(lr=self.learning_rate_init)
        opt = optim.LevenbergMarquardt()
        opt.config().decay_biases = False  # scikit-learn's penalty: coefs_ only
        return opt

    def _fit_lbfgs(self, X: np.ndarray, Y: np.ndarray, w: np.ndarray | None) -> None:
        """SciPy's L-BFGS-B on s·L + alpha/(2·Σw)·||W||² (+ constant), scikit-learn's
        objective, from the network's current parameters."""
        net, s = self._net, self._loss_scale
        total = X.shape[0] if w is None else float(np.sum(w, dtype=np.float64))
        constant = self._loss_constant(Y, w)
        is_W = np.concatenate([np.r_[np.ones(W.size), np.zeros(b.size)]  # layout W_0, b_0, ...
                               for W, b in zip(net.weights, net.biases)])
        curve: list[float] = []

        def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
            E, grad = net.loss_and_grad(X, Y, p, sample_weight=w)
            W_p = is_W * p
            return (s * E + constant + self.alpha / (2 * total) * (W_p @ p),
                    s * np.asarray(grad, dtype=np.float64) + self.alpha / total * W_p)

        def callback(intermediate_result: Any) -> None:
            curve.append(float(intermediate_result.fun))
            if self.verbose:
                _say("Iteration %d, loss = %.8f" % (len(curve), curve[-1]))

        result = scipy.optimize.minimize(
            objective, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
            callback=callback,
            options={"maxiter": self.max_iter, "maxfun": self.max_fun, "gtol": self.tol})
        net.params = result.x
        self.n_iter_ = min(int(result.nit), self.max_iter)
        self.loss_ = float(result.fun)
        self.loss_curve_ = curve or [self.loss_]
        self.best_loss_ = min(self.loss_curve_)
        if result.status != 0:
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status={result.status}):\n{result.message}\n"
                          + (f"\nIncrease the number of iterations to improve the convergence "
                             f"(max_iter={self.max_iter})." if self.n_iter_ == self.max_iter
                             else ""), ConvergenceWarning,
                          stacklevel=caller_stacklevel())

    # ------------------------------------------------------------------ prediction
    def _outputs(self, X: ArrayLike) -> np.ndarray:
        """z_n (t, l_n) for validated X: the predictions, the logits or the log-rates."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.dtype(self.dtype), reset=False,
                          accept_sparse=_SPARSE_FORMATS)
        return self._net.forward(X)

    # ------------------------------------------------------------------ parameters
    def _hidden_layer_sizes(self) -> list[int]:
        """[l_1, …, l_{n−1}] from hidden_layer_sizes (an int or a sequence of ints >= 1)."""
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else sizes
        if isinstance(sizes, str) or not isinstance(sizes, (Sequence, np.ndarray)) or not all(
                isinstance(l_i, numbers.Integral) and not isinstance(l_i, (bool, np.bool_))
                and l_i >= 1 for l_i in sizes):
            raise ValueError(message("hidden_layer_sizes", "an int >= 1 or a sequence of them",
                                     shown(self.hidden_layer_sizes)))
        return [int(l_i) for l_i in sizes]

    def _check_params(self) -> None:
        """ValueError or TypeError naming the parameter, what was expected and what was given.

        The ranges are scikit-learn's (its ``_parameter_constraints``), so that any valid
        scikit-learn parameters are valid here.
        """
        check_choice(self.activation, "activation", list(_ACTIVATIONS))
        check_choice(self.solver, "solver", _SOLVERS)
        check_choice(self.learning_rate, "learning_rate", _LEARNING_RATES)
        check_dtype(self.dtype)
        self._hidden_layer_sizes()
        if self.batch_size != "auto":
            check_count(self.batch_size, "batch_size", low=1)
        check_count(self.max_iter, "max_iter", low=1)
        check_int(self.max_fun, "max_fun", low=1)
        if not (isinstance(self.n_iter_no_change, numbers.Real)
                and self.n_iter_no_change == math.inf):
            check_count(self.n_iter_no_change, "n_iter_no_change", low=1)
        check_real(self.alpha, "alpha", low=0)
        check_lr(self.learning_rate_init, "learning_rate_init")
        check_real(self.power_t, "power_t", low=0)
        check_real(self.tol, "tol", low=0)
        check_real(self.validation_fraction, "validation_fraction", low=0, high=1,
                   high_open=True)
        check_real(self.momentum, "momentum", low=0, high=1)
        check_real(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        check_real(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        check_real(self.epsilon, "epsilon", low=0, low_open=True)
        for name in ("shuffle", "early_stopping", "nesterovs_momentum", "warm_start"):
            check_bool(getattr(self, name), name)
        if not isinstance(self.verbose, (bool, np.bool_)):
            if not isinstance(self.verbose, numbers.Integral):
                raise TypeError(message("verbose", "a bool or an int >= 0", typed(self.verbose)))
            check_int(self.verbose, "verbose", low=0)


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Sizes of the hidden layers l_1 … l_{n−1}.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        σ of the hidden layers ("logistic" is fastprop's "sigmoid").
    solver : {"adam", "sgd", "lbfgs", "rprop", "lm"}, default "adam"
        "rprop" and "lm" (Levenberg–Marquardt) are fastprop's extras, both full batch;
        "lm" needs a squared error.
    alpha : float, default 1e-4
        Strength of the L2 penalty alpha/2·||W||² over the minibatch's size (or weight).
    batch_size : int or "auto", default "auto"
        Minibatch size for "sgd" and "adam"; "auto" is min(200, n_samples).
    learning_rate : {"constant", "invscaling", "adaptive"}, default "constant"
        The schedule of "sgd" (see the module doc); the other solvers ignore it.
    learning_rate_init : float, default 1e-3
        Initial learning rate ("sgd", "adam"), or initial step size ("rprop").
    power_t : float, default 0.5
        Exponent of "invscaling".
    max_iter : int, default 200
        Maximum number of epochs (lbfgs: of iterations).
    shuffle : bool, default True
        Reshuffle the samples every epoch (minibatch solvers).
    random_state : int, RandomState or None, default None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default 1e-4
        An epoch whose loss is not below ``best_loss_ − tol`` (with early_stopping: whose
        validation score is below ``best_validation_score_ + tol``) does not improve; lbfgs:
        its ``gtol``.
    verbose : bool or int, default False
        Print scikit-learn's progress lines.
    warm_start : bool, default False
        ``fit`` continues from the fitted network (same layers) with a new optimizer.
    momentum : float, default 0.9
        Momentum of "sgd".
    nesterovs_momentum : bool, default True
        Nesterov momentum for "sgd".
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data, stop on its score and keep the best
        weights.
    validation_fraction : float, default 0.1
        Fraction of the data held out with ``early_stopping``.
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's β1, β2 and ε.
    n_iter_no_change : int or inf, default 10
        Training stops after more than this many epochs in a row without improvement.
    max_fun : int, default 15000
        lbfgs: the most evaluations of the loss.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the network (a fastprop extra).

    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (l_i, l_{i+1}): W_iᵀ, a writable view into the network.
    intercepts_ : list of ndarray
        ``intercepts_[i]``, shape (l_{i+1},): b_i.
    loss_ : float
        The last training loss, penalty included.
    loss_curve_ : list of float
        The training loss of every epoch (lbfgs: of every iteration), penalty included.
    best_loss_ : float or None
        The smallest training loss; None with early_stopping.
    validation_scores_ : list of float or None
        {score} on the validation set after every epoch, with early_stopping.
    best_validation_score_ : float or None
        The best of ``validation_scores_`` (its weights are kept), with early_stopping.
    n_iter_ : int
        Epochs run by the last call (lbfgs: iterations).
    t_ : int
        Samples seen by the solver since the initialisation.
    n_layers_, n_outputs_, n_features_in_ : int
        Layers n + 1 (input and output included), l_n and l_0.
    network_ : fastprop.Network
        The trained network."""  # shared by both estimators; {score}: R² or accuracy


_REGRESSOR_PARAMETERS_DOC = _PARAMETERS_DOC.replace("{score}", "R²").replace(
    "    ----------\n", """    ----------
    loss : {"squared_error", "poisson"}, default "squared_error"
        "poisson" needs y >= 0 and predicts e^{z_n}.
""", 1)


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor: scikit-learn's, trained by fastprop.

    Minimises the squared error, reported (``loss_curve_``) as scikit-learn does: half the
    mean over all samples and outputs; or, with ``loss="poisson"``, the Poisson deviance of
    the rate e^{{z_n}}. The module documentation maps every parameter to fastprop.
{_REGRESSOR_PARAMETERS_DOC}
    out_activation_ : str
        "identity", or "exp" for loss="poisson".

    Examples
    --------
    >>> import numpy as np
    >>> from fastprop.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", solver="lbfgs",
    ...                    random_state=0).fit(X, X[:, 0] ** 2)
    >>> bool(reg.score(X, X[:, 0] ** 2) > 0.99)
    True
    """

    def __init__(
        self,
        loss: str = "squared_error",
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 0.001,
        power_t: float = 0.5,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        verbose: bool | int = False,
        warm_start: bool = False,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        n_iter_no_change: int | float = 10,
        max_fun: int = 15000,
        dtype: str = "float64",
    ) -> None:
        self.loss = loss
        super().__init__(
            hidden_layer_sizes, activation, solver=solver, alpha=alpha, batch_size=batch_size,
            learning_rate=learning_rate, learning_rate_init=learning_rate_init, power_t=power_t,
            max_iter=max_iter, shuffle=shuffle, random_state=random_state, tol=tol,
            verbose=verbose, warm_start=warm_start, momentum=momentum,
            nesterovs_momentum=nesterovs_momentum, early_stopping=early_stopping,
            validation_fraction=validation_fraction, beta_1=beta_1, beta_2=beta_2,
            epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun, dtype=dtype)

    def _check_params(self) -> None:
        check_choice(self.loss, "loss", list(_REGRESSION_LOSSES))
        super()._check_params()
        if self.solver == "lm" and self.loss != "squared_error":
            raise ValueError(f"solver='lm' (Levenberg–Marquardt) needs loss='squared_error', "
                             f"got loss={self.loss!r}")

    def _targets(self, y: np.ndarray, first: bool, classes: None = None) -> np.ndarray:
        """y as the network's (t, l_n) target; the loss and its scales at the first fit."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = y.reshape(len(y), -1)
        if self.loss == "poisson" and Y.size and not np.min(Y) >= 0:
            raise ValueError(f"loss='poisson' needs y >= 0 (counts or rates), got a minimum "
                             f"of {np.min(Y)}")
        if first:
            self._loss_name = _REGRESSION_LOSSES[self.loss]
            l_n = Y.shape[1]
            # squared_error/2 = mse/2, and its gradient l_n times that of the reported loss
            self._loss_scale, self._grad_scale = ((0.5, 0.5 * l_n) if self.loss == "squared_error"
                                                  else (float(l_n), float(l_n)))
            self.out_activation_ = "identity" if self.loss == "squared_error" else "exp"
        return Y

    def _predictions(self, Z: np.ndarray) -> np.ndarray:
        return np.exp(Z) if self.out_activation_ == "exp" else Z

    def _score_outputs(self, Z: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None) -> float:
        if not np.all(np.isfinite(Z)):
            return np.nan
        return float(r2_score(Y, self._predictions(Z), sample_weight=w))

    @available_if(_BaseMLP._partial_fit_allowed)
    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    sample_weight: ArrayLike | None = None) -> MLPRegressor:
        """One more epoch on X and y, keeping the network and the optimizer's state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default None

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions (z_n, or e^{z_n} for poisson): shape (n_samples,) for one output, else
        (n_samples, n_outputs)."""
        P = self._predictions(self._outputs(X))
        return P[:, 0] if P.shape[1] == 1 else P

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.input_tags.sparse = self.solver != "lm"  # its Jacobian is built from dense rows
        return tags


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier: scikit-learn's, trained by fastprop.

    Multiclass targets train softmax cross-entropy (fastprop's "cross_entropy"); binary and
    multilabel targets train sigmoid binary cross-entropy (fastprop's
    "binary_cross_entropy"), summed over the labels as scikit-learn does. The module
    documentation maps every parameter to fastprop.
{_PARAMETERS_DOC.replace("{score}", "Accuracy")}
    classes_ : ndarray
        The class labels (for multilabel targets, the label indices 0 … l_n − 1).
    out_activation_ : str
        "softmax" (multiclass) or "logistic" (binary, multilabel).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from fastprop.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((10,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y)
    >>> bool(clf.score(X, y) > 0.95)
    True
    """

    def _targets(self, y: np.ndarray, first: bool, classes: ArrayLike | None = None) -> np.ndarray:
        """y encoded for the network: one-hot (multiclass), 0/1 columns (binary, multilabel);
        the classes, the loss and its scales at the first fit."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            multilabel = y.ndim == 2
            binarizer = LabelBinarizer().fit(y if classes is None or multilabel else classes)
            if classes is not None and not multilabel:  # scikit-learn's partial_fit checks too
                _refuse_unseen(y, binarizer.classes_, "classes=")
            self._label_binarizer, self.classes_ = binarizer, binarizer.classes_
            multiclass = self._label_binarizer.y_type_ == "multiclass"
            self._loss_name = "cross_entropy" if multiclass else "binary_cross_entropy"
            self.out_activation_ = "softmax" if multiclass else "logistic"
        elif self.warm_start:  # scikit-learn's rule: a warm start sees the same classes
            if set(unique_labels(y)) != set(self.classes_):
                raise ValueError(f"warm_start can only be used where y has the same classes "
                                 f"as in the previous call to fit: previously "
                                 f"{self.classes_}, y has {unique_labels(y)}")
        else:
            _refuse_unseen(y, self.classes_, "classes_ ")
        Y = self._label_binarizer.transform(y)
        if first:  # s: multiclass cross-entropy as sklearn's; sklearn sums the binary ones
            self._loss_scale = 1.0 if self.out_activation_ == "softmax" else float(Y.shape[1])
            self._grad_scale = self._loss_scale
        return Y

    def _fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None,
             incremental: bool, classes: ArrayLike | None = None, as_job: bool = False) -> Any:
        if self.solver == "lm":
            raise ValueError("solver='lm' (Levenberg–Marquardt) needs a squared-error loss; "
                             "MLPClassifier trains cross-entropy: use another solver")
        return super()._fit(X, y, sample_weight, incremental, classes, as_job)

    def _decode(self, Z: np.ndarray) -> np.ndarray:
        """Class labels from the logits z_n."""
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(Z, axis=1)]
        return self._label_binarizer.inverse_transform((Z[:, 0] if Z.shape[1] == 1 else Z) > 0)

    def _score_outputs(self, Z: np.ndarray, Y: np.ndarray, w: np.ndarray | None = None) -> float:
        if not np.all(np.isfinite(Z)):
            return np.nan
        return float(accuracy_score(self._label_binarizer.inverse_transform(Y), self._decode(Z),
                                    sample_weight=w))

    @available_if(_BaseMLP._partial_fit_allowed)
    def partial_fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One more epoch on X and y, keeping the network and the optimizer's state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
        sample_weight : array-like of shape (n_samples,), default None
        classes : array-like of shape (n_classes,), default None
            Every class of all calls; required on the first call (except for multilabel y).

        Returns
        -------
        self
        """
        if "_net" not in vars(self) and classes is None and np.ndim(y) == 1:
            raise ValueError("classes must be given on the first call to partial_fit "
                             "(every label of all calls, e.g. np.unique(y_all))")
        if "_net" in vars(self) and classes is not None and not np.array_equal(
                np.unique(classes), self.classes_):
            raise ValueError(f"classes={classes!r} differs from classes_ {self.classes_} of "
                             f"the previous call")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Class labels, shape (n_samples,); (n_samples, n_labels) 0/1 for multilabel."""
        return self._decode(self._outputs(X))

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Probabilities, shape (n_samples, n_classes), columns ordered as ``classes_``.

        Softmax of z_n (multiclass, rows sum to 1); [1 − p, p] with p = sigmoid(z_n) (binary);
        sigmoid(z_n) per label (multilabel, rows need not sum to 1).
        """
        Z = self._outputs(X)
        if self.out_activation_ == "softmax":
            return softmax(Z, axis=1)
        P = expit(Z)
        return np.hstack([1 - P, P]) if Z.shape[1] == 1 else P

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """log of :meth:`predict_proba`: −inf where a probability underflows to 0, as sklearn."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = True
        return tags


# ---------------------------------------------------------------------- helpers
def _refuse_unseen(y: np.ndarray, classes: np.ndarray, named: str) -> None:
    """ValueError when y holds a label outside ``classes`` (named by ``named``)."""
    unseen = np.setdiff1d(unique_labels(y), classes)
    if len(unseen):
        raise ValueError(f"y has classes {unseen} not in {named}{classes}")


def _say(line: str) -> None:
    """A line of ``verbose`` output, in one write: the fits of a search print from several
    threads, and print() writes the line and its end apart."""
    sys.stdout.write(line + "\n")


def _copy_into(views: list[np.ndarray], values: Any, name: str) -> None:
    """values[i] copied into views[i] (W_iᵀ or b_i of a parameter buffer), every shape
    checked before anything is written."""
    if not isinstance(values, (list, tuple)):
        raise TypeError(message(name, f"a list of {len(views)} arrays (one per layer)",
                                typed(values)))
    if len(values) != len(views):
        raise ValueError(message(name, f"a list of {len(views)} arrays (one per layer)",
                                 f"{len(values)}"))
    arrays = [real_array(value, f"{name}[{i}]") for i, value in enumerate(values)]
    for i, (view, array) in enumerate(zip(views, arrays)):
        if array.shape != view.shape:
            raise ValueError(message(f"{name}[{i}]", f"shape {view.shape}", str(array.shape),
                                     verb="have"))
    for view, array in zip(views, arrays):
        view[...] = array


def _seed(rng: np.random.RandomState) -> int:
    """A fastprop seed drawn from scikit-learn's random state."""
    return int(rng.randint(np.iinfo(np.int32).max))

