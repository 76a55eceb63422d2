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

import errno
import io
import os
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from . import _npz
from ._files import os_error, write_file
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
    ``bias`` (bool), ``loss``, ``dtype`` (its name), ``seed`` (int), ``fits`` (the count of
    fits it ran, which with the seed draws the next fit's shuffles and DP-SGD noise: a copy
    goes on drawing where the network stopped) and ``params`` (a copy of the parameter
    buffer, in the network's dtype); for loss "huber" also ``huber_delta``.
    """
    st = {"layers": tuple(net.layers), "activations": list(net.activations),
          "bias": bool(net.bias), "loss": net.loss_name, "dtype": net.dtype.name,
          "seed": int(net.seed), "fits": int(net.__dict__.get("_fits", 0)),
          "params": net._snapshot()}
    if net.loss_name == "huber":
        st["huber_delta"] = float(net.huber_delta)
    return st


# ---------------------------------------------------------------------- writing
def save(net: Any, path: str | os.PathLike[str], *,
         extra: Mapping[str, Any] | None = None) -> str:
    """Write :func:`state` of ``net`` and the ``extra`` arrays to ``path`` (".npz" appended
    when missing), atomically; returns the path written."""
    path = os.fspath(path)
    if not isinstance(path, str):
        raise TypeError(message("path", "a str or os.PathLike of str", typed(path)))
    if os.path.isdir(path):  # not "<directory>.npz" beside it, as numpy.savez would write
        raise os_error(IsADirectoryError, errno.EISDIR,
                        f"cannot write the model to {path}: it is a directory (give a file "
                        f"name in it)")
    if not path.endswith(".npz"):
        path += ".npz"
    arrays = _arrays(state(net))
    arrays.update(_extra_arrays(extra))
    _write_atomically(path, arrays)
    return path


def _arrays(st: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A state as the arrays of the file format, version 1."""
    optional = {"huber_delta": np.array(st["huber_delta"], dtype=np.float64)} \
        if "huber_delta" in st else {}
    return {
        **optional,
        "format": np.array(FORMAT),
        "version": np.array(VERSION, dtype=np.int64),
        "layers": np.array(st["layers"], dtype=np.int64),
        "activations": np.array(st["activations"], dtype=str).reshape(len(st["activations"])),
        "bias": np.array(st["bias"]),
        "loss": np.array(st["loss"]),
        "dtype": np.array(st["dtype"]),
        "seed": np.array(st["seed"], dtype=np.uint64),
        "fits": np.array(st["fits"], dtype=np.int64),
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
        if len(f"{_EXTRA}{name}.npy".encode()) > 65535:  # a zip member's name: 16 bits
            raise ValueError(message("extra names", f"at most {65535 - len(_EXTRA) - 4} bytes "
                                     f"of UTF-8", f"one of {len(name.encode()):,}", verb="be"))
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(message(f"extra[{name!r}]", "numbers or str (e.g. np.asarray(values, "
                                    "dtype=str)): an object array would need pickle",
                                    f"dtype {array.dtype}", verb="hold"))
        if array.dtype.itemsize == 0 and array.size > 0:
            raise ValueError(f"extra[{name!r}] has dtype {array.dtype}, whose elements have no "
                             f"bytes; load refuses such arrays")
        out[_EXTRA + name] = array
    return out


def _write_atomically(path: str, arrays: dict[str, np.ndarray], what: str = "model") -> None:
    """The arrays as an .npz archive, written to ``path`` atomically (``_files.write_file``)."""
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # (numpy's stub)
    write_file(path, buffer.getvalue(), what)


# ---------------------------------------------------------------------- reading
def load(path: str | os.PathLike[str], make: Callable[[dict[str, Any]], T], *,
         extra: bool = False) -> tuple[T, dict[str, np.ndarray]]:
    """(make(state), extra arrays) from a file written by :func:`save`.

    Only the members the format needs are read, and the ``extra_`` ones when ``extra``; each
    is checked before it is decompressed (:mod:`fastprop._npz`). ``make`` builds the network
    from the state read; whatever it or the checks of the file raise as ValueError or
    TypeError becomes a ValueError naming the file.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and not str(path).endswith(".npz") \
            and os.path.exists(f"{path}.npz"):
        path = f"{path}.npz"
    arrays = _read_npz(path, extra)
    try:
        net = make(_state_from(arrays))
    except (ValueError, TypeError) as error:
        raise ValueError(f"{path} is not a valid fastprop model: {error}") from None
    extras = {key[len(_EXTRA):]: value for key, value in arrays.items() if key.startswith(_EXTRA)}
    return net, extras


def _read_npz(path: str, extra: bool) -> dict[str, np.ndarray]:
    """The arrays the format needs, and the ``extra_`` ones when asked, each bounded before read."""
    with _npz.open_regular(path, "model file") as f:
        try:
            return _read_model(_npz.Archive(f), extra)
        except _npz.DAMAGE as error:
            raise ValueError(f"{path} is not a valid fastprop model: the archive is truncated or "
                             f"corrupted ({type(error).__name__}: {error})") from None
        except _npz.NotZip as error:
            raise ValueError(f"{path} is not a fastprop model: {error}") from None
        except ValueError as error:
            raise ValueError(f"{path} is not a valid fastprop model: {error}") from None


def _read_model(archive: _npz.Archive, extra: bool) -> dict[str, np.ndarray]:
    """Each member checked from the directory and its header alone before its data is read:
    the scalars and names first, then layers (at most one size more than params has
    values), activations (one per hidden layer) and params (exactly the count layers
    implies)."""
    missing = [key for key in _REQUIRED if key not in archive.members]
    if missing:
        raise ValueError(f"missing key(s) {', '.join(missing)}")
    extras = [key for key in archive.members if key.startswith(_EXTRA)] if extra else []
    keys = [*_REQUIRED, *extras]
    headers = {key: archive.header(key) for key in keys}
    archive.check_sizes(keys, _npz.MAX_RATIO, extra_bytes=2 * headers["params"].nbytes)
    arrays = {}
    name_bytes = 4 * _npz.MAX_NAME
    for key in ("format", "version", "bias", "dtype", "seed", "loss"):
        if headers[key].shape != () or headers[key].dtype.itemsize > name_bytes:
            raise ValueError(f"{key} must be a single value (a name of at most {_npz.MAX_NAME} "
                             f"characters), got dtype {headers[key].dtype} and shape "
                             f"{headers[key].shape}")
        arrays[key] = archive.read(key, headers[key])
    n_params = headers["params"].count
    layers = headers["layers"]
    if len(layers.shape) != 1 or layers.count > n_params + 1:
        raise ValueError(f"layers must list at most one size more than params has values (each "
                         f"W_i has at least one), got shape {layers.shape} for "
                         f"{n_params:,} values")
    arrays["layers"] = archive.read("layers", layers)
    n = len(arrays["layers"]) - 1
    activations = headers["activations"]
    if activations.shape != (max(n - 1, 0),) or activations.dtype.itemsize > name_bytes:
        raise ValueError(f"activations must be {max(n - 1, 0)} str (one per hidden layer) of at "
                         f"most {_npz.MAX_NAME} characters, got dtype {activations.dtype} and "
                         f"shape {activations.shape}")
    arrays["activations"] = archive.read("activations", activations)
    expected = _expected_params(arrays)
    if expected is not None and headers["params"].shape != (expected,):
        raise ValueError(f"params must have shape ({expected},) for layers "
                         f"{tuple(int(l_i) for l_i in arrays['layers'])} "
                         f"{'with' if arrays['bias'] else 'without'} bias, got "
                         f"{headers['params'].shape}")
    for key in ("params", *extras):
        arrays[key] = archive.read(key, headers[key])
    for key, kinds, what in (("huber_delta", "f", "float"), ("fits", "iu", "integer")):
        if key in archive.members:  # optional: files without it are read as before
            header = archive.header(key)
            if header.shape != () or header.dtype.kind not in kinds:
                raise ValueError(f"{key} must be a single {what}, got dtype {header.dtype} and "
                                 f"shape {header.shape}")
            arrays[key] = archive.read(key, header)
    return arrays


def _expected_params(arrays: dict[str, np.ndarray]) -> int | None:
    """P = Σ_i l_{i+1} l_i (+ l_{i+1} with bias), when layers and bias are well formed
    (otherwise _state_from says what is wrong)."""
    layers, bias = arrays["layers"], arrays["bias"]
    if layers.dtype.kind not in "iu" or bias.dtype.kind != "b" or np.any(layers < 1):
        return None
    sizes = [int(l_i) for l_i in layers]
    return sum(l_out * l_in + (l_out if bias else 0) for l_in, l_out in zip(sizes, sizes[1:]))


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
            "seed": int(_scalar(arrays, "seed", "iu")), "fits": _fits(arrays), "params": params,
            **({"huber_delta": float(_scalar(arrays, "huber_delta", "f"))}
               if "huber_delta" in arrays else {})}


def _fits(arrays: dict[str, np.ndarray]) -> int:
    """The count of fits, 0 for a file written before it was kept."""
    if "fits" not in arrays:
        return 0
    fits = int(_scalar(arrays, "fits", "iu"))
    if not 0 <= fits <= np.iinfo(np.int64).max:  # int64, as save writes it
        raise ValueError(message("fits", "a count in [0, 2**63)", str(fits)))
    return fits


def _scalar(arrays: dict[str, np.ndarray], key: str, kinds: str) -> Any:
    value = arrays[key]
    if value.shape != () or value.dtype.kind not in kinds:
        raise ValueError(message(key, f"a single value of kind {kinds!r}",
                                 f"dtype {value.dtype} and shape {value.shape}"))
    return value.item()


def _scalar_str(arrays: dict[str, np.ndarray], key: str) -> str:
    return str(_scalar(arrays, key, "U"))
