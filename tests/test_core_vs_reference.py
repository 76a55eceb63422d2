"""The C++ core against the NumPy reference over many random networks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastprop
from fastprop import reference

from helpers import ACTIVATIONS, DTYPES, RTOL, assert_close, random_batch, ref_params


@st.composite
def networks(draw, max_width=64, max_matrices=5, max_t=100):
    """A random network (1 to 5 weight matrices, widths 1 to 64) and a batch size."""
    n = draw(st.integers(1, max_matrices))
    layers = draw(st.lists(st.integers(1, max_width), min_size=n + 1, max_size=n + 1))
    activation = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=n - 1, max_size=n - 1))
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32))
    t = draw(st.integers(1, max_t))
    net = fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=seed, loss="sse")
    if bias:  # non-zero biases, so that b_i takes part in every comparison
        for b in net.biases:
            b[...] = np.random.default_rng(seed).uniform(-0.5, 0.5, b.shape)
    return net, t, seed


@given(networks())
def test_forward_matches_reference(case):
    net, t, seed = case
    X, _ = random_batch(np.random.default_rng(seed), net, t)
    W, b = ref_params(net)
    assert_close(net.forward(X), reference.forward(W, b, net.activations, X), RTOL[net.dtype],
                 "z_n")


@given(networks())
def test_loss_matches_reference(case):
    net, t, seed = case
    X, Y = random_batch(np.random.default_rng(seed), net, t)
    W, b = ref_params(net)
    assert_close(net.loss(X, Y), reference.loss(W, b, net.activations, X, Y), RTOL[net.dtype], "E")


@given(networks())
def test_gradient_matches_reference(case):
    net, t, seed = case
    X, Y = random_batch(np.random.default_rng(seed), net, t)
    W, b = ref_params(net)
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X, Y)
    rtol = RTOL[net.dtype]
    assert_close(E, E_ref, rtol, "E")
    assert len(dW) == len(dW_ref) == net.n
    for i in range(net.n):
        assert_close(dW[i], dW_ref[i], rtol, f"dE/dW_{i}")
    assert len(db) == len(db_ref) == (net.n if net.bias else 0)
    for i in range(len(db)):
        assert_close(db[i], db_ref[i], rtol, f"dE/db_{i}")


@given(networks())
def test_step_matches_reference(case):
    net, t, seed = case
    X, Y = random_batch(np.random.default_rng(seed), net, t)
    W, b = ref_params(net)
    lr = 0.01 / t
    E = net.step(X, Y, lr)
    E_ref = reference.step(W, b, net.activations, X, Y, lr)
    assert_close(E, E_ref, RTOL[net.dtype], "E before the step")
    for i in range(net.n):
        assert_close(net.weights[i], W[i], RTOL[net.dtype], f"W_{i} after the step")
    for i in range(len(b)):
        assert_close(net.biases[i], b[i], RTOL[net.dtype], f"b_{i} after the step")


# Over 100 epochs the rounding differences of each step feed into the next, so the float32
# trajectories drift apart further than one evaluation: 1e-3 of the largest loss.
FIT_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}


@given(networks(max_width=16, max_matrices=4, max_t=20))
def test_fit_trajectory_matches_reference(case):
    net, t, seed = case
    X, Y = random_batch(np.random.default_rng(seed), net, t)
    W, b = ref_params(net)
    lr = 0.01 / t
    history = net.fit(X, Y, epochs=100, lr=lr, optimizer="sgd")
    history_ref = reference.fit(W, b, net.activations, X, Y, epochs=100, lr=lr)
    assert_close(history, history_ref, FIT_RTOL[net.dtype], "E per epoch")
    for i in range(net.n):
        assert_close(net.weights[i], W[i], FIT_RTOL[net.dtype], f"W_{i} after fit")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batch_size, shuffle", [(3, False), (4, True), (7, True)])
def test_minibatch_fit_matches_reference(rng, dtype, batch_size, shuffle):
    net = fastprop.Network([3, 5, 2], "tanh", bias=True, dtype=dtype, seed=3, loss="sse")
    X, Y = random_batch(rng, net, 10)
    W, b = ref_params(net)
    history = net.fit(X, Y, epochs=5, lr=0.01, batch_size=batch_size, shuffle=shuffle, seed=9, optimizer="sgd")
    history_ref = reference.fit(W, b, net.activations, X, Y, epochs=5, lr=0.01,
                                batch_size=batch_size, shuffle=shuffle, seed=9)
    assert_close(history, history_ref, FIT_RTOL[net.dtype], "E per epoch")
    for i in range(net.n):
        assert_close(net.weights[i], W[i], FIT_RTOL[net.dtype], f"W_{i}")


def test_minibatch_fit_equals_manual_steps(rng):
    net = fastprop.Network([4, 6, 3], "relu", bias=True, seed=1, loss="sse")
    twin = fastprop.Network([4, 6, 3], "relu", bias=True, seed=1, loss="sse")
    X, Y = random_batch(rng, net, 11)
    history = net.fit(X, Y, epochs=3, lr=0.02, batch_size=4, shuffle=False, optimizer="sgd")
    manual = []
    for _ in range(3):
        manual.append(sum(twin.step(X[r:r + 4], Y[r:r + 4], 0.02) for r in range(0, 11, 4)))
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_allclose(history, manual, rtol=1e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_init_equals_reference_bit_for_bit(dtype, activation, bias):
    net = fastprop.Network([5, 7, 3, 2], activation, bias=bias, dtype=dtype, seed=42, loss="sse")
    W, b = reference.init_params(net.layers, activation, bias, dtype, seed=42)
    for i in range(net.n):
        np.testing.assert_array_equal(net.weights[i], W[i])
    for i in range(len(b)):
        np.testing.assert_array_equal(net.biases[i], b[i])


def test_trace_matches_reference(rng):
    net = fastprop.Network([3, 4, 5, 2], ["tanh", "softplus"], bias=True, seed=0, loss="sse")
    X, _ = random_batch(rng, net, 6)
    W, b = ref_params(net)
    trace = net.trace(X)
    assert trace.z[0] is None and trace.a[net.n] is None
    np.testing.assert_array_equal(trace.a[0], X)
    for s in range(len(X)):
        z, a = reference.forward_trace(W, b, net.activations, X[s])
        for i in range(1, net.n + 1):
            assert_close(trace.z[i][s], z[i], 1e-12, f"z_{i}")
        for i in range(1, net.n):
            assert_close(trace.a[i][s], a[i], 1e-12, f"a_{i}")
    np.testing.assert_array_equal(trace.z[net.n], net.forward(X))


def assert_gradient_matches_reference(net, X, Y, Y_ref=None):
    """net.gradient(X, Y) against the reference's, which takes Y_ref (default Y) as targets."""
    W, b = ref_params(net)
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X,
                                               Y if Y_ref is None else Y_ref, net.loss_name)
    assert_close(E, E_ref, RTOL[net.dtype], "E")
    for i in range(net.n):
        assert_close(dW[i], dW_ref[i], RTOL[net.dtype], f"dE/dW_{i}")
        assert_close(db[i], db_ref[i], RTOL[net.dtype], f"dE/db_{i}")


