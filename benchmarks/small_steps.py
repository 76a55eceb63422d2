"""Training steps per second of tiny networks, where fixed costs per product and per step
decide: W1's network, one network of benchmarks/many.py's E2, single-sample steps and small
batches. One process, the best of ``--repeats`` fits each, fastprop alone (compare two builds
by running this under each, alternated, on a machine as quiet as can be had).

    python benchmarks/small_steps.py [--repeats 15] [--threads 1] [--tanh-sweep]

--tanh-sweep adds full-batch steps of [w, w, w, w] tanh networks on 256 rows (w = 16, 64,
256, 1024), where the activation pass weighs on wider layers too.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

# (name, layers, activation, bias, dtype, rows per step, steps per fit, full batch): a full
# batch is one step per epoch (W1: 4 rows, as the bench's); otherwise one epoch of `steps`
# minibatches, unshuffled.
CASES = [
    ("W1 float32", [2, 8, 8, 1], "sigmoid", False, "float32", 4, 20_000, True),
    ("W1 float64", [2, 8, 8, 1], "sigmoid", False, "float64", 4, 20_000, True),
    ("E2 network", [8, 16, 1], "tanh", True, "float32", 16, 1280, False),
    ("[64, 64, 64, 10] x 1", [64, 64, 64, 10], "sigmoid", True, "float32", 1, 512, False),
    ("[37, 37, 37, 1] x 1", [37, 37, 37, 1], "sigmoid", True, "float32", 1, 512, False),
    ("[32, 32, 1] x 4", [32, 32, 1], "sigmoid", True, "float32", 4, 512, False),
]


def steps_per_second(layers, activation, bias, dtype, batch, steps, full, repeats) -> float:
    import fastprop

    rng = np.random.default_rng(0)
    rows = batch if full else batch * steps
    X = rng.standard_normal((rows, layers[0])).astype(dtype)
    Y = rng.standard_normal((rows, layers[-1])).astype(dtype)
    net = fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=0, loss="sse")
    epochs = steps if full else 1
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        net.fit(X, Y, epochs, lr=1e-6, optimizer="sgd", batch_size=batch, shuffle=False)
        best = min(best, time.perf_counter() - start)
    return steps / best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tanh-sweep", action="store_true")
    args = parser.parse_args(argv)
    import fastprop

    fastprop.set_num_threads(args.threads)
    print(f"fastprop {fastprop.__version__}, kernels {fastprop._core.kernel_isa()}, "
          f"{args.threads} thread(s), load average {os.getloadavg()[0]:.2f}")
    for name, layers, activation, bias, dtype, batch, steps, full in CASES:
        rate = steps_per_second(layers, activation, bias, dtype, batch, steps, full,
                                args.repeats)
        print(f"{name:24s} {rate / 1e3:9.0f}k steps/s")
        sys.stdout.flush()
    if args.tanh_sweep:
        for w in (16, 64, 256, 1024):
            steps = max(2, int(2e8 / (18 * 256 * w * w)))  # about 0.2 GFLOP per fit
            rate = steps_per_second([w] * 4, "tanh", True, "float32", 256, steps, True,
                                    max(3, args.repeats // 2))
            print(f"{f'[{w}] x 4 tanh, 256 rows':24s} {rate:10.0f} steps/s")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
