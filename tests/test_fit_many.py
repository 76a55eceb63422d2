"""fastprop.fit_many: many networks in one call, each to the bits of its own fit."""

from __future__ import annotations

import copy
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastprop
from helpers import SIGINT_RAISES


@pytest.fixture
def restore_threads():
    before = fastprop.get_num_threads()
    yield
    fastprop.set_num_threads(before)


def data(rng, t=96, l_0=5, l_n=3):
    X = rng.standard_normal((t, l_0))
    Y = rng.standard_normal((t, l_n))
    return X, Y


# Networks that differ in everything: shapes, activations, dtype, bias, loss; and the fit
# arguments each gets (optimiser, hyperparameters, batch size, seed, validation, early
# stopping, sample weights).
def mixed_set(rng):
    X, Y = data(rng)
    X_val, Y_val = data(rng, t=20)
    labels = rng.integers(0, 3, len(X))
    nets = [
        fastprop.Network([5, 8, 3], "sigmoid", bias=True, seed=1),
        fastprop.Network([5, 16, 16, 3], "tanh", bias=True, dtype="float32", seed=2),
        fastprop.Network([5, 4, 3], "relu", bias=False, seed=3, loss="mse"),
        fastprop.Network([5, 32, 3], "leaky_relu", bias=True, dtype="float32", seed=4,
                         loss="cross_entropy"),
        fastprop.Network([5, 160, 160, 3], ["tanh", "softplus"], bias=True, seed=5),
        fastprop.Network([5, 6, 3], "sigmoid", bias=True, dtype="float32", seed=6),
        fastprop.Network([5, 3, 3], "tanh", seed=7),
    ]
    Ys = [Y, Y.astype(np.float32), Y, labels, Y, Y, Y]
    arguments = dict(
        epochs=[7, 5, 9, 6, 3, 8, 4],
        lr=[0.01, 0.003, 0.002, 0.02, 1e-3, 0.01, None],
        optimizer=["sgd", "adam", "momentum", "adamw", "nesterov", "rprop", "lm"],
        batch_size=[7, 16, None, 10, 256, 32, None],
        seed=[11, 12, None, 14, 15, 16, None],
        validation_data=[(X_val, Y_val), None, None, None, None, (X_val, Y_val), None],
        patience=[2, None, None, None, None, 1, None],
        sample_weight=[None, None, np.abs(rng.standard_normal(len(X))), None, None, None, None],
    )
    return nets, X, Ys, arguments


def fit_alone(nets, X, Ys, arguments):
    """Each network's own fit, with the same arguments."""
    histories = []
    for k, net in enumerate(nets):
        args = {key: value[k] for key, value in arguments.items()}
        histories.append(net.fit(X, Ys[k], **args))
    return histories


def assert_same(nets_a, nets_b, histories_a, histories_b):
    for k, (a, b) in enumerate(zip(nets_a, nets_b)):
        assert np.array_equal(a.params, b.params), f"network {k}: parameters differ"
        assert np.array_equal(np.asarray(histories_a[k]), np.asarray(histories_b[k]),
                              equal_nan=True), f"network {k}: losses differ"
        if histories_a[k].val_loss is not None:
            assert np.array_equal(histories_a[k].val_loss, histories_b[k].val_loss)


@pytest.mark.parametrize("threads", [1, 2])
def test_bits_equal_separate_fits(rng, threads, restore_threads):
    nets, X, Ys, arguments = mixed_set(rng)
    twins = copy.deepcopy(nets)
    fastprop.set_num_threads(2)  # the single fits with every thread they can use
    alone = fit_alone(nets, X, Ys, arguments)
    assert all(len(h) > 0 for h in alone)
    fastprop.set_num_threads(threads)
    many = fastprop.fit_many(twins, X, Ys, **arguments)
    assert many.stops == ["early_stopping" if h.stop == "early_stopping" else "done"
                          for h in alone]
    assert_same(nets, twins, alone, many)
    assert all(net.history is h for net, h in zip(twins, many))


