"""Learning-rate schedules inside the core's epoch loop (StepLR, CosineAnnealingLR,
InvScaling, a callable epoch -> lr, a callback's change) for every first-order optimiser, and
gradient clipping by global norm against torch.nn.utils.clip_grad_norm_."""

from __future__ import annotations

import math

import numpy as np
import pytest

import fastprop
from fastprop import optim

OPTIMIZERS = ["sgd", "momentum", "nesterov", "adam", "adamw", "rprop"]


def data(rng, t=30):
    X = rng.uniform(-1, 1, (t, 3))
    Y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1], X[:, 2] * X[:, 0]], axis=1)
    return X, Y


def make_net(seed=5):
    return fastprop.Network([3, 7, 2], "tanh", seed=seed)


def epoch_by_epoch(X, Y, optimizer, rates, **kwargs):
    """The parameters after one fit call per epoch, each at its rate, one optimiser object
    carrying the state: what a schedule inside the loop must reproduce bit for bit."""
    net = make_net()
    opt = optim.make(optimizer)
    for rate in rates:
        net.fit(X, Y, 1, lr=rate, optimizer=opt, **kwargs)
    return net


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("schedule, rates", [
    (optim.StepLR(step_size=2, gamma=0.5), [0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025]),
    (optim.CosineAnnealingLR(T_max=4, eta_min=0.001),
     [0.001 + 0.009 * (1 + math.cos(math.pi * e / 4)) / 2 for e in (0, 1, 2, 3, 4, 4)]),
    (lambda epoch: 0.01 / (1 + epoch), [0.01 / (1 + e) for e in range(6)]),
], ids=["step", "cosine", "callable"])
def test_a_schedule_equals_one_fit_per_epoch_at_its_rate(rng, optimizer, schedule, rates):
    X, Y = data(rng)
    net = make_net()
    history = net.fit(X, Y, 6, lr=0.01, optimizer=optim.make(optimizer), lr_schedule=schedule)
    np.testing.assert_allclose(history.lr, rates, rtol=1e-15)
    expected = epoch_by_epoch(X, Y, optimizer, history.lr)
    np.testing.assert_array_equal(net.params, expected.params)
    constant = make_net()
    constant.fit(X, Y, 6, lr=0.01, optimizer=optim.make(optimizer))
    if optimizer != "rprop":  # rprop's lr is only its first step size
        assert np.max(np.abs(constant.params - net.params)) > 1e-8


def test_step_and_cosine_follow_torchs_schedulers():
    torch = pytest.importorskip("torch")
    for ours, make_theirs in [
            (optim.StepLR(3, gamma=0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.3)),
            (optim.CosineAnnealingLR(5, eta_min=0.01),
             lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 5, eta_min=0.01))]:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.2)
        theirs = make_theirs(opt)
        expected = []
        for _ in range(5):  # torch's cosine is defined up to T_max
            expected.append(opt.param_groups[0]["lr"])
            opt.step()
            theirs.step()
        np.testing.assert_allclose([ours.lr(0.2, e) for e in range(5)], expected, rtol=1e-14)


def test_invscaling_counts_the_samples_seen(rng):
    X, Y = data(rng, t=30)
    history = make_net().fit(X, Y, 4, lr=0.1, optimizer="sgd", batch_size=8,
                             lr_schedule=optim.InvScaling(power_t=0.25))
    np.testing.assert_allclose(history.lr, [0.1 / (1 + 30 * e) ** 0.25 for e in range(4)],
                               rtol=1e-15)


def test_the_callable_is_called_between_epochs_with_each_epoch(rng):
    X, Y = data(rng)
    calls = []

    def rate(epoch):
        calls.append(epoch)
        return 0.01

    make_net().fit(X, Y, 5, lr_schedule=rate)
    assert calls == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
def test_a_rate_set_by_the_callback_takes_effect_at_the_next_epoch(rng, optimizer):
    X, Y = data(rng)

    def callback(epoch, logs):
        if epoch == 1:
            logs["lr"] = 0.002

    net = make_net()
    history = net.fit(X, Y, 4, lr=0.01, optimizer=optim.make(optimizer), callback=callback)
    np.testing.assert_array_equal(history.lr, [0.01, 0.01, 0.002, 0.002])
    expected = epoch_by_epoch(X, Y, optimizer, [0.01, 0.01, 0.002, 0.002])
    np.testing.assert_array_equal(net.params, expected.params)


def test_a_rate_set_on_the_optimizer_object_takes_effect_at_the_next_epoch(rng):
    X, Y = data(rng)
    opt = optim.Adam(lr=0.01)

    def callback(epoch, logs):
        if epoch == 0:
            opt.lr = 0.003

    history = make_net().fit(X, Y, 3, optimizer=opt, callback=callback,
                             lr_schedule=optim.StepLR(1, gamma=0.5))
    np.testing.assert_allclose(history.lr, [0.01, 0.003 * 0.5, 0.003 * 0.25], rtol=1e-15)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), 0.0])
def test_a_bad_rate_from_the_callable_is_refused(rng, bad):
    X, Y = data(rng)
    net = make_net()
    with pytest.raises(ValueError, match=r"lr_schedule\(2\) must be"):
        net.fit(X, Y, 5, lr_schedule=lambda epoch: 0.01 if epoch < 2 else bad)
    assert len(net.history) == 2  # the epochs before the bad rate were kept
    with pytest.raises(ValueError, match=r"lr_schedule\(0\) must be"):
        make_net().fit(X, Y, 5, lr_schedule=lambda epoch: bad)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_a_bad_rate_from_the_callback_is_refused(rng, bad):
    X, Y = data(rng)

    def callback(epoch, logs):
        logs["lr"] = bad

    with pytest.raises(ValueError, match=r'logs\["lr"\] must be'):
        make_net().fit(X, Y, 3, callback=callback)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf")])
