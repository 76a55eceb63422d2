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

from fastprop import bench

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
    assert report["meta"]["peak_gflops"] == bench._peak_gflops()
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
                                entry["gflops"] / bench._peak_gflops()[result["dtype"]])
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
                            rel_tol=bench.LOSS_RTOL[result["dtype"]])
        if result["kind"] == "train":  # the runs trained: E moved away from its start
            assert fastprop["final_E"] != result["initial_E"]


def test_table_has_a_row_per_case_and_contender(quick):
    _, printed, _ = quick
    rows = [line.split() for line in printed.splitlines() if line[:2] in ("W1", "W2", "W3",
                                                                          "W4", "W5")]
    assert [(row[0], row[2], row[3]) for row in rows] == [
        (key, dtype, name) for key, dtype in EXPECTED_CASES for name in ("fastprop", "numpy")]
    assert all(row[-1] == ("-" if row[3] == "fastprop" else "yes") for row in rows)


@pytest.mark.parametrize("key", list(bench.WORKLOADS))
def test_flops_follow_the_stated_formulas(key):
    w = bench.WORKLOADS[key]
    macs = sum(l_in * l_out for l_in, l_out in zip(w.layers, w.layers[1:]))
    if w.kind == "train":
        assert w.flops_per_unit == 6 * w.batch * macs
        assert w.units_per_run == w.epochs * w.t // w.batch
    else:
        assert w.flops_per_unit == 2 * macs
        assert w.units_per_run == w.t


def test_standard_workloads_are_the_specified_ones():
    steps = {key: w.steps for key, w in bench.WORKLOADS.items() if w.kind == "train"}
    assert steps == {"W1": 20_000, "W2": 512, "W3": 128, "W4": 20}
    assert bench.WORKLOADS["W5"].t == 65_536


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_agreement_check_rejects_a_different_loss(dtype):
    rtol = bench.LOSS_RTOL[dtype]
    assert bench._agrees(2.0 * (1 + rtol / 2), 2.0, dtype)
    assert not bench._agrees(2.0 * (1 + 2 * rtol), 2.0, dtype)
    assert not bench._agrees(math.nan, 2.0, dtype)


def test_harness_reports_a_different_loss_as_disagreeing(monkeypatch):
    case = bench.make_case(bench.QUICK_WORKLOADS["W2"], "float64")

    def off_by_a_step(case):  # numpy's run, then one more step: not the same arithmetic
        runner = bench._numpy_train(case)

        def run():
            runner.run()
            runner.run()
        return runner._replace(run=run)

    monkeypatch.setitem(bench.CONTENDERS, "numpy",
                        bench.Contender("numpy", "numpy", off_by_a_step, bench._numpy_infer))
    result = bench.run_case(case, ["fastprop", "numpy"], 1, lambda message: None)
    assert result["contenders"]["numpy"]["loss_agrees"] is False


def test_missing_peer_is_skipped_with_the_import_error(monkeypatch):
    def needs_a_missing_module(case):
        bench._need("fastprop_no_such_module")

    monkeypatch.setitem(bench.CONTENDERS, "ghost",
                        bench.Contender("ghost", "ghost", needs_a_missing_module, None))
    case = bench.make_case(bench.QUICK_WORKLOADS["W1"], "float64")
    result = bench.run_case(case, ["fastprop", "ghost"], 1, lambda message: None)
    ghost = result["contenders"]["ghost"]
    assert ghost["status"] == "skipped"
    assert "No module named 'fastprop_no_such_module'" in ghost["reason"]
    assert result["contenders"]["fastprop"]["status"] == "ok"


def test_peers_without_the_models_semantics_say_why():
    w1 = bench.make_case(bench.QUICK_WORKLOADS["W1"], "float64")  # no bias
    w3 = bench.make_case(bench.QUICK_WORKLOADS["W3"], "float32")  # relu
    assert "intercepts" in bench._sklearn_semantics(w1)
    assert bench._sklearn_semantics(w3) is None
    assert "bias" in bench._fann_semantics(w1)
    assert "relu" in bench._fann_semantics(w3)


def test_data_and_initial_weights_are_deterministic():
    first = bench.make_case(bench.QUICK_WORKLOADS["W3"], "float32")
    second = bench.make_case(bench.QUICK_WORKLOADS["W3"], "float32")
    for a, b in zip([first.X, first.Y, *first.W, *first.b],
                    [second.X, second.Y, *second.W, *second.b]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("argv", [["--workloads", "W9"], ["--contenders", "caffe"],
                                  ["--repeats", "0"], ["--threads", "0"]])
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
    assert [r["layers"] for r in sweep] == [[w] * 4 for w in bench.QUICK_SWEEP_WIDTHS]
    assert "width sweep" in printed


def test_runs_as_a_module():
    done = subprocess.run([sys.executable, "-m", "fastprop.bench", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0
    assert "--workloads" in done.stdout
