"""Gradient descent in the core actually learns."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_xor_converges_with_full_batch_descent(xor, dtype):
    X, Y = xor
    net = fastprop.Network([2, 4, 1], "sigmoid", dtype=dtype, seed=0, bias=False, loss="sse")
    history = net.fit(X, Y, epochs=5000, lr=0.5, optimizer="sgd")
    assert history.shape == (5000,)
    assert history[0] > 0.9  # E of the untrained network: it had something to learn
    assert history[-1] < 0.05
    assert np.all(np.diff(history[100:]) <= 1e-12)  # descent: E does not go up once settled
    np.testing.assert_array_equal(np.round(net.forward(X)), Y)


def test_sine_regression_reaches_stated_loss():
    rng = np.random.default_rng(0)
    X = rng.uniform(-np.pi, np.pi, size=(200, 1))
    Y = np.sin(X)
    net = fastprop.Network([1, 16, 1], "tanh", bias=True, seed=1, loss="sse")
    first = net.loss(X, Y) / len(X)
    history = net.fit(X, Y, epochs=3000, lr=0.0005, optimizer="sgd")
    assert first > 0.1
    assert history[-1] / len(X) < 1e-2  # mean squared error per sample, from about 0.49


def test_minibatch_sgd_learns(rng):
    X = rng.standard_normal((512, 5))
    Y = X @ rng.standard_normal((5, 2))
    net = fastprop.Network([5, 16, 2], "relu", bias=True, seed=3, loss="sse")
    history = net.fit(X, Y, epochs=30, lr=0.005, batch_size=32, seed=0, optimizer="sgd")
    assert history[-1] < 0.05 * history[0]
