"""σ and σ' in the core: exact, and finite for every finite z."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastprop
from fastprop import reference

from helpers import ACTIVATIONS, DTYPES

Z = np.array([-1000.0, -50.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 50.0, 1000.0])

EXACT = {
    "sigmoid": lambda z: 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z)),
    "tanh": math.tanh,
    "relu": lambda z: max(z, 0.0),
    "leaky_relu": lambda z: z if z >= 0 else 0.01 * z,
    "softplus": lambda z: max(z, 0.0) + math.log1p(math.exp(-abs(z))),
    "identity": lambda z: z,
}


def identity_probe(activation, dtype):
    """[1, 1, 1] network with W_0 = W_1 = 1: z_2 = σ(x), and the trace shows a_1 = σ(z_1)."""
    net = fastprop.Network([1, 1, 1], activation, dtype=dtype, seed=0, bias=False, loss="sse")
    net.params[:] = 1
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sigma_is_exact_and_finite(activation, dtype):
    net = identity_probe(activation, dtype)
    z = Z.astype(dtype)
    a = net.forward(z[:, np.newaxis])[:, 0]
    exact = np.array([EXACT[activation](float(v)) for v in z]).astype(dtype)
    assert np.all(np.isfinite(a))
    np.testing.assert_allclose(a, exact, rtol=4 * np.finfo(dtype).eps, atol=0)
    np.testing.assert_array_equal(net.trace(z[:, np.newaxis]).a[1][:, 0], a)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_sigma_prime_is_finite_and_matches_reference(activation, dtype):
    # With y = 0 and W = 1: E = σ(x)², so ∂E/∂W_1 = 2σ(x)·σ(x), ∂E/∂W_0 = 2σ(x)·σ'(x)·x.
    net = identity_probe(activation, dtype)
    for x in Z.astype(dtype):
        E, dW, _ = net.gradient([[x]], [[0]])
        assert np.isfinite(E) or abs(x) == 1000  # E = σ(x)² overflows only for huge outputs
        s = reference.sigma(activation, np.array([x], dtype=np.float64))[0]
        ds = reference.sigma_prime(activation, np.array([x], dtype=np.float64))[0]
        assert np.isfinite(dW[0][0, 0])
        np.testing.assert_allclose(dW[0][0, 0], 2 * s * ds * x, rtol=8 * np.finfo(dtype).eps,
                                   atol=np.finfo(dtype).tiny)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_reference_sigma_is_finite_at_extremes(activation):
    with np.errstate(over="raise", invalid="raise"):
        assert np.all(np.isfinite(reference.sigma(activation, Z)))
        assert np.all(np.isfinite(reference.sigma_prime(activation, Z)))
