"""The ranks' side of test_distributed.py: `mpiexec -n R python _mpi_worker.py SCENARIO [ARGS]`.

Every rank prints lines "rank r: ..." and exits 0 when the scenario behaved as it should;
an assertion or an unexpected exception ends the rank (and with it, the job) non-zero.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

import numpy as np

import fastprop
from fastprop import distributed

from mpi4py import MPI

comm = MPI.COMM_WORLD
rank, R = comm.rank, comm.size


def say(text: str) -> None:
    os.write(1, f"rank {rank}: {text}\n".encode())  # one write: lines of ranks do not mix


def data(t: int, l_0: int, l_n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(t, l_0)), rng.normal(size=(t, l_n))


def cuts(t: int) -> np.ndarray:
    """Uneven parts: rank r gets r + 1 shares (the last rank takes the rest)."""
    shares = np.arange(1, R + 1)
    edges = np.concatenate([[0], np.cumsum(shares)]) * t // shares.sum()
    return edges


CONFIGS = [
    # (name, Network kwargs, fit kwargs)
    ("sgd-minibatch", dict(layers=[6, 9, 3], activation="tanh"),
     dict(epochs=4, optimizer="sgd", lr=1e-3, batch_size=37, block_rows=8)),
    ("adam-weights-val", dict(layers=[6, 9, 7, 3], activation="relu", bias=True),
     dict(epochs=4, optimizer="adam", lr=1e-3, batch_size=64, block_rows=16,
          weight_decay=1e-3, validation_fraction=0.25, patience=2, clip_norm=0.5,
          lr_schedule=fastprop.optim.StepLR(2, gamma=0.5))),
    ("fullbatch-mse", dict(layers=[6, 5, 3], loss="mse", bias=True),
     dict(epochs=3, optimizer="momentum", lr=1e-2, block_rows=20)),
    ("rprop-val-data", dict(layers=[6, 4, 3], activation="softplus"),
     dict(epochs=3, optimizer="rprop", batch_size=50, block_rows=7)),
    # fewer blocks per minibatch than ranks: some ranks compute nothing in some steps
    ("nesterov-few-blocks", dict(layers=[6, 5, 3], activation="sigmoid", bias=True),
     dict(epochs=2, optimizer="nesterov", lr=1e-3, batch_size=10, block_rows=8)),
]


def identity() -> None:
    """distributed.fit on this many ranks == Network.fit(block_rows) in one process, bit for bit."""
    t = 211
    X, Y = data(t, 6, 3)
    edges = cuts(t)
    lo, hi = edges[rank], edges[rank + 1]
    w = np.random.default_rng(1).uniform(0.5, 2.0, size=t)
    for dtype in ("float64", "float32"):
        for shuffle in (True, False):
            for name, net_kw, fit_kw in CONFIGS:
                fit_kw = dict(fit_kw, shuffle=shuffle, seed=11)
                extra_local, extra_all = {}, {}
                if name == "adam-weights-val":
                    extra_local["sample_weight"] = w[lo:hi]
                    extra_all["sample_weight"] = w
                if name == "rprop-val-data":
                    Xv, Yv = data(53, 6, 3, seed=2)
                    vlo, vhi = cuts(53)[rank], cuts(53)[rank + 1]
                    extra_local["validation_data"] = (Xv[vlo:vhi], Yv[vlo:vhi])
                    extra_all["validation_data"] = (Xv, Yv)
                net = fastprop.Network(**net_kw, dtype=dtype, seed=3)
                h = distributed.fit(net, X[lo:hi], Y[lo:hi], **fit_kw, **extra_local,
                                    debug=True)
                one = fastprop.Network(**net_kw, dtype=dtype, seed=3)
                h1 = one.fit(X, Y, **fit_kw, **extra_all)
                tag = f"{name} {dtype} shuffle={shuffle}"
                assert np.array_equal(net.params, one.params), f"{tag}: params differ"
                assert np.array_equal(np.asarray(h), np.asarray(h1)), f"{tag}: losses differ"
                if h1.val_loss is not None:
                    assert np.array_equal(h.val_loss, h1.val_loss), f"{tag}: val_loss differ"
                assert not np.array_equal(net.params, fastprop.Network(**net_kw, dtype=dtype,
                                                                       seed=3).params)
    say("identity OK")


def memmap(path: str) -> None:
    """Each rank's part is a slice of one .npy opened as a memmap."""
    t = 150
    X, Y = data(t, 6, 3)
    if rank == 0:
        np.save(path + "X.npy", X.astype(np.float32))
        np.save(path + "Y.npy", Y.astype(np.float32))
    comm.Barrier()
    Xm = np.load(path + "X.npy", mmap_mode="r")
    Ym = np.load(path + "Y.npy", mmap_mode="r")
    edges = cuts(t)
    lo, hi = edges[rank], edges[rank + 1]
    kw = dict(epochs=2, lr=1e-3, batch_size=32, block_rows=8, seed=4)
    net = fastprop.Network([6, 8, 3], dtype="float32", seed=0)
    distributed.fit(net, Xm[lo:hi], Ym[lo:hi], **kw)
    one = fastprop.Network([6, 8, 3], dtype="float32", seed=0)
    one.fit(X.astype(np.float32), Y.astype(np.float32), **kw)
    assert np.array_equal(net.params, one.params)
    say("memmap OK")


