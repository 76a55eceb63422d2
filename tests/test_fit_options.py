"""The options of Network.fit beyond epochs and lr, and the History it returns.

Checked:

- validation_data and validation_fraction: ``history.val_loss`` has one entry per epoch and
  equals ``net.loss`` on the validation set after that epoch (recorded from inside the
  callback, where calling the network's methods is supported); validation_fraction holds out
  the last rows;
- early stopping: patience and min_delta stop where the documented rule says (replayed on the
  losses of an uninterrupted run), ``history.stop == "early_stopping"``, ``best_epoch``, and
  restore_best puts back the parameters recorded after that epoch;
- History: len == epochs run, time non-decreasing, the attributes without the options, pickling;
- the callback: logs, stopping by returning False, an exception propagating;
- verbose: the plain progress bar on stderr (tqdm hidden), and tqdm when it is importable;
- minibatches: shuffle reproducible from the seed and different between seeds; shuffle=False
  equals manual steps with the same optimiser object;
- cross_entropy with integer labels learns a 3-class problem; a float32 network;
- errors of the new options.
"""

from __future__ import annotations

import copy
import pickle
import sys
import time
import types

import numpy as np
import pytest

import fastprop
from fastprop import optim
from fastprop.network import History  # not exported as fastprop.History

from helpers import assert_close, random_batch

# net.loss from inside the callback runs the same function on the same parameters as the
# validation loss fit records; only a different summation order (a threaded reduction)
# could separate them, by rounding.
VAL_RTOL = 1e-12


# ---------------------------------------------------------------------- helpers
def make_net(dtype="float64", seed=4, layers=(3, 8, 2), loss="sse"):
    return fastprop.Network(list(layers), "tanh", bias=True, dtype=dtype, seed=seed, loss=loss)


def regression_data(rng, t=40, noise=0.3, dtype="float64"):
    """A smooth target of 3 inputs with 2 outputs, plus noise."""
    X = rng.uniform(-1, 1, (t, 3))
    Y = np.stack([np.sin(2 * X[:, 0]) + X[:, 1] * X[:, 2], np.cos(X[:, 1]) - X[:, 0]], axis=1)
    return X.astype(dtype), (Y + noise * rng.standard_normal(Y.shape)).astype(dtype)


class Recorder:
    """A callback keeping the logs, the parameters and chosen losses after every epoch."""

    def __init__(self, net, X_val=None, Y_val=None, stop_at=None):
        self.net, self.X_val, self.Y_val, self.stop_at = net, X_val, Y_val, stop_at
        self.epochs, self.logs, self.params, self.val_loss = [], [], [], []

    def __call__(self, epoch, logs):
        self.epochs.append(epoch)
        self.logs.append(dict(logs))
        self.params.append(self.net.params.copy())
        if self.X_val is not None:
            self.val_loss.append(self.net.loss(self.X_val, self.Y_val))
        if self.stop_at is not None and epoch == self.stop_at:
            return False
        return None


def replay_early_stopping(monitored, patience, min_delta):
    """(epochs run, best epoch) by the documented rule, on the losses of an uninterrupted run."""
    best, best_epoch, waited = np.inf, 0, 0
    for epoch, E in enumerate(monitored):
        if E < best - min_delta:
            best, best_epoch, waited = E, epoch, 0
        else:
            waited += 1
            if waited >= patience:
                return epoch + 1, best_epoch
    return len(monitored), best_epoch


# ---------------------------------------------------------------------- validation
def test_validation_data_loss_is_recorded_after_every_epoch(rng):
    net = make_net()
    X, Y = regression_data(rng)
    X_val, Y_val = regression_data(rng, t=15)
    recorder = Recorder(net, X_val, Y_val)
    history = net.fit(X, Y, epochs=12, lr=0.01, validation_data=(X_val, Y_val), callback=recorder, optimizer="sgd")
    assert history.val_loss is not None and history.val_loss.shape == (12,)
    assert_close(history.val_loss, recorder.val_loss, VAL_RTOL, "val_loss vs net.loss")
    np.testing.assert_array_equal(history.val_loss, [logs["val_loss"] for logs in recorder.logs])
    assert history.val_loss[-1] < history.val_loss[0]  # it trains, so the record is not constant
    assert net.loss(X_val, Y_val) == pytest.approx(history.val_loss[-1], rel=VAL_RTOL)


