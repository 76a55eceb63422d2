"""The command line, ``python -m fastprop``: demos, training on a file, prediction.

    python -m fastprop                        the Iris demo (same as `demo`)
    python -m fastprop demo                   train on the built-in Iris data, cross-check, time
    python -m fastprop demo-synthetic         the same on a generated regression problem
    python -m fastprop train DATA [options]   train on a CSV, .npy or .npz file, save a model
    python -m fastprop predict MODEL DATA     predictions of a saved model
    python -m fastprop export MODEL           the model as ONNX or C (--format onnx|c -o PATH)
    python -m fastprop bench ...              benchmarks (fastprop.bench)

Data files: a CSV with a header row (the target is the last column, or ``--target NAME``);
a .npy 2-D array (columns named x0, x1, ...; the target is the last one); or a .npz with
arrays ``X`` (t, d) and ``y`` (t,) or (t, k). Features are standardised with the mean and
standard deviation of the training rows (and so is a regression target); these, the column
names and the class names are saved in the model file as ``extra`` arrays
(:func:`fastprop.io.save`), so ``predict`` applies the same transformation.

Every error in a file, a column or an option ends the program with exit code 2 and a
one-line message, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from . import __version__, io, reference
from .network import Network
from .optim import OPTIMIZERS

__all__ = ["main"]

CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")


class UsageError(Exception):
    """A bad file, column or option: reported in one line with exit code 2."""


# ---------------------------------------------------------------------- entry point
def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:  # fastprop.bench parses its own options, --help included
        return _bench(argv[1:])
    parser = _parser()
    try:
        args = parser.parse_args(argv or ["demo"])
    except SystemExit as exit_:  # --help, or an argparse error (already printed)
        return _exit_code(exit_)
    try:
        return args.run(args)
    except (UsageError, ValueError, OSError) as error:
        message = str(error) if isinstance(error, (UsageError, ValueError)) else _os_message(error)
        print(f"python -m fastprop {args.command}: error: {message}", file=sys.stderr)
        return 2
    except FloatingPointError as error:
        print(f"python -m fastprop {args.command}: training diverged: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastprop",
        description="fastprop: feedforward networks trained by backpropagation in a C++ core. "
                    "Without a command, runs the Iris demo.")
    parser.add_argument("--version", action="version", version=f"fastprop {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = commands.add_parser(
        "demo", help="train on the built-in Iris data, cross-check the gradient, time it",
        description="Train a classifier on Fisher's Iris data (shipped with fastprop), print "
                    "train and test accuracy, the largest difference between the core's "
                    "gradient and fastprop.reference's, and the speed-up over the reference.")
    demo.add_argument("--epochs", type=_natural, default=200, help="default 200")
    demo.add_argument("--seed", type=_natural, default=0, help="split and initialisation seed")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=run_demo)

    synthetic = commands.add_parser(
        "demo-synthetic", help="the same on generated data y = sin(pi x1) x2",
        description="Train a network on a generated data set with plain full-batch gradient "
                    "descent, cross-check its gradient against the NumPy reference and time "
                    "both.")
    synthetic.add_argument("--layers", type=_sizes, default=[2, 16, 16, 1],
                           help="layer sizes l_0,...,l_n (default 2,16,16,1)")
    synthetic.add_argument("--activation", default="tanh", choices=reference.ACTIVATIONS)
    synthetic.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    synthetic.add_argument("--samples", type=_natural, default=500, help="t (default 500)")
    synthetic.add_argument("--epochs", type=_natural, default=3000, help="default 3000")
    synthetic.add_argument("--lr", type=float, default=3e-4,
                           help="learning rate m (default 3e-4)")
    synthetic.add_argument("--seed", type=_natural, default=0,
                           help="data and initialisation seed")
    synthetic.set_defaults(run=run_demo_synthetic)

    train = commands.add_parser(
        "train", help="train on a CSV, .npy or .npz file and save the model",
        description="Train a network on DATA and save it. DATA: a CSV with a header row "
                    "(target: the last column or --target), a .npy 2-D array (columns x0, x1, "
                    "...; target: the last), or a .npz with arrays X and y. Features (and a "
                    "regression target) are standardised; the model file keeps everything "
                    "`predict` needs.")
    train.add_argument("data", metavar="DATA", help="training data (.csv, .npy or .npz)")
    train.add_argument("--target", metavar="COLUMN",
                       help="the target column (default: the last column; y for .npz)")
    train.add_argument("--layers", type=_sizes, default=[64, 32], metavar="SIZES",
                       help="HIDDEN layer sizes, comma-separated (default 64,32; '' for none); "
                            "l_0 and l_n come from the data")
    train.add_argument("--activation", default="relu", metavar="NAME[,NAME...]",
                       help=f"one of {', '.join(reference.ACTIVATIONS)}, or one per hidden "
                            f"layer (default relu)")
    train.add_argument("--loss", default="auto", choices=("auto", *reference.LOSSES),
                       help="default auto: cross_entropy for a text target, else mse")
    train.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS),
                       help="default adam")
    train.add_argument("--epochs", type=_natural, default=100, help="default 100")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the optimizer's)")
    train.add_argument("--batch-size", type=_natural, default=None, metavar="N",
                       help="rows per update (default 32, or the full batch for lm; 0 for "
                            "the full batch)")
    train.add_argument("--test-fraction", type=float, default=0.2, metavar="F",
                       help="rows held out for the test score (default 0.2)")
    train.add_argument("--patience", type=_natural, default=None, metavar="EPOCHS",
                       help="stop early when the loss on 10%% of the training rows has not "
                            "improved for this many epochs")
    train.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True,
                       help="biases b_i in every layer (default on)")
    train.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    train.add_argument("--seed", type=_natural, default=0,
                       help="split, initialisation and shuffling seed (default 0)")
    train.add_argument("-o", "--output", default="model.npz", metavar="MODEL",
                       help="where to save the model (default model.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=run_train)

    predict = commands.add_parser(
        "predict", help="predictions of a saved model on a data file",
        description="Print (or write with -o) the predictions of MODEL for every row of DATA, "
                    "as CSV: class names for a classifier, values for a regression. Columns "
                    "are matched by name; when DATA also holds the target, the score goes "
                    "to standard error.")
    predict.add_argument("model", metavar="MODEL", help="a model saved by `train`")
    predict.add_argument("data", metavar="DATA", help="input rows (.csv, .npy or .npz)")
    predict.add_argument("-o", "--output", metavar="CSV", help="write here instead of printing")
    predict.set_defaults(run=run_predict)

    export = commands.add_parser(
        "export", help="write a saved model as ONNX or as dependency-free C",
        description="Write MODEL as an ONNX graph (needs the onnx package: pip install "
                    "'fastprop[onnx]') or as one C99/C++ header that needs only <math.h>. The "
                    "standardisation that `train` saved in the model goes into the export: "
                    "the graph or the C code takes raw features, as `predict` does, and "
                    "returns a regression's target in its own units. Classifiers also get "
                    "their probabilities (softmax or sigmoid) and class names.")
    export.add_argument("model", metavar="MODEL", help="a model saved by `train` (or "
                                                       "Network.save)")
    export.add_argument("--format", choices=("onnx", "c"), default=None,
                        help="default: from the extension of -o (.onnx, or .h/.c for C), "
                             "else onnx")
    export.add_argument("-o", "--output", metavar="PATH",
                        help="where to write (default: MODEL with .onnx or .h)")
    export.add_argument("--name", default=None,
                        help="C only: the prefix of every name in the code, a C identifier "
                             "(default model: model_forward, ...)")
    export.add_argument("--opset", type=_natural, default=None,
                        help="ONNX only: the operator set (default 21)")
    export.set_defaults(run=run_export)

    bench = commands.add_parser("bench", add_help=False,
                                help="benchmarks (`bench --help` for their options)")
    bench.add_argument("options", nargs=argparse.REMAINDER)
    return parser


# ---------------------------------------------------------------------- data files
@dataclass
class Table:
    """Named columns of one data file, each of shape (t,): str for CSV, float64 otherwise."""

    path: str
    names: list[str]
    columns: list[np.ndarray]
    default_target: list[str]  # the last column, or y's columns for a .npz

    @property
    def t(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> np.ndarray:
        if name not in self.names:
            raise UsageError(f"column {name!r} not found in {self.path}; it has "
                             f"{', '.join(map(repr, self.names))}")
        return self.columns[self.names.index(name)]

    def numbers(self, names: Sequence[str], what: str) -> np.ndarray:
        """The columns as a (t, len(names)) float64 array; a text or non-finite cell is an error."""
        out = np.empty((self.t, len(names)))
        for j, name in enumerate(names):
            out[:, j] = _numeric(self.column(name), name, self.path, what)
        return out


def read_table(path: str) -> Table:
    """A CSV (header row), .npy (2-D) or .npz (X and y) file as named columns."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if path.endswith(".npy"):
        A = _load_numpy(path)
        if not isinstance(A, np.ndarray) or A.ndim != 2:
            raise UsageError(f"{path}: expected a 2-D array (rows of samples), got shape "
                             f"{getattr(A, 'shape', None)}")
        names = [f"x{j}" for j in range(A.shape[1])]
        return Table(path, names, [_real_column(A[:, j], path, n) for j, n in enumerate(names)],
                     names[-1:])
    if path.endswith(".npz"):
        with _load_numpy(path) as archive:
            if "X" not in archive.files:
                raise UsageError(f"{path}: expected arrays 'X' (and 'y'), found "
                                 f"{', '.join(map(repr, archive.files)) or 'none'}")
            X, y = archive["X"], archive["y"] if "y" in archive.files else None
        if X.ndim != 2:
            raise UsageError(f"{path}: X must be 2-D (t, d), got shape {X.shape}")
        names = [f"x{j}" for j in range(X.shape[1])]
        columns = [_real_column(X[:, j], path, n) for j, n in enumerate(names)]
        targets: list[str] = []
        if y is not None:
            if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
                raise UsageError(f"{path}: y must have shape ({X.shape[0]},) or "
                                 f"({X.shape[0]}, k) to match X, got {y.shape}")
            targets = ["y"] if y.ndim == 1 else [f"y{j}" for j in range(y.shape[1])]
            columns += [y] if y.ndim == 1 else [y[:, j] for j in range(y.shape[1])]
        return Table(path, names + targets, columns, targets)
    return _read_csv(path)


