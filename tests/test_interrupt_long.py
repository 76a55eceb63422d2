"""A real SIGINT during a long core call is honoured promptly, and leaves the network consistent.

Each test runs a child Python process that starts one long call, is sent a real SIGINT by
this process, and prints the CLOCK_MONOTONIC time (system-wide, so comparable across the two
processes) at which it caught the KeyboardInterrupt. What is proven:

* during a long ``forward``, a long ``gradient`` and a ``fit`` whose one full-batch step is
  long (a [256, 512, 512, 10] network on a batch sized by the child to take TARGET_SECONDS, up
  to MAX_BATCH_BYTES of input), the KeyboardInterrupt arrives less than LATENCY_BOUND after
  the signal, and the interrupted ``fit`` leaves the parameters as they were;
* during a long minibatch ``fit`` (plain SGD, no shuffling, so that it can be replayed from
  Python), the network is left exactly (bit for bit) at a completed update: the one reached by
  ``len(history)`` whole epochs and then some number of the next epoch's minibatch steps, and
  the history holds exactly those completed epochs;
* during a long ``fit(optimizer="lm")``, the network is left exactly at the end of its last
  completed epoch (never at a rejected trial point), its parameters finite.

The latencies are printed (``pytest -s``). Only the forward, gradient and fit latency is asserted,
with a bound 5x the 100 ms the design aims at, because the machine is shared and noisy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import SIGINT_RAISES

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The design aims at ~100 ms (the core polls for signals every 20 ms between chunks of rows);
# 0.5 s leaves room for a loaded 2-core machine without letting a per-call check pass.
LATENCY_BOUND = 0.5
# Under .ci/sanitize the same code runs several times slower (ASan + UBSan checks on every
# access): there the path is exercised for memory errors and only liveness is asserted.
if os.environ.get("FASTPROP_SANITIZED"):
    LATENCY_BOUND = 10.0
SIGNAL_AFTER = 1.5        # seconds after the child says it is about to call: well inside it
TARGET_SECONDS = 8.0      # how long the child sizes its call to take, were it not interrupted
MAX_BATCH_BYTES = 2**31   # cap on the input's size (2 GiB) on a 24 GiB machine shared with others
CHILD_TIMEOUT = 300.0     # only a child that ignores the signal runs this long

LONG_CALL = textwrap.dedent("""
    import json, math, sys, time
    import numpy as np, fastprop
    method, dtype, target, max_bytes = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    net = fastprop.Network([256, 512, 512, 10], "sigmoid", bias=False, dtype=dtype, seed=0, loss="sse")
    rng = np.random.default_rng(0)
    tile = rng.standard_normal((1024, 256)).astype(dtype)
    def call(X):
        if method == "forward":
            return net.forward(X)
        if method == "fit":  # one step on the whole batch
            return net.fit(X, np.zeros((len(X), 10), dtype=dtype), 1, 1e-12, optimizer="sgd")
        return net.gradient(X, np.zeros((len(X), 10), dtype=dtype))
    call(tile)  # warm: the first call also grows the workspace and starts the threads
    start = time.perf_counter()
    call(tile)
    per_row = (time.perf_counter() - start) / len(tile)
    rows = int(min(target / per_row, max_bytes / (256 * tile.itemsize)))
    X = np.tile(tile, (math.ceil(rows / len(tile)), 1))[:rows]
    before = net.params.copy()
    print(json.dumps({"ready": rows, "seconds_per_row": per_row}), flush=True)
    try:
        call(X)
    except KeyboardInterrupt:
        caught = time.monotonic()
        unchanged = bool(np.array_equal(net.params, before))
        print(json.dumps({"caught": caught, "unchanged": unchanged}), flush=True)
        sys.exit(0)
    print(json.dumps({"finished": True}), flush=True)
    sys.exit(1)