def expect_raise(kind: type, fragment: str, work) -> None:
    try:
        work()
    except kind as error:
        assert fragment in str(error), f"{fragment!r} not in {error!r}"
        say(f"raised {type(error).__name__}: {error}")
        return
    raise AssertionError(f"no {kind.__name__} raised")


def mismatch() -> None:
    """Arguments or shapes that differ between ranks: every rank raises the same ValueError."""
    X, Y = data(40, 6, 3)
    lr = 1e-3 if rank != 1 else 2e-3
    net = fastprop.Network([6, 4, 3], seed=0)
    expect_raise(ValueError, "lr must be the same on every rank",
                 lambda: distributed.fit(net, X, Y, epochs=1, lr=lr, batch_size=8))
    layers = [6, 4, 3] if rank != R - 1 else [6, 5, 3]
    expect_raise(ValueError, "the network", lambda: distributed.fit(
        fastprop.Network(layers, seed=0), X, Y, epochs=1, lr=1e-3))
    Xr = X if rank != 1 else X[:, :5]
    expect_raise(ValueError, "rank 1 of", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), Xr, Y, epochs=1, lr=1e-3))
    seed = 0 if rank != 1 else 1
    expect_raise(ValueError, "parameters", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=seed), X, Y, epochs=1, lr=1e-3))
    dtype = "float64" if rank != 1 else "float32"
    expect_raise(ValueError, "the network", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0, dtype=dtype), X, Y, epochs=1, lr=1e-3))
    expect_raise(TypeError, "rank 1 of", lambda: distributed.fit(  # checked with the others
        fastprop.Network([6, 4, 3], seed=0) if rank != 1 else None, X, Y, epochs=1))
    opt = fastprop.optim.Adam(lr=1e-2)  # each rank's moments from a step on its own rows
    fastprop.Network([6, 4, 3], seed=0).step(X[rank::R], Y[rank::R], optimizer=opt)
    expect_raise(ValueError, "state) must be the same on every rank", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=1, optimizer=opt))
    say("mismatch OK")


