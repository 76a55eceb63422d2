"""Helpers and tolerances shared by the tests: ``from helpers import assert_close, RTOL, ...``.

Fixtures (``rng``, ``xor``) and the hypothesis profiles live in conftest.py, which pytest
loads itself; everything a test imports by name lives here.
"""

from __future__ import annotations

import numpy as np

import fastprop
from fastprop import reference

__all__ = ["assert_close", "random_batch", "ref_params", "RTOL", "SIGINT_RAISES", "ACTIVATIONS",
           "DTYPES"]

# The core sums in a different order from the reference (batched matrix products instead of
# per-sample vectors), so the two agree up to rounding. Errors are measured against the
# largest entry of the compared array, so that entries that cancel to nearly zero do not
# demand an impossible relative accuracy.
#   float64: eps = 1.1e-16; sums of <= 64·100 terms through <= 5 layers stay far below 1e-10.
#   float32: eps = 6e-8; the same sums lose up to ~1e3 ulps in the worst case of
#            cancellation, so 1e-4 of the largest entry (about 1700 ulps) with an
#            elementwise 1e-4 relative term.
RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}

# The first line of a child Python that is to be sent SIGINT. A process started in the
# background by a non-interactive shell (`cmd &`) ignores SIGINT, its children inherit that,
# and Python then installs no KeyboardInterrupt handler at all: put it back first.
SIGINT_RAISES = "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
ACTIVATIONS = reference.ACTIVATIONS
DTYPES = ("float64", "float32")


def assert_close(actual, desired, rtol, what=""):
    """|actual − desired| <= rtol·(|desired| + max|desired|) elementwise, and same shape."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    scale = np.max(np.abs(desired), initial=0.0)
    error = np.abs(actual - desired)
    bound = rtol * (np.abs(desired) + scale) + np.finfo(np.float64).tiny
    worst = np.max(error / bound, initial=0.0)
    assert worst <= 1, f"{what}: max error {np.max(error, initial=0):.3e} exceeds tolerance " \
                       f"(scale {scale:.3e}, rtol {rtol:g}) by {worst:.2f}x"


def random_batch(rng, net, t):
    """X (t, l_0) and Y (t, l_n) of the network's dtype, standard normal."""
    X = rng.standard_normal((t, net.layers[0])).astype(net.dtype)
    Y = rng.standard_normal((t, net.layers[-1])).astype(net.dtype)
    return X, Y


def ref_params(net):
    """Copies of the network's parameters for the reference to work on."""
    return [W.copy() for W in net.weights], [b.copy() for b in net.biases]


def random_network(layers, activation, bias, dtype, loss="sse", seed=0):
    """A Network with parameters N(0, 1/l_i) and nonzero biases, so that every σ sees both
    signs and its tails (for comparing a network with its exported forms)."""
    net = fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=seed, loss=loss)
    rng = np.random.default_rng(seed)
    parts = []
    for l_in, l_out in zip(layers[:-1], layers[1:]):
        parts.append(rng.standard_normal(l_out * l_in) / np.sqrt(l_in))
        if bias:
            parts.append(rng.standard_normal(l_out))
    net.params = np.concatenate(parts)
    return net


def random_inputs(net, t=64, seed=1):
    """t rows of N(0, 4) inputs in the network's dtype."""
    return (np.random.default_rng(seed).standard_normal((t, net.layers[0])) * 2).astype(net.dtype)
