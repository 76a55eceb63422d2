"""Accuracy of the core's elementary functions and of its sums over very large batches.

What is proven, in float32 and float64, against exact values (mpmath at 200 bits when it is
installed, else NumPy's extended ``longdouble``, which suffices for float32 and, on x86-64, for
float64):

* σ = sigmoid and softplus, read back as a_1 = σ(z_1) from ``net.trace`` on a [1, 1, 1]
  network with W = 1 (so z_1 = x exactly), are within SIGMA_ULPS ulps of the exact value and
  finite on a grid of |z| up to 1e4;
* the "cross_entropy" loss of one sample on a [k, k] network with W_0 = I and no bias (so
  z_n = x exactly) is −log softmax(z)[label] within LOG_SOFTMAX_ULPS ulps, for a label that is
  not the largest logit and for one that is, and finite for |z| up to 1e4;
* its gradient w.r.t. z_n (read exactly as ∂E/∂b_0 = δ_1 on the same network with a zero bias)
  is softmax(z) within SOFTMAX_ULPS ulps off the label, and softmax(z)_label − 1 within
  LABEL_DELTA_EPS·eps absolutely;
* on 10^6 samples a float32 network's loss is within LOSS_RTOL of its float64 twin's (the core
  accumulates E in double, chunk by chunk), and its gradient within GRAD_RTOL.

Measured figures are printed (``pytest -s``).
"""

from __future__ import annotations

import numpy as np
import pytest

import fastprop

from helpers import DTYPES, assert_close

try:
    import mpmath
except ImportError:  # pragma: no cover - depends on the environment
    mpmath = None
else:
    mpmath.mp.prec = 200

LONGDOUBLE_SUFFICES = np.finfo(np.longdouble).nmant >= 63  # x86-64 extended precision
needs_exact_float64 = pytest.mark.skipif(
    mpmath is None and not LONGDOUBLE_SUFFICES,
    reason="neither mpmath nor an extended longdouble for exact float64 references")

# sigmoid and softplus: libm's exp/log1p are within 1 ulp; the formula adds one rounding in
# 1 + e, one in the division or the sum, and the SIMD path's exp may lose one more.
SIGMA_ULPS = 4
# −log softmax = (max z − z_label) + log Σ e^{z_j − max z}: one exp per term (1 ulp), a sum, a
# log (1 ulp), then the two parts added: a few roundings that never cancel, so 4 ulps.
LOG_SOFTMAX_ULPS = 4
# softmax_j = e^{z_j − max z} / Σ: an exp, a subtraction that is exact or rounds once, a division.
SOFTMAX_ULPS = 4
# δ_label = softmax_label − 1 suffers the cancellation of its own formula: absolute error of a
# few ulps of 1 is all that softmax − p can promise (it is what torch computes, too).
LABEL_DELTA_EPS = 4
Z_MAX = 1e4

# The core sums E in double: the only float32 error left is each sample's own forward pass,
# whose independent roundings (~1e-7 relative) average out over 10^6 samples (measured: 4e-11
# to 3e-9). A float32 running sum of the same 10^6 terms errs by 5e-6 (checked below), so 1e-6
# separates the two.
LOSS_RTOL = 1e-6
# Gradients are summed in float32 by the matrix products (chunks of <= 8192 rows, added
# together): the helpers' float32 tolerance (1e-4 of the largest entry), made for 100-row
# batches, must still hold for 10^6 rows. Measured: <= 2.1e-5 on this machine.
GRAD_RTOL = 1e-4
BIG_BATCH = 10**6


# ---------------------------------------------------------------------- exact references
def _exact(name, z):
    """The exact value of an elementary function at the float z (an mpf or a longdouble)."""
    if mpmath is not None:
        x = mpmath.mpf(float(z))
        if name == "sigmoid":
            return 1 / (1 + mpmath.exp(-x))
        if name == "softplus":
            return mpmath.log1p(mpmath.exp(x))
        raise ValueError(name)
    x = np.longdouble(float(z))
    e = np.exp(-abs(x))
    if name == "sigmoid":
        return 1 / (1 + e) if x >= 0 else e / (1 + e)
    if name == "softplus":
        return max(x, np.longdouble(0)) + np.log1p(e)
    raise ValueError(name)