def faults() -> None:
    """A bad shard, a NaN in training, a callback's exception: every rank raises, naming it."""
    X, Y = data(60, 6, 3)
    Xr = X.copy()
    if rank == 1:
        Xr[3, 2] = np.nan
    expect_raise(ValueError, "rank 1 of", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), Xr, Y, epochs=1, lr=1e-3))
    # Rows that overflow only in rank R-1's part of the data: the gradient of its rows is
    # inf, and the rank that computed that block is named.
    Xb = X.copy()
    if rank == R - 1:
        Xb[-1] = 1e200
    expect_raise(FloatingPointError, "on rank", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0, activation="relu"), Xb, Y, epochs=2, lr=1e-3,
        batch_size=30, block_rows=5, shuffle=False))

    def bad_callback(epoch, logs):
        if epoch == 1:
            raise KeyError("boom")

    expect_raise(Exception, "boom", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=3, lr=1e-3, batch_size=20,
        callback=bad_callback))

    def tamper(epoch, logs):  # rank 0 only: the debug check must see it
        net_0.params[0] += 1.0

    net_0 = fastprop.Network([6, 4, 3], seed=0)
    expect_raise(distributed.DistributedError, "differ", lambda: distributed.fit(
        net_0, X, Y, epochs=2, lr=1e-3, callback=tamper, debug=True))

    stops = []

    def stop_at_1(epoch, logs):
        stops.append(epoch)
        return epoch < 1

    net = fastprop.Network([6, 4, 3], seed=0)
    h = distributed.fit(net, X, Y, epochs=5, lr=1e-3, batch_size=20, callback=stop_at_1)
    assert len(h) == 2 and h.stop == "callback", (len(h), h.stop)
    assert (stops == [0, 1]) if rank == 0 else (stops == [])

    def says_interrupted(epoch, logs):  # a callback's own error, whatever its words
        raise RuntimeError("upload of the metrics interrupted")

    expect_raise(RuntimeError, "metrics interrupted", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=2, lr=1e-3,
        callback=says_interrupted))
    for error in (RuntimeError("interrupted"), MemoryError("a cache of the callback's")):
        def raises(epoch, logs, error=error):  # told to every rank: raised, the job goes on
            raise error

        expect_raise(Exception, str(error), lambda: distributed.fit(
            fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=2, lr=1e-3, callback=raises))
    expect_raise(distributed.DistributedError, "does not exist", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=2, lr=1e-3,
        checkpoint="/nonexistent-directory/run.npz"))  # rank 0's, who writes it
    say("faults OK")


def weights() -> None:
    """Weights are checked over the whole data set: one rank's may all be zero."""
    t = 40
    X, Y = data(t, 6, 3)
    w = np.ones(t)
    lo, hi = cuts(t)[rank], cuts(t)[rank + 1]
    w[cuts(t)[0]:cuts(t)[1]] = 0.0  # rank 0's rows
    net = fastprop.Network([6, 4, 3], seed=0)
    distributed.fit(net, X[lo:hi], Y[lo:hi], epochs=2, lr=1e-3, batch_size=10, block_rows=5,
                    shuffle=False, sample_weight=w[lo:hi])
    one = fastprop.Network([6, 4, 3], seed=0)
    one.fit(X, Y, epochs=2, lr=1e-3, batch_size=10, block_rows=5, shuffle=False,
            sample_weight=w)
    assert np.array_equal(net.params, one.params)
    expect_raise(ValueError, "at least one weight > 0", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X[lo:hi], Y[lo:hi], epochs=1,
        sample_weight=np.zeros(hi - lo)))
    held_out = np.ones(t)
    held_out[-10:] = 0.0  # the rows validation_fraction=0.25 holds out
    expect_raise(ValueError, "sample_weight of the validation rows must have at least one "
                             "weight > 0", lambda: distributed.fit(
        fastprop.Network([6, 4, 3], seed=0), X[lo:hi], Y[lo:hi], epochs=1,
        validation_fraction=0.25, sample_weight=held_out[lo:hi]))
    say("weights OK")


def search_interrupted() -> None:
    """Ctrl-C reaches rank 1 alone during a distributed search; the job must end."""
    import fastprop.sklearn as fs

    X, y = data(300, 6, 1)
    y = (y[:, 0] > 0).astype(int)
    if rank == 1:
        def send():
            say(f"interrupting myself at {time.time():.3f}")
            os.kill(os.getpid(), signal.SIGINT)
        threading.Timer(1.0, send).start()
    # Trained ahead over the ranks in one long call of the core: 20 fits of 5,000 epochs,
    # about 10 s on one core each, so the signal comes in the middle of it.
    estimator = fs.MLPClassifier((64,), max_iter=5000, tol=0.0, n_iter_no_change=10**6,
                                 random_state=0)
    grid = {"alpha": [1e-4, 1e-3, 1e-2, 1e-1] * 5}
    distributed.GridSearchCV(estimator, grid, cv=5).fit(X, y)
    say("not reached")


def out_of_memory() -> None:
    """Rank 1 runs out of memory after the checks, where the other rank goes on to wait in a
    collective: the job must end, not wait for it."""
    X, Y = data(40, 6, 3)

    class Starved(fastprop.optim.SGD):
        def state_for(self, *args, **kwargs):
            raise MemoryError("no memory for the optimiser's state")

    Starved.__name__ = "SGD"  # the repr of rank 0's SGD: the checks agree
    opt = Starved(lr=1e-3) if rank == 1 else fastprop.optim.SGD(lr=1e-3)
    distributed.fit(fastprop.Network([6, 4, 3], seed=0), X, Y, epochs=1, optimizer=opt)
    say("not reached")


