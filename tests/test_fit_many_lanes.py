"""fit_many's lane groups: networks of the same shape stepped together in SIMD lanes, each to
the bits of its own fit (parameters, losses, stop)."""

from __future__ import annotations

import copy
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastprop
from fastprop import _core
from helpers import SIGINT_RAISES

WIDTH32, WIDTH64 = _core.lane_width("float32"), _core.lane_width("float64")

pytestmark = pytest.mark.skipif(WIDTH32 == 0, reason="no lanes on the portable kernels")


@pytest.fixture(autouse=True)
def forced_lanes():
    """Every fit a group can reproduce steps in lanes, however few share its shape (fit_many
    otherwise groups only where that is faster: test_when_groups_pay), so that the lanes'
    bits are checked for every shape and group size."""
    _core._force_lanes(True)
    yield
    _core._force_lanes(False)


@pytest.fixture
def restore_threads():
    before = fastprop.get_num_threads()
    yield
    fastprop.set_num_threads(before)


def width(dtype: str) -> int:
    return WIDTH32 if dtype == "float32" else WIDTH64


def networks(layers, activation, bias, dtype, count, loss="sse"):
    return [fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=k, loss=loss)
            for k in range(count)]


def fit_both(nets, X, Y, epochs, lrs, **arguments):
    """fit_many on copies of nets, and each network's own fit; returns (result, copies)."""
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, epochs, lrs, **arguments)
    for net, lr in zip(nets, lrs):
        net.fit(X, Y, epochs, lr, **arguments)
    return many, twins


def assert_same(nets, twins):
    for k, (a, b) in enumerate(zip(nets, twins)):
        assert np.array_equal(a.params, b.params), f"network {k}: parameters differ"
        assert np.array_equal(np.asarray(a.history), np.asarray(b.history)), \
            f"network {k}: losses differ"
        assert a.history.stop == b.history.stop
        assert np.array_equal(a.history.lr, b.history.lr)


def expected_lanes(count: int, W: int) -> list[int]:
    """Groups of W in order, then the rest (with lanes forced)."""
    out = []
    for k in range(0, count, W):
        size = min(W, count - k)
        out += [size] * size
    return out


def data(rng, t, l_0, l_n, dtype):
    return (rng.standard_normal((t, l_0)).astype(dtype),
            rng.standard_normal((t, l_n)).astype(dtype))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers", [[8, 16, 1], [3, 5, 7, 2], [64, 64, 64, 10]])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_lanes_equal_separate_fits(rng, dtype, layers, activation, bias):
    W = width(dtype)
    count = W + 3  # a full group and one of three
    nets = networks(layers, activation, bias, dtype, count)
    X, Y = data(rng, 72, layers[0], layers[-1], dtype)  # minibatches of 16, the last of 8
    lrs = [1e-3 * (1 + k / count) for k in range(count)]
    many, twins = fit_both(nets, X, Y, 3, lrs, optimizer="sgd", batch_size=16, shuffle=False)
    assert many.lanes == expected_lanes(count, W)
    assert many.stops == ["done"] * count
    assert_same(nets, twins)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("extra", [-1, 0, 1, 2, 3, None])  # group sizes W-1, W, W+1, 2W+3, 1, 3
@pytest.mark.parametrize("threads", [1, 2])
def test_group_sizes_and_threads(rng, dtype, extra, threads, restore_threads):
    W = width(dtype)
    count = {-1: W - 1, 0: W, 1: W + 1, 2: 2 * W + 3, 3: 1, None: 3}[extra]
    fastprop.set_num_threads(threads)
    nets = networks([6, 12, 2], "tanh", True, dtype, count)
    X, Y = data(rng, 50, 6, 2, dtype)
    lrs = [2e-3 * (1 + k / count) for k in range(count)]
    many, twins = fit_both(nets, X, Y, 4, lrs, optimizer="sgd", batch_size=10, shuffle=True,
                           seed=5)
    assert many.lanes == expected_lanes(count, W)
    assert_same(nets, twins)


@pytest.mark.parametrize("loss", ["sse", "mse"])
@pytest.mark.parametrize("batch_size", [None, 1, 7, 100])
def test_losses_and_batches(rng, loss, batch_size):
    """The whole batch, single rows, a last short minibatch, the sums past every threshold
    (plain loops, direct sums, blocked FMA chains, k in more than one slice: l_0 = 300)."""
    nets = networks([300, 20, 3], "sigmoid", True, "float32", 5, loss=loss)
    X, Y = data(rng, 110, 300, 3, "float32")
    lrs = [1e-4 * (1 + k) for k in range(5)]
    many, twins = fit_both(nets, X, Y, 2, lrs, optimizer="sgd", batch_size=batch_size,
                           shuffle=False)
    assert many.lanes == [5] * 5
    assert_same(nets, twins)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("indexed", [False, True])
