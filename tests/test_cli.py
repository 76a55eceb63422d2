"""The command line, run in-process through fastprop.cli.main (and once as a subprocess)."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import time
import tracemalloc
import types
import zipfile
from io import BytesIO

import numpy as np
import pytest

from fastprop import io
from fastprop.cli import main, predict

SUBCOMMANDS = ("demo", "demo-synthetic", "train", "predict")
# Time bounds stretch under .ci/sanitize, where every allocation goes through ASan.
SLOW = 4 if os.environ.get("FASTPROP_SANITIZED") else 1


def write_csv(path, header, rows):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return str(path)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


@pytest.fixture
def blobs_csv(tmp_path):
    """Three well-separated classes with text labels, the label in the middle column."""
    rng = np.random.default_rng(0)
    centres = {"red": (-3, 0), "green": (3, 0), "blue": (0, 4)}
    rows = [[f"{cx + rng.normal(0, 0.5):.4f}", label, f"{cy + rng.normal(0, 0.5):.4f}"]
            for label, (cx, cy) in centres.items() for _ in range(40)]
    return write_csv(tmp_path / "blobs.csv", ["x1", "colour", "x2"], rows)


@pytest.fixture
def linear_csv(tmp_path):
    """y = 2 x1 − x2 + 5 with a little noise; the target is the last column."""
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, size=(200, 2))
    y = 2 * X[:, 0] - X[:, 1] + 5 + rng.normal(0, 0.01, 200)
    return write_csv(tmp_path / "linear.csv", ["x1", "x2", "y"], np.column_stack([X, y]).tolist())


def train(data, tmp_path, *options):
    model = str(tmp_path / "model.npz")
    code = main(["train", data, "--quiet", "--seed", "0", "-o", model, *options])
    assert code == 0
    return model


# ---------------------------------------------------------------------- train and predict
def test_classification_from_csv_with_text_labels(blobs_csv, tmp_path, capsys):
    model = train(blobs_csv, tmp_path, "--target", "colour", "--layers", "8", "--epochs", "60")
    out = capsys.readouterr().out
    assert "3 classes: blue, green, red" in out
    assert "test: accuracy 1.000" in out
    net, extra = io.load(model, return_extra=True)
    assert net.layers == (2, 8, 3) and net.loss_name == "cross_entropy"
    assert extra["classes"].tolist() == ["blue", "green", "red"]
    assert extra["feature_names"].tolist() == ["x1", "x2"]

    predictions = tmp_path / "predictions.csv"
    assert main(["predict", model, blobs_csv, "-o", str(predictions)]) == 0
    header, rows = read_csv(predictions)
    _, data = read_csv(blobs_csv)
    assert header == ["colour"]
    assert [row[0] for row in rows] == [row[1] for row in data]
    assert "accuracy 1.000 (120 rows)" in capsys.readouterr().err


def test_regression_from_csv(linear_csv, tmp_path, capsys):
    model = train(linear_csv, tmp_path, "--layers", "", "--epochs", "200", "--lr", "0.05",
                  "--optimizer", "adam")
    assert "regression" in capsys.readouterr().out
    net, extra = io.load(model, return_extra=True)
    assert net.layers == (2, 1) and net.loss_name == "mse"
    assert main(["predict", model, linear_csv]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0] == "y"
    predicted = np.array(lines[1:], dtype=float)
    _, data = read_csv(linear_csv)
    actual = np.array([row[2] for row in data], dtype=float)
    assert np.max(np.abs(predicted - actual)) < 0.1  # in the target's own units
    assert re.search(r"R² (0\.99\d|1\.000)", captured.err)


def test_predict_matches_columns_by_name_and_needs_no_target(blobs_csv, tmp_path, capsys):
    model = train(blobs_csv, tmp_path, "--target", "colour", "--epochs", "30")
    header, rows = read_csv(blobs_csv)
    reordered = write_csv(tmp_path / "new.csv", ["x2", "x1"], [[r[2], r[0]] for r in rows[:5]])
    capsys.readouterr()
    assert main(["predict", model, reordered]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["colour", *["red"] * 5]
    assert captured.err == ""  # no target column, so no score


def test_binary_cross_entropy(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 3))
    labels = np.where(X[:, 0] + X[:, 1] > 0, "yes", "no")
    data = write_csv(tmp_path / "b.csv", ["a", "b", "c", "label"],
                     [[*map(str, x), label] for x, label in zip(X, labels)])
    model = train(data, tmp_path, "--loss", "binary_cross_entropy", "--epochs", "100")
    net = io.load(model)
    assert net.layers[-1] == 1 and net.loss_name == "binary_cross_entropy"
    capsys.readouterr()
    assert main(["predict", model, data]) == 0
    assert set(capsys.readouterr().out.splitlines()[1:]) == {"yes", "no"}


def test_integer_labels_with_cross_entropy_from_npy(tmp_path, capsys):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 2))
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0)  # classes 0..3
    np.save(tmp_path / "d.npy", np.column_stack([X, y]))
    model = train(str(tmp_path / "d.npy"), tmp_path, "--loss", "cross_entropy")
    net, extra = io.load(model, return_extra=True)
    assert net.layers == (2, 64, 32, 4)
    assert extra["classes"].tolist() == ["0", "1", "2", "3"]
    assert extra["feature_names"].tolist() == ["x0", "x1"]
    capsys.readouterr()
    np.save(tmp_path / "features.npy", X[:4])  # without the target column
    assert main(["predict", model, str(tmp_path / "features.npy")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "x2"


def test_multi_output_regression_from_npz(tmp_path, capsys):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 3))
    y = np.column_stack([X.sum(axis=1), X[:, 0] - X[:, 2]])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    model = train(str(tmp_path / "d.npz"), tmp_path, "--layers", "16", "--epochs", "20",
                  "--dtype", "float32", "--activation", "tanh")
    net = io.load(model)
    assert net.layers == (3, 16, 2) and net.dtype == np.float32
    capsys.readouterr()
    assert main(["predict", model, str(tmp_path / "d.npz")]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "y0,y1"
    assert len(captured.out.splitlines()) == 81


def test_options_reach_the_network(linear_csv, tmp_path):
    model = train(linear_csv, tmp_path, "--layers", "5,4", "--activation", "relu,sigmoid",
                  "--no-bias", "--optimizer", "sgd", "--lr", "0.01", "--batch-size", "0",
                  "--epochs", "3", "--test-fraction", "0", "--patience", "2")
    net = io.load(model)
    assert net.layers == (2, 5, 4, 1)
    assert net.activations == ("relu", "sigmoid")
    assert not net.bias


# ---------------------------------------------------------------------- demos and help
def test_demo_runs_on_the_built_in_iris_data(capsys):
    assert main(["demo", "--quiet", "--epochs", "30"]) == 0
    out = capsys.readouterr().out
    assert "150 rows, 4 features -> species (3 classes: setosa, versicolor, virginica)" in out
    assert "test: accuracy" in out
    assert "gradient vs fastprop.reference: largest |difference|" in out
    assert "x faster" in out


def test_no_arguments_run_the_iris_demo(monkeypatch):
    ran = []
    monkeypatch.setattr("fastprop.cli.run_demo", lambda args: ran.append(args) or 0)
    assert main([]) == 0
    assert ran and ran[0].command == "demo"


def test_synthetic_demo(capsys):
    assert main(["demo-synthetic", "--epochs", "20", "--samples", "50"]) == 0
    assert "y = sin(pi x1) x2" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], *([c] for c in SUBCOMMANDS)])
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: python -m fastprop")
    if not command:
        assert all(c in out for c in (*SUBCOMMANDS, "bench"))


def test_help_from_a_subprocess():
    result = subprocess.run([sys.executable, "-m", "fastprop", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert all(c in result.stdout for c in (*SUBCOMMANDS, "bench"))


def test_bench_hands_its_arguments_to_fastprop_bench(monkeypatch):
    received = []
    fake = types.ModuleType("fastprop.bench")
    fake.main = lambda argv: received.append(argv) or 0
    monkeypatch.setitem(sys.modules, "fastprop.bench", fake)
    assert main(["bench", "--sizes", "64", "--help"]) == 0
    assert received == [["--sizes", "64", "--help"]]


def test_bench_without_the_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastprop.bench", None)  # import fails
    assert main(["bench"]) == 2
    assert "fastprop.bench" in capsys.readouterr().err


# ---------------------------------------------------------------------- bad input
def expect_error(argv, capsys, message, code=2):
    assert main(argv) == code
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_missing_data_file(tmp_path, capsys):
    expect_error(["train", str(tmp_path / "nope.csv")], capsys, "no such file")


def test_unknown_target_column(blobs_csv, capsys):
    expect_error(["train", blobs_csv, "--target", "size"], capsys,
                 "column 'size' not found in")


def test_non_numeric_feature(blobs_csv, capsys):
    # the target defaults to the last column (x2), so the text column becomes a feature
    expect_error(["train", blobs_csv, "--quiet"], capsys,
                 "feature column 'colour' of")


def test_ragged_csv(tmp_path, capsys):
    data = tmp_path / "ragged.csv"
    data.write_text("a,b,y\n1,2,3\n4,5\n")
    expect_error(["train", str(data)], capsys, "line 3: 2 fields, but the header has 3")


def test_missing_value(tmp_path, capsys):
    data = tmp_path / "gap.csv"
    data.write_text("a,b,y\n1,2,3\n4,,6\n")
    expect_error(["train", str(data)], capsys, "column 'b' is empty")


def test_empty_csv(tmp_path, capsys):
    data = tmp_path / "empty.csv"
    data.write_text("")
    expect_error(["train", str(data)], capsys, "is empty")


def test_npz_without_X(tmp_path, capsys):
    np.savez(tmp_path / "d.npz", features=np.zeros((3, 2)))
    expect_error(["train", str(tmp_path / "d.npz")], capsys, "expected arrays 'X'")


@pytest.mark.parametrize("option, message", [
    (["--layers", "64,x"], "comma-separated layer sizes"),
    (["--optimizer", "lbfgs"], "invalid choice: 'lbfgs'"),
    (["--loss", "hinge"], "invalid choice: 'hinge'"),
    (["--epochs", "-1"], "expected a number >= 0"),
    (["--activation", "swish"], "activation must be one of"),
    (["--activation", "relu,tanh,relu"], "one per hidden layer"),
    (["--test-fraction", "1"], "--test-fraction must be in [0, 1)"),
    (["--lr", "-1"], "lr must be"),
])
def test_bad_options(linear_csv, option, message, capsys):
    expect_error(["train", linear_csv, "--quiet", *option], capsys, message)


def test_text_target_with_a_regression_loss(blobs_csv, capsys):
    expect_error(["train", blobs_csv, "--target", "colour", "--loss", "mse"], capsys,
                 "target column 'colour' of")


def test_predict_with_a_file_that_is_not_a_model(linear_csv, tmp_path, capsys):
    bogus = tmp_path / "bogus.npz"
    bogus.write_bytes(b"not a model at all")
    expect_error(["predict", str(bogus), linear_csv], capsys, "is not a fastprop model")


def test_predict_with_missing_feature_columns(blobs_csv, tmp_path, capsys):
    model = train(blobs_csv, tmp_path, "--target", "colour", "--epochs", "1")
    other = write_csv(tmp_path / "other.csv", ["x1", "z"], [["1", "2"]])
    expect_error(["predict", model, other], capsys, "column 'x2' not found")


def test_unknown_command(capsys):
    expect_error(["fly"], capsys, "invalid choice: 'fly'")


# ---------------------------------------------------------------------- inputs that cost too much
def one_line_error(argv, capsys, *fragments, code=2):
    """main(argv) fails with ``code`` and one line on standard error holding ``fragments``."""
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert len([line for line in err.splitlines() if "error:" in line]) == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def write_text(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def traced_peak(fn):
    """(result, peak bytes traced by tracemalloc, numpy's arrays included, seconds)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
    finally:
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return result, peak, seconds


def test_a_csv_with_many_columns_is_read_in_linear_time(tmp_path, capsys):
    """50,000 columns took 17 s (quadratic: each column looked up by a list search)."""
    d = 50_000
    header = ",".join(f"c{j}" for j in range(d))
    rows = "\n".join(",".join(str((r + j) % 7) for j in range(d)) for r in range(3))
    data = write_text(tmp_path / "wide.csv", header + "\n" + rows + "\n")
    code, _, seconds = traced_peak(lambda: main(
        ["train", data, "--quiet", "--epochs", "1", "--layers", "2", "--test-fraction", "0",
         "-o", str(tmp_path / "m.npz")]))
    assert code == 0, capsys.readouterr().err
    assert f"3 rows, {d - 1} features" in capsys.readouterr().out
    assert io.load(tmp_path / "m.npz").layers == (d - 1, 2, 1)
    assert seconds < 5 * SLOW, f"{d:,} columns took {seconds:.1f} s"
    print(f"\n{d:,} columns: train in {seconds:.2f} s")


def test_a_text_target_with_a_class_per_row_is_refused(tmp_path, capsys):
    """10,000 rows of distinct ids built a 10,000 × 10,000 one-hot matrix (1.27 GiB)."""
    t = 10_000
    data = write_text(tmp_path / "ids.csv", "a,b,id\n" + "".join(
        f"{r % 5},{r % 3},id{r}\n" for r in range(t)))
    code, peak, seconds = traced_peak(lambda: main(
        ["train", data, "--quiet", "-o", str(tmp_path / "m.npz")]))
    assert code == 2
    err = capsys.readouterr().err
    assert "'id' has 10,000 classes in 10,000 rows" in err and "at most 5,000" in err
    assert "--target" in err and err.count("\n") == 1
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB traced"
    assert not (tmp_path / "m.npz").exists()


def test_a_numeric_target_with_a_class_per_row_suggests_regression(tmp_path, capsys):
    data = write_text(tmp_path / "n.csv", "a,y\n" + "".join(f"{r % 3},{r}\n" for r in range(50)))
    one_line_error(["train", data, "--quiet", "--task", "classification"], capsys,
                   "50 classes in 50 rows", "--task regression")


@pytest.mark.parametrize("option, fragment", [
    (["--layers", "10000000,10000000"], "--layers: a network with hidden layers "
                                        "10000000,10000000 has at least 100,000,040,000,001"),
    (["--epochs", "1e15"], "--epochs 1,000,000,000,000,000: fit keeps the loss and the time"),
    (["--epochs", str(2**64)], "--epochs: expected a number <= 2**63 - 1"),
    (["--batch-size", str(2**64)], "--batch-size: expected a number <= 2**63 - 1"),
    (["--patience", str(2**64)], "--patience: expected a number <= 2**63 - 1"),
    (["--seed", str(2**64)], "--seed: expected a seed in [0, 2**64)"),
    (["--epochs", "1e100000000"], "--epochs: '1e100000000' is far too large"),
    (["--optimizer", "lm", "--lr", "0.1"], "--lr does not apply to --optimizer lm"),
    (["--optimizer", "lm", "--weight-decay", "0.1"], "--weight-decay does not apply"),
    (["--weight-decay", "-1"], "--weight-decay: expected a finite number >= 0"),
])
def test_options_out_of_range_end_in_one_line(linear_csv, tmp_path, capsys, option, fragment):
    _, peak, seconds = traced_peak(lambda: one_line_error(
        ["train", linear_csv, "--quiet", "-o", str(tmp_path / "m.npz"), *option], capsys,
        fragment))
    assert peak < 16 * 2**20 and seconds < 5 * SLOW
    assert not (tmp_path / "m.npz").exists()


def test_a_batch_larger_than_the_data_is_the_full_batch(linear_csv, tmp_path):
    train(linear_csv, tmp_path, "--batch-size", str(2**63 - 1), "--patience", str(2**63 - 1),
          "--epochs", "3")


def test_whole_numbers_may_be_written_with_an_exponent(linear_csv, tmp_path, capsys):
    train(linear_csv, tmp_path, "--epochs", "1e1", "--layers", "4e0")
    assert "trained 10 epochs" in capsys.readouterr().out
    assert io.load(tmp_path / "model.npz").layers == (2, 4, 1)


def test_a_long_cell_does_not_widen_every_row(tmp_path, capsys):
    """One 50,000-character label made every cell of the table 50,000 characters wide."""
    rows = [f"{r % 7},{r % 5},{'x' * 50_000 if r == 0 else f'k{r % 3}'}" for r in range(200)]
    data = write_text(tmp_path / "long.csv", "a,b,label\n" + "\n".join(rows) + "\n")
    code, peak, _ = traced_peak(lambda: main(
        ["train", data, "--quiet", "--epochs", "1", "--layers", "2", "-o",
         str(tmp_path / "m.npz")]))
    assert code == 0, capsys.readouterr().err
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB traced"


def test_a_long_column_name_is_refused(tmp_path, capsys):
    """500 columns, one named with 100,000 characters: a 200 MB model file (every name is
    stored at the longest's width)."""
    names = ["n" * 100_000, *(f"c{j}" for j in range(1, 500))]
    data = write_text(tmp_path / "names.csv", ",".join(names) + "\n" + "\n".join(
        ",".join(str((r + j) % 5) for j in range(500)) for r in range(4)) + "\n")
    one_line_error(["train", data, "--quiet", "-o", str(tmp_path / "m.npz")], capsys,
                   "has 100,000 characters", "all 499 names at that width")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("value", ["nan", "inf"])
def test_a_non_finite_class_label_is_refused(tmp_path, capsys, value):
    data = write_text(tmp_path / "y.csv", f"a,b,y\n1,2,1\n2,3,{value}\n3,4,2\n4,5,1\n")
    one_line_error(["train", data, "--quiet", "--loss", "cross_entropy"], capsys,
                   f"target column 'y' of", f"holds '{value}' in data row 2")


def test_a_huge_npy_header_is_refused_in_one_line(tmp_path, capsys):
    buffer = BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**11, 3)})
    (tmp_path / "huge.npy").write_bytes(buffer.getvalue() + bytes(64))
    one_line_error(["train", str(tmp_path / "huge.npy"), "--quiet"], capsys,
                   "huge.npy: its .npy header describes 2,400,000,000,000 bytes")


