"""scikit-learn drop-ins trained by fastprop: :class:`MLPRegressor` and :class:`MLPClassifier`.

The parameters are scikit-learn's, with scikit-learn's names, defaults and meanings; training
runs in fastprop's C++ ``Network.fit`` (one call per ``fit``, no Python per minibatch). How
each parameter reaches fastprop:

======================  =====================================================================
scikit-learn            fastprop
======================  =====================================================================
hidden_layer_sizes      ``Network([n_features, *hidden_layer_sizes, n_outputs], bias=True)``
activation              the hidden σ; "logistic" is fastprop's "sigmoid"
solver                  "sgd" → ``optim.SGD``, "adam" → ``optim.Adam``, "rprop" →
                        ``optim.Rprop`` (full batch), "lm" → ``optim.LevenbergMarquardt``
                        (full batch, regression only, alpha=0), "lbfgs" → SciPy's L-BFGS-B
                        on ``Network.loss_and_grad``
alpha                   ``weight_decay`` (see the scaling below); lbfgs: the exact penalty
batch_size              ``fit(batch_size=...)``; "auto" is min(200, n_samples)
learning_rate_init      ``lr``; for rprop the initial step size
max_iter                ``fit(epochs=...)``; lbfgs: its ``maxiter``
shuffle, random_state   ``fit(shuffle=..., seed=...)``, ``Network(seed=...)``
tol, n_iter_no_change   ``fit(min_delta=tol/s, patience=n_iter_no_change + 1)``; lbfgs: gtol
early_stopping          ``fit(validation_data=..., restore_best=True)``
validation_fraction     a (stratified for binary targets) ``train_test_split``, as sklearn
momentum, nesterovs_momentum, beta_1, beta_2, epsilon
                        ``momentum``, ``nesterov``, ``betas``, ``eps``
dtype (extra)           ``Network(dtype=...)``: "float64" or "float32"
======================  =====================================================================

Losses, and how they are scaled so that the hyperparameters mean what they mean in
scikit-learn. fastprop minimises its loss L; scikit-learn's loss is ``s·L``:

- regression: L = "mse" (mean over all t·l_n entries), s = 1/2, so ``loss_curve_`` is
  scikit-learn's squared_error/2 exactly;
- multiclass: L = "cross_entropy" (softmax, mean over samples), s = 1;
- binary and multilabel: L = "binary_cross_entropy" (sigmoid, mean over all t·l_n
  entries), s = l_n, as scikit-learn sums the label losses.

An update on ``s·L + alpha/(2B)·||W||²`` (B the minibatch size, as scikit-learn penalises)
is then exactly fastprop's update on L with ``lr = learning_rate_init·s`` (SGD; Adam and
Rprop are invariant to the scale, Adam's ``eps`` becomes ``epsilon/s``) and
``weight_decay = alpha/(B·s)``.

Known differences from scikit-learn: ``weight_decay`` also decays the intercepts (as
torch.optim does; scikit-learn penalises only ``coefs_``, and so does lbfgs here); the
penalty is not part of ``loss_curve_``; early stopping watches the validation *loss*
(``validation_scores_`` still records scikit-learn's score, accuracy or R², per epoch);
multi-output regression descends the gradient of the reported loss, which is l_n times
smaller than the gradient scikit-learn uses; the initialisation is fastprop's (Glorot or He
uniform, zero intercepts); ``learning_rate``, ``power_t``, ``warm_start``, ``max_fun``,
``verbose`` and ``sample_weight`` are not supported; inputs must be dense.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

try:
    import scipy.optimize
    from scipy.special import expit, softmax
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

from . import optim
from ._validate import check_bool, check_choice, check_dtype, check_int, check_lr, check_real, \
    message, shown
from .network import Network

__all__ = ["MLPRegressor", "MLPClassifier"]

_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_SOLVERS = ("sgd", "adam", "lbfgs", "rprop", "lm")
_MINIBATCH_SOLVERS = ("sgd", "adam")  # the others take the whole batch every epoch
_INCREMENTAL_SOLVERS = ("sgd", "adam", "rprop", "lm")  # optimizer objects keep their state
_LBFGS_MAXFUN = 15000  # scikit-learn's default max_fun


class _BaseMLP(BaseEstimator):
    """The parameters, the training and the attributes shared by both estimators."""

    _loss_name: str  # fastprop's loss, set by the subclass at fit
    _loss_scale: float  # s: scikit-learn's loss = s · fastprop's loss

    def __init__(
        self,
        hidden_layer_sizes: int | Sequence[int] = (100,),
        activation: str = "relu",
        *,
        solver: str = "adam",
        alpha: float = 0.0001,
        batch_size: int | str = "auto",
        learning_rate_init: float = 0.001,
        max_iter: int = 200,
        shuffle: bool = True,
        random_state: int | np.random.RandomState | None = None,
        tol: float = 1e-4,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int | float = 10,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        dtype: str = "float64",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.dtype = dtype

    # ------------------------------------------------------------------ fitted model
    @property
    def coefs_(self) -> list[np.ndarray]:
        """W_iᵀ, shape (l_i, l_{i+1}): scikit-learn's layout; writable views into the network."""
        return [W.T for W in self._fitted_net().weights]

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """b_i, shape (l_{i+1},): writable views into the network."""
        return list(self._fitted_net().biases)

    @property
    def network_(self) -> Network:
        """The trained :class:`fastprop.Network` (its output z_n is the logit or prediction)."""
        return self._fitted_net()

    def _fitted_net(self) -> Network:
        if "_net" not in vars(self):
            raise AttributeError(f"this {type(self).__name__} is not fitted yet; call fit first")
        return self._net

    def __sklearn_is_fitted__(self) -> bool:
        return "_net" in vars(self)

    # ------------------------------------------------------------------ training
    def fit(self, X: ArrayLike, y: ArrayLike) -> _BaseMLP:
        """Train a new network on X and y for up to ``max_iter`` epochs.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Dense input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets: real values (regression) or class labels (classification).

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=False)

    def _partial_fit_allowed(self) -> bool:
        if self.solver not in _INCREMENTAL_SOLVERS:
            raise AttributeError(f"partial_fit needs solver in {_INCREMENTAL_SOLVERS}, whose "
                                 f"optimizer state persists; got solver={self.solver!r}")
        return True

    def _fit(self, X: ArrayLike, y: ArrayLike, incremental: bool,
             classes: ArrayLike | None = None) -> _BaseMLP:
        self._check_params()
        first = not (incremental and "_net" in vars(self))
        X, y = validate_data(self, X, y, multi_output=True, dtype=np.dtype(self.dtype),
                             y_numeric=not isinstance(self, ClassifierMixin), reset=first)
        Y = self._targets(y, first, classes).astype(self.dtype, copy=False)  # (t, l_n)
        rng = check_random_state(self.random_state)
        if first:
            self._start(X.shape[1], Y.shape[1], rng)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y must have {self.n_outputs_} outputs as in the previous fit, "
                             f"got {Y.shape[1]}")
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y)
        else:
            self._fit_epochs(X, Y, rng, incremental)
        return self

    def _start(self, n_features: int, n_outputs: int, rng: np.random.RandomState) -> None:
        """A fresh network and fresh training attributes."""
        hidden = self._hidden_layer_sizes()
        self._net = Network([n_features, *hidden, n_outputs], _ACTIVATIONS[self.activation],
                            bias=True, dtype=self.dtype, seed=_seed(rng), loss=self._loss_name)
        self.n_layers_ = len(hidden) + 2
        self.n_outputs_ = n_outputs
        self.n_iter_ = 0
        self.loss_curve_: list[float] = []
        self.validation_scores_: list[float] | None = None
        self.best_validation_score_: float | None = None
        self.best_loss_: float | None = None
        self.__dict__.pop("_optimizer", None)  # a new network starts a new optimizer

    def _fit_epochs(self, X: np.ndarray, Y: np.ndarray, rng: np.random.RandomState,
                    incremental: bool) -> None:
        """Every solver but lbfgs: one ``Network.fit`` call, epochs and minibatches in C++."""
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        X_val = Y_val = None
        if self.early_stopping:
            stratify = Y if isinstance(self, ClassifierMixin) and Y.shape[1] == 1 else None
            X, X_val, Y, Y_val = train_test_split(X, Y, test_size=self.validation_fraction,
                                                  random_state=rng, stratify=stratify)
            if len(X_val) < 2:
                raise ValueError(f"the validation set is too small ({len(X_val)} rows): "
                                 f"increase validation_fraction or the number of samples")
        t = len(X)
        minibatch = self.solver in _MINIBATCH_SOLVERS
        batch = min(200, t) if self.batch_size == "auto" or not minibatch else self.batch_size
        if batch > t:
            warnings.warn(f"batch_size={batch} is larger than the {t} training samples; it is "
                          f"clipped to {t}", UserWarning, stacklevel=3)
            batch = t
        if not incremental or "_optimizer" not in vars(self):
            self._optimizer = self._make_optimizer(batch if minibatch else t)

        scores: list[float] = []  # sklearn's validation score after every epoch

        def record_score(epoch: int, logs: dict[str, float]) -> None:
            scores.append(self._score_outputs(self._net.forward(X_val), Y_val))

        # sklearn stops once more than n_iter_no_change epochs in a row did not improve by tol
        patience = (None if incremental else self.max_iter + 1 if self.n_iter_no_change == np.inf
                    else int(self.n_iter_no_change) + 1)
        history = self._net.fit(
            X, Y, epochs=1 if incremental else self.max_iter, optimizer=self._optimizer,
            batch_size=batch if minibatch else None, shuffle=self.shuffle, seed=_seed(rng),
            validation_data=None if X_val is None else (X_val, Y_val),
            patience=patience, min_delta=self.tol / self._loss_scale,
            restore_best=self.early_stopping, callback=None if X_val is None else record_score)

        self.loss_curve_ += (self._loss_scale * np.asarray(history)).tolist()
        self.loss_ = self.loss_curve_[-1]
        self.n_iter_ += len(history)
        if self.early_stopping:  # the weights kept are those of the best validation loss
            self.validation_scores_ = scores
            self.best_validation_score_ = scores[int(history.best_epoch)]
        else:
            self.best_loss_ = min(self.loss_curve_)
        if not incremental and history.stop == "done" and len(history) == self.max_iter:
            warnings.warn(f"{self.solver}: the maximum number of iterations max_iter="
                          f"{self.max_iter} was reached before the loss converged",
                          ConvergenceWarning, stacklevel=3)

    def _make_optimizer(self, batch: int) -> Any:
        """The fastprop optimizer doing scikit-learn's update on s·L (see the module doc)."""
        s = self._loss_scale
        weight_decay = self.alpha / (batch * s)  # the gradient of alpha/(2B)·||W||², over s
        if self.solver == "sgd":
            return optim.SGD(lr=self.learning_rate_init * s, momentum=self.momentum,
                             nesterov=self.nesterovs_momentum and self.momentum > 0,
                             weight_decay=weight_decay)
        if self.solver == "adam":
            return optim.Adam(lr=self.learning_rate_init, betas=(self.beta_1, self.beta_2),
                              eps=self.epsilon / s, weight_decay=weight_decay)
        if self.solver == "rprop":
            return optim.Rprop(lr=self.learning_rate_init, weight_decay=weight_decay)
        if self.alpha != 0:
            raise ValueError(f"solver='lm' has no L2 penalty: alpha must be 0, got "
                             f"{self.alpha} (pass alpha=0)")
        return optim.LevenbergMarquardt()

    def _fit_lbfgs(self, X: np.ndarray, Y: np.ndarray) -> None:
        """SciPy's L-BFGS-B on s·L + alpha/(2t)·||W||², exactly scikit-learn's objective."""
        net, s, t = self._net, self._loss_scale, len(X)
        is_W = np.concatenate([np.r_[np.ones(W.size), np.zeros(b.size)]  # layout W_0, b_0, ...
                               for W, b in zip(net.weights, net.biases)])
        curve: list[float] = []

        def objective(p: np.ndarray) -> tuple[float, np.ndarray]:
            E, grad = net.loss_and_grad(X, Y, params=p)
            W_p = is_W * p
            return (s * E + self.alpha / (2 * t) * (W_p @ p),
                    s * np.asarray(grad, dtype=np.float64) + self.alpha / t * W_p)

        result = scipy.optimize.minimize(
            objective, net.params.astype(np.float64), method="L-BFGS-B", jac=True,
            callback=lambda intermediate_result: curve.append(float(intermediate_result.fun)),
            options={"maxiter": self.max_iter, "maxfun": _LBFGS_MAXFUN, "gtol": self.tol})
        net.params = result.x
        self.n_iter_ = int(result.nit)
        self.loss_ = float(result.fun)
        self.loss_curve_ = curve or [self.loss_]
        self.best_loss_ = min(self.loss_curve_)
        if not result.success:
            warnings.warn(f"lbfgs failed to converge after {result.nit} iterations: "
                          f"{result.message}", ConvergenceWarning, stacklevel=3)

    # ------------------------------------------------------------------ prediction
    def _outputs(self, X: ArrayLike) -> np.ndarray:
        """z_n (t, l_n) for validated X: the predictions or the logits."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.dtype(self.dtype), reset=False)
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
        """ValueError or TypeError naming the parameter, what was expected and what was given."""
        check_choice(self.activation, "activation", list(_ACTIVATIONS))
        check_choice(self.solver, "solver", _SOLVERS)
        check_dtype(self.dtype)
        self._hidden_layer_sizes()
        if self.batch_size != "auto":
            check_int(self.batch_size, "batch_size", low=1)
        check_int(self.max_iter, "max_iter", low=1)
        if self.n_iter_no_change != np.inf:
            check_int(self.n_iter_no_change, "n_iter_no_change", low=1)
        check_real(self.alpha, "alpha", low=0)
        check_lr(self.learning_rate_init, "learning_rate_init")
        check_real(self.tol, "tol", low=0)
        check_real(self.validation_fraction, "validation_fraction", low=0, low_open=True, high=1,
                   high_open=True)
        check_real(self.momentum, "momentum", low=0, high=1)
        check_real(self.beta_1, "beta_1", low=0, high=1, high_open=True)
        check_real(self.beta_2, "beta_2", low=0, high=1, high_open=True)
        check_real(self.epsilon, "epsilon", low=0, low_open=True)
        for name in ("shuffle", "early_stopping", "nesterovs_momentum"):
            check_bool(getattr(self, name), name)


_PARAMETERS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default (100,)
        Sizes of the hidden layers l_1 … l_{n−1}.
    activation : {"identity", "logistic", "tanh", "relu"}, default "relu"
        σ of the hidden layers ("logistic" is fastprop's "sigmoid").
    solver : {"adam", "sgd", "lbfgs", "rprop", "lm"}, default "adam"
        "rprop" and "lm" (Levenberg–Marquardt) are fastprop's extras, both full batch;
        "lm" needs ``alpha=0``.
    alpha : float, default 1e-4
        Strength of the L2 penalty alpha/(2B)·||W||² (B: the minibatch size).
    batch_size : int or "auto", default "auto"
        Minibatch size for "sgd" and "adam"; "auto" is min(200, n_samples).
    learning_rate_init : float, default 1e-3
        Constant learning rate ("sgd", "adam"), or initial step size ("rprop").
    max_iter : int, default 200
        Maximum number of epochs (lbfgs: of iterations).
    shuffle : bool, default True
        Reshuffle the samples every epoch (minibatch solvers).
    random_state : int, RandomState or None, default None
        Seeds the initialisation, the shuffling and the validation split.
    tol : float, default 1e-4
        Training stops when the loss (validation loss with early_stopping) has not improved
        by more than ``tol`` for ``n_iter_no_change + 1`` epochs; lbfgs: its ``gtol``.
    early_stopping : bool, default False
        Hold out ``validation_fraction`` of the data, stop on its loss and keep the best
        weights.
    validation_fraction : float, default 0.1
        Fraction of the data held out with ``early_stopping``.
    n_iter_no_change : int or inf, default 10
        See ``tol``.
    momentum : float, default 0.9
        Momentum of "sgd".
    nesterovs_momentum : bool, default True
        Nesterov momentum for "sgd".
    beta_1, beta_2, epsilon : float, default 0.9, 0.999, 1e-8
        Adam's β1, β2 and ε.
    dtype : {"float64", "float32"}, default "float64"
        Precision of the network (a fastprop extra).

    Attributes
    ----------
    coefs_ : list of ndarray
        ``coefs_[i]`` has shape (l_i, l_{i+1}): W_iᵀ, a writable view into the network.
    intercepts_ : list of ndarray
        ``intercepts_[i]``, shape (l_{i+1},): b_i.
    loss_ : float
        The last training loss.
    loss_curve_ : list of float
        The training loss of every epoch (lbfgs: of every iteration), without the penalty.
    best_loss_ : float or None
        The smallest training loss; None with early_stopping.
    validation_scores_ : list of float or None
        {score} on the validation set after every epoch, with early_stopping.
    best_validation_score_ : float or None
        {score} of the weights kept, with early_stopping.
    n_iter_ : int
        Epochs run (lbfgs: iterations).
    n_layers_, n_outputs_, n_features_in_ : int
        Layers n + 1 (input and output included), l_n and l_0.
    network_ : fastprop.Network
        The trained network."""  # shared by both estimators; {score}: R² or accuracy


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor: scikit-learn's, trained by fastprop.

    Minimises the squared error, reported (``loss_curve_``) as scikit-learn does: half the
    mean over all samples and outputs. fastprop trains on "mse", twice that, with the
    learning rate scaled so that ``learning_rate_init`` means what it means in
    scikit-learn. The module documentation maps every parameter to fastprop.
{_PARAMETERS_DOC.replace("{score}", "R²")}
    out_activation_ : str
        "identity".

    Examples
    --------
    >>> import numpy as np
    >>> from fastprop.sklearn import MLPRegressor
    >>> X = np.linspace(-1, 1, 200).reshape(-1, 1)
    >>> reg = MLPRegressor((16,), "tanh", solver="lbfgs", random_state=0).fit(X, X[:, 0] ** 2)
    >>> bool(reg.score(X, X[:, 0] ** 2) > 0.99)
    True
    """

    _loss_name = "mse"
    _loss_scale = 0.5  # sklearn's squared_error/2 = mse/2

    def _targets(self, y: np.ndarray, first: bool, classes: None = None) -> np.ndarray:
        """y as the network's (t, l_n) target."""
        self.out_activation_ = "identity"
        return y.reshape(len(y), -1)

    def _score_outputs(self, Z: np.ndarray, Y: np.ndarray) -> float:
        return float(r2_score(Y, Z))

    @available_if(_BaseMLP._partial_fit_allowed)
    def partial_fit(self, X: ArrayLike, y: ArrayLike) -> MLPRegressor:
        """One more epoch on X and y, keeping the network and the optimizer's state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)

        Returns
        -------
        self
        """
        return self._fit(X, y, incremental=True)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions z_n: shape (n_samples,) for one output, else (n_samples, n_outputs)."""
        Z = self._outputs(X)
        return Z[:, 0] if Z.shape[1] == 1 else Z

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
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
        """y encoded for the network: one-hot (multiclass), 0/1 columns (binary, multilabel)."""
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if first:
            self._label_binarizer = LabelBinarizer()
            multilabel = y.ndim == 2
            self._label_binarizer.fit(y if classes is None or multilabel else classes)
            self.classes_ = self._label_binarizer.classes_
            multiclass = self._label_binarizer.y_type_ == "multiclass"
            self._loss_name = "cross_entropy" if multiclass else "binary_cross_entropy"
            self.out_activation_ = "softmax" if multiclass else "logistic"
        unseen = np.setdiff1d(unique_labels(y), self.classes_)
        if len(unseen):
            raise ValueError(f"y has classes {unseen} not in classes_ {self.classes_}")
        Y = self._label_binarizer.transform(y)
        if first:  # s: multiclass cross-entropy as sklearn's; sklearn sums the binary ones
            self._loss_scale = 1.0 if self.out_activation_ == "softmax" else float(Y.shape[1])
        return Y

    def _fit(self, X: ArrayLike, y: ArrayLike, incremental: bool,
             classes: ArrayLike | None = None) -> MLPClassifier:
        if self.solver == "lm":
            raise ValueError("solver='lm' (Levenberg–Marquardt) needs a squared-error loss; "
                             "MLPClassifier trains cross-entropy: use another solver")
        return super()._fit(X, y, incremental, classes)

    def _decode(self, Z: np.ndarray) -> np.ndarray:
        """Class labels from the logits z_n."""
        if self.out_activation_ == "softmax":
            return self.classes_[np.argmax(Z, axis=1)]
        return self._label_binarizer.inverse_transform((Z[:, 0] if Z.shape[1] == 1 else Z) > 0)

    def _score_outputs(self, Z: np.ndarray, Y: np.ndarray) -> float:
        return float(accuracy_score(self._label_binarizer.inverse_transform(Y), self._decode(Z)))

    @available_if(_BaseMLP._partial_fit_allowed)
    def partial_fit(self, X: ArrayLike, y: ArrayLike,
                    classes: ArrayLike | None = None) -> MLPClassifier:
        """One more epoch on X and y, keeping the network and the optimizer's state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
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
        return self._fit(X, y, incremental=True, classes=classes)

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
        return tags


# ---------------------------------------------------------------------- helpers
def _seed(rng: np.random.RandomState) -> int:
    """A fastprop seed drawn from scikit-learn's random state."""
    return int(rng.randint(np.iinfo(np.int32).max))
