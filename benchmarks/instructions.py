"""Instructions per training step of the bench's workloads, counted by valgrind's callgrind.

A count does not move with the machine's load, so two builds of fastprop can be compared on a
shared machine where timings cannot: run this under each build's Python and compare. Each
workload is fitted twice in a child process under callgrind, for N and 2N steps (one thread,
the same data and seed), counting only inside the core's fit (``--toggle-collect`` on its
entry point); the difference over N is the count of one step, without the set-up of a fit.
Under valgrind the CPU has no AVX-512, so the counts are of the AVX2 kernels at most.

    python benchmarks/instructions.py                  # W1, W2 (float32 and float64), W3, E2
    python benchmarks/instructions.py --workloads W2 --steps 200

Needs valgrind. Counts are of the kernels this CPU runs (``fastprop._core.kernel_isa()``;
``FASTPROP_MAX_ISA=avx2`` counts the AVX2 ones).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile

# name: (layers, activation, minibatch rows, whether it is the full batch, dtype): the full
# batch is one step per epoch; minibatches are `steps` of them in one epoch, unshuffled.
WORKLOADS = {
    "W1-f32": ([2, 8, 8, 1], "sigmoid", 4, True, "float32"),
    "W1-f64": ([2, 8, 8, 1], "sigmoid", 4, True, "float64"),
    "W2-f32": ([64, 64, 64, 10], "sigmoid", 32, False, "float32"),
    "W2-f64": ([64, 64, 64, 10], "sigmoid", 32, False, "float64"),
    "W3-f32": ([784, 256, 256, 10], "relu", 128, False, "float32"),
    "E2-f32": ([8, 16, 1], "tanh", 16, False, "float32"),  # one network of benchmarks/many.py's E2
}

# The data is drawn for the larger run in both, so that only the steps differ.
CHILD = r"""
import sys
import numpy as np
import fastprop
layers, activation, batch, full, dtype, steps, most = eval(sys.argv[1])
t = batch if full else batch * most
rng = np.random.default_rng(0)
X = rng.standard_normal((t, layers[0])).astype(dtype)
Y = rng.standard_normal((t, layers[-1])).astype(dtype)
net = fastprop.Network(layers, activation, bias=True, dtype=dtype, seed=0, loss="sse")
if full:
    net.fit(X, Y, steps, lr=1e-6, optimizer="sgd")
else:
    rows = batch * steps
    net.fit(X[:rows], Y[:rows], 1, lr=1e-6, optimizer="sgd", batch_size=batch, shuffle=False)
"""


# The core's fit as the binding calls it, in this layout and in the one before it.
FIT_ENTRY_POINTS = ("fastprop::Session<float>::fit(*", "fastprop::Session<double>::fit(*",
                    "fastprop::FitResult fastprop::fit<float>(*",
                    "fastprop::FitResult fastprop::fit<double>(*")


def instructions(args: tuple) -> int:
    """Instructions (callgrind's Ir) of the child run with these arguments."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        env = {**os.environ, "FASTPROP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
        toggles = [f"--toggle-collect={entry}" for entry in FIT_ENTRY_POINTS]
        run = subprocess.run(
            ["valgrind", "--tool=callgrind", "--collect-atstart=no", *toggles,
             f"--callgrind-out-file={out}", sys.executable, "-c", CHILD, repr(args)],
            env=env, capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(run.stderr[-2000:])
        match = re.search(r"Collected\s*:\s*(\d+)", run.stderr)
        if match is None:
            raise RuntimeError(f"no instruction count in valgrind's output:\n{run.stderr[-2000:]}")
        return int(match.group(1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help=f"comma-separated, default all: {', '.join(WORKLOADS)}")
    parser.add_argument("--steps", type=int, default=0,
                        help="N (default: 2000 for W1, 200 for W2, 10 for W3, 500 for E2)")
    args = parser.parse_args(argv)
    import fastprop

    print(f"fastprop {fastprop.__version__}, kernels {fastprop._core.kernel_isa()}, one thread")
    for name in args.workloads.split(","):
        layers, activation, batch, full, dtype = WORKLOADS[name]
        steps = args.steps or {"W1": 2000, "W2": 200, "W3": 10, "E2": 500}[name[:2]]
        once = instructions((layers, activation, batch, full, dtype, steps, 2 * steps))
        twice = instructions((layers, activation, batch, full, dtype, 2 * steps, 2 * steps))
        print(f"{name}: {(twice - once) / steps:,.0f} instructions per step "
              f"(callgrind, {steps} and {2 * steps} steps)")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