def _read_csv(path: str) -> Table:
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            reader = csv.reader(f)
            rows = [(reader.line_num, [cell.strip() for cell in row])
                    for row in reader if any(cell.strip() for cell in row)]
        except (csv.Error, UnicodeDecodeError) as error:
            raise UsageError(f"{path} is not a readable CSV file: {error}") from None
    if not rows:
        raise UsageError(f"{path} is empty; expected a header row and data rows")
    _, names = rows[0]
    if "" in names or len(set(names)) != len(names):
        raise UsageError(f"{path}: the header row must name every column once, got {names}")
    if len(rows) == 1:
        raise UsageError(f"{path} has a header but no data rows")
    for line, row in rows[1:]:
        if len(row) != len(names):
            raise UsageError(f"{path}, line {line}: {len(row)} fields, but the header has "
                             f"{len(names)}")
        if "" in row:
            raise UsageError(f"{path}, line {line}: column {names[row.index('')]!r} is empty "
                             f"(missing values are not supported)")
    cells = np.array([row for _, row in rows[1:]], dtype=str)
    return Table(path, list(names), list(cells.T), names[-1:])


def _load_numpy(path: str) -> Any:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise UsageError(f"{path} is not a readable NumPy file: {error}") from None


def _real_column(values: np.ndarray, path: str, name: str) -> np.ndarray:
    if values.dtype.kind not in "biuf":
        raise UsageError(f"{path}: column {name} holds {values.dtype}, expected numbers")
    return values.astype(np.float64)