def test_a_lying_npz_member_is_refused_in_one_line(tmp_path, capsys):
    X = BytesIO()
    np.save(X, np.zeros((10, 2)))
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as archive:
        # the header claims 99 rows; the member holds 10
        archive.writestr("X.npy", X.getvalue().replace(b"(10, 2)", b"(99, 2)"))
    one_line_error(["train", str(tmp_path / "d.npz"), "--quiet"], capsys,
                   "d.npz is not a readable .npz file: member 'X'")


def test_only_x_and_y_of_an_npz_are_read(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(40, 2)), y=rng.normal(size=40),
             notes=np.array([object()], dtype=object))  # would need pickle
    train(str(tmp_path / "d.npz"), tmp_path, "--epochs", "1")


@pytest.mark.parametrize("name, fragment", [
    ("object.npy", "holds Python objects: object arrays are never loaded"),
    ("text.npy", "expected a 2-D array of numbers"),
])
def test_npy_files_that_are_not_numbers(tmp_path, capsys, name, fragment):
    value = np.array([[1, "a"]], dtype=object if name == "object.npy" else str)
    np.save(tmp_path / name, value, allow_pickle=True)
    one_line_error(["train", str(tmp_path / name), "--quiet"], capsys, fragment)


def test_a_directory_as_data_is_refused(tmp_path, capsys):
    (tmp_path / "d.npz").mkdir()
    one_line_error(["train", str(tmp_path / "d.npz"), "--quiet"], capsys,
                   "is not a regular file but a directory")


