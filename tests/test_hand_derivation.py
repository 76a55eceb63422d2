"""The classic hand derivation for n = 3 and one sample equals the backward DP.

With numerator-layout Jacobians, ∂z_{i+1}/∂a_i = W_i and ∂a_i/∂z_i = diag(σ'(z_i)), so the
chain rule gives the row vector ∂E/∂z_{i+1} = ∂E/∂z_n · Π (W_j diag(σ'(z_j))) over the layers
above, and ∂E/∂W_i = (∂E/∂z_{i+1})ᵀ a_iᵀ.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastprop
from fastprop import reference

from helpers import ACTIVATIONS


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_chain_rule_by_hand_equals_backprop(activation):
    rng = np.random.default_rng(3)
    net = fastprop.Network([3, 4, 5, 2], activation, seed=8, bias=False, loss="sse")  # n = 3
    W = net.weights
    x = rng.standard_normal(3)
    y = rng.standard_normal(2)

    # Forward, by hand.
    a0 = x
    z1 = W[0] @ a0
    a1 = reference.sigma(activation, z1)
    z2 = W[1] @ a1
    a2 = reference.sigma(activation, z2)
    z3 = W[2] @ a2

    # Numerator-layout Jacobians, multiplied as written by hand.
    dE_dz3 = (-2 * (y - z3))[np.newaxis, :]                   # 1 × l_3
    dz3_da2, da2_dz2 = W[2], np.diag(reference.sigma_prime(activation, z2))
    dz2_da1, da1_dz1 = W[1], np.diag(reference.sigma_prime(activation, z1))
    dE_dz2 = dE_dz3 @ dz3_da2 @ da2_dz2                       # 1 × l_2
    dE_dz1 = dE_dz3 @ dz3_da2 @ da2_dz2 @ dz2_da1 @ da1_dz1   # 1 × l_1

    by_hand = [dE_dz1.T @ a0[np.newaxis, :],                  # (∂E/∂z_1)ᵀ a_0ᵀ
               dE_dz2.T @ a1[np.newaxis, :],
               dE_dz3.T @ a2[np.newaxis, :]]

    E, dW, _ = net.gradient(x[np.newaxis, :], y[np.newaxis, :])
    assert E == pytest.approx(np.sum((y - z3) ** 2), rel=1e-13)
    for i in range(3):
        assert dW[i].shape == W[i].shape
        assert np.max(np.abs(by_hand[i])) > 0
        np.testing.assert_allclose(dW[i], by_hand[i], rtol=1e-12, atol=1e-14)