@pytest.mark.parametrize("batch_size", [None, 7], ids=["full-batch", "shuffled-minibatches"])
def test_validation_does_not_change_training(rng, batch_size):
    # The validation set (60 rows) is larger than a minibatch, so evaluating it regrows the
    # workspace between updates; training must go on exactly as without it.
    net, twin = make_net(), make_net()
    X, Y = regression_data(rng)
    X_val, Y_val = regression_data(rng, t=60)
    history = net.fit(X, Y, epochs=5, lr=0.01, batch_size=batch_size, seed=3,
                      validation_data=(X_val, Y_val), optimizer="sgd")
    plain = twin.fit(X, Y, epochs=5, lr=0.01, batch_size=batch_size, seed=3, optimizer="sgd")
    np.testing.assert_array_equal(history, plain)
    np.testing.assert_array_equal(net.params, twin.params)
    assert plain.val_loss is None


@pytest.mark.parametrize("fraction, n_val", [(0.25, 10), (0.1, 4), (0.5, 20)])
def test_validation_fraction_holds_out_the_last_rows(rng, fraction, n_val):
    net, twin = make_net(), make_net()
    X, Y = regression_data(rng)
    recorder = Recorder(net, X[-n_val:], Y[-n_val:])
    history = net.fit(X, Y, epochs=6, lr=0.01, validation_fraction=fraction, callback=recorder, optimizer="sgd")
    explicit = twin.fit(X[:-n_val], Y[:-n_val], epochs=6, lr=0.01,
                        validation_data=(X[-n_val:], Y[-n_val:]), optimizer="sgd")
    np.testing.assert_array_equal(history, explicit)
    np.testing.assert_array_equal(history.val_loss, explicit.val_loss)
    np.testing.assert_array_equal(net.params, twin.params)
    assert_close(history.val_loss, recorder.val_loss, VAL_RTOL, "val_loss vs net.loss")


def test_validation_with_integer_labels(rng):
    net = make_net(layers=(3, 8, 3), loss="cross_entropy")
    X = rng.standard_normal((30, 3))
    labels = rng.integers(0, 3, 30)
    recorder = Recorder(net, X[20:], labels[20:])
    history = net.fit(X[:20], labels[:20], epochs=4, lr=0.1, validation_data=(X[20:], labels[20:]),
                      callback=recorder, optimizer="sgd")
    assert_close(history.val_loss, recorder.val_loss, VAL_RTOL, "val_loss vs net.loss")


# ---------------------------------------------------------------------- early stopping
def overfitting_case(rng):
    """Training towards Y while validating against Y/2: the validation loss falls while the
    outputs are small, and rises once they pass Y/2, so the best epoch is in the middle."""
    net = make_net(seed=7)
    X, Y = regression_data(rng, noise=0.0)
    return net, X, Y, (X, 0.5 * Y)


OVERFIT_LR = 0.0005  # slow enough that the outputs pass Y/2 around epoch 15 of 100


@pytest.mark.parametrize("patience", [1, 3, 6])
def test_early_stopping_on_validation_loss(rng, patience):
    net, X, Y, validation = overfitting_case(rng)
    twin = make_net(seed=7)
    full = twin.fit(X, Y, epochs=100, lr=OVERFIT_LR, validation_data=validation, optimizer="sgd")
    expected_epochs, expected_best = replay_early_stopping(full.val_loss, patience, 0.0)
    assert 5 < expected_best < 100 - patience - 1, "the case must have its best epoch inside"
    recorder = Recorder(net)
    history = net.fit(X, Y, epochs=100, lr=OVERFIT_LR, validation_data=validation, patience=patience,
                      callback=recorder, optimizer="sgd")
    assert history.stop == "early_stopping"
    assert len(history) == len(history.val_loss) == len(history.time) == expected_epochs
    assert history.best_epoch == expected_best == int(np.argmin(history.val_loss))
    np.testing.assert_array_equal(history, full[:expected_epochs])


