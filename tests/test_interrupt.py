"""Ctrl-C during a long fit stops it between two updates, with the history so far."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastprop
from helpers import SIGINT_RAISES

# Under a sanitizer (.ci/sanitize, .ci/tsan) the core runs several times slower.
SLOW = 4 if os.environ.get("FASTPROP_SANITIZED") else 1

SCRIPT = textwrap.dedent("""
    import sys, numpy as np, fastprop
    net = fastprop.Network([64, 256, 256, 1], "relu", bias=True, seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 64)); Y = rng.standard_normal((4096, 1))
    print("ready", flush=True)
    try:
        net.fit(X, Y, epochs=1_000_000, lr=1e-6)
    except KeyboardInterrupt:
        print("interrupted", len(net.history), np.all(np.isfinite(net.params)), flush=True)
        sys.exit(0)
    print("finished", flush=True)
    sys.exit(1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_stops_a_long_fit_promptly():
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_RAISES + SCRIPT], stdout=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0 * SLOW)  # well inside fit
        sent = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.perf_counter() - sent
    finally:
        proc.kill()
    words = out.split()
    assert proc.returncode == 0, out
    assert words[0] == "interrupted" and int(words[1]) >= 1 and words[2] == "True"
    # Includes interpreter shutdown; the stop itself is polled every 20 ms between updates.
    assert elapsed < 2.0 * SLOW


def test_keyboard_interrupt_from_callback_keeps_history():
    net = fastprop.Network([2, 3, 1], seed=0, bias=False, loss="sse")
    X, Y = np.ones((4, 2)), np.ones((4, 1))

    def callback(epoch, logs):
        if epoch == 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        net.fit(X, Y, 100, 0.1, callback=callback, optimizer="sgd")
    assert len(net.history) == 5
    twin = fastprop.Network([2, 3, 1], seed=0, bias=False, loss="sse")
    twin.fit(X, Y, 5, 0.1, optimizer="sgd")
    np.testing.assert_array_equal(net.params, twin.params)  # exactly 5 completed updates


# Short epochs with a Python epoch hook (the progress bar, a callback): most SIGINTs land while
# the hook runs, or on its way back into the core.
HOOK_SCRIPT = textwrap.dedent("""
    import sys, time, numpy as np, fastprop
    net = fastprop.Network([16, 32, 1], "tanh", seed=0)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 16)); Y = rng.standard_normal((64, 1))
    opt = fastprop.optim.SGD(lr=1e-4)
    hook = sys.argv[1]
    kwargs = {"verbose": True} if hook == "verbose" else {
        "callback": lambda epoch, logs: time.sleep(0.001)}
    print("ready", flush=True)
    try:
        net.fit(X, Y, 10**9, optimizer=opt, batch_size=16, shuffle=False, **kwargs)
    except KeyboardInterrupt:
        print("interrupted", len(net.history), opt.steps, flush=True)
        sys.exit(0)
    sys.exit(1)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("hook", ["verbose", "callback"])
def test_sigint_during_the_epoch_hook_keeps_the_completed_epochs(hook):
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_RAISES + HOOK_SCRIPT, hook],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0 * SLOW)  # many epochs in
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60 * SLOW)
    finally:
        proc.kill()
    assert proc.returncode == 0, out
    word, epochs, steps = out.split()
    # Four updates per epoch: every completed epoch is in the history, and the optimiser
    # counted its updates (those of the interrupted epoch too).
    assert word == "interrupted" and int(epochs) >= 1
    assert 4 * int(epochs) <= int(steps) <= 4 * int(epochs) + 4