def run_cli(*argv, timeout=60, memory=2**31):
    """python -m fastprop in a child process, its address space capped at ``memory`` bytes
    (not under AddressSanitizer, whose shadow memory takes terabytes of addresses)."""
    code = ("import os, resource, sys\n"
            "if not os.environ.get('FASTPROP_SANITIZED'):\n"
            f"    resource.setrlimit(resource.RLIMIT_AS, ({memory}, {memory}))\n"
            "from fastprop.cli import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          timeout=timeout)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_as_data_is_refused_at_once():
    result = run_cli("train", "/dev/zero", "--quiet")
    assert result.returncode == 2, result.stderr[-500:]
    assert "/dev/zero is not a regular file or a pipe but a character device" in result.stderr


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_as_npy_data_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / "d.npy")
    try:
        result = run_cli("train", str(tmp_path / "d.npy"), "--quiet", timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("train blocked on a FIFO")
    assert result.returncode == 2 and "is not a regular file but a FIFO" in result.stderr


def test_predict_with_a_model_whose_header_claims_a_huge_shape(linear_csv, tmp_path, capsys):
    model = train(linear_csv, tmp_path, "--epochs", "1")
    with np.load(model) as archive:
        arrays = dict(archive)
    buffer = BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)})
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as archive:
        for key, value in arrays.items():
            if key == "params":
                archive.writestr("params.npy", buffer.getvalue() + bytes(64))
            else:
                item = BytesIO()
                np.save(item, value)
                archive.writestr(f"{key}.npy", item.getvalue())
    one_line_error(["predict", str(tmp_path / "huge.npz"), linear_csv], capsys,
                   "huge.npz is not a valid fastprop model: member 'params'")


