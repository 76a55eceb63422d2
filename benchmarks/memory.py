"""Peak resident memory of fit on W4, against what it must hold; or of a grid search.

    python benchmarks/memory.py [--threads 2]
    python benchmarks/memory.py --search

``--search`` runs one GridSearchCV of fastprop.sklearn.MLPRegressor (12 candidates × 5 folds
of [64, 512, 512, 1], float64, on 2,000 rows) twice, each in a fresh child process: with the
fits trained in chunks of about 256 MiB (as fastprop.model_selection does), and with every
fit of the search trained at once (the chunk budget lifted). It prints the peak each adds.

Run in a fresh process (the peak, VmHWM, is per process; Linux only). The baseline is the
peak after the interpreter, NumPy, fastprop and the data are loaded and the thread pool has
run once on other data; what fit may add on top of it is the parameters, their gradient, the
optimiser's state (none for plain SGD), one batch's workspace (z_i, δ_i for every layer
after the input and a_i for the hidden ones, per row of the batch) and the matrix multiply's
packing buffers (one per thread).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import warnings

import numpy as np

import fastprop
from fastprop import _core

MiB = 2**20


def peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def search_child(chunked: bool) -> None:
    """One search in this process; prints the peak it added, in bytes."""
    from sklearn.model_selection import KFold

    from fastprop import model_selection
    from fastprop.sklearn import GridSearchCV, MLPRegressor

    if not chunked:
        model_selection._CHUNK_BYTES = None  # every fit of the search in one chunk
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 64))
    y = X[:, :8].sum(axis=1) + 0.1 * rng.standard_normal(2000)
    grid = {"learning_rate_init": [1e-4, 3e-4, 1e-3, 3e-3], "alpha": [1e-5, 1e-4, 1e-3]}
    estimator = MLPRegressor(hidden_layer_sizes=(512, 512), max_iter=2, batch_size=200,
                             random_state=0)
    baseline = peak_rss()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # two epochs do not converge, and need not here
        search = GridSearchCV(estimator, grid, cv=KFold(5)).fit(X, y)
    print(peak_rss() - baseline, len(search.cv_results_["params"]) * 5)


def search_main() -> None:
    for chunked in (True, False):
        out = subprocess.run([sys.executable, __file__, "--search-child", str(int(chunked))],
                             check=True, capture_output=True, text=True).stdout.split()
        added, fits = int(out[0]), int(out[1])
        name = "in chunks of ~256 MiB" if chunked else "all fits at once"
        print(f"GridSearchCV, {fits} fits, {name:>22}: {added / MiB:8.1f} MiB added to the peak")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--search", action="store_true",
                        help="the peak of a grid search, in chunks and all at once")
    parser.add_argument("--search-child", type=int, choices=(0, 1), help=argparse.SUPPRESS)
    args = parser.parse_args()
    fastprop.set_num_threads(args.threads)
    if args.search_child is not None:
        return search_child(bool(args.search_child))
    if args.search:
        return search_main()

    layers, batch, steps = (1024, 1024, 1024, 1024), 512, 20  # W4
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, layers[0]), dtype=np.float32)
    Y = rng.standard_normal((batch, layers[-1]), dtype=np.float32)
    warm = fastprop.Network((8, 8), dtype="float32", seed=0)  # start the thread pool
    warm.fit(np.ones((64, 8), np.float32), np.ones((64, 8), np.float32), 1, lr=1e-3)
    del warm
    baseline = peak_rss()

    net = fastprop.Network(layers, "relu", bias=True, dtype="float32", seed=0)
    net.fit(X, Y, steps, lr=3e-6, shuffle=False)
    added = peak_rss() - baseline

    item = np.dtype(np.float32).itemsize
    P = net.n_params
    n = len(layers) - 1
    per_row = 2 * sum(layers[1:]) + sum(layers[1:n])  # z_i and δ_i for i >= 1, a_i hidden
    # packed B (KC × NC) and packed A (KC × MC) of the float kernels in use, per thread:
    # MC, KC, NC = 48, 256, 2048 in cpp/gemm_avx512.cpp, 96, 256, 2048 in cpp/gemm_avx2.cpp
    MC = 48 if _core.kernel_isa() == "avx512" else 96
    packing = args.threads * (256 * 2048 + 256 * MC) * item
    parts = {
        "parameters": P * item,
        "gradient": P * item,
        "optimiser state (sgd)": 0,
        f"workspace ({batch} rows x {per_row})": batch * per_row * item,
        f"packing buffers ({args.threads} threads)": packing,
    }
    expected = sum(parts.values())
    for name, size in parts.items():
        print(f"{name:>32}: {size / MiB:7.2f} MiB")
    print(f"{'expected':>32}: {expected / MiB:7.2f} MiB")
    print(f"{'fit added to the peak':>32}: {added / MiB:7.2f} MiB "
          f"({added / expected:.3f} of expected; baseline {baseline / MiB:.1f} MiB)")


if __name__ == "__main__":
    main()
