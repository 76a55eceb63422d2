"""Saving and loading networks: one .npz file per network, readable without pickle.

The format, version 1
---------------------
A NumPy ``.npz`` archive (a zip of ``.npy`` arrays, as written by :func:`numpy.savez`) with
these arrays; strings are fixed-width unicode arrays (dtype ``<U…``), never object arrays,
so the file loads with ``allow_pickle=False``:

===============  ===================  ================================================
key              dtype, shape         meaning
===============  ===================  ================================================
``format``       str, ()              always ``"fastprop"``
``version``      int64, ()            1
``layers``       int64, (n+1,)        (l_0, ..., l_n)
``activations``  str, (n−1,)          σ_1 ... σ_{n−1}, one name per hidden layer
``bias``         bool, ()             whether every layer has b_i
``loss``         str, ()              the loss name, e.g. ``"sse"``
``dtype``        str, ()              ``"float64"`` or ``"float32"``
``seed``         uint64, ()           the initialisation seed (``net.seed``)
``params``       float64 or float32,  the parameter buffer ``net.params`` in the
                 (P,)                 network's dtype: W_0, b_0, W_1, b_1, ... (no b_i
                                      without bias), each W_i row-major;
                                      P = Σ_i l_{i+1} l_i (+ l_{i+1} with bias)
``extra_NAME``   any but object       optional user data: ``save(..., extra={"classes":
                                      a})`` stores ``a`` as ``extra_classes``
===============  ===================  ================================================

Other keys are ignored by :func:`load`, so later minor additions stay readable. A reader
of another language needs only a zip and an ``.npy`` parser.

:func:`save` appends ``".npz"`` to a name without it, as :func:`numpy.savez` does, and
writes atomically (a temporary file in the same directory, fsync, ``os.replace``).
:func:`load` checks every array against the others and raises ``ValueError`` naming the
problem for anything else: a truncated or corrupted archive, a pickle, an object array,
another format or version, a missing key, a wrong ``params`` length, an unknown name.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import zipfile
from collections.abc import Mapping
from typing import Any, Literal, overload

import numpy as np

from .network import Network

__all__ = ["FORMAT", "VERSION", "save", "load"]

FORMAT = "fastprop"
VERSION = 1
_EXTRA = "extra_"
_REQUIRED = ("format", "version", "layers", "activations", "bias", "loss", "dtype", "seed",
             "params")


def save(net: Network, path: str | os.PathLike[str], *,
         extra: Mapping[str, np.ndarray] | None = None) -> str:
    """Write ``net`` to ``path`` in the fastprop .npz format (see the module docstring).

    The file is written atomically: to a temporary file in the same directory, flushed to
    disk, then renamed over ``path``, so a crash leaves either the old file or the new one,
    never a half-written model.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike
        Where to write. As with :func:`numpy.savez`, ``".npz"`` is appended when the name
        does not already end with it.
    extra : mapping of str to array-like, optional
        Additional arrays stored alongside (e.g. class names), each under the key
        ``"extra_" + name``; read them back with ``load(path, return_extra=True)``. Names
        must be identifiers; arrays must not be object arrays (store text as ``str``).

    Returns
    -------
    str
        The path actually written (with ``".npz"``).
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(f"path must be a str or os.PathLike of str, got {type(path).__name__}")
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = {
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "layers": np.array(net.layers, dtype=np.int64),
        "activations": np.array(net.activations, dtype=str).reshape(len(net.activations)),
        "bias": np.array(net.bias),
        "loss": np.array(net.loss_name),
        "dtype": np.array(net.dtype.name),
        "seed": np.array(net.seed, dtype=np.uint64),
        "params": net._snapshot(),
    }
    arrays.update(_extra_arrays(extra))
    _write_atomically(path, arrays)
    return path


@overload
def load(path: str | os.PathLike[str], return_extra: Literal[False] = ...) -> Network: ...
@overload
def load(path: str | os.PathLike[str],
         return_extra: Literal[True]) -> tuple[Network, dict[str, np.ndarray]]: ...


def load(path: str | os.PathLike[str],
         return_extra: bool = False) -> Network | tuple[Network, dict[str, np.ndarray]]:
    """Read a network written by :func:`save`; the parameters are restored bit for bit.

    Nothing in the file is unpickled or executed: it is opened with
    ``np.load(path, allow_pickle=False)`` and every array is checked before use.

    Parameters
    ----------
    path : str or os.PathLike
        The file. When it does not exist and its name lacks ``".npz"``, ``path + ".npz"``
        is tried, mirroring :func:`save`.
    return_extra : bool, default False
        Also return the ``extra`` arrays given to :func:`save`, as a dict (empty if none).

    Returns
    -------
    Network, or (Network, dict of str to ndarray) with ``return_extra=True``

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    ValueError
        When the file is not a fastprop model: not an .npz archive, truncated or corrupted,
        a pickle, another format or version, a missing key, or arrays that do not fit
        together (e.g. ``params`` of the wrong length for ``layers``). The message names
        the file and what is wrong.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and not str(path).endswith(".npz") \
            and os.path.exists(f"{path}.npz"):
        path = f"{path}.npz"
    arrays = _read_npz(path)
    try:
        net = _network_from(arrays)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a valid fastprop model: {error}") from None
    if not return_extra:
        return net
    extra = {key[len(_EXTRA):]: value for key, value in arrays.items() if key.startswith(_EXTRA)}
    return net, extra


# ---------------------------------------------------------------------- writing
def _extra_arrays(extra: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    if extra is None:
        return {}
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping of names to arrays, got {type(extra).__name__}")
    out = {}
    for name, value in extra.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"extra names must be identifiers, got {name!r}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"extra[{name!r}] is an object array, which would need pickle; "
                            f"store numbers or str (e.g. np.asarray(values, dtype=str))")
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


def _network_from(arrays: dict[str, np.ndarray]) -> Network:
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
        raise ValueError(f"layers must be at least 2 positive integers, got {stored_layers!r}")
    layers = [int(l_i) for l_i in stored_layers]
    activations = arrays["activations"]
    if activations.dtype.kind != "U" or activations.shape != (len(layers) - 2,):
        raise ValueError(f"activations must be {len(layers) - 2} str (one per hidden layer), "
                         f"got dtype {activations.dtype} and shape {activations.shape}")
    bias = _scalar(arrays, "bias", "b")
    dtype = _scalar_str(arrays, "dtype")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    params = arrays["params"]
    n_params = sum(l_out * l_in + (l_out if bias else 0)
                   for l_in, l_out in zip(layers[:-1], layers[1:]))
    if params.dtype.kind != "f" or params.dtype.itemsize != np.dtype(dtype).itemsize:
        raise ValueError(f"params must be {dtype}, got {params.dtype}")
    if params.shape != (n_params,):
        raise ValueError(f"params must have shape ({n_params},) for layers {tuple(layers)} "
                         f"{'with' if bias else 'without'} bias, got {params.shape}")
    net = Network(layers, [str(name) for name in activations], bias=bool(bias), dtype=dtype,
                  seed=int(_scalar(arrays, "seed", "iu")), loss=_scalar_str(arrays, "loss"))
    net.params = params  # same dtype (byte order aside): an exact copy
    return net


def _scalar(arrays: dict[str, np.ndarray], key: str, kinds: str) -> Any:
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(f"{key} must be a single value of kind {kinds!r}, got dtype "
                         f"{value.dtype} and shape {value.shape}")
    return value.item()


def _scalar_str(arrays: dict[str, np.ndarray], key: str) -> str:
    return str(_scalar(arrays, key, "U"))