def test_restore_best_puts_back_the_best_epochs_parameters(rng):
    net, X, Y, validation = overfitting_case(rng)
    recorder = Recorder(net)
    history = net.fit(X, Y, epochs=100, lr=OVERFIT_LR, validation_data=validation, patience=4,
                      callback=recorder, optimizer="sgd")
    assert history.stop == "early_stopping"
    best = history.best_epoch
    assert best < len(history) - 1
    np.testing.assert_array_equal(net.params, recorder.params[best])
    assert np.any(recorder.params[best] != recorder.params[-1])  # restoring changes something
    assert net.loss(*validation) == pytest.approx(history.val_loss[best], rel=VAL_RTOL)


def test_without_restore_best_the_last_parameters_stay(rng):
    net, X, Y, validation = overfitting_case(rng)
    recorder = Recorder(net)
    history = net.fit(X, Y, epochs=100, lr=OVERFIT_LR, validation_data=validation, patience=4,
                      restore_best=False, callback=recorder, optimizer="sgd")
    assert history.stop == "early_stopping"
    assert history.best_epoch < len(history) - 1
    np.testing.assert_array_equal(net.params, recorder.params[-1])


def test_restore_best_on_training_loss_gives_the_best_loss(rng):
    # Full batch, no validation: history[e] is E of the parameters before epoch e's update, so
    # the best parameters are those that had E = history[best_epoch]. lr 0.08 overshoots, so
    # the loss rises at once and early stopping comes quickly.
    X, Y = random_batch(rng, make_net(), 20)
    net = make_net()
    history = net.fit(X, Y, epochs=500, lr=0.08, patience=3, optimizer="sgd")
    assert history.stop == "early_stopping"
    assert net.loss(X, Y) == pytest.approx(history[history.best_epoch], rel=1e-12)


@pytest.mark.parametrize("min_delta", [0.0, 0.05, 0.5])
def test_min_delta_on_training_loss(rng, min_delta):
    # Without validation the training loss is monitored; small lr makes its improvements
    # shrink, so a larger min_delta stops earlier.
    net, twin = make_net(), make_net()
    X, Y = regression_data(rng)
    full = twin.fit(X, Y, epochs=150, lr=0.002, optimizer="sgd")
    expected_epochs, expected_best = replay_early_stopping(full, 3, min_delta)
    history = net.fit(X, Y, epochs=150, lr=0.002, patience=3, min_delta=min_delta, optimizer="sgd")
    assert (len(history), history.best_epoch) == (expected_epochs, expected_best)
    np.testing.assert_array_equal(history, full[:expected_epochs])
    if min_delta == 0.0:
        assert history.stop == "done"  # gradient descent with small steps keeps improving
    else:
        assert history.stop == "early_stopping"
        assert expected_epochs < replay_early_stopping(full, 3, min_delta / 10)[0]


def test_patience_zero_means_no_early_stopping(rng):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=10, lr=0.005, validation_data=(X, -Y), patience=0, optimizer="sgd")
    assert len(history) == 10 and history.stop == "done" and history.best_epoch is None


# ---------------------------------------------------------------------- History
def test_history_attributes(rng):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=25, lr=0.005, batch_size=8, seed=1, optimizer="sgd")
    assert isinstance(history, History) and history is net.history
    assert history.dtype == np.float64 and history.shape == (25,)
    assert history.time.shape == (25,)
    assert np.all(np.diff(history.time) >= 0) and history.time[0] >= 0
    assert history.val_loss is None and history.best_epoch is None and history.stop == "done"
    assert history[-1] < history[0]


def test_history_time_is_seconds_since_the_fit_started(rng):
    # Without a callback, the ends of the epochs are read from the CPU's time-stamp counter
    # where it runs at a constant rate, and made seconds when the fit ends: still within the
    # call, in order.
    net = make_net()
    X, Y = regression_data(rng)
    start = time.perf_counter()
    history = net.fit(X, Y, epochs=400, lr=0.005, optimizer="sgd")
    wall = time.perf_counter() - start
    assert history.time.shape == (400,)
    assert 0 < history.time[0] and np.all(np.diff(history.time) >= 0)
    assert history.time[-1] <= wall


def test_arrays_derived_from_history_are_plain(rng):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=6, lr=0.005, validation_fraction=0.25, patience=2, optimizer="sgd")
    part = history[2:]
    assert part.val_loss is None and part.best_epoch is None
    np.testing.assert_array_equal(part, np.asarray(history)[2:])