def test_minibatches_in_halves(rng, dtype, indexed):
    """Minibatches a single fit runs as two halves (passes.cpp: from 128 rows, for small
    networks) run as two halves in the lanes too, the second half's gradient added to the
    first's; the last, shorter minibatch is not split."""
    nets = networks([8, 16, 1], "tanh", True, dtype, 5, loss="mse")
    X, Y = data(rng, 330, 8, 1, dtype)
    rows = [rng.permutation(330)[:300] for _ in range(5)] if indexed else [None] * 5
    lrs = [1e-3 * (1 + k) for k in range(5)]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 2, lrs, optimizer="adam", batch_size=128, seed=1,
                             indices=rows if indexed else None)
    assert many.lanes == expected_lanes(5, width(dtype))
    for net, lr, r in zip(nets, lrs, rows):
        part = slice(None) if r is None else r
        net.fit(X[part], Y[part], 2, lr, optimizer="adam", batch_size=128, seed=1)
    assert_same(nets, twins)


@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "poisson", "huber"])
def test_other_losses_lane_by_lane(rng, loss):
    """The losses but sse and mse run lane by lane through the single fits' own function:
    each network's huber delta its own."""
    count = 6
    X = rng.standard_normal((60, 5))
    if loss == "cross_entropy":
        Y = np.eye(3)[rng.integers(0, 3, 60)]
    elif loss == "binary_cross_entropy":
        Y = rng.integers(0, 2, (60, 3)).astype(float)
    elif loss == "poisson":
        Y = rng.poisson(2.0, (60, 3)).astype(float)
    else:
        Y = rng.standard_normal((60, 3))
    extra = [{"huber_delta": 0.5 + k / 4} if loss == "huber" else {} for k in range(count)]
    nets = [fastprop.Network([5, 9, 3], "relu", bias=True, seed=k, loss=loss, **extra[k])
            for k in range(count)]
    lrs = [1e-2 * (1 + k / count) for k in range(count)]
    many, twins = fit_both(nets, X, Y, 3, lrs, optimizer="sgd", batch_size=12, seed=3)
    assert many.lanes == expected_lanes(count, WIDTH64)
    assert_same(nets, twins)


def test_wide_layer_slices_the_sums(rng):
    """l_out > 256: δ_i's sum over l_out and z's over l_in both run in two slices."""
    nets = networks([40, 300, 300, 2], "tanh", True, "float64", 3)
    X, Y = data(rng, 24, 40, 2, "float64")
    many, twins = fit_both(nets, X, Y, 2, [1e-3, 2e-3, 3e-3], optimizer="sgd", batch_size=12,
                           shuffle=False)
    assert many.lanes == [3] * 3
    assert_same(nets, twins)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", [
    dict(optimizer="momentum"), dict(optimizer="nesterov"),
    dict(optimizer="sgd", weight_decay=[1e-3 * (k + 1) for k in range(7)]),
    dict(optimizer="sgd", momentum=[0.1 * (k + 1) for k in range(7)], weight_decay=1e-4),
    dict(optimizer="sgd", momentum=0.5, nesterov=True, weight_decay=[1e-4 * (k + 1) for k in range(7)]),
])
def test_momentum_and_weight_decay(rng, dtype, optimizer):
    """SGD's momentum buffers in lanes, each network's μ and λ its own; the buffers kept in
    each network's optimiser object go on from where a first call left them."""
    nets = networks([6, 10, 3], "tanh", True, dtype, 7)
    X, Y = data(rng, 45, 6, 3, dtype)
    lrs = [1e-3 * (1 + k / 7) for k in range(7)]
    arguments = {key: value for key, value in optimizer.items() if key != "optimizer"}
    twins = copy.deepcopy(nets)
    objects = [fastprop.optim.make(optimizer["optimizer"], lr,
                                   **{key: value[k] if isinstance(value, list) else value
                                      for key, value in arguments.items()})
               for k, lr in enumerate(lrs)]
    twin_objects = copy.deepcopy(objects)
    for _ in range(2):
        many = fastprop.fit_many(twins, X, Y, 2, optimizer=twin_objects, batch_size=8,
                                 shuffle=False)
        assert many.lanes == expected_lanes(7, width(dtype))
        for net, opt in zip(nets, objects):
            net.fit(X, Y, 2, optimizer=opt, batch_size=8, shuffle=False)
        assert_same(nets, twins)
    assert all(a.steps == b.steps for a, b in zip(objects, twin_objects))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_adam(rng, dtype, optimizer):
    """Adam's moments in lanes, every hyperparameter each network's own; a second call goes on
    from the moments and step counts the first left in each optimiser object."""
    count = 9
    nets = networks([7, 12, 3], "tanh", True, dtype, count, loss="mse")
    X, Y = data(rng, 50, 7, 3, dtype)
    objects = [fastprop.optim.make(optimizer, 1e-3 * (1 + k / count), betas=(0.9 - 0.01 * k,
                                   0.999 - 1e-4 * k), eps=1e-8 * (k + 1),
                                   weight_decay=1e-3 * (k % 3))
               for k in range(count)]
    twins, twin_objects = copy.deepcopy(nets), copy.deepcopy(objects)
    for _ in range(2):
        many = fastprop.fit_many(twins, X, Y, 3, optimizer=twin_objects, batch_size=8,
                                 seed=2)
        assert many.lanes == expected_lanes(count, width(dtype))
        for net, opt in zip(nets, objects):
            net.fit(X, Y, 3, optimizer=opt, batch_size=8, seed=2)
        assert_same(nets, twins)
    assert all(a.steps == b.steps > 0 for a, b in zip(objects, twin_objects))


