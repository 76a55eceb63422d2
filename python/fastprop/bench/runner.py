"""Timing and judging for ``python -m fastprop bench``: the runs, the same-loss check, the peak.

Every contender is warmed up once (JIT compilation happens there; its time is reported as
``warmup_s``), then the repeats run round-robin across contenders, the start of the round
rotating, each after a pause of :data:`SETTLE_S` in which the previous contender's threads
go idle; the median, min and max rate are reported. The final E of each contender,
evaluated by one float64 NumPy forward pass on the whole data set, is compared with
fastprop's (:data:`LOSS_RTOL`). GFLOP/s are given as a share of the machine's peak, measured
here by :func:`measure_peak`.
"""

from __future__ import annotations

import functools
import gc
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

import numpy as np

import fastprop
from fastprop import _core

from .contenders import _NUMPY_SIGMA, CONTENDERS, Runner, Skip
from .workloads import DTYPES, Case, Workload, make_case, sweep_workloads

__all__ = ["LOSS_RTOL", "SETTLE_S", "run_case", "run_sweep", "configure_threads",
           "measure_peak"]

# Two contenders "end at the same loss" when their final E differ by at most this fraction of
# fastprop's. The runs are the same arithmetic in another summation order, so they drift
# apart by rounding only, amplified over the steps. Largest drift seen in the full run of
# benchmarks/results/: float64 9e-14 (2e-8 for FANN, which clips σ'), float32 4e-6 on W1
# and 3e-5 in the width sweep; the bounds leave room for other kernels' summation orders.
LOSS_RTOL = {"float64": 1e-6, "float32": 1e-2}

# The machine's peak is measured, not assumed: PEAK_RUNS runs of PEAK_SECONDS each of the
# core's FMA loop (_core.fma_peak: independent chains of fused multiply-adds in the vectors
# of the kernels fastprop runs here) on every CPU this process may use, the best run kept
# (other work on the machine only ever lowers a run). Shares of it are of the whole machine,
# whatever --threads is.
PEAK_SECONDS = 0.2
PEAK_RUNS = 3


def _cpus() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@functools.cache
def measure_peak() -> dict[str, Any]:
    """The machine's peak GFLOP/s per dtype and how it was measured; once per process.

    Returns ``{"gflops": {"float32": ..., "float64": ...}, "threads", "seconds", "runs",
    "kernels"}``.
    """
    threads = min(_cpus(), 1024)
    gflops = {dtype: max(_core.fma_peak(dtype, threads, PEAK_SECONDS) for _ in range(PEAK_RUNS))
              for dtype in DTYPES}
    return {"gflops": gflops, "threads": threads, "seconds": PEAK_SECONDS, "runs": PEAK_RUNS,
            "kernels": _core.kernel_isa()}


def _peak_gflops() -> dict[str, float]:
    """The measured peak GFLOP/s per dtype (:func:`measure_peak`)."""
    return dict(measure_peak()["gflops"])


def _sse(W: Sequence[np.ndarray], b: Sequence[np.ndarray], activation: str, X: np.ndarray,
         Y: np.ndarray) -> float:
    """E = Σ ||y − z_n||² in float64, the one judge of every contender's final parameters."""
    sigma = _NUMPY_SIGMA[activation][0]
    a = np.asarray(X, np.float64)
    for i, W_i in enumerate(W):
        z = a @ np.asarray(W_i, np.float64).T                     # z_{i+1} = a_i W_iᵀ (+ b_i)
        if b:
            z += np.asarray(b[i], np.float64)
        a = sigma(z, np.empty_like(z))                            # a_n is not used
    return float(np.sum((np.asarray(Y, np.float64) - z) ** 2))



# Seconds of rest before each timed run, so that no contender starts while the previous
# one's worker threads still busy-wait for work (OpenBLAS's spin for a while after each call,
# as do XLA's and fastprop's, briefly) and compete for the cores.
SETTLE_S = 0.2


def _time_one(runner: Runner, settle_s: float = SETTLE_S) -> float:
    runner.reset()
    gc.collect()
    time.sleep(settle_s)
    start = time.perf_counter()
    runner.run()
    return time.perf_counter() - start


def _agrees(E: float, E_fastprop: float, dtype: str) -> bool:
    """Whether a final E is fastprop's within :data:`LOSS_RTOL` (relative)."""
    return bool(math.isfinite(E) and abs(E - E_fastprop) <= LOSS_RTOL[dtype] * abs(E_fastprop))


def _final_E(case: Case, result: Any) -> float:
    if case.workload.kind == "infer":
        return float(np.sum((case.Y.astype(np.float64) - np.asarray(result, np.float64)) ** 2))
    W, b = result
    return _sse(W, b, case.workload.activation, case.X, case.Y)