@pytest.mark.parametrize("key, value, fragment", [
    ("classes", np.array(["a", "b"]), "'classes' must hold str of shape (3,)"),
    ("x_mean", np.zeros(5), "'x_mean' must hold finite numbers of shape (2,)"),
    ("x_scale", np.array([1.0, np.nan]), "'x_scale' must hold finite numbers"),
    ("feature_names", np.array([["x1", "x2"]]), "'feature_names' must hold str of shape (2,)"),
    ("task", np.array("ranking"), "'task' must be 'classification' or 'regression'"),
])
def test_predict_checks_the_arrays_kept_beside_the_model(blobs_csv, tmp_path, capsys, key,
                                                         value, fragment):
    model = train(blobs_csv, tmp_path, "--target", "colour", "--epochs", "1")
    net, extra = io.load(model, return_extra=True)
    extra[key] = value
    io.save(net, model, extra=extra)
    capsys.readouterr()
    one_line_error(["predict", model, blobs_csv], capsys, fragment)


def big_model_and_rows(tmp_path, rows):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(rows, 2))
    data = write_csv(tmp_path / "big.csv", ["a", "b", "y"],
                     [[f"{a:.4f}", f"{b:.4f}", f"{a + b:.4f}"] for a, b in X])
    return train(data, tmp_path, "--epochs", "1"), data


