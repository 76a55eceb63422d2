"""fastprop.sklearn as a drop-in for scikit-learn's MLP: every parameter with its meaning,
scikit-learn's stopping rule, learning-rate schedules, warm_start, verbose, sample weights,
each checked against scikit-learn's own MLP or its own code."""

from __future__ import annotations

import contextlib
import inspect
import io
import types
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits, make_friedman1  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.metrics import accuracy_score, r2_score  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from fastprop.network import LOSSES  # noqa: E402
from fastprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

OURS = {"classifier": MLPClassifier, "regressor": MLPRegressor}
THEIRS = {"classifier": neural_network.MLPClassifier, "regressor": neural_network.MLPRegressor}
HAS_POISSON = "poisson" in LOSSES
needs_poisson = pytest.mark.skipif(not HAS_POISSON, reason="the core has no 'poisson' loss")


@pytest.fixture(scope="module")
def digits():
    """Digits, split and standardised as the README shows: (X_train, X_test, y_train, y_test)."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


def _fit_quietly(estimator, *args, **kwargs):
    """fit, with the warnings it gives returned: (estimator, [warning messages])."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator.fit(*args, **kwargs)
    return estimator, caught


def _small_data(kind, n=60, seed=0, nonnegative=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    if kind == "classifier":
        return X, np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.5])
    y = X @ [1.0, -2.0, 0.5, 0.0]
    return X, (np.exp(0.3 * y) if nonnegative else y)


# ---------------------------------------------------------------------- every parameter
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_signature_is_sklearns_plus_dtype(kind):
    ours = inspect.signature(OURS[kind]).parameters
    theirs = inspect.signature(THEIRS[kind]).parameters
    assert list(ours) == [*theirs, "dtype"]  # the same order: positional calls mean the same
    for name, parameter in theirs.items():
        assert ours[name].kind == parameter.kind, name
        assert ours[name].default == parameter.default, name
    if kind == "regressor":
        assert list(ours)[0] == "loss"  # scikit-learn's first positional parameter


NON_DEFAULT = [
    dict(hidden_layer_sizes=(7, 5), activation="tanh", solver="sgd", alpha=0.01,
         batch_size=16, learning_rate="adaptive", learning_rate_init=0.01, power_t=0.3,
         max_iter=15, shuffle=False, random_state=3, tol=1e-3, verbose=1, warm_start=True,
         momentum=0.5, nesterovs_momentum=False, early_stopping=True,
         validation_fraction=0.2, n_iter_no_change=4),
    dict(hidden_layer_sizes=[6], activation="logistic", solver="sgd", learning_rate="invscaling",
         power_t=0.25, learning_rate_init=0.05, max_iter=12, n_iter_no_change=np.inf,
         random_state=np.random.RandomState(1), validation_fraction=0.0, verbose=True),
    dict(hidden_layer_sizes=5, activation="identity", beta_1=0.8, beta_2=0.99, epsilon=1e-7,
         max_iter=10, random_state=0, early_stopping=True, tol=0.0),
    dict(hidden_layer_sizes=(), solver="lbfgs", max_fun=40, max_iter=30, random_state=0,
         verbose=True),
]


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("overrides", [{}, *NON_DEFAULT],
                         ids=["defaults", "sgd-adaptive", "sgd-invscaling", "adam", "lbfgs"])
def test_built_from_sklearns_get_params(kind, overrides, capsys):
    theirs = THEIRS[kind](**overrides)
    params = theirs.get_params()
    ours = OURS[kind](**params)
    assert ours.get_params() == {**params, "dtype": "float64"}
    X, y = _small_data(kind)
    _fit_quietly(theirs, X, y)  # the parameters are valid for scikit-learn
    _fit_quietly(ours, X, y)
    assert ours.n_iter_ >= 1 and ours.predict(X).shape == theirs.predict(X).shape
    if overrides.get("warm_start"):
        epochs = len(ours.loss_curve_)
        _fit_quietly(ours, X, y)  # continues from the fitted network, its curve appended
        assert len(ours.loss_curve_) == epochs + ours.n_iter_
    out = capsys.readouterr().out
    assert ("Iteration 1, loss = " in out) == bool(params["verbose"])