def test_history_survives_pickling(rng):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=8, lr=0.005, validation_fraction=0.25, patience=2, optimizer="sgd")
    again = pickle.loads(pickle.dumps(history))
    assert isinstance(again, History)
    np.testing.assert_array_equal(again, history)
    np.testing.assert_array_equal(again.val_loss, history.val_loss)
    np.testing.assert_array_equal(again.time, history.time)
    assert (again.best_epoch, again.stop) == (history.best_epoch, history.stop)


@pytest.mark.parametrize("how", [copy.copy, copy.deepcopy])
def test_history_survives_copying(rng, how):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=8, lr=0.005, validation_fraction=0.25, patience=2, optimizer="sgd")
    again = how(history)
    assert isinstance(again, History) and again is not history
    assert not np.shares_memory(again, history)
    np.testing.assert_array_equal(again, history)
    np.testing.assert_array_equal(again.val_loss, history.val_loss)
    np.testing.assert_array_equal(again.time, history.time)
    np.testing.assert_array_equal(again.lr, history.lr)
    assert (again.best_epoch, again.stop) == (history.best_epoch, history.stop)
    if how is copy.deepcopy:
        assert not np.shares_memory(again.time, history.time)


def test_zero_epochs_give_an_empty_history(rng):
    net = make_net()
    X, Y = regression_data(rng)
    before = net.params.copy()
    history = net.fit(X, Y, epochs=0, lr=0.01, validation_fraction=0.5, verbose=True, optimizer="sgd")
    assert len(history) == 0 and len(history.time) == 0 and history.stop == "done"
    np.testing.assert_array_equal(net.params, before)


# ---------------------------------------------------------------------- callback
def test_callback_sees_every_epoch_with_its_logs(rng):
    net = make_net()
    X, Y = regression_data(rng)
    recorder = Recorder(net)
    history = net.fit(X, Y, epochs=7, lr=0.005, callback=recorder, optimizer="sgd")
    assert recorder.epochs == list(range(7))
    assert all(set(logs) == {"loss", "time", "lr"} for logs in recorder.logs)
    np.testing.assert_array_equal([logs["loss"] for logs in recorder.logs], history)
    np.testing.assert_array_equal([logs["lr"] for logs in recorder.logs], [0.005] * 7)
    np.testing.assert_array_equal([logs["time"] for logs in recorder.logs], history.time)


@pytest.mark.parametrize("stop_at", [0, 4])
def test_callback_returning_false_stops(rng, stop_at):
    net = make_net()
    X, Y = regression_data(rng)
    recorder = Recorder(net, stop_at=stop_at)
    history = net.fit(X, Y, epochs=50, lr=0.005, callback=recorder, optimizer="sgd")
    assert history.stop == "callback"
    assert len(history) == len(recorder.epochs) == stop_at + 1
    np.testing.assert_array_equal(net.params, recorder.params[-1])  # no update after the stop


def test_callback_returning_other_falsy_values_goes_on(rng):
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=5, lr=0.005, callback=lambda epoch, logs: 0, optimizer="sgd")
    assert len(history) == 5 and history.stop == "done"


def test_exception_in_callback_propagates_and_keeps_the_history(rng):
    net = make_net()
    X, Y = regression_data(rng)

    def callback(epoch, logs):
        if epoch == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        net.fit(X, Y, epochs=10, lr=0.005, callback=callback, optimizer="sgd")
    assert len(net.history) == 3


def test_callback_may_use_the_network(rng):
    # forward, gradient and step from inside the callback: they get a workspace of their own.
    net = make_net()
    X, Y = regression_data(rng)
    seen = []

    def callback(epoch, logs):
        seen.append((net.forward(X[:3]).copy(), net.gradient(X, Y)[0]))

    history = net.fit(X, Y, epochs=3, lr=0.005, batch_size=10, callback=callback, optimizer="sgd")
    assert len(seen) == 3
    np.testing.assert_array_equal(seen[-1][0], net.forward(X[:3]))
    assert seen[-1][1] == pytest.approx(net.loss(X, Y), rel=1e-12)
    assert seen[-1][1] < history[0]


