"""Network.loss_and_grad, the door to outside optimisers, with scipy.optimize.

Checked: (E, ∂E/∂params) equals net.loss and net.gradient flattened in the layout of
net.params; with ``params`` given it evaluates there and leaves the network's parameters
untouched; scipy's check_grad agrees with it; and scipy.optimize.minimize with L-BFGS-B
trains a small network from it.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastprop

from helpers import DTYPES, RTOL, assert_close, random_batch

scipy_optimize = pytest.importorskip("scipy.optimize")

LOSSES = ("sse", "mse", "cross_entropy", "binary_cross_entropy")
# check_grad returns the 2-norm of (analytic − forward differences with step √eps ≈ 1.5e-8):
# truncation ~step·|E''| and rounding ~eps·|E|/step, about 1e-6 per entry here; relative to
# the gradient's norm, 1e-5 separates rounding from a wrong entry.
CHECK_GRAD_RTOL = 1e-5


# ---------------------------------------------------------------------- helpers
def make_net(loss="sse", dtype="float64", layers=(3, 6, 4), seed=5):
    net = fastprop.Network(list(layers), "tanh", bias=True, dtype=dtype, seed=seed, loss=loss)
    bias_rng = np.random.default_rng(seed)
    for b in net.biases:
        b[...] = bias_rng.uniform(-0.5, 0.5, b.shape)
    return net


def batch_for(rng, net, t=12):
    """X and targets that suit the network's loss."""
    X, Y = random_batch(rng, net, t)
    if net.loss_name == "cross_entropy":
        Y = rng.dirichlet(np.ones(net.layers[-1]), size=t).astype(net.dtype)
    elif net.loss_name == "binary_cross_entropy":
        Y = rng.uniform(0, 1, Y.shape).astype(net.dtype)
    return X, Y


def flatten(dW, db):
    """dW, db in the layout of net.params: W_0, b_0, W_1, b_1, ..."""
    parts = []
    for i in range(len(dW)):
        parts.append(dW[i].ravel())
        if db:
            parts.append(db[i])
    return np.concatenate(parts)


# ---------------------------------------------------------------------- loss_and_grad
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_loss_and_grad_equals_gradient_flattened(rng, loss, dtype):
    net = make_net(loss, dtype)
    X, Y = batch_for(rng, net)
    E, grad = net.loss_and_grad(X, Y)
    E_ref, dW, db = net.gradient(X, Y)
    assert isinstance(E, float) and E == E_ref
    assert grad.shape == (net.n_params,) and grad.dtype == net.dtype
    np.testing.assert_array_equal(grad, flatten(dW, db))


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_and_grad_at_other_params_leaves_the_network_alone(rng, dtype):
    net, twin = make_net(dtype=dtype), make_net(dtype=dtype, seed=6)
    X, Y = batch_for(rng, net)
    before = net.params.copy()
    E, grad = net.loss_and_grad(X, Y, twin.params.astype(np.float64))  # converted to the dtype
    np.testing.assert_array_equal(net.params, before)
    E_twin, grad_twin = twin.loss_and_grad(X, Y)
    assert E == E_twin
    np.testing.assert_array_equal(grad, grad_twin)
    assert E != net.loss(X, Y)  # it really was evaluated elsewhere


def test_loss_and_grad_at_own_params_equals_without(rng):
    net = make_net()
    X, Y = batch_for(rng, net)
    E, grad = net.loss_and_grad(X, Y)
    E_p, grad_p = net.loss_and_grad(X, Y, net.params)  # the very buffer
    assert E == E_p
    np.testing.assert_array_equal(grad, grad_p)


def test_loss_and_grad_returns_a_fresh_array(rng):
    net = make_net()
    X, Y = batch_for(rng, net)
    _, grad = net.loss_and_grad(X, Y)
    kept = grad.copy()
    net.loss_and_grad(X[:3], Y[:3])
    net.step(X, Y, 0.01)
    np.testing.assert_array_equal(grad, kept)
    assert not np.shares_memory(grad, net.params)


@pytest.mark.parametrize("shape", [(5,), (1, 64), (64, 1)], ids=str)
def test_loss_and_grad_with_params_of_the_wrong_shape_refused(rng, shape):
    net = make_net()  # 3·6 + 6 + 6·4 + 4 = 52 parameters
    X, Y = batch_for(rng, net)
    before = net.params.copy()
    with pytest.raises(ValueError, match=rf"params must have shape \(52,\), got "
                                         rf"\({shape[0]},{' ' + str(shape[1]) if len(shape) > 1 else ''}\)"):
        net.loss_and_grad(X, Y, np.zeros(shape))
    np.testing.assert_array_equal(net.params, before)


# ---------------------------------------------------------------------- scipy
@pytest.mark.parametrize("loss", LOSSES)
def test_scipy_check_grad_agrees(rng, loss):
    net = make_net(loss)
    X, Y = batch_for(rng, net)
    p0 = net.params.copy()
    error = scipy_optimize.check_grad(lambda p: net.loss_and_grad(X, Y, p)[0],
                                      lambda p: net.loss_and_grad(X, Y, p)[1], p0)
    norm = np.linalg.norm(net.loss_and_grad(X, Y)[1])
    assert norm > 1e-3, "the gradient is near zero: the check would be empty"
    assert error <= CHECK_GRAD_RTOL * norm, f"check_grad error {error:.3g}, |grad| {norm:.3g}"
    np.testing.assert_array_equal(net.params, p0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_scipy_lbfgs_trains_a_small_network(rng, dtype):
    # y = 4·x_1·x_2 on 32 points with 6 hidden tanh units. Measured: E goes from 71.4 to
    # 1.5e-3 (float64) and 7.8e-4 (float32) in 500 L-BFGS-B iterations, where 500 full-batch
    # Adam epochs (lr 0.01) reach 0.21; asking for a 1e-4 reduction leaves a margin of ~5.
    X = rng.uniform(-1, 1, (32, 2))
    Y = (X[:, :1] * X[:, 1:]) * 4
    net = fastprop.Network([2, 6, 1], "tanh", bias=True, dtype=dtype, seed=1, loss="sse")
    E_start = net.loss(X, Y)
    result = scipy_optimize.minimize(lambda p: net.loss_and_grad(X, Y, p), net.params.copy(),
                                     jac=True, method="L-BFGS-B", options={"maxiter": 500})
    net.params = result.x
    E_end = net.loss(X, Y)
    assert E_start > 50
    assert E_end < 1e-4 * E_start, f"L-BFGS-B went from {E_start:.4g} to {E_end:.4g}"
    assert_close(E_end, result.fun, RTOL[net.dtype], "E at scipy's solution")