def run_case(case: Case, names: Sequence[str], repeats: int,
             log: Callable[[str], None], settle_s: float = SETTLE_S) -> dict[str, Any]:
    """Warm up and time every contender on one case, repeats round-robin; one result dict."""
    w = case.workload
    initial_E = (_sse(case.W, case.b, w.activation, case.X, case.Y) if w.kind == "train"
                 else None)
    entries: dict[str, dict[str, Any]] = {}
    runners: dict[str, Runner] = {}
    for name in names:
        contender = CONTENDERS[name]
        reason = contender.semantics(case)
        if reason is not None:
            entries[name] = {"status": "semantics differ", "reason": reason}
            continue
        try:
            runner = (contender.train if w.kind == "train" else contender.infer)(case)
            log(f"  {name}: warm-up")
            entries[name] = {"status": "ok", "warmup_s": _time_one(runner, settle_s),
                             "seconds": []}
            runners[name] = runner
        except Skip as reason:
            entries[name] = {"status": "skipped", "reason": str(reason)}
        except Exception as error:  # a peer that breaks is reported, not fatal
            entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    for r in range(repeats):
        order = list(runners)
        first = r % len(order) if order else 0
        for name in order[first:] + order[:first]:  # round-robin, the first one rotating
            try:
                entries[name]["seconds"].append(_time_one(runners[name], settle_s))
            except Exception as error:
                entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
                del runners[name]
    for name, runner in runners.items():
        try:
            entries[name]["final_E"] = _final_E(case, runner.result())
        except Exception as error:
            entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    return {"workload": w.key, "name": w.name, "dtype": case.dtype, "kind": w.kind,
            "layers": list(w.layers), "activation": w.activation, "bias": w.bias,
            "samples": w.t, "batch": w.batch, "steps": w.steps if w.kind == "train" else None,
            "lr": w.lr, "unit": w.unit, "units_per_run": w.units_per_run,
            "flops_per_unit": w.flops_per_unit, "initial_E": initial_E,
            "contenders": _summarise(entries, w, case.dtype), **_fastest_peer(entries)}


def _summarise(entries: dict[str, dict[str, Any]], w: Workload, dtype: str) -> dict:
    """Rates, spread, GFLOP/s, share of the peak, fastprop's ratio and the loss check."""
    for entry in entries.values():
        if entry["status"] != "ok":
            continue
        rates = sorted(w.units_per_run / s for s in entry["seconds"])
        entry["rate_median"] = float(np.median(rates))
        entry["rate_min"], entry["rate_max"] = rates[0], rates[-1]
        entry["gflops"] = entry["rate_median"] * w.flops_per_unit / 1e9
        entry["peak_share"] = entry["gflops"] / _peak_gflops()[dtype]
    reference = entries.get("fastprop", {})
    for entry in entries.values():
        if entry["status"] == "ok" and reference.get("status") == "ok":
            entry["fastprop_ratio"] = reference["rate_median"] / entry["rate_median"]
            entry["loss_agrees"] = _agrees(entry["final_E"], reference["final_E"], dtype)
    return entries


def _fastest_peer(entries: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The peer with the highest median rate and fastprop's ratio to it (None: no peer ran)."""
    peers = {name: e for name, e in entries.items()
             if name != "fastprop" and e["status"] == "ok"}
    if not peers or entries.get("fastprop", {}).get("status") != "ok":
        return {"fastest_peer": None, "vs_fastest": None}
    fastest = max(peers, key=lambda name: peers[name]["rate_median"])
    return {"fastest_peer": fastest, "vs_fastest": peers[fastest]["fastprop_ratio"]}


def run_sweep(names: Sequence[str], repeats: int, quick: bool,
              log: Callable[[str], None], keys: Sequence[str] | None = None
              ) -> list[dict[str, Any]]:
    """Training [w, w, w, w] relu networks, batch 256, float32, for every width, then the
    other untuned shapes (:data:`~fastprop.bench.workloads.SHAPES`); ``keys`` picks some
    (:func:`~fastprop.bench.workloads.sweep_keys`)."""
    results = []
    for w in sweep_workloads(None if keys is None else list(keys), quick):
        log(f"sweep: {w.key} {w.name}")
        results.append(run_case(make_case(w, "float32"), names, repeats, log,
                                0.0 if quick else SETTLE_S))
    return results


def configure_threads(threads: int | None, names: Sequence[str]) -> dict[str, Any]:
    """Set every contender's thread count to ``threads`` (None: each library's default).

    Runs before any peer is imported: XLA reads XLA_FLAGS and OpenMP reads OMP_WAIT_POLICY
    once, when they load; fastprop's core reads FASTPROP_NUM_THREADS at its first parallel
    computation. Returns ``{"notes": {contender: what was done}, "blas_limit": ...}``, the
    latter a threadpoolctl limit to restore at the end, or None.
    """
    notes: dict[str, str] = {}
    blas_limit: Any = None
    if "torch" in names and "torch" not in sys.modules:
        # PyTorch's OpenMP threads busy-wait at every barrier by default; on a shared machine
        # with more runnable threads than cores that made its steps 10-30x slower here.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        notes["torch"] = f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    if threads is None:
        return {"notes": {**notes, "all": "each library's default thread count"},
                "blas_limit": None}
    setter = getattr(fastprop, "set_num_threads", None)
    if setter is not None:
        setter(threads)
        notes["fastprop"] = f"fastprop.set_num_threads({threads})"
    else:
        os.environ["FASTPROP_NUM_THREADS"] = str(threads)
        notes["fastprop"] = f"FASTPROP_NUM_THREADS={threads}"
    try:
        threadpoolctl = import_module("threadpoolctl")
        blas_limit = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
        notes["numpy"] = notes["sklearn"] = f"threadpoolctl: BLAS limited to {threads}"
    except ImportError:
        notes["numpy"] = notes["sklearn"] = "threadpoolctl missing: BLAS threads not limited"
    if "torch" in names:
        try:
            import_module("torch").set_num_threads(threads)
            notes["torch"] = ", ".join(filter(None, (notes.get("torch"),
                                                     f"torch.set_num_threads({threads})")))
        except ImportError:
            pass
    if "jax" in sys.modules:
        jax_note = "jax was imported before: XLA's threads not set"
    elif threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                                   "eigen=false intra_op_parallelism_threads=1").strip()
        jax_note = "XLA_FLAGS: Eigen pool off, 1 intra-op thread"
    else:
        jax_note = "XLA uses all cores (no flag sets another count)"
    notes["jax-step"] = notes["jax-scan"] = jax_note
    notes["fann"] = "single-threaded C"
    return {"notes": notes, "blas_limit": blas_limit}