# ---------------------------------------------------------------------- verbose
def test_verbose_draws_a_plain_bar_without_tqdm(rng, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=5, lr=0.005, validation_fraction=0.25, verbose=True, optimizer="sgd")
    out, err = capsys.readouterr()
    assert out == ""
    last = err.rstrip("\n").split("\r")[-1]
    assert last.startswith("epoch 5/5 [" + "#" * 24 + "]"), repr(err)
    assert f"loss {history[-1]:.4g}" in last and f"val {history.val_loss[-1]:.4g}" in last
    assert "samples/s" in last and "ETA" in last
    assert err.endswith("\n")


def test_verbose_uses_tqdm_when_importable(rng, monkeypatch, capsys):
    bars = []

    class FakeTqdm:
        def __init__(self, total, **kwargs):
            self.total, self.updates, self.postfix, self.closed = total, 0, None, False
            bars.append(self)

        def update(self, k):
            self.updates += k

        def set_postfix_str(self, text, refresh=True):
            self.postfix = text

        def close(self):
            self.closed = True

    monkeypatch.setitem(sys.modules, "tqdm", types.SimpleNamespace(tqdm=FakeTqdm))
    net = make_net()
    X, Y = regression_data(rng)
    history = net.fit(X, Y, epochs=6, lr=0.005, verbose=True, optimizer="sgd")
    assert len(bars) == 1
    bar = bars[0]
    assert (bar.total, bar.updates, bar.closed) == (6, 6, True)
    assert bar.postfix.startswith(f"loss {history[-1]:.4g}")
    assert capsys.readouterr().err == ""  # tqdm draws; the plain bar stays silent


def test_not_verbose_is_silent(rng, capfd):
    net = make_net()
    X, Y = regression_data(rng)
    net.fit(X, Y, epochs=5, lr=0.005, validation_fraction=0.25, optimizer="sgd")
    assert capfd.readouterr() == ("", "")


# ---------------------------------------------------------------------- minibatches
def test_shuffled_minibatches_are_reproducible_from_the_seed(rng):
    X, Y = regression_data(rng)
    nets = [make_net() for _ in range(3)]
    histories = [net.fit(X, Y, epochs=4, lr=0.005, batch_size=7, shuffle=True, seed=seed, optimizer="sgd")
                 for net, seed in zip(nets, [11, 11, 12])]
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(histories[0], histories[1])
    assert np.max(np.abs(nets[0].params - nets[2].params)) > 1e-6


def test_shuffle_changes_the_result(rng):
    X, Y = regression_data(rng)
    net, twin = make_net(), make_net()
    net.fit(X, Y, epochs=3, lr=0.005, batch_size=7, shuffle=True, seed=11, optimizer="sgd")
    twin.fit(X, Y, epochs=3, lr=0.005, batch_size=7, shuffle=False, optimizer="sgd")
    assert np.max(np.abs(net.params - twin.params)) > 1e-6


@pytest.mark.parametrize("shuffle, batch_size", [
    (True, 7), (False, 7), (True, None), (False, None), (True, 1000)])
def test_fit_draws_no_seed_of_its_own(rng, monkeypatch, shuffle, batch_size):
    # The shuffles' seed comes from the network's seed (reading the OS's entropy would also
    # cost more than a small step): fit itself never draws one.
    import fastprop.network as network
    drawn = []
    monkeypatch.setattr(network, "_fresh_seed", lambda: drawn.append(1) or 5)
    X, Y = regression_data(rng)
    make_net().fit(X, Y, epochs=2, lr=0.005, batch_size=batch_size, shuffle=shuffle, optimizer="sgd")
    assert drawn == []


def _shuffled_fits(X, Y, seed, calls=2, **kwargs):
    net = fastprop.Network([3, 6, 2], "tanh", seed=seed, bias=False, loss="sse")
    for _ in range(calls):
        net.fit(X, Y, epochs=3, lr=0.005, optimizer="sgd", batch_size=7, **kwargs)
    return net


def test_the_network_seed_makes_the_whole_fit_reproducible(rng):
    X, Y = regression_data(rng)
    a, b = _shuffled_fits(X, Y, seed=21), _shuffled_fits(X, Y, seed=21)
    np.testing.assert_array_equal(a.params, b.params)  # the same bits
    c = _shuffled_fits(X, Y, seed=22)
    assert c.params.shape == a.params.shape and np.max(np.abs(c.params - a.params)) > 1e-6


