"""The state of a network, one function for pickling and the .npz files of :mod:`fastprop.io`.

:func:`state` is everything that makes a network: its description and a copy of its
parameters. ``Network.__getstate__`` pickles it (with the history); :func:`save` writes it
as the arrays of the file format (documented in :mod:`fastprop.io`), and :func:`load` reads
them back into a state that ``fastprop.network.network_from_state`` turns into a network,
the same function that unpickling runs. Nothing here imports the network: the callers pass
it in, so that the network, the format and :mod:`fastprop.io` depend on this module and
never on each other in a circle.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from ._validate import check_dtype, message, shown, typed

__all__ = ["FORMAT", "VERSION", "state", "save", "load"]

FORMAT = "fastprop"
VERSION = 1
_EXTRA = "extra_"
_REQUIRED = ("format", "version", "layers", "activations", "bias", "loss", "dtype", "seed",
             "params")

T = TypeVar("T")


def state(net: Any) -> dict[str, Any]:
    """The network's description and a copy of its parameters, as plain Python and NumPy.

    Keys: ``layers`` (tuple of int), ``activations`` (list of str, one per hidden layer),
    ``bias`` (bool), ``loss``, ``dtype`` (its name), ``seed`` (int) and ``params`` (a copy of
    the parameter buffer, in the network's dtype).
    """
    return {"layers": tuple(net.layers), "activations": list(net.activations),
            "bias": bool(net.bias), "loss": net.loss_name, "dtype": net.dtype.name,
            "seed": int(net.seed), "params": net._snapshot()}


# ---------------------------------------------------------------------- writing
def save(net: Any, path: str | os.PathLike[str], *,
         extra: Mapping[str, Any] | None = None) -> str:
    """Write :func:`state` of ``net`` and the ``extra`` arrays to ``path`` (".npz" appended
    when missing), atomically; returns the path written."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(message("path", "a str or os.PathLike of str", typed(path)))
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = _arrays(state(net))
    arrays.update(_extra_arrays(extra))
    _write_atomically(path, arrays)
    return path


def _arrays(st: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state as the arrays of the file format, version 1."""
    return {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "layers": np.array(st["layers"], dtype=np.int64),
        "activations": np.array(st["activations"], dtype=str).reshape(len(st["activations"])),
        "bias": np.array(st["bias"]),
        "loss": np.array(st["loss"]),
        "dtype": np.array(st["dtype"]),
        "seed": np.array(st["seed"], dtype=np.uint64),
        "params": st["params"],
    }


def _extra_arrays(extra: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise TypeError(message("extra", "a mapping of names to arrays", typed(extra)))
    out = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(message("extra names", "identifiers", shown(name)))
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(message(f"extra[{name!r}]", "numbers or str (e.g. np.asarray(values, "
                                    "dtype=str)): an object array would need pickle",
                                    f"dtype {array.dtype}", verb="hold"))
        out[_EXTRA + name] = array
    return out


def _write_atomically(path: str, arrays: dict[str, np.ndarray]) -> None:
    """np.savez into a temporary file next to ``path``, fsync, then os.replace over it."""
    directory, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(directory, f".{name}.{secrets.token_hex(6)}.tmp")
    # os.open with 0o666 lets the umask set the permissions, as for any new file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)  # type: ignore[arg-type]  # (numpy's stub)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------- reading
def load(path: str | os.PathLike[str],
         make: Callable[[dict[str, Any]], T]) -> tuple[T, dict[str, np.ndarray]]:
    """(make(state), extra arrays) from a file written by :func:`save`.

    ``make`` builds the network from the state read; whatever it or the checks of the file
    raise as ValueError or TypeError becomes a ValueError naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and not str(path).endswith(".npz") \
            and os.path.exists(f"{path}.npz"):
        path = f"{path}.npz"
    arrays = _read_npz(path)
    try:
        net = make(_state_from(arrays))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a valid fastprop model: {error}") from None
    extra = {key[len(_EXTRA):]: value for key, value in arrays.items() if key.startswith(_EXTRA)}
    return net, extra


def _read_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of the archive, read eagerly so that corruption shows here."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such model file: {path}")
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{path} is not a fastprop model: not an .npz (zip) archive"
                         f"{_sniff(path)}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as error:  # e.g. an object array: numpy refuses to unpickle it
        raise ValueError(f"{path} is not a valid fastprop model: {error}") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError, RuntimeError,
            NotImplementedError) as error:
        raise ValueError(f"{path} is not a valid fastprop model: the archive is truncated or "
                         f"corrupted ({type(error).__name__}: {error})") from None


def _sniff(path: str) -> str:
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":
        return " (it looks like a pickle, which is never loaded)"
    if head[:2] == b"PK":
        return " (it looks like a truncated or damaged zip archive)"
    return ""


def _state_from(arrays: dict[str, np.ndarray]) -> dict[str, Any]:
    """The state the arrays of a file hold, each array checked against the format and the
    others; the names in it are checked where the network is made."""
    missing = [key for key in _REQUIRED if key not in arrays]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    fmt = _scalar_str(arrays, "format")
    if fmt != FORMAT:
        raise ValueError(f"format is {fmt!r}, expected {FORMAT!r}")
    version = _scalar(arrays, "version", "iu")
    if version != VERSION:
        raise ValueError(f"format version {version} is not supported; this fastprop reads "
                         f"version {VERSION}")
    stored_layers = arrays["layers"]
    if stored_layers.ndim != 1 or stored_layers.dtype.kind not in "iu" \
            or len(stored_layers) < 2 or np.any(stored_layers < 1):
        raise ValueError(message("layers", "at least 2 positive integers",
                                 shown(stored_layers)))
    layers = tuple(int(l_i) for l_i in stored_layers)
    activations = arrays["activations"]
    if activations.dtype.kind != "U" or activations.shape != (len(layers) - 2,):
        raise ValueError(message("activations", f"{len(layers) - 2} str (one per hidden layer)",
                                 f"dtype {activations.dtype} and shape {activations.shape}"))
    bias = bool(_scalar(arrays, "bias", "b"))
    dtype = check_dtype(_scalar_str(arrays, "dtype"))
    params = arrays["params"]
    n_params = sum(l_out * l_in + (l_out if bias else 0)
                   for l_in, l_out in zip(layers[:-1], layers[1:]))
    if params.dtype.kind != "f" or params.dtype.itemsize != dtype.itemsize:
        raise ValueError(message("params", dtype.name, str(params.dtype)))
    if params.shape != (n_params,):
        raise ValueError(message("params", f"shape ({n_params},) for layers {layers} "
                                 f"{'with' if bias else 'without'} bias", str(params.shape),
                                 verb="have"))
    return {"layers": layers, "activations": [str(name) for name in activations], "bias": bias,
            "loss": _scalar_str(arrays, "loss"), "dtype": dtype.name,
            "seed": int(_scalar(arrays, "seed", "iu")), "params": params}


def _scalar(arrays: dict[str, np.ndarray], key: str, kinds: str) -> Any:
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(message(key, f"a single value of kind {kinds!r}",
                                 f"dtype {value.dtype} and shape {value.shape}"))
    return value.item()


def _scalar_str(arrays: dict[str, np.ndarray], key: str) -> str:
    return str(_scalar(arrays, key, "U"))
