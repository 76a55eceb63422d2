"""Steady-state calls and network lifetimes leak no memory: proven by three meters.

Each test warms up (so that workspaces, NumPy caches and the allocator's arenas reach their
steady size), then repeats one kind of call many times and asserts that
  * the resident set size (``/proc/self/statm``) grew less than RSS_BOUND,
  * the bytes glibc's malloc has handed out (``mallinfo2``: what the C++ core, NumPy's data
    buffers and pybind11 allocate) grew less than MALLOC_BOUND, and
  * the number of blocks Python's own allocator holds (``sys.getallocatedblocks``: every Python
    object, so a reference leaked by the bindings) grew less than BLOCKS_BOUND.
The calls: forward, gradient and step 100,000 times on a small network; loss, trace,
loss_and_grad at other parameters, jacobian; fit with a callback; calls that raise on bad input
or from the callback; 1,000 constructions and destructions of networks (each used once, and
one outliving a view of its parameters); 100 save/load round trips.

Under AddressSanitizer (``.ci/sanitize``) these meters measure ASan's quarantine and shadow
memory instead, so the file skips there; leaks are its business only in this file.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys

import numpy as np
import pytest

import fastprop

MiB = 2**20
# 100,000 calls that each leaked one result array (>= 100 bytes with its header) would grow
# the process by >= 10 MiB; the allocator's own noise (arena top trimming, fragmentation) stays
# below 1 MiB in steady state on this machine.
RSS_BOUND = 5 * MiB
# The smallest leak malloc can make is one 32-byte chunk; one such leak every 10 calls of
# 20,000 is 64 KiB, so 256 KiB catches a leak in any call path exercised >= 100,000 times at a
# rate of one per ~12 calls, and one leak per call in every loop here.
MALLOC_BOUND = 256 * 1024
# One Python object leaked per 20 calls of 20,000 is 1,000 blocks.
BLOCKS_BOUND = 1_000

CALLS = 100_000        # forward, gradient, step: the calls a training loop makes most
FEWER_CALLS = 20_000   # the other calls, to keep this file well under 30 s
WARM_UP = 2_000


def _under_asan() -> bool:
    with open("/proc/self/maps") as maps:
        return "libasan" in maps.read()


pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self"),
    pytest.mark.skipif(sys.platform.startswith("linux") and _under_asan(),
                       reason="under AddressSanitizer memory meters measure its quarantine"),
]


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def _mallinfo2():
    """glibc's mallinfo2 (all arenas), or None elsewhere."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    try:
        function = libc.mallinfo2
    except AttributeError:
        return None
    function.restype = _Mallinfo2
    return function


MALLINFO2 = _mallinfo2() if sys.platform.startswith("linux") else None


def meters() -> dict[str, int]:
    gc.collect()
    with open("/proc/self/statm") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    out = {"rss": rss, "blocks": sys.getallocatedblocks()}
    if MALLINFO2 is not None:
        info = MALLINFO2()
        out["malloc"] = info.uordblks + info.hblkhd  # in small chunks + in mmapped blocks
    return out


def assert_flat(work, repeats, what):
    """Run work() WARM_UP times, then `repeats` times, twice; assert every meter stayed flat
    in at least one of the two windows.

    A leak grows the meters in every window. CPython's allocator has one-time events that do
    not repeat: its table of arenas doubles when the heap reaches a new size (a realloc of
    about 1 MiB, seen here after thousands of calls that each allocate a few objects), which
    can land in any one window.
    """
    for _ in range(WARM_UP):
        work()
    growths = []
    for _window in range(2):
        before = meters()
        for _ in range(repeats):
            work()
        after = meters()
        growths.append({key: after[key] - before[key] for key in before})
    growth = {key: min(g[key] for g in growths) for key in growths[0]}
    print(f"\n{what} x {repeats} (the smaller of two windows): RSS {growth['rss'] / 1024:+.0f} "
          f"KiB, malloc {growth.get('malloc', 0) / 1024:+.0f} KiB, Python blocks "
          f"{growth['blocks']:+d}")
    assert growth["rss"] < RSS_BOUND, f"{what}: RSS grew by {growth['rss'] / MiB:.1f} MiB"
    if "malloc" in growth:
        assert growth["malloc"] < MALLOC_BOUND, \
            f"{what}: malloc'ed bytes grew by {growth['malloc'] / 1024:.0f} KiB"
    assert growth["blocks"] < BLOCKS_BOUND, \
        f"{what}: Python allocator holds {growth['blocks']} more blocks"


@pytest.fixture
def small():
    net = fastprop.Network([4, 8, 2], "tanh", bias=True, seed=0, loss="sse")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    return net, X, Y


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("method", ["forward", "gradient", "step"])
def test_hot_calls_do_not_leak(method, dtype):
    net = fastprop.Network([4, 8, 2], "tanh", bias=True, seed=0, dtype=dtype, loss="sse")
    rng = np.random.default_rng(0)
    # float64 input to a float32 network also exercises the converting copy.
    X, Y = rng.standard_normal((8, 4)), rng.standard_normal((8, 2))
    work = {"forward": lambda: net.forward(X), "gradient": lambda: net.gradient(X, Y),
            "step": lambda: net.step(X, Y, 1e-6)}[method]
    assert_flat(work, CALLS, f"{method} ({dtype})")