@needs_poisson
def test_regressor_from_sklearns_get_params_with_poisson_loss():
    X, y = _small_data("regressor", nonnegative=True)
    theirs = neural_network.MLPRegressor(loss="poisson", hidden_layer_sizes=(8,), max_iter=30,
                                         random_state=0)
    ours = MLPRegressor(**theirs.get_params())
    _fit_quietly(ours, X, y)
    assert ours.out_activation_ == "exp" and np.all(ours.predict(X) > 0)


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"learning_rate": "optimal"}, ValueError, "learning_rate must be one of constant, "),
    ({"power_t": -0.5}, ValueError, r"power_t must be a finite number >= 0, got -0.5"),
    ({"max_fun": 0}, ValueError, "max_fun must be >= 1, got 0"),
    ({"warm_start": 1}, TypeError, "warm_start must be True or False, got 1"),
    ({"verbose": "loud"}, TypeError, "verbose must be a bool or an int >= 0, got str 'loud'"),
    ({"verbose": -1}, ValueError, "verbose must be >= 0, got -1"),
    ({"early_stopping": True, "validation_fraction": 0.0}, ValueError,
     r"early_stopping=True needs validation_fraction in \(0, 1\), got 0"),
])
def test_new_parameters_are_checked(params, error, match):
    X, y = _small_data("classifier")
    with pytest.raises(error, match=match):
        MLPClassifier(**params).fit(X, y)


def test_regressor_loss_is_checked():
    X, y = _small_data("regressor")
    with pytest.raises(ValueError, match="loss must be one of squared_error, poisson; got 'mae'"):
        MLPRegressor(loss="mae").fit(X, y)
    with pytest.raises(ValueError, match="solver='lm'.*needs loss='squared_error'"):
        MLPRegressor(loss="poisson", solver="lm", alpha=0).fit(X, np.abs(y))


@needs_poisson
def test_poisson_needs_nonnegative_targets():
    X, y = _small_data("regressor")
    with pytest.raises(ValueError, match=r"loss='poisson' needs y >= 0 .*got a minimum of -"):
        MLPRegressor(loss="poisson").fit(X, y)


# ---------------------------------------------------------------------- the stopping rule
def _sklearns_rule(loss_curve, tol, n_iter_no_change, validation_scores=None):
    """(the epoch at which scikit-learn stops, the rule's state), by scikit-learn's own
    ``_update_no_improvement_count`` run on a stand-in over the given curve (None: it runs on
    to the end)."""
    scores = iter(validation_scores or ())
    stand_in = types.SimpleNamespace(
        loss_curve_=[], best_loss_=np.inf, validation_scores_=[], best_validation_score_=-np.inf,
        tol=tol, verbose=False, _no_improvement_count=0, coefs_=[], intercepts_=[],
        _score=lambda X, y, sample_weight=None: next(scores))
    rule = neural_network.MLPClassifier._update_no_improvement_count
    for epoch, loss in enumerate(loss_curve, start=1):
        stand_in.loss_curve_.append(loss)
        rule(stand_in, validation_scores is not None, None, None, None)
        if stand_in._no_improvement_count > n_iter_no_change:
            return epoch, stand_in
    return None, stand_in


