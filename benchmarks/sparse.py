"""Sparse input: fastprop.sklearn.MLPClassifier against scikit-learn's on a TF-IDF-shaped X.

    python benchmarks/sparse.py [--threads 2] [--rows 20000 --cols 50000 --nnz 1000000]

X is a CSR matrix of 20,000 rows and 50,000 columns with 1M non-zeros (columns drawn from a
Zipf-like law, as words are; each row's tf·idf scaled to unit length), y one of 10 classes
that depends on X; both estimators fit it with hidden_layer_sizes=(100,), solver="adam",
batch_size=200, 10 epochs, float64, the same for both (a dense X would be 8 GB). Each fit runs
in a fresh child process, which reports its wall time and its peak resident memory (VmHWM),
both as a whole and above the peak after the data was made, and the CPU time of its fit
(user + system, all threads: less disturbed than wall time on a loaded machine); the ratios
compare the two contenders of the same run. Linux only (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
import warnings

import numpy as np

MiB = 2**20


def peak_rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def tfidf_like(rows: int, cols: int, nnz: int, classes: int, seed: int = 0):
    """A CSR matrix shaped like TF-IDF features of short texts, and labels that depend on it."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = nnz // rows
    rank = np.arange(1, cols + 1, dtype=np.float64)
    p = 1.0 / (rank + 10.0) ** 1.05
    p /= p.sum()
    columns = rng.choice(cols, size=rows * per_row, p=p).astype(np.int32)
    counts = rng.geometric(0.6, size=rows * per_row).astype(np.float64)
    indptr = np.arange(0, rows * per_row + 1, per_row, dtype=np.int32)
    X = sp.csr_matrix((counts, columns, indptr), shape=(rows, cols))
    X.sum_duplicates()
    df = np.bincount(X.indices, minlength=cols)
    idf = np.log((1 + rows) / (1 + df)) + 1
    X.data *= idf[X.indices]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X.data /= np.repeat(norms, np.diff(X.indptr))
    R = rng.standard_normal((cols, classes))
    y = np.asarray(X @ R).argmax(axis=1)
    return X, y


def child(contender: str, args: argparse.Namespace) -> None:
    X, y = tfidf_like(args.rows, args.cols, args.nnz, args.classes)
    if contender == "fastprop":
        import fastprop
        from fastprop.sklearn import MLPClassifier

        fastprop.set_num_threads(args.threads)
    else:
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    baseline = peak_rss()
    clf = MLPClassifier(hidden_layer_sizes=(100,), solver="adam", batch_size=200,
                        max_iter=args.epochs, random_state=0, shuffle=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: 10 epochs on purpose
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu_seconds = (after.ru_utime + after.ru_stime) - (cpu.ru_utime + cpu.ru_stime)
    peak = peak_rss()
    print(json.dumps({"contender": contender, "seconds": seconds, "cpu_seconds": cpu_seconds,
                      "peak": peak,
                      "above_data": peak - baseline, "data": baseline,
                      "X_bytes": X.data.nbytes + X.indices.nbytes + X.indptr.nbytes,
                      "loss": clf.loss_curve_[-1], "train_accuracy": clf.score(X, y),
                      "epochs": clf.n_iter_}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--cols", type=int, default=50_000)
    parser.add_argument("--nnz", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--child", choices=("fastprop", "sklearn"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    results = {}
    for contender in ("fastprop", "sklearn"):
        command = [sys.executable, __file__, "--child", contender, "--threads", str(args.threads),
                   "--rows", str(args.rows), "--cols", str(args.cols), "--nnz", str(args.nnz),
                   "--classes", str(args.classes), "--epochs", str(args.epochs)]
        out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
        results[contender] = json.loads(out.strip().splitlines()[-1])
    f, s = results["fastprop"], results["sklearn"]
    print(f"X: {args.rows} x {args.cols} CSR, {args.nnz} non-zeros requested "
          f"({f['X_bytes'] / MiB:.1f} MiB as CSR; {args.rows * args.cols * 8 / 2**30:.1f} GiB "
          f"dense), {args.classes} classes; hidden (100,), adam, batch 200, {args.epochs} "
          f"epochs, float64, {args.threads} threads")
    print(f"machine: {cpu_name()}, {os.cpu_count()} CPUs, "
          f"load average before {LOAD[0]:.2f} {LOAD[1]:.2f} {LOAD[2]:.2f}, after "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'':10} {'seconds':>9} {'CPU s':>7} {'peak MiB':>9} {'above data':>11} "
          f"{'final loss':>11} {'train acc':>9}")
    for name, r in results.items():
        print(f"{name:10} {r['seconds']:9.2f} {r['cpu_seconds']:7.2f} {r['peak'] / MiB:9.1f} "
              f"{r['above_data'] / MiB:11.1f} {r['loss']:11.5f} {r['train_accuracy']:9.4f}")
    print(f"scikit-learn / fastprop: time {s['seconds'] / f['seconds']:.2f}x (CPU time "
          f"{s['cpu_seconds'] / f['cpu_seconds']:.2f}x), peak memory "
          f"{s['peak'] / f['peak']:.2f}x, memory above the data "
          f"{s['above_data'] / f['above_data']:.2f}x")


LOAD = os.getloadavg()

if __name__ == "__main__":
    main()