CKPT_FIT = dict(epochs=7, optimizer="adam", lr=1e-2, batch_size=24, block_rows=8, seed=9,
                validation_fraction=0.2, patience=4)


def checkpoint_start(path: str) -> None:
    """A run with checkpoints every 2 epochs, stopped by rank 0's callback after epoch 3."""
    t = 130
    X, Y = data(t, 6, 3)
    lo, hi = cuts(t)[rank], cuts(t)[rank + 1]
    net = fastprop.Network([6, 8, 3], seed=0, dtype="float32", bias=True)
    h = distributed.fit(net, X[lo:hi], Y[lo:hi], **CKPT_FIT, checkpoint=path,
                        checkpoint_every=2, callback=lambda epoch, logs: epoch < 3)
    assert len(h) == 4 and h.stop == "callback"
    say("checkpoint_start OK")


def checkpoint_resume(path: str) -> None:
    """Resumed on another number of ranks: the bits of one uninterrupted process."""
    t = 130
    X, Y = data(t, 6, 3)
    lo, hi = cuts(t)[rank], cuts(t)[rank + 1]
    net = fastprop.Network([6, 8, 3], seed=5, dtype="float32", bias=True)  # overwritten
    h = distributed.fit(net, X[lo:hi], Y[lo:hi], **CKPT_FIT, checkpoint=path,
                        checkpoint_every=2)
    one = fastprop.Network([6, 8, 3], seed=0, dtype="float32", bias=True)
    h1 = one.fit(X, Y, **CKPT_FIT)
    assert np.array_equal(net.params, one.params)
    assert np.array_equal(np.asarray(h), np.asarray(h1))
    assert np.array_equal(h.val_loss, h1.val_loss)
    say("checkpoint_resume OK")


def _signal_rank_1_mid_training(signum: int, verb: str) -> None:
    """Rank 1 sends itself ``signum`` one second into a long data-parallel fit."""
    X, Y = data(4000, 64, 8)
    if rank == 1:
        def send():
            say(f"{verb} myself at {time.time():.3f}")
            os.kill(os.getpid(), signum)
        threading.Timer(1.0, send).start()
    net = fastprop.Network([64, 256, 256, 8], seed=0)
    distributed.fit(net, X, Y, epochs=100000, lr=1e-6, batch_size=64)
    say("not reached")


def killed() -> None:
    """Rank 1 is killed mid-training; the job must end, non-zero."""
    _signal_rank_1_mid_training(signal.SIGKILL, "killing")


def interrupted() -> None:
    """Ctrl-C reaches rank 1 alone mid-training; the job must end, not wait for it."""
    _signal_rank_1_mid_training(signal.SIGINT, "interrupting")


def _many_networks() -> list:
    shapes = [([6, 4, 2], "tanh", "float64"), ([6, 16, 2], "relu", "float32"),
              ([6, 8, 2], "tanh", "float64"), ([6, 32, 8, 2], "sigmoid", "float64"),
              ([6, 5, 2], "tanh", "float32"), ([6, 12, 2], "relu", "float64"),
              ([6, 3, 2], "softplus", "float64")]
    return [fastprop.Network(layers, activation, bias=True, dtype=dtype, seed=k)
            for k, (layers, activation, dtype) in enumerate(shapes)]


def _stop_or_raise(epoch, logs):
    if logs["network"] == 3 and epoch == 1:
        raise KeyError("boom")
    if logs["network"] == 4:
        return epoch < 1  # stops after its second epoch


def _many_optimizers() -> list:
    return ["adam", fastprop.optim.Adam(1e-2), "sgd", "rprop", "momentum", "sgd",
            fastprop.optim.SGD(1e-3, momentum=0.9, nesterov=True)]


