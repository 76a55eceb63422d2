"""GFLOP/s of NumPy's matmul (its bundled OpenBLAS) on the shapes bench_gemm.cpp times.

Times from Python include NumPy's per-call overhead (~1 µs), which dominates the tiny shapes;
bench_gemm.cpp calls the same OpenBLAS from C++ for the like-for-like ratio. The thread count
is fixed per process through OPENBLAS_NUM_THREADS, so this script re-runs itself once per
count.

    python3 benchmarks/gemm/bench_numpy.py            # 1 and 2 threads
    python3 benchmarks/gemm/bench_numpy.py --lib      # path of the OpenBLAS library
"""

import glob
import os
import statistics
import subprocess
import sys
import time

THREAD_COUNTS = (1, 2)
NETWORKS = [([2, 8, 8, 1], 4), ([64, 64, 64, 10], 32), ([784, 256, 256, 10], 128),
            ([1024, 1024, 1024, 1024], 512)]
SQUARES = (256, 512, 1024, 2048)


def openblas_library():
    import numpy
    libs = os.path.join(os.path.dirname(os.path.dirname(numpy.__file__)), "numpy.libs")
    found = glob.glob(os.path.join(libs, "libscipy_openblas*.so"))
    return found[0] if found else ""


def rows(np, dtype):
    """(name, [(op, X, Y, K)]): op(X, Y) is the product bench_gemm.cpp times, K its inner size."""
    rng = np.random.default_rng(7)

    def rand(*shape):
        return rng.uniform(-1, 1, shape).astype(dtype)

    out = []
    for layers, t in NETWORKS:
        net = "[" + ",".join(map(str, layers)) + f"] t={t}"
        fwd, dW, da = [], [], []
        for l_in, l_out in zip(layers, layers[1:]):
            a, W, delta = rand(t, l_in), rand(l_out, l_in), rand(t, l_out)
            fwd.append((lambda x, y: x @ y.T, a, W, l_in))      # z = a W_iᵀ
            dW.append((lambda x, y: x.T @ y, delta, a, t))      # dE_dW = δᵀ a
            da.append((lambda x, y: x @ y, delta, W, l_out))    # dE_da = δ W_i
        out += [(net + " forward", fwd), (net + " dE_dW", dW), (net + " dE_da", da)]
    for n in SQUARES:
        out.append((f"square {n} (N,N)", [(lambda x, y: x @ y, rand(n, n), rand(n, n), n)]))
    return out


def median_seconds(calls, repeats=15, min_batch=2e-3):
    def once():
        for op, x, y, _ in calls:
            op(x, y)

    once()
    batch = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(batch):
            once()
        s = time.perf_counter() - t0
        if s >= min_batch:
            break
        batch = max(batch + 1, int(batch * min_batch * 1.2 / max(s, 1e-9)))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(batch):
            once()
        times.append((time.perf_counter() - t0) / batch)
    return statistics.median(times)


def child():
    import numpy as np
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    for dtype, label in ((np.float32, "f32"), (np.float64, "f64")):
        for name, calls in rows(np, dtype):
            flops = sum(2.0 * op(x, y).size * k for op, x, y, k in calls)
            s = min(median_seconds(calls) for _ in range(2))
            print(f"{name}\t{label}\t{threads}\t{flops / s * 1e-9:.1f}\t{s * 1e6:.2f}", flush=True)


def main():
    if "--lib" in sys.argv:
        print(openblas_library())
        return
    if "--child" in sys.argv:
        child()
        return
    results = {}
    for threads in THREAD_COUNTS:
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True,
                             capture_output=True, text=True).stdout
        for line in out.splitlines():
            name, label, t, gflops, us = line.split("\t")
            results.setdefault((name, label), {})[int(t)] = (float(gflops), float(us))
    head = " | ".join(f"NumPy {t}T GF/s | NumPy {t}T µs" for t in THREAD_COUNTS)
    print(f"| shape | dtype | {head} |")
    print("|---|---|" + "---|---|" * len(THREAD_COUNTS))
    for (name, label), by_threads in results.items():
        cells = " | ".join(f"{by_threads[t][0]:6.1f} | {by_threads[t][1]:9.2f}" for t in THREAD_COUNTS)
        print(f"| {name:32s} | {label} | {cells} |")


if __name__ == "__main__":
    main()
