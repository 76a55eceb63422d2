"""scikit-learn's searches and cross-validation, with every candidate × fold of a fastprop
estimator trained in one call of the core: :class:`GridSearchCV`, :class:`RandomizedSearchCV`,
:func:`cross_validate` and :func:`cross_val_score` (also importable from
:mod:`fastprop.sklearn`).

They are scikit-learn's own classes (same parameters, ``cv_results_``, ``best_estimator_``,
``refit``, scoring, ``error_score``), with one step added before scikit-learn evaluates a set of
candidates: when the estimator is a :class:`fastprop.sklearn.MLPRegressor` or
:class:`~fastprop.sklearn.MLPClassifier` (or a Pipeline ending in one, whose steps before it
are then fitted on each fold's training rows as scikit-learn fits them), the fits of the set
are trained ahead by :func:`fastprop.fit_many`: the networks spread over the core's threads,
one network per thread, with the GIL released. scikit-learn then runs its usual loop, in this
process, and each of its fits takes the network trained for it, after checking that it was
trained with the same parameters on the same rows. Every fit is bit-identical to the
estimator's own ``fit``, so ``cv_results_`` holds the scores scikit-learn's search would
compute.

The fits are trained in chunks, each when the loop reaches it: a chunk stops growing once its
networks hold about 256 MiB (six copies of the parameters a fit, for the gradient, the
optimiser's state and the best parameters, and the data a Pipeline step made for it), so a
search of large networks keeps one chunk in memory rather than every candidate × fold; small
networks are one chunk. The loop's first fit of a chunk waits for the whole chunk; the times
reported (``mean_fit_time`` and ``std_fit_time``, ``cross_validate``'s ``fit_time``) give each
fit its own seconds instead: what was spent preparing its network, the network's training (the
last entry of its ``History.time``, measured by the core from the start of that network's
epochs; networks stepped together in SIMD lanes share that clock, so each counts its share)
and its end, plus what the loop's own fit call took (a Pipeline's steps before the network
among it). Two threads training two networks at once each count their own seconds, as
scikit-learn's ``n_jobs=2`` workers do. When a call of the loop cannot be told its place
(a step before the network that failed ahead and not in the loop, say), the times are
scikit-learn's own measurements.

What scikit-learn's loop fits as usual, one fit at a time in this process:
- the lbfgs solver, and any fit that fails to be set up ahead (it then fails there, as it
  would in scikit-learn);
- an estimator whose ``random_state`` is a RandomState object (each clone's fit advances its
  own copy, so a fit trained ahead could not be told from another);
- a sparse X.

And what goes to scikit-learn's own search unchanged: other estimators, fit parameters other
than ``sample_weight`` (and ``groups``), or fit parameters with metadata routing on (the
estimators' requests decide what reaches each fit).

``n_jobs`` (checked as scikit-learn checks it) applies to scikit-learn's own search only:
the fits of a fastprop estimator use the core's threads (:func:`fastprop.set_num_threads`),
and those the loop fits as usual run one after the other in this process.
"""

from __future__ import annotations

import copy
import inspect
import itertools
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
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
from ._validate import caller_stacklevel
from .distributed import DistributedError

__all__ = ["GridSearchCV", "RandomizedSearchCV", "cross_validate", "cross_val_score"]

# The fits trained ahead for the scikit-learn loop running on this thread: a queue of
# _Trained, in the loop's order (candidates × folds).
_ahead = threading.local()


class _Trained:
    """A fit trained ahead: the parameters and data it was trained with, and its outcome."""

    def __init__(self, params: dict[str, Any], X: Any, y: Any, w: Any, kind: type) -> None:
        self.params, self.X, self.y, self.w = params, X, y, w
        # The fit of the loop this one is for (params stays it only when trained ahead).
        self.wanted, self.kind = params, kind
        self.state: dict[str, Any] | None = None
        self.error: BaseException | None = None
        self.warnings: list[warnings.WarningMessage] = []
        self.seconds = 0.0  # spent on this fit ahead of the loop: preparing, training, ending
        self.slot = -1  # its place in the loop's order (candidates × folds)
        self.asked = True  # False: its final step is not fastprop's, so never asked for

    def is_slot_of(self, estimator: Any) -> bool:
        """Whether ``estimator`` is this one's fit of the loop, whatever its data (the loop
        asks for it in its turn; another estimator's fit, one a Pipeline step makes, is not)."""
        def seen(params: dict[str, Any]) -> dict[str, Any]:  # a RandomState as its kind
            return {key: "RandomState" if isinstance(value, np.random.RandomState) else value
                    for key, value in params.items()}

        return type(estimator) is self.kind and _same_params(
            seen(self.wanted), seen(estimator.get_params(deep=False)))

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
    trained = queue.take(estimator, lambda item: item.matches(estimator, X, y, sample_weight))
    if trained is None:
        return False
    for caught in trained.warnings:
        # Where the estimator's own fit would have warned: at its caller (scikit-learn's
        # loop), not at fastprop's internals.
        warnings.warn(caught.message, caught.category, stacklevel=caller_stacklevel())
    if trained.error is not None:
        raise trained.error
    estimator.__dict__.update(trained.state)
    return True


