"""σ and σ' in the core: exact, and finite for every finite z."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastprop
from fastprop import _core
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


# The vector tanh (kernels/activations_simd.inc), read through the core's own pass. The
# portable build keeps std::tanh, whose accuracy is the C library's.
VECTOR_KERNELS = pytest.mark.skipif(_core.kernel_isa() == "portable",
                                    reason="the portable kernels use std::tanh")
ACTIVATION_PASS = {"float32": _core._activation_pass32, "float64": _core._activation_pass64}

# Measured bounds of the vector tanh against a correctly rounded tanh: float32 is faithful (every
# float32 in [0, 10] was checked; above, the result is ±1 exactly); float64 peaks at 1.33 ulps
# just above the cut at |z| = 0.625, where e^{−2|z|}'s error weighs most.
TANH_MAX_ULPS = {"float32": 1, "float64": 1.5}

SPECIALS = [0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, -5e-324, 1.4e-45, -1.4e-45,
            1e-300, 1.17e-38, -1.17e-38, 1e-4, 0.625, -0.625, 9.0, -9.0, 19.1, 44.0, -44.0,
            88.0, 400.0, -400.0, 1000.0, 3.4e38, -3.4e38, 1.7e308]


def specials(dtype):
    """SPECIALS in dtype (values beyond float32's range become ±inf there)."""
    with np.errstate(over="ignore"):
        return np.array(SPECIALS).astype(dtype)


def ordered(x):
    """Bit patterns as integers that order like the values (−0 and +0 both 0)."""
    i = x.view(np.int32 if x.dtype == np.float32 else np.int64).astype(np.int64)
    return np.where(i < 0, -(i & np.int64(np.iinfo(i.dtype).max)), i)


def float32_sweep(rng):
    """Every 2^9-th float32 bit pattern of each sign, random values of moderate size, SPECIALS."""
    step = np.arange(0, 0x7F800000, 1 << 9, dtype=np.uint32).view(np.float32)
    return np.concatenate([step, -step, rng.standard_normal(10_000).astype(np.float32) * 4,
                           specials(np.float32)])


@VECTOR_KERNELS
def test_vector_tanh_float32_is_within_one_ulp_of_the_rounded_tanh(rng):
    z = float32_sweep(rng)
    z = z[np.isfinite(z)]
    a, _ = _core._activation_pass32("tanh", z, False)
    exact = np.tanh(z.astype(np.float64)).astype(np.float32)  # error 2^-53 before rounding
    ulps = np.abs(ordered(a) - ordered(exact))
    assert ulps.max() <= TANH_MAX_ULPS["float32"], z[np.argmax(ulps)]
    assert np.count_nonzero(ulps) < 0.01 * len(z)  # mostly correctly rounded


@VECTOR_KERNELS
def test_vector_tanh_float64_is_within_its_bound_of_the_exact_tanh(rng):
    mpmath = pytest.importorskip("mpmath")
    z = np.concatenate([np.linspace(0.6, 0.7, 10_001), rng.uniform(-1, 1, 5000),
                        rng.uniform(-20, 20, 5000), np.exp(rng.uniform(-40, 3, 2000)),
                        specials(np.float64)])
    z = z[np.isfinite(z)]
    a, _ = _core._activation_pass64("tanh", z, False)
    with mpmath.workprec(160):
        ulps = [abs(mpmath.mpf(float(v)) - mpmath.tanh(mpmath.mpf(float(x)))) /
                np.spacing(abs(float(mpmath.tanh(mpmath.mpf(float(x))))))
                for v, x in zip(a, z)]
    ulps = np.array([float(u) for u in ulps])
    assert ulps.max() <= TANH_MAX_ULPS["float64"], z[np.argmax(ulps)]
    assert ulps.max() > 0.5  # a sample that reached the cut's worst case, so the bound is tested


@pytest.mark.parametrize("dtype", DTYPES)
def test_tanh_special_values_are_those_of_the_c_library(dtype):
    z = specials(dtype)
    a, prime = ACTIVATION_PASS[dtype]("tanh", z, True)
    expected = np.tanh(z)
    finite = ~np.isnan(z)
    np.testing.assert_array_equal(np.signbit(a[finite]), np.signbit(z[finite]))  # tanh(−0) = −0
    assert np.all(np.isnan(a[~finite])) and np.all(np.isnan(prime[~finite]))
    exact_cases = finite & ((np.abs(z) >= 20) | (np.abs(z) < 1e-4))  # ±1, ±0, z itself
    np.testing.assert_array_equal(a[exact_cases], expected[exact_cases])
    np.testing.assert_array_equal(prime[np.isinf(z)], 0)
    np.testing.assert_array_equal(prime[z == 0], 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_forward_pass_and_training_pass_give_the_same_sigma(activation, dtype, rng):
    # The forward-only pass skips e^{−2|z|} for vectors below the cut; the values must not move.
    for count in (1, 7, 16, 33, 1000):
        z = (rng.standard_normal(count) * rng.choice([0.1, 1, 30], count)).astype(dtype)
        a_forward, none = ACTIVATION_PASS[dtype](activation, z, False)
        a_train, prime = ACTIVATION_PASS[dtype](activation, z, True)
        assert none is None
        np.testing.assert_array_equal(a_forward, a_train)
        np.testing.assert_allclose(prime, reference.sigma_prime(activation, z.astype(np.float64)),
                                   rtol=8 * np.finfo(dtype).eps, atol=np.finfo(dtype).tiny)


def test_activation_pass_rejects_bad_input():
    with pytest.raises(ValueError, match="activation must be one of"):
        _core._activation_pass64("tan", np.zeros(3), False)
    with pytest.raises(ValueError, match="z must be one-dimensional, got 2"):
        _core._activation_pass64("tanh", np.zeros((3, 1)), False)