def test_single_fits_equal_across_thread_counts(rng, restore_threads):
    """What fit_many's promise rests on: a fit is the same bits on one thread and on two."""
    nets, X, Ys, arguments = mixed_set(rng)
    twins = copy.deepcopy(nets)
    fastprop.set_num_threads(1)
    one = fit_alone(nets, X, Ys, arguments)
    fastprop.set_num_threads(2)
    two = fit_alone(twins, X, Ys, arguments)
    assert_same(nets, twins, one, two)


@pytest.mark.parametrize("threads", [1, 2])
def test_index_subsets_equal_fits_on_copies(rng, threads, restore_threads):
    fastprop.set_num_threads(threads)
    X, Y = data(rng, t=120)
    w = np.abs(rng.standard_normal(len(X)))
    folds = np.array_split(rng.permutation(len(X)), 4)
    train = [np.concatenate(folds[:k] + folds[k + 1:]) for k in range(4)]
    boot = rng.integers(0, len(X), len(X))  # a bootstrap sample, rows repeated
    indices = [*train, boot, None]
    nets = [fastprop.Network([5, 12, 3], "tanh", bias=True, dtype=d, seed=k)
            for k, d in enumerate(["float64", "float32"] * 3)]
    twins = copy.deepcopy(nets)
    arguments = dict(epochs=4, lr=0.01, optimizer="adam", seed=3,
                     batch_size=[16, 16, None, 16, 8, 16], shuffle=[True, True, True, False,
                                                                    True, True],
                     validation_fraction=[None, 0.2, None, None, None, None],
                     sample_weight=[None, None, w, w, None, None])
    alone = []
    for k, net in enumerate(nets):
        rows = slice(None) if indices[k] is None else indices[k]
        args = {key: value[k] if isinstance(value, list) else value
                for key, value in arguments.items()}
        if args["sample_weight"] is not None:
            args["sample_weight"] = args["sample_weight"][rows]
        alone.append(net.fit(X[rows], Y[rows], **args))
    many = fastprop.fit_many(twins, X, Y, indices=indices, **arguments)
    assert_same(nets, twins, alone, many)


def test_nan_stops_that_network_alone(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], "relu", bias=True, seed=k) for k in range(3)]
    twins = copy.deepcopy(nets)
    lrs = [0.001, 1e30, 0.002]  # the second diverges
    alone = [nets[0].fit(X, Y, 20, lrs[0], optimizer="sgd", batch_size=8, seed=1), None,
             nets[2].fit(X, Y, 20, lrs[2], optimizer="sgd", batch_size=8, seed=1)]
    with pytest.warns(RuntimeWarning, match=r"1 of 3 networks failed.*1 \(non_finite\)"):
        many = fastprop.fit_many(twins, X, Y, 20, lrs, optimizer="sgd", batch_size=8, seed=1)
    assert many.stops == ["done", "non_finite", "done"]
    assert many.failed == [1]
    assert isinstance(many.errors[1], FloatingPointError)
    assert len(many[1]) < 20 and many[1].stop == "non_finite"
    assert np.all(np.isfinite(twins[1].params))
    assert_same([nets[0], nets[2]], [twins[0], twins[2]], [alone[0], alone[2]],
                [many[0], many[2]])


def test_errors_raise_after_the_others_trained(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], "relu", bias=True, seed=k) for k in range(2)]
    before = nets[1].params.copy()
    with pytest.raises(FloatingPointError, match=r"networks\[0\]: the loss"):
        fastprop.fit_many(nets, X, Y, 10, [1e30, 0.001], optimizer="sgd", errors="raise")
    assert len(nets[1].history) == 10 and not np.array_equal(nets[1].params, before)


