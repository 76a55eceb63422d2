"""fastprop.sklearn: scikit-learn's own estimator checks, and learning on real data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits, load_iris, make_friedman1  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastprop  # noqa: E402
from fastprop import optim  # noqa: E402
from fastprop.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# Tolerance of the one-step comparison with scikit-learn's own MLP (float64): the same
# update computed in a different order, a few ulps per entry of a 64-wide sum.
STEP_RTOL = 1e-9


def _no_convergence_warning(fit, *args, **kwargs):
    """Call fit with ConvergenceWarning silenced (max_iter deliberately small)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16, y, test_size=0.25, random_state=0, stratify=y)


# ---------------------------------------------------------------------- sklearn's checks
# The check data sets are tiny, so max_iter ends many fits before convergence: the
# ConvergenceWarning there is expected, not a failure.
def _expected_failed_checks(estimator):
    if isinstance(estimator, MLPClassifier) and estimator.solver == "lbfgs":
        # lbfgs fits the check's multilabel data so well that some sigmoid outputs round to
        # exactly 1.0 in float64, and the check demands 0 < p < 1 strictly. A property of
        # floating point, not of the estimator: scikit-learn's own
        # MLPClassifier(solver="lbfgs") fails this check the same way.
        return {"check_classifiers_multilabel_output_format_predict_proba":
                "saturated sigmoid rounds to 1.0 in float64 (sklearn's own lbfgs MLP too)"}
    return {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([
    MLPRegressor(random_state=0),
    MLPClassifier(random_state=0),
    MLPRegressor(solver="lbfgs", random_state=0),
    MLPClassifier(solver="lbfgs", random_state=0),
    MLPRegressor(solver="sgd", random_state=0),
    MLPClassifier(solver="sgd", random_state=0),
    MLPRegressor(solver="lm", hidden_layer_sizes=(8,), max_iter=50, random_state=0),
], expected_failed_checks=_expected_failed_checks)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------------- learning
def test_digits_classification_reaches_stated_accuracy(digits):
    X_train, X_test, y_train, y_test = digits
    clf = _no_convergence_warning(MLPClassifier((64,), random_state=0).fit, X_train, y_train)
    assert clf.out_activation_ == "softmax"
    assert clf.score(X_test, y_test) >= 0.96  # measured 0.976 (scikit-learn's MLP: 0.976)


def test_digits_accuracy_matches_sklearns_mlp(digits):
    X_train, X_test, y_train, y_test = digits
    params = dict(hidden_layer_sizes=(32,), max_iter=100, random_state=1)
    ours = _no_convergence_warning(MLPClassifier(**params).fit, X_train, y_train)
    theirs = _no_convergence_warning(neural_network.MLPClassifier(**params).fit, X_train, y_train)
    # different initialisations, same problem and hyperparameters: the same accuracy, ±2 points
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.02


def test_regression_on_friedman1_reaches_stated_r2():
    X, y = make_friedman1(n_samples=1200, noise=0.1, random_state=0)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
    reg = MLPRegressor(hidden_layer_sizes=(32, 32), activation="tanh", learning_rate_init=0.01,
                       max_iter=500, random_state=0).fit(X_train, y_train)
    assert reg.score(X_test, y_test) >= 0.95  # measured 0.993
    assert reg.loss_curve_[-1] < 0.05 * reg.loss_curve_[0]
    assert reg.n_iter_ == len(reg.loss_curve_) and reg.best_loss_ == min(reg.loss_curve_)


def test_multioutput_regression():
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (400, 3))
    Y = np.column_stack([np.sin(2 * X[:, 0]), X[:, 1] * X[:, 2]])
    reg = MLPRegressor(hidden_layer_sizes=(32,), activation="tanh", solver="lbfgs",
                       max_iter=1000, random_state=0).fit(X, Y)
    assert reg.predict(X).shape == (400, 2) and reg.n_outputs_ == 2
    assert reg.score(X, Y) > 0.99