def _many_calls() -> list:
    """(name, X, Y, keywords) of fit_many calls: shared X with indices and validation, one X
    per network with sample weights, a network whose loss overflows, a callback that raises
    and one that stops."""
    X, Y = data(120, 6, 2)
    rng = np.random.default_rng(5)
    folds = [rng.permutation(120)[:90] for _ in range(3)]
    per_net = [data(40 + 10 * k, 6, 2, seed=k) for k in range(7)]
    weights = [np.random.default_rng(k).uniform(0.5, 2, 40 + 10 * k) for k in range(7)]
    return [
        ("shared", X, Y, dict(epochs=[3, 4, 3, 5, 4, 3, 2], lr=[1e-3, None, 1e-3, None, 1e-3,
                                                                1e9, None],
                              batch_size=16, callback=_stop_or_raise, patience=2, seed=3,
                              indices=[folds[0], None, folds[1], folds[2], None, folds[0],
                                       None],
                              validation_data=data(30, 6, 2, seed=9))),
        ("per-network", [x for x, _ in per_net], [y for _, y in per_net],
         dict(epochs=3, lr=[1e-3, None, 1e-2, None, 1e-3, 1e-3, None], batch_size=[8, 16] * 3 + [None],
              sample_weight=weights, validation_fraction=0.25, shuffle=[True, False] * 3 + [True])),
    ]


def _same_as_one_process(nets, one, result, expected) -> None:
    assert result.stops == expected.stops, (result.stops, expected.stops)
    assert sorted(result.errors) == sorted(expected.errors)
    for k in result.errors:
        assert type(result.errors[k]) is type(expected.errors[k]), (result.errors[k],
                                                                   expected.errors[k])
        assert f" of {R}: " in str(result.errors[k]), result.errors[k]
    for k, (net, twin, h, h1) in enumerate(zip(nets, one, result, expected)):
        assert np.array_equal(net.params, twin.params), f"networks[{k}]: params differ"
        assert h is net.history and np.array_equal(np.asarray(h), np.asarray(h1)), k
        for name in ("val_loss", "lr"):
            a, b = getattr(h, name), getattr(h1, name)
            assert (a is None and b is None) or np.array_equal(a, b), (k, name)
        assert (h.stop, h.best_epoch) == (h1.stop, h1.best_epoch), k
        assert net.__dict__.get("_fits") == twin.__dict__.get("_fits")


def many() -> None:
    """distributed.fit_many and the searches give every rank what one process computes;
    bad or differing arguments and a failed network raise on every rank, naming the rank."""
    import warnings

    for name, X, Y, kw in _many_calls():
        nets, one = _many_networks(), _many_networks()
        opts, opts_one = _many_optimizers(), _many_optimizers()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = distributed.fit_many(nets, X, Y, optimizer=opts, **kw)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            expected = fastprop.fit_many(one, X, Y, optimizer=opts_one, **kw)
        _same_as_one_process(nets, one, result, expected)
        for o, o1 in zip(opts, opts_one):
            if not isinstance(o, str):
                assert o.steps == o1.steps and o.steps > 0
                assert all(np.array_equal(o.state[b], o1.state[b]) for b in o1.state)
        if expected.errors:
            assert [str(w.message) for w in caught if "networks failed" in str(w.message)]
            say(f"{name}: errors {sorted(result.errors)}: "
                + "; ".join(str(e) for e in result.errors.values()))
    # errors="raise": the first failed network's error, on every rank, naming its rank
    X, Y = data(60, 6, 2)
    expect_raise(KeyError, "boom", lambda: distributed.fit_many(
        _many_networks(), X, Y, epochs=3, lr=1e-3, batch_size=20, callback=_stop_or_raise,
        errors="raise"))
    # bad input: refused on every rank before anything is trained
    nets = _many_networks()
    before = [net.params.copy() for net in nets]
    expect_raise(ValueError, f"ranks {', '.join(map(str, range(R)))} of {R}: ValueError: "
                 f"networks[0] has 6 inputs", lambda: distributed.fit_many(
                     nets, X[:, :5], Y, epochs=3, lr=1e-3))
    assert all(np.array_equal(n.params, b) for n, b in zip(nets, before))
    assert all(n.history is None or len(n.history) == 0 for n in nets)
    # arguments that differ between ranks
    expect_raise(ValueError, "lr must be the same on every rank", lambda: distributed.fit_many(
        nets, X, Y, epochs=2, lr=1e-3 if rank != 1 else 2e-3))
    Xr = X.copy()
    Xr[5, 1] += 1e-9 if rank == R - 1 else 0.0
    expect_raise(ValueError, "X must be the same on every rank", lambda: distributed.fit_many(
        nets, Xr, Y, epochs=2, lr=1e-3))
    other = _many_networks()
    if rank == 1:
        other[2] = fastprop.Network(other[2].layers, "tanh", bias=True, seed=99)
    expect_raise(ValueError, "networks[2]'s parameters", lambda: distributed.fit_many(
        other, X, Y, epochs=2, lr=1e-3))
    assert all(np.array_equal(n.params, b) for n, b in zip(nets, before))
    say("many fit_many OK")
    _searches()
    say("many OK")