def test_sgd_variants_group_apart_and_diverge_alone(rng):
    """Plain SGD, weight decay alone, momentum and Nesterov's round differently, so each has
    its own groups; a diverging network with momentum stops alone (the dry run refuses its
    update, its momentum buffer left as it was)."""
    nets = networks([5, 7, 2], "sigmoid", True, "float64", 8)
    X, Y = data(rng, 40, 5, 2, "float64")
    arguments = dict(optimizer="sgd", momentum=[0, 0, 0, 0.9, 0.9, 0.9, 0.9, 0.9],
                     nesterov=[False] * 6 + [True, True],
                     weight_decay=[0, 0, 1e-3, 0, 0, 0, 0, 0])
    lrs = [0.01] * 8
    lrs[4] = 1e25
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, lrs, batch_size=8, shuffle=False, errors="ignore",
                             **arguments)
    assert many.lanes == [2, 2, 1, 3, 3, 3, 2, 2]
    assert many.stops == ["done"] * 4 + ["non_finite"] + ["done"] * 3
    for k, net in enumerate(nets):
        try:
            net.fit(X, Y, 3, lrs[k], batch_size=8, shuffle=False,
                    **{key: value[k] if isinstance(value, list) else value
                       for key, value in arguments.items()})
        except FloatingPointError:
            assert k == 4
    assert_same(nets[:4] + nets[5:], twins[:4] + twins[5:])
    assert np.array_equal(nets[4].params, twins[4].params)


def test_a_diverging_network_stops_alone(rng):
    """A huge learning rate makes one lane's update non-finite mid-group: that network stops
    with its own fit's parameters and losses; the others step on."""
    count = 6
    nets = networks([5, 8, 3], "relu", True, "float32", count)
    X, Y = data(rng, 64, 5, 3, "float32")
    lrs = [1e-3] * count
    lrs[2] = 1e30
    lrs[4] = 1e12  # overflows later than the first
    twins = copy.deepcopy(nets)
    with pytest.warns(RuntimeWarning, match="networks failed"):
        many = fastprop.fit_many(twins, X, Y, 6, lrs, optimizer="sgd", batch_size=8,
                                 shuffle=False)
    assert many.lanes == [count] * count
    for net, lr in zip(nets, lrs):
        try:
            net.fit(X, Y, 6, lr, optimizer="sgd", batch_size=8, shuffle=False)
        except FloatingPointError:
            pass
    assert many.stops == ["done", "done", "non_finite", "done", "non_finite", "done"]
    assert sorted(many.errors) == [2, 4]
    for k in (2, 4):
        assert np.all(np.isfinite(twins[k].params))
        assert np.array_equal(twins[k].params, nets[k].params)
        assert str(many.errors[k]) == (f"networks[{k}]: "
                                       + _core.non_finite_message(len(nets[k].history)))
        assert len(twins[k].history) == len(nets[k].history) < 6
    assert_same([nets[k] for k in (0, 1, 3, 5)], [twins[k] for k in (0, 1, 3, 5)])


def test_non_finite_data_stops_every_lane(rng):
    X, Y = data(rng, 40, 4, 1, "float64")
    X[25, 2] = np.inf
    nets = networks([4, 6, 1], "tanh", True, "float64", 3)
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 2, 0.01, optimizer="sgd", batch_size=10,
                             shuffle=False, errors="ignore")
    assert many.lanes == [3] * 3 and many.stops == ["non_finite"] * 3
    for net, twin in zip(nets, twins):
        with pytest.raises(FloatingPointError):
            net.fit(X, Y, 2, 0.01, optimizer="sgd", batch_size=10, shuffle=False)
        assert np.array_equal(net.params, twin.params)
        assert len(twin.history) == 0


