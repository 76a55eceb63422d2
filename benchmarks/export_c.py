"""The size of the C that Network.to_c writes, and its speed against Network.forward.

    python benchmarks/export_c.py [--repeats 7] [--cc cc]
    python benchmarks/export_c.py --wide [--cc cc]

For each network: the header's size (bytes and lines), the time `cc -std=c99 -O2` takes to
compile it (with the timing driver), the largest deviation of its outputs from forward's, and
the time per sample of
  - one sample:     <name>_forward(x, z) in a C loop | net.forward(x) from Python, x of shape (l_0,)
  - 1024 samples:   <name>_forward_batch             | net.forward(X), X of shape (1024, l_0)
each the median of --repeats runs (every run long enough to take about 0.2 s). The C timing
driver reads the clock (clock_gettime, CLOCK_MONOTONIC) around a loop of calls whose inputs
change every call and whose outputs are summed, so that nothing is hoisted out of the loop.
Prints the CPU (from /proc/cpuinfo) and the compiler's version first.

--wide measures instead how far the C code's float32 sums drift on very wide layers: one-layer
float32 networks [l_0, 2] for l_0 = 65,536 and 262,144 on 4 standard normal rows, the largest
|C − forward| and |forward − float64| over the largest |forward| (each output of the C code is
one running sum over l_0 terms).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

import fastprop

NETWORKS = [([4, 16, 3], "tanh", "cross_entropy"),
            ([64, 64, 64, 10], "sigmoid", "cross_entropy"),
            ([784, 256, 256, 10], "relu", "cross_entropy")]
BATCH = 1024
MIN_TIME = 0.2  # seconds per timed run

DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* argv: repeats, rows per call (1: model_forward, else model_forward_batch). Prints the
   median seconds per sample and a checksum. With repeats 0, reads the rows from stdin and
   writes their outputs (binary) instead. */
int main(int argc, char **argv)
{
    int repeats = argc == 3 ? atoi(argv[1]) : 0, r;
    unsigned long rows = argc == 3 ? strtoul(argv[2], 0, 10) : 0, calls, c, j;
    REAL *X = (REAL *)malloc(sizeof(REAL) * rows * L0 + 1);
    REAL *Z = (REAL *)malloc(sizeof(REAL) * rows * LN + 1);
    double *seconds = (double *)malloc(sizeof(double) * (size_t)repeats + 1), sink = 0;
    if (repeats == 0) {
        if (fread(X, sizeof(REAL), rows * L0, stdin) != rows * L0)
            return 1;
        model_forward_batch(X, Z, rows);
        fwrite(Z, sizeof(REAL), rows * LN, stdout);
        return 0;
    }
    for (j = 0; j < rows * L0; ++j)
        X[j] = (REAL)((double)(j % 97) / 97.0 - 0.5);
    /* calibrate: calls per run so that a run takes about MIN_TIME */
    for (calls = 1;; calls *= 2) {
        double start = now();
        for (c = 0; c < calls; ++c) {
            X[c % (rows * L0)] += (REAL)1e-3;
            if (rows == 1) model_forward(X, Z); else model_forward_batch(X, Z, rows);
            sink += Z[0];
        }
        if (now() - start > MIN_TIME / 4) break;
    }
    calls *= 4;
    for (r = 0; r < repeats; ++r) {
        double start = now();
        for (c = 0; c < calls; ++c) {
            X[c % (rows * L0)] += (REAL)1e-3;
            if (rows == 1) model_forward(X, Z); else model_forward_batch(X, Z, rows);
            sink += Z[0];
        }
        seconds[r] = (now() - start) / (double)(calls * rows);
    }
    for (r = 1; r < repeats; ++r) { /* insertion sort, for the median */
        double s = seconds[r];
        int k = r - 1;
        while (k >= 0 && seconds[k] > s) { seconds[k + 1] = seconds[k]; --k; }
        seconds[k + 1] = s;
    }
    printf("%.6e %g\n", seconds[repeats / 2], sink);
    free(X); free(Z); free(seconds);
    return 0;
}
""".replace("MIN_TIME", repr(MIN_TIME))


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def python_seconds(fn, repeats: int) -> float:
    """Median seconds per call of fn over `repeats` runs of about MIN_TIME each."""
    calls = 1
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - start > MIN_TIME / 4:
            break
        calls *= 2
    calls *= 4
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - start) / calls)
    return float(np.median(runs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--cc", default="cc")
    parser.add_argument("--wide", action="store_true",
                        help="the drift of float32 sums on very wide layers instead")
    args = parser.parse_args(argv)
    if args.wide:
        return wide(args.cc)
    version = subprocess.run([args.cc, "--version"], capture_output=True, text=True,
                             check=True).stdout.splitlines()[0]
    print(f"fastprop {fastprop.__version__}, {cpu_name()}, {os.cpu_count()} CPUs, "
          f"fastprop threads {fastprop.get_num_threads()}")
    print(f"C: {version}, -std=c99 -O2; Python {platform.python_version()}")
    print()
    header = (f"{'network':<28} {'dtype':<8} {'C size':>12} {'lines':>7} {'compile':>8}   "
              f"{'one sample: C':>14} {'forward':>9} {'ratio':>6}   "
              f"{f'{BATCH} rows: C':>14} {'forward':>9} {'ratio':>6}   {'deviation':>9}")
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        for layers, activation, loss in NETWORKS:
            for dtype in ("float32", "float64"):
                net = fastprop.Network(layers, activation, bias=True, dtype=dtype, seed=0,
                                       loss=loss)
                source = net.to_c(os.path.join(tmp, "model.h"))
                with open(os.path.join(tmp, "driver.c"), "w") as f:
                    f.write(DRIVER)
                real = "float" if dtype == "float32" else "double"
                start = time.perf_counter()
                subprocess.run([args.cc, "-std=c99", "-O2", f"-DREAL={real}",
                                f"-DL0={layers[0]}", f"-DLN={layers[-1]}", "-o",
                                os.path.join(tmp, "driver"), os.path.join(tmp, "driver.c"),
                                "-lm"], check=True)
                compile_seconds = time.perf_counter() - start
                c_times = []
                for rows in (1, BATCH):
                    out = subprocess.run([os.path.join(tmp, "driver"), str(args.repeats),
                                          str(rows)], capture_output=True, text=True,
                                         check=True).stdout
                    c_times.append(float(out.split()[0]))
                x = rng.standard_normal(layers[0]).astype(dtype)
                X = rng.standard_normal((BATCH, layers[0])).astype(dtype)
                out = subprocess.run([os.path.join(tmp, "driver"), "0", str(BATCH)],
                                     input=X.tobytes(), capture_output=True, check=True).stdout
                Z, expected = np.frombuffer(out, dtype=dtype), net.forward(X).reshape(-1)
                deviation = np.max(np.abs(Z - expected)) / np.max(np.abs(expected))
                one = python_seconds(lambda: net.forward(x), args.repeats)  # noqa: B023
                many = python_seconds(lambda: net.forward(X), args.repeats) / BATCH  # noqa: B023
                name = f"{layers} {activation}".replace(" ", "")
                size, lines = len(source.encode()), source.count("\n")
                print(f"{name:<28} {dtype:<8} {size:>10,} B {lines:>7,}"
                      f" {compile_seconds:>7.2f}s   {c_times[0] * 1e6:>11.3f} us "
                      f"{one * 1e6:>6.2f} us {one / c_times[0]:>5.1f}x   "
                      f"{c_times[1] * 1e6:>11.3f} us {many * 1e6:>6.3f} us "
                      f"{many / c_times[1]:>5.2f}x   {deviation:>9.1e}")
    print()
    print("ratio: the time of net.forward over that of the C code (above 1: C is faster).")
    print(f"deviation: max |C - forward| / max |forward| over the {BATCH} rows (standard "
          f"normal inputs, fastprop's initialisation).")
    return 0


def wide(cc: str) -> int:
    """--wide: see the module doc."""
    rng = np.random.default_rng(0)
    print(f"{'l_0':>9} {'|C - forward|':>14} {'|forward - float64|':>20}   (of max |forward|)")
    with tempfile.TemporaryDirectory() as tmp:
        for l_0 in (65536, 262144):
            net = fastprop.Network([l_0, 2], dtype="float32", seed=0)
            X = rng.standard_normal((4, l_0)).astype(np.float32)
            net.to_c(os.path.join(tmp, "model.h"))
            with open(os.path.join(tmp, "driver.c"), "w") as f:
                f.write(DRIVER)
            subprocess.run([cc, "-std=c99", "-O2", "-DREAL=float", f"-DL0={l_0}", "-DLN=2",
                            "-o", os.path.join(tmp, "driver"), os.path.join(tmp, "driver.c"),
                            "-lm"], check=True)
            out = subprocess.run([os.path.join(tmp, "driver"), "0", str(len(X))],
                                 input=X.tobytes(), capture_output=True, check=True).stdout
            Z = np.frombuffer(out, dtype=np.float32).reshape(len(X), 2)
            F = net.forward(X)
            exact = X.astype(np.float64) @ net.weights[0].astype(np.float64).T + net.biases[0]
            scale = np.max(np.abs(F))
            print(f"{l_0:>9,} {np.max(np.abs(Z - F)) / scale:>14.1e} "
                  f"{np.max(np.abs(F - exact)) / scale:>20.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