@pytest.mark.parametrize("solver", ["lbfgs", "rprop"])
def test_full_batch_solvers_learn_iris(solver):
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((10,), "tanh", solver=solver, learning_rate_init=0.01, max_iter=1000,
                        random_state=0).fit(X, y)
    assert clf.score(X, y) >= 0.97  # lbfgs measured 0.993, rprop 0.987
    assert 1 <= clf.n_iter_ <= 1000


def test_lbfgs_minimises_sklearns_objective():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((5,), solver="lbfgs", alpha=0.1, max_iter=2000, tol=1e-8,
                        random_state=0).fit(X, y)
    # loss_ is cross-entropy + alpha/(2t)·||W||², which scikit-learn's own estimator
    # evaluates the same at our weights
    net = clf.network_
    E = net.loss(X, np.eye(3)[y])
    penalty = 0.1 / (2 * len(X)) * sum(float(np.sum(W ** 2)) for W in clf.coefs_)
    assert clf.loss_ == pytest.approx(E + penalty, rel=1e-9)
    assert clf.loss_curve_[-1] == pytest.approx(clf.loss_)


@pytest.mark.skipif("lm" not in optim.OPTIMIZERS,
                    reason="fastprop's fit(optimizer='lm') (Levenberg–Marquardt) has not landed")
def test_levenberg_marquardt_regression():
    X = np.linspace(-2, 2, 200).reshape(-1, 1)
    y = np.sin(2 * X[:, 0])
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", solver="lm", alpha=0.0,
                       max_iter=200, random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.999


# ---------------------------------------------------------------------- sklearn semantics
def _sklearn_forward(clf_or_reg, X, hidden):
    """z_n by scikit-learn's formula a_{i+1} = σ(a_i coefs_[i] + intercepts_[i])."""
    a = X
    for i, (W, b) in enumerate(zip(clf_or_reg.coefs_, clf_or_reg.intercepts_)):
        a = a @ W + b
        if i < len(clf_or_reg.coefs_) - 1:
            a = hidden(a)
    return a


def test_coefs_have_sklearns_layout():
    X, y = load_iris(return_X_y=True)
    clf = _no_convergence_warning(MLPClassifier((7, 5), "tanh", max_iter=5, random_state=0).fit,
                                  X, y)
    assert [W.shape for W in clf.coefs_] == [(4, 7), (7, 5), (5, 3)]
    assert [b.shape for b in clf.intercepts_] == [(7,), (5,), (3,)]
    assert clf.n_layers_ == 4 and clf.n_features_in_ == 4
    np.testing.assert_allclose(_sklearn_forward(clf, X, np.tanh), clf.network_.forward(X),
                               rtol=1e-12)


