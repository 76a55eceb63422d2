"""Sample weights in Network.loss, gradient, loss_and_grad and fit: a weight scales its
sample's term of E, and a mean loss divides by the total weight."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import RTOL, assert_close, ref_params

import fastprop
from fastprop import reference

LOSSES = ("sse", "mse", "cross_entropy", "binary_cross_entropy")
MEAN = {"sse": False, "mse": True, "cross_entropy": True, "binary_cross_entropy": True}


def _problem(rng, loss, dtype, t=13, layers=(3, 5, 4)):
    net = fastprop.Network(layers, "tanh", bias=True, dtype=dtype, loss=loss, seed=1)
    X = rng.standard_normal((t, layers[0])).astype(dtype)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(layers[-1]), t).astype(dtype)
    elif loss == "binary_cross_entropy":
        Y = (rng.uniform(size=(t, layers[-1])) > 0.5).astype(dtype)
    else:
        Y = rng.standard_normal((t, layers[-1])).astype(dtype)
    w = rng.uniform(0, 3, t) * (rng.uniform(size=t) > 0.3)
    w[0] = 2.0
    return net, X, Y, w


def _reference_weighted(net, X, Y, w, loss):
    """E and its gradient from the NumPy reference, one sample at a time: Σ_s w_s E_s (over
    Σ_s w_s for a mean loss), E_s and its gradient those of the batch of one sample s."""
    W, b = ref_params(net)
    total = np.sum(w) if MEAN[loss] else 1.0
    E, dW, db = 0.0, [np.zeros_like(W_i) for W_i in W], [np.zeros_like(b_i) for b_i in b]
    for x, y, w_s in zip(X, Y, w):
        E_s, dW_s, db_s = reference.gradient(W, b, net.activation, x[None], y[None], loss)
        E += w_s * E_s / total
        dW = [acc + w_s / total * g for acc, g in zip(dW, dW_s)]
        db = [acc + w_s / total * g for acc, g in zip(db, db_s)]
    return E, dW, db


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("loss", LOSSES)
def test_weighted_loss_and_gradient_match_the_reference(rng, loss, dtype):
    net, X, Y, w = _problem(rng, loss, dtype)
    E_ref, dW_ref, db_ref = _reference_weighted(net, X, Y, w, loss)
    rtol = RTOL[np.dtype(dtype)]
    assert_close(net.loss(X, Y, sample_weight=w), E_ref, rtol, "loss")
    E, dW, db = net.gradient(X, Y, sample_weight=w)
    assert_close(E, E_ref, rtol, "gradient's E")
    for i in range(net.n):
        assert_close(dW[i], dW_ref[i], rtol, f"dE/dW_{i}")
        assert_close(db[i], db_ref[i], rtol, f"dE/db_{i}")
    E, flat = net.loss_and_grad(X, Y, sample_weight=w)
    assert_close(flat, np.concatenate([np.r_[g.ravel(), h] for g, h in zip(dW, db)]), rtol)
    # at other parameters, the network's own untouched
    before = net.params.copy()
    E_other, _ = net.loss_and_grad(X, Y, 2 * net.params, sample_weight=w)
    np.testing.assert_array_equal(net.params, before)
    assert E_other != E


@pytest.mark.parametrize("loss", LOSSES)
def test_weight_two_is_the_sample_twice_bit_for_bit(rng, loss):
    """One sample of weight 2 and the same sample twice: the same sums, the same bits."""
    net, X, Y, _ = _problem(rng, loss, "float64", t=1)
    twice_X, twice_Y = np.repeat(X, 2, axis=0), np.repeat(Y, 2, axis=0)
    assert net.loss(X, Y, sample_weight=[2.0]) == net.loss(twice_X, twice_Y)
    E_w, flat_w = net.loss_and_grad(X, Y, sample_weight=[2.0])
    E_2, flat_2 = net.loss_and_grad(twice_X, twice_Y)
    assert E_w == E_2
    np.testing.assert_array_equal(flat_w, flat_2)


@pytest.mark.parametrize("loss", LOSSES)
def test_integer_weights_repeat_and_zero_weights_remove_samples(rng, loss):
    net, X, Y, _ = _problem(rng, loss, "float64", t=20)
    counts = rng.integers(0, 4, 20)
    counts[0] = 0
    repeated = np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0)
    E_w, flat_w = net.loss_and_grad(X, Y, sample_weight=counts)
    E_r, flat_r = net.loss_and_grad(*repeated)
    assert E_w == pytest.approx(E_r, rel=1e-13)
    assert_close(flat_w, flat_r, 1e-12)


@pytest.mark.parametrize("optimizer, batch_size", [
    ("sgd", None), ("momentum", None), ("adam", None), ("rprop", None), ("lm", None)])
def test_full_batch_fit_with_weights_is_fit_on_repeated_rows(rng, optimizer, batch_size):
    net_w, X, Y, _ = _problem(rng, "mse", "float64", t=30)
    net_r = fastprop.Network(net_w.layers, "tanh", bias=True, loss="mse", seed=1)
    counts = rng.integers(0, 4, 30)
    lr = None if optimizer == "lm" else 0.05
    h_w = net_w.fit(X, Y, 20, lr=lr, optimizer=optimizer, sample_weight=counts)
    h_r = net_r.fit(np.repeat(X, counts, axis=0), np.repeat(Y, counts, axis=0), 20, lr=lr,
                    optimizer=optimizer)
    np.testing.assert_allclose(h_w, h_r, rtol=1e-7 if optimizer == "lm" else 1e-11)
    assert_close(net_w.params, net_r.params, 1e-7 if optimizer == "lm" else 1e-10)


def test_minibatches_take_their_rows_weights(rng):
    """In order (no shuffle): each update is that of loss_and_grad on the minibatch's rows
    with their weights, to the bit."""
    net, X, Y, w = _problem(rng, "mse", "float64", t=25)
    start = net.params.copy()
    net.fit(X, Y, 2, lr=0.1, optimizer="sgd", batch_size=8, shuffle=False, sample_weight=w)
    by_hand = fastprop.Network(net.layers, "tanh", bias=True, loss="mse", seed=1)
    p = start.copy()
    for _ in range(2):
        for r0 in range(0, 25, 8):
            _, g = by_hand.loss_and_grad(X[r0:r0 + 8], Y[r0:r0 + 8], p,
                                         sample_weight=w[r0:r0 + 8])
            p = p - 0.1 * g
    np.testing.assert_array_equal(net.params, p)


def test_shuffled_minibatches_carry_the_weights_with_their_rows(rng):
    """Rows of weight 0 with absurd targets, shuffled into every minibatch: had a weight
    been gathered apart from its row, they would pull the fit towards their targets."""
    X = rng.uniform(-1, 1, (200, 1))
    Y = np.sin(3 * X)
    X_all = np.vstack([X, rng.uniform(-1, 1, (200, 1))])
    Y_all = np.vstack([Y, np.full((200, 1), 1e3)])
    w = np.r_[np.ones(200), np.zeros(200)]
    net = fastprop.Network([1, 16, 1], "tanh", bias=True, loss="mse", seed=0)
    history = net.fit(X_all, Y_all, 300, lr=0.01, optimizer="adam", batch_size=32, seed=5,
                      sample_weight=w)
    assert net.loss(X, Y) < 0.01 and history[-1] < 0.01  # the weighted mean: clean rows only


def test_validation_rows_keep_their_weights(rng):
    net, X, Y, w = _problem(rng, "mse", "float64", t=40)
    history = net.fit(X, Y, 3, lr=0.01, sample_weight=w, validation_fraction=0.25)
    assert history.val_loss[-1] == net.loss(X[-10:], Y[-10:], sample_weight=w[-10:])
    history = net.fit(X, Y, 3, lr=0.01, validation_data=(X[:5], Y[:5], w[:5]))
    assert history.val_loss[-1] == net.loss(X[:5], Y[:5], sample_weight=w[:5])
    assert history.val_loss[-1] != net.loss(X[:5], Y[:5])


@pytest.mark.parametrize("weights, error, match", [
    (np.ones((13, 1)), ValueError, r"sample_weight must be a 1-D array of 13 weights \(one per "
                                   r"row of X\), got shape \(13, 1\)"),
    (np.ones(12), ValueError, r"sample_weight must be a 1-D array of 13 weights"),
    (np.r_[-1.0, np.ones(12)], ValueError, r"sample_weight must hold finite numbers >= 0 "
                                           r"\(in float64\), got -1.0"),
    (np.r_[np.nan, np.ones(12)], ValueError, "sample_weight must hold finite numbers >= 0"),
    (np.r_[np.inf, np.ones(12)], ValueError, "sample_weight must hold finite numbers >= 0"),
    (np.zeros(13), ValueError, "sample_weight must have at least one weight > 0, got all "
                               "weights zero"),
    (["a"] * 13, TypeError, "sample_weight must hold real numbers"),
    ("heavy", TypeError, "sample_weight must be an array of real numbers, got str"),
])
def test_bad_weights_are_refused_with_a_message(rng, weights, error, match):
    net, X, Y, _ = _problem(rng, "mse", "float64")
    for call in (lambda: net.loss(X, Y, sample_weight=weights),
                 lambda: net.gradient(X, Y, sample_weight=weights),
                 lambda: net.loss_and_grad(X, Y, sample_weight=weights),
                 lambda: net.fit(X, Y, 1, sample_weight=weights)):
        with pytest.raises(error, match=match):
            call()


def test_float32_weights_must_stay_finite(rng):
    net, X, Y, _ = _problem(rng, "mse", "float32", t=2)
    with pytest.raises(ValueError, match=r"finite numbers >= 0 \(in float32\), got 1e\+39"):
        net.loss(X, Y, sample_weight=[1e39, 1.0])
    with pytest.raises(ValueError, match="sample_weight must have a total finite in float32"):
        net.loss(X, Y, sample_weight=[3e38, 3e38])


@pytest.mark.parametrize("dtype, tiny", [("float64", 1e-320), ("float32", 1e-44)])
def test_weights_whose_total_has_no_finite_reciprocal_are_refused(rng, dtype, tiny):
    # A mean loss divides by the total weight: 1 / total would be inf (it was NaN in the fit).
    net, X, Y, _ = _problem(rng, "mse", dtype, t=2)
    for call in (lambda w: net.loss(X, Y, sample_weight=w),
                 lambda w: net.fit(X, Y, 1, sample_weight=w)):
        with pytest.raises(ValueError, match="a total whose reciprocal is finite"):
            call([tiny, 0.0])


@pytest.mark.skipif("poisson" not in fastprop.network.LOSSES, reason="no 'poisson' loss")
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_weighted_poisson_loss_and_gradient(rng, dtype):
    """E = Σ_s w_s mean_j (e^z − y z) / Σ_s w_s and δ_n = w (e^z − y) / (Σ w · l_n)."""
    net = fastprop.Network([3, 4, 2], "tanh", bias=True, dtype=dtype, loss="poisson", seed=0)
    X = rng.standard_normal((9, 3)).astype(dtype)
    Y = rng.poisson(2.0, (9, 2)).astype(dtype)
    w = rng.uniform(0, 2, 9)
    Z = net.forward(X).astype(np.float64)
    E = np.sum(w * np.mean(np.exp(Z) - Y * Z, axis=1)) / np.sum(w)
    assert_close(net.loss(X, Y, sample_weight=w), E, RTOL[np.dtype(dtype)])
    # the gradient of the last layer's bias is Σ_s δ_n,s
    _, _, db = net.gradient(X, Y, sample_weight=w)
    delta = w[:, None] * (np.exp(Z) - Y) / (np.sum(w) * 2)
    assert_close(db[-1], delta.sum(axis=0), RTOL[np.dtype(dtype)])


def test_levenberg_marquardt_zero_weights_leave_rows_out(rng):
    net_w, X, Y, _ = _problem(rng, "sse", "float64", t=30)
    net_r = fastprop.Network(net_w.layers, "tanh", bias=True, loss="sse", seed=1)
    keep = rng.uniform(size=30) > 0.3
    h_w = net_w.fit(X, Y, 15, optimizer="lm", sample_weight=keep.astype(float))
    h_r = net_r.fit(X[keep], Y[keep], 15, optimizer="lm")
    np.testing.assert_allclose(h_w, h_r, rtol=1e-9)
    assert h_w.stop == h_r.stop


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_minibatch_of_zero_weights_is_left_out(optimizer):
    # Rows 8..11 weigh 0 and form the last minibatch of 4: a mean over it would be 0/0. It is
    # left out, as its rows are: the fit equals the fit on the first 8 rows alone.
    rng = np.random.default_rng(7)
    X, Y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    w = np.r_[rng.uniform(0.5, 2, 8), np.zeros(4)]
    net = fastprop.Network([3, 4, 2], "tanh", seed=1)
    twin = fastprop.Network([3, 4, 2], "tanh", seed=1)
    history = net.fit(X, Y, 3, 0.01, optimizer=optimizer, batch_size=4, shuffle=False,
                      sample_weight=w)
    expected = twin.fit(X[:8], Y[:8], 3, 0.01, optimizer=optimizer, batch_size=4,
                        shuffle=False, sample_weight=w[:8])
    assert np.all(np.isfinite(history))
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_allclose(history, expected, rtol=1e-15)