def test_callback_error_stops_its_network_alone(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], seed=k) for k in range(3)]
    seen = []

    def fails(epoch, logs):
        seen.append(logs["network"])
        if epoch == 2:
            raise ZeroDivisionError("from the callback")

    def records(epoch, logs):
        seen.append(logs["network"])

    many = fastprop.fit_many(nets, X, Y, 6, 0.01, callback=[records, fails, records],
                             errors="ignore")
    assert many.stops == ["done", "error", "done"]
    assert isinstance(many.errors[1], ZeroDivisionError)
    assert len(many[1]) == 3 and len(many[0]) == 6
    assert sorted(seen) == [0] * 6 + [1] * 3 + [2] * 6
    with pytest.raises(ZeroDivisionError):
        fastprop.fit_many(nets, X, Y, 6, 0.01, callback=[records, fails, records],
                          errors="raise")


def test_callback_false_stops_one_network(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], seed=k) for k in range(2)]
    many = fastprop.fit_many(nets, X, Y, 5, 0.01,
                             callback=[None, lambda epoch, logs: epoch < 1])
    assert many.stops == ["done", "callback"] and [len(h) for h in many] == [5, 2]


def test_verbose_shows_one_bar(rng, capsys):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 4, 3], seed=k) for k in range(3)]
    fastprop.fit_many(nets, X, Y, 4, 0.01, verbose=True)
    err = capsys.readouterr().err
    assert "epoch 12/12" in err or "12/12" in err


# ---------------------------------------------------------------- bad input, before training

def nets_and_data(rng):
    X, Y = data(rng)
    return [fastprop.Network([5, 4, 3], seed=k) for k in range(3)], X, Y


def untouched(nets, before):
    return all(np.array_equal(n.params, b) for n, b in zip(nets, before))


@pytest.mark.parametrize("case, error, match", [
    ("width", ValueError, r"networks\[2\] has 4 inputs \(l_0\), but the shared X has 5 "
                        r"columns"),
    ("lr_list", ValueError, r"lr: a list gives one value per network, so it must have 3 "
                            r"entries \(one per network\), got 2"),
    ("index_range", ValueError, r"networks\[1\]: indices must be row numbers in \[0, 96\)"),
    ("index_type", TypeError, r"indices must be a 1-D array of integer row indices"),
    ("index_empty", ValueError, r"indices must select at least one row"),
    ("duplicate", ValueError, r"networks must be distinct"),
    ("shared_optimizer", ValueError, r"an optimiser object keeps the state of one network"),
    ("not_networks", TypeError, r"networks\[1\] must be a fastprop.Network"),
    ("errors", ValueError, r"errors must be one of warn, raise, ignore"),
    ("Y_list", ValueError, r"Y: a list gives one value per network"),
    ("epochs", ValueError, r"networks\[0\]: epochs must be"),
])
def test_bad_input_is_refused_before_any_training(rng, case, error, match):
    nets, X, Y = nets_and_data(rng)
    kwargs = dict(epochs=3, lr=0.01)
    if case == "width":
        nets[2] = fastprop.Network([4, 4, 3], seed=9)
    elif case == "lr_list":
        kwargs["lr"] = [0.1, 0.2]
    elif case == "index_range":
        kwargs["indices"] = [None, np.array([0, 96]), None]
    elif case == "index_type":
        kwargs["indices"] = np.array([0.5, 1.0])
    elif case == "index_empty":
        kwargs["indices"] = np.array([], dtype=int)
    elif case == "duplicate":
        nets[2] = nets[0]
    elif case == "shared_optimizer":
        kwargs["optimizer"] = fastprop.optim.Adam()
    elif case == "not_networks":
        nets[1] = "net"
    elif case == "errors":
        kwargs["errors"] = "sometimes"
    elif case == "Y_list":
        Y = [Y, Y]
    elif case == "epochs":
        kwargs["epochs"] = -1
    before = [n.params.copy() for n in nets if isinstance(n, fastprop.Network)]
    with pytest.raises(error, match=match):
        fastprop.fit_many(nets, X, Y, **kwargs)
    assert untouched([n for n in nets if isinstance(n, fastprop.Network)], before)


def test_one_network_and_empty_list(rng):
    X, Y = data(rng)
    net = fastprop.Network([5, 4, 3], seed=0)
    twin = copy.deepcopy(net)
    h = net.fit(X, Y, 3, 0.01)
    many = fastprop.fit_many([twin], X, Y, 3, 0.01)
    assert np.array_equal(net.params, twin.params) and np.array_equal(h, many[0])
    assert fastprop.fit_many([], X, Y, 3) == []