@pytest.mark.parametrize("params", [
    {},
    {"solver": "sgd", "learning_rate_init": 0.05},
    {"tol": 1e-3, "n_iter_no_change": 3},
    {"solver": "rprop", "learning_rate_init": 0.01, "tol": 1e-5},
    {"early_stopping": True},
    {"early_stopping": True, "tol": 0.0, "n_iter_no_change": 5, "solver": "sgd"},
    {"max_iter": 40},
], ids=["adam", "sgd", "tol", "rprop", "early_stopping", "early_stopping-tol0", "max_iter"])
def test_stops_where_sklearns_rule_stops_on_our_own_curve(digits, params):
    X_train, _, y_train, _ = digits
    params = {"hidden_layer_sizes": (32,), "random_state": 0, "max_iter": 300, **params}
    ours, caught = _fit_quietly(MLPClassifier(**params), X_train, y_train)
    scores = ours.validation_scores_ if ours.early_stopping else None
    stop, rule = _sklearns_rule(ours.loss_curve_, ours.tol, ours.n_iter_no_change, scores)
    assert len(ours.loss_curve_) == ours.n_iter_
    warned = [w for w in caught if issubclass(w.category, ConvergenceWarning)]
    if stop is None:  # the rule never stopped: all max_iter epochs ran, with the warning
        assert ours.n_iter_ == ours.max_iter and len(warned) == 1
    else:
        assert ours.n_iter_ == stop < ours.max_iter and not warned
    if ours.early_stopping:
        assert len(ours.validation_scores_) == ours.n_iter_ and ours.best_loss_ is None
        assert ours.best_validation_score_ == rule.best_validation_score_
    else:
        assert ours.best_loss_ == rule.best_loss_ == min(ours.loss_curve_)
        assert ours.validation_scores_ is None and ours.best_validation_score_ is None


