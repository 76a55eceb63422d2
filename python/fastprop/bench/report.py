"""The report of ``python -m fastprop bench``: the table, the JSON, the plot.

:func:`make_report` gathers every number and how it was obtained (the machine, the
versions, the threads, the measured peak) into one dict, written as JSON with ``--json``;
:func:`format_table` and :func:`print_report` print it; :func:`plot` draws it.
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from fastprop import _core

from .contenders import CONTENDERS
from .runner import LOSS_RTOL, measure_peak

__all__ = ["make_report", "format_table", "format_fastest", "print_report", "plot"]

# fastprop's ratio to the fastest peer that issue 20 asks for on every shape of the sweep.
SHAPE_TARGET = 1.2


def _versions(names: Sequence[str]) -> dict[str, str | None]:
    versions = {}
    packages = sorted({CONTENDERS[n].package for n in names})
    for name in ("numpy", *packages, *(["jaxlib"] if "jax" in packages else [])):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _machine() -> dict[str, Any]:
    """The CPU's name and vector flags (from /proc/cpuinfo where there is one), cores, Python."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor()
    flags = [f for f in fields.get("flags", "").split() if f in ("avx2", "fma", "avx512f")]
    return {"cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(),
            "fastprop_kernels": _core.kernel_isa(), "python": platform.python_version(),
            "platform": platform.platform()}