def _exact_log_softmax(z, j):
    """log softmax(z)_j, exactly (z: float values)."""
    if mpmath is not None:  # −log Σ_k e^{x_k − x_j}, as log1p: exact also when it is tiny
        x = [mpmath.mpf(float(v)) for v in z]
        return -mpmath.log1p(mpmath.fsum(mpmath.exp(v - x[j]) for k, v in enumerate(x) if k != j))
    # The same log1p form in extended precision: log of a sum near 1 would lose every digit
    # of a result near 0 (the label's logit the largest by far).
    x = np.asarray(z, dtype=np.longdouble)
    m = x.max()
    if x[j] == m:
        return -np.log1p(np.sum(np.exp(np.delete(x, j) - m)))
    return x[j] - m - np.log(np.sum(np.exp(x - m)))


def _exact_softmax(z, j):
    if mpmath is not None:
        return mpmath.exp(_exact_log_softmax(z, j))
    return np.exp(_exact_log_softmax(z, j))


def ulps(actual, exact, dtype):
    """|actual − exact| in units of the spacing of dtype at the exact value."""
    if mpmath is not None and isinstance(exact, mpmath.mpf):
        spacing = np.spacing(dtype.type(abs(float(exact))))
        return float(abs(mpmath.mpf(float(actual)) - exact) / mpmath.mpf(float(spacing)))
    spacing = np.spacing(dtype.type(abs(float(exact))))
    return float(abs(np.longdouble(float(actual)) - exact) / np.longdouble(float(spacing)))


def z_grid(dtype):
    """Logits from ±1e-8 to ±1e4, log-spaced, with 0 and a dense sweep of [−40, 40]."""
    mags = np.logspace(-8, 4, 241)
    sweep = np.linspace(-40, 40, 321)
    return np.unique(np.concatenate([-mags, [0.0], mags, sweep]).astype(dtype))


def skip_float64_without_exact(dtype):
    if dtype == "float64" and mpmath is None and not LONGDOUBLE_SUFFICES:
        pytest.skip("no exact float64 reference here")


# ---------------------------------------------------------------------- σ through trace
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "softplus"])
def test_hidden_activation_is_exact_to_a_few_ulps(activation, dtype):
    skip_float64_without_exact(dtype)
    dtype = np.dtype(dtype)
    net = fastprop.Network([1, 1, 1], activation, dtype=dtype, seed=0, bias=False, loss="sse")
    net.params[:] = 1
    z = z_grid(dtype)
    a = net.trace(z[:, np.newaxis]).a[1][:, 0]
    assert np.all(np.isfinite(a)), f"non-finite σ at z = {z[~np.isfinite(a)]}"
    errors = np.array([ulps(v, _exact(activation, zz), dtype) for v, zz in zip(a, z)])
    worst = int(np.argmax(errors))
    print(f"\n{activation} ({dtype}): max {errors[worst]:.2f} ulps at z = {z[worst]!r}")
    assert errors[worst] <= SIGMA_ULPS, \
        f"{activation}({z[worst]!r}) = {a[worst]!r} is {errors[worst]:.1f} ulps off"


# ---------------------------------------------------------------------- softmax, log-softmax
def identity_classifier(k, dtype, bias):
    """[k, k] with W_0 = I (and b_0 = 0): z_n = x exactly, loss cross_entropy."""
    net = fastprop.Network([k, k], dtype=dtype, bias=bias, loss="cross_entropy", seed=0)
    net.params[:] = 0
    net.weights[0][...] = np.eye(k)
    return net