def _searches() -> None:
    import warnings

    warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning at max_iter=5
    from sklearn.datasets import load_digits
    from sklearn.model_selection import KFold
    from fastprop.sklearn import GridSearchCV, MLPClassifier, RandomizedSearchCV, \
        cross_validate

    X, y = load_digits(return_X_y=True)
    X, y = X[:300] / 16, y[:300]
    grid = {"hidden_layer_sizes": [(8,), (24,)], "learning_rate_init": [1e-3, 1e-2]}
    base = MLPClassifier(max_iter=5, random_state=0, batch_size=32)
    for one, over in ((GridSearchCV(base, grid, cv=3),
                       distributed.GridSearchCV(base, grid, cv=3)),
                      (RandomizedSearchCV(base, {"alpha": [1e-4, 1e-2, 1.0],
                                                 "hidden_layer_sizes": [(8,), (16,)]},
                                          n_iter=4, cv=2, random_state=0),
                       distributed.RandomizedSearchCV(
                           base, {"alpha": [1e-4, 1e-2, 1.0],
                                  "hidden_layer_sizes": [(8,), (16,)]},
                           n_iter=4, cv=2, random_state=0))):
        one.fit(X, y)
        over.fit(X, y)
        for key, value in one.cv_results_.items():
            if "time" not in key:
                assert np.array_equal(np.asarray(value), np.asarray(over.cv_results_[key])), key
        assert over.best_params_ == one.best_params_
        assert np.array_equal(over.best_estimator_.coefs_[0], one.best_estimator_.coefs_[0])
    scores = cross_validate(base, X, y, cv=3)["test_score"]
    spread = distributed.cross_validate(base, X, y, cv=3, return_estimator=True)
    assert np.array_equal(spread["test_score"], scores)
    # each fold's fit time holds its training, on whichever rank trained it
    trained = [e._net.history.time[-1] for e in spread["estimator"]]
    assert np.all(spread["fit_time"] >= trained), (spread["fit_time"], trained)
    assert np.array_equal(distributed.cross_val_score(base, X, y, cv=3), scores)
    # an estimator without a random_state draws its seed on each rank: every rank still
    # ends with the same best_estimator_ (rank 0's refit)
    unseeded = distributed.GridSearchCV(MLPClassifier(max_iter=5, batch_size=32), grid, cv=3)
    unseeded.fit(X, y)
    mine = unseeded.best_estimator_.coefs_[0]
    assert all(np.array_equal(mine, theirs) for theirs in distributed.world().allgather(mine))
    # data that differ between ranks, and splits that differ (a shuffling cv without a seed)
    Xr = X.copy()
    Xr[0, 0] += 1.0 if rank == 1 else 0.0
    expect_raise(ValueError, "X must be the same on every rank",
                 lambda: distributed.GridSearchCV(base, grid, cv=3).fit(Xr, y))
    expect_raise(distributed.DistributedError, "differ between ranks",
                 lambda: distributed.GridSearchCV(base, grid, cv=KFold(3, shuffle=True)).fit(X, y))
    # a step before the network that fails on one rank only (a file only rank 0 has, say):
    # every rank raises, rather than rank 0 waiting for a call rank 1 never makes
    from sklearn.base import BaseEstimator, TransformerMixin
    from sklearn.pipeline import Pipeline

    class NeedsAFile(TransformerMixin, BaseEstimator):
        def fit(self, X, y=None):
            if rank == 1:
                raise FileNotFoundError("no such file on this rank")
            return self

        def transform(self, X):
            return X

    pipe = Pipeline([("f", NeedsAFile()), ("m", base)])
    expect_raise(distributed.DistributedError, "failed on some ranks only",
                 lambda: distributed.GridSearchCV(pipe, {"m__alpha": [1e-4, 1e-3]},
                                                  cv=3).fit(X, y))
    say("many searches OK")


if __name__ == "__main__":
    scenario = sys.argv[1]
    globals()[scenario](*sys.argv[2:])