def _numeric(column: np.ndarray, name: str, path: str, what: str) -> np.ndarray:
    """A column as float64; every entry must be a finite number."""
    try:
        values = column.astype(np.float64)
    except ValueError:  # find the first cell that is not a number, for the message
        s = next(s for s, cell in enumerate(column) if not _is_number(cell))
        raise UsageError(f"{what} column {name!r} of {path} must hold numbers; data row "
                         f"{s + 1} holds {str(column[s])!r}") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise UsageError(f"{what} column {name!r} of {path} holds {str(column[bad[0]])!r} in "
                         f"data row {bad[0] + 1}; values must be finite numbers")
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _class_names(column: np.ndarray) -> np.ndarray:
    """Each entry's class name as str: numbers as written canonically (1.0 -> '1')."""
    try:
        values = column.astype(np.float64)
    except ValueError:
        return column.astype(str)
    return np.array([str(int(v)) if float(v).is_integer() else repr(float(v)) for v in values],
                    dtype=str)


def _numeric_sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


# ---------------------------------------------------------------------- the model pipeline
@dataclass
class Prepared:
    """Training data turned into network inputs, and the extra arrays that undo it."""

    raw_X: np.ndarray  # (t, l_0), as read
    X: np.ndarray  # (t, l_0), standardised
    Y: np.ndarray  # (t,) int labels, (t, 1) 0/1 for binary_cross_entropy, or (t, k) scaled
    raw_targets: np.ndarray  # class names (t,) or values (t, k), for the scores
    loss: str
    extra: dict[str, np.ndarray]