def test_early_stopping_keeps_the_weights_of_the_best_score(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((32,), early_stopping=True, random_state=0).fit(X_train, y_train)
    # the held-out rows are those scikit-learn's own split draws from the same random state
    best = int(np.argmax(clf.validation_scores_))
    assert clf.validation_scores_[best] == clf.best_validation_score_
    assert best < clf.n_iter_ - 1  # the last epochs did not improve: weights were restored
    assert clf.score(X_train, y_train) > 0.95


def test_digits_stops_as_sklearn_does_without_a_warning(digits):
    """Default parameters on digits: scikit-learn stops after 165-175 epochs without a
    warning (random_state 0-3); fastprop, from its own initialisation, stops too."""
    X_train, X_test, y_train, y_test = digits
    for random_state in range(3):
        params = dict(hidden_layer_sizes=(64,), random_state=random_state)
        ours, ours_warned = _fit_quietly(MLPClassifier(**params), X_train, y_train)
        theirs, theirs_warned = _fit_quietly(neural_network.MLPClassifier(**params), X_train,
                                             y_train)
        assert not ours_warned and not theirs_warned
        assert 0.7 * theirs.n_iter_ <= ours.n_iter_ <= 1.3 * theirs.n_iter_
        assert ours.n_iter_ < 200 and theirs.n_iter_ < 200
        assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.015


# ---------------------------------------------------------------------- same path as sklearn
def _from_the_same_point(X, y, sample_weight=None, kind="classifier", **params):
    """Ours and scikit-learn's, both warm-started from the same weights and stopping state
    (a first fit of one epoch, whose weights and loss curve are copied into scikit-learn's),
    then fitted again. Returns (ours, theirs, our warnings, their warnings, what ours
    printed, what theirs printed) of the second fit."""
    params = {"random_state": 0, "shuffle": False, **params, "warm_start": True}
    max_iter = params.pop("max_iter", 300)
    ours, theirs = OURS[kind](**params, max_iter=1), THEIRS[kind](**params, max_iter=1)
    _fit_quietly(ours, X, y, sample_weight=sample_weight)
    _fit_quietly(theirs, X, y, sample_weight=sample_weight)
    theirs.coefs_ = [W.copy() for W in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    if params.get("solver", "adam") in ("sgd", "adam"):
        theirs.loss_curve_, theirs.best_loss_ = list(ours.loss_curve_), ours.best_loss_
    ours.set_params(max_iter=max_iter)
    theirs.set_params(max_iter=max_iter)
    printed = []
    for estimator in (ours, theirs):
        with contextlib.redirect_stdout(io.StringIO()) as out:
            _, warned = _fit_quietly(estimator, X, y, sample_weight=sample_weight)
        printed.append((warned, out.getvalue()))
    return ours, theirs, printed[0][0], printed[1][0], printed[0][1], printed[1][1]


@pytest.mark.parametrize("params, rtol", [
    ({"solver": "sgd", "learning_rate_init": 0.05, "alpha": 0.0}, 1e-12),
    ({"solver": "sgd", "learning_rate_init": 0.05, "alpha": 0.0, "nesterovs_momentum": False},
     1e-12),
    ({"solver": "sgd", "learning_rate_init": 0.05, "alpha": 0.0, "learning_rate": "invscaling",
      "power_t": 0.25, "max_iter": 150}, 1e-12),
    ({"solver": "sgd", "learning_rate_init": 0.05, "alpha": 0.0, "learning_rate": "adaptive"},
     1e-12),
    # weight_decay also shrinks the intercepts (scikit-learn's alpha does not): close, not equal
    ({"solver": "sgd", "learning_rate_init": 0.05, "alpha": 1e-4}, 1e-3),
    # Adam adds epsilon to the bias-corrected √v (torch's), scikit-learn to √v: close
    ({"solver": "adam"}, 1e-3),
], ids=["sgd", "sgd-momentum", "invscaling", "adaptive", "sgd-alpha", "adam"])
def test_same_loss_curve_and_stopping_epoch_as_sklearn(digits, params, rtol):
    """From the same weights, fastprop and scikit-learn walk the same path: the same loss
    after every epoch and the same epoch to stop at. For sgd the updates are scikit-learn's
    exactly, learning-rate schedules included (invscaling counts t_ from the first fit)."""
    X_train, _, y_train, _ = digits
    ours, theirs, ours_warned, theirs_warned, _, _ = _from_the_same_point(
        X_train, y_train, hidden_layer_sizes=(32,), **params)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    assert len(ours_warned) == len(theirs_warned)
    if params.get("learning_rate") == "adaptive":
        assert ours._learning_rate == theirs._optimizer.learning_rate < params["learning_rate_init"]


def test_verbose_prints_sklearns_lines(digits):
    X_train, _, y_train, _ = digits
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.05, alpha=0.0,
                  learning_rate="adaptive", tol=1e-3, n_iter_no_change=2, max_iter=100,
                  verbose=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the first fits' lines
        ours, theirs, _, _, ours_out, theirs_out = _from_the_same_point(X_train, y_train,
                                                                        **params)
    assert ours_out == theirs_out
    lines = ours_out.splitlines()
    assert lines[0].startswith("Iteration 1, loss = ") and len(lines) > ours.n_iter_
    assert any("Setting learning rate to" in line for line in lines)


def test_verbose_prints_validation_scores(digits, capsys):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((16,), early_stopping=True, verbose=True, random_state=0)
    clf.fit(X_train, y_train)
    lines = capsys.readouterr().out.splitlines()
    scores = [line for line in lines if line.startswith("Validation score: ")]
    assert len(scores) == clf.n_iter_
    assert scores[0] == "Validation score: %f" % clf.validation_scores_[0]
    assert lines[-1].startswith("Validation score did not improve more than tol=0.000100 for "
                                "10 consecutive epochs. Stopping.")


def test_lbfgs_follows_sklearns_path(digits):
    X_train, _, y_train, _ = digits
    ours, theirs, _, _, _, _ = _from_the_same_point(X_train[:400], y_train[:400],
                                              hidden_layer_sizes=(8,), solver="lbfgs",
                                              alpha=1e-3, max_iter=25)
    assert ours.n_iter_ == theirs.n_iter_ == 25
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_max_fun_bounds_lbfgs_evaluations(digits):
    X_train, _, y_train, _ = digits
    clf, caught = _fit_quietly(MLPClassifier((8,), solver="lbfgs", max_fun=5, random_state=0),
                               X_train, y_train)
    assert clf.n_iter_ <= 5 and len(clf.loss_curve_) == clf.n_iter_
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


# ---------------------------------------------------------------------- warm_start
def test_warm_start_continues_like_sklearn(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((16,), warm_start=True, max_iter=5, random_state=0)
    _fit_quietly(clf, X_train, y_train)
    coefs, curve = clf.coefs_[0].copy(), list(clf.loss_curve_)
    _fit_quietly(clf, X_train, y_train)
    assert clf.n_iter_ == 5 and clf.t_ == 10 * len(X_train)  # as scikit-learn counts them
    assert clf.loss_curve_[:5] == curve and len(clf.loss_curve_) == 10
    assert clf.loss_curve_[5] < curve[0]  # continued, not restarted
    assert not np.array_equal(coefs, clf.coefs_[0])

    cold = MLPClassifier((16,), max_iter=5, random_state=0)
    _fit_quietly(cold, X_train, y_train)
    _fit_quietly(cold, X_train, y_train)
    assert len(cold.loss_curve_) == 5 and cold.loss_curve_ == curve  # a new fit each time


def test_warm_start_refuses_other_classes_or_layers(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((16,), warm_start=True, max_iter=2, random_state=0)
    _fit_quietly(clf, X_train, y_train)
    with pytest.raises(ValueError, match="warm_start can only be used where y has the same "
                                         "classes"):
        clf.fit(X_train[y_train < 5], y_train[y_train < 5])
    clf.set_params(hidden_layer_sizes=(8,))
    with pytest.raises(ValueError, match=r"continue the fitted network \(hidden_layer_sizes="
                                         r"\[16\]"):
        clf.fit(X_train, y_train)


def test_partial_fit_refuses_labels_outside_the_first_calls_classes(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((4,), random_state=0)
    with pytest.raises(ValueError, match=r"y has classes \[2\] not in classes=\[0 1\]"):
        clf.partial_fit(X_train[:30], np.arange(30) % 3, classes=[0, 1])
    assert not hasattr(clf, "classes_")  # nothing was kept of the refused call
    clf.partial_fit(X_train[:30], np.arange(30) % 2, classes=[0, 1])
    assert list(clf.classes_) == [0, 1]


# ---------------------------------------------------------------------- sample weights
TARGETS = ["regression", "regression-2-outputs", "binary", "multiclass", "multilabel"]
if HAS_POISSON:
    TARGETS.append("poisson")


def _target(target, X):
    return {"regression": X @ [1.0, -2.0, 0.5, 0.0],
            "regression-2-outputs": np.column_stack([X[:, 0] - X[:, 1], X[:, 2] * X[:, 3]]),
            "poisson": np.exp(0.5 * X[:, 0]).round(),
            "binary": (X[:, 0] > 0).astype(int),
            "multiclass": np.digitize(X[:, 0], [-0.5, 0.5]),
            "multilabel": (X[:, :3] > 0).astype(int)}[target]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("alpha", [0.0, 0.5])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_sgd_step_with_sample_weight_is_sklearns(target, alpha, weighted):
    """From the same weights, one full-batch step: the same loss (penalty included) and the
    same new weights as scikit-learn's, with and without sample weights."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = _target(target, X)
    w = rng.uniform(0, 3, 50) * (rng.uniform(size=50) > 0.2) if weighted else None
    kind = "classifier" if target in ("binary", "multiclass", "multilabel") else "regressor"
    params = dict(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", alpha=alpha,
                  momentum=0.0, batch_size=50, learning_rate_init=0.1, shuffle=False,
                  random_state=0)
    if target == "poisson":
        params["loss"] = "poisson"
    ours, theirs = OURS[kind](**params), THEIRS[kind](**params)
    extra = {}
    if kind == "classifier":
        extra["classes"] = np.arange(3) if target == "multilabel" else np.unique(y)
    ours.partial_fit(X, y, sample_weight=w, **extra)
    theirs.partial_fit(X, y, sample_weight=w, **extra)
    theirs.coefs_ = [W.copy() for W in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    ours.partial_fit(X, y, sample_weight=w)
    theirs.partial_fit(X, y, sample_weight=w)
    assert ours.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=1e-12)
    for W_ours, W_theirs in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(W_ours, W_theirs, rtol=1e-9)
    if alpha == 0:  # our weight_decay also shrinks the intercepts
        for b_ours, b_theirs in zip(ours.intercepts_, theirs.intercepts_):
            np.testing.assert_allclose(b_ours, b_theirs, rtol=1e-9)
        assert ours.score(X, y, sample_weight=w) == pytest.approx(
            theirs.score(X, y, sample_weight=w), rel=1e-9)


def test_lbfgs_with_sample_weight_follows_sklearns_path():
    X, y = make_friedman1(n_samples=200, random_state=0)
    w = np.random.default_rng(1).uniform(0, 2, 200)
    ours, theirs, _, _, _, _ = _from_the_same_point(X, y, sample_weight=w, kind="regressor",
                                              hidden_layer_sizes=(8,), solver="lbfgs",
                                              alpha=1e-2, max_iter=20)
    assert ours.n_iter_ == theirs.n_iter_ == 20
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


# Levenberg–Marquardt scales J's rows by √w, whose square is not w exactly: its solves of
# (JᵀWJ + μI)Δ = JᵀWr agree with the repeated rows' to 1e-8, not to the last bits.
SOLVERS = [("sgd", {"batch_size": 1000, "learning_rate_init": 0.01}, 1e-9),
           ("adam", {}, 1e-9), ("lbfgs", {}, 1e-9), ("rprop", {}, 1e-9),
           ("lm", {"alpha": 0.0}, 1e-7)]


@pytest.mark.parametrize("solver, extra, rtol", SOLVERS, ids=[s for s, _, _ in SOLVERS])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_weights_repeat_or_remove_samples(solver, extra, rtol, kind):
    """A weight of 2 is the sample twice and a weight of 0 leaves it out (full batch)."""
    if solver == "lm" and kind == "classifier":
        pytest.skip("Levenberg–Marquardt fits squared errors only")
    X, y = _small_data(kind, n=40)
    w = np.random.default_rng(2).integers(0, 4, len(X))
    w[:2] = [0, 2]
    params = dict(hidden_layer_sizes=(5,), activation="tanh", solver=solver, max_iter=30,
                  tol=0.0, random_state=0, **extra)
    weighted, _ = _fit_quietly(OURS[kind](**params), X, y, sample_weight=w)
    repeated, _ = _fit_quietly(OURS[kind](**params), np.repeat(X, w, axis=0),
                               np.repeat(y, w, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_
    np.testing.assert_allclose(weighted.loss_curve_, repeated.loss_curve_, rtol=rtol)
    predict = weighted.predict_proba if kind == "classifier" else weighted.predict
    np.testing.assert_allclose(predict(X), (repeated.predict_proba if kind == "classifier"
                                            else repeated.predict)(X), rtol=1e-7)


def test_all_ones_weights_are_no_weights():
    X, y = make_friedman1(n_samples=300, random_state=0)
    a = MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    b = MLPRegressor(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    _fit_quietly(a, X, y)
    _fit_quietly(b, X, y, sample_weight=np.ones(len(X)))
    np.testing.assert_array_equal(a.network_.params, b.network_.params)


def test_early_stopping_scores_the_held_out_rows_with_their_weights(digits):
    X_train, _, y_train, _ = digits
    w = np.where(y_train == 3, 0.0, 1.0)  # class 3 does not count, in training or scoring
    clf = MLPClassifier((16,), early_stopping=True, max_iter=30, random_state=0)
    _fit_quietly(clf, X_train, y_train, sample_weight=w)
    # the held-out rows: scikit-learn's train_test_split of (X, Y, w) with the random state
    # after fastprop's one draw of its initialisation seed (not stratified for multiclass
    # targets, as scikit-learn's MLP)
    rng = np.random.RandomState(0)
    rng.randint(np.iinfo(np.int32).max)
    _, X_val, _, y_val, _, w_val = train_test_split(X_train, y_train, w, test_size=0.1,
                                                    random_state=rng)
    # the weights kept are those of the best score, the weighted accuracy on those rows
    assert clf.score(X_val, y_val, sample_weight=w_val) == clf.best_validation_score_
    assert accuracy_score(y_val, clf.predict(X_val)) < clf.best_validation_score_


def test_sample_weight_is_checked():
    X, y = _small_data("regressor")
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match=r"sample_weight must be a 1-D array of 60 weights"):
        reg.fit(X, y, sample_weight=np.ones(59))
    with pytest.raises(ValueError, match=r"sample_weight must hold finite numbers >= 0"):
        reg.fit(X, y, sample_weight=np.r_[-1.0, np.ones(59)])
    with pytest.raises(ValueError, match=r"at least one weight > 0, got all weights zero"):
        reg.fit(X, y, sample_weight=np.zeros(60))


def test_boosting_weights_the_samples():
    """AdaBoost reweights the samples of each round through fit's sample_weight."""
    from sklearn.ensemble import AdaBoostClassifier

    X, y = _small_data("classifier", n=150)
    boost = AdaBoostClassifier(MLPClassifier((4,), solver="lbfgs", max_iter=50, random_state=0),
                               n_estimators=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        boost.fit(X, y)
    assert len(boost.estimators_) >= 2 and boost.score(X, y) > 0.8
    first, second = (est.coefs_[0] for est in boost.estimators_[:2])
    assert not np.array_equal(first, second)  # the same seed, other weights: another fit


def test_regressor_score_takes_sample_weight():
    X, y = make_friedman1(n_samples=200, random_state=0)
    w = np.random.default_rng(0).uniform(0, 1, 200)
    reg = MLPRegressor(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0)
    _fit_quietly(reg, X, y)
    assert reg.score(X, y, sample_weight=w) == r2_score(y, reg.predict(X), sample_weight=w)


@needs_poisson
def test_skl2onnx_graph_of_a_poisson_regressor_predicts_the_rate():
    skl2onnx = pytest.importorskip("skl2onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    from fastprop.export import register_skl2onnx

    register_skl2onnx()
    X, y = _small_data("regressor", nonnegative=True)
    reg = MLPRegressor(loss="poisson", hidden_layer_sizes=(6,), solver="lbfgs", max_iter=50,
                       random_state=0)
    _fit_quietly(reg, X, y)
    model = skl2onnx.to_onnx(reg, X[:1])
    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {session.get_inputs()[0].name: X})
    np.testing.assert_allclose(out[:, 0], reg.predict(X), rtol=1e-12)


@pytest.mark.parametrize("kind", ["regressor", "classifier"])
def test_assigned_coefs_and_intercepts_replace_the_weights(kind):
    """As in scikit-learn, setting coefs_ and intercepts_ replaces the weights: ours then
    predicts what scikit-learn's predicts with the same ones; a wrong list changes nothing."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X[:, 0] if kind == "regressor" else (X[:, 0] > 0).astype(int)
    params = {"hidden_layer_sizes": (5,), "max_iter": 3, "random_state": 0}
    ours, _ = _fit_quietly(OURS[kind](**params), X, y)
    theirs, _ = _fit_quietly(THEIRS[kind](**{**params, "random_state": 1}), X, y)
    before = [W.copy() for W in ours.coefs_]
    with pytest.raises(ValueError, match=r"coefs_\[1\] must have shape \(5, 1\), got \(1, 5\)"):
        ours.coefs_ = [theirs.coefs_[0], theirs.coefs_[1].T]
    with pytest.raises(ValueError, match=r"intercepts_ must be a list of 2 arrays"):
        ours.intercepts_ = theirs.intercepts_[:1]
    for W, W_before in zip(ours.coefs_, before):
        np.testing.assert_array_equal(W, W_before)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(ours.coefs_[0], theirs.coefs_[0])


def test_coefs_assigned_from_their_own_views_swap_as_in_sklearn():
    """Arrays that are views of these very weights (coefs_ itself, permuted) are read before
    anything is written, as scikit-learn's list assignment reads them."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 4)), rng.standard_normal(30)
    params = {"hidden_layer_sizes": (4, 4), "max_iter": 2, "random_state": 0}
    for cls in (MLPRegressor, neural_network.MLPRegressor):
        est, _ = _fit_quietly(cls(**params), X, y)
        c, b = est.coefs_, est.intercepts_
        old_c, old_b = [W.copy() for W in c], [v.copy() for v in b]
        est.coefs_ = [c[1], c[0], c[2]]
        est.intercepts_ = [b[1], b[0], b[2]]
        for new, old in zip(est.coefs_ + est.intercepts_,
                            [old_c[1], old_c[0], old_c[2], old_b[1], old_b[0], old_b[2]]):
            np.testing.assert_array_equal(new, old)