def test_each_fit_of_a_network_shuffles_anew_but_reproducibly(rng):
    # Two fits of one network use different permutations (the second is not the first's
    # replay), and init() starts the count again.
    X, Y = regression_data(rng)
    net = fastprop.Network([3, 6, 2], "tanh", seed=21, bias=False, loss="sse")
    start = net.params.copy()
    first = net.fit(X, Y, epochs=1, lr=0.005, optimizer="sgd", batch_size=7)
    net.params = start
    second = net.fit(X, Y, epochs=1, lr=0.005, optimizer="sgd", batch_size=7)
    assert first[0] != second[0]
    net.init(21)
    again = net.fit(X, Y, epochs=1, lr=0.005, optimizer="sgd", batch_size=7)
    np.testing.assert_array_equal(again, first)


def test_a_fit_seed_overrides_the_networks(rng):
    X, Y = regression_data(rng)
    nets = [fastprop.Network([3, 6, 2], "tanh", seed=s, bias=False, loss="sse") for s in (21, 21, 99)]
    for net in nets[:2]:
        net.fit(X, Y, epochs=3, lr=0.005, optimizer="sgd", batch_size=7, seed=5)
    # Network 99 starts elsewhere: copy the first's start, then the same fit seed.
    nets[2].params = fastprop.Network([3, 6, 2], "tanh", seed=21, bias=False, loss="sse").params
    nets[2].fit(X, Y, epochs=3, lr=0.005, optimizer="sgd", batch_size=7, seed=5)
    np.testing.assert_array_equal(nets[0].params, nets[1].params)
    np.testing.assert_array_equal(nets[0].params, nets[2].params)
    twin = _shuffled_fits(X, Y, seed=21, calls=1)
    assert np.max(np.abs(twin.params - nets[0].params)) > 1e-6


@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_unshuffled_minibatch_fit_equals_manual_steps(rng, loss):
    # 40 rows in batches of 16: 16, 16, 8. The epoch loss is the sum of the minibatch
    # losses before each update, for a mean loss weighted by rows / t.
    X, Y = regression_data(rng)
    net, twin = make_net(loss=loss), make_net(loss=loss)
    opt, opt_twin = optim.Adam(lr=0.01), optim.Adam(lr=0.01)
    history = net.fit(X, Y, epochs=3, optimizer=opt, batch_size=16, shuffle=False)
    manual = []
    for _ in range(3):
        E_epoch = 0.0
        for r in range(0, 40, 16):
            E = twin.step(X[r:r + 16], Y[r:r + 16], optimizer=opt_twin)
            E_epoch += E * len(X[r:r + 16]) / 40 if loss == "mse" else E
        manual.append(E_epoch)
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_allclose(history, manual, rtol=1e-14)  # only the epoch sums' order differs


def test_batch_size_beyond_the_rows_is_the_full_batch(rng):
    X, Y = regression_data(rng)
    net, twin = make_net(), make_net()
    net.fit(X, Y, epochs=3, lr=0.005, batch_size=1000, shuffle=True, seed=5, optimizer="sgd")
    twin.fit(X, Y, epochs=3, lr=0.005, optimizer="sgd")
    np.testing.assert_array_equal(net.params, twin.params)


# ---------------------------------------------------------------------- learning
def test_cross_entropy_with_integer_labels_learns_three_classes(rng):
    centres = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    labels = rng.integers(0, 3, 300)
    X = centres[labels] + 0.5 * rng.standard_normal((300, 2))
    net = fastprop.Network([2, 8, 3], "tanh", bias=True, seed=0, loss="cross_entropy")
    history = net.fit(X[:240], labels[:240], epochs=30, optimizer="adam", lr=0.02, batch_size=32,
                      seed=0, validation_data=(X[240:], labels[240:]))
    predicted = np.argmax(net.forward(X), axis=1)
    assert history[-1] < 0.2 < np.log(3) < history[0] + 0.5  # from chance level to confident
    assert np.mean(predicted[:240] == labels[:240]) > 0.95
    assert np.mean(predicted[240:] == labels[240:]) > 0.95