def prepare(table: Table, target: str | None, loss: str, train_rows: np.ndarray) -> Prepared:
    """Features, targets and the standardisation fitted on ``train_rows``."""
    target_names = [target] if target is not None else table.default_target
    if not target_names:
        raise UsageError(f"{table.path} has no target: add an array y, or pass --target")
    for name in target_names:
        table.column(name)  # exists
    feature_names = [name for name in table.names if name not in target_names]
    if not feature_names:
        raise UsageError(f"{table.path} has no feature columns besides the target")
    X = table.numbers(feature_names, "feature")
    targets = [table.column(name) for name in target_names]
    if loss == "auto":
        numeric = all(column.dtype.kind in "biuf" or _is_numeric(column) for column in targets)
        loss = "mse" if numeric else "cross_entropy"
    x_mean, x_scale = _standardisation(X[train_rows])
    extra = {"feature_names": np.array(feature_names, dtype=str),
             "target_names": np.array(target_names, dtype=str),
             "x_mean": x_mean, "x_scale": x_scale}
    if loss in CLASSIFICATION_LOSSES:
        if len(targets) != 1:
            raise UsageError(f"{loss} needs one target column, got {len(targets)}")
        names = _class_names(targets[0])
        classes = np.array(sorted(set(names.tolist()), key=_numeric_sort_key), dtype=str)
        if loss == "binary_cross_entropy" and len(classes) != 2:
            raise UsageError(f"binary_cross_entropy needs exactly 2 classes in "
                             f"{target_names[0]!r}, found {len(classes)}")
        if len(classes) < 2:
            raise UsageError(f"the target {target_names[0]!r} has a single class "
                             f"{classes[0]!r}; nothing to learn")
        index = {name: k for k, name in enumerate(classes.tolist())}
        labels = np.array([index[name] for name in names.tolist()])
        Y = labels.reshape(-1, 1).astype(np.float64) if loss == "binary_cross_entropy" else labels
        extra.update(task=np.array("classification"), classes=classes)
        raw = names
    else:
        values = table.numbers(target_names, "target")
        y_mean, y_scale = _standardisation(values[train_rows])
        Y = (values - y_mean) / y_scale
        extra.update(task=np.array("regression"), y_mean=y_mean, y_scale=y_scale)
        raw = values
    return Prepared(X, (X - x_mean) / x_scale, Y, raw, loss, extra)