@pytest.mark.parametrize("target", ["regression", "binary", "multiclass", "multilabel"])
@pytest.mark.parametrize("alpha", [0.0, 0.5])
def test_one_sgd_step_is_sklearns_step(target, alpha):
    """From the same weights, one full-batch SGD step lands where scikit-learn's does.

    This pins the loss scaling s and the mapping of learning_rate_init and alpha. Our
    weight_decay also shrinks the intercepts (scikit-learn's does not), so with alpha > 0
    only coefs_ are compared.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 4))
    y = {"regression": X @ [1.0, -2.0, 0.5, 0.0],
         "binary": (X[:, 0] > 0).astype(int),
         "multiclass": np.digitize(X[:, 0], [-0.5, 0.5]),
         "multilabel": (X[:, :3] > 0).astype(int)}[target]
    params = dict(hidden_layer_sizes=(6,), activation="tanh", solver="sgd", alpha=alpha,
                  momentum=0.0, batch_size=50, learning_rate_init=0.1, shuffle=False,
                  random_state=0)  # no momentum: the step depends on the weights alone
    ours, theirs = (MLPRegressor, neural_network.MLPRegressor) if target == "regression" \
        else (MLPClassifier, neural_network.MLPClassifier)
    ours, theirs = ours(**params), theirs(**params)
    classes = np.arange(3) if target == "multilabel" else np.unique(y)  # sklearn wants them
    extra = {} if target == "regression" else {"classes": classes}
    ours.partial_fit(X, y, **extra)  # first step: from our initialisation
    theirs.partial_fit(X, y, **extra)
    theirs.coefs_ = [W.copy() for W in ours.coefs_]  # the same weights on both sides
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]

    ours.partial_fit(X, y)
    theirs.partial_fit(X, y)
    for W_ours, W_theirs in zip(ours.coefs_, theirs.coefs_):
        np.testing.assert_allclose(W_ours, W_theirs, rtol=STEP_RTOL)
    if alpha == 0:
        for b_ours, b_theirs in zip(ours.intercepts_, theirs.intercepts_):
            np.testing.assert_allclose(b_ours, b_theirs, rtol=STEP_RTOL)
    assert ours.loss_curve_[-1] == pytest.approx(theirs.loss_curve_[-1], rel=1e-9) \
        or alpha > 0  # scikit-learn's loss includes the penalty, ours does not


def test_partial_fit_keeps_the_optimizer_state():
    """k partial_fit calls follow the trajectory of one fit of k epochs exactly.

    Adam's moments and step count carry over; were they reset each call, the bias
    correction would restart and the trajectories would part after the first epoch.
    """
    X, y = make_friedman1(n_samples=300, random_state=0)
    params = dict(hidden_layer_sizes=(16,), shuffle=False, random_state=0, batch_size=64)
    whole = _no_convergence_warning(MLPRegressor(max_iter=5, **params).fit, X, y)
    parts = MLPRegressor(**params)
    for _ in range(5):
        parts.partial_fit(X, y)
    # as scikit-learn's: n_iter_ counts the epochs of the last call, t_ every sample seen
    assert parts.n_iter_ == 1 and whole.n_iter_ == 5 and parts.t_ == whole.t_ == 5 * len(X)
    np.testing.assert_allclose(parts.loss_curve_, whole.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(parts.network_.params, whole.network_.params, rtol=1e-12)

    restarted = MLPRegressor(**params)
    restarted.partial_fit(X, y)
    restarted._optimizer.reset()
    restarted.partial_fit(X, y)
    assert not np.allclose(restarted.network_.params, parts.network_.params, rtol=1e-6) or \
        pytest.fail("resetting the optimizer state made no difference: the test is vacuous")


def test_partial_fit_classifier_needs_classes_first():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((8,), learning_rate_init=0.05, random_state=0)
    with pytest.raises(ValueError, match="classes must be given"):
        clf.partial_fit(X, y)
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])  # only class 0 seen yet
    assert list(clf.classes_) == [0, 1, 2] and clf.predict_proba(X).shape == (150, 3)
    for _ in range(100):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.9
    with pytest.raises(ValueError, match="not in classes_"):
        clf.partial_fit(X[:2], [0, 7])


def test_partial_fit_is_unavailable_for_lbfgs():
    assert not hasattr(MLPRegressor(solver="lbfgs"), "partial_fit")
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    assert hasattr(MLPClassifier(solver="sgd"), "partial_fit")


def test_early_stopping_stops_and_keeps_the_best_epoch(digits):
    X_train, _, y_train, _ = digits
    clf = MLPClassifier((64,), learning_rate_init=0.01, early_stopping=True,
                        n_iter_no_change=5, max_iter=500, random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ < 500  # stopped early, without a ConvergenceWarning
    assert len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_validation_score_ in clf.validation_scores_
    assert clf.best_validation_score_ >= 0.95  # accuracy on the held-out 10%
    assert clf.best_loss_ is None


def test_early_stopping_is_not_for_partial_fit():
    X, y = load_iris(return_X_y=True)
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True).partial_fit(X, y, classes=[0, 1, 2])


@pytest.mark.parametrize("labels", [["setosa", "versicolor", "virginica"], ["no", "no", "yes"]])
def test_string_labels(labels):
    X, y = load_iris(return_X_y=True)
    y_str = np.array(labels)[y]
    clf = MLPClassifier((10,), solver="lbfgs", max_iter=500, random_state=0).fit(X, y_str)
    np.testing.assert_array_equal(clf.classes_, np.unique(labels))
    predicted = clf.predict(X)
    assert predicted.dtype == y_str.dtype and set(predicted) <= set(labels)
    assert clf.score(X, y_str) > 0.95
    assert clf.out_activation_ == ("softmax" if len(set(labels)) == 3 else "logistic")


@pytest.mark.parametrize("n_classes", [2, 3])
def test_predict_proba_rows_sum_to_one(n_classes):
    X, y = load_iris(return_X_y=True)
    keep = y < n_classes
    clf = _no_convergence_warning(MLPClassifier((8,), max_iter=20, random_state=0).fit,
                                  X[keep], y[keep])
    P = clf.predict_proba(X)
    assert P.shape == (150, n_classes)
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_array_equal(clf.classes_[np.argmax(P, axis=1)], clf.predict(X))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), P, rtol=1e-12)


def test_multilabel_probabilities_are_per_label():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 5))
    Y = (X[:, :3] > 0).astype(int)
    clf = MLPClassifier((16,), solver="lbfgs", max_iter=500, random_state=0).fit(X, Y)
    P = clf.predict_proba(X)
    assert P.shape == (200, 3) and np.all((P >= 0) & (P <= 1))
    np.testing.assert_array_equal(clf.predict(X), (P > 0.5).astype(int))
    assert clf.score(X, Y) > 0.9  # subset accuracy


def test_matches_sklearns_predictions_at_the_same_weights():
    X, y = load_iris(return_X_y=True)
    ours = _no_convergence_warning(MLPClassifier((6,), "logistic", max_iter=10,
                                                 random_state=0).fit, X, y)
    theirs = _no_convergence_warning(neural_network.MLPClassifier((6,), "logistic", max_iter=1,
                                                                  random_state=0).fit, X, y)
    theirs.coefs_ = [W.copy() for W in ours.coefs_]
    theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


def test_float32():
    X, y = load_iris(return_X_y=True)
    clf = MLPClassifier((10,), solver="lbfgs", max_iter=500, dtype="float32",
                        random_state=0).fit(X, y)
    assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(X).dtype == np.float32
    assert clf.score(X, y) > 0.95


@pytest.mark.parametrize(("params", "error", "match"), [
    ({"activation": "softmax"}, ValueError, "activation must be one of"),
    ({"solver": "newton"}, ValueError, "solver must be one of"),
    ({"hidden_layer_sizes": (10, 0)}, ValueError, "hidden_layer_sizes must be"),
    ({"alpha": -1.0}, ValueError, r"alpha must be a finite number >= 0, got -1.0"),
    ({"learning_rate_init": 0.0}, ValueError, r"learning_rate_init must be a finite number > 0"),
    ({"max_iter": 2.5}, TypeError, "max_iter must be an int"),
    ({"max_iter": 2**64}, ValueError, r"max_iter must be <= 2\*\*63 - 1, got 18446744073709551616"),
    ({"batch_size": 2**64}, ValueError, r"batch_size must be <= 2\*\*63 - 1, got 1844674407370955"),
    ({"batch_size": "big"}, TypeError, "batch_size must be an int"),
    ({"validation_fraction": 1.0}, ValueError,
     r"validation_fraction must be a finite number in \[0, 1\)"),  # scikit-learn's range
    ({"beta_2": 1.0}, ValueError, r"beta_2 must be a finite number in \[0, 1\)"),
    ({"shuffle": "yes"}, TypeError, "shuffle must be True or False"),
    ({"dtype": "float16"}, ValueError, "dtype must be 'float64' or 'float32'"),
    ({"solver": "lm"}, ValueError, "solver='lm'.*needs a squared-error loss"),
])
def test_bad_parameters_name_themselves(params, error, match):
    X, y = load_iris(return_X_y=True)
    with pytest.raises(error, match=match):
        MLPClassifier(**params).fit(X, y)


@pytest.mark.filterwarnings("ignore:lm. Maximum iterations")  # tol=0: runs all max_iter
def test_lm_minimises_the_penalised_objective():
    # alpha's penalty, as weight_decay = alpha/(s·t) (s = 1/2 for squared_error) on the
    # weights only: at the end the gradient of L + λ/2·Σ||W_i||² is zero.
    X = np.linspace(-2, 2, 60).reshape(-1, 1)
    y = np.sin(2 * X[:, 0])
    alpha = 0.5
    reg = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", solver="lm", alpha=alpha,
                       max_iter=500, tol=0, random_state=0).fit(X, y)
    net = reg._net
    _, grad = net.loss_and_grad(X, y[:, None])
    lam = alpha / (0.5 * len(X))
    is_W = np.concatenate([np.r_[np.ones(W.size), np.zeros(b.size)]  # layout W_0, b_0, ...
                           for W, b in zip(net.weights, net.biases)])
    decay = lam * is_W * net.params  # scikit-learn's penalty: coefs_ only
    assert np.linalg.norm(grad + decay) < 1e-6 * np.linalg.norm(decay)
    # loss_curve_ is the objective LM lowers: it never rises (but for the last bits: Python
    # sums it in another order than the core's test of a step)
    curve = np.asarray(reg.loss_curve_)
    assert np.all(np.diff(curve) <= 1e-12 * curve[:-1])
    plain = MLPRegressor(hidden_layer_sizes=(6,), activation="tanh", solver="lm", alpha=0.0,
                         max_iter=500, tol=0, random_state=0).fit(X, y)
    assert net.params @ net.params < plain._net.params @ plain._net.params
    # a fitted lm estimator pickles, and predicts alike after
    import pickle
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(reg)).predict(X), reg.predict(X))
    # the default alpha (1e-4) trains as well as none
    assert MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", solver="lm", max_iter=200,
                        random_state=0).fit(X, y).score(X, y) > 0.999


def test_convergence_warning_when_max_iter_is_reached():
    X, y = load_iris(return_X_y=True)
    with pytest.warns(ConvergenceWarning, match=r"Maximum iterations \(3\) reached"):
        MLPClassifier((5,), max_iter=3, random_state=0).fit(X, y)


@pytest.mark.parametrize("sklearn_parameter, network_call, value", [
    ("alpha", lambda v: optim.SGD(weight_decay=v), -1.0),
    ("tol", lambda v: optim.SGD(weight_decay=v), float("nan")),
    ("learning_rate_init", lambda v: optim.SGD(lr=v), 0.0),
    ("shuffle", lambda v: optim.SGD(momentum=0.9, nesterov=v), "yes"),
    ("max_iter", lambda v: fastprop.set_num_threads(v), 2.5),
    ("max_iter", lambda v: fastprop.set_num_threads(v), 0),
    ("dtype", lambda v: fastprop.Network([2, 1], dtype=v), "float16"),
])
def test_parameters_are_checked_as_the_network_checks_them(sklearn_parameter, network_call,
                                                          value):
    X, y = load_iris(return_X_y=True)
    with pytest.raises((TypeError, ValueError)) as ours:
        MLPClassifier(**{sklearn_parameter: value}).fit(X, y)
    with pytest.raises((TypeError, ValueError)) as network:
        network_call(value)
    assert type(ours.value) is type(network.value)
    assert str(ours.value).split(" must ", 1)[1] == str(network.value).split(" must ", 1)[1]
