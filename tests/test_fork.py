"""fork, interpreter exit and waiting callbacks while a thread is inside the core: nothing hangs.

Each case runs in a child interpreter with a timeout, so that a hang fails the test instead of
the suite:

* ``os.fork()`` while another thread is inside a ``fit`` of the same network (holding its
  lock, its pool's threads busy): the forked child uses that network, a new one and the
  thread pool, and exits 0;
* the interpreter exits while a daemon thread is inside ``fit`` or ``forward``: exit status 0,
  no "terminate called" abort;
* a ``fit`` callback that starts a thread using the same network (forward, fit, save) and
  waits for it: the fit goes on.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

SLOW = 4 if os.environ.get("FASTPROP_SANITIZED") else 1
TIMEOUT = 120 * SLOW  # seconds; only a hang takes this long (each case takes ~1 s)

PRELUDE = textwrap.dedent("""
    import os, sys, threading, time
    import numpy as np
    import fastprop
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 128)); Y = rng.standard_normal((512, 1))
    net = fastprop.Network([128, 256, 256, 1], "tanh", seed=0)
    inside = threading.Event()  # set by the callback: the other thread is inside fit
""")


def run(script: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
                          capture_output=True, text=True, timeout=TIMEOUT)
    return proc


FORK_DURING_FIT = """
    stop = threading.Event()
    def train():
        while not stop.is_set():
            net.fit(X, Y, 3, lr=1e-6, callback=lambda e, logs: inside.set())
    threading.Thread(target=train, daemon=True).start()
    inside.wait()
    statuses = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:  # the child: the network a vanished thread was training, a new one
            try:
                z = net.forward(X[:8])
                net.fit(X[:64], Y[:64], 2, lr=1e-6)
                other = fastprop.Network([128, 64, 1], seed=1)
                other.fit(X, Y, 2, lr=1e-6)
                fastprop.set_num_threads(2)
                other.forward(X)
                os._exit(0 if np.all(np.isfinite(z)) else 3)
            except BaseException:
                os._exit(4)
        statuses.append(os.waitpid(pid, 0)[1])
        time.sleep(0.02 * k)  # fork at other moments of the fit
    stop.set()
    print(statuses)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_fork_while_another_thread_fits_the_same_network():
    proc = run(FORK_DURING_FIT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[0, 0, 0, 0]", (proc.stdout, proc.stderr)


@pytest.mark.parametrize("call", ["fit", "forward", "loss_and_grad"])
def test_interpreter_exit_with_a_daemon_thread_inside_the_core(call):
    proc = run(f"""
        def work():
            while True:
                if {call!r} == "fit":
                    net.fit(X, Y, 10**6, lr=1e-9, callback=lambda e, logs: inside.set())
                elif {call!r} == "forward":
                    net.forward(X); inside.set()
                else:
                    net.loss_and_grad(X, Y); inside.set()
        threading.Thread(target=work, daemon=True).start()
        inside.wait()
        time.sleep(0.05)
        print("exiting", flush=True)
    """)
    assert proc.returncode == 0, (proc.returncode, proc.stderr)
    assert proc.stdout == "exiting\n"
    assert "terminate called" not in proc.stderr


def test_a_callback_may_wait_for_a_thread_using_the_same_network(tmp_path):
    path = tmp_path / "m.npz"
    proc = run(f"""
        seen = []
        def other():
            seen.append(net.forward(X[:4]).shape)
            net.fit(X[:32], Y[:32], 1, lr=1e-6)
            net.save({str(path)!r})
            seen.append(fastprop.load({str(path)!r}).n_params == net.n_params)
        def callback(epoch, logs):
            worker = threading.Thread(target=other, daemon=True)
            worker.start()
            worker.join()
        h = net.fit(X, Y, 3, lr=1e-6, callback=callback)
        print(len(h), seen)
    """)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "3 [(4, 1), True, (4, 1), True, (4, 1), True]"