def test_a_broken_pipe_ends_predict_quietly(tmp_path):
    model, data = big_model_and_rows(tmp_path, 20_000)  # far more than a pipe's buffer
    child = subprocess.Popen([sys.executable, "-m", "fastprop", "predict", model, data],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = child.stdout.readline()
    child.stdout.close()  # as `head -1` does
    _, err = child.communicate(timeout=60)
    assert first == b"y\n"
    assert err == b"", err.decode()
    assert child.returncode == 141


def test_a_broken_pipe_does_not_stop_train_from_saving(linear_csv, tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "fastprop", "train", linear_csv, "--epochs",
                              "300", "-o", str(tmp_path / "m.npz")],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first = child.stdout.readline()
    child.stdout.close()
    child.wait(timeout=120)
    assert first.startswith(b"data: ")
    assert child.returncode == 0
    assert io.load(tmp_path / "m.npz").layers == (2, 64, 32, 1)


# ---------------------------------------------------------------------- the task, --proba
@pytest.fixture
def integer_csv(tmp_path):
    """Classes 0, 1, 2 written as integers, from the quadrant of (x1, x2)."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(150, 2))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    return write_csv(tmp_path / "ints.csv", ["x1", "x2", "y"],
                     [[f"{a:.4f}", f"{b:.4f}", str(c)] for (a, b), c in zip(X, y)])


def test_integers_with_few_values_are_classes_and_train_says_so(integer_csv, tmp_path, capsys):
    model = train(integer_csv, tmp_path, "--epochs", "5")
    out = capsys.readouterr().out
    assert "task: classification, the target 'y' holds 3 distinct integers (--task " \
           "regression fits them as numbers)" in out
    net, extra = io.load(model, return_extra=True)
    assert net.loss_name == "cross_entropy" and extra["classes"].tolist() == ["0", "1", "2"]


def test_task_regression_overrides_the_inference(integer_csv, tmp_path, capsys):
    model = train(integer_csv, tmp_path, "--epochs", "5", "--task", "regression")
    assert "task: regression, --task regression" in capsys.readouterr().out
    assert io.load(model).loss_name == "mse"


def test_integers_with_many_values_are_a_regression_and_train_says_so(tmp_path, capsys):
    data = write_csv(tmp_path / "counts.csv", ["x", "y"],
                     [[str(r), str(3 * r + 1)] for r in range(100)])
    train(data, tmp_path, "--epochs", "2")
    assert "task: regression, the target 'y' holds 100 distinct integers (--task " \
           "classification takes them as classes)" in capsys.readouterr().out


def test_a_continuous_target_is_refused_for_classification(linear_csv, capsys):
    for option in (["--loss", "cross_entropy"], ["--task", "classification"],
                   ["--loss", "binary_cross_entropy"]):
        one_line_error(["train", linear_csv, "--quiet", *option], capsys,
                       "needs class labels, but the target 'y' holds non-integer numbers",
                       "--task regression")


def test_task_and_loss_must_agree(integer_csv, capsys):
    one_line_error(["train", integer_csv, "--task", "classification", "--loss", "mse"], capsys,
                   "--task classification and --loss mse disagree")


def test_weight_decay_reaches_the_optimizer(linear_csv, tmp_path):
    norms = []
    for decay in ("0", "1"):
        model = train(linear_csv, tmp_path, "--epochs", "50", "--layers", "8", "--optimizer",
                      "sgd", "--lr", "0.01", "--weight-decay", decay)
        norms.append(np.linalg.norm(io.load(model).params))
    assert norms[1] < 0.5 * norms[0], norms


def test_proba_gives_class_probabilities(blobs_csv, tmp_path, capsys):
    model = train(blobs_csv, tmp_path, "--target", "colour", "--epochs", "30")
    capsys.readouterr()
    assert main(["predict", model, blobs_csv, "--proba"]) == 0
    lines = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert lines[0] == ["colour", "P(blue)", "P(green)", "P(red)"]
    names = [row[0] for row in lines[1:]]
    P = np.array([row[1:] for row in lines[1:]], dtype=float)
    assert P.shape == (120, 3) and np.all(P >= 0)
    assert np.allclose(P.sum(axis=1), 1, atol=1e-12)
    assert [["blue", "green", "red"][k] for k in P.argmax(axis=1)] == names


def test_proba_of_a_binary_classifier(tmp_path, capsys):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(100, 2))
    data = write_csv(tmp_path / "b.csv", ["a", "b", "label"],
                     [[*map(str, x), "yes" if x.sum() > 0 else "no"] for x in X])
    model = train(data, tmp_path, "--loss", "binary_cross_entropy", "--epochs", "50")
    capsys.readouterr()
    assert main(["predict", model, data, "--proba"]) == 0
    lines = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert lines[0] == ["label", "P(no)", "P(yes)"]
    P = np.array([row[1:] for row in lines[1:]], dtype=float)
    assert np.allclose(P.sum(axis=1), 1, atol=1e-12)
    assert [("no", "yes")[k] for k in P.argmax(axis=1)] == [row[0] for row in lines[1:]]


def test_proba_of_a_regression_is_refused(linear_csv, tmp_path, capsys):
    model = train(linear_csv, tmp_path, "--epochs", "1")
    capsys.readouterr()
    one_line_error(["predict", model, linear_csv, "--proba"], capsys, "--proba needs a classifier")


def test_layers_are_the_hidden_sizes_in_every_command(linear_csv, tmp_path, capsys):
    assert main(["demo-synthetic", "--layers", "8", "--epochs", "10", "--samples", "20"]) == 0
    assert "layers=(2, 8, 1)" in capsys.readouterr().out
    train(linear_csv, tmp_path, "--layers", "8", "--epochs", "1")
    assert io.load(tmp_path / "model.npz").layers == (2, 8, 1)
    for command in ("train", "demo-synthetic"):
        assert main([command, "--help"]) == 0
        assert "HIDDEN layer sizes" in capsys.readouterr().out


@pytest.mark.parametrize("output, fragment", [
    ("missing/model.npz", "no such directory"),
    ("", "is a directory"),
])
def test_an_unwritable_model_path_is_refused_before_training(linear_csv, tmp_path, capsys,
                                                             output, fragment):
    if output == "":
        (tmp_path / "dir.npz").mkdir()
        output = "dir"
    assert main(["train", linear_csv, "--quiet", "-o", str(tmp_path / output)]) == 2
    captured = capsys.readouterr()
    assert fragment in captured.err and "trained" not in captured.out


@pytest.mark.parametrize("name, fragment", [
    ("empty.csv", "is empty"),
    ("empty.npy", "is not an .npy array"),
    ("empty.npz", "not an .npz (zip) archive"),
    ("blank.csv", "is empty"),
    ("bom.csv", "is empty"),
])
def test_empty_data_files_end_in_one_line(tmp_path, capsys, name, fragment):
    contents = {"blank.csv": b"\n ,  \n\n", "bom.csv": b"\xef\xbb\xbf"}.get(name, b"")
    (tmp_path / name).write_bytes(contents)
    one_line_error(["train", str(tmp_path / name), "--quiet"], capsys, fragment)


# ---------------------------------------------------------------------- --sample-weight
def _weighted_csv(tmp_path, weights):
    """y = x1 on half the rows and y = −x1 on the other half, with a weight column w."""
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, 200)
    half = np.arange(200) % 2 == 0
    y = np.where(half, x, -x)
    w = np.where(half, weights[0], weights[1])
    rows = np.column_stack([x, w, y]).tolist()
    return write_csv(tmp_path / "weighted.csv", ["x1", "w", "y"], rows), half


def test_sample_weight_column_weights_the_rows_and_is_no_feature(tmp_path, capsys):
    # Weight 0 on the rows of y = −x1: the model learns y = x1 from the others alone.
    data, half = _weighted_csv(tmp_path, (1.0, 0.0))
    model = train(data, tmp_path, "--sample-weight", "w", "--layers", "8", "--epochs", "200",
                  "--test-fraction", "0")
    out = capsys.readouterr().out
    assert "sample weights: column 'w'" in out and "rows of weight 0)" in out
    net, extra = io.load(model, return_extra=True)
    assert net.layers[0] == 1 and extra["feature_names"].tolist() == ["x1"]
    x = np.linspace(-0.9, 0.9, 7)
    predicted = predict(net, extra, x[:, None])[:, 0]
    assert np.max(np.abs(predicted - x)) < 0.2, predicted
    unweighted = train(data, tmp_path, "--layers", "8", "--epochs", "200", "--test-fraction",
                       "0", "--target", "y")
    net_u, extra_u = io.load(unweighted, return_extra=True)
    assert net_u.layers[0] == 2  # without the option, w is a feature


@pytest.mark.parametrize("weights, column, message", [
    ((1.0, -1.0), "w", r"--sample-weight 'w' must hold weights >= 0; data row 2 has -1.0"),
    ((0.0, 0.0), "w", r"--sample-weight 'w' is 0 on every training row"),
    ((1.0, 1.0), "y", r"--sample-weight 'y' is the target column"),
    ((1.0, 1.0), "v", r"column 'v' not found"),
])
def test_bad_sample_weight_columns_are_refused(tmp_path, capsys, weights, column, message):
    data, _ = _weighted_csv(tmp_path, weights)
    code = main(["train", data, "--quiet", "--sample-weight", column, "-o",
                 str(tmp_path / "m.npz")])
    assert code == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert err.count("\n") == 1 and not (tmp_path / "m.npz").exists()