def test_mixed_sets_group_what_they_can(rng):
    """Networks of one shape but other arguments group by what they share, beside each
    other, all to their own bits."""
    X, Y = data(rng, 60, 5, 2, "float64")
    X_val, Y_val = data(rng, 10, 5, 2, "float64")
    nets = (networks([5, 9, 2], "tanh", True, "float64", 4)
            + networks([5, 9, 2], "tanh", True, "float32", 3)
            + networks([5, 4, 2], "sigmoid", False, "float64", 2)
            + networks([5, 9, 2], "tanh", True, "float64", 6))
    n = len(nets)
    arguments = dict(
        optimizer=["sgd"] * 9 + ["momentum", "adam", "sgd", "sgd", "sgd", "sgd"],
        batch_size=[8] * n, shuffle=[False] * n,
        validation_data=[None] * 11 + [(X_val, Y_val), None, None, None],
        sample_weight=[None] * 12 + [np.abs(rng.standard_normal(60)), None, None],
        callback=[None] * 13 + [lambda epoch, logs: None, None],
        clip_norm=[None] * 14 + [1.0],
    )
    lrs = [0.01 * (1 + k / n) for k in range(n)]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, lrs, **arguments)
    # The first four float64 tanh nets and those with validation data, a callback and
    # clipping in one group, the float32 three in another, the two sigmoid ones in a third;
    # momentum, Adam and the one with sample weights are groups of their own.
    first = expected_lanes(7, WIDTH64)  # networks 0 to 3, 11, 13 and 14
    assert many.lanes == (first[:4] + [3] * 3 + [2] * 2 + [1, 1] + first[4:5] + [1]
                          + first[5:])
    for k, net in enumerate(nets):
        args = {key: value[k] for key, value in arguments.items()}
        net.fit(X, Y, 3, lrs[k], **args)
    assert_same(nets, twins)


def test_epoch_hooks_run_as_in_single_fits(rng, capsys):
    """Callbacks, Python schedules, a callback stopping its network and one reading (and
    changing) other networks of its group: each network's logs, rates, stop and bits are
    its own fit's, with every network back from the lanes while hooks run."""
    count = 5
    nets = networks([4, 7, 2], "sigmoid", True, "float64", count)
    X, Y = data(rng, 40, 4, 2, "float64")

    def run(nets, many):
        logs = [[] for _ in nets]
        seen_losses = []

        def callback(k):
            def call(epoch, log):
                logs[k].append((epoch, log["loss"], log["lr"]))
                if k == 0:  # reads the others: they hold their parameters of this epoch
                    seen_losses.append([float(net.loss(X, Y)) for net in nets])
                if k == 3 and epoch == 2:
                    return False  # stops network 3 after its third epoch
                return None
            return call

        callbacks = [callback(k) for k in range(count)]
        schedules = [None, lambda epoch: 0.05 / (1 + epoch), None, None,
                     fastprop.optim.StepLR(step_size=2, gamma=0.5)]
        if many:
            result = fastprop.fit_many(nets, X, Y, 5, 0.05, optimizer="sgd", batch_size=8,
                                       shuffle=False, callback=callbacks,
                                       lr_schedule=schedules)
            stops = result.stops
            lanes = result.lanes
        else:
            stops, lanes = [], None
            for k, net in enumerate(nets):
                net.fit(X, Y, 5, 0.05, optimizer="sgd", batch_size=8, shuffle=False,
                        callback=callbacks[k], lr_schedule=schedules[k])
                stops.append(net.history.stop)
        return logs, stops, lanes

    twins = copy.deepcopy(nets)
    logs, stops, _ = run(nets, False)
    many_logs, many_stops, lanes = run(twins, True)
    # One group: network 1's callable schedule runs from its hook, network 4's StepLR is
    # the core's, taken per lane each epoch.
    assert lanes == expected_lanes(5, WIDTH64)
    assert many_stops == stops and stops[3] == "callback"
    assert many_logs == logs
    assert_same(nets, twins)


def test_hooks_that_change_or_train_their_network(rng):
    """A hook may set its network's parameters or train it with a fit of its own: the lane
    goes on from what the network holds afterwards, as the single fit does."""
    X, Y = data(rng, 40, 4, 2, "float64")

    def halving(net):
        def call(epoch, logs):
            if epoch == 1:
                net.params = net.params * 0.5
        return call

    def training(net):
        def call(epoch, logs):
            if epoch == 0:
                net.fit(X, Y, 1, 0.001, optimizer="sgd", batch_size=10, shuffle=False)
        return call

    for hook, optimizer in ((halving, "momentum"), (training, "adam")):
        nets = networks([4, 6, 2], "tanh", True, "float64", 4)
        twins = copy.deepcopy(nets)
        for net in nets:
            net.fit(X, Y, 4, 0.01, optimizer=optimizer, batch_size=8, seed=1,
                    callback=hook(net))
        many = fastprop.fit_many(twins, X, Y, 4, 0.01, optimizer=optimizer, batch_size=8,
                                 seed=1, callback=[hook(net) for net in twins])
        assert many.lanes == [4] * 4
        for a, b in zip(nets, twins):
            assert np.array_equal(a.params, b.params)


