"""The command line, run in-process through fastprop.cli.main (and once as a subprocess)."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import types

import numpy as np
import pytest

from fastprop import io
from fastprop.cli import main

SUBCOMMANDS = ("demo", "demo-synthetic", "train", "predict")


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