def test_optimizer_objects_one_per_network_keep_state(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 4, 3], seed=k) for k in range(2)]
    opts = [fastprop.optim.Adam(lr=0.01), fastprop.optim.SGD(lr=0.01, momentum=0.9)]
    fastprop.fit_many(nets, X, Y, 3, optimizer=opts, batch_size=32)
    assert [o.steps for o in opts] == [9, 9]
    assert opts[0].state["m"].shape == (nets[0].n_params,)


INTERRUPTED = textwrap.dedent("""
    import sys, numpy as np, fastprop
    fastprop.set_num_threads(int(sys.argv[1]))
    nets = [fastprop.Network([32, 64, 64, 1], "tanh", bias=True, seed=k) for k in range(5)]
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 32)); Y = rng.standard_normal((2048, 1))
    print("ready", flush=True)
    try:
        fastprop.fit_many(nets, X, Y, 1_000_000, 1e-6, batch_size=64)
    except KeyboardInterrupt:
        lengths = [len(net.history) for net in nets]
        stops = [net.history.stop for net in nets]
        finite = all(np.all(np.isfinite(net.params)) for net in nets)
        print("interrupted", max(lengths), finite, set(stops) == {"interrupted"}, flush=True)
        sys.exit(0)
    print("finished", flush=True)
    sys.exit(1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("threads", [1, 2])
def test_sigint_stops_every_network(threads):
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_RAISES + INTERRUPTED, str(threads)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.5)  # well inside the fits
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.perf_counter() - sent
    finally:
        proc.kill()
    words = out.split()
    assert proc.returncode == 0, out
    # Some network completed epochs (those not yet started when Ctrl-C came have none).
    assert words[0] == "interrupted" and words[2] == "True" and words[3] == "True", out
    assert int(words[1]) >= 1
    assert elapsed < 5.0


def test_default_seeds_and_schedules_equal_separate_fits(rng):
    """seed=None derives each fit's seed from the network's seed and its count of fits, as
    fit does; an lr_schedule (an object, or a callable run from the epoch hook) per network."""
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], "tanh", seed=k) for k in range(3)]
    twins = copy.deepcopy(nets)
    schedules = [fastprop.optim.StepLR(step_size=2, gamma=0.5), lambda epoch: 0.01 / (1 + epoch),
                 None]
    for _ in range(2):  # the second fit of each network draws another seed
        alone = [net.fit(X, Y, 4, 0.01, batch_size=16, lr_schedule=s, clip_norm=1.0)
                 for net, s in zip(nets, schedules)]
        many = fastprop.fit_many(twins, X, Y, 4, 0.01, batch_size=16, lr_schedule=schedules,
                                 clip_norm=1.0)
        assert_same(nets, twins, alone, many)
        assert all(np.array_equal(a.lr, b.lr) for a, b in zip(alone, many))


def test_refused_input_counts_no_fit(rng):
    X, Y = data(rng)
    nets = [fastprop.Network([5, 8, 3], seed=k) for k in range(2)]
    twins = copy.deepcopy(nets)
    with pytest.raises(ValueError, match=r"networks\[1\]: epochs must be"):
        fastprop.fit_many(nets, X, Y, [3, -1])
    alone = [net.fit(X, Y, 3, batch_size=16) for net in twins]
    many = fastprop.fit_many(nets, X, Y, 3, batch_size=16)
    assert_same(twins, nets, alone, many)


def test_sparse_data_is_refused_with_a_message():
    scipy_sparse = pytest.importorskip("scipy.sparse")
    nets = [fastprop.Network([3, 4, 1], seed=k) for k in range(2)]
    X = scipy_sparse.random(20, 3, density=0.5, format="csr", random_state=0)
    Y = np.zeros((20, 1))
    with pytest.raises(TypeError, match="fit_many needs a dense X"):
        fastprop.fit_many(nets, X, Y, 1)
    with pytest.raises(TypeError, match=r"fit_many needs a dense X\[1\]"):
        fastprop.fit_many(nets, [X.toarray(), X], [Y, Y], 1)


def test_per_network_X_must_be_two_dimensional_and_checkpoints_distinct(tmp_path):
    nets = [fastprop.Network([2, 3, 1], seed=k) for k in range(3)]
    X = np.random.default_rng(0).standard_normal((3, 2))
    Y = np.zeros((3, 1))
    before = [net.params.copy() for net in nets]
    # X.tolist() is a list of 3 rows: read as one X per network it would train each on a row
    with pytest.raises(ValueError, match=r"X\[0\] has 1 dimensions"):
        fastprop.fit_many(nets, X.tolist(), Y, 1)
    with pytest.raises(ValueError, match="each network needs its own path"):
        fastprop.fit_many(nets, X, Y, 1, checkpoint=tmp_path / "run.npz")
    # one file under two names is one file
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.npz").symlink_to(tmp_path / "sub" / "run.npz")
    for aliases in ([tmp_path / "sub" / "run.npz", tmp_path / "sub" / "." / "run.npz", None],
                    [None, tmp_path / "link.npz", tmp_path / "sub" / "run.npz"]):
        with pytest.raises(ValueError, match=r"networks\[\d\] and networks\[\d\] both name"):
            fastprop.fit_many(nets, X, Y, 1, checkpoint=aliases)
    for bad in (("sgd", "adam", "sgd"), 3):  # not objects: each network's fit judges them
        with pytest.raises(ValueError, match=r"networks\[0\]: optimizer must be one of sgd, .* "
                                             r"\(or an Optimizer object\); got " + re.escape(repr(bad))):
            fastprop.fit_many(nets, X, Y, 1, optimizer=bad)
    for net, params in zip(nets, before):
        np.testing.assert_array_equal(net.params, params)
    paths = [tmp_path / f"run{k}.npz" for k in range(3)]
    fastprop.fit_many(nets, X, Y, 2, checkpoint=paths)
    assert all(path.exists() for path in paths)


@pytest.mark.parametrize("exception", [KeyboardInterrupt, SystemExit])
def test_a_callbacks_keyboard_interrupt_or_exit_ends_the_call(exception):
    nets = [fastprop.Network([2, 3, 1], seed=k) for k in range(3)]
    X = np.random.default_rng(0).standard_normal((20, 2))

    def callback(epoch, logs):
        if logs["network"] == 1 and epoch == 1:
            raise exception()

    with pytest.raises(exception):
        fastprop.fit_many(nets, X, X[:, :1], 5, callback=callback)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("exception", [KeyboardInterrupt, SystemExit])
@pytest.mark.parametrize("same_shape", [False, True])  # trained alone, or in a lane group
def test_a_callbacks_keyboard_interrupt_stops_the_other_networks_too(exception, threads,
                                                                     same_shape):
    # Ctrl-C that lands while a callback runs comes out of the callback: every other network
    # stops at its last completed update, as on Ctrl-C between two updates (they used to
    # train all their epochs first).
    epochs = 1_000_000
    # network 0 the largest, so that it starts first on one thread too
    nets = [fastprop.Network([4, 8 if same_shape else 9 - k, 1], "tanh", seed=k)
            for k in range(6)]
    X = np.random.default_rng(0).standard_normal((16, 4))

    def callback(epoch, logs):
        if logs["network"] == 0 and epoch == 3:
            raise exception()

    before = fastprop.get_num_threads()
    fastprop.set_num_threads(threads)
    try:
        with pytest.raises(exception):
            fastprop.fit_many(nets, X, X[:, :1], epochs, callback=callback, optimizer="sgd")
    finally:
        fastprop.set_num_threads(before)
    assert len(nets[0].history) == 4
    for net in nets[1:]:
        assert len(net.history) < epochs
        assert np.all(np.isfinite(net.params))


def test_networks_given_the_same_arguments_share_one_checked_plan(rng, monkeypatch):
    """Networks given the same arguments but lr copy the first network's checked plan
    (Network._fit_plan_like): the same bits and fit counts as separate fits, whatever their
    dtypes and losses, and a bad lr still names its network before any training."""
    X, Y = data(rng)
    labels = rng.integers(0, 3, len(X))
    nets = [fastprop.Network([5, 6, 3], "tanh", dtype=d, seed=k, loss=loss)
            for k, (d, loss) in enumerate([("float64", "sse"), ("float64", "sse"),
                                           ("float32", "sse"), ("float64", "sse"),
                                           ("float64", "mse"), ("float64", "sse")])]
    twins = copy.deepcopy(nets)
    lrs = [0.01, 0.02, 0.02, None, 0.03, 0.005]
    checked = []
    fit_plan = fastprop.Network._fit_plan
    monkeypatch.setattr(fastprop.Network, "_fit_plan",
                        lambda self, *a, **k: checked.append(1) or fit_plan(self, *a, **k))
    # Plans copied: networks 1 and 5 (2 differs in dtype, 3 in lr None, 4 in loss), and
    # none where a seed is drawn per network (shuffle without a seed).
    for (shuffle, seed), plans in zip(((False, None), (True, None), (True, 7), (False, 3)),
                                      (4, 6, 4, 4)):
        alone = [net.fit(X, Y, 3, lr, optimizer="sgd", momentum=0.5, batch_size=16,
                         shuffle=shuffle, seed=seed) for net, lr in zip(nets, lrs)]
        checked.clear()
        many = fastprop.fit_many(twins, X, Y, 3, lrs, optimizer="sgd", momentum=0.5,
                                 batch_size=16, shuffle=shuffle, seed=seed)
        assert len(checked) == plans
        assert_same(nets, twins, alone, many)
        assert [n.__dict__.get("_fits") for n in nets] == [n.__dict__.get("_fits")
                                                           for n in twins]
    counts = [n.__dict__.get("_fits") for n in twins]
    with pytest.raises(ValueError, match=r"networks\[1\]: lr must be"):
        fastprop.fit_many(twins, X, Y, 3, [0.01, -1.0, 0.01, 0.01, 0.01, 0.01],
                          optimizer="sgd")
    assert [n.__dict__.get("_fits") for n in twins] == counts

    def interrupted(self, *a, **k):  # Ctrl-C while the third network's plan is made
        if self is twins[2]:
            raise KeyboardInterrupt
        return fit_plan(self, *a, **k)
    monkeypatch.setattr(fastprop.Network, "_fit_plan", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fastprop.fit_many(twins, X, Y, 3, lrs, optimizer="sgd", shuffle=True)
    assert [n.__dict__.get("_fits") for n in twins] == counts
    monkeypatch.setattr(fastprop.Network, "_fit_plan", fit_plan)
    cross = [fastprop.Network([5, 6, 3], "relu", seed=k, loss="cross_entropy") for k in range(3)]
    cross_twins = copy.deepcopy(cross)
    alone = [net.fit(X, labels, 2, 0.01 * (k + 1), optimizer="adam", batch_size=8, seed=1)
             for k, net in enumerate(cross)]
    many = fastprop.fit_many(cross_twins, X, labels, 2, [0.01, 0.02, 0.03], optimizer="adam",
                             batch_size=8, seed=1)
    assert_same(cross, cross_twins, alone, many)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("verbose", [False, True])
def test_jobs_copied_from_the_first_equal_separate_fits(rng, threads, verbose, monkeypatch,
                                                       restore_threads, capsys):
    """Networks given the same arguments but lr have their jobs made from the first's in one
    call (FitJob.like; with a progress bar, plans copied by Network._fit_plan_like): every
    network's parameters, whole History (loss, lr, time, best_epoch, stop), stop, error and
    fit count are those of its own fit, early stopping and a diverging network included."""
    X, Y = data(rng)
    nets = [fastprop.Network([5, h, 3], "tanh", seed=k) for k, h in enumerate([8, 8, 4, 8, 6])]
    twins = copy.deepcopy(nets)
    lrs = [0.001, 0.002, 1e30, 0.0005, 0.004]  # network 2 diverges
    arguments = dict(optimizer="sgd", momentum=0.5, batch_size=16, shuffle=False, patience=2,
                     min_delta=0.5)
    fastprop.set_num_threads(2)
    alone = []
    for net, lr in zip(nets, lrs):
        try:
            alone.append(net.fit(X, Y, 12, lr, **arguments))
        except FloatingPointError as error:
            alone.append(error)
    copied = []
    like = fastprop.Network._fit_plan_like
    monkeypatch.setattr(fastprop.Network, "_fit_plan_like",
                        lambda self, *a: copied.append(1) or like(self, *a))
    fastprop.set_num_threads(threads)
    with pytest.warns(RuntimeWarning, match=r"1 of 5 networks failed.*: 2 \(non_finite\)"):
        many = fastprop.fit_many(twins, X, Y, 12, lrs, verbose=verbose, **arguments)
    assert len(copied) == (4 if verbose else 0)
    assert many.failed == [2]
    assert str(many.errors[2]) == f"networks[2]: {alone[2]}"
    assert many[2].stop == "non_finite" and np.array_equal(nets[2].params, twins[2].params)
    for k in (0, 1, 3, 4):
        a, b = alone[k], many[k]
        assert np.array_equal(nets[k].params, twins[k].params), k
        assert np.array_equal(a, b) and np.array_equal(a.lr, b.lr), k
        assert (a.best_epoch, a.stop, len(a.time), a.val_loss) == \
            (b.best_epoch, b.stop, len(b.time), b.val_loss), k
        assert type(b) is fastprop.History and twins[k].history is b
    assert "early_stopping" in many.stops
    assert [n.__dict__.get("_fits") for n in nets] == [n.__dict__.get("_fits") for n in twins]


def test_an_exception_of_the_users_own_keeps_its_type(rng):
    class Refused(ValueError):
        def __init__(self, code: int, text: str) -> None:
            super().__init__(f"code {code}: {text}")
            self.code = code

    def schedule(epoch: int) -> float:
        raise Refused(42, "no rate")

    nets = [fastprop.Network([3, 4, 1], "tanh", seed=k) for k in range(2)]
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 1))
    with pytest.raises(Refused) as caught:
        fastprop.fit_many(nets, X, Y, 2, optimizer="sgd", lr_schedule=schedule)
    assert caught.value.code == 42


def test_indices_for_each_network_go_in_a_list(rng):
    nets = [fastprop.Network([3, 4, 1], "tanh", seed=k) for k in range(2)]
    X, Y = rng.standard_normal((20, 3)), rng.standard_normal((20, 1))
    with pytest.raises(TypeError, match=r"indices: one index array per network goes in a "
                                        r"list, got a tuple of 2 arrays"):
        fastprop.fit_many(nets, X, Y, 1, indices=(np.arange(10), np.arange(20)))
    fastprop.fit_many(nets, X, Y, 1, indices=(0, 1, 2))  # a tuple of rows: one index for all
    with pytest.raises(TypeError, match=r"np.nonzero returns a tuple.*np.flatnonzero\(mask\)"):
        fastprop.fit_many(nets, X, Y, 1, indices=np.nonzero(X[:, 0] > 0))


@pytest.mark.parametrize("value, kind", [(np.array([1e-3, 3e-3]), "a NumPy array of 2"),
                                         ((1e-3, 3e-3), "a tuple of 2")])
def test_per_network_values_in_an_array_or_tuple_are_told_to_be_a_list(rng, value, kind):
    nets = [fastprop.Network([3, 4, 1], "tanh", seed=k) for k in range(2)]
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 1))
    with pytest.raises(TypeError, match=f"lr: one value per network goes in a list, got {kind}"):
        fastprop.fit_many(nets, X, Y, 1, lr=value)
    fastprop.fit_many(nets, X, Y, 1, optimizer="adam", betas=(0.9, 0.99))  # one tuple for all
