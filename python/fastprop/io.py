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

Hostile files
-------------
:func:`load` costs what the model in the file needs, whatever the file claims. It opens
only regular files (a directory, FIFO, device or socket is refused before anything is
read, and the open cannot block), and reads only the members the format needs: the
``extra_`` ones only with ``return_extra=True``, other keys never. Before it decompresses
any data it checks, from the zip directory and each member's .npy header alone:

- the zip directory takes at most 1 MiB (some 10,000 members); members are stored or
  deflated, as :func:`numpy.savez` and :func:`numpy.savez_compressed` write them;
- each .npy header is at most 10,000 bytes, describes no object array, and matches the
  size the directory declares for its member;
- the names and scalars have shape () and at most 64 characters, ``layers`` has at most
  one size more than ``params`` has values, ``activations`` one name per hidden layer, and
  ``params`` exactly the count ``layers`` implies;
- the members read decompress to at most 100 times their compressed size (plus 1 MiB; a
  file written by :func:`save` is stored, 1 time) and fit in the memory available.

Each refusal is a ``ValueError`` naming the file and the member.
"""

from __future__ import annotations

import ast
import contextlib
import errno
import math
import os
import secrets
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, BinaryIO, Literal, NamedTuple, overload

import numpy as np

from .network import Network, _available_memory

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
        "params": np.array(net.params, dtype=net.dtype, copy=True),
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

    Nothing in the file is unpickled or executed, and only what the format needs is read:
    each member is checked from the zip directory and its .npy header before its data is
    decompressed (see "Hostile files" in the module docstring), and every array is
    checked before use.

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
        When the file is not a fastprop model: not a regular file, not an .npz archive,
        truncated or corrupted, a pickle, another format or version, a missing key, arrays
        that do not fit together (e.g. ``params`` of the wrong length for ``layers``), or
        members out of proportion (see "Hostile files"). The message names the file and
        what is wrong.
    """
    path = os.fspath(path)
    if not os.path.exists(path) and not str(path).endswith(".npz") \
            and os.path.exists(f"{path}.npz"):
        path = f"{path}.npz"
    arrays = _read_npz(path, extra=return_extra)
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
        if len(f"{_EXTRA}{name}.npy".encode()) > 65535:  # a zip member's name: 16 bits
            raise ValueError(f"extra names must be at most {65535 - len(_EXTRA) - 4} bytes "
                             f"of UTF-8, got one of {len(name.encode()):,}")
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise TypeError(f"extra[{name!r}] is an object array, which would need pickle; "
                            f"store numbers or str (e.g. np.asarray(values, dtype=str))")
        if array.dtype.itemsize == 0 and array.size > 0:
            raise ValueError(f"extra[{name!r}] has dtype {array.dtype}, whose elements have no "
                             f"bytes; load refuses such arrays")
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
# What reading may cost, whatever a file's headers claim (see "Hostile files" above).
_MAX_NPY_HEADER = 10_000  # bytes of one .npy header: numpy's own default bound
_MAX_DIRECTORY = 1 << 20  # bytes of the zip's central directory: some 10,000 members
_MAX_NAME = 64  # characters of a stored name: format, loss, dtype, an activation
_MAX_RATIO = 100  # bytes decompressed per compressed byte, over the members read ...
_SLACK = 1 << 20  # ... plus this many
_CHUNK = 1 << 20  # bytes per read of an array's data
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # as numpy.savez(_compressed) write
# What zipfile and zlib raise for a damaged archive.
_DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
           struct.error)


def _read_npz(path: str, extra: bool) -> dict[str, np.ndarray]:
    """The arrays the format needs, and the ``extra_`` ones when asked, each bounded before read."""
    with _open_regular(path, "model file") as f:
        try:
            return _read_model(_Archive(f), extra)
        except _DAMAGE as error:
            raise ValueError(f"{path} is not a valid fastprop model: the archive is truncated or "
                             f"corrupted ({type(error).__name__}: {error})") from None
        except _NotZip as error:
            raise ValueError(f"{path} is not a fastprop model: {error}") from None
        except ValueError as error:
            raise ValueError(f"{path} is not a valid fastprop model: {error}") from None


class _NotZip(ValueError):
    """The file has no zip end record: not an .npz archive at all."""


