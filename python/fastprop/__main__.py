"""python -m fastprop: train a network on a generated data set, cross-check, time it.

The demo fits z_n ≈ y = sin(π x_1)·x_2 on samples drawn uniformly from [−1, 1]² with the
classic full-batch gradient descent, prints E going down, compares the core's gradient with
fastprop.reference (the NumPy transcription of the equations) and the time of one step.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import fastprop
from fastprop import reference


def make_data(t: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(t, 2))
    Y = (np.sin(np.pi * X[:, 0]) * X[:, 1])[:, np.newaxis]
    return X, Y


def seconds_per_call(fn, min_time: float = 0.2) -> float:
    """Median time of one call, over repeats that take at least min_time in all."""
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def demo(args: argparse.Namespace) -> int:
    X, Y = make_data(args.samples, args.seed)
    t = len(X)
    net = fastprop.Network(args.layers, args.activation, bias=True, dtype=args.dtype,
                           seed=args.seed)
    print(f"fastprop {fastprop.__version__}: {net}")
    print(f"data: {t} samples of y = sin(pi x1) x2, x uniform on [-1, 1]^2")
    print(f"full-batch gradient descent, lr = {args.lr}, E = sum over samples of ||y - z_n||^2\n")

    # The gradient at the starting point, before training moves the parameters.
    W, b = [w.copy() for w in net.weights], [v.copy() for v in net.biases]
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X, Y)

    print(f"{'epoch':>7}  {'E':>12}  {'E / t':>10}")
    report = sorted({0, *range(args.epochs // 10 - 1, args.epochs, args.epochs // 10 or 1)})

    def show(epoch: int, logs: dict) -> None:
        if epoch in report:
            print(f"{epoch + 1:>7}  {logs['loss']:>12.6f}  {logs['loss'] / t:>10.6f}")

    start = time.perf_counter()
    history = net.fit(X, Y, epochs=args.epochs, lr=args.lr, callback=show)
    elapsed = time.perf_counter() - start
    print(f"\ntrained {args.epochs} epochs in {elapsed:.3f} s; E went from {history[0]:.4f} "
          f"to {history[-1]:.4f}")

    diff = max(np.max(np.abs(g - g_ref)) for g, g_ref in zip(dW + db, dW_ref + db_ref))
    scale = max(np.max(np.abs(g_ref)) for g_ref in dW_ref + db_ref)
    print(f"gradient vs fastprop.reference: largest |difference| {diff:.3e} "
          f"(largest |entry| {scale:.3e}); E {E:.12g} vs {E_ref:.12g}")

    core_step = seconds_per_call(lambda: net.gradient(X, Y))
    ref_step = seconds_per_call(lambda: reference.gradient(W, b, net.activations, X, Y))
    print(f"one gradient of {t} samples: fastprop {core_step * 1e6:.1f} us, reference "
          f"{ref_step * 1e3:.1f} ms: {ref_step / core_step:.0f}x faster")
    ok = diff <= 1e-8 * max(scale, 1.0) and history[-1] < history[0]
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m fastprop",
        description="Train a network on a generated data set with fastprop's C++ core, "
                    "cross-check its gradient against the NumPy reference and time both.")
    parser.add_argument("--layers", type=lambda s: [int(v) for v in s.split(",")],
                        default=[2, 16, 16, 1], help="layer sizes l_0,...,l_n (default 2,16,16,1)")
    parser.add_argument("--activation", default="tanh", choices=reference.ACTIVATIONS)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--samples", type=int, default=500, help="t (default 500)")
    parser.add_argument("--epochs", type=int, default=3000, help="default 3000")
    parser.add_argument("--lr", type=float, default=3e-4, help="learning rate m (default 3e-4)")
    parser.add_argument("--seed", type=int, default=0, help="data and initialisation seed")
    args = parser.parse_args(argv)
    if args.layers[0] != 2 or args.layers[-1] != 1:
        parser.error(f"--layers must start with 2 and end with 1 for this data set, got {args.layers}")
    return demo(args)


if __name__ == "__main__":
    sys.exit(main())
