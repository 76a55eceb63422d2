"""Ensembles of fastprop estimators trained in one call of the core: :class:`MLPEnsembleRegressor`
and :class:`MLPEnsembleClassifier` (also importable from :mod:`fastprop.sklearn`).

K copies of a :class:`fastprop.sklearn.MLPRegressor` or :class:`~fastprop.sklearn.MLPClassifier`,
each with its own ``random_state`` (so its own initial weights and minibatch order), and with
``bootstrap`` each on its own sample of the rows drawn with replacement, are trained at once
by :func:`fastprop.fit_many` (the networks spread over the core's threads); the ensemble
predicts the mean of their predictions (regression) or of their class probabilities
(classification). Each member is bit-identical to ``clone(estimator).set_params(
random_state=seed).fit(X, y)`` with its seed, kept in ``estimators_``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted

from . import _core
from ._sparse import is_sparse
from ._validate import check_bool, check_int, message, typed

__all__ = ["MLPEnsembleRegressor", "MLPEnsembleClassifier"]


def fit_estimators(estimators: list[Any], data: list[tuple[Any, Any, Any]]) -> None:
    """Fits every estimator on its (X, y, sample_weight), those the core trains in one
    fit_many call (the others, lbfgs, one after the other); raises the first error."""
    pending = []
    for estimator, (X, y, w) in zip(estimators, data):
        plan = estimator._fit_job(X, y, w)
        if plan is None:
            estimator.fit(X, y, sample_weight=w)
        else:
            pending.append(plan)
    _core.fit_many([plan.job for plan in pending])
    errors = []
    for plan in pending:
        try:
            plan.end()
        except Exception as error:  # noqa: BLE001  the first one is raised below
            errors.append(error)
    if errors:
        raise errors[0]


class _Ensemble(BaseEstimator):
    """What both ensembles share: the members' seeds, their data and one fit_many call."""

    _member_class: type

    def __init__(self, estimator: Any = None, n_estimators: int = 10, *,
                 bootstrap: bool = False, random_state: Any = None) -> None:
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.bootstrap = bootstrap
        self.random_state = random_state

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Any:
        """Train ``n_estimators`` members in one call of the core.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default None
            Passed to every member (with ``bootstrap``, the drawn rows' weights).

        Returns
        -------
        self
        """
        base = self._member_class() if self.estimator is None else self.estimator
        if not isinstance(base, self._member_class):
            raise TypeError(message("estimator", f"a fastprop.sklearn."
                                    f"{self._member_class.__name__} or None", typed(base)))
        n = check_int(self.n_estimators, "n_estimators", low=1)
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=n)
        if is_sparse(X):
            raise TypeError(f"{type(self).__name__} needs a dense X (a NumPy array), got a "
                            f"sparse matrix: its members are trained in one fit_many call, "
                            f"which takes dense data; fit members one by one for sparse X")
        if y is None:  # scikit-learn's words, as its estimators say it
            raise ValueError(f"{type(self).__name__} requires y to be passed, but the target "
                             f"y is None")
        bootstrap = check_bool(self.bootstrap, "bootstrap")
        X_all = np.asarray(X)
        y_all = y.toarray() if is_sparse(y) else np.asarray(y)  # sparse: multilabel 0/1
        w_all = None if sample_weight is None else np.asarray(sample_weight)
        check_consistent_length(X_all, y_all, w_all)
        members, data = [], []
        for k in range(n):
            members.append(clone(base).set_params(random_state=int(seeds[k])))
            if bootstrap:
                rows = rng.randint(len(X_all), size=len(X_all))
                data.append((X_all[rows], y_all[rows], None if w_all is None else w_all[rows]))
            else:
                data.append((X_all, y_all, w_all))
        fit_estimators(members, data)
        self.estimators_ = members
        self.n_features_in_ = members[0].n_features_in_
        return self


class MLPEnsembleRegressor(RegressorMixin, _Ensemble):
    """The mean of ``n_estimators`` :class:`fastprop.sklearn.MLPRegressor` trained in one
    call of the core (see :mod:`fastprop.ensemble`).

    Parameters
    ----------
    estimator : fastprop.sklearn.MLPRegressor or None
        The member's parameters (None: ``MLPRegressor()``); its ``random_state`` is replaced
        by each member's seed.
    n_estimators : int, default 10
        K, the number of members.
    bootstrap : bool, default False
        Train each member on rows drawn with replacement (bagging) instead of all of them.
    random_state : int, RandomState or None
        Draws the members' seeds (and the bootstrap rows).

    Attributes
    ----------
    estimators_ : list of MLPRegressor
        The fitted members.
    """

    @property
    def _member_class(self) -> type:
        from .sklearn import MLPRegressor

        return MLPRegressor

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The mean of the members' predictions."""
        check_is_fitted(self)
        return np.mean([member.predict(X) for member in self.estimators_], axis=0)


class MLPEnsembleClassifier(ClassifierMixin, _Ensemble):
    """The mean class probabilities of ``n_estimators`` :class:`fastprop.sklearn.MLPClassifier`
    trained in one call of the core (see :mod:`fastprop.ensemble`); parameters as
    :class:`MLPEnsembleRegressor`'s.

    Attributes
    ----------
    estimators_ : list of MLPClassifier
        The fitted members.
    classes_ : ndarray
        The class labels (with ``bootstrap``, every member must have drawn every class).
    """

    @property
    def _member_class(self) -> type:
        from .sklearn import MLPClassifier

        return MLPClassifier

    def fit(self, X: ArrayLike, y: ArrayLike,
            sample_weight: ArrayLike | None = None) -> "MLPEnsembleClassifier":
        super().fit(X, y, sample_weight)
        self.classes_ = self.estimators_[0].classes_
        for member in self.estimators_[1:]:
            if not np.array_equal(member.classes_, self.classes_):
                raise ValueError(f"every member must see the same classes; a bootstrap sample "
                                 f"had {member.classes_}, another {self.classes_}: use "
                                 f"bootstrap=False or more samples")
        return self

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """The mean of the members' class probabilities."""
        check_is_fitted(self)
        return np.mean([member.predict_proba(X) for member in self.estimators_], axis=0)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The class of the highest mean probability (each label, for multilabel targets,
        where its mean probability exceeds 1/2)."""
        proba = self.predict_proba(X)
        kind = self.estimators_[0]._label_binarizer.y_type_
        if kind == "multiclass":
            return self.classes_[np.argmax(proba, axis=1)]
        if kind == "binary":  # also a single class, which every row is then
            binarizer = self.estimators_[0]._label_binarizer
            return binarizer.inverse_transform(proba[:, -1:], threshold=0.5)
        return (proba > 0.5).astype(int)  # multilabel: a 0/1 column per label