def logit_cases(dtype, label_is_max, seed=0):
    """(z, label) pairs: k in 2, 3, 10, scales from 1e-3 to Z_MAX, label the largest logit or
    not; in the latter case the largest logit is at most ~Z_MAX above the label."""
    rng = np.random.default_rng(seed)
    cases = []
    for k in (2, 3, 10):
        for scale in (1e-3, 1.0, 5.0, 30.0, 100.0, 1e3, Z_MAX):
            for _ in range(6):
                z = (rng.uniform(-1, 1, k) * scale).astype(dtype)
                if np.unique(z).size < k:
                    continue
                order = np.argsort(z)
                label = int(order[-1]) if label_is_max else int(rng.choice(order[:-1]))
                cases.append((z, label))
    return cases


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("label_is_max", [
    False, True],
    ids=["label_below_max", "label_is_max"])
def test_cross_entropy_is_minus_log_softmax_to_a_few_ulps(dtype, label_is_max):
    skip_float64_without_exact(dtype)
    dtype = np.dtype(dtype)
    worst = (0.0, None)
    for z, label in logit_cases(dtype, label_is_max):
        net = identity_classifier(len(z), dtype, bias=False)
        E = net.loss(z[np.newaxis, :], np.array([label]))
        assert np.isfinite(E), f"E not finite for z = {z!r}"
        error = ulps(E, -_exact_log_softmax(z, label), dtype)
        if error > worst[0]:
            worst = (error, (z, label, E))
    print(f"\n-log softmax ({dtype}, label {'is' if label_is_max else 'below'} max): "
          f"max {worst[0]:.2f} ulps" + (f" at z = {worst[1][0]!r}, label {worst[1][1]}"
                                         if worst[1] else ""))
    assert worst[0] <= LOG_SOFTMAX_ULPS, \
        f"E = {worst[1][2]!r} for z = {worst[1][0]!r}, label {worst[1][1]}: {worst[0]:.3g} ulps off"


def softmax_errors(dtype):
    """For every case and output j: (z, label, j, δ_j, exact softmax_j) from ∂E/∂b_0 = δ_1,
    which is ∂E/∂z_n for one sample."""
    out = []
    for z, label in logit_cases(dtype, False) + logit_cases(dtype, True, seed=1):
        net = identity_classifier(len(z), dtype, bias=True)
        _, _, db = net.gradient(z[np.newaxis, :], np.array([label]))
        assert np.all(np.isfinite(db[0])), f"δ not finite for z = {z!r}"
        out += [(z, label, j, d, _exact_softmax(z, j)) for j, d in enumerate(db[0])]
    return out


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_off_the_label_is_exact_to_a_few_ulps(dtype):
    skip_float64_without_exact(dtype)
    dtype = np.dtype(dtype)
    worst = max(((ulps(d, exact, dtype), z, j, d) for z, label, j, d, exact in softmax_errors(dtype)
                 if j != label), key=lambda case: case[0])
    print(f"\nsoftmax ({dtype}) off the label: max {worst[0]:.2f} ulps at z = {worst[1]!r}, "
          f"j = {worst[2]}")
    assert worst[0] <= SOFTMAX_ULPS, \
        f"softmax({worst[1]!r})[{worst[2]}] = {worst[3]!r} is {worst[0]:.1f} ulps off"


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_off_the_label_errs_no_more_than_the_rounding_of_its_argument(dtype):
    """The weaker promise of softmax_j = e^{z_j − max z} / Σ in working precision: z_j − max z
    is rounded (relative error <= eps/2), which e^{...} turns into a relative error of up to
    |z_j − max z|·eps/2, i.e. up to |z_j − max z| ulps of the result; SOFTMAX_ULPS on top."""
    skip_float64_without_exact(dtype)
    dtype = np.dtype(dtype)
    for z, label, j, d, exact in softmax_errors(dtype):
        if j == label:
            continue
        allowed = SOFTMAX_ULPS + abs(float(z[j]) - float(z.max()))
        error = ulps(d, exact, dtype)
        assert error <= allowed, \
            f"softmax({z!r})[{j}] = {d!r} is {error:.1f} ulps off, more than {allowed:.1f}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_softmax_minus_one_at_the_label_is_exact_to_a_few_eps(dtype):
    skip_float64_without_exact(dtype)
    dtype = np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    worst = 0.0
    for z, label, j, d, exact in softmax_errors(dtype):
        if j != label:
            continue
        error = abs(float(d) - float(exact - 1)) / eps
        assert error <= LABEL_DELTA_EPS, \
            f"softmax − 1 at the label of {z!r} = {d!r}: {error:.1f} eps off"
        worst = max(worst, error)
    print(f"\nsoftmax − 1 ({dtype}) at the label: max {worst:.2f} eps off")


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_finite_for_extreme_logits(dtype):
    net = identity_classifier(3, dtype, bias=True)
    Z = np.array([[Z_MAX, -Z_MAX, 0], [-Z_MAX, -Z_MAX, -Z_MAX], [Z_MAX, Z_MAX, Z_MAX],
                  [-Z_MAX, Z_MAX, -Z_MAX]], dtype=dtype)
    labels = np.array([1, 0, 2, 0])
    E, _, db = net.gradient(Z, labels)
    # Mean over 4 samples of −log softmax: samples 0 and 3 each contribute 2e4, 1 and 2 log 3.
    assert np.isfinite(E) and np.all(np.isfinite(db[0]))
    np.testing.assert_allclose(E, (2 * Z_MAX * 2 + 2 * np.log(3)) / 4, rtol=4 * np.finfo(dtype).eps)