@pytest.mark.parametrize("loss", ["mse", "cross_entropy"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_other_losses_match_reference(rng, loss, dtype):
    net = fastprop.Network([4, 8, 3], "tanh", bias=True, dtype=dtype, seed=5, loss=loss)
    X, Y = random_batch(rng, net, 9)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(3), size=9).astype(dtype)
    assert_gradient_matches_reference(net, X, Y)


def test_large_batch_runs_in_chunks_with_the_same_result(rng):
    # 20,000 rows exceed the workspace's chunk for this layout, so the core splits the batch;
    # the sum over samples must not change beyond rounding.
    net = fastprop.Network([8, 300, 300, 4], "relu", bias=True, seed=2, loss="sse")
    X, Y = random_batch(rng, net, 20000)
    E, dW, _ = net.gradient(X, Y)
    parts = [net.gradient(X[r:r + 5000], Y[r:r + 5000]) for r in range(0, 20000, 5000)]
    assert_close(E, sum(p[0] for p in parts), 1e-12, "E")
    for i in range(net.n):
        assert_close(dW[i], sum(p[1][i] for p in parts), 1e-10, f"dE/dW_{i}")
    np.testing.assert_array_equal(net.forward(X)[-5000:], net.forward(X[-5000:]))


def test_fit_on_a_batch_of_several_chunks_is_one_gradient_step(rng):
    # The same 20,000 rows as one full batch of fit: chunks as in gradient() (the table's
    # memory bounds them), their parts of ∂E/∂params added, then one update.
    net = fastprop.Network([8, 300, 300, 4], "relu", bias=True, seed=2, loss="sse")
    X, Y = random_batch(rng, net, 20000)
    E, g = net.loss_and_grad(X, Y)
    expected = net.params - 1e-6 * g
    history = net.fit(X, Y, epochs=1, lr=1e-6, optimizer="sgd")
    assert history[0] == E
    np.testing.assert_array_equal(net.params, expected)


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
@pytest.mark.parametrize("t", [16, 33, 101])
def test_batch_split_in_halves_matches_reference(rng, loss, t):
    # Small layers on a few dozen rows: the core runs the batch as two halves (two threads),
    # each with its own table and gradient, and sums them; unequal halves for odd t.
    net = fastprop.Network([64, 48, 32, 5], "sigmoid", bias=True, seed=4, loss=loss)
    X, Y = random_batch(rng, net, t)
    if loss == "cross_entropy":  # labels for the core, their one-hot rows for the reference
        labels = rng.integers(0, 5, size=t)
        assert_gradient_matches_reference(net, X, labels, np.eye(5)[labels])
    else:
        assert_gradient_matches_reference(net, X, Y)