def _is_numeric(column: np.ndarray) -> bool:
    try:
        return bool(np.all(np.isfinite(column.astype(np.float64))))
    except ValueError:
        return False


def _standardisation(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (1 where a column is constant)."""
    mean, scale = A.mean(axis=0), A.std(axis=0)
    return mean, np.where(scale > 0, scale, 1.0)


def output_size(prepared: Prepared) -> int:
    if prepared.loss == "cross_entropy":
        return len(prepared.extra["classes"])
    if prepared.loss == "binary_cross_entropy":
        return 1
    return prepared.Y.shape[1]


def predict(net: Network, extra: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class names (t,) for a classifier, values (t, l_n) for a regression, from raw X."""
    if "x_mean" in extra:
        X = (X - extra["x_mean"]) / extra["x_scale"]
    Z = net.forward(X).astype(np.float64)
    if _task(net, extra) == "classification":
        index = Z.argmax(axis=1) if Z.shape[1] > 1 else (Z[:, 0] > 0).astype(int)
        classes = extra.get("classes", np.arange(Z.shape[1] if Z.shape[1] > 1 else 2).astype(str))
        return classes[index]
    if "y_mean" in extra:
        Z = Z * extra["y_scale"] + extra["y_mean"]
    return Z


def _task(net: Network, extra: dict[str, np.ndarray]) -> str:
    if "task" in extra:
        return str(extra["task"])
    return "classification" if net.loss_name in CLASSIFICATION_LOSSES else "regression"


def score(predicted: np.ndarray, actual: np.ndarray) -> str:
    """'accuracy 0.967' for class names; 'R² 0.912, RMSE 1.23' for values."""
    if predicted.dtype.kind == "U":
        return f"accuracy {np.mean(predicted == actual):.3f}"
    residual = np.sum((actual - predicted) ** 2)
    total = np.sum((actual - actual.mean(axis=0)) ** 2)
    r2 = 1 - residual / total if total > 0 else float("nan")
    return f"R² {r2:.3f}, RMSE {np.sqrt(residual / actual.size):.4g}"


def split(t: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (train, test) from a seeded permutation; train stays in shuffled order,
    so that fit's validation rows (the last ones) are a random sample too."""
    if not 0 <= test_fraction < 1:
        raise UsageError(f"--test-fraction must be in [0, 1), got {test_fraction}")
    order = np.random.default_rng(seed).permutation(t)
    n_test = int(round(t * test_fraction))
    if t - n_test < 1:
        raise UsageError(f"no training rows left: {t} rows, test fraction {test_fraction}")
    return order[n_test:], np.sort(order[:n_test])


# ---------------------------------------------------------------------- train, predict
def run_train(args: argparse.Namespace) -> int:
    table = read_table(args.data)
    train_rows, test_rows = split(table.t, args.test_fraction, args.seed)
    data = prepare(table, args.target, args.loss, train_rows)
    activation = args.activation.split(",") if "," in args.activation else args.activation
    layers = [data.X.shape[1], *args.layers, output_size(data)]
    net = Network(layers, activation, bias=args.bias, dtype=args.dtype, seed=args.seed,
                  loss=data.loss)
    _describe(table, data, train_rows, test_rows, net)
    batch_size = args.batch_size if args.batch_size is not None else (
        0 if args.optimizer == "lm" else 32)  # lm works on the whole batch
    options: dict[str, Any] = dict(optimizer=args.optimizer, batch_size=batch_size or None,
                                   seed=args.seed, verbose=not args.quiet)
    if args.patience is not None:
        options.update(validation_fraction=0.1, patience=args.patience)
    start = time.perf_counter()
    history = net.fit(data.X[train_rows], data.Y[train_rows], args.epochs, args.lr, **options)
    print(f"trained {len(history)} epochs in {time.perf_counter() - start:.2f} s; loss "
          f"{history[0]:.4g} -> {history[-1]:.4g}" if len(history) else "trained 0 epochs")
    _report_scores(net, data, train_rows, test_rows)
    path = io.save(net, args.output, extra=data.extra)
    print(f"saved {path}")
    return 0


def run_predict(args: argparse.Namespace) -> int:
    net, extra = io.load(args.model, return_extra=True)
    table = read_table(args.data)
    if "feature_names" in extra:
        features = extra["feature_names"].tolist()
    elif len(table.names) in (net.layers[0], net.layers[0] + 1):
        features = table.names[:net.layers[0]]  # a model saved without column names
    else:
        raise UsageError(f"{args.data} has {len(table.names)} columns; the model takes "
                         f"{net.layers[0]} features")
    if len(features) != net.layers[0]:
        raise UsageError(f"{args.model} lists {len(features)} features but its network takes "
                         f"{net.layers[0]}")
    predicted = predict(net, extra, table.numbers(features, "feature"))
    target_names = extra.get("target_names", np.array(["prediction"])).tolist()
    header = target_names if predicted.ndim == 1 or predicted.shape[1] == len(target_names) \
        else [f"prediction{j}" for j in range(predicted.shape[1])]
    rows = predicted.reshape(len(predicted), -1)
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header, rows)
        print(f"wrote {len(rows)} predictions to {args.output}", file=sys.stderr)
    else:
        _write_csv(sys.stdout, header, rows)
    if all(name in table.names for name in target_names):
        actual = (_class_names(table.column(target_names[0])) if predicted.dtype.kind == "U"
                  else table.numbers(target_names, "target"))
        print(f"{args.data}: {score(predicted, actual)} ({table.t} rows)", file=sys.stderr)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """MODEL as an ONNX graph or a C header, its standardisation and class names included."""
    from .export import DEFAULT_OPSET, to_c, to_onnx

    net, extra = io.load(args.model, return_extra=True)
    output_format = args.format
    if output_format is None:
        suffix = os.path.splitext(args.output or "")[1].lower()
        output_format = "c" if suffix in (".h", ".c", ".hpp") else "onnx"
    output = args.output or os.path.splitext(args.model)[0] + (
        ".h" if output_format == "c" else ".onnx")
    if output_format == "c":
        if args.opset is not None:
            raise UsageError("--opset is for --format onnx")
        to_c(net, output, "model" if args.name is None else args.name, extra=extra)
    else:
        if args.name is not None:
            raise UsageError("--name is for --format c")
        try:
            to_onnx(net, output, extra=extra,
                    opset=DEFAULT_OPSET if args.opset is None else args.opset)
        except ImportError as error:
            raise UsageError(str(error)) from None
    parts = ["the input standardisation" if "x_mean" in extra or "x_scale" in extra else "",
             "the target's units" if "y_mean" in extra or "y_scale" in extra else "",
             "probabilities" if net.loss_name in CLASSIFICATION_LOSSES else "",
             "class names" if "classes" in extra else ""]
    included = ", ".join(part for part in parts if part)
    print(f"wrote {output} ({'C header' if output_format == 'c' else 'ONNX'}: "
          f"{', '.join(map(str, net.layers))}{'; with ' + included if included else ''})")
    return 0


def _write_csv(f: Any, header: list[str], rows: np.ndarray) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([v if isinstance(v, str) else repr(float(v)) for v in row.tolist()])


def _describe(table: Table, data: Prepared, train_rows: np.ndarray, test_rows: np.ndarray,
              net: Network) -> None:
    targets = data.extra["target_names"].tolist()
    if "classes" in data.extra:
        classes = data.extra["classes"].tolist()
        shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
        what = f"{len(classes)} classes: {shown}"
    else:
        what = "regression"
    print(f"data: {table.path}, {table.t} rows, {data.X.shape[1]} features -> "
          f"{', '.join(targets)} ({what})")
    print(f"split: {len(train_rows)} training rows, {len(test_rows)} test rows")
    print(f"network: {net}")


def _report_scores(net: Network, data: Prepared, train_rows: np.ndarray,
                   test_rows: np.ndarray) -> None:
    for name, rows in (("train", train_rows), ("test", test_rows)):
        if len(rows):
            predicted = predict(net, data.extra, data.raw_X[rows])
            print(f"{name:>5}: {score(predicted, data.raw_targets[rows])} ({len(rows)} rows)")


# ---------------------------------------------------------------------- demos
def iris_path() -> str:
    """The built-in Iris data (fastprop/data/iris.csv; see README.txt beside it)."""
    return str(resources.files("fastprop") / "data" / "iris.csv")


def run_demo(args: argparse.Namespace) -> int:
    """Iris: train a small classifier, cross-check the gradient, time it against the reference."""
    table = read_table(iris_path())
    table.path = "iris.csv (built in: Fisher's Iris data, 1936)"
    train_rows, test_rows = split(table.t, 0.2, args.seed)
    data = prepare(table, None, "cross_entropy", train_rows)
    net = Network([4, 16, 3], "tanh", bias=True, seed=args.seed, loss="cross_entropy")
    print(f"fastprop {__version__}")
    _describe(table, data, train_rows, test_rows, net)

    # The gradient at the starting point, before training moves the parameters.
    X, labels = data.X[train_rows], data.Y[train_rows]
    Y = np.eye(3)[labels]  # one-hot targets, the reference's form of cross_entropy
    W, b = [w.copy() for w in net.weights], [v.copy() for v in net.biases]
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X, Y, loss=net.loss_name)
    diff = max(np.max(np.abs(g - g_ref)) for g, g_ref in zip(dW + db, dW_ref + db_ref))
    scale = max(np.max(np.abs(g_ref)) for g_ref in dW_ref + db_ref)

    print(f"training: adam, {args.epochs} epochs, minibatches of 16, cross-entropy loss")
    start = time.perf_counter()
    history = net.fit(X, labels, args.epochs, optimizer="adam", batch_size=16, seed=args.seed,
                      verbose=not args.quiet)
    print(f"trained in {time.perf_counter() - start:.2f} s; loss {history[0]:.4f} -> "
          f"{history[-1]:.4f}")
    _report_scores(net, data, train_rows, test_rows)

    print(f"gradient vs fastprop.reference: largest |difference| {diff:.3e} (largest |entry| "
          f"{scale:.3e}); E {E:.12g} vs {E_ref:.12g}")
    core = _seconds_per_call(lambda: net.gradient(X, Y))
    ref = _seconds_per_call(lambda: reference.gradient(W, b, net.activations, X, Y,
                                                       loss=net.loss_name))
    print(f"one gradient of {len(X)} samples: fastprop {core * 1e6:.1f} us, reference "
          f"{ref * 1e3:.1f} ms: {ref / core:.0f}x faster")
    ok = diff <= 1e-8 * max(scale, 1.0) and history[-1] < history[0]
    return 0 if ok else 1