def _check_n_jobs(n_jobs: Any) -> None:
    """n_jobs as scikit-learn takes it (None or a non-zero int), though the fits trained
    ahead do not read it."""
    if n_jobs is not None and not isinstance(n_jobs, (int, np.integer)):  # True too, as there
        raise TypeError(f"n_jobs must be an int or None, got {n_jobs!r}")
    if n_jobs == 0:
        raise ValueError("n_jobs == 0 has no meaning: None or 1 runs in this process, -1 on "
                         "every CPU")


def _routing() -> bool:
    """Whether scikit-learn's metadata routing is on: what reaches each fit is then decided by
    the estimators' requests, so fit parameters send the search to scikit-learn's loop."""
    from sklearn import get_config

    return bool(get_config().get("enable_metadata_routing", False))


def _final_estimator(estimator: Any) -> Any | None:
    """The fastprop estimator that fits last (the estimator, or a Pipeline's last step), or
    None when there is none."""
    from .sklearn import _BaseMLP

    if isinstance(estimator, Pipeline):
        estimator = estimator.steps[-1][1]
    return estimator if isinstance(estimator, _BaseMLP) else None


# The most a chunk of fits trained ahead may hold at once (parameters, optimiser state, data
# converted for them), roughly: a search of many large networks keeps one chunk, not every
# candidate × fold, alive. A chunk holds one fit at least.
_CHUNK_BYTES = 256 << 20


def _train_ahead(base: Any, candidates: list[dict[str, Any]], splits: list[Any], X: Any,
                 y: Any, fit_params: dict[str, Any], run: Any = None) -> "_Queue":
    """Every candidate × split of ``base``, trained by fastprop.fit_many calls of the core
    (or by ``run(pending)``: fastprop.distributed's, over ranks, all at once); the queue of
    _Trained in scikit-learn's order (candidates, then splits)."""
    w = fit_params.get("sample_weight")
    folds = [(*_safe_split(base, X, y, train), None if w is None else np.asarray(w)[train])
             for train, _ in splits]  # each fold's rows, shared by the candidates
    todo = [(params, fold) for params in candidates for fold in folds]
    queue = _Queue(base, todo, run or _run_here, _CHUNK_BYTES if run is None else None,
                   collective=run is not None)
    if run is not None:  # every rank takes part in one call
        queue.train_next()
    return queue


