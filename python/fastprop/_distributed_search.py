"""scikit-learn's searches and cross-validation over MPI ranks: :class:`GridSearchCV`,
:class:`RandomizedSearchCV`, :func:`cross_validate` and :func:`cross_val_score`, imported
from :mod:`fastprop.distributed`.

They are :mod:`fastprop.model_selection`'s, with the fits trained ahead (every candidate ×
fold of a fastprop estimator) spread over the ranks of ``MPI.COMM_WORLD`` as
:func:`fastprop.distributed.fit_many` spreads networks, then sent to every rank; scikit-learn's
loop then runs on every rank, scoring every fit, so ``cv_results_``, ``best_params_`` and
``best_estimator_`` (refitted on every rank, then rank 0's sent to all) are on every rank
what one process computes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import model_selection as _ms
from ._sparse import is_sparse
from .distributed import _agree, _ends_the_job_when_one_rank_stops, _fingerprint, _same, \
    _train_ahead_over_ranks, world

__all__ = ["GridSearchCV", "RandomizedSearchCV", "cross_validate", "cross_val_score"]


def _check_same(comm: Any, what: dict[str, Any]) -> None:
    """ValueError on every rank, naming the ranks, when the ranks' values differ."""
    def values() -> dict[str, Any]:
        out = {}
        for name, value in what.items():
            if name in ("X", "y") and value is not None and not is_sparse(value):
                value = np.asarray(value)
            out[name] = _fingerprint(value)
        return out

    everyone = _agree(comm, values, share=True)
    for name in everyone[0]:
        _same([e[name] for e in everyone], name)


def _estimator_params(estimator: Any) -> dict[str, Any]:
    return dict(estimator.get_params(deep=True))


class _OverRanks:
    """A model_selection search whose fits trained ahead are spread over the ranks."""

    @_ends_the_job_when_one_rank_stops
    def fit(self, X: Any, y: Any = None, **params: Any) -> Any:
        """scikit-learn's ``fit``, the same call on every rank (X, y, the fit parameters
        and the search's parameters are compared first: ValueError on every rank when they
        differ)."""
        comm = world()
        if comm.size == 1:
            return super().fit(X, y, **params)
        search = {k: v for k, v in self.get_params(deep=False).items() if k != "estimator"}
        _check_same(comm, {"X": X, "y": y, "the fit parameters": params,
                           "the search's parameters": search,
                           "the estimator's parameters": _estimator_params(self.estimator)})
        # A refit that raised on one rank raises on every rank, and every rank takes rank
        # 0's best_estimator_: an estimator without a random_state draws its seed on each
        # rank, so the ranks' refits would differ.
        fit = super().fit
        _agree(comm, lambda: fit(X, y, **params))
        if hasattr(self, "best_estimator_"):
            self.best_estimator_ = comm.bcast(self.best_estimator_ if comm.rank == 0 else None,
                                              root=0)
        return self

    def _run_ahead(self, pending: list[Any]) -> None:
        comm = world()
        if comm.size == 1:
            _ms._run_here(pending)
        else:
            _train_ahead_over_ranks(comm, pending)


class GridSearchCV(_OverRanks, _ms.GridSearchCV):
    __doc__ = (_ms.GridSearchCV.__doc__ or "") + """
    fastprop.distributed: the same script on every rank of ``MPI.COMM_WORLD``; the
    candidates × folds are spread over the ranks, and every rank ends with the search one
    process computes (see :mod:`fastprop.distributed`).
    """


class RandomizedSearchCV(_OverRanks, _ms.RandomizedSearchCV):
    __doc__ = (_ms.RandomizedSearchCV.__doc__ or "") + """
    fastprop.distributed: the same script on every rank of ``MPI.COMM_WORLD`` (give
    ``random_state``, so every rank draws the same candidates); the candidates × folds are
    spread over the ranks, and every rank ends with the search one process computes.
    """


def _runner(comm: Any) -> Any:
    if comm.size == 1:
        return None
    return lambda pending: _train_ahead_over_ranks(comm, pending)


@_ends_the_job_when_one_rank_stops
def cross_validate(estimator: Any, X: Any, y: Any = None, *, groups: Any = None,
                   cv: Any = None, params: dict[str, Any] | None = None, comm: Any = None,
                   **kwargs: Any) -> dict[str, Any]:
    """:func:`fastprop.model_selection.cross_validate` with the folds spread over the ranks
    of ``comm`` (default ``MPI.COMM_WORLD``); every rank returns what one process does."""
    comm = world() if comm is None else comm
    if comm.size > 1:
        _check_same(comm, {"X": X, "y": y, "groups": groups, "cv": cv, "params": params,
                           "the other arguments": kwargs,
                           "the estimator's parameters": _estimator_params(estimator)})
    return _ms._cross_validate(estimator, X, y, groups, cv, params, _runner(comm), kwargs)


@_ends_the_job_when_one_rank_stops
def cross_val_score(estimator: Any, X: Any, y: Any = None, *, groups: Any = None,
                    scoring: Any = None, cv: Any = None, params: dict[str, Any] | None = None,
                    comm: Any = None, **kwargs: Any) -> np.ndarray:
    """:func:`fastprop.model_selection.cross_val_score` with the folds spread over the ranks
    of ``comm`` (default ``MPI.COMM_WORLD``); every rank returns what one process does."""
    comm = world() if comm is None else comm
    if comm.size > 1:
        _check_same(comm, {"X": X, "y": y, "groups": groups, "scoring": scoring, "cv": cv,
                           "params": params, "the other arguments": kwargs,
                           "the estimator's parameters": _estimator_params(estimator)})
    return _ms._cross_val_score(estimator, X, y, groups, scoring, cv, params, _runner(comm),
                                kwargs)