def test_the_core_refuses_a_bad_rate_for_the_next_epoch(bad):
    with pytest.raises(ValueError, match=r"the learning rate of the next epoch must be a "
                                         r"finite number >= 0"):
        fastprop._core.EpochControl(lr=bad)


def test_schedules_are_refused_where_they_mean_nothing(rng):
    X, Y = data(rng)
    with pytest.raises(ValueError, match=r"optimizer 'lm' has no learning rate to schedule"):
        make_net().fit(X, Y, 2, optimizer="lm", lr_schedule=optim.StepLR(1))
    with pytest.raises(TypeError, match=r"lr_schedule must be a fastprop.optim schedule"):
        make_net().fit(X, Y, 2, lr_schedule="cosine")
    with pytest.raises(ValueError, match=r"step_size must be"):
        optim.StepLR(0)
    with pytest.raises(ValueError, match=r"T_max must be"):
        optim.CosineAnnealingLR(0)


# ---------------------------------------------------------------------- clipping
@pytest.mark.parametrize("clip_norm", [0.05, 1e6])
def test_clipping_matches_torch_clip_grad_norm(rng, clip_norm):
    torch = pytest.importorskip("torch")
    X, Y = data(rng)
    net = make_net()
    start = net.params.copy()
    _, grad = net.loss_and_grad(X, Y)
    g = torch.from_numpy(grad.copy())
    p = torch.zeros_like(g, requires_grad=True)
    p.grad = g
    torch.nn.utils.clip_grad_norm_([p], clip_norm)
    expected = start - 0.1 * p.grad.numpy()
    net.fit(X, Y, 1, lr=0.1, optimizer="sgd", clip_norm=clip_norm)
    np.testing.assert_allclose(net.params, expected, rtol=1e-14, atol=1e-16)
    clipped, norm = np.linalg.norm(start - net.params) / 0.1, np.linalg.norm(grad)
    if clip_norm < norm:  # torch's coefficient is clip_norm / (norm + 1e-6)
        assert clipped == pytest.approx(clip_norm * norm / (norm + 1e-6), rel=1e-12)
    else:
        assert clipped == pytest.approx(norm, rel=1e-12)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan")])
def test_clip_norm_out_of_range_is_refused(rng, bad):
    X, Y = data(rng)
    with pytest.raises(ValueError, match=r"clip_norm must be"):
        make_net().fit(X, Y, 1, clip_norm=bad)


# ---------------------------------------------------------------------- adaptive
def sklearn_adaptive_rates(losses, lr, tol, n_iter_no_change, factor):
    """scikit-learn's "adaptive" rule (MLP's _update_no_improvement_count and its fit loop),
    replayed on a loss curve: the rate of every epoch."""
    rates, best, count = [], np.inf, 0
    for loss in losses:
        rates.append(lr)
        if loss > best - tol:
            count += 1
        else:
            count = 0
        if loss < best:
            best = loss
        if count > n_iter_no_change:
            lr *= factor
            count = 0
    return rates


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.5), ("adam", 0.05), ("momentum", 0.2)])
@pytest.mark.parametrize("validation", [False, True])
def test_adaptive_follows_scikit_learns_rule_on_the_loss_curve(rng, optimizer, lr, validation):
    X, Y = data(rng, t=60)
    rule = optim.Adaptive(tol=1e-3, n_iter_no_change=2, factor=0.2)
    kwargs = {"validation_fraction": 0.25} if validation else {}
    history = make_net().fit(X, Y, 60, lr=lr, optimizer=optimizer, batch_size=10,
                             lr_schedule=rule, **kwargs)
    watched = history.val_loss if validation else history
    expected = sklearn_adaptive_rates(watched, lr, 1e-3, 2, 0.2)
    np.testing.assert_allclose(history.lr, expected, rtol=1e-15)
    assert len(set(history.lr)) > 1  # the rate did change: the check was not empty


def test_adaptive_is_refused_for_bad_parameters():
    with pytest.raises(ValueError, match=r"factor must be"):
        optim.Adaptive(factor=1.5)
    with pytest.raises(ValueError, match=r"tol must be"):
        optim.Adaptive(tol=-1)


def test_dpsgd_follows_the_schedule_and_the_networks_seed(rng):
    # DP-SGD's noise comes from the fit's seed, which comes from the network's: two networks
    # made and fitted alike end with the same bits, and the schedule sets each epoch's rate.
    X, Y = data(rng, t=40)
    kwargs = dict(lr=0.1, optimizer="dpsgd", max_grad_norm=1.0, noise_multiplier=0.5,
                  batch_size=8, lr_schedule=optim.StepLR(1, gamma=0.5))
    a, b, c = make_net(seed=5), make_net(seed=5), make_net(seed=5)
    history = a.fit(X, Y, 4, **kwargs)
    b.fit(X, Y, 4, **kwargs)
    np.testing.assert_array_equal(history.lr, [0.1, 0.05, 0.025, 0.0125])
    np.testing.assert_array_equal(a.params, b.params)
    c.fit(X, Y, 4, seed=123, **kwargs)  # other noise
    assert np.max(np.abs(c.params - a.params)) > 1e-8
