"""Reading .npz and .npy files that may be hostile, at the cost of what they really hold.

Everything is checked before it is read: only regular files are opened (without blocking),
the zip directory and each .npy header are read within fixed bounds, an .npy header must
match the size its member declares, no object array is ever loaded (it would need pickle),
and a member is decompressed only after its declared size is found in proportion to its
compressed size and to the memory available. :mod:`fastprop._state` reads model files with it
and :mod:`fastprop.cli` its .npy and .npz data; the limits are listed in :mod:`fastprop.io`.
"""

from __future__ import annotations

import ast
import errno
import math
import os
import stat
import struct
import zipfile
import zlib
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, NamedTuple

import numpy as np

from ._files import file_kind
from ._validate import available_memory

# What reading may cost, whatever a file's headers claim (see "Hostile files" above).
MAX_NPY_HEADER = 10_000  # bytes of one .npy header: numpy's own default bound
MAX_DIRECTORY = 1 << 20  # bytes of the zip's central directory: some 10,000 members
MAX_NAME = 64  # characters of a stored name: format, loss, dtype, an activation
MAX_RATIO = 100  # bytes decompressed per compressed byte, over the members read ...
SLACK = 1 << 20  # ... plus this many
CHUNK = 1 << 20  # bytes per read of an array's data
METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # as numpy.savez(_compressed) write
# What zipfile and zlib raise for a damaged archive.
DAMAGE = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError,
           struct.error)


class NotZip(ValueError):
    """The file has no zip end record: not an .npz archive at all."""


def open_regular(path: str, what: str = "file") -> BinaryIO:
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
        raise ValueError(f"{path} is not a regular file but {file_kind(mode)}; a {what} "
                         f"must be a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(path, flags)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file but {file_kind(mode)}; a {what} "
                             f"must be a regular file")
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


class Npy(NamedTuple):
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


def npy_header(f: BinaryIO, where: str) -> Npy:
    """The header of the .npy stream at ``f``, read within MAX_NPY_HEADER bytes and checked:
    no object array (it would need pickle), non-negative sizes, no zero-width elements."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != b"\x93NUMPY" or magic[6] not in (1, 2, 3):
        raise ValueError(f"{where} is not an .npy array (no .npy magic string)")
    length_size = 2 if magic[6] == 1 else 4
    length = int.from_bytes(f.read(length_size), "little")
    if length > MAX_NPY_HEADER:
        raise ValueError(f"{where}: its .npy header claims {length:,} bytes; at most "
                         f"{MAX_NPY_HEADER:,} are read")
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
        raise ValueError(f"{where}: the .npy header has shape {short(shape)} and "
                         f"fortran_order {short(fortran_order)}; expected at most 64 sizes in "
                         f"[0, 2**63) and a bool")
    if dtype.hasobject:
        raise ValueError(f"{where} holds Python objects: object arrays are never loaded "
                         f"(they would need pickle)")
    npy = Npy(dtype, shape, fortran_order, 8 + length_size + length)
    if dtype.itemsize == 0 and npy.count > 0:
        raise ValueError(f"{where}: {npy.count:,} elements of dtype {dtype}, which has no bytes")
    if npy.nbytes >= 2**63:
        raise ValueError(f"{where}: the .npy header describes an array of shape "
                         f"{short(shape)} and dtype {dtype}, 2**63 bytes or more")
    return npy


def short(value: Any, limit: int = 100) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def npy_data(f: BinaryIO, npy: Npy, where: str) -> np.ndarray:
    """The array whose header was ``npy``, read from ``f`` (just past the header) in chunks
    of CHUNK bytes into the array itself. A zip member's declared size is exactly its
    header and this data, so zipfile checks its CRC as the last byte is read."""
    A = np.empty(npy.count, dtype=npy.dtype)
    buffer = memoryview(A.view(np.uint8) if npy.count else bytearray())
    done = 0
    while done < npy.nbytes:
        got = f.readinto(buffer[done:done + CHUNK])  # type: ignore[attr-defined]
        if not got:
            raise ValueError(f"{where} is truncated: {done:,} of {npy.nbytes:,} bytes of data")
        done += got
    return A.reshape(npy.shape, order="F" if npy.fortran_order else "C")


def read_npy(path: str, check: Callable[[Npy], None] | None = None) -> np.ndarray:
    """The array of an .npy file (a regular file), its header checked (by ``check`` too)
    against the file's size and the memory available before any data is read."""
    with open_regular(path, "data file") as f:
        npy = npy_header(f, path)
        if check is not None:
            check(npy)
        held = os.fstat(f.fileno()).st_size - npy.header_size
        if npy.nbytes > held:
            raise ValueError(f"{path}: its .npy header describes {npy.nbytes:,} bytes of data "
                             f"(shape {npy.shape}, dtype {npy.dtype}) but the file holds "
                             f"{held:,}")
        available = available_memory()
        if available is not None and npy.nbytes > available:
            raise ValueError(f"{path}: its array takes {format_bytes(npy.nbytes)}, more than the "
                             f"{format_bytes(available)} of memory available")
        return npy_data(f, npy, path)