def test_float32_network_fits_with_validation_and_early_stopping(rng):
    X, Y = regression_data(rng, dtype="float32")
    net = make_net("float32")
    twin = make_net("float64")
    recorder = Recorder(net, X[30:], Y[30:])
    history = net.fit(X, Y, epochs=40, optimizer="adam", lr=0.01, validation_fraction=0.25,
                      patience=5, callback=recorder)
    reference64 = twin.fit(X, Y, epochs=40, optimizer="adam", lr=0.01, validation_fraction=0.25,
                           patience=5)
    assert net.params.dtype == np.float32
    assert history.dtype == history.val_loss.dtype == np.float64
    assert history.val_loss[-1] < history.val_loss[0] / 2
    # val_loss is computed by the same float32 core as net.loss: rounding only.
    assert_close(history.val_loss, recorder.val_loss, 1e-12, "float32 val_loss vs net.loss")
    # float32 follows float64 to float32 accuracy over 40 Adam epochs (1e-3: FIT_RTOL float32).
    n = min(len(history), len(reference64))
    assert_close(history[:n], reference64[:n], 1e-3, "float32 vs float64 E per epoch")


# ---------------------------------------------------------------------- errors
@pytest.fixture
def data(rng):
    return regression_data(rng, t=10)


@pytest.mark.parametrize("fraction, pattern", [
    (0.0, r"validation_fraction must leave at least one row on each side of the split, in "
          r"\(0, 1\); got 0.0 for 10 rows"),
    (1.0, r"in \(0, 1\); got 1.0 for 10 rows"),
    (1.5, r"in \(0, 1\); got 1.5 for 10 rows"),
    (0.01, r"in \(0, 1\); got 0.01 for 10 rows"),  # rounds to zero rows held out
    (0.99, r"in \(0, 1\); got 0.99 for 10 rows"),  # rounds to every row held out
    (-0.2, r"validation_fraction must be a finite number >= 0, got -0.2"),
    (float("nan"), r"validation_fraction must be a finite number >= 0, got nan"),
])
def test_validation_fraction_outside_the_open_interval_refused(data, fraction, pattern):
    net = make_net()
    with pytest.raises(ValueError, match=pattern):
        net.fit(*data, epochs=1, lr=0.01, validation_fraction=fraction, optimizer="sgd")


def test_validation_data_and_fraction_together_refused(data):
    net = make_net()
    with pytest.raises(ValueError, match=r"give validation_data or validation_fraction, not both"):
        net.fit(*data, epochs=1, lr=0.01, validation_data=data, validation_fraction=0.2, optimizer="sgd")


@pytest.mark.parametrize("patience", [-1, -10])
def test_negative_patience_refused(data, patience):
    with pytest.raises(ValueError, match=rf"patience must be >= 0, got {patience}"):
        make_net().fit(*data, epochs=1, lr=0.01, patience=patience, optimizer="sgd")


@pytest.mark.parametrize("patience, error", [(1.5, TypeError), ("3", TypeError)])
def test_non_integer_patience_refused(data, patience, error):
    with pytest.raises(error, match=r"patience must be an int"):
        make_net().fit(*data, epochs=1, lr=0.01, patience=patience, optimizer="sgd")


@pytest.mark.parametrize("min_delta", [-0.1, float("inf")])
def test_bad_min_delta_refused(data, min_delta):
    with pytest.raises(ValueError, match=r"min_delta must be a finite number >= 0"):
        make_net().fit(*data, epochs=1, lr=0.01, patience=2, min_delta=min_delta, optimizer="sgd")


@pytest.mark.parametrize("X_cols, Y_cols, rows_Y, pattern", [
    (2, 2, 10, r"X_val must have shape \(t, 3\) or \(3,\), got \(10, 2\)"),
    (3, 1, 10, r"Y_val must have shape \(t, 2\), got \(10, 1\)"),
    (3, 2, 7, r"X_val and Y_val must have the same number of rows \(samples\), got 10 and 7"),
])
def test_validation_data_of_the_wrong_shape_refused(data, X_cols, Y_cols, rows_Y, pattern):
    net = make_net()
    before = net.params.copy()
    X_val, Y_val = np.zeros((10, X_cols)), np.zeros((rows_Y, Y_cols))
    with pytest.raises(ValueError, match=pattern):
        net.fit(*data, epochs=1, lr=0.01, validation_data=(X_val, Y_val), optimizer="sgd")
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("X_cols, Y_cols", [(2, 2), (3, 1)], ids=["X_val", "Y_val"])
def test_validation_shape_error_names_the_validation_data(data, X_cols, Y_cols):
    net = make_net()
    with pytest.raises(ValueError, match=r"X_val|Y_val|validation"):
        net.fit(*data, epochs=1, lr=0.01, validation_data=(np.zeros((10, X_cols)),
                                                           np.zeros((10, Y_cols))), optimizer="sgd")


