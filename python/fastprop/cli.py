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

The task: a text target is classification; a numeric one is regression, unless its values
are integers with at most 20 distinct values (and at most one per two rows), which are
taken as classes. ``train`` prints what it decided and why; ``--task`` or ``--loss``
decides instead. ``--layers`` lists the hidden layer sizes in every command (as
scikit-learn's ``hidden_layer_sizes``): l_0 and l_n come from the data. ``train
--sample-weight COLUMN`` weights each training row by that column (which is then no feature).

Every error in a file, a column or an option ends the program with exit code 2 and a
one-line message, never a traceback; that includes a network, a target or a number of
epochs too large for the memory available, refused before anything is built. When the
reader of ``predict``'s output goes away (``predict ... | head -1``), the program ends
quietly with exit code 141, as SIGPIPE ends other tools; ``train`` and the demos drop
their report instead and finish their work (train still saves the model).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import decimal
import importlib
import math
import os
import stat
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

from . import __version__, _files, _npz, io, reference
from ._validate import available_memory
from .network import Network
from .optim import OPTIMIZERS

__all__ = ["main", "predict", "probabilities"]

CLASSIFICATION_LOSSES = ("cross_entropy", "binary_cross_entropy")
MAX_COUNT = 2**63 - 1  # the largest epochs, batch size, patience or layer size accepted
INFERRED_CLASSES = 20  # integer targets with at most this many distinct values are classes
BROKEN_PIPE = 141  # 128 + SIGPIPE: the status of a tool that SIGPIPE ended
REPORTING = ("demo", "demo-synthetic", "train")  # commands whose output is a report


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
        if args.command in REPORTING:
            with _reports_survive_their_readers():
                return args.run(args)
        return args.run(args)
    except BrokenPipeError:  # the reader of our output has gone: stop, and say nothing
        _discard(sys.stdout)
        return BROKEN_PIPE
    except (UsageError, ValueError, TypeError, OverflowError, OSError) as error:
        message = _os_message(error) if isinstance(error, OSError) else str(error)
        return _fail(args.command, f"error: {message}", 2)
    except MemoryError as error:
        return _fail(args.command, f"error: out of memory ({error or 'MemoryError'})", 2)
    except FloatingPointError as error:
        return _fail(args.command, f"training diverged: {error}", 1)
    except KeyboardInterrupt:
        return _fail(None, "\ninterrupted", 130)


def _fail(command: str | None, message: str, code: int) -> int:
    """Print the one-line message (unless standard error is gone too) and return ``code``."""
    try:
        prefix = f"python -m fastprop {command}: " if command else ""
        print(prefix + message.replace("\n", " ") if command else message, file=sys.stderr)
    except (OSError, ValueError):
        pass
    return code


def _discard(stream: Any) -> None:
    """Point ``stream``'s file descriptor at os.devnull, so that the interpreter's flush at
    exit does not report the broken pipe again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. captured)
        pass


class _Report:
    """A text stream for reports (train's and the demos' lines, the progress bar): when its
    reader has gone, writes are dropped, so that the work goes on (train still saves)."""

    def __init__(self, stream: Any) -> None:
        self.stream, self.broken = stream, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self.stream.write(text)
            except BrokenPipeError:
                self.broken = True
                _discard(self.stream)
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.broken = True
                _discard(self.stream)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextlib.contextmanager
def _reports_survive_their_readers() -> Iterator[None]:
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = _Report(stdout), _Report(stderr)
    try:
        yield
        sys.stdout.flush()
    finally:
        sys.stdout, sys.stderr = stdout, stderr


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
    demo.add_argument("--seed", type=_seed, default=0, help="split and initialisation seed")
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(run=run_demo)

    synthetic = commands.add_parser(
        "demo-synthetic", help="the same on generated data y = sin(pi x1) x2",
        description="Train a network on a generated data set with plain full-batch gradient "
                    "descent, cross-check its gradient against the NumPy reference and time "
                    "both.")
    synthetic.add_argument("--layers", type=_sizes, default=[16, 16], metavar="SIZES",
                           help="HIDDEN layer sizes, comma-separated (default 16,16; '' for "
                                "none); l_0 = 2 and l_n = 1 come from the data")
    synthetic.add_argument("--activation", default="tanh", choices=reference.ACTIVATIONS)
    synthetic.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    synthetic.add_argument("--samples", type=_natural, default=500, help="t (default 500)")
    synthetic.add_argument("--epochs", type=_natural, default=3000, help="default 3000")
    synthetic.add_argument("--lr", type=float, default=3e-4,
                           help="learning rate m (default 3e-4)")
    synthetic.add_argument("--seed", type=_seed, default=0,
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
    train.add_argument("--sample-weight", metavar="COLUMN", default=None,
                       help="a column of weights >= 0, one per row (not a feature): a weight "
                            "scales its row's term of the loss, 2 counts the row twice, 0 "
                            "leaves it out of training")
    train.add_argument("--task", default="auto", choices=("auto", "classification", "regression"),
                       help="default auto: classification for a text target or integers with "
                            f"at most {INFERRED_CLASSES} distinct values, else regression "
                            "(train prints what it decided)")
    train.add_argument("--loss", default="auto", choices=("auto", *reference.LOSSES),
                       help="default auto: cross_entropy for classification, mse for "
                            "regression")
    train.add_argument("--optimizer", default="adam", choices=list(OPTIMIZERS),
                       help="default adam")
    train.add_argument("--epochs", type=_natural, default=100, help="default 100")
    train.add_argument("--lr", type=float, default=None,
                       help="learning rate (default: the optimizer's)")
    train.add_argument("--weight-decay", type=_nonnegative, default=None, metavar="L2",
                       help="weight decay λ, added to the gradient as λ·p (decoupled for "
                            "adamw; default: the optimizer's, 0 except adamw's 0.01)")
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
    train.add_argument("--seed", type=_seed, default=0,
                       help="split, initialisation and shuffling seed (default 0)")
    train.add_argument("-o", "--output", default="model.npz", metavar="MODEL",
                       help="where to save the model (default model.npz)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--block-rows", type=_natural, default=None, metavar="N",
                       help="sum each minibatch's gradient in a fixed tree of blocks of N rows "
                            "(default: one pass; 64 under mpiexec with several processes, "
                            "where training is data-parallel: the same N gives the same model "
                            "on any number of processes)")
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
    predict.add_argument("--proba", action="store_true",
                         help="classifiers: also a column P(class) for every class, the "
                              "softmax (or sigmoid) of the output")
    predict.set_defaults(run=run_predict)

    export = commands.add_parser(
        "export", help="write a saved model as ONNX or as dependency-free C",
        description="Write MODEL as an ONNX graph (needs the onnx package: pip install "
                    "onnx) or as one C99/C++ header that needs only <math.h>. The "
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
    """Named columns of one data file, each of shape (t,): float64 for numbers, str (an
    object array, or the file's own str dtype) for text."""

    path: str
    names: list[str]
    columns: list[np.ndarray]
    default_target: list[str]  # the last column, or y's columns for a .npz
    index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.index = {name: j for j, name in enumerate(self.names)}

    @property
    def t(self) -> int:
        return len(self.columns[0]) if self.columns else 0

    def column(self, name: str) -> np.ndarray:
        j = self.index.get(name)
        if j is None:
            raise UsageError(f"column {name!r} not found in {self.path}; it has "
                             f"{_some(self.names)}")
        return self.columns[j]

    def numbers(self, names: Sequence[str], what: str) -> np.ndarray:
        """The columns as a (t, len(names)) float64 array; a text or non-finite cell is an error."""
        out = np.empty((self.t, len(names)))
        for j, name in enumerate(names):
            column = self.column(name)
            out[:, j] = column if column.dtype.kind in "biuf" else \
                _numeric(column, name, self.path, what)
        finite = np.isfinite(out).all(axis=0)  # one pass for all columns
        if not finite.all():
            j = int(np.argmin(finite))
            _numeric(self.column(names[j]), names[j], self.path, what)  # says where
        return out


def read_table(path: str) -> Table:
    """A CSV (header row), .npy (2-D) or .npz (X and y) file as named columns."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if path.endswith(".npy"):
        return _read_npy_table(path)
    if path.endswith(".npz"):
        return _read_npz_table(path)
    return _read_csv(path)


def _read_npy_table(path: str) -> Table:
    def check(npy: Any) -> None:  # before any data is read
        if len(npy.shape) != 2 or npy.dtype.kind not in "biuf":
            raise UsageError(f"{path}: expected a 2-D array of numbers (rows of samples), got "
                             f"shape {npy.shape} and dtype {npy.dtype}")

    A = _npz.read_npy(path, check)
    names = [f"x{j}" for j in range(A.shape[1])]
    return Table(path, names, [A[:, j].astype(np.float64) for j in range(A.shape[1])],
                 names[-1:])


def _read_npz_table(path: str) -> Table:
    """X and y of a .npz, each checked from the zip directory and its header before reading
    (other arrays are never read)."""
    with _npz.open_regular(path, "data file") as f:
        try:
            archive = _npz.Archive(f)
            if "X" not in archive.members:
                raise UsageError(f"{path}: expected arrays 'X' (and 'y'), found "
                                 f"{_some(list(archive.members)) or 'none'}")
            keys = ["X", "y"] if "y" in archive.members else ["X"]
            headers = {key: archive.header(key) for key in keys}
            X = headers["X"]
            if len(X.shape) != 2 or X.dtype.kind not in "biuf":
                raise UsageError(f"{path}: X must be a 2-D array of numbers (t, d), got shape "
                                 f"{X.shape} and dtype {X.dtype}")
            y = headers.get("y")
            if y is not None and (len(y.shape) not in (1, 2) or y.shape[0] != X.shape[0]
                                  or y.dtype.kind not in "biufU"):
                raise UsageError(f"{path}: y must have shape ({X.shape[0]},) or "
                                 f"({X.shape[0]}, k) to match X, of numbers or str; got shape "
                                 f"{y.shape} and dtype {y.dtype}")
            archive.check_sizes(keys, max_ratio=None)
            arrays = {key: archive.read(key, headers[key]) for key in keys}
        except _npz.DAMAGE as error:
            raise UsageError(f"{path} is not a readable .npz file: the archive is truncated or "
                             f"corrupted ({type(error).__name__}: {error})") from None
        except ValueError as error:
            raise UsageError(f"{path} is not a readable .npz file: {error}") from None
    X = arrays["X"]
    names = [f"x{j}" for j in range(X.shape[1])]
    columns = [X[:, j].astype(np.float64) for j in range(X.shape[1])]
    targets: list[str] = []
    if "y" in arrays:
        y = arrays["y"]
        targets = ["y"] if y.ndim == 1 else [f"y{j}" for j in range(y.shape[1])]
        columns += [_as_column(y)] if y.ndim == 1 else [_as_column(y[:, j])
                                                        for j in range(y.shape[1])]
    return Table(path, names + targets, columns, targets)


def _as_column(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64) if values.dtype.kind in "biuf" else values


def _read_csv(path: str) -> Table:
    """Linear in the size of the file: every row is read once, every column converted once
    (to float64 when all its cells are numbers, else kept as text)."""
    mode = os.stat(path).st_mode
    if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):  # a pipe streams a CSV; /dev/zero not
        raise UsageError(f"{path} is not a regular file or a pipe but "
                         f"{_files.file_kind(mode)}")
    names: list[str] | None = None
    rows: list[list[str]] = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        try:
            for row in reader:
                cells = [cell.strip() for cell in row]
                if not any(cells):
                    continue
                if names is None:
                    names = _header(cells, path)
                    continue
                if len(cells) != len(names):
                    raise UsageError(f"{path}, line {reader.line_num}: {len(cells)} fields, but "
                                     f"the header has {len(names)}")
                if "" in cells:
                    raise UsageError(f"{path}, line {reader.line_num}: column "
                                     f"{names[cells.index('')]!r} is empty (missing values are "
                                     f"not supported)")
                rows.append(cells)
        except csv.Error as error:
            raise UsageError(f"{path} is not a readable CSV file: line {reader.line_num}: "
                             f"{error}") from None
        except UnicodeDecodeError as error:
            utf16 = " (it looks like UTF-16)" if error.object[:2] in (b"\xff\xfe", b"\xfe\xff") \
                else ""
            raise UsageError(f"{path} is not a readable CSV file: it is not UTF-8 text{utf16}, "
                             f"byte 0x{error.object[error.start]:02x} cannot be decoded; save "
                             f"it as UTF-8") from None
    if names is None:
        raise UsageError(f"{path} is empty; expected a header row and data rows")
    if not rows:
        raise UsageError(f"{path} has a header but no data rows")
    columns = [_text_or_numbers(cells) for cells in zip(*rows)]
    del rows
    return Table(path, names, columns, names[-1:])


def _header(names: list[str], path: str) -> list[str]:
    if "" in names:
        raise UsageError(f"{path}: the header row must name every column; column "
                         f"{names.index('') + 1} has no name")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise UsageError(f"{path}: the header row must name every column once; {name!r} "
                             f"appears twice")
        seen.add(name)
    return names


def _text_or_numbers(cells: tuple[str, ...]) -> np.ndarray:
    """A column's cells as float64 when every one is a number, else as an object array of str
    (never a fixed-width str array, whose width one long cell would set for every row)."""
    try:
        return np.array(cells, dtype=np.float64)
    except ValueError:
        return np.array(cells, dtype=object)


def _some(names: Sequence[str], shown: int = 10) -> str:
    """'a', 'b', ... (N in all): a list for a one-line message."""
    listed = ", ".join(repr(name[:80]) for name in names[:shown])
    return listed + (f", ... ({len(names):,} in all)" if len(names) > shown else "")


def _numeric(column: np.ndarray, name: str, path: str, what: str) -> np.ndarray:
    """A column as float64; every entry must be a finite number."""
    if column.dtype.kind in "biuf":
        values = column.astype(np.float64)
    else:
        try:
            values = np.array(column.tolist(), dtype=np.float64)
        except ValueError:  # find the first cell that is not a number, for the message
            s = next(s for s, cell in enumerate(column.tolist()) if not _is_number(cell))
            raise UsageError(f"{what} column {name!r} of {path} must hold numbers; data row "
                             f"{s + 1} holds {str(column[s])[:80]!r}") from None
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise UsageError(f"{what} column {name!r} of {path} holds {str(column[bad[0]])!r} in "
                         f"data row {bad[0] + 1}; values must be finite numbers")
    return values


def _is_number(text: Any) -> bool:
    try:
        np.float64(text)
    except (ValueError, TypeError):
        return False
    return True


def _class_names(column: np.ndarray, name: str, path: str) -> np.ndarray:
    """Each entry's class name, as an object array of str: text as written, numbers written
    canonically (1.0 -> '1'); a number that is not finite is an error."""
    if column.dtype.kind not in "biuf":
        return np.array([str(cell) for cell in column.tolist()], dtype=object)
    values = _numeric(column, name, path, "target")
    return np.array([str(int(v)) if v.is_integer() else repr(v) for v in values.tolist()],
                    dtype=object)


def _numeric_sort_key(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _text_array(names: Sequence[str], what: str) -> np.ndarray:
    """``names`` as the fixed-width str array a model file stores; refused when one long name
    would make it out of proportion to the text (every entry takes the longest's width)."""
    width = max(map(len, names), default=0)
    total = sum(map(len, names))
    if len(names) * width > 8 * total + 2**20:
        longest = max(names, key=len)
        raise UsageError(f"{what}: {longest[:40]!r}... has {width:,} characters, and the model "
                         f"file would store all {len(names):,} names at that width "
                         f"({len(names) * width * 4 / 2**30:.1f} GiB); shorten it")
    return np.array(names, dtype=str).reshape(len(names))


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
    reason: str = ""  # why the task is what it is, for the user
    sample_weight: np.ndarray | None = None  # (t,), from --sample-weight
    weight_name: str | None = None  # its column


def prepare(table: Table, target: str | None, loss: str, train_rows: np.ndarray,
            task: str = "auto", weight: str | None = None) -> Prepared:
    """Features, targets and the standardisation fitted on ``train_rows``; ``weight`` names
    the column of sample weights, which is not a feature."""
    target_names = [target] if target is not None else table.default_target
    if not target_names:
        raise UsageError(f"{table.path} has no target: add an array y, or pass --target")
    if weight is not None and weight in target_names:
        raise UsageError(f"--sample-weight {weight!r} is the target column; name another "
                         f"column")
    targets = [table.column(name) for name in target_names]
    is_target = set(target_names) | ({weight} if weight is not None else set())
    feature_names = [name for name in table.names if name not in is_target]
    if not feature_names:
        raise UsageError(f"{table.path} has no feature columns besides the target")
    X = table.numbers(feature_names, "feature")
    task, loss, reason = decide_task(table, target_names, targets, task, loss)
    x_mean, x_scale = _standardisation(X[train_rows])
    extra = {"feature_names": _text_array(feature_names, f"{table.path}: a column name"),
             "target_names": _text_array(target_names, f"{table.path}: a column name"),
             "x_mean": x_mean, "x_scale": x_scale}
    if task == "classification":
        names = _class_names(targets[0], target_names[0], table.path)
        classes = sorted(set(names.tolist()), key=_numeric_sort_key)
        _check_classes(len(classes), table.t, target_names[0], targets[0].dtype.kind in "biuf")
        if loss == "binary_cross_entropy" and len(classes) != 2:
            raise UsageError(f"binary_cross_entropy needs exactly 2 classes in "
                             f"{target_names[0]!r}, found {len(classes)}")
        if len(classes) < 2:
            raise UsageError(f"the target {target_names[0]!r} has a single class "
                             f"{classes[0]!r}; nothing to learn")
        index = {name: k for k, name in enumerate(classes)}
        labels = np.fromiter((index[name] for name in names.tolist()), dtype=np.intp,
                             count=len(names))
        Y = labels.reshape(-1, 1).astype(np.float64) if loss == "binary_cross_entropy" else labels
        extra.update(task=np.array("classification"),
                     classes=_text_array(classes, f"{table.path}: a class name"))
        raw = names
    else:
        values = table.numbers(target_names, "target")
        y_mean, y_scale = _standardisation(values[train_rows])
        Y = (values - y_mean) / y_scale
        extra.update(task=np.array("regression"), y_mean=y_mean, y_scale=y_scale)
        raw = values
    return Prepared(X, (X - x_mean) / x_scale, Y, raw, loss, extra, reason,
                    None if weight is None else sample_weights(table, weight, train_rows),
                    weight)


def sample_weights(table: Table, name: str, train_rows: np.ndarray) -> np.ndarray:
    """The column ``name`` as weights (t,): finite numbers >= 0, not all 0 on the training rows."""
    w = table.numbers([name], "sample weight")[:, 0]
    negative = np.flatnonzero(w < 0)
    if negative.size:
        s = int(negative[0])
        raise UsageError(f"--sample-weight {name!r} must hold weights >= 0; data row {s + 1} "
                         f"has {float(w[s])!r}")
    if not np.any(w[train_rows] > 0):
        raise UsageError(f"--sample-weight {name!r} is 0 on every training row: nothing to "
                         f"learn from")
    return w



def decide_task(table: Table, target_names: list[str], targets: list[np.ndarray], task: str,
                loss: str) -> tuple[str, str, str]:
    """(task, loss, why): from --loss, else --task, else the target's values."""
    name = target_names[0]
    numeric = all(column.dtype.kind in "biuf" for column in targets)
    if loss != "auto":
        implied = "classification" if loss in CLASSIFICATION_LOSSES else "regression"
        if task not in ("auto", implied):
            raise UsageError(f"--task {task} and --loss {loss} disagree: {loss} is a loss for "
                             f"{implied}")
        task, reason = implied, f"--loss {loss}"
    elif task != "auto":
        reason = f"--task {task}"
    elif not numeric:
        task, reason = "classification", f"the target {name!r} holds text"
    else:
        task, reason = _task_of_numbers(table, target_names, targets)
    if task == "classification":
        if len(targets) != 1:
            raise UsageError(f"classification needs one target column, got {len(targets)}")
        if numeric:
            values = _numeric(targets[0], name, table.path, "target")
            fractional = np.flatnonzero(values != np.round(values))
            if fractional.size:
                s = int(fractional[0])
                raise UsageError(f"{reason} needs class labels, but the target {name!r} holds "
                                 f"non-integer numbers ({float(values[s])!r} in data row "
                                 f"{s + 1}), a continuous target: for regression, pass --task "
                                 f"regression")
    if loss == "auto":
        loss = "cross_entropy" if task == "classification" else "mse"
    return task, loss, reason


def _task_of_numbers(table: Table, target_names: list[str],
                     targets: list[np.ndarray]) -> tuple[str, str]:
    """Integers with few distinct values are classes; other numbers are a regression."""
    if len(targets) != 1:
        return "regression", f"{len(targets)} numeric target columns"
    name, values = target_names[0], targets[0]
    if not (np.all(np.isfinite(values)) and np.all(values == np.round(values))):
        return "regression", f"the target {name!r} holds numbers, not all integers"
    k = len(np.unique(values))
    if 2 <= k <= INFERRED_CLASSES and k <= table.t / 2:
        return "classification", (f"the target {name!r} holds {k} distinct integers "
                                  f"(--task regression fits them as numbers)")
    return "regression", (f"the target {name!r} holds {k:,} distinct integers (--task "
                          f"classification takes them as classes)")


def _check_classes(k: int, t: int, name: str, numeric: bool) -> None:
    """Refuse class counts that cannot be learned, or whose one-hot targets (t, k) and
    outputs would not fit in memory."""
    if k > 2 and k > t / 2:
        hint = "pass --task regression to fit them as numbers, or " if numeric else ""
        raise UsageError(f"the target {name!r} has {k:,} classes in {t:,} rows, more than one "
                         f"per two rows (at most {t // 2:,} here): it looks like an identifier "
                         f"or a measurement, not class labels; {hint}choose another column "
                         f"with --target")
    needed = 2 * t * k * 8  # one-hot targets and the outputs, float64
    available = available_memory()
    if available is not None and needed > available:
        raise UsageError(f"the target {name!r} has {k:,} classes: one-hot targets and outputs "
                         f"for {t:,} rows need {_gib(needed)}, more than the {_gib(available)} "
                         f"of memory available")


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


def _outputs(net: Network, extra: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """z_n (t, l_n) for raw X, in float64."""
    if "x_mean" in extra:
        X = (X - extra["x_mean"]) / extra["x_scale"]
    return net.forward(X).astype(np.float64)


def predict(net: Network, extra: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """Class names (t,) (an object array of str) for a classifier, values (t, l_n) for a
    regression, from raw X: what ``python -m fastprop predict`` writes, for a model ``train``
    saved, read with ``net, extra = fastprop.load(path, return_extra=True)``."""
    Z = _outputs(net, extra, X)
    if _task(net, extra) == "classification":
        index = Z.argmax(axis=1) if Z.shape[1] > 1 else (Z[:, 0] > 0).astype(np.intp)
        return np.array(_classes(net, extra), dtype=object)[index]
    if "y_mean" in extra:
        Z = Z * extra["y_scale"] + extra["y_mean"]
    return Z


def probabilities(net: Network, extra: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """A classifier's class probabilities (t, k) for raw X: the softmax of z_n, or for one
    output σ(−z), σ(z)."""
    Z = _outputs(net, extra, X)
    if Z.shape[1] == 1:  # σ(z) = (1 + tanh(z/2)) / 2, each side computed without cancellation
        return np.column_stack([(1 - np.tanh(Z[:, 0] / 2)) / 2, (1 + np.tanh(Z[:, 0] / 2)) / 2])
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _classes(net: Network, extra: dict[str, np.ndarray]) -> list[str]:
    if "classes" in extra:
        return [str(name) for name in extra["classes"].tolist()]
    l_n = net.layers[-1]
    return [str(j) for j in range(l_n if l_n > 1 else 2)]


def _task(net: Network, extra: dict[str, np.ndarray]) -> str:
    if "task" in extra:
        return str(extra["task"])
    return "classification" if net.loss_name in CLASSIFICATION_LOSSES else "regression"


def _check_extras(net: Network, extra: dict[str, np.ndarray], path: str) -> None:
    """The arrays `train` keeps beside a model, checked before `predict` uses them (a model
    saved by Network.save has none, and needs none)."""
    l_0, l_n = net.layers[0], net.layers[-1]
    task = extra.get("task")
    if task is not None and (task.dtype.kind != "U" or task.shape != ()
                             or str(task) not in ("classification", "regression")):
        raise UsageError(f"{path}: its extra array 'task' must be 'classification' or "
                         f"'regression', got {str(task)[:40]!r}")
    expected = {"feature_names": ("U", (l_0,)), "x_mean": ("f", (l_0,)),
                "x_scale": ("f", (l_0,)), "target_names": ("U", None)}
    if _task(net, extra) == "classification":
        expected["classes"] = ("U", (l_n if l_n > 1 else 2,))
    else:
        expected.update(y_mean=("f", (l_n,)), y_scale=("f", (l_n,)))
    for key, (kind, shape) in expected.items():
        A = extra.get(key)
        if A is None:
            continue
        if A.dtype.kind != kind or (A.shape != shape if shape else A.ndim != 1) \
                or (kind == "f" and not np.all(np.isfinite(A))):
            what = "str" if kind == "U" else "finite numbers"
            raise UsageError(f"{path}: its extra array {key!r} must hold {what} of shape "
                             f"{shape or '(k,)'} for this network, got dtype {A.dtype} and "
                             f"shape {A.shape}")


def score(predicted: np.ndarray, actual: np.ndarray) -> str:
    """'accuracy 0.967' for class names; 'R² 0.912, RMSE 1.23' for values."""
    if predicted.dtype.kind in "OU":
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


# ---------------------------------------------------------------------- sizes
def _gib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB"


def _check_network(layers: Sequence[int], bias: bool, dtype: str, optimizer: str, rows: int,
                   *, hidden_only: bool = False) -> None:
    """Refuse, before building anything, a network whose training cannot fit in memory: the
    parameters, their gradient and the optimiser's state, and the activations of a batch."""
    n_params = sum(l_out * (l_in + bias) for l_in, l_out in zip(layers, layers[1:]))
    state = {"sgd": 0, "momentum": 1, "nesterov": 1}.get(optimizer, 2)
    needed = (n_params * (2 + state) + 3 * rows * sum(layers)) * np.dtype(dtype).itemsize
    available = available_memory()
    if available is not None and needed > available:
        shape = "hidden layers " + ",".join(map(str, layers[1:-1])) if hidden_only \
            else "layers " + ", ".join(map(str, layers))
        raise UsageError(f"--layers: a network with {shape} has {'at least ' * hidden_only}"
                         f"{n_params:,} parameters; training it needs "
                         f"{'at least ' * hidden_only}{_gib(needed)}, more than the "
                         f"{_gib(available)} of memory available")


def _check_epochs(epochs: int, patience: int | None) -> None:
    """fit keeps the loss and time of every epoch: refuse more epochs than memory can hold
    (with --patience, training may stop sooner)."""
    needed = 16 * epochs
    available = available_memory()
    if patience is None and available is not None and needed > available:
        raise UsageError(f"--epochs {epochs:,}: fit keeps the loss and the time of every epoch, "
                         f"16 bytes each ({_gib(needed)}), more than the {_gib(available)} of "
                         f"memory available")


def _check_output(path: str) -> None:
    """Refuse, before training, a model path that cannot be written (save, at the end,
    writes a temporary file in the same directory and renames it)."""
    target = path if path.endswith(".npz") else f"{path}.npz"
    directory = os.path.dirname(os.path.abspath(target))
    if os.path.isdir(target):
        raise UsageError(f"-o {path}: {target} is a directory")
    if not os.path.isdir(directory):
        raise UsageError(f"-o {path}: no such directory {directory}")
    try:
        with tempfile.TemporaryFile(dir=directory, prefix=".fastprop-"):
            pass
    except OSError as error:
        raise UsageError(f"-o {path}: cannot write in {directory} "
                         f"({error.strerror or error})") from None


# ---------------------------------------------------------------------- train, predict
def run_train(args: argparse.Namespace) -> int:
    comm = _mpi_world()
    if args.optimizer == "lm" and args.lr is not None:
        raise UsageError("--lr does not apply to --optimizer lm (its step comes from the "
                         "damping mu)")
    if args.optimizer == "lm" and args.weight_decay is not None:
        raise UsageError("--weight-decay does not apply to --optimizer lm")
    _check_output(args.output)
    _check_epochs(args.epochs, args.patience)
    _check_network([1, *args.layers, 1], args.bias, args.dtype, args.optimizer, 1,
                   hidden_only=True)  # before reading the data
    table = read_table(args.data)
    train_rows, test_rows = split(table.t, args.test_fraction, args.seed)
    data = prepare(table, args.target, args.loss, train_rows, args.task, args.sample_weight)
    activation = args.activation.split(",") if "," in args.activation else args.activation
    layers = [data.X.shape[1], *args.layers, output_size(data)]
    batch_size = args.batch_size if args.batch_size is not None else (
        0 if args.optimizer == "lm" else 32)  # lm works on the whole batch
    batch_size = min(batch_size, len(train_rows))  # more rows than there are: the full batch
    _check_network(layers, args.bias, args.dtype, args.optimizer,
                   batch_size or len(train_rows))
    net = Network(layers, activation, bias=args.bias, dtype=args.dtype, seed=args.seed,
                  loss=data.loss)
    _describe(table, data, train_rows, test_rows, net)
    options: dict[str, Any] = dict(optimizer=args.optimizer, batch_size=batch_size or None,
                                   seed=args.seed, verbose=not args.quiet)
    if args.weight_decay is not None:
        options.update(weight_decay=args.weight_decay)
    if data.sample_weight is not None:
        options.update(sample_weight=data.sample_weight[train_rows])
    if args.patience is not None:  # more patience than epochs: never stops early, as with all
        options.update(validation_fraction=0.1, patience=min(args.patience, max(args.epochs, 1)))
    start = time.perf_counter()
    if comm is None:
        history = net.fit(data.X[train_rows], data.Y[train_rows], args.epochs, args.lr,
                          block_rows=args.block_rows, **options)
    else:  # data-parallel: every rank read the data; each trains on its share of the rows
        from . import distributed

        lo = len(train_rows) * comm.rank // comm.size
        hi = len(train_rows) * (comm.rank + 1) // comm.size
        mine = train_rows[lo:hi]
        history = distributed.fit(net, data.X[mine], data.Y[mine], args.epochs, args.lr,
                                  block_rows=args.block_rows or 64, comm=comm, **options)
        if comm.rank != 0:
            return 0
        print(f"data-parallel: {comm.size} processes, blocks of {args.block_rows or 64} rows")
    print(f"trained {len(history)} epochs in {time.perf_counter() - start:.2f} s; loss "
          f"{history[0]:.4g} -> {history[-1]:.4g}" if len(history) else "trained 0 epochs")
    _report_scores(net, data, train_rows, test_rows)
    path = io.save(net, args.output, extra=data.extra)
    print(f"saved {path}")
    return 0


def _mpi_world() -> Any:
    """MPI's COMM_WORLD when this process is one of several that mpiexec started (MPICH's,
    Open MPI's and PMIx's variables say so), else None. On ranks other than 0 the report is
    silenced: rank 0 prints it, and every rank raises the same errors."""
    size = next((os.environ[key] for key in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE")
                 if key in os.environ), "1")
    if not size.isdigit() or int(size) <= 1:
        return None
    try:
        from mpi4py import MPI
    except ImportError:
        raise UsageError("started by mpiexec with several processes, but mpi4py is not "
                         "installed: pip install mpi4py mpich") from None
    comm = MPI.COMM_WORLD
    if comm.rank != 0:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (for the rest of the process)
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    return comm


def run_predict(args: argparse.Namespace) -> int:
    net, extra = io.load(args.model, return_extra=True)
    _check_extras(net, extra, args.model)
    classifier = _task(net, extra) == "classification"
    if args.proba and not classifier:
        raise UsageError(f"--proba needs a classifier; {args.model} holds a regression model")
    table = read_table(args.data)
    if "feature_names" in extra:
        features = extra["feature_names"].tolist()
    elif len(table.names) in (net.layers[0], net.layers[0] + 1):
        features = table.names[:net.layers[0]]  # a model saved without column names
    else:
        raise UsageError(f"{args.data} has {len(table.names)} columns; the model takes "
                         f"{net.layers[0]} features")
    X = table.numbers(features, "feature")
    predicted = predict(net, extra, X)
    target_names = extra.get("target_names", np.array(["prediction"])).tolist()
    actual = None
    if all(name in table.index for name in target_names):  # read before writing anything
        actual = (_class_names(table.column(target_names[0]), target_names[0], args.data)
                  if classifier else table.numbers(target_names, "target"))
    if args.proba:
        header = [target_names[0], *(f"P({name})" for name in _classes(net, extra))]
        rows: Iterable[list[str]] = (
            [name, *map(repr, p)]
            for name, p in zip(predicted.tolist(), probabilities(net, extra, X).tolist()))
    elif classifier:
        header = target_names[:1]
        rows = ([name] for name in predicted.tolist())
    else:
        header = target_names if predicted.shape[1] == len(target_names) \
            else [f"prediction{j}" for j in range(predicted.shape[1])]
        rows = ([repr(v) for v in row] for row in predicted.tolist())
    if args.output:
        with open(args.output, "w", newline="", encoding="utf-8") as f:
            _write_csv(f, header, rows)
        print(f"wrote {len(predicted)} predictions to {args.output}", file=sys.stderr)
    else:
        _write_csv(sys.stdout, header, rows)
    if actual is not None:
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
    output = args.output if args.output is not None else os.path.splitext(args.model)[0] + (
        ".h" if output_format == "c" else ".onnx")
    if not output:
        raise UsageError("-o/--output must name the file to write, got ''")
    with contextlib.suppress(OSError):  # no output yet: nothing to compare
        if os.path.samefile(output, args.model):
            raise UsageError(f"the output {output} is the model file {args.model} itself; "
                             f"writing it would replace the model: pass another -o PATH")
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


def _write_csv(f: Any, header: list[str], rows: Iterable[list[str]]) -> None:
    writer = csv.writer(f, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)


def _describe(table: Table, data: Prepared, train_rows: np.ndarray, test_rows: np.ndarray,
              net: Network) -> None:
    targets = data.extra["target_names"].tolist()
    if "classes" in data.extra:
        classes = data.extra["classes"].tolist()
        shown = ", ".join(name[:40] for name in classes[:10]) + (", ..." if len(classes) > 10
                                                                 else "")
        what = f"{len(classes)} classes: {shown}"
    else:
        what = "regression"
    shown = ", ".join(name[:40] for name in targets[:10]) + (", ..." if len(targets) > 10 else "")
    print(f"data: {table.path}, {table.t} rows, {data.X.shape[1]} features -> {shown} ({what})")
    if data.reason:
        print(f"task: {data.extra['task']}, {data.reason}")
    print(f"split: {len(train_rows)} training rows, {len(test_rows)} test rows")
    if data.sample_weight is not None:
        w = data.sample_weight[train_rows]
        print(f"sample weights: column {data.weight_name!r}, total "
              f"{w.sum():.6g} over the training rows ({int(np.sum(w == 0))} rows of weight 0)")
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
    _check_epochs(args.epochs, None)
    table = read_table(iris_path())
    table.path = "iris.csv (built in: Fisher's Iris data, 1936)"
    train_rows, test_rows = split(table.t, 0.2, args.seed)
    data = prepare(table, None, "cross_entropy", train_rows)
    data.reason = ""  # no options to report
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
    layers = [2, *args.layers, 1]  # l_0 and l_n from the data, as in train
    _check_epochs(args.epochs, None)
    _check_network(layers, True, args.dtype, "sgd", args.samples)
    X, Y = make_synthetic(args.samples, args.seed)
    t = len(X)
    net = Network(layers, args.activation, bias=True, dtype=args.dtype, seed=args.seed,
                  loss="sse")
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
    history = net.fit(X, Y, epochs=args.epochs, lr=args.lr, optimizer="sgd", callback=show)
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
def _whole(text: str) -> int:
    """A whole number as written: '100', '1e6' or '1_000' (exactly, however large)."""
    try:
        value = decimal.Decimal(text.strip().replace("_", ""))
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError
    except (ValueError, ArithmeticError):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value.adjusted() > 40:  # beyond every bound: do not build a huge int
        raise argparse.ArgumentTypeError(f"{text[:50]!r} is far too large")
    return int(value)


def _natural(text: str) -> int:
    """A count (epochs, rows, patience): a whole number in [0, 2**63 - 1]."""
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    if value > MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected a number <= 2**63 - 1, got {text}")
    return value


def _seed(text: str) -> int:
    value = _whole(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**64), got {text}")
    return value


def _nonnegative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _sizes(text: str) -> list[int]:
    """'64,32' -> [64, 32]; '' -> []."""
    try:
        sizes = [_whole(v) for v in text.split(",") if v.strip()]
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer sizes such as 64,32, got {text!r}") from None
    if any(size < 1 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be >= 1, got {text!r}")
    if any(size > MAX_COUNT for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be <= 2**63 - 1, got {text!r}")
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