def test_each_network_its_own_schedule(rng):
    X, Y = data(rng, 48, 4, 2, "float32")
    schedules = [fastprop.optim.StepLR(step_size=2, gamma=0.5),
                 fastprop.optim.CosineAnnealingLR(T_max=3, eta_min=1e-4),
                 fastprop.optim.InvScaling(power_t=0.25), None]
    nets = networks([4, 9, 2], "tanh", True, "float32", 4)
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 5, [0.05, 0.04, 0.03, 0.02], optimizer="adam",
                             batch_size=16, seed=2, lr_schedule=schedules)
    assert many.lanes == [4] * 4
    for net, lr, schedule in zip(nets, [0.05, 0.04, 0.03, 0.02], schedules):
        net.fit(X, Y, 5, lr, optimizer="adam", batch_size=16, seed=2, lr_schedule=schedule)
    assert_same(nets, twins)
    assert len({tuple(net.history.lr) for net in twins}) == 4


@pytest.mark.parametrize("validation", [False, True])
@pytest.mark.parametrize("restore_best", [True, False])
def test_validation_and_early_stopping(rng, validation, restore_best):
    """Each network's validation loss by the single fits' own pass, and its early stopping:
    networks of one group stop at different epochs, each at its own fit's parameters."""
    count = 6
    nets = networks([4, 8, 2], "tanh", True, "float64", count, loss="mse")
    X, Y = data(rng, 48, 4, 2, "float64")
    val = data(rng, 20, 4, 2, "float64") if validation else None
    lrs = [0.3 * (1 + k) for k in range(count)]  # large rates: some get worse and stop
    arguments = dict(optimizer="sgd", batch_size=12, shuffle=False, validation_data=val,
                     patience=[1, 2, 3, 1, 2, 3], min_delta=[0.0, 0.0, 0.0, 1e-3, 1e-3, 0.0],
                     restore_best=restore_best)
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 12, lrs, **arguments)
    assert many.lanes == expected_lanes(count, WIDTH64)
    for k, (net, lr) in enumerate(zip(nets, lrs)):
        net.fit(X, Y, 12, lr, **{key: value[k] if isinstance(value, list) else value
                                  for key, value in arguments.items()})
    assert_same(nets, twins)
    for a, b in zip(nets, twins):
        if validation:
            assert np.array_equal(a.history.val_loss, b.history.val_loss)
        assert a.history.best_epoch == b.history.best_epoch
    assert "early_stopping" in many.stops


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_gradient_clipping(rng, optimizer):
    """Each network's clip_norm (or none) on its own gradient's norm, summed in double as
    clip_gradient sums it."""
    count = 5
    nets = networks([6, 10, 2], "relu", True, "float32", count)
    X, Y = data(rng, 40, 6, 2, "float32")
    Y *= 4  # large gradients: most steps clipped
    clips = [0.5, None, 2.0, 0.1, 1e6]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, 0.002, optimizer=optimizer, batch_size=8,
                             seed=3, clip_norm=clips)
    assert many.lanes == [count] * count
    for net, clip in zip(nets, clips):
        net.fit(X, Y, 3, 0.002, optimizer=optimizer, batch_size=8, seed=3, clip_norm=clip)
    assert_same(nets, twins)


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
@pytest.mark.parametrize("indexed", [False, True])
def test_sample_weights(rng, loss, indexed):
    """Sample weights lane by lane (each lane's own rows' weights with indices); a minibatch
    whose rows all weigh 0 is left out of that network's epoch alone."""
    count = 5
    X = rng.standard_normal((64, 5))
    Y = np.eye(3)[rng.integers(0, 3, 64)] if loss == "cross_entropy" else \
        rng.standard_normal((64, 3))
    w = np.abs(rng.standard_normal(64))
    w[8:16] = 0  # the second minibatch of the unindexed fits weighs nothing
    rows = [rng.permutation(64)[:48] for _ in range(count)] if indexed else [None] * count
    nets = [fastprop.Network([5, 9, 3], "tanh", bias=True, seed=k, loss=loss)
            for k in range(count)]
    lrs = [0.01 * (1 + k / count) for k in range(count)]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, lrs, optimizer="adam", batch_size=8,
                             shuffle=indexed, seed=5, sample_weight=w,
                             indices=rows if indexed else None)
    assert many.lanes == expected_lanes(count, WIDTH64)
    for net, lr, r in zip(nets, lrs, rows):
        part = slice(None) if r is None else r
        net.fit(X[part], Y[part], 3, lr, optimizer="adam", batch_size=8, shuffle=indexed,
                seed=5, sample_weight=w[part])
    assert_same(nets, twins)


