"""A first fit with only default arguments converges on ordinary data, and the classic model
(no bias, E summed over samples, plain gradient descent) stays one explicit call away."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import fastprop
from fastprop import reference


def sin_data(t=500):
    x = np.linspace(-3, 3, t).reshape(-1, 1)
    return x, np.sin(x)


def test_the_defaults_are_bias_mean_squared_error_and_adam():
    net = fastprop.Network([1, 16, 1], "tanh", seed=0)
    assert net.bias is True and net.loss_name == "mse"
    fit = inspect.signature(fastprop.Network.fit).parameters
    assert fit["optimizer"].default == "adam" and fit["lr"].default is None


@pytest.mark.parametrize("target", ["sin", "cos+1"])
def test_a_first_fit_with_defaults_converges(target):
    # 500 rows of sin(x), and cos(x) + 1 whose offset needs the biases: the default step
    # does not grow with the rows, so nothing diverges, and 2000 epochs explain > 98% of the
    # target's variance.
    x, y = sin_data()
    if target == "cos+1":
        y = np.cos(x) + 1
    net = fastprop.Network([1, 16, 1], "tanh", seed=0)
    history = net.fit(x, y, 2000)
    assert np.all(np.isfinite(history))
    assert history[-1] < history[0] / 20
    residual = np.mean((net.predict(x) - y) ** 2)
    assert residual < 0.02 * np.var(y), (residual, np.var(y))


@pytest.mark.parametrize("t", [50, 500, 5000])
def test_the_default_first_step_does_not_grow_with_the_rows(t):
    # The same data repeated: the mean loss and its gradient, and so Adam's step, are the same
    # for any number of copies of the rows.
    x = np.linspace(-2, 3, 50).reshape(-1, 1)  # not symmetric: no gradient is 0 but for
    y = np.sin(x)                                # rounding, which Adam would amplify
    X, Y = np.tile(x, (t // 50, 1)), np.tile(y, (t // 50, 1))
    small, large = (fastprop.Network([1, 16, 1], "tanh", seed=0) for _ in range(2))
    small.fit(x, y, 5)
    large.fit(X, Y, 5)
    np.testing.assert_allclose(large.params, small.params, rtol=1e-9, atol=1e-12)


def test_the_classic_model_is_one_explicit_call_away(rng):
    # bias=False, loss="sse", optimizer="sgd": the model of fastprop.reference, step for step.
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 2))
    net = fastprop.Network([3, 5, 2], "tanh", bias=False, loss="sse", seed=3)
    W, b = [W.copy() for W in net.weights], []
    history = net.fit(X, Y, 10, lr=0.01, optimizer="sgd")
    expected = reference.fit(W, b, "tanh", X, Y, 10, 0.01)
    np.testing.assert_allclose(history, expected, rtol=1e-12)
    for W_core, W_ref in zip(net.weights, W):
        np.testing.assert_allclose(W_core, W_ref, rtol=1e-10, atol=1e-12)
    assert net.biases == []
