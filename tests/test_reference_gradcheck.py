"""The reference against central finite differences of E, in float64."""

from __future__ import annotations

import numpy as np
import pytest

from fastprop import reference

from helpers import ACTIVATIONS

H = 1e-6  # central differences: truncation O(h²) ~ 1e-12, rounding O(eps·E/h) ~ 1e-10
FD_RTOL = 1e-6


def numeric_gradient(E, arrays):
    """∂E/∂(every entry of every array) by central differences, arrays perturbed in place."""
    grads = []
    for A in arrays:
        g = np.zeros_like(A)
        for k in np.ndindex(A.shape):
            saved = A[k]
            A[k] = saved + H
            E_plus = E()
            A[k] = saved - H
            E_minus = E()
            A[k] = saved
            g[k] = (E_plus - E_minus) / (2 * H)
        grads.append(g)
    return grads


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss", reference.LOSSES)
def test_reference_gradient_matches_finite_differences(activation, bias, loss):
    rng = np.random.default_rng(7)
    layers = [3, 5, 4, 2]
    W, b = reference.init_params(layers, activation, bias, seed=11)
    b = [rng.uniform(-0.5, 0.5, b_i.shape) for b_i in b]
    X = rng.standard_normal((6, layers[0]))
    Y = rng.standard_normal((6, layers[-1]))
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(layers[-1]), size=6)

    E, dE_dW, dE_db = reference.gradient(W, b, activation, X, Y, loss)
    numeric = numeric_gradient(lambda: reference.loss(W, b, activation, X, Y, loss), W + b)
    analytic = dE_dW + dE_db
    for g, g_num in zip(analytic, numeric):
        # A zero gradient would make the comparison empty: the test must have something to check.
        assert np.max(np.abs(g_num)) > 1e-3
        np.testing.assert_allclose(g, g_num, rtol=FD_RTOL, atol=FD_RTOL * np.max(np.abs(g_num)))
    assert E == pytest.approx(reference.loss(W, b, activation, X, Y, loss), rel=1e-15)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sigma_prime_matches_finite_differences(activation):
    z = np.linspace(-6, 6, 101) + 0.013  # off the kinks of relu and leaky_relu at 0
    numeric = (reference.sigma(activation, z + H) - reference.sigma(activation, z - H)) / (2 * H)
    np.testing.assert_allclose(reference.sigma_prime(activation, z), numeric, rtol=1e-7, atol=1e-9)