""")


def interrupt_child(script, *args):
    """Start the child, SIGINT it SIGNAL_AFTER seconds after it says "ready"; its messages
    and the latency from the signal to its catching the KeyboardInterrupt."""
    proc = subprocess.Popen([sys.executable, "-c", SIGINT_RAISES + script, *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert "ready" in ready, ready
        time.sleep(SIGNAL_AFTER)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=CHILD_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    messages = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert proc.returncode == 0 and messages and "caught" in messages[0], \
        f"child did not stop with KeyboardInterrupt (rc {proc.returncode}): {out}\n{err}"
    return ready, messages[0], messages[0]["caught"] - sent


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("method", ["forward", "gradient", "fit"])
def test_sigint_during_a_long_call_is_honoured_promptly(method, dtype):
    ready, caught, latency = interrupt_child(LONG_CALL, method, dtype, TARGET_SECONDS,
                                             MAX_BATCH_BYTES)
    print(f"\n{method} ({dtype}) on {ready['ready']:,} rows "
          f"({ready['seconds_per_row'] * 1e6:.0f} us/row): SIGINT honoured after "
          f"{latency * 1e3:.0f} ms")
    assert 0 <= latency < LATENCY_BOUND, \
        f"KeyboardInterrupt came {latency:.3f} s after SIGINT during {method}"
    assert caught["unchanged"], "the interrupted call changed the parameters"


MINIBATCH_FIT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, fastprop
    B, lr = 64, 1e-5
    def make():
        # the classic model (sse, plain sgd), whose minibatch steps net.step replays
        return fastprop.Network([64, 256, 256, 1], "relu", bias=True, seed=0, loss="sse")
    net, twin = make(), make()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 64)); Y = rng.standard_normal((4096, 1))
    print(json.dumps({"ready": True}), flush=True)
    try:
        net.fit(X, Y, 1_000_000, lr, optimizer="sgd", batch_size=B, shuffle=False)
    except KeyboardInterrupt:
        caught = time.monotonic()
    else:
        print(json.dumps({"finished": True}), flush=True); sys.exit(1)
    epochs = len(net.history)
    history = (twin.fit(X, Y, epochs, lr, optimizer="sgd", batch_size=B, shuffle=False)
               if epochs else [])
    same_history = bool(np.array_equal(history, net.history))
    # Replay the interrupted epoch one minibatch step at a time until the states agree.
    extra_steps = None
    for j in range(len(X) // B):
        if np.array_equal(twin.params, net.params):
            extra_steps = j
            break
        twin.step(X[j * B:(j + 1) * B], Y[j * B:(j + 1) * B], lr)
    print(json.dumps({"caught": caught, "epochs": epochs, "same_history": same_history,
                      "extra_steps": extra_steps,
                      "finite": bool(np.all(np.isfinite(net.params)))}), flush=True)
""")


def test_sigint_during_minibatch_fit_leaves_the_network_at_a_completed_update():
    _, report, latency = interrupt_child(MINIBATCH_FIT)
    print(f"\nminibatch fit: SIGINT honoured after {latency * 1e3:.0f} ms, "
          f"{report['epochs']} epochs + {report['extra_steps']} steps completed")
    assert report["finite"]
    assert report["same_history"], "history differs from the completed epochs replayed"
    assert report["extra_steps"] is not None, \
        "parameters match no completed minibatch update of the interrupted epoch"


LM_FIT = textwrap.dedent("""
    import json, sys, time
    import numpy as np, fastprop
    def make():
        return fastprop.Network([8, 20, 20, 1], "tanh", bias=True, seed=0, loss="sse")   # 621 parameters
    net, twin = make(), make()
    rng = np.random.default_rng(0)
    # About 0.1 s an epoch: several complete before the signal. Y is noise: no early end.
    X = rng.standard_normal((1000, 8)); Y = rng.standard_normal((1000, 1))
    print(json.dumps({"ready": True}), flush=True)
    try:
        net.fit(X, Y, 1_000_000, optimizer="lm")
    except KeyboardInterrupt:
        caught = time.monotonic()
    else:
        print(json.dumps({"finished": net.history.stop}), flush=True); sys.exit(1)
    epochs = len(net.history)
    history = twin.fit(X, Y, epochs, optimizer="lm") if epochs else []
    print(json.dumps({"caught": caught, "epochs": epochs,
                      "same_history": bool(np.array_equal(history, net.history)),
                      "same_params": bool(np.array_equal(twin.params, net.params)),
                      "finite": bool(np.all(np.isfinite(net.params)))}), flush=True)
""")


def test_sigint_during_levenberg_marquardt_leaves_the_network_at_its_last_epoch():
    _, report, latency = interrupt_child(LM_FIT)
    print(f"\nlm fit: SIGINT honoured after {latency * 1e3:.0f} ms, "
          f"{report['epochs']} epochs completed")
    assert report["finite"]
    assert report["same_history"], "history differs from the completed epochs replayed"
    assert report["same_params"], \
        "parameters are not those after the completed epochs (a rejected trial point?)"