class _Queue:
    """The fits trained ahead, in the order scikit-learn's loop takes them (``take``); each
    chunk is prepared and trained in one call when the loop reaches it, and a chunk stops
    growing once its fits hold ``budget`` bytes (None: no bound)."""

    # How many fits past the first a fit of the loop may find its own among: a fit the loop
    # did not ask for though it was not known ahead (a step before the network that failed in
    # the loop only) is skipped this way, instead of leaving every later fit one off. Those
    # known ahead (their step failed there too, another estimator is last) are never asked.
    LOOKAHEAD = 4

    def __init__(self, base: Any, todo: list[tuple[dict[str, Any], tuple]], run: Any,
                 budget: int | None, collective: bool = False) -> None:
        self.base, self.todo, self.run, self.budget = base, deque(todo), run, budget
        self.collective = collective  # run is a call every rank makes, with or without fits
        self.ready: deque = deque()
        self.folds = {id(fold[0]) for _, fold in todo}  # each fold's X, shared by candidates
        # What to add to the fit time scikit-learn measures for each fit of the loop, in its
        # order: the seconds spent on it ahead, less those of the chunk its call waited for.
        # None once a call of the loop could not be told its place.
        self.fit_time_shift: list[float] | None = [0.0] * len(todo)
        self.slots = 0

    def __bool__(self) -> bool:
        return bool(self.ready or self.todo)

    def take(self, estimator: Any, matches: Callable[[_Trained], bool]) -> _Trained | None:
        """The fit trained ahead that ``matches`` says is ``estimator``'s: the next one or one
        of the few after it (those before it dropped, never to be asked for); else None, and
        the next one dropped when it was ``estimator``'s turn (not trained ahead, say)."""
        waited = 0.0
        while self.ready and not self.ready[0].asked:  # the loop fitted those before this one
            self.ready.popleft()
        if not self.ready:
            start = time.perf_counter()
            self.train_next()
            waited = time.perf_counter() - start
            while self.ready and not self.ready[0].asked:
                self.ready.popleft()
        if not self.ready:
            return None
        for k, trained in enumerate(itertools.islice(self.ready, 1 + self.LOOKAHEAD)):
            if trained.params is not None and matches(trained):  # None: not trained ahead
                for _ in range(k + 1):
                    self.ready.popleft()
                self._shift(trained.slot, trained.seconds - waited)
                return trained
        head = self.ready[0]
        if head.params is None and head.is_slot_of(estimator):  # its turn, not trained ahead
            self._shift(self.ready.popleft().slot, -waited)
        elif waited:  # the call that waited is not the next fit's: its place is unknown
            self.fit_time_shift = None
        # A fit trained ahead that is not this one's stays: this call is one the queue did not
        # expect (a step before the network failed ahead only), and the next finds its own.
        return None

    def _shift(self, slot: int, seconds: float) -> None:
        if self.fit_time_shift is not None:
            self.fit_time_shift[slot] += seconds

    def train_next(self) -> None:
        """Prepares the fits of the next chunk, then trains those that train in the core."""
        previous, _ahead.queue = getattr(_ahead, "queue", None), None
        try:  # a fastprop fit inside a Pipeline step before the network: not one of these
            self._train_next()
        finally:
            _ahead.queue = previous

    def _train_next(self) -> None:
        pending, held = [], 0
        while self.todo and (self.budget is None or not pending or held < self.budget):
            params, (X_train, y_train, w_train) = self.todo.popleft()
            estimator = clone(self.base).set_params(**clone(params, safe=False))
            final = _final_estimator(estimator)
            trained = _Trained({} if final is None else final.get_params(deep=False), None,
                               None, None, type(final))
            trained.slot, self.slots = self.slots, self.slots + 1
            self.ready.append(trained)
            if final is None:  # the grid put another estimator last: the loop fits it, and
                trained.params, trained.asked = None, False  # never asks for this slot
                continue
            if any(isinstance(v, np.random.RandomState) for v in trained.params.values()):
                # Its fit draws from (and advances) a RandomState object, which the loop's
                # clone of the estimator holds a fresh copy of: no way to tell the fits apart.
                trained.params = None
                continue
            try:
                if isinstance(estimator, Pipeline) and len(estimator.steps) > 1:
                    # The steps before the network fitted on the fold, as Pipeline.fit does,
                    # on a copy: a step that works in place (StandardScaler(copy=False))
                    # would change the fold every candidate shares.
                    own = X_train.copy() if hasattr(X_train, "copy") else X_train
                    X_train = estimator[:-1].fit_transform(own, y_train)
            except Exception:  # noqa: BLE001  the loop's Pipeline.fit fails there too, before
                trained.params, trained.asked = None, False  # it reaches the network's fit
                continue
            try:
                trained.X, trained.y, trained.w = X_train, y_train, w_train
                # The loop's Pipeline.fit runs (and times) the steps before the network again:
                # the seconds spent ahead are the network's alone.
                start = time.perf_counter()
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
            trained.seconds = time.perf_counter() - start
            pending.append((trained, final, plan))
            # Its parameters, gradient, optimiser state (up to two buffers), best parameters
            # and the estimator's copy of them; its own X when a Pipeline step made one (a
            # fold's X is shared by every candidate).
            net = final._net
            held += 6 * net.n_params * net.dtype.itemsize
            if id(X_train) not in self.folds:
                held += getattr(X_train, "nbytes", 0)
        if not pending and not self.collective:
            return
        try:
            self.run(pending)
        except (KeyboardInterrupt, DistributedError):
            raise
        except Exception:  # noqa: BLE001  (out of memory, say): the loop fits them itself
            for trained, _, _ in pending:
                trained.params = None


def _run_here(pending: list[tuple[_Trained, Any, Any]]) -> None:
    """Trains the fits of ``pending`` ((trained, estimator, job) triples) in one call of the
    core, then completes each (see _complete)."""
    _core.fit_many([plan.job for _, _, plan in pending])
    for trained, final, plan in pending:
        _complete(trained, final, plan)


def _complete(trained: _Trained, final: Any, plan: Any) -> None:
    """After its job ran: the estimator's fit ended as its own fit ends it, and ``trained``
    given the fitted estimator's state, its error and its warnings."""
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            plan.end()
        except Exception as error:  # noqa: BLE001  raised again by its fit
            trained.error = error
    trained.warnings.extend(caught)
    trained.state = dict(vars(final))
    history = getattr(trained.state.get("_net"), "history", None)
    seconds = getattr(history, "time", None)
    if seconds is not None and len(seconds):
        # Networks stepped together in SIMD lanes share one clock: each its share of it.
        trained.seconds += float(seconds[-1]) / max(1, getattr(plan.job, "lanes", 0))
    trained.seconds += time.perf_counter() - start


