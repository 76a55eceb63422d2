"""fastprop.sklearn.MLPEnsembleRegressor / Classifier: K networks trained in one call."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import fastprop  # noqa: E402
import fastprop.sklearn as fs  # noqa: E402


@pytest.fixture
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:300] / 16, y[:300]


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def alone(ensemble, X, y):
    """The members fitted one by one, with the seeds the ensemble gave them."""
    return [clone(member).fit(X, y) for member in ensemble.estimators_]


@pytest.mark.parametrize("threads", [1, 2])
def test_classifier_members_equal_single_fits_and_average(digits, threads):
    X, y = digits
    before = fastprop.get_num_threads()
    fastprop.set_num_threads(threads)
    try:
        base = fs.MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, learning_rate_init=0.01,
                                 dtype="float32")
        ensemble = fs.MLPEnsembleClassifier(base, n_estimators=4, random_state=0).fit(X, y)
    finally:
        fastprop.set_num_threads(before)
    seeds = [m.random_state for m in ensemble.estimators_]
    assert len(set(seeds)) == 4
    members = alone(ensemble, X, y)
    for a, b in zip(ensemble.estimators_, members):
        assert np.array_equal(a.network_.params, b.network_.params)
        assert a.loss_curve_ == b.loss_curve_
    proba = np.mean([m.predict_proba(X) for m in members], axis=0)
    assert np.array_equal(ensemble.predict_proba(X), proba)
    assert np.array_equal(ensemble.predict(X), ensemble.classes_[np.argmax(proba, axis=1)])
    assert ensemble.score(X, y) > 0.5


def test_regressor_bootstrap_members_see_their_rows(digits):
    X, y = digits
    y = y.astype(float)
    base = fs.MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, solver="sgd")
    ensemble = fs.MLPEnsembleRegressor(base, n_estimators=3, bootstrap=True,
                                       random_state=1).fit(X, y)
    rng = np.random.RandomState(1)
    rng.randint(np.iinfo(np.int32).max, size=3)  # the seeds, drawn first
    for member in ensemble.estimators_:
        rows = rng.randint(len(X), size=len(X))
        twin = clone(member).fit(X[rows], y[rows])
        assert np.array_equal(member.network_.params, twin.network_.params)
    assert np.array_equal(ensemble.predict(X),
                          np.mean([m.predict(X) for m in ensemble.estimators_], axis=0))


def test_binary_classifier_and_lbfgs_member(digits):
    X, y = digits
    y = y % 2
    ensemble = fs.MLPEnsembleClassifier(fs.MLPClassifier((6,), solver="lbfgs", max_iter=5),
                                        n_estimators=2, random_state=3).fit(X, y)
    proba = ensemble.predict_proba(X)
    assert proba.shape == (len(X), 2)
    assert np.array_equal(ensemble.predict(X), ensemble.classes_[(proba[:, 1] > 0.5).astype(int)])


def test_bad_input(digits):
    X, y = digits
    with pytest.raises(TypeError, match="estimator must be a fastprop.sklearn.MLPRegressor"):
        fs.MLPEnsembleRegressor(fs.MLPClassifier()).fit(X, y)
    with pytest.raises(ValueError, match="n_estimators must be"):
        fs.MLPEnsembleClassifier(n_estimators=0).fit(X, y)
    for ensemble in (fs.MLPEnsembleClassifier, fs.MLPEnsembleRegressor):
        with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
            ensemble(n_estimators=2).fit(X, None)
        for bootstrap in (False, True):  # the rows are counted before any are drawn
            with pytest.raises(ValueError, match="inconsistent numbers of samples"):
                ensemble(n_estimators=2, bootstrap=bootstrap).fit(X, y[:-1])
            with pytest.raises(ValueError, match="inconsistent numbers of samples"):
                ensemble(n_estimators=2, bootstrap=bootstrap).fit(X, y, np.ones(len(y) + 5))
        with pytest.raises(TypeError, match="bootstrap must be True or False, got 'False'"):
            ensemble(n_estimators=2, bootstrap="False").fit(X, y)


def test_classifier_of_one_class_predicts_it(digits):
    X, _ = digits
    y = np.full(len(X), 7)
    ensemble = fs.MLPEnsembleClassifier(fs.MLPClassifier((4,), max_iter=3), n_estimators=2)
    member = fs.MLPClassifier((4,), max_iter=3).fit(X, y)
    assert np.array_equal(ensemble.fit(X, y).predict(X[:5]), member.predict(X[:5]))
    assert np.array_equal(member.predict(X[:5]), np.full(5, 7))


def test_classifier_of_a_sparse_multilabel_y(digits):
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X, y = digits
    Y = np.stack([y % 2, (y > 4).astype(int)], axis=1)
    ensemble = fs.MLPEnsembleClassifier(fs.MLPClassifier((8,), max_iter=3), n_estimators=2,
                                        random_state=0)
    dense = clone(ensemble).fit(X, Y).predict_proba(X)
    assert np.array_equal(ensemble.fit(X, scipy_sparse.csr_matrix(Y)).predict_proba(X), dense)


def test_diverging_member_raises(digits):
    X, y = digits
    base = fs.MLPRegressor(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=1e200, alpha=0.0, max_iter=3)
    with pytest.raises(FloatingPointError, match="NaN or infinite"):
        fs.MLPEnsembleRegressor(base, n_estimators=2).fit(X, y.astype(float))


def test_sparse_data_is_refused_with_a_message():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    X = scipy_sparse.random(30, 4, density=0.5, format="csr", random_state=0)
    with pytest.raises(TypeError, match="needs a dense X"):
        fs.MLPEnsembleRegressor(n_estimators=2).fit(X, np.zeros(30))