# ---------------------------------------------------------------------- big batches
def twins(loss, seed=1):
    """A float32 network and a float64 one with the same (float32-representable) parameters."""
    n32 = fastprop.Network([8, 16, 4], "sigmoid", bias=True, dtype="float32", loss=loss, seed=seed)
    n64 = fastprop.Network([8, 16, 4], "sigmoid", bias=True, dtype="float64", loss=loss, seed=seed)
    n64.params[:] = n32.params
    return n32, n64


def big_batch(loss, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((BIG_BATCH, 8), dtype=np.float32)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(4), BIG_BATCH).astype(np.float32)
    else:
        Y = rng.standard_normal((BIG_BATCH, 4), dtype=np.float32)
    return X, Y


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
def test_float32_loss_over_a_million_samples_matches_float64(loss):
    n32, n64 = twins(loss)
    X, Y = big_batch(loss)
    E32 = n32.loss(X, Y)
    E64 = n64.loss(X.astype(np.float64), Y.astype(np.float64))
    error = abs(E32 - E64) / abs(E64)
    print(f"\n{loss} over {BIG_BATCH:,} samples: float32 E off float64 by {error:.2e} (relative)")
    assert error < LOSS_RTOL


def test_a_float32_running_sum_would_fail_the_loss_bound():
    """Calibration of LOSS_RTOL: summing the same per-sample errors in float32, one after the
    other, errs by more than the bound (5e-6 for this seeded data), so the bound does test
    the double accumulation."""
    n32, n64 = twins("sse")
    X, Y = big_batch("sse")
    residual = Y - n32.forward(X)
    terms = np.sum(residual.astype(np.float64) ** 2, axis=1)
    running = np.cumsum(terms.astype(np.float32), dtype=np.float32)[-1]  # sequential float32
    exact = np.sum(terms)
    assert abs(running - exact) / exact > LOSS_RTOL


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
def test_float32_gradient_over_a_million_samples_matches_float64(loss):
    n32, n64 = twins(loss)
    X, Y = big_batch(loss)
    _, g32 = n32.loss_and_grad(X, Y)
    _, g64 = n64.loss_and_grad(X.astype(np.float64), Y.astype(np.float64))
    error = np.max(np.abs(g32 - g64)) / np.max(np.abs(g64))
    print(f"\n{loss} over {BIG_BATCH:,} samples: float32 gradient off float64 by {error:.2e} "
          f"of its largest entry")
    assert_close(g32, g64, GRAD_RTOL, f"float32 gradient of {loss} over {BIG_BATCH} samples")
