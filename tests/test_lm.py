"""Levenberg–Marquardt: its Jacobian by backpropagation, its convergence, its limits."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop

from helpers import ACTIVATIONS

H = 1e-6  # central differences in float64


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_jacobian_matches_finite_differences(rng, activation, bias):
    net = fastprop.Network([3, 5, 4, 2], activation, bias=bias, seed=2, loss="sse")
    X = rng.standard_normal((4, 3)) + 0.01  # off relu's kink at 0
    J = net.jacobian(X)
    assert J.shape == (4 * 2, net.n_params)
    numeric = np.empty_like(J)
    for k in range(net.n_params):
        saved = net.params[k]
        net.params[k] = saved + H
        plus = net.forward(X).reshape(-1)  # row s·l_n + j, as J's rows
        net.params[k] = saved - H
        minus = net.forward(X).reshape(-1)
        net.params[k] = saved
        numeric[:, k] = (plus - minus) / (2 * H)
    assert np.max(np.abs(numeric)) > 0.1
    np.testing.assert_allclose(J, numeric, rtol=1e-6, atol=1e-8)


def test_jacobian_gives_the_gradient(rng):
    # ∂E/∂params = −2 Jᵀ (y − z_n) for the model's E.
    net = fastprop.Network([4, 6, 3], "tanh", bias=True, seed=0, loss="sse")
    X, Y = rng.standard_normal((7, 4)), rng.standard_normal((7, 3))
    residual = (Y - net.forward(X)).reshape(-1)
    E, flat = net.loss_and_grad(X, Y)
    np.testing.assert_allclose(-2 * net.jacobian(X).T @ residual, flat, rtol=1e-12, atol=1e-12)


def sine(rng, t=200):
    X = rng.uniform(-np.pi, np.pi, size=(t, 1))
    return X, np.sin(X)


def test_lm_converges_in_far_fewer_epochs_than_sgd(rng):
    X, Y = sine(rng)
    lm = fastprop.Network([1, 10, 1], "tanh", bias=True, seed=1, loss="sse")
    sgd = fastprop.Network([1, 10, 1], "tanh", bias=True, seed=1, loss="sse")
    history_lm = lm.fit(X, Y, 50, optimizer="lm")
    history_sgd = sgd.fit(X, Y, 3000, lr=5e-4, optimizer="sgd")
    assert history_lm[0] == pytest.approx(history_sgd[0])  # the same start
    # Measured: LM reaches a mean squared error of 6.6e-5 in 50 epochs; SGD 3.3e-2 in 3000.
    assert lm.loss(X, Y) / len(X) < 1e-3
    assert lm.loss(X, Y) < 0.1 * sgd.loss(X, Y)
    assert np.all(np.diff(history_lm) <= 0)  # LM only ever accepts a step that lowers E


def test_lm_keeps_mu_across_fit_calls(rng):
    X, Y = sine(rng, 50)
    once = fastprop.Network([1, 4, 1], "tanh", bias=True, seed=3, loss="sse")
    twice = fastprop.Network([1, 4, 1], "tanh", bias=True, seed=3, loss="sse")
    once.fit(X, Y, 6, optimizer="lm")
    opt = fastprop.optim.LevenbergMarquardt()
    twice.fit(X, Y, 4, optimizer=opt)
    mu_after_4 = opt.mu
    twice.fit(X, Y, 2, optimizer=opt)
    assert mu_after_4 != 1e-3
    np.testing.assert_array_equal(once.params, twice.params)


def test_lm_works_with_mse_and_float32(rng):
    X, Y = sine(rng, 100)
    histories = {}
    for dtype in ("float64", "float32"):
        net = fastprop.Network([1, 6, 1], "tanh", bias=True, dtype=dtype, seed=0, loss="mse")
        histories[dtype] = net.fit(X, Y, 100, optimizer="lm")
    # Measured: the mean squared error goes from 0.094 to 1.3e-6 in both dtypes.
    assert histories["float32"][-1] < 1e-4 * histories["float32"][0]
    np.testing.assert_allclose(histories["float32"][:30], histories["float64"][:30], rtol=1e-3)


def test_lm_stops_when_converged():
    # A linear network on exactly linear data: LM reaches the minimum, then no step helps.
    X = np.linspace(-1, 1, 20)[:, None]
    net = fastprop.Network([1, 1], bias=True, seed=0, loss="sse")
    history = net.fit(X, 3 * X + 1, 200, optimizer="lm")
    assert history.stop == "converged" and len(history) < 200
    np.testing.assert_allclose(net.forward([2.0]), [7.0], rtol=1e-9)


def test_lm_refuses_cross_entropy():
    net = fastprop.Network([2, 3], loss="cross_entropy", seed=0, bias=False)
    with pytest.raises(ValueError, match=r"sum-of-squares loss \(sse or mse\), got cross_entropy"):
        net.fit(np.zeros((4, 2)), np.zeros(4, dtype=int), 1, optimizer="lm")


def test_lm_refuses_networks_above_the_limit():
    net = fastprop.Network([64, 64, 2], seed=0, bias=False, loss="sse")  # 4224 parameters
    with pytest.raises(ValueError, match=r"limited to 4096 parameters .* this network has 4224"):
        net.fit(np.zeros((4, 64)), np.zeros((4, 2)), 1, optimizer="lm")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"lr": 0.1}, TypeError, r"optimizer 'lm' takes no lr"),
    ({"batch_size": 2}, ValueError, r"'lm' works on the whole batch: batch_size must be None"),
    ({"mu": -1.0}, ValueError, r"mu must be a finite number > 0, got -1.0"),
    ({"mu_dec": 2.0}, ValueError, r"mu_dec must be a finite number in \(0, 1\), got 2.0"),
    ({"momentum": 0.9}, TypeError, r"'momentum' is neither a keyword of fit nor a hyperparameter of optimizer 'lm'"),
])
def test_lm_bad_options(kwargs, error, message):
    net = fastprop.Network([1, 2, 1], seed=0, bias=False, loss="sse")
    with pytest.raises(error, match=message):
        net.fit(np.zeros((4, 1)), np.zeros((4, 1)), 1, optimizer="lm", **kwargs)


# ---------------------------------------------------------------------- weight decay
def penalised_step(net, X, Y, mu, lam, loss):
    """The parameters after one LM iteration with weight_decay lam, by NumPy: the solution of
    (JᵀJ + (μ + κ) I) Δ = Jᵀr − κ p, κ = lam/(2c) for E = c·||r||²."""
    c = 1.0 if loss == "sse" else 1.0 / Y.size
    kappa = lam / (2 * c)
    J = net.jacobian(X)
    r = (Y - net.forward(X)).reshape(-1)
    p = net.params.copy()
    A = J.T @ J + (mu + kappa) * np.eye(net.n_params)
    return p + np.linalg.solve(A, J.T @ r - kappa * p)


@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_lm_weight_decay_solves_the_penalised_normal_equations(rng, loss):
    X, Y = sine(rng, 30)
    net = fastprop.Network([1, 5, 1], "tanh", bias=True, seed=4, loss=loss)
    lam = 0.3
    fresh = fastprop.Network([1, 5, 1], "tanh", bias=True, seed=4, loss=loss)
    opt = fastprop.optim.LevenbergMarquardt(mu=1e-3, weight_decay=lam)
    history = net.fit(X, Y, 1, optimizer=opt)
    assert history.stop == "done" and not np.array_equal(net.params, fresh.params)
    mu = opt.mu / opt.mu_dec  # the damping of the step taken (μ grew on rejected tries)
    expected = penalised_step(fresh, X, Y, mu, lam, loss)
    np.testing.assert_allclose(net.params, expected, rtol=1e-8, atol=1e-10)
    # without the decay the step differs: the test can tell the two apart
    assert not np.allclose(penalised_step(fresh, X, Y, mu, 0.0, loss), expected, rtol=1e-4)


def test_lm_weight_decay_lowers_the_penalised_error_every_epoch(rng):
    X, Y = sine(rng, 40)
    net = fastprop.Network([1, 8, 1], "tanh", bias=True, seed=0, loss="sse")
    lam = 0.05
    opt = fastprop.optim.LevenbergMarquardt(weight_decay=lam)
    objective = [net.loss(X, Y) + lam / 2 * net.params @ net.params]
    for _ in range(30):
        net.fit(X, Y, 1, optimizer=opt)
        objective.append(net.loss(X, Y) + lam / 2 * net.params @ net.params)
    assert np.all(np.diff(objective) <= 0) and objective[-1] < 0.5 * objective[0]
    # and it keeps the parameters smaller than LM without the penalty
    plain = fastprop.Network([1, 8, 1], "tanh", bias=True, seed=0, loss="sse")
    plain.fit(X, Y, 30, optimizer="lm")
    assert net.params @ net.params < plain.params @ plain.params


def test_lm_weight_decay_reaches_the_penalised_minimum(rng):
    X, Y = sine(rng, 60)
    net = fastprop.Network([1, 6, 1], "tanh", bias=True, seed=1, loss="mse")
    lam = 1e-3
    history = net.fit(X, Y, 400, optimizer="lm", weight_decay=lam)
    _, grad = net.loss_and_grad(X, Y)
    penalised = grad + lam * net.params
    assert history.stop == "converged" or len(history) == 400
    assert np.linalg.norm(penalised) < 1e-6 * np.linalg.norm(lam * net.params)


def test_lm_weight_decay_is_checked_and_shown():
    with pytest.raises(ValueError, match=r"weight_decay must be .*>= 0.*got -1"):
        fastprop.optim.LevenbergMarquardt(weight_decay=-1.0)
    opt = fastprop.optim.LevenbergMarquardt(weight_decay=0.5)
    assert opt.weight_decay == 0.5 and "weight_decay=0.5" in repr(opt)
    with pytest.raises(ValueError, match=r"weight_decay"):
        opt.weight_decay = float("nan")
    net = fastprop.Network([1, 2, 1], seed=0, bias=False, loss="sse")
    with pytest.raises(ValueError, match=r"weight_decay"):
        net.fit(np.zeros((4, 1)), np.zeros((4, 1)), 1, optimizer="lm", weight_decay=-2.0)


def test_lm_mu_stays_normal_so_that_it_can_grow_back(rng):
    # With the penalty every step is accepted for a while and μ shrinks tenfold per epoch;
    # were it to underflow to 0, μ·mu_inc would stay 0 and the fit would never end.
    X = rng.standard_normal((60, 2))
    Y = np.sin(X[:, :1]) * X[:, 1:]
    net = fastprop.Network([2, 6, 1], "tanh", bias=True, seed=0, loss="mse")
    opt = fastprop.optim.LevenbergMarquardt(mu=1e-300, weight_decay=0.5)
    history = net.fit(X, Y, 100, optimizer=opt)
    assert opt.mu >= np.finfo(np.float64).tiny
    assert len(history) <= 100 and np.all(np.isfinite(net.params))
    net.fit(X, Y, 1, optimizer=opt)  # μ is still a valid setting for the next fit


def test_lm_weight_decay_too_large_is_refused_or_stops(rng):
    X, Y = sine(rng, 20)
    net = fastprop.Network([1, 4, 1], "tanh", bias=True, seed=0, loss="mse")
    before = net.params.copy()
    # κ = λ·t·l_n/2 overflows: refused before any step
    with pytest.raises(ValueError, match=r"weight_decay 1e\+308 is too large .* overflows"):
        net.fit(X, Y, 3, optimizer="lm", weight_decay=1e308)
    np.testing.assert_array_equal(net.params, before)
    # κ = 1e308 finite, κ·p not (|p| up to 10): a non-finite stop at the last finite
    # parameters, not "converged" with the parameters left as they were
    net.params = before * 10 / np.max(np.abs(before))
    start = net.params.copy()
    with pytest.raises(FloatingPointError):
        net.fit(X, Y, 3, optimizer="lm", weight_decay=1e307)
    np.testing.assert_array_equal(net.params, start)
    # a large penalty that fits in doubles takes the parameters to about zero
    net.fit(X, Y, 3, optimizer="lm", weight_decay=1e300)
    assert np.max(np.abs(net.params)) < 1e-30


def test_lm_optimiser_pickles_with_its_state(rng):
    import copy
    import pickle
    X, Y = sine(rng, 30)
    opt = fastprop.optim.LevenbergMarquardt(weight_decay=0.25)
    opt.config().decay_biases = False
    fastprop.Network([1, 4, 1], "tanh", bias=True, seed=0, loss="sse").fit(X, Y, 3, optimizer=opt)
    for twin in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert repr(twin) == repr(opt) and twin.config().decay_biases is False
        assert twin.config() is not opt.config()
    # two networks continued with the original and with a copy end alike
    a = fastprop.Network([1, 4, 1], "tanh", bias=True, seed=1, loss="sse")
    b = fastprop.Network([1, 4, 1], "tanh", bias=True, seed=1, loss="sse")
    twin = pickle.loads(pickle.dumps(opt))
    a.fit(X, Y, 2, optimizer=opt)
    b.fit(X, Y, 2, optimizer=twin)
    np.testing.assert_array_equal(a.params, b.params)


def test_lm_subnormal_mu_grows_and_the_fit_ends():
    # μ = 5e-324 times mu_inc = 1.4 rounds back to 5e-324: without the floor, a rejected
    # first step would repeat forever
    net = fastprop.Network([1, 1], "identity", seed=0, loss="sse")
    net.params = np.zeros(2)
    X = np.linspace(-1, 1, 20).reshape(-1, 1)
    opt = fastprop.optim.LevenbergMarquardt(mu=5e-324, mu_inc=1.4)
    history = net.fit(X, 0 * X, 1, optimizer=opt)
    assert history.stop == "converged" and opt.mu > 1e10


def test_lm_weight_decay_is_read_when_the_fit_starts(rng):
    # a callback changing it mid-fit acts from the next fit on, as one consistent objective
    X, Y = sine(rng, 30)
    opt = fastprop.optim.LevenbergMarquardt(weight_decay=0.5)
    changed = fastprop.Network([1, 5, 1], "tanh", bias=True, seed=2, loss="sse")

    def callback(epoch, logs):
        opt.weight_decay = 2.0

    changed.fit(X, Y, 4, optimizer=opt, callback=callback)
    same = fastprop.Network([1, 5, 1], "tanh", bias=True, seed=2, loss="sse")
    same.fit(X, Y, 4, optimizer="lm", weight_decay=0.5)
    np.testing.assert_array_equal(changed.params, same.params)
    assert opt.weight_decay == 2.0
