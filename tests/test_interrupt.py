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
        time.sleep(1.0)  # well inside fit
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
    assert elapsed < 2.0


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