def test_verbose_progress_keeps_the_lanes(rng, capsys):
    nets = networks([4, 7, 2], "tanh", True, "float32", 6)
    X, Y = data(rng, 40, 4, 2, "float32")
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, 0.01, optimizer="sgd", batch_size=8, seed=1,
                             verbose=True)
    assert many.lanes == [6] * 6
    for net in nets:
        net.fit(X, Y, 3, 0.01, optimizer="sgd", batch_size=8, seed=1)
    assert_same(nets, twins)


def test_shuffled_groups_need_the_same_seed(rng):
    nets = networks([4, 6, 1], "tanh", True, "float64", 5)
    X, Y = data(rng, 40, 4, 1, "float64")
    seeds = [1, 2, 1, 2, 3]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, 0.01, optimizer="sgd", batch_size=8, seed=seeds)
    assert many.lanes == [2, 2, 2, 2, 1]
    for net, seed in zip(nets, seeds):
        net.fit(X, Y, 3, 0.01, optimizer="sgd", batch_size=8, seed=seed)
    assert_same(nets, twins)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_per_network_rows(rng, dtype, shuffle):
    """indices=: each lane gathers its own minibatch rows (cross-validation folds, bootstrap
    samples), the same values as each network's fit on X[rows]."""
    X, Y = data(rng, 97, 6, 2, dtype)
    folds = np.array_split(rng.permutation(96), 4)
    train = [np.concatenate(folds[:k] + folds[k + 1:]) for k in range(4)]
    boot = [rng.integers(0, 97, 72) for _ in range(3)]  # rows repeated
    indices = train + boot + train
    count = len(indices)
    nets = networks([6, 11, 2], "tanh", True, dtype, count)
    lrs = [1e-3 * (1 + k / count) for k in range(count)]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 3, lrs, optimizer="momentum", batch_size=10,
                             shuffle=shuffle, seed=4, indices=indices)
    assert many.lanes == expected_lanes(count, width(dtype))
    for net, rows, lr in zip(nets, indices, lrs):
        net.fit(X[rows], Y[rows], 3, lr, optimizer="momentum", batch_size=10, shuffle=shuffle,
                seed=4)
    assert_same(nets, twins)