@pytest.mark.parametrize("method", ["loss", "trace", "loss_and_grad_at_params", "jacobian",
                                    "single_sample_forward", "step_with_adam_object"])
def test_other_calls_do_not_leak(small, method):
    net, X, Y = small
    other = net.params + 0.5
    adam = fastprop.optim.Adam(lr=1e-6)
    work = {
        "loss": lambda: net.loss(X, Y),
        "trace": lambda: net.trace(X),
        "loss_and_grad_at_params": lambda: net.loss_and_grad(X, Y, other),
        "jacobian": lambda: net.jacobian(X),
        "single_sample_forward": lambda: net.forward(X[0]),
        "step_with_adam_object": lambda: net.step(X, Y, optimizer=adam),
    }[method]
    assert_flat(work, FEWER_CALLS, method)


@pytest.mark.parametrize("options", [
    {"optimizer": "sgd", "lr": 1e-6},
    {"optimizer": "adam", "lr": 1e-6, "batch_size": 3, "validation_fraction": 0.25,
     "patience": 5},
    {"optimizer": "lm"},
], ids=["sgd", "adam_minibatch_validation", "lm"])
def test_fit_with_callback_does_not_leak(small, options):
    net, X, Y = small
    assert_flat(lambda: net.fit(X, Y, 2, seed=0, callback=lambda epoch, logs: None, **options),
                FEWER_CALLS // 4, f"fit {options}")


def _raises(call, error):
    try:
        call()
    except error:
        return
    raise AssertionError(f"{call} did not raise {error.__name__}")


@pytest.mark.parametrize("case", ["bad_shape", "row_mismatch", "bad_dtype", "callback_raises",
                                  "nan_stops_fit"])
def test_error_paths_do_not_leak(small, case):
    net, X, Y = small
    Y_nan = Y.copy()
    Y_nan[0, 0] = np.nan

    def callback(epoch, logs):
        raise RuntimeError("stop")

    work = {
        "bad_shape": lambda: _raises(lambda: net.forward(np.zeros((3, 5))), ValueError),
        "row_mismatch": lambda: _raises(lambda: net.gradient(X, Y[:3]), ValueError),
        "bad_dtype": lambda: _raises(lambda: net.loss(X.astype(complex), Y), TypeError),
        "callback_raises": lambda: _raises(
            lambda: net.fit(X, Y, 3, 1e-6, callback=callback, optimizer="sgd"), RuntimeError),
        "nan_stops_fit": lambda: _raises(lambda: net.fit(X, Y_nan, 3, 1e-6, optimizer="sgd"), FloatingPointError),
    }[case]
    assert_flat(work, FEWER_CALLS // 4, case)


CONSTRUCTIONS = 1_000
# [64, 256, 64] has 33,088 parameters (260 KiB in float64): a network, its gradient buffer or its
# workspace kept alive by mistake would grow the process by >= 250 MiB over the loop.
BIG_LAYERS = [64, 256, 64]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_construction_and_destruction_do_not_leak(dtype):
    X = np.ones((16, 64))
    Y = np.zeros((16, 64))

    def work():
        net = fastprop.Network(BIG_LAYERS, "relu", bias=True, dtype=dtype, seed=7, loss="sse")
        net.gradient(X, Y)  # grows the workspace and the gradient buffer, freed with the net

    # Meters are coarse for 1,000 iterations: assert_flat warms up with WARM_UP of them too.
    assert_flat(work, CONSTRUCTIONS, f"construct + gradient + destroy ({dtype})")


def test_network_outliving_its_view_is_freed():
    def work():
        view = fastprop.Network(BIG_LAYERS, seed=1, bias=False, loss="sse").params  # the view keeps the network alive
        view[0] = 1.0
        del view                                             # ... until it goes

    assert_flat(work, CONSTRUCTIONS, "network kept alive by a params view, then dropped")


SAVE_LOAD_ROUNDS = 100


def test_save_load_round_trips_do_not_leak(tmp_path):
    net = fastprop.Network(BIG_LAYERS, "tanh", bias=True, seed=2, loss="sse")
    path = tmp_path / "model.npz"

    def work():
        net.save(path)
        loaded = fastprop.load(path)
        assert loaded.n_params == net.n_params

    # Warm-up of WARM_UP round trips would take too long; a tenth is plenty for file I/O.
    for _ in range(SAVE_LOAD_ROUNDS):
        work()
    before = meters()
    for _ in range(SAVE_LOAD_ROUNDS):
        work()
    after = meters()
    growth = after["rss"] - before["rss"]
    print(f"\nsave/load x {SAVE_LOAD_ROUNDS}: RSS {growth / 1024:+.0f} KiB")
    # 100 leaked networks of 260 KiB would be 25 MiB.
    assert growth < RSS_BOUND
    if "malloc" in after:
        assert after["malloc"] - before["malloc"] < MALLOC_BOUND


def test_meters_see_a_deliberate_leak(small):
    """Calibration: keeping one small result array per call must trip every meter's bound,
    so that the flat readings above mean something."""
    net, X, _ = small
    kept = []
    before = meters()
    for _ in range(FEWER_CALLS):
        kept.append(net.forward(X))  # (8, 2) float64: 128 bytes of data + an ndarray object
    after = meters()
    assert after["blocks"] - before["blocks"] >= BLOCKS_BOUND
    if "malloc" in after:
        assert after["malloc"] - before["malloc"] >= MALLOC_BOUND
    assert len(kept) == FEWER_CALLS
