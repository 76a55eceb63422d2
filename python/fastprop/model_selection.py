"""scikit-learn's searches and cross-validation, with every candidate × fold of a fastprop
estimator trained in one call of the core: :class:`GridSearchCV`, :class:`RandomizedSearchCV`,
:func:`cross_validate` and :func:`cross_val_score` (also importable from
:mod:`fastprop.sklearn`).

They are scikit-learn's own classes (same parameters, ``cv_results_``, ``best_estimator_``,
``refit``, scoring, ``error_score``), with one step added before scikit-learn evaluates a set of
candidates: when the estimator is a :class:`fastprop.sklearn.MLPRegressor` or
:class:`~fastprop.sklearn.MLPClassifier` (or a Pipeline ending in one, whose steps before it
are then fitted on each fold's training rows as scikit-learn fits them), every fit of the set
is first trained at once by :func:`fastprop.fit_many`: the networks spread over the core's
threads, one network per thread, with the GIL released. scikit-learn then runs its usual
loop, in this process, and each of its fits takes the network trained for it, after checking
that it was trained with the same parameters on the same rows. Every fit is bit-identical to
the estimator's own ``fit``, so ``cv_results_`` holds the scores scikit-learn's search would
compute; anything that cannot be trained ahead (the lbfgs solver, fit parameters other than
``sample_weight``, splits that change from call to call) is fitted by scikit-learn's loop as
usual, and any other estimator is searched by scikit-learn's class unchanged.

``n_jobs`` applies to that fallback only: the networks use the core's threads
(:func:`fastprop.set_num_threads`).
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections import deque
from typing import Any

import numpy as np

try:
    from sklearn import model_selection as _sk
    from sklearn.base import clone, is_classifier
    from sklearn.model_selection import check_cv
    from sklearn.pipeline import Pipeline
    from sklearn.utils.metaestimators import _safe_split
except ImportError as _error:  # pragma: no cover - depends on the environment
    raise ImportError("fastprop.model_selection needs scikit-learn (>= 1.6): "
                      "pip install scikit-learn") from _error

from . import _core
from .distributed import DistributedError

__all__ = ["GridSearchCV", "RandomizedSearchCV", "cross_validate", "cross_val_score"]

# The fits trained ahead for the scikit-learn loop running on this thread: a queue of
# _Trained, in the loop's order (candidates × folds).
_ahead = threading.local()


class _Trained:
    """A fit trained ahead: the parameters and data it was trained with, and its outcome."""

    def __init__(self, params: dict[str, Any], X: Any, y: Any, w: Any) -> None:
        self.params, self.X, self.y, self.w = params, X, y, w
        self.state: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.warnings: list[warnings.WarningMessage] = []

    def matches(self, estimator: Any, X: Any, y: Any, w: Any) -> bool:
        return (self.params is not None
                and _same_params(self.params, estimator.get_params(deep=False))
                and _same_array(self.X, X) and _same_array(self.y, y)
                and _same_array(self.w, w))


def _same_array(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    except (TypeError, ValueError):
        return False


def _same_params(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key in a:
        x, y = a[key], b[key]
        if x is y:
            continue
        try:
            if type(x) is not type(y) or not bool(np.all(x == y)):
                return False
        except (TypeError, ValueError):
            return False
    return True


def _take_trained(estimator: Any, X: Any, y: Any, sample_weight: Any) -> bool:
    """Called by the fastprop estimators' fit: when the next fit trained ahead is this one
    (same parameters, same data), make ``estimator`` that fitted estimator and return True."""
    queue = getattr(_ahead, "queue", None)
    if not queue:
        return False
    trained = queue.popleft()
    if not trained.matches(estimator, X, y, sample_weight):
        return False
    for caught in trained.warnings:
        warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
    if trained.error is not None:
        raise trained.error
    estimator.__dict__.update(trained.state)
    return True


def _final_estimator(estimator: Any) -> Any | None:
    """The fastprop estimator that fits last (the estimator, or a Pipeline's last step), or
    None when there is none."""
    from .sklearn import _BaseMLP

    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator if isinstance(estimator, _BaseMLP) else None


def _train_ahead(base: Any, candidates: list[dict[str, Any]], splits: list[Any], X: Any,
                 y: Any, fit_params: dict[str, Any], run: Any = None) -> deque:
    """Every candidate × split of ``base``, trained in one fastprop.fit_many call of the core
    (or by ``run(pending)``: fastprop.distributed's, over ranks); the queue of _Trained in
    scikit-learn's order (candidates, then splits)."""
    w = fit_params.get("sample_weight")
    trained_all: deque = deque()
    pending = []
    folds = [(*_safe_split(base, X, y, train), None if w is None else np.asarray(w)[train])
             for train, _ in splits]  # each fold's rows, shared by the candidates
    for params in candidates:
        for X_train, y_train, w_train in folds:
            estimator = clone(base).set_params(**clone(params, safe=False))
            final = _final_estimator(estimator)
            trained = _Trained(final.get_params(deep=False), None, None, None)
            trained_all.append(trained)
            try:
                if isinstance(estimator, Pipeline):
                    # The steps before the network fitted on the fold, as Pipeline.fit does.
                    X_train = estimator[:-1].fit_transform(X_train, y_train)
                trained.X, trained.y, trained.w = X_train, y_train, w_train
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    plan = final._fit_job(X_train, y_train, w_train)
            except Exception:  # noqa: BLE001  scikit-learn's loop fits it and handles this
                trained.params = None
                continue
            trained.warnings.extend(caught)
            if plan is None:  # not trainable ahead (lbfgs): scikit-learn's loop fits it
                trained.params = None
                continue
            pending.append((trained, final, plan))
    (run or _run_here)(pending)
    return trained_all


def _run_here(pending: list[tuple[_Trained, Any, Any]]) -> None:
    """Trains the fits of ``pending`` ((trained, estimator, job) triples) in one call of the
    core, then completes each (see _complete)."""
    _core.fit_many([plan.job for _, _, plan in pending])
    for trained, final, plan in pending:
        _complete(trained, final, plan)


def _complete(trained: _Trained, final: Any, plan: Any) -> None:
    """After its job ran: the estimator's fit ended as its own fit ends it, and ``trained``
    given the fitted estimator's state, its error and its warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            plan.end()
        except Exception as error:  # noqa: BLE001  raised again by its fit
            trained.error = error
    trained.warnings.extend(caught)
    trained.state = dict(vars(final))


class _Ahead:
    """What turns a scikit-learn search into one that trains a fastprop estimator's fits
    ahead, in one call of the core (see the module doc)."""

    # What trains the fits ahead: None, one call of the core here (_run_here); a method
    # run(pending) in fastprop.distributed's searches, which spread them over ranks.
    _run_ahead: Any = None

    def fit(self, X: Any, y: Any = None, **params: Any) -> Any:
        allowed = {"groups"} if isinstance(self.estimator, Pipeline) else {"groups",
                                                                             "sample_weight"}
        if _final_estimator(self.estimator) is None or set(params) - allowed:
            return super().fit(X, y, **params)
        self._ahead_data = (X, y, params)
        n_jobs = self.n_jobs
        self.n_jobs = 1  # scikit-learn's loop then runs here, in order, taking the fits
        try:
            return super().fit(X, y, **params)
        finally:
            self.n_jobs = n_jobs
            del self._ahead_data
            _ahead.queue = None

    def _run_search(self, evaluate_candidates: Any, *, callback_ctx: Any = None) -> None:
        # scikit-learn >= 1.9 passes its callback context, earlier versions nothing.
        context = {"callback_ctx": callback_ctx} if "callback_ctx" in inspect.signature(
            super()._run_search).parameters else {}
        data = getattr(self, "_ahead_data", None)
        if data is None:
            return super()._run_search(evaluate_candidates, **context)
        X, y, params = data
        groups = params.get("groups")
        fit_params = {k: v for k, v in params.items() if k != "groups"}

        def evaluate_ahead(candidate_params: Any, cv: Any = None, more_results: Any = None,
                           **kwargs: Any) -> Any:
            candidate_params = list(candidate_params)
            splitter = cv or check_cv(self.cv, y, classifier=is_classifier(self.estimator))
            try:
                splits = list(splitter.split(X, y, groups))
                queue = _train_ahead(self.estimator, candidate_params, splits, X, y, fit_params,
                                     self._run_ahead)
            except (KeyboardInterrupt, DistributedError):  # the ranks disagree: not the loop's
                raise
            except Exception:  # noqa: BLE001  scikit-learn's loop reports what is wrong
                queue = deque()
            _ahead.queue = queue
            try:
                return evaluate_candidates(candidate_params, cv, more_results, **kwargs)
            finally:
                _ahead.queue = None

        return super()._run_search(evaluate_ahead, **context)


def cross_validate(estimator: Any, X: Any, y: Any = None, *, groups: Any = None,
                   cv: Any = None, params: dict[str, Any] | None = None,
                   **kwargs: Any) -> dict[str, Any]:
    """scikit-learn's ``cross_validate``, with the folds of a fastprop estimator (or of a
    Pipeline ending in one) trained in one call of the core; same parameters and result.

    The folds are split once and handed to scikit-learn as the list of (train, test) index
    pairs, so both see the same rows; ``n_jobs`` applies to other estimators only.
    """
    return _cross_validate(estimator, X, y, groups, cv, params, None, kwargs)


def _cross_validate(estimator: Any, X: Any, y: Any, groups: Any, cv: Any,
                    params: dict[str, Any] | None, run: Any,
                    kwargs: dict[str, Any]) -> dict[str, Any]:
    """cross_validate, its fits trained ahead by ``run`` (see _train_ahead)."""
    params = dict(params or {})
    allowed = set() if isinstance(estimator, Pipeline) else {"sample_weight"}
    if _final_estimator(estimator) is None or set(params) - allowed:
        return _sk.cross_validate(estimator, X, y, groups=groups, cv=cv, params=params or None,
                                  **kwargs)
    kwargs.pop("n_jobs", None)
    splits = list(check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y, groups))
    try:
        queue = _train_ahead(estimator, [{}], splits, X, y, params, run)
    except (KeyboardInterrupt, DistributedError):
        raise
    except Exception:  # noqa: BLE001  scikit-learn's loop reports what is wrong
        queue = deque()
    _ahead.queue = queue
    try:
        return _sk.cross_validate(estimator, X, y, groups=groups, cv=splits,
                                  params=params or None, **kwargs)
    finally:
        _ahead.queue = None


def cross_val_score(estimator: Any, X: Any, y: Any = None, *, groups: Any = None,
                    scoring: Any = None, cv: Any = None, params: dict[str, Any] | None = None,
                    **kwargs: Any) -> np.ndarray:
    """scikit-learn's ``cross_val_score`` on :func:`cross_validate`'s path: the folds of a
    fastprop estimator trained in one call of the core."""
    return _cross_val_score(estimator, X, y, groups, scoring, cv, params, None, kwargs)


def _cross_val_score(estimator: Any, X: Any, y: Any, groups: Any, scoring: Any, cv: Any,
                     params: dict[str, Any] | None, run: Any,
                     kwargs: dict[str, Any]) -> np.ndarray:
    from sklearn.metrics import check_scoring

    scorer = check_scoring(estimator, scoring=scoring)
    results = _cross_validate(estimator, X, y, groups, cv, params, run,
                              {**kwargs, "scoring": {"score": scorer}})
    return results["test_score"]


class GridSearchCV(_Ahead, _sk.GridSearchCV):
    __doc__ = (_sk.GridSearchCV.__doc__ or "") + """
    fastprop: every candidate × fold of a fastprop estimator (or a Pipeline ending in one) is
    trained in one call of the core, spread over its threads; see
    :mod:`fastprop.model_selection`.
    """


class RandomizedSearchCV(_Ahead, _sk.RandomizedSearchCV):
    __doc__ = (_sk.RandomizedSearchCV.__doc__ or "") + """
    fastprop: every candidate × fold of a fastprop estimator (or a Pipeline ending in one) is
    trained in one call of the core, spread over its threads; see
    :mod:`fastprop.model_selection`.
    """