class _Ahead:
    """What turns a scikit-learn search into one that trains a fastprop estimator's fits
    ahead, in one call of the core (see the module doc)."""

    # What trains the fits ahead: None, one call of the core here (_run_here); a method
    # run(pending) in fastprop.distributed's searches, which spread them over ranks.
    _run_ahead: Any = None

    def fit(self, X: Any, y: Any = None, **params: Any) -> Any:
        allowed = {"groups"} if isinstance(self.estimator, Pipeline) else {"groups",
                                                                             "sample_weight"}
        if (_final_estimator(self.estimator) is None or set(params) - allowed
                or (_routing() and set(params) - {"groups"})):
            return super().fit(X, y, **params)
        if hasattr(self, "_validate_params"):  # n_jobs as given, before it is set to 1 below
            self._validate_params()
        _check_n_jobs(self.n_jobs)
        self._ahead_data = (X, y, params)
        self._ahead_queues: list[Any] = []  # one per set of candidates evaluated
        n_jobs = self.n_jobs
        self.n_jobs = 1  # scikit-learn's loop then runs here, in order, taking the fits
        try:
            return super().fit(X, y, **params)
        finally:
            self.n_jobs = n_jobs
            del self._ahead_data, self._ahead_queues
            _ahead.queue = None

    def _format_results(self, candidate_params: Any, n_splits: int, out: list[dict[str, Any]],
                        *args: Any, **kwargs: Any) -> Any:
        """scikit-learn's, on fit times that give each fit trained ahead its own seconds
        (the module doc says how), rather than giving a chunk's first fit the whole chunk."""
        shifts = _fit_time_shifts(getattr(self, "_ahead_queues", None), len(out))
        if shifts is not None and all("fit_time" in result for result in out):
            out = [{**result, "fit_time": max(0.0, result["fit_time"] + shift)}
                   for result, shift in zip(out, shifts)]
        return super()._format_results(candidate_params, n_splits, out, *args, **kwargs)

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
            # The splitter scikit-learn's loop will split with (a generator given as cv is
            # already a list in it), split here on a copy: a splitter seeded by a RandomState
            # object then draws the same folds in both places.
            splitter = cv or getattr(self, "_checked_cv_orig", None) or check_cv(
                self.cv, y, classifier=is_classifier(self.estimator))
            try:
                splits = list(copy.deepcopy(splitter).split(X, y, groups))
                queue = _train_ahead(self.estimator, candidate_params, splits, X, y, fit_params,
                                     self._run_ahead)
            except (KeyboardInterrupt, DistributedError):  # the ranks disagree: not the loop's
                raise
            except Exception:  # noqa: BLE001  scikit-learn's loop reports what is wrong
                queue = deque()
            self._ahead_queues.append(queue)
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
    _check_n_jobs(kwargs.pop("n_jobs", None))
    splits = list(check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y, groups))
    try:
        queue = _train_ahead(estimator, [{}], splits, X, y, params, run)
    except (KeyboardInterrupt, DistributedError):
        raise
    except Exception:  # noqa: BLE001  scikit-learn's loop reports what is wrong
        queue = deque()
    _ahead.queue = queue
    try:
        results = _sk.cross_validate(estimator, X, y, groups=groups, cv=splits,
                                     params=params or None, **kwargs)
    finally:
        _ahead.queue = None
    shifts = _fit_time_shifts([queue], len(splits))
    if shifts is not None and "fit_time" in results:  # each fold's own seconds (module doc)
        results["fit_time"] = np.maximum(0.0, results["fit_time"] + shifts)
    return results


def _fit_time_shifts(queues: list[Any] | None, n_fits: int) -> np.ndarray | None:
    """What to add to each of the ``n_fits`` fit times scikit-learn measured, in its order,
    for the fits the ``queues`` trained ahead (see _Queue.fit_time_shift); None when their
    places in the loop are not all known."""
    if not queues:
        return None
    shifts = []
    for queue in queues:
        shift = getattr(queue, "fit_time_shift", None)
        if shift is None:  # not trained ahead (its preparation failed), or a place unknown
            return None
        shifts.extend(shift)
    return np.array(shifts) if len(shifts) == n_fits else None


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

    unexpected = sorted(set(kwargs) - {"n_jobs", "verbose", "pre_dispatch", "error_score"})
    if unexpected:  # cross_validate's own (return_train_score, ...) are not cross_val_score's
        raise TypeError(f"cross_val_score() got an unexpected keyword argument "
                        f"{unexpected[0]!r}")
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
