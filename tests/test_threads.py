"""Threads change the speed of the core, never its results."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastprop
from fastprop import network


@pytest.fixture
def restore_threads():
    before = fastprop.get_num_threads()
    yield
    fastprop.set_num_threads(before)


def run_everything(dtype):
    """Forward, gradient and a minibatch fit on products large enough to be split."""
    rng = np.random.default_rng(0)
    net = fastprop.Network([256, 512, 512, 16], "relu", bias=True, dtype=dtype, seed=1)
    X = rng.standard_normal((600, 256)).astype(dtype)
    Y = rng.standard_normal((600, 16)).astype(dtype)
    z = net.forward(X)
    E, dW, db = net.gradient(X, Y)
    history = net.fit(X, Y, 2, lr=1e-4, batch_size=300, seed=0)
    # small layers on minibatches of 128: each batch runs as two halves on two threads
    small = fastprop.Network([64, 64, 64, 10], "sigmoid", bias=True, dtype=dtype, seed=2,
                             loss="mse")
    E_small, dW_small, _ = small.gradient(X[:128, :64], Y[:128, :10])
    small_history = small.fit(X[:, :64], Y[:, :10], 2, lr=1e-2, batch_size=128, seed=0,
                              optimizer="adam")
    return [z, np.array([E]), *dW, *db, np.asarray(history), net.params.copy(),
            np.array([E_small]), *dW_small, np.asarray(small_history), small.params.copy()]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_results_are_bit_identical_for_any_thread_count(restore_threads, dtype):
    results = {}
    for k in (1, 2, 3):
        fastprop.set_num_threads(k)
        assert fastprop.get_num_threads() == k
        results[k] = run_everything(dtype)
    for k in (2, 3):
        for a, b in zip(results[1], results[k]):
            np.testing.assert_array_equal(a, b)


def test_environment_variable_sets_the_default():
    code = "import fastprop; print(fastprop.get_num_threads())"
    env = {**os.environ, "FASTPROP_NUM_THREADS": "3"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "3"


@pytest.mark.parametrize("name, value", [
    ("FASTPROP_MAX_ISA", "avx"), ("FASTPROP_MAX_ISA", "AVX2"), ("FASTPROP_MAX_ISA", ""),
    ("FASTPROP_NUM_THREADS", "0"), ("FASTPROP_NUM_THREADS", "-2"), ("FASTPROP_NUM_THREADS", "two"),
    ("FASTPROP_NUM_THREADS", "3x"), ("FASTPROP_NUM_THREADS", ""),
])
def test_a_setting_the_core_ignores_warns(name, value):
    with pytest.warns(RuntimeWarning, match=f"{name}={value!r} is ignored"):
        network._warn_about_ignored_settings({name: value})


@pytest.mark.parametrize("name, value", [
    ("FASTPROP_MAX_ISA", "portable"), ("FASTPROP_MAX_ISA", "avx2"), ("FASTPROP_MAX_ISA", "avx512"),
    ("FASTPROP_NUM_THREADS", "1"), ("FASTPROP_NUM_THREADS", " 4"), ("FASTPROP_NUM_THREADS", "+2"),
])
def test_a_setting_the_core_reads_is_silent(name, value):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        network._warn_about_ignored_settings({name: value})


def test_an_ignored_setting_warns_at_import():
    env = {**os.environ, "FASTPROP_MAX_ISA": "sse"}
    out = subprocess.run([sys.executable, "-c", "import fastprop"], env=env, capture_output=True,
                         text=True, check=True)
    assert "RuntimeWarning: FASTPROP_MAX_ISA='sse' is ignored" in out.stderr


@pytest.mark.parametrize("k, error, message", [
    (0, ValueError, r"k must be >= 1, got 0"),
    (-2, ValueError, r"k must be >= 1, got -2"),
    (10**6, ValueError, r"k must be <= \d+ \(fastprop.max_threads\(\)\), got 1000000"),
    (2**70, ValueError, r"k must be <= \d+ \(fastprop.max_threads\(\)\), got 1180591620717411303424"),
    (1.5, TypeError, r"k must be an int, got float"),
])
def test_bad_thread_counts(k, error, message):
    with pytest.raises(error, match=message):
        fastprop.set_num_threads(k)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads in /proc")
@pytest.mark.parametrize("value", ["1e23", "99999999999999999999", "1000000", str(2**64)])
def test_a_huge_thread_count_from_the_environment_is_capped(value):
    # The core reads the variable; whatever it says, the pool stays within max_threads(), the
    # bound the error messages name (and the call works).
    code = ("import os, warnings, numpy as np, fastprop\n"
            "net = fastprop.Network([256, 1024, 1024, 1], seed=0)\n"
            "net.forward(np.ones((2048, 256)))\n"
            "print(fastprop.get_num_threads(), fastprop.max_threads(),"
            " len(os.listdir('/proc/self/task')))\n")
    env = {**os.environ, "FASTPROP_NUM_THREADS": value}
    out = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    k, bound, tasks = map(int, out.stdout.split())
    assert 1 <= k <= bound == max(64, 4 * os.cpu_count())
    # the pool's threads, the main thread (and ThreadSanitizer's own, under .ci/tsan)
    assert tasks <= bound + 2


# The bench's untuned shapes: widths one past a multiple of the vector width (65 on 256 rows
# runs in halves, 129's products split themselves), minibatches of 17, ten layers of 32 (in
# halves on 256 rows), single-sample steps.
UNTUNED = [((65,) * 4, 256, None), ((129,) * 4, 256, None), ((37,) * 4, 256, 17),
           ((32,) * 11, 256, None), ((64,) * 4, 40, 1)]


@pytest.mark.parametrize("layers, t, batch_size", UNTUNED)
def test_untuned_shapes_are_bit_identical_for_any_thread_count(restore_threads, layers, t,
                                                                batch_size):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((t, layers[0])).astype("float32")
    Y = np.tanh(rng.standard_normal((t, layers[-1]))).astype("float32")
    results = {}
    for k in (1, 2):
        fastprop.set_num_threads(k)
        net = fastprop.Network(layers, "relu", bias=True, dtype="float32", seed=0, loss="sse")
        E, dW, db = net.gradient(X, Y)
        net.fit(X, Y, 3, lr=1 / (1024 * layers[0]), optimizer="sgd", batch_size=batch_size,
                shuffle=False)
        results[k] = [np.array([E]), *dW, *db, net.params.copy()]
    for a, b in zip(results[1], results[2]):
        np.testing.assert_array_equal(a, b)