def _fmt_rate(rate: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a plain-text table, one row per workload, dtype and contender."""
    header = (f"{'workload':<16} {'dtype':<7} {'contender':<9} {'rate':>8} {'unit':<9} "
              f"{'min-max':>15} {'GFLOP/s':>8} {'peak':>6} {'fp/peer':>8} {'warm-up':>8} "
              f"{'final E':>12}  same E")
    lines = [header, "-" * len(header)]
    for res in results:
        label = f"{res['workload']} {res['name']}"[:16]
        for name, e in res["contenders"].items():
            if e["status"] != "ok":
                lines.append(f"{label:<16} {res['dtype']:<7} {name:<9} {e['status']}: "
                             f"{e['reason']}")
                continue
            ratio = "" if name == "fastprop" else f"{e.get('fastprop_ratio', math.nan):.2f}x"
            agrees = {True: "yes", False: "NO", None: "?"}[e.get("loss_agrees")]
            lines.append(
                f"{label:<16} {res['dtype']:<7} {name:<9} {_fmt_rate(e['rate_median']):>8} "
                f"{res['unit']:<9} {_fmt_rate(e['rate_min']) + '-' + _fmt_rate(e['rate_max']):>15}"
                f" {e['gflops']:>8.2f} {100 * e['peak_share']:>5.1f}% {ratio:>8} "
                f"{e['warmup_s']:>7.3f}s {e['final_E']:>12.6g}  "
                f"{'-' if name == 'fastprop' else agrees}")
    return "\n".join(lines)


def format_fastest(results: Sequence[dict[str, Any]]) -> str:
    """One line per result: fastprop's rate over the fastest peer's, and which peer that was."""
    lines = []
    for res in results:
        label = f"{res['workload']} {res['name']}"
        if res.get("vs_fastest") is None:
            lines.append(f"  {label:<24} no peer ran")
            continue
        mark = "" if res["vs_fastest"] >= SHAPE_TARGET else f"  (below {SHAPE_TARGET}x)"
        lines.append(f"  {label:<24} {res['vs_fastest']:6.2f}x  {res['fastest_peer']}{mark}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> None:
    """Bar chart of fastprop's ratio to each peer per workload; GFLOP/s against width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(15, 10.5))
    grid = fig.add_gridspec(2, 2)
    bars, sweep, versus = (fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1]),
                           fig.add_subplot(grid[1, :]))
    groups = [f"{r['workload']} {r['dtype']}" for r in report["results"]]
    peers = [n for n in report["contenders"] if n != "fastprop"]
    width = 0.8 / max(len(peers), 1)
    for k, peer in enumerate(peers):
        ratios = [r["contenders"].get(peer, {}).get("fastprop_ratio", np.nan)
                  for r in report["results"]]
        bars.bar(np.arange(len(groups)) + (k - (len(peers) - 1) / 2) * width, ratios, width,
                 label=peer)
    if not report["results"]:  # --workloads "": the sweep alone
        bars.text(0.5, 0.5, "W1-W5 not run", ha="center", va="center",
                  transform=bars.transAxes)
    bars.axhline(1.0, color="black", linewidth=0.8)
    bars.set_yscale("log")
    bars.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    bars.set_ylabel("fastprop rate / peer rate (>1: fastprop faster)")
    bars.set_title("fastprop against each peer (missing bar: skipped or semantics differ)")
    if report["results"]:
        bars.legend(fontsize="small")
    widths = [r for r in report["sweep"] if r["name"] == "sweep"]
    for name in report["contenders"]:
        ok = [r for r in widths if r["contenders"].get(name, {}).get("status") == "ok"]
        if not ok:
            continue
        width = np.array([r["layers"][0] for r in ok])
        gflops = np.array([[r["contenders"][name][key] * r["flops_per_unit"] / 1e9
                            for key in ("rate_median", "rate_min", "rate_max")] for r in ok])
        sweep.errorbar(width, gflops[:, 0], yerr=[gflops[:, 0] - gflops[:, 1],
                                                  gflops[:, 2] - gflops[:, 0]],
                       marker="o", capsize=3, label=name)
    for w in sorted({r["layers"][0] for r in widths if r["layers"][0] % 8}):
        sweep.axvline(w, color="grey", linewidth=0.6, linestyle=":")
    sweep.set_xscale("log", base=2)
    sweep.set_xlabel("width w of [w, w, w, w] relu, batch 256, float32 training "
                     "(dotted: not a multiple of 8)")
    sweep.set_ylabel(f"GFLOP/s (measured peak {report['meta']['peak_gflops']['float32']:.0f})")
    sweep.set_title("Training throughput against layer width (median, bars: min-max)")
    sweep.grid(True, which="both", alpha=0.3)
    sweep.legend(fontsize="small")
    shown = [r for r in report["sweep"] if r.get("vs_fastest") is not None]
    labels = [r["workload"] for r in shown]
    values = [r["vs_fastest"] for r in shown]
    untuned = [r["name"] != "sweep" or r["layers"][0] % 8 != 0 for r in shown]
    versus.bar(np.arange(len(shown)), values, 0.7,
               color=["tab:orange" if u else "tab:blue" for u in untuned])
    for k, r in enumerate(shown):
        versus.annotate(f"{r['vs_fastest']:.2f}\n{r['fastest_peer']}", (k, r["vs_fastest"]),
                        ha="center", va="bottom", fontsize="x-small")
    versus.axhline(1.0, color="black", linewidth=0.8)
    versus.axhline(SHAPE_TARGET, color="red", linewidth=0.8, linestyle="--",
                   label=f"target {SHAPE_TARGET}x")
    versus.set_xticks(np.arange(len(shown)), labels, rotation=30, ha="right")
    versus.set_ylabel("fastprop rate / fastest peer's rate")
    versus.set_title("Every shape of the sweep against its fastest peer (orange: shapes no "
                     "kernel was tuned for: odd widths, batch 17, [32]x11, batch 1)")
    versus.legend(fontsize="small")
    meta = report["meta"]
    fig.suptitle(f"fastprop {meta['versions'].get('fastprop')} on {meta['machine']['cpu']}, "
                 f"threads: {meta['threads'] or 'default'}, median of {meta['repeats']}",
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the system has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def make_report(*, command: str, started: float, load_before: list[float] | None, quick: bool,
                repeats: int, threads: int | None, thread_notes: dict[str, str],
                names: Sequence[str], results: list[dict[str, Any]],
                sweep: list[dict[str, Any]]) -> dict[str, Any]:
    """Every number of the run, and how it was obtained, as one JSON-ready dict."""
    skipped = {name: e["reason"] for r in results + sweep for name, e in r["contenders"].items()
               if e["status"] == "skipped"}
    peak = measure_peak()
    return {
        "meta": {"command": command,
                 "date": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
                 "duration_s": round(time.time() - started, 1), "quick": quick,
                 "repeats": repeats, "threads": threads,
                 "load_average_before": load_before, "load_average_after": _load(),
                 "machine": _machine(), "versions": _versions(names),
                 "peak_gflops": dict(peak["gflops"]),
                 "peak": {"method": "the core's FMA loop (fastprop._core.fma_peak), best run",
                          **{key: peak[key] for key in ("threads", "seconds", "runs",
                                                        "kernels")}},
                 "loss_rtol": LOSS_RTOL},
        "contenders": {name: {"package": CONTENDERS[name].package,
                              "threads": thread_notes.get(name, thread_notes.get("all")),
                              "skipped": skipped.get(name)} for name in names},
        "results": results,
        "sweep": sweep,
    }


def print_report(report: dict[str, Any], file: Any = None) -> None:
    """The tables, the load average and the measured peak, as the bench prints them."""
    file = sys.stdout if file is None else file
    print(format_table(report["results"]), file=file)
    if report["results"]:
        print("\nfastprop / the fastest peer:", file=file)
        print(format_fastest(report["results"]), file=file)
    if report["sweep"]:
        print("\nwidth sweep, [w, w, w, w] relu, batch 256, float32 training, then the other "
              "untuned shapes:", file=file)
        print(format_table(report["sweep"]), file=file)
        print("\nfastprop / the fastest peer, every shape of the sweep (target "
              f"{SHAPE_TARGET}x):", file=file)
        print(format_fastest(report["sweep"]), file=file)
    meta = report["meta"]
    print(f"\nload average (1, 5, 15 min) before {meta['load_average_before']}, after "
          f"{meta['load_average_after']}, on {meta['machine']['cores']} cores; fastprop's "
          f"kernels: {meta['machine']['fastprop_kernels']}", file=file)
    peak, how = meta["peak_gflops"], meta["peak"]
    print(f"measured peak: {peak['float32']:.1f} GFLOP/s in float32, {peak['float64']:.1f} in "
          f"float64 (an FMA loop in {how['kernels']} vectors on {how['threads']} threads, best "
          f"of {how['runs']} runs of {how['seconds']:g} s); the peak column is each rate's "
          f"share of it", file=file)
