"""Network.predict and predict_proba, and the shapes of Y a user passes first: 1-D targets for
one output, class labels as floats with integral values."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop


def make_net(loss, l_n, **kwargs):
    return fastprop.Network([3, 5, l_n], "tanh", bias=True, seed=4, loss=loss, **kwargs)


@pytest.fixture
def X(rng):
    return rng.standard_normal((7, 3))


@pytest.mark.parametrize("loss", ["sse", "mse", "huber"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_of_a_regression_loss_is_z_n(X, loss, dtype):
    net = make_net(loss, 2, dtype=dtype)
    out = net.predict(X)
    assert out.dtype == net.dtype
    np.testing.assert_array_equal(out, net.forward(X))
    np.testing.assert_array_equal(net.predict(X[2]), net.forward(X)[2])


def test_predict_of_poisson_is_the_rate(X):
    net = make_net("poisson", 2)
    np.testing.assert_array_equal(net.predict(X), np.exp(net.forward(X)))


def test_predict_of_cross_entropy_is_the_most_probable_class(X):
    net = make_net("cross_entropy", 4)
    z = net.forward(X)
    classes = net.predict(X)
    assert classes.dtype == np.int64 and classes.shape == (7,)
    np.testing.assert_array_equal(classes, np.argmax(z, axis=1))
    np.testing.assert_array_equal(classes, np.argmax(net.predict_proba(X), axis=1))
    assert net.predict(X[3]) == classes[3]
    assert len(set(classes.tolist())) > 1  # the check above could have failed


def test_predict_of_binary_cross_entropy_is_each_outputs_label(X):
    net = make_net("binary_cross_entropy", 2)
    labels = net.predict(X)
    assert labels.dtype == np.int64 and labels.shape == (7, 2)
    np.testing.assert_array_equal(labels, (net.predict_proba(X) > 0.5).astype(int))
    assert 0 < labels.sum() < labels.size


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_predict_proba_of_cross_entropy_is_softmax(X, dtype):
    net = make_net("cross_entropy", 4, dtype=dtype)
    z = net.forward(X).astype(np.float64)
    expected = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    p = net.predict_proba(X)
    assert p.dtype == net.dtype and p.shape == (7, 4)
    np.testing.assert_allclose(p, expected, rtol=1e-6 if dtype == "float32" else 1e-14)
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(net.predict_proba(X[1]), p[1])


def test_predict_proba_of_binary_cross_entropy_is_the_sigmoid(X):
    net = make_net("binary_cross_entropy", 3)
    z = net.forward(X)
    np.testing.assert_allclose(net.predict_proba(X), 1 / (1 + np.exp(-z)), rtol=1e-14)


def test_predict_proba_does_not_overflow_for_large_logits():
    net = fastprop.Network([1, 2], loss="binary_cross_entropy", bias=False, seed=0)
    net.params = [1.0, -1.0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = net.predict_proba(np.array([[1000.0], [-1000.0]]))
    np.testing.assert_array_equal(p, [[1.0, 0.0], [0.0, 1.0]])
    net = fastprop.Network([1, 2], loss="cross_entropy", bias=False, seed=0)
    net.params = [1000.0, -1000.0]
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        np.testing.assert_array_equal(net.predict_proba(np.array([[1.0]])), [[1.0, 0.0]])


@pytest.mark.parametrize("loss", ["sse", "mse", "poisson", "huber"])
def test_predict_proba_of_a_regression_loss_is_refused(X, loss):
    net = make_net(loss, 2)
    with pytest.raises(ValueError, match=rf"predict_proba needs a classification loss .*"
                                         rf"this network's loss is '{loss}'"):
        net.predict_proba(X)


@pytest.mark.parametrize("loss", ["sse", "mse", "binary_cross_entropy", "poisson", "huber"])
def test_one_dimensional_y_for_a_single_output(rng, X, loss):
    net = make_net(loss, 1)
    y = rng.uniform(0, 1, 7).round() if loss == "binary_cross_entropy" else rng.uniform(0, 3, 7)
    assert net.loss(X, y) == net.loss(X, y.reshape(-1, 1))
    E, dW, _ = net.gradient(X, y)
    E2, dW2, _ = net.gradient(X, y[:, None])
    assert E == E2
    np.testing.assert_array_equal(dW[0], dW2[0])
    twin = make_net(loss, 1)
    net.fit(X, y, 3, 0.01, optimizer="sgd")
    twin.fit(X, y[:, None], 3, 0.01, optimizer="sgd")
    np.testing.assert_array_equal(net.params, twin.params)


def test_one_dimensional_y_for_several_outputs_is_refused(X):
    net = make_net("mse", 2)
    with pytest.raises(ValueError, match=r"Y must have shape \(t, 2\), got \(7,\)"):
        net.loss(X, np.zeros(7))


@pytest.mark.parametrize("shape", [(7,), (7, 1)])
def test_integral_float_labels_are_class_labels(rng, X, shape):
    net = make_net("cross_entropy", 4)
    labels = rng.integers(0, 4, 7)
    expected = net.loss(X, labels)
    assert net.loss(X, labels.astype(float).reshape(shape)) == expected
    assert net.loss(X, labels.astype(np.float32).reshape(shape)) == expected
    assert net.loss(X, labels.reshape(shape)) == expected
    one_hot = np.eye(4)[labels]
    assert net.loss(X, one_hot) == expected


def test_float_labels_with_fractions_say_what_is_expected(X):
    net = make_net("cross_entropy", 4)
    y = np.array([0, 1, 2.5, 3, 0, 1, 2])
    with pytest.raises(ValueError, match=r"Y for loss 'cross_entropy' must be class labels, "
                                         r"integers in \[0, 4\) of shape \(t,\), or target "
                                         r"probabilities of shape \(t, 4\); got shape \(7,\) "
                                         r"with the non-integral value 2\.5"):
        net.fit(X, y, 1)
    with pytest.raises(ValueError, match=r"non-integral value nan"):
        net.loss(X, np.where(y == 2.5, np.nan, y))


def test_float_labels_out_of_range_are_refused(X):
    net = make_net("cross_entropy", 4)
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 4\) for "
                                         r"l_n = 4 outputs, got values from 0.0 to 4.0"):
        net.loss(X, np.array([0, 1, 2, 4.0, 0, 1, 2]))


def test_a_fitted_classifier_predicts_its_training_labels(rng):
    X = rng.standard_normal((90, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)  # three classes
    net = fastprop.Network([2, 16, 3], "tanh", bias=True, seed=0, loss="cross_entropy")
    net.fit(X, y.astype(float), 300, 0.05, optimizer="adam")
    assert np.mean(net.predict(X) == y) > 0.9