def make_synthetic(t: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """t samples of y = sin(π x1) x2 with x uniform on [−1, 1]²: X (t, 2), Y (t, 1)."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(t, 2))
    Y = (np.sin(np.pi * X[:, 0]) * X[:, 1])[:, np.newaxis]
    return X, Y


def run_demo_synthetic(args: argparse.Namespace) -> int:
    """Full-batch gradient descent on y = sin(π x1) x2, cross-checked and timed."""
    if args.layers[0] != 2 or args.layers[-1] != 1:
        raise UsageError(f"--layers must start with 2 and end with 1 for this data set, got "
                         f"{','.join(map(str, args.layers))}")
    X, Y = make_synthetic(args.samples, args.seed)
    t = len(X)
    net = Network(args.layers, args.activation, bias=True, dtype=args.dtype, seed=args.seed)
    print(f"fastprop {__version__}: {net}")
    print(f"data: {t} samples of y = sin(pi x1) x2, x uniform on [-1, 1]^2")
    print(f"full-batch gradient descent, lr = {args.lr}, E = sum over samples of ||y - z_n||^2\n")

    # The gradient at the starting point, before training moves the parameters.
    W, b = [w.copy() for w in net.weights], [v.copy() for v in net.biases]
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X, Y)

    print(f"{'epoch':>7}  {'E':>12}  {'E / t':>10}")
    report = sorted({0, *range(args.epochs // 10 - 1, args.epochs, args.epochs // 10 or 1)})

    def show(epoch: int, logs: dict[str, Any]) -> None:
        if epoch in report:
            print(f"{epoch + 1:>7}  {logs['loss']:>12.6f}  {logs['loss'] / t:>10.6f}")

    start = time.perf_counter()
    history = net.fit(X, Y, epochs=args.epochs, lr=args.lr, callback=show)
    elapsed = time.perf_counter() - start
    if len(history) == 0:
        print("\ntrained 0 epochs")
        return 0
    print(f"\ntrained {args.epochs} epochs in {elapsed:.3f} s; E went from {history[0]:.4f} "
          f"to {history[-1]:.4f}")

    diff = max(np.max(np.abs(g - g_ref)) for g, g_ref in zip(dW + db, dW_ref + db_ref))
    scale = max(np.max(np.abs(g_ref)) for g_ref in dW_ref + db_ref)
    print(f"gradient vs fastprop.reference: largest |difference| {diff:.3e} "
          f"(largest |entry| {scale:.3e}); E {E:.12g} vs {E_ref:.12g}")

    core = _seconds_per_call(lambda: net.gradient(X, Y))
    ref = _seconds_per_call(lambda: reference.gradient(W, b, net.activations, X, Y))
    print(f"one gradient of {t} samples: fastprop {core * 1e6:.1f} us, reference "
          f"{ref * 1e3:.1f} ms: {ref / core:.0f}x faster")
    ok = diff <= 1e-8 * max(scale, 1.0) and history[-1] < history[0]
    return 0 if ok else 1


def _seconds_per_call(fn: Callable[[], Any], min_time: float = 0.2) -> float:
    """Median time of one call, over repeats that take at least min_time in all."""
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 3:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# ---------------------------------------------------------------------- bench hook
def _bench(argv: list[str]) -> int:
    """Hand the arguments to ``fastprop.bench.main``, when that module exists."""
    try:
        bench = importlib.import_module(f"{__package__}.bench")
    except ModuleNotFoundError as error:
        if error.name != f"{__package__}.bench":
            raise
        print("python -m fastprop bench: the benchmarks (module fastprop.bench) are not part "
              "of this installation", file=sys.stderr)
        return 2
    try:
        return int(bench.main(argv) or 0)
    except SystemExit as exit_:
        return _exit_code(exit_)


# ---------------------------------------------------------------------- argparse helpers
def _natural(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return value


def _sizes(text: str) -> list[int]:
    """'64,32' -> [64, 32]; '' -> []."""
    try:
        sizes = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 64,32, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    return sizes


def _exit_code(exit_: SystemExit) -> int:
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=sys.stderr)
    return 1


def _os_message(error: OSError) -> str:
    if error.filename is not None:
        return f"{error.strerror or error}: {error.filename}"
    return str(error)