def test_when_groups_pay():
    """Unforced, fit_many groups networks where that is faster than their own fits: tiny
    ones from a third of a group on, small ones only in fuller groups, larger ones (issue
    17's E1 networks among them, near the FMA peak alone) not at all."""
    _core._force_lanes(False)
    rng = np.random.default_rng(0)

    def lanes(layers, count, batch):
        nets = networks(layers, "tanh", True, "float32", count)
        X, Y = data(rng, 2 * batch, layers[0], layers[-1], "float32")
        return fastprop.fit_many(nets, X, Y, 1, 1e-4, optimizer="sgd", batch_size=batch,
                                 shuffle=False).lanes

    W = WIDTH32
    few = max(2, (W + 2) // 3)
    assert lanes([8, 16, 1], few, 16) == [few] * few
    assert lanes([8, 16, 1], few - 1, 16) == [0] * (few - 1)
    assert lanes([16, 32, 1], W, 32) == [W] * W
    assert lanes([16, 32, 1], W // 2, 32) == [0] * (W // 2)
    assert lanes([32, 32, 32, 4], W, 32) == [0] * W
    assert lanes([64, 64, 64, 10], W, 32) == [0] * W


def test_per_network_arrays(rng):
    """Networks given arrays of their own (X, Y and weights per network, as many rows) step
    together, each lane gathering its minibatch from its own arrays."""
    count = 6
    Xs = [rng.standard_normal((50, 5)) for _ in range(count)]
    Ys = [rng.standard_normal((50, 2)) for _ in range(count)]
    ws = [np.abs(rng.standard_normal(50)) for _ in range(count)]
    nets = networks([5, 8, 2], "tanh", True, "float64", count, loss="mse")
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, Xs, Ys, 3, 0.01, optimizer="momentum", batch_size=8,
                             seed=4, sample_weight=ws)
    assert many.lanes == expected_lanes(count, WIDTH64)
    for net, X, Y, w in zip(nets, Xs, Ys, ws):
        net.fit(X, Y, 3, 0.01, optimizer="momentum", batch_size=8, seed=4, sample_weight=w)
    assert_same(nets, twins)
    many = fastprop.fit_many(twins[:3], Xs[:2] + [Xs[2][:40]], Ys[:2] + [Ys[2][:40]], 1, 0.01,
                             optimizer="sgd", batch_size=8, seed=1)
    assert many.lanes == [2, 2, 1]  # as many rows or not


def test_snapshots_during_a_group_are_states_between_two_steps():
    """A copy of a network taken while its group trains holds parameters the network had
    between two steps (the lanes write them back first): never a torn or stale vector."""
    rng = np.random.default_rng(0)
    nets = networks([300, 300, 300], "tanh", True, "float64", 2)
    X, Y = rng.standard_normal((2, 300)), rng.standard_normal((2, 300))
    epochs = 150

    def digest(params):
        return hashlib.sha1(np.ascontiguousarray(params).tobytes()).digest()

    twin = copy.deepcopy(nets[0])  # full-batch SGD: its states, one epoch at a time
    states = {digest(twin.params)}
    for _ in range(epochs):
        twin.fit(X, Y, 1, 1e-4, optimizer="sgd")
        states.add(digest(twin.params))
    done = threading.Event()
    result = []

    def train():
        try:
            result.append(fastprop.fit_many(nets, X, Y, epochs, 1e-4, optimizer="sgd"))
        finally:
            done.set()

    thread = threading.Thread(target=train)
    thread.start()
    seen = []
    while not done.is_set():
        seen.append(digest(copy.deepcopy(nets[0]).params))
    thread.join()
    assert result[0].lanes == [2, 2]
    assert digest(nets[0].params) == digest(twin.params)
    torn = [k for k, h in enumerate(seen) if h not in states]
    assert not torn, f"{len(torn)} of {len(seen)} copies are no state of the fit"
    assert len(set(seen)) >= 2  # the copies overlapped the training


AVX2 = textwrap.dedent("""
    import copy, sys
    import numpy as np, fastprop
    from fastprop import _core
    rng = np.random.default_rng(1)
    out = [_core.kernel_isa(), str(_core.lane_width("float32")), str(_core.lane_width("float64"))]
    for dtype in ("float32", "float64"):
        W = _core.lane_width(dtype)
        X = rng.standard_normal((40, 7)).astype(dtype)
        Y = rng.standard_normal((40, 2)).astype(dtype)
        nets = [fastprop.Network([7, 20, 20, 2], "sigmoid", bias=True, dtype=dtype, seed=k)
                for k in range(18)]
        twins = copy.deepcopy(nets)
        lrs = [1e-3 * (1 + k) for k in range(18)]
        many = fastprop.fit_many(twins, X, Y, 3, lrs, optimizer="sgd", batch_size=8,
                                 shuffle=False)
        for net, lr in zip(nets, lrs):
            net.fit(X, Y, 3, lr, optimizer="sgd", batch_size=8, shuffle=False)
        same = all(np.array_equal(a.params, b.params) and
                   np.array_equal(np.asarray(a.history), np.asarray(b.history))
                   for a, b in zip(nets, twins))
        out += [str(many.lanes[0]), str(same),
                "".join(net.params.tobytes().hex() for net in twins)]
    print(" ".join(out))
""")


def run_with(max_isa: str | None) -> list[str]:
    env = dict(os.environ)
    env.pop("FASTPROP_MAX_ISA", None)
    if max_isa is not None:
        env["FASTPROP_MAX_ISA"] = max_isa
    out = subprocess.run([sys.executable, "-c", AVX2], env=env, capture_output=True, text=True,
                         check=True, timeout=300)
    return out.stdout.split()


def test_avx2_lanes_equal_separate_fits_and_avx512():
    """With FASTPROP_MAX_ISA=avx2 the groups are 8 float32 or 4 float64 networks wide; every
    fit still ends at its own bits, which are AVX-512's too. The portable kernels (which sum
    without FMA) step no lanes."""
    avx2 = run_with("avx2")
    assert avx2[:3] == ["avx2", "8", "4"]
    assert avx2[3] == "8" and avx2[4] == "True"
    assert avx2[6] == "4" and avx2[7] == "True"
    best = run_with(None)
    if best[0] == "avx512":
        assert best[1:3] == ["16", "8"] and best[4] == "True" and best[7] == "True"
    assert best[5] == avx2[5] and best[8] == avx2[8]
    portable = run_with("portable")
    assert portable[:4] == ["portable", "0", "0", "0"] and portable[6] == "0"
    assert portable[4] == "True" and portable[7] == "True"


INTERRUPTED = textwrap.dedent("""
    import sys, numpy as np, fastprop
    fastprop.set_num_threads(int(sys.argv[1]))
    nets = [fastprop.Network([8, 32, 1], "tanh", bias=True, seed=k) for k in range(20)]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 8)); Y = rng.standard_normal((2048, 1))
    print("ready", flush=True)
    try:
        fastprop.fit_many(nets, X, Y, 1_000_000, 1e-6, optimizer="sgd", batch_size=16,
                          shuffle=False)
    except KeyboardInterrupt:
        lengths = [len(net.history) for net in nets]
        stops = [net.history.stop for net in nets]
        finite = all(np.all(np.isfinite(net.params)) for net in nets)
        moved = sum(not np.array_equal(net.params, fastprop.Network(
            [8, 32, 1], "tanh", bias=True, seed=k).params) for k, net in enumerate(nets))
        trained = sum(length > 0 for length in lengths)
        print("interrupted", trained, finite, set(stops) == {"interrupted"}, moved,
              flush=True)
        sys.exit(0)
    print("finished", flush=True)
    sys.exit(1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_stops_every_lane(threads):
    """Ctrl-C stops every group at its last completed step: every network keeps its epochs
    and its parameters, which moved (the lanes gave them back). On one thread the groups
    run one after the other, and those not started when Ctrl-C came stay as they were."""
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_RAISES + INTERRUPTED, str(threads)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # well inside the fits
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    words = out.split()
    assert proc.returncode == 0, out
    assert words[0] == "interrupted" and words[2] == "True" and words[3] == "True", out
    assert int(words[4]) >= int(words[1]) >= 1, out  # every network with epochs moved


@pytest.mark.skipif(_core.kernel_isa() != "avx512" or os.environ.get("FASTPROP_MAX_ISA"),
                    reason="runs the tests above on AVX2 from an AVX-512 run")
def test_everything_above_on_avx2():
    """Every test of this file (but the slow subprocess ones) again on the AVX2 kernels,
    whose groups are half as wide."""
    env = {**os.environ, "FASTPROP_MAX_ISA": "avx2"}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          __file__, "-k", "not sigint and not avx2 and not snapshots"],
                         env=env, capture_output=True, text=True, timeout=600,
                         cwd=os.path.dirname(__file__))
    assert out.returncode == 0, out.stdout[-3000:]
    assert " passed" in out.stdout


@pytest.mark.parametrize("case", range(60))
def test_random_configurations(case):
    """Random shapes, activations, losses, dtypes, optimisers, batch sizes, data layouts and
    options, each group against its networks' own fits."""
    rng = np.random.default_rng(1000 + case)
    dtype = ["float32", "float64"][case % 2]
    depth = int(rng.integers(1, 4))
    layers = [int(rng.integers(1, 40))] + [int(rng.integers(1, 70)) for _ in range(depth)]
    layers.append(int(rng.integers(1, 5)))
    loss = str(rng.choice(["sse", "mse", "huber", "poisson"]))
    activations = [str(rng.choice(["sigmoid", "tanh", "relu", "leaky_relu", "softplus"]))
                   for _ in range(len(layers) - 2)]
    count = int(rng.integers(2, 2 * width(dtype) + 2))
    t = int(rng.integers(10, 300))
    X = rng.standard_normal((t, layers[0])).astype(dtype)
    Y = np.abs(rng.standard_normal((t, layers[-1]))).astype(dtype)
    optimizer = str(rng.choice(["sgd", "momentum", "nesterov", "adam", "adamw"]))
    arguments = dict(optimizer=optimizer,
                     batch_size=[None, 1, 7, 32, 130][int(rng.integers(0, 5))],
                     shuffle=bool(rng.integers(0, 2)), seed=int(rng.integers(0, 100)))
    if rng.integers(0, 3) == 0:
        arguments["sample_weight"] = np.abs(rng.standard_normal(t))
    if rng.integers(0, 3) == 0:
        arguments["clip_norm"] = float(rng.uniform(0.1, 2.0))
    indices = ([rng.integers(0, t, t // 2 + 1) for _ in range(count)]
               if rng.integers(0, 3) == 0 else None)
    bias = bool(rng.integers(0, 2))
    nets = [fastprop.Network(layers, activations, bias=bias, dtype=dtype, seed=k, loss=loss)
            for k in range(count)]
    lrs = [float(rng.uniform(1e-4, 1e-2)) for _ in range(count)]
    twins = copy.deepcopy(nets)
    many = fastprop.fit_many(twins, X, Y, 2, lrs, indices=indices, errors="ignore",
                             **arguments)
    assert all(lanes > 0 for lanes in many.lanes)
    for k, (net, lr) in enumerate(zip(nets, lrs)):
        rows = slice(None) if indices is None else indices[k]
        args = dict(arguments)
        if "sample_weight" in args:
            args["sample_weight"] = args["sample_weight"][rows]
        try:
            net.fit(X[rows], Y[rows], 2, lr, **args)
        except FloatingPointError:
            assert many.stops[k] == "non_finite"
            assert np.array_equal(net.params, twins[k].params)
            continue
        assert np.array_equal(net.params, twins[k].params), f"network {k}"
        assert np.array_equal(np.asarray(net.history), np.asarray(twins[k].history))