class Archive:
    """An .npz archive (a zip of .npy members) whose members are read one at a time, on request.

    The zip directory is read only when it is small (``MAX_DIRECTORY``), and each member
    is checked from the directory and its .npy header before any of its data is
    decompressed.
    """

    def __init__(self, f: BinaryIO) -> None:
        self.file_size = os.fstat(f.fileno()).st_size
        directory = directory_size(f, self.file_size)
        if directory is None:
            f.seek(0)
            raise NotZip(f"not an .npz (zip) archive{sniff(f.read(2))}")
        if directory > MAX_DIRECTORY:
            raise ValueError(f"its zip directory takes {directory:,} bytes, more than the "
                             f"{MAX_DIRECTORY:,} read (some 10,000 arrays)")
        self.zip = zipfile.ZipFile(f)
        self.members = {info.filename[:-4] if info.filename.endswith(".npy") else info.filename:
                        info for info in self.zip.infolist()}

    def header(self, key: str) -> Npy:
        """Member ``key``'s header, consistent with the size the directory declares."""
        info = self.members[key]
        if info.flag_bits & 1:
            raise ValueError(f"member {key!r} is encrypted")
        if info.compress_type not in METHODS:
            raise ValueError(f"member {key!r} is compressed with zip method "
                             f"{info.compress_type}; only stored or deflated members are read "
                             f"(as numpy.savez and savez_compressed write them)")
        with self.zip.open(info) as member:
            npy = npy_header(member, f"member {key!r}")
        if npy.header_size + npy.nbytes != info.file_size:
            raise ValueError(f"member {key!r}: its .npy header describes {npy.nbytes:,} bytes "
                             f"of data (shape {npy.shape}, dtype {npy.dtype}) but the member "
                             f"declares {info.file_size - npy.header_size:,}")
        return npy

    def check_sizes(self, keys: Sequence[str], max_ratio: float | None,
                    extra_bytes: int = 0) -> None:
        """Refuse, before decompressing them, members ``keys`` whose declared sizes are out of
        proportion: more than ``max_ratio`` times their compressed bytes (plus SLACK) in
        all, or more than the memory available (counting ``extra_bytes`` more)."""
        infos = [self.members[key] for key in keys]
        total = sum(info.file_size for info in infos)
        compressed = min(sum(info.compress_size for info in infos), self.file_size)
        if max_ratio is not None and total > max_ratio * compressed + SLACK:
            worst = max(keys, key=lambda k: self.members[k].file_size
                        / max(self.members[k].compress_size, 1))
            info = self.members[worst]
            raise ValueError(f"member {worst!r} would decompress to {format_bytes(info.file_size)} "
                             f"from {format_bytes(info.compress_size)}; the arrays read may take at "
                             f"most {max_ratio:g} times their compressed size (plus "
                             f"{format_bytes(SLACK)}), here {format_bytes(total)} from "
                             f"{format_bytes(compressed)}")
        available = available_memory()
        if available is not None and total + extra_bytes > available:
            largest = max(keys, key=lambda k: self.members[k].file_size)
            raise ValueError(f"its arrays need {format_bytes(total + extra_bytes)} of memory (member "
                             f"{largest!r}: {format_bytes(self.members[largest].file_size)}), more "
                             f"than the {format_bytes(available)} available")

    def read(self, key: str, npy: Npy) -> np.ndarray:
        """Member ``key``'s array (``npy``: its checked header), decompressing no more than it."""
        with self.zip.open(self.members[key]) as member:
            member.read(npy.header_size)
            return npy_data(member, npy, f"member {key!r}")


def directory_size(f: BinaryIO, size: int) -> int | None:
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


def format_bytes(n: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def sniff(head: bytes) -> str:
    if head[:1] == b"\x80":
        return " (it looks like a pickle, which is never loaded)"
    if head[:2] == b"PK":
        return " (it looks like a truncated or damaged zip archive)"
    return ""