def test_empty_validation_data_refused(data):
    # fit refuses an empty training set; an empty validation set is the same mistake.
    X, Y = data
    with pytest.raises(ValueError, match=r"validation"):
        make_net().fit(X, Y, epochs=3, lr=0.01, validation_data=(X[:0], Y[:0]), patience=1, optimizer="sgd")


@pytest.mark.parametrize("validation_data", [np.zeros((10, 3)), (np.zeros((10, 3)),), 5])
def test_validation_data_not_a_pair_refused(data, validation_data):
    with pytest.raises(TypeError, match=r"validation_data must be a pair \(X_val, Y_val\)"):
        make_net().fit(*data, epochs=1, lr=0.01, validation_data=validation_data, optimizer="sgd")


@pytest.mark.parametrize("option, value, error, pattern", [
    ("callback", 3, TypeError, r"callback must be callable or None, got int"),
    ("verbose", 1, TypeError, r"verbose must be True or False, got 1"),
    ("restore_best", "yes", TypeError, r"restore_best must be True or False, got 'yes'"),
    ("checkpoint", b"run.npz", TypeError, r"checkpoint must be a file path \(a str or "
                                          r"os.PathLike of str\), got bytes b'run.npz'"),
    ("checkpoint", 3, TypeError, r"checkpoint must be a file path .*, got int 3"),
])
def test_bad_option_types_refused(data, option, value, error, pattern):
    with pytest.raises(error, match=pattern):
        make_net().fit(*data, epochs=1, lr=0.01, **{option: value})


def owned_bytes(a: np.ndarray) -> int:
    """The bytes of the buffer an array keeps alive (its base's, for a view)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a.nbytes


@pytest.mark.parametrize("epochs", [10**10, 2**63 - 1])
@pytest.mark.parametrize("stop", ["early_stopping", "callback"])
def test_memory_follows_the_epochs_run_not_the_epochs_asked_for(rng, epochs, stop):
    # "Until early stopping" is a huge epoch count: nothing is sized by it (10**10 epochs of
    # records would be 75 GiB), and the history keeps 8 bytes per epoch run and array.
    net = fastprop.Network([3, 4, 1], seed=0)
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    if stop == "early_stopping":  # no epoch improves by 1e9: stops after patience + 1
        kwargs = {"patience": 2, "min_delta": 1e9, "validation_fraction": 0.25}
    else:
        kwargs = {"callback": lambda epoch, logs: epoch < 2}
    h = net.fit(X, Y, epochs, 1e-3, **kwargs)
    assert len(h) == 3 and h.stop == stop
    for name, a in [("loss", h), ("time", h.time)] + (
            [("val_loss", h.val_loss)] if h.val_loss is not None else []):
        assert owned_bytes(np.asarray(a)) == 8 * 3, name


def test_a_callback_returning_numpys_false_stops_the_fit():
    X = np.random.default_rng(0).standard_normal((20, 2))
    net = fastprop.Network([2, 3, 1], seed=0)
    history = net.fit(X, X[:, :1], 10, callback=lambda epoch, logs: np.bool_(epoch < 2))
    assert len(history) == 3 and history.stop == "callback"


@pytest.mark.parametrize("refused", [dict(clip_norm=-1.0), dict(patience=-1),
                                     dict(callback=5), dict(lr_schedule="x"),
                                     dict(min_delta=-1.0), dict(checkpoint="/nonexistent/c.npz")])
def test_a_refused_fit_is_not_counted(rng, refused):
    """The count of fits draws the next fit's shuffles: a call refused before training must
    leave it, so that the network still repeats a twin's fits."""
    X, Y = rng.standard_normal((40, 3)), rng.standard_normal((40, 1))
    net, twin = (fastprop.Network([3, 4, 1], "tanh", seed=0) for _ in range(2))
    with pytest.raises((ValueError, TypeError, OSError)):
        net.fit(X, Y, 2, batch_size=8, **refused)
    net.fit(X, Y, 2, batch_size=8)
    twin.fit(X, Y, 2, batch_size=8)
    assert np.array_equal(net.params, twin.params)
