"""What the ONNX and C exporters share: the preprocessing a model file carries, the
probabilities of the classification losses, and writing a file with a clear error."""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._npz import file_kind
from ..network import Network

# The output link of each classification loss: the second output of an exported model.
PROBABILITIES = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
REGRESSION_LOSSES = ("sse", "mse")

# The keys of ``extra`` (as fastprop.load(path, return_extra=True) returns them for a model
# trained by `python -m fastprop train`) that an export understands.
EXTRA_KEYS = ("x_mean", "x_scale", "y_mean", "y_scale", "feature_names", "target_names",
              "classes", "task")


@dataclass(frozen=True)
class Preprocessing:
    """What surrounds the network in a model file, checked against the network.

    a_0 = (x − x_mean) / x_scale before the first layer, and y = z_n ⊙ y_scale + y_mean
    after the last (each part absent when None), with the names that go with them.
    """

    x_mean: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    task: str | None = None

    @property
    def standardises_input(self) -> bool:
        return self.x_mean is not None or self.x_scale is not None

    @property
    def standardises_output(self) -> bool:
        return self.y_mean is not None or self.y_scale is not None


def check_net(net: Any) -> Network:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
    return net


def read_extra(net: Network, extra: Mapping[str, Any] | None) -> Preprocessing:
    """The standardisation and names in ``extra``, each checked against ``net``.

    Every key must be one of :data:`EXTRA_KEYS`: a key that would change the predictions
    but that the exporter does not know is refused rather than left out of the export.
    """
    if extra is None:
        return Preprocessing()
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping of names to arrays (as "
                        f"fastprop.load(path, return_extra=True) returns), got "
                        f"{type(extra).__name__}")
    unknown = [key for key in extra if key not in EXTRA_KEYS]
    if unknown:
        raise ValueError(f"extra has key(s) {', '.join(map(repr, unknown))} that the export "
                         f"does not know how to apply; it understands "
                         f"{', '.join(EXTRA_KEYS)}")
    l_0, l_n = net.layers[0], net.layers[-1]
    classification = net.loss_name in PROBABILITIES
    task = extra.get("task")
    if task is not None:
        task = str(np.asarray(task))
        if task not in ("classification", "regression"):
            raise ValueError(f"extra['task'] must be 'classification' or 'regression', got "
                             f"{task!r}")
        if (task == "classification") != classification:
            raise ValueError(f"extra['task'] is {task!r} but the network's loss is "
                             f"{net.loss_name!r}")
    y_given = [key for key in ("y_mean", "y_scale") if key in extra]
    if y_given and classification:
        raise ValueError(f"extra[{y_given[0]!r}] de-standardises a regression output, but the "
                         f"network's loss is {net.loss_name!r} (a classifier)")
    classes = _names(extra, "classes", None)
    if classes is not None:
        if not classification:
            raise ValueError(f"extra['classes'] names the classes of a classifier, but the "
                             f"network's loss is {net.loss_name!r}")
        expected = 2 if net.loss_name == "binary_cross_entropy" and l_n == 1 else l_n
        if len(classes) != expected:
            raise ValueError(f"extra['classes'] must name {expected} classes for l_n = {l_n} "
                             f"and loss {net.loss_name!r}, got {len(classes)}")
    return Preprocessing(
        x_mean=_vector(extra, "x_mean", l_0, "l_0"),
        x_scale=_vector(extra, "x_scale", l_0, "l_0", nonzero=True),
        y_mean=_vector(extra, "y_mean", l_n, "l_n"),
        y_scale=_vector(extra, "y_scale", l_n, "l_n", nonzero=True),
        feature_names=_names(extra, "feature_names", l_0),
        target_names=_names(extra, "target_names", None),
        classes=classes, task=task)


def _vector(extra: Mapping[str, Any], key: str, size: int, what: str,
            nonzero: bool = False) -> np.ndarray | None:
    if key not in extra:
        return None
    value = np.asarray(extra[key])
    if value.dtype.kind not in "biuf":
        raise TypeError(f"extra[{key!r}] must hold real numbers, got dtype {value.dtype}")
    if value.shape != (size,):
        raise ValueError(f"extra[{key!r}] must have shape ({size},) ({what} = {size}), got "
                         f"{value.shape}")
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"extra[{key!r}] must be finite, got {value}")
    if nonzero and np.any(value == 0):
        raise ValueError(f"extra[{key!r}] divides, so it must not hold 0; got {value}")
    return value


def _names(extra: Mapping[str, Any], key: str, size: int | None) -> tuple[str, ...] | None:
    if key not in extra:
        return None
    value = np.asarray(extra[key])
    if value.ndim != 1 or value.dtype.kind not in "Ubiuf":
        raise ValueError(f"extra[{key!r}] must be a 1-D array of names, got dtype "
                         f"{value.dtype} and shape {value.shape}")
    if size is not None and len(value) != size:
        raise ValueError(f"extra[{key!r}] must have {size} entries, got {len(value)}")
    return tuple(str(name) for name in value.tolist())


def write_file(path: str | os.PathLike[str], data: bytes, what: str) -> str:
    """Write ``data`` to ``path`` atomically (a temporary file beside it, then a rename).

    What may be at ``path`` already: nothing, or a regular file, which is replaced. A
    symbolic link is written through: the file it leads to is replaced (atomically, by a
    temporary file beside that file), and the link stays. Anything else (a directory, a
    device, a FIFO, a socket, or a link to one) is refused, since a rename would put a
    regular file in its place.

    Raises the OSError subclass of the failure (PermissionError, FileNotFoundError,
    IsADirectoryError, ...) with a message that names ``what`` and the path.
    """
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike of str, got {type(path).__name__}")
    if not path:
        raise ValueError(f"path must name the file to write the {what} to, got ''")
    target = os.path.realpath(path) if os.path.islink(path) else path
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as error:
        raise _os_error(type(error), error.errno, f"cannot write the {what} to {path}: "
                                                  f"{error.strerror or error}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise _os_error(IsADirectoryError, errno.EISDIR,
                        f"cannot write the {what} to {path}: it is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        link = f" (a symbolic link to {target})" if target != path else ""
        raise _os_error(OSError, errno.EINVAL,
                        f"cannot write the {what} to {path}{link}: it is {file_kind(mode)}, "
                        f"not a regular file, and writing would replace it")
    directory, name = os.path.split(os.path.abspath(target))
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.remove(tmp)
            raise
    except OSError as error:
        reason = error.strerror or str(error)
        if isinstance(error, FileNotFoundError):
            if os.path.isdir(directory):  # e.g. /proc: there, but no file can be made in it
                reason = f"no file can be created in the directory {directory} ({reason})"
            else:
                reason = f"the directory {directory} does not exist"
        raise _os_error(type(error), error.errno,
                        f"cannot write the {what} to {path}: {reason}") from None
    return path


def _os_error(cls: type[OSError], code: int | None, message: str) -> OSError:
    """An OSError whose str() is the message alone, with the errno kept as an attribute."""
    error = cls(message)
    error.errno = code
    return error


def describe_layers(net: Network) -> str:
    """'4, 16, 3'."""
    return ", ".join(str(l_i) for l_i in net.layers)
