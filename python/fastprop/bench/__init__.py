"""``python -m fastprop bench``: fastprop against NumPy, PyTorch, JAX, scikit-learn and FANN.

Every contender trains the same model on the same data from the same initial weights:

    z_{i+1} = W_i a_i + b_i,   a_i = σ(z_i) for 1 ≤ i ≤ n−1,   a_0 = x,   output z_n,
    E = Σ_samples ||y − z_n||²  (a sum: no ½, no mean),
    W_i −= lr·∂E/∂W_i, b_i −= lr·∂E/∂b_i  after every (mini)batch, in order, no shuffling.

The initial W_i and b_i are fastprop's (``Network(..., seed=0)``), copied into every peer.
Each run starts again from them, so every repeat does the same arithmetic and every
contender should end at the same E: the final E of each, evaluated by one float64 NumPy
forward pass on the whole data set, is compared with fastprop's (see
:data:`~fastprop.bench.runner.LOSS_RTOL`).

Timing: every contender is warmed up once (JIT compilation happens there; its time is
reported as ``warmup_s``), then the repeats run round-robin across contenders, the start of
the round rotating, each after a pause of :data:`~fastprop.bench.runner.SETTLE_S` in which
the previous contender's threads go idle, and the median, min and max rate are reported.
Rates are steps/s for training and samples/s for inference; GFLOP/s use
6·batch·Σ l_i·l_{i+1} per training step and 2·Σ l_i·l_{i+1} per inference sample, and the
share of the peak is of the peak measured on this machine before the workloads run: the
core's FMA loop (``fastprop._core.fma_peak``) on every CPU, in the vectors of the kernels
fastprop uses here (:func:`~fastprop.bench.runner.measure_peak`).

The parts: :mod:`~fastprop.bench.workloads` (the networks and their data),
:mod:`~fastprop.bench.contenders` (fastprop and each peer), :mod:`~fastprop.bench.runner`
(timing, the same-loss check, threads, the peak) and :mod:`~fastprop.bench.report` (the
table, the JSON, the plot); :func:`main` is the command.

The workloads, the contenders and how to run this are described in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from .contenders import CONTENDERS, Contender
from .report import _load, make_report, plot, print_report
from .runner import LOSS_RTOL, SETTLE_S, configure_threads, measure_peak, run_case, run_sweep
from .workloads import DTYPES, QUICK_WORKLOADS, WORKLOADS, Workload, make_case, sweep_keys

__all__ = ["WORKLOADS", "QUICK_WORKLOADS", "CONTENDERS", "Workload", "Contender", "main"]


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fastprop bench",
        description="Time fastprop against NumPy, PyTorch, JAX, scikit-learn and FANN on the "
                    "same workloads with the same semantics (see benchmarks/README.md).")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated keys, default all: " + ", ".join(
                            f"{w.key} {w.name}" for w in WORKLOADS.values()))
    parser.add_argument("--dtype", choices=("auto", *DTYPES), default="auto",
                        help="run every workload in this dtype (default: W1, W2 in both, "
                             "the others in float32)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated, default all: " + ", ".join(CONTENDERS))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of every contender (default: each library's own)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per contender, median reported (default 5)")
    parser.add_argument("--json", metavar="PATH", help="write every number to this JSON file")
    parser.add_argument("--plot", metavar="PATH",
                        help="write a PNG (needs matplotlib); runs the width sweep too")
    parser.add_argument("--sweep", action="store_true",
                        help="run the width sweep and the untuned shapes even without --plot")
    parser.add_argument("--shapes", metavar="KEYS",
                        help="comma-separated keys of the sweep to run, e.g. w=37,b=17 (implies "
                             "--sweep; default all: " + ", ".join(sweep_keys()) + ")")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, for tests: the numbers mean nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    table = QUICK_WORKLOADS if args.quick else WORKLOADS
    args.workloads = [k.strip().upper() for k in args.workloads.split(",") if k.strip()]
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [k for k in args.workloads if k not in table]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(table)}")
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    if "fastprop" not in args.contenders:
        args.contenders.insert(0, "fastprop")  # the reference of every ratio and loss
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    args.table = table
    args.shape_keys = None
    if args.shapes is not None:
        args.shape_keys = [k.strip() for k in args.shapes.split(",") if k.strip()]
        known = sweep_keys(args.quick)
        unknown = [k for k in args.shape_keys
                   if k not in known and not (k[:2] == "w=" and k[2:].isdigit() and int(k[2:]) > 0)]
        if unknown:
            parser.error(f"unknown shapes {unknown}; choose from {', '.join(known)} or any "
                         f"w=<width>")
        args.sweep = True
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON and the PNG if asked.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after ``bench`` (None: ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        0, or 1 when a contender's final E disagrees with fastprop's.
    """
    args = _parse(argv)
    log = (lambda message: None) if args.quiet else (
        lambda message: print(message, file=sys.stderr, flush=True))
    threads = configure_threads(args.threads, args.contenders)
    started, load_before = time.time(), _load()
    log("the machine's peak: an FMA loop on every CPU")
    measure_peak()  # before the workloads, on an idle machine; kept for the whole run
    try:
        results = []
        for key in args.workloads:
            w = args.table[key]
            for dtype in (w.dtypes if args.dtype == "auto" else (args.dtype,)):
                log(f"{key} {w.name} {dtype}")
                results.append(run_case(make_case(w, dtype), args.contenders, args.repeats, log,
                                        0.0 if args.quick else SETTLE_S))
        sweep = (run_sweep(args.contenders, args.repeats, args.quick, log, args.shape_keys)
                 if args.plot or args.sweep else [])
    finally:
        if threads["blas_limit"] is not None:
            threads["blas_limit"].restore_original_limits()
    report = make_report(
        command=" ".join(["python -m fastprop bench", *(sys.argv[1:] if argv is None else argv)]),
        started=started, load_before=load_before, quick=args.quick, repeats=args.repeats,
        threads=args.threads, thread_notes=threads["notes"], names=args.contenders,
        results=results, sweep=sweep)
    print_report(report)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
            file.write("\n")
    if args.plot:
        try:
            plot(report, args.plot)
        except ImportError as error:
            print(f"no plot: {error}", file=sys.stderr)
    disagree = [f"{r['workload']} {r['dtype']} {name}" for r in results + sweep
                for name, e in r["contenders"].items() if e.get("loss_agrees") is False]
    if disagree:
        print(f"\nfinal E differs from fastprop's by more than {LOSS_RTOL}: "
              f"{', '.join(disagree)}")
    return 1 if disagree else 0