def _read_model(archive: "_Archive", extra: bool) -> dict[str, np.ndarray]:
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
    archive.check_sizes(keys, _MAX_RATIO, extra_bytes=2 * headers["params"].nbytes)
    arrays = {}
    for key in ("format", "version", "bias", "dtype", "seed", "loss"):
        if headers[key].shape != () or headers[key].dtype.itemsize > 4 * _MAX_NAME:
            raise ValueError(f"{key} must be a single value (a name of at most {_MAX_NAME} "
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
    if activations.shape != (max(n - 1, 0),) or activations.dtype.itemsize > 4 * _MAX_NAME:
        raise ValueError(f"activations must be {max(n - 1, 0)} str (one per hidden layer) of at "
                         f"most {_MAX_NAME} characters, got dtype {activations.dtype} and "
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
    return arrays


def _expected_params(arrays: dict[str, np.ndarray]) -> int | None:
    """P = Σ_i l_{i+1} l_i (+ l_{i+1} with bias), when layers and bias are well formed
    (otherwise _network_from says what is wrong)."""
    layers, bias = arrays["layers"], arrays["bias"]
    if layers.dtype.kind not in "iu" or bias.dtype.kind != "b" or np.any(layers < 1):
        return None
    sizes = [int(l_i) for l_i in layers]
    return sum(l_out * l_in + (l_out if bias else 0) for l_in, l_out in zip(sizes, sizes[1:]))


def _open_regular(path: str, what: str = "file") -> BinaryIO:
    """``path`` opened for binary reading when it is a regular file (FileNotFoundError when
    there is none, ValueError for a directory, FIFO, device or socket).

    Checked before opening, and again on the open descriptor; the open does not block, so
    that a FIFO put in place between the two cannot hang the caller.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"no such {what}", path) from None
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path} is not a regular file but {_file_kind(mode)}; a {what} "
                         f"must be a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file but {_file_kind(mode)}; a {what} "
                             f"must be a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _file_kind(mode: int) -> str:
    for test, kind in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "not a regular file"


class _Npy(NamedTuple):
    """What an .npy header says: the array's dtype, shape and order, and where the data starts."""

    dtype: np.dtype
    shape: tuple[int, ...]
    fortran_order: bool
    header_size: int  # bytes before the data: magic, version, length and header

    @property
    def count(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.count * self.dtype.itemsize


def _npy_header(f: BinaryIO, where: str) -> _Npy:
    """The header of the .npy stream at ``f``, read within _MAX_NPY_HEADER bytes and checked:
    no object array (it would need pickle), non-negative sizes, no zero-width elements."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
        raise ValueError(f"{where} is not an .npy array (no .npy magic string)")
    length_size = 2 if magic[6] == 1 else 4
    length = int.from_bytes(f.read(length_size), "little")
    if length > _MAX_NPY_HEADER:
        raise ValueError(f"{where}: its .npy header claims {length:,} bytes; at most "
                         f"{_MAX_NPY_HEADER:,} are read")
    text = f.read(length)
    if len(text) < length:
        raise ValueError(f"{where}: the .npy header is truncated")
    try:
        header = ast.literal_eval(text.decode("utf-8" if magic[6] == 3 else "latin1"))
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise KeyError
        shape, fortran_order = header["shape"], header["fortran_order"]
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (SyntaxError, ValueError, TypeError, KeyError, MemoryError, RecursionError,
            OverflowError, UnicodeDecodeError) as error:
        raise ValueError(f"{where}: unreadable .npy header ({type(error).__name__})") from None
    if not isinstance(shape, tuple) or len(shape) > 64 \
            or not all(type(s) is int and 0 <= s < 2**63 for s in shape) \
            or type(fortran_order) is not bool:
        raise ValueError(f"{where}: the .npy header has shape {_short(shape)} and "
                         f"fortran_order {_short(fortran_order)}; expected at most 64 sizes in "
                         f"[0, 2**63) and a bool")
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects: object arrays are never loaded "
                         f"(they would need pickle)")
    npy = _Npy(dtype, shape, fortran_order, 8 + length_size + length)
    if dtype.itemsize == 0 and npy.count > 0:
        raise ValueError(f"{where}: {npy.count:,} elements of dtype {dtype}, which has no bytes")
    if npy.nbytes >= 2**63:
        raise ValueError(f"{where}: the .npy header describes an array of shape "
                         f"{_short(shape)} and dtype {dtype}, 2**63 bytes or more")
    return npy


def _short(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _npy_data(f: BinaryIO, npy: _Npy, where: str) -> np.ndarray:
    """The array whose header was ``npy``, read from ``f`` (just past the header) in chunks
    of _CHUNK bytes into the array itself. A zip member's declared size is exactly its
    header and this data, so zipfile checks its CRC as the last byte is read."""
    A = np.empty(npy.count, dtype=npy.dtype)
    buffer = memoryview(A.view(np.uint8) if npy.count else bytearray())
    done = 0
    while done < npy.nbytes:
        got = f.readinto(buffer[done:done + _CHUNK])  # type: ignore[attr-defined]
        if not got:
            raise ValueError(f"{where} is truncated: {done:,} of {npy.nbytes:,} bytes of data")
        done += got
    return A.reshape(npy.shape, order="F" if npy.fortran_order else "C")


def _read_npy(path: str, check: Callable[[_Npy], None] | None = None) -> np.ndarray:
    """The array of an .npy file (a regular file), its header checked (by ``check`` too)
    against the file's size and the memory available before any data is read."""
    with _open_regular(path, "data file") as f:
        npy = _npy_header(f, path)
        if check is not None:
            check(npy)
        held = os.fstat(f.fileno()).st_size - npy.header_size
        if npy.nbytes > held:
            raise ValueError(f"{path}: its .npy header describes {npy.nbytes:,} bytes of data "
                             f"(shape {npy.shape}, dtype {npy.dtype}) but the file holds "
                             f"{held:,}")
        available = _available_memory()
        if available is not None and npy.nbytes > available:
            raise ValueError(f"{path}: its array takes {_bytes(npy.nbytes)}, more than the "
                             f"{_bytes(available)} of memory available")
        return _npy_data(f, npy, path)


class _Archive:
    """An .npz archive (a zip of .npy members) whose members are read one at a time, on request.

    The zip directory is read only when it is small (``_MAX_DIRECTORY``), and each member
    is checked from the directory and its .npy header before any of its data is
    decompressed.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.file_size = os.fstat(f.fileno()).st_size
        directory = _directory_size(f, self.file_size)
        if directory is None:
            f.seek(0)
            raise _NotZip(f"not an .npz (zip) archive{_sniff(f.read(2))}")
        if directory > _MAX_DIRECTORY:
            raise ValueError(f"its zip directory takes {directory:,} bytes, more than the "
                             f"{_MAX_DIRECTORY:,} read (some 10,000 arrays)")
        self.zip = zipfile.ZipFile(f)
        self.members = {info.filename[:-4] if info.filename.endswith(".npy") else info.filename:
                        info for info in self.zip.infolist()}

    def header(self, key: str) -> _Npy:
        """Member ``key``'s header, consistent with the size the directory declares."""
        info = self.members[key]
        if info.flag_bits & 1:
            raise ValueError(f"member {key!r} is encrypted")
        if info.compress_type not in _METHODS:
            raise ValueError(f"member {key!r} is compressed with zip method "
                             f"{info.compress_type}; only stored or deflated members are read "
                             f"(as numpy.savez and savez_compressed write them)")
        with self.zip.open(info) as member:
            npy = _npy_header(member, f"member {key!r}")
        if npy.header_size + npy.nbytes != info.file_size:
            raise ValueError(f"member {key!r}: its .npy header describes {npy.nbytes:,} bytes "
                             f"of data (shape {npy.shape}, dtype {npy.dtype}) but the member "
                             f"declares {info.file_size - npy.header_size:,}")
        return npy

    def check_sizes(self, keys: Sequence[str], max_ratio: float | None,
                    extra_bytes: int = 0) -> None:
        """Refuse, before decompressing them, members ``keys`` whose declared sizes are out of
        proportion: more than ``max_ratio`` times their compressed bytes (plus _SLACK) in
        all, or more than the memory available (counting ``extra_bytes`` more)."""
        infos = [self.members[key] for key in keys]
        total = sum(info.file_size for info in infos)
        compressed = min(sum(info.compress_size for info in infos), self.file_size)
        if max_ratio is not None and total > max_ratio * compressed + _SLACK:
            worst = max(keys, key=lambda k: self.members[k].file_size
                        / max(self.members[k].compress_size, 1))
            info = self.members[worst]
            raise ValueError(f"member {worst!r} would decompress to {_bytes(info.file_size)} "
                             f"from {_bytes(info.compress_size)}; the arrays read may take at "
                             f"most {max_ratio:g} times their compressed size (plus "
                             f"{_bytes(_SLACK)}), here {_bytes(total)} from "
                             f"{_bytes(compressed)}")
        available = _available_memory()
        if available is not None and total + extra_bytes > available:
            largest = max(keys, key=lambda k: self.members[k].file_size)
            raise ValueError(f"its arrays need {_bytes(total + extra_bytes)} of memory (member "
                             f"{largest!r}: {_bytes(self.members[largest].file_size)}), more "
                             f"than the {_bytes(available)} available")

    def read(self, key: str, npy: _Npy) -> np.ndarray:
        """Member ``key``'s array (``npy``: its checked header), decompressing no more than it."""
        with self.zip.open(self.members[key]) as member:
            member.read(npy.header_size)
            return _npy_data(member, npy, f"member {key!r}")


def _directory_size(f: BinaryIO, size: int) -> int | None:
    """Bytes of the zip's central directory, from its end record (zip64's when present) as
    zipfile reads it; None when there is no end record (not a zip archive)."""
    tail_size = min(size, 22 + 65535)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    at = tail_size - 22 if tail[-22:-18] == b"PK\x05\x06" else tail.rfind(b"PK\x05\x06")
    if at < 0 or tail_size - at < 22:
        return None
    directory = struct.unpack_from("<L", tail, at + 12)[0]
    locator = size - tail_size + at - 20
    if locator >= 0:
        f.seek(locator)
        record = f.read(20)
        if record[:4] == b"PK\x06\x07":
            f.seek(struct.unpack_from("<Q", record, 8)[0])
            end64 = f.read(56)
            if len(end64) == 56 and end64[:4] == b"PK\x06\x06":
                directory = struct.unpack_from("<Q", end64, 40)[0]
    return directory


def _bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _sniff(head: bytes) -> str:
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
