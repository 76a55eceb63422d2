"""The benchmark harness: its report's structure and its same-loss check, never its timings.

Only fastprop and the NumPy contender run here, at the --quick sizes: the peers are optional
and the machine is too noisy for any assertion on speed.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from fastprop import _core, bench
from fastprop.bench import contenders, runner, workloads

REPEATS = 2
EXPECTED_CASES = [("W1", "float32"), ("W1", "float64"), ("W2", "float32"), ("W2", "float64"),
                  ("W3", "float32"), ("W4", "float32"), ("W5", "float32")]


def run_main(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = bench.main(argv)
    return code, out.getvalue()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """(exit code, printed table, JSON report) of a quick run of fastprop and numpy."""
    path = tmp_path_factory.mktemp("bench") / "quick.json"
    code, printed = run_main(["--quick", "--contenders", "fastprop,numpy", "--repeats",
                              str(REPEATS), "--quiet", "--json", str(path)])
    return code, printed, json.loads(path.read_text())


def test_quick_run_exits_zero_when_every_loss_agrees(quick):
    code, _, _ = quick
    assert code == 0


def test_report_has_every_workload_in_its_dtypes(quick):
    _, _, report = quick
    assert [(r["workload"], r["dtype"]) for r in report["results"]] == EXPECTED_CASES
    assert list(report["contenders"]) == ["fastprop", "numpy"]
    assert report["meta"]["repeats"] == REPEATS
    assert report["meta"]["peak_gflops"] == runner._peak_gflops()
    assert report["sweep"] == []  # only with --plot or --sweep


def test_every_entry_has_rates_spread_gflops_and_peak_share(quick):
    _, _, report = quick
    for result in report["results"]:
        for name, entry in result["contenders"].items():
            assert entry["status"] == "ok", (result["workload"], name, entry)
            assert len(entry["seconds"]) == REPEATS
            assert entry["rate_min"] <= entry["rate_median"] <= entry["rate_max"]
            assert math.isclose(entry["gflops"],
                                entry["rate_median"] * result["flops_per_unit"] / 1e9)
            assert math.isclose(entry["peak_share"],
                                entry["gflops"] / runner._peak_gflops()[result["dtype"]])
            assert entry["warmup_s"] >= 0


def test_ratio_is_fastprops_rate_over_the_peers(quick):
    _, _, report = quick
    for result in report["results"]:
        fastprop, numpy = result["contenders"]["fastprop"], result["contenders"]["numpy"]
        assert fastprop["fastprop_ratio"] == 1.0
        assert math.isclose(numpy["fastprop_ratio"],
                            fastprop["rate_median"] / numpy["rate_median"])


def test_numpy_ends_at_fastprops_loss(quick):
    _, _, report = quick
    for result in report["results"]:
        fastprop, numpy = result["contenders"]["fastprop"], result["contenders"]["numpy"]
        assert numpy["loss_agrees"] is True, result["workload"]
        assert math.isclose(numpy["final_E"], fastprop["final_E"],
                            rel_tol=runner.LOSS_RTOL[result["dtype"]])
        if result["kind"] == "train":  # the runs trained: E moved away from its start
            assert fastprop["final_E"] != result["initial_E"]


def test_table_has_a_row_per_case_and_contender(quick):
    _, printed, _ = quick
    rows = [line.split() for line in printed.splitlines() if line[:2] in ("W1", "W2", "W3",
                                                                          "W4", "W5")]
    assert [(row[0], row[2], row[3]) for row in rows] == [
        (key, dtype, name) for key, dtype in EXPECTED_CASES for name in ("fastprop", "numpy")]
    assert all(row[-1] == ("-" if row[3] == "fastprop" else "yes") for row in rows)


def test_report_states_the_measured_peak_and_how(quick):
    _, printed, report = quick
    peak, how = report["meta"]["peak_gflops"], report["meta"]["peak"]
    assert set(peak) == {"float32", "float64"}
    assert all(math.isfinite(value) and value > 0 for value in peak.values())
    assert how["kernels"] == _core.kernel_isa() and how["threads"] >= 1
    assert how["runs"] == runner.PEAK_RUNS and how["seconds"] == runner.PEAK_SECONDS
    assert f"measured peak: {peak['float32']:.1f} GFLOP/s in float32, {peak['float64']:.1f} " \
           f"in float64" in printed


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("threads", [1, 2])
def test_fma_peak_is_a_positive_finite_rate(dtype, threads):
    gflops = _core.fma_peak(dtype, threads, 0.02)
    assert isinstance(gflops, float) and math.isfinite(gflops) and gflops > 0


@pytest.mark.parametrize("args, message", [
    (("float16", 1, 0.01), r"dtype must be 'float32' or 'float64', got 'float16'"),
    (("float32", 0, 0.01), r"threads must be in \[1, 1024\], got 0"),
    (("float32", -3, 0.01), r"threads must be in \[1, 1024\], got -3"),
    (("float32", 1, 0.0), r"seconds must be a finite number in \(0, 60\], got 0"),
    (("float64", 1, math.nan), r"seconds must be a finite number in \(0, 60\], got nan"),
    (("float64", 1, 61.0), r"seconds must be a finite number in \(0, 60\], got 61"),
])
def test_fma_peak_refuses_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        _core.fma_peak(*args)


@pytest.mark.parametrize("key", list(workloads.WORKLOADS))
def test_flops_follow_the_stated_formulas(key):
    w = workloads.WORKLOADS[key]
    macs = sum(l_in * l_out for l_in, l_out in zip(w.layers, w.layers[1:]))
    if w.kind == "train":
        assert w.flops_per_unit == 6 * w.batch * macs
        assert w.units_per_run == w.epochs * w.t // w.batch
    else:
        assert w.flops_per_unit == 2 * macs
        assert w.units_per_run == w.t


def test_standard_workloads_are_the_specified_ones():
    steps = {key: w.steps for key, w in workloads.WORKLOADS.items() if w.kind == "train"}
    assert steps == {"W1": 20_000, "W2": 512, "W3": 128, "W4": 20}
    assert workloads.WORKLOADS["W5"].t == 65_536


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_agreement_check_rejects_a_different_loss(dtype):
    rtol = runner.LOSS_RTOL[dtype]
    assert runner._agrees(2.0 * (1 + rtol / 2), 2.0, dtype)
    assert not runner._agrees(2.0 * (1 + 2 * rtol), 2.0, dtype)
    assert not runner._agrees(math.nan, 2.0, dtype)


def test_harness_reports_a_different_loss_as_disagreeing(monkeypatch):
    case = workloads.make_case(workloads.QUICK_WORKLOADS["W2"], "float64")

    def off_by_a_step(case):  # numpy's run, then one more step: not the same arithmetic
        runner = contenders._numpy_train(case)

        def run():
            runner.run()
            runner.run()
        return runner._replace(run=run)

    monkeypatch.setitem(contenders.CONTENDERS, "numpy",
                        contenders.Contender("numpy", "numpy", off_by_a_step, contenders._numpy_infer))
    result = runner.run_case(case, ["fastprop", "numpy"], 1, lambda message: None)
    assert result["contenders"]["numpy"]["loss_agrees"] is False


def test_missing_peer_is_skipped_with_the_import_error(monkeypatch):
    def needs_a_missing_module(case):
        contenders._need("fastprop_no_such_module")

    monkeypatch.setitem(contenders.CONTENDERS, "ghost",
                        contenders.Contender("ghost", "ghost", needs_a_missing_module, None))
    case = workloads.make_case(workloads.QUICK_WORKLOADS["W1"], "float64")
    result = runner.run_case(case, ["fastprop", "ghost"], 1, lambda message: None)
    ghost = result["contenders"]["ghost"]
    assert ghost["status"] == "skipped"
    assert "No module named 'fastprop_no_such_module'" in ghost["reason"]
    assert result["contenders"]["fastprop"]["status"] == "ok"


def test_peers_without_the_models_semantics_say_why():
    w1 = workloads.make_case(workloads.QUICK_WORKLOADS["W1"], "float64")  # no bias
    w3 = workloads.make_case(workloads.QUICK_WORKLOADS["W3"], "float32")  # relu
    assert "intercepts" in contenders._sklearn_semantics(w1)
    assert contenders._sklearn_semantics(w3) is None
    assert "bias" in contenders._fann_semantics(w1)
    assert "relu" in contenders._fann_semantics(w3)


def test_data_and_initial_weights_are_deterministic():
    first = workloads.make_case(workloads.QUICK_WORKLOADS["W3"], "float32")
    second = workloads.make_case(workloads.QUICK_WORKLOADS["W3"], "float32")
    for a, b in zip([first.X, first.Y, *first.W, *first.b],
                    [second.X, second.Y, *second.W, *second.b]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("argv", [["--workloads", "W9"], ["--contenders", "caffe"],
                                  ["--repeats", "0"], ["--threads", "0"],
                                  ["--shapes", "w=0"], ["--shapes", "b=3"]])
def test_bad_arguments_exit_with_a_usage_error(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    assert stop.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_plot_writes_a_png_with_the_sweep(tmp_path):
    pytest.importorskip("matplotlib")
    png, path = tmp_path / "bench.png", tmp_path / "bench.json"
    code, printed = run_main(["--quick", "--workloads", "W1", "--contenders", "fastprop,numpy",
                              "--repeats", "1", "--quiet", "--plot", str(png), "--json",
                              str(path)])
    assert code == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    sweep = json.loads(path.read_text())["sweep"]
    assert [r["layers"] for r in sweep] == (
        [[w] * 4 for w in workloads.QUICK_SWEEP_WIDTHS]
        + [list(w.layers) for w in workloads.QUICK_SHAPES.values()])
    assert "width sweep" in printed


def test_sweep_has_the_untuned_shapes():
    assert set(workloads.UNTUNED_WIDTHS) <= set(workloads.SWEEP_WIDTHS)
    assert all(w % 16 and w % 8 for w in workloads.UNTUNED_WIDTHS)  # an edge tile in every ISA
    assert any(w % 8 for w in workloads.QUICK_SWEEP_WIDTHS)  # the quick run takes that path
    shapes = workloads.SHAPES
    assert shapes["b=17"].batch == 17 and not shapes["b=17"].full_batch
    assert shapes["deep"].layers == (32,) * 11  # ten layers of 32
    assert shapes["b=1"].batch == 1
    assert set(workloads.QUICK_SHAPES) == set(shapes)
    for quick, table in ((False, shapes), (True, workloads.QUICK_SHAPES)):
        keys = workloads.sweep_keys(quick)
        assert keys[-len(table):] == list(table)
        assert [w.key for w in workloads.sweep_workloads(None, quick)] == keys
        assert [w.batch for w in workloads.sweep_workloads(["b=17", "b=1"], quick)] == [17, 1]


@pytest.mark.parametrize("key", ["w=0", "w=x", "37", "b=3"])
def test_sweep_refuses_unknown_keys(key):
    with pytest.raises(ValueError, match=repr(key)):
        workloads.sweep_workloads([key])


@pytest.fixture(scope="module")
def quick_sweep(tmp_path_factory):
    """(exit code, printed text, JSON report) of the quick sweep of fastprop and numpy."""
    path = tmp_path_factory.mktemp("bench") / "sweep.json"
    code, printed = run_main(["--quick", "--workloads", "", "--contenders", "fastprop,numpy",
                              "--repeats", "1", "--quiet", "--sweep", "--json", str(path)])
    return code, printed, json.loads(path.read_text())


def test_sweep_runs_and_reports_every_untuned_shape(quick_sweep):
    code, printed, report = quick_sweep
    assert code == 0
    assert report["results"] == []
    sweep = report["sweep"]
    assert [r["workload"] for r in sweep] == workloads.sweep_keys(quick=True)
    expected = workloads.sweep_workloads(None, quick=True)
    assert [(r["layers"], r["batch"]) for r in sweep] == [(list(w.layers), w.batch)
                                                          for w in expected]
    for result in sweep:
        fastprop, numpy = result["contenders"]["fastprop"], result["contenders"]["numpy"]
        assert fastprop["status"] == numpy["status"] == "ok", result["workload"]
        assert numpy["loss_agrees"] is True, result["workload"]
        assert fastprop["final_E"] != result["initial_E"]
        assert result["fastest_peer"] == "numpy"
        assert result["vs_fastest"] == numpy["fastprop_ratio"]
    summary = printed[printed.index("fastprop / the fastest peer, every shape"):]
    for result in sweep:
        label = f"{result['workload']} {result['name']}"
        line = next(line for line in summary.splitlines() if line.split()[:2] == label.split())
        assert f"{result['vs_fastest']:.2f}x  numpy" in line
        assert ("below" in line) == (result["vs_fastest"] < bench.report.SHAPE_TARGET)


def test_fastest_peer_is_the_one_with_the_highest_median():
    entries = {"fastprop": {"status": "ok", "rate_median": 6.0, "fastprop_ratio": 1.0},
               "a": {"status": "ok", "rate_median": 2.0, "fastprop_ratio": 3.0},
               "b": {"status": "ok", "rate_median": 4.0, "fastprop_ratio": 1.5},
               "c": {"status": "skipped", "reason": "missing"}}
    assert runner._fastest_peer(entries) == {"fastest_peer": "b", "vs_fastest": 1.5}
    assert runner._fastest_peer({"fastprop": entries["fastprop"], "c": entries["c"]}) == {
        "fastest_peer": None, "vs_fastest": None}


def test_shapes_option_runs_only_those(tmp_path):
    path = tmp_path / "shapes.json"
    code, _ = run_main(["--quick", "--workloads", "", "--contenders", "fastprop,numpy",
                        "--repeats", "1", "--quiet", "--shapes", "w=13,deep", "--json",
                        str(path)])
    assert code == 0
    assert [r["workload"] for r in json.loads(path.read_text())["sweep"]] == ["w=13", "deep"]


def test_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "fastprop.bench", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "--workloads" in done.stdout
