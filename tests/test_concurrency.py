"""Two Python threads on one Network: the core releases the GIL, and a network's calls serialise.

What is proven here, each by an exact (bit-for-bit) comparison with serial calls:

* concurrent ``forward``, ``loss``, ``gradient``, ``trace`` and ``loss_and_grad`` calls on ONE
  network, with different batches and batch sizes per thread (so that the shared workspace is
  regrown under contention), return what the same calls return one after another;
* ``loss_and_grad(params=p)`` in one thread never lets another thread see p;
* two threads each doing k ``step`` calls leave the network exactly where 2k serial steps do,
  and two concurrent ``fit`` calls of e epochs exactly where two serial fits do, with the two
  histories being the two halves of the serial history;
* a ``forward`` running while another thread fits sees one of the states of the serial
  trajectory (never a torn, half-updated or NaN one);
* calls made from inside fit's own callback (the same thread, re-entrant) work and leave the
  fit around them bit-identical to a fit without a callback.

The GIL is released during forward, gradient and fit: another thread runs Python (wakes from
1 ms sleeps, which needs the GIL) throughout a second-long core call. Different networks run in
parallel on different cores: that speed-up is MEASURED and printed (``pytest -s``), not
asserted — the machine is shared and noisy — beside a control known to run in parallel; what
is asserted there is only that the threaded results equal the sequential ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import fastprop

from helpers import DTYPES, random_batch

THREADS = 2            # the machine has 2 cores; more threads would only queue on the mutex
REPEATS = 60           # calls per thread: enough interleavings to make a race likely to show
JOIN_TIMEOUT = 300.0   # seconds; only a deadlock takes this long (a test run is ~1 s)


def run_concurrently(*work):
    """Run each callable in its own thread, all released at once by a barrier; their results.

    A thread's exception is re-raised here; a thread still alive after JOIN_TIMEOUT fails the
    test as a deadlock instead of hanging the suite.
    """
    barrier = threading.Barrier(len(work))
    results: list = [None] * len(work)
    errors: list = []

    def body(k, fn):
        try:
            barrier.wait()
            results[k] = fn()
        except BaseException as error:  # noqa: BLE001 - re-raised in the main thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(k, fn), daemon=True)
               for k, fn in enumerate(work)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT)
        assert not thread.is_alive(), "a thread did not finish: deadlock?"
    if errors:
        raise errors[0]
    return results


def make_net(dtype, activation="tanh", bias=True):
    return fastprop.Network([5, 16, 16, 3], activation, bias=bias, dtype=dtype, seed=3, loss="sse")


def batches(rng, net, sizes):
    return [random_batch(rng, net, t) for t in sizes]


def assert_all_equal(results, expected, what):
    for k, got in enumerate(results):
        np.testing.assert_array_equal(got, expected, err_msg=f"{what}: call {k} differs")


# Two threads with different batch sizes: the small one and a large one (several hundred rows,
# so that each call takes long enough to overlap with the other thread's calls).
SIZES = (7, 700)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("method", ["forward", "loss", "gradient", "trace", "loss_and_grad"])
def test_concurrent_calls_on_one_network_equal_serial_calls(rng, dtype, method):
    net = make_net(dtype)
    data = batches(rng, net, SIZES)

    def call(X, Y):
        if method == "forward":
            return net.forward(X)
        if method == "trace":
            z, a = net.trace(X)
            return np.concatenate([v.ravel() for v in (*z[1:], *a[1:-1])])
        if method == "loss":
            return np.array(net.loss(X, Y))
        if method == "gradient":
            E, dW, db = net.gradient(X, Y)
            return np.concatenate([[E], *(g.ravel() for g in dW + db)])
        E, g = net.loss_and_grad(X, Y)
        return np.concatenate([[E], g])

    serial = [call(X, Y) for X, Y in data]
    results = run_concurrently(*[lambda X=X, Y=Y: [call(X, Y) for _ in range(REPEATS)]
                                 for X, Y in data])
    for k, (got, expected) in enumerate(zip(results, serial)):
        assert_all_equal(got, expected, f"{method}, thread {k}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_and_grad_at_other_params_is_invisible_to_other_threads(rng, dtype):
    net = make_net(dtype)
    X, Y = random_batch(rng, net, 300)
    other = rng.standard_normal(net.n_params).astype(dtype)
    own = net.params.copy()
    expected_forward = net.forward(X)
    expected_at_other = net.loss_and_grad(X, Y, other)[1]

    results = run_concurrently(
        lambda: [net.loss_and_grad(X, Y, other)[1] for _ in range(REPEATS)],
        lambda: [net.forward(X) for _ in range(REPEATS)],
    )
    assert_all_equal(results[0], expected_at_other, "loss_and_grad at other params")
    assert_all_equal(results[1], expected_forward, "forward during loss_and_grad(params=...)")
    np.testing.assert_array_equal(net.params, own)


@pytest.mark.parametrize("dtype", DTYPES)
def test_concurrent_steps_equal_twice_as_many_serial_steps(rng, dtype):
    k, lr = 40, 1e-3
    net, twin = make_net(dtype), make_net(dtype)
    X, Y = random_batch(rng, net, 500)
    serial_E = [twin.step(X, Y, lr) for _ in range(2 * k)]

    results = run_concurrently(*[lambda: [net.step(X, Y, lr) for _ in range(k)]] * THREADS)
    np.testing.assert_array_equal(net.params, twin.params)
    # Every step is one atomic update on the one trajectory, so the losses the threads saw
    # before their steps are, all together, the serial losses.
    assert sorted(results[0] + results[1]) == sorted(serial_E)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    {"optimizer": "sgd", "lr": 1e-3},
    {"optimizer": "momentum", "lr": 1e-3, "batch_size": 32, "shuffle": False},
], ids=["full_batch_sgd", "minibatch_momentum"])
def test_concurrent_fits_equal_two_serial_fits(rng, dtype, options):
    epochs = 25
    net, twin = make_net(dtype), make_net(dtype)
    X, Y = random_batch(rng, net, 400)
    first = np.asarray(twin.fit(X, Y, epochs, seed=0, **options))
    second = np.asarray(twin.fit(X, Y, epochs, seed=0, **options))

    histories = run_concurrently(*[lambda: np.asarray(net.fit(X, Y, epochs, seed=0, **options))]
                                 * THREADS)
    np.testing.assert_array_equal(net.params, twin.params)
    # Whichever fit ran first saw the first half of the serial history, the other the second.
    assert sorted(tuple(h) for h in histories) == sorted([tuple(first), tuple(second)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("with_callback", [False, True])
def test_forward_during_fit_sees_a_state_of_the_trajectory(rng, dtype, with_callback):
    epochs, lr = 30, 1e-3
    net, twin = make_net(dtype), make_net(dtype)
    X, Y = random_batch(rng, net, 400)
    probe = rng.standard_normal((50, net.layers[0])).astype(dtype)
    # The serial trajectory: forward(probe) at the start and after every epoch.
    states = [twin.forward(probe)]
    for _ in range(epochs):
        twin.fit(X, Y, 1, lr, optimizer="sgd")
        states.append(twin.forward(probe))
    done = threading.Event()
    callback = (lambda epoch, logs: True) if with_callback else None

    def train():
        try:
            return net.fit(X, Y, epochs, lr, callback=callback, optimizer="sgd")
        finally:
            done.set()

    def watch():
        seen = [net.forward(probe)]
        while not done.is_set():
            seen.append(net.forward(probe))
        return seen

    _, seen = run_concurrently(train, watch)
    np.testing.assert_array_equal(net.params, twin.params)
    for k, z in enumerate(seen):
        assert z.shape == (50, net.layers[-1]) and np.all(np.isfinite(z)), f"forward {k}"
        assert any(np.array_equal(z, state) for state in states), \
            f"forward {k} during fit matches no parameter state of the serial trajectory"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    {"optimizer": "sgd", "lr": 1e-3},
    {"optimizer": "adam", "lr": 1e-3, "batch_size": 16, "seed": 4},
    {"optimizer": "lm"},
], ids=["full_batch_sgd", "minibatch_adam", "lm"])
def test_calls_inside_fit_callback_do_not_disturb_the_fit(rng, dtype, options):
    epochs = 12
    net, twin = make_net(dtype), make_net(dtype)
    X, Y = random_batch(rng, net, 100)
    # A probe batch of another size, so that a shared workspace would be resized under the fit.
    Xp, Yp = random_batch(rng, net, 333)
    other = rng.standard_normal(net.n_params).astype(dtype)
    expected = twin.fit(X, Y, epochs, **options)
    seen = []

    def callback(epoch, logs):
        params = net.params.copy()
        z = net.forward(Xp)
        E = net.loss(Xp, Yp)
        E_g, dW, _ = net.gradient(Xp, Yp)
        trace = net.trace(Xp)
        net.loss_and_grad(Xp, Yp, other)
        J = net.jacobian(Xp[:3])
        np.testing.assert_array_equal(net.params, params)  # nothing above moves the network
        np.testing.assert_array_equal(trace.z[-1], z)
        assert z.shape == (333, 3) and np.all(np.isfinite(z)) and np.isfinite(E)
        assert np.isfinite(E_g) and J.shape == (9, net.n_params)
        seen.append(logs["loss"])

    history = net.fit(X, Y, epochs, callback=callback, **options)
    np.testing.assert_array_equal(net.params, twin.params)
    np.testing.assert_array_equal(history, expected)
    assert seen == list(history)


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_read_in_callback_is_the_loss_after_that_epochs_update(rng, dtype):
    # Full-batch descent: history[e] is E before update e, so the loss the callback reads
    # after update e is history[e + 1] of an undisturbed fit.
    epochs = 10
    net, twin = make_net(dtype), make_net(dtype)
    X, Y = random_batch(rng, net, 200)
    expected = twin.fit(X, Y, epochs + 1, 1e-3, optimizer="sgd")
    read = []
    net.fit(X, Y, epochs, 1e-3, callback=lambda epoch, logs: read.append(net.loss(X, Y)), optimizer="sgd")
    np.testing.assert_array_equal(read, expected[1:])


GIL_CALL_SECONDS = 1.0   # how long the core call is sized to take
GIL_MARGIN = 0.05        # seconds cut from each end of the call: its Python prelude and epilogue
GIL_MIN_WAKEUPS = 10     # of a 1 ms sleep loop over >= 0.9 s: ~900 when the GIL is free


@pytest.mark.parametrize("method", ["forward", "gradient", "fit"])
def test_the_gil_is_released_while_the_core_computes(method):
    """Without a free core to measure a speed-up on, this still proves the release: a thread
    that sleeps 1 ms at a time needs the GIL to wake up, so it can record a time inside the
    core call only if the call does not hold the GIL. Each recorded time is taken by the
    sleeper itself; the bounds are structural (tens of wake-ups where zero are possible)."""
    net = fastprop.Network([256, 512, 512, 10], "sigmoid", seed=0, bias=False, loss="sse")
    rng = np.random.default_rng(0)
    tile = rng.standard_normal((256, 256))
    seconds = []
    for _ in range(3):  # the fastest of 3: a first call after the core sat idle can take 10x
        start = time.perf_counter()
        net.forward(tile)
        seconds.append(time.perf_counter() - start)
    per_row = min(seconds) / len(tile) * (3 if method != "forward" else 1)
    rows = max(len(tile), int(GIL_CALL_SECONDS / per_row))
    X = np.tile(tile, (rows // len(tile) + 1, 1))[:rows]
    Y = np.zeros((rows, 10))
    call = {"forward": lambda: net.forward(X), "gradient": lambda: net.gradient(X, Y),
            "fit": lambda: net.fit(X, Y, 1, 1e-9, optimizer="sgd")}[method]
    window, wakeups, done = [], [], threading.Event()

    def compute():
        window.append(time.perf_counter())
        try:
            call()
        finally:
            window.append(time.perf_counter())
            done.set()

    def sleeper():
        while not done.is_set():
            time.sleep(0.001)
            wakeups.append(time.perf_counter())

    run_concurrently(compute, sleeper)
    enter, leave = window
    inside = [w for w in wakeups if enter + GIL_MARGIN < w < leave - GIL_MARGIN]
    print(f"\n{method}: {leave - enter:.2f} s in the core, {len(inside)} wake-ups of another "
          f"thread inside it")
    assert leave - enter > 4 * GIL_MARGIN, "the call was too short to tell"
    assert len(inside) >= GIL_MIN_WAKEUPS, \
        f"another thread ran only {len(inside)} times during a {leave - enter:.2f} s {method}"


SPEEDUP_SCRIPT = textwrap.dedent("""
    import json, sys, threading, time
    import numpy as np, fastprop
    epochs = int(sys.argv[1])
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 64)); Y = rng.standard_normal((2048, 8))
    def nets():
        return [fastprop.Network([64, 128, 128, 8], "tanh", seed=s) for s in (1, 2)]
    def train(net):
        net.fit(X, Y, epochs, 1e-5)
    nets()[0].fit(X, Y, 2, 1e-5)                     # warm up: page in, grow the workspace
    sequential = nets()
    start = time.perf_counter(); cpu = time.process_time()
    for net in sequential:
        train(net)
    t_seq, cpu_seq = time.perf_counter() - start, time.process_time() - cpu
    threaded = nets()
    barrier = threading.Barrier(2)
    def body(net):
        barrier.wait(); train(net)
    threads = [threading.Thread(target=body, args=(net,)) for net in threaded]
    start = time.perf_counter(); cpu = time.process_time()
    for t in threads: t.start()
    for t in threads: t.join()
    t_par, cpu_par = time.perf_counter() - start, time.process_time() - cpu
    same = all(np.array_equal(a.params, b.params) for a, b in zip(sequential, threaded))
    # The control: the same measurement for hashlib, which releases the GIL on big buffers, so
    # that a machine busy with other work can be told from fastprop failing to run in parallel.
    import hashlib
    data = bytes(64 * 2**20)
    def digest():
        for _ in range(3):
            hashlib.sha256(data).digest()
    start = time.perf_counter(); digest(); digest(); c_seq = time.perf_counter() - start
    threads = [threading.Thread(target=digest) for _ in range(2)]
    start = time.perf_counter()
    for t in threads: t.start()
    for t in threads: t.join()
    c_par = time.perf_counter() - start
    print(json.dumps({"sequential_s": t_seq, "threaded_s": t_par, "speedup": t_seq / t_par,
                      "cpu_per_wall_threaded": cpu_par / t_par, "same": same,
                      "control_speedup": c_seq / c_par}))
""")
SPEEDUP_EPOCHS = 40   # about 1 s of sequential training


def test_two_networks_train_in_parallel_measured_speedup():
    """Two threads training two networks vs one after the other, in a child with one core
    thread per call (FASTPROP_NUM_THREADS=1), so that the speed-up measures the GIL release
    and not the core's own threads; beside it, the speed-up of a control that is known to run
    in parallel (hashlib), which tells how many cores the machine really had free. Printed,
    not asserted; the results must be identical."""
    env = {**os.environ, "FASTPROP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", SPEEDUP_SCRIPT, str(SPEEDUP_EPOCHS)], env=env,
                         capture_output=True, text=True, timeout=600, check=True).stdout
    figures = json.loads(out.strip().splitlines()[-1])
    print(f"\n2 threads x 2 networks on {os.cpu_count()} cores: sequential "
          f"{figures['sequential_s']:.2f} s, threaded {figures['threaded_s']:.2f} s, speed-up "
          f"{figures['speedup']:.2f}x, CPU/wall while threaded "
          f"{figures['cpu_per_wall_threaded']:.2f}; control (hashlib, GIL released) speed-up "
          f"{figures['control_speedup']:.2f}x")
    assert figures["same"], "threaded training gave other parameters than sequential training"
