"""fastprop.load against files built to cost too much: zip bombs, lying headers and
directories, huge shapes, special files. Each must be refused (ValueError naming the file
and the member) or read at the cost of the model it describes, quickly and in little memory.

The big inputs are built cheaply: a deflate stream of zeros is made of one compressed block
repeated (after a full flush the compressor restarts, so each block compresses alike), and
declared sizes can simply be written into the zip directory.
"""

from __future__ import annotations

import io as _io
import os
import stat
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib

import numpy as np
import pytest

import fastprop
from fastprop import io

MiB = 2**20
# Time bounds stretch under .ci/sanitize, where every allocation goes through ASan.
SLOW = 4 if os.environ.get("FASTPROP_SANITIZED") else 1


def model_members(**changes):
    """The members save() writes for a [3, 5, 2] tanh network, as {name: .npy bytes}, with
    some arrays replaced by ``changes``."""
    net = fastprop.Network([3, 5, 2], "tanh", bias=True, seed=1)
    arrays = {"format": np.array("fastprop"), "version": np.array(1, dtype=np.int64),
              "layers": np.array(net.layers, dtype=np.int64),
              "activations": np.array(net.activations, dtype=str).reshape(-1),
              "bias": np.array(net.bias), "loss": np.array(net.loss_name),
              "dtype": np.array(net.dtype.name), "seed": np.array(net.seed, dtype=np.uint64),
              "params": net.params.copy()}
    arrays.update(changes)
    out = {}
    for key, value in arrays.items():
        buffer = _io.BytesIO()
        np.save(buffer, value)
        out[f"{key}.npy"] = buffer.getvalue()
    return out


def npy_header(shape, descr="<f8", fortran_order=False):
    buffer = _io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": fortran_order, "shape": shape})
    return buffer.getvalue()


class Member:
    """One zip member: its compressed bytes and what the directory declares about it."""

    def __init__(self, name, data, *, method=zipfile.ZIP_STORED, crc=None, size=None):
        self.name, self.data, self.method = name.encode(), data, method
        self.crc = zlib.crc32(data) if crc is None else crc
        self.size = len(data) if size is None else size

    @classmethod
    def stored(cls, name, data, **declared):
        return cls(name, data, **declared)

    @classmethod
    def deflated(cls, name, data):
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return cls(name, c.compress(data) + c.flush(), method=zipfile.ZIP_DEFLATED,
                   crc=zlib.crc32(data), size=len(data))

    @classmethod
    def zeros(cls, name, header, n_zeros):
        """``header`` then ``n_zeros`` zero bytes, deflated, built in O(n_zeros / 1 MiB)."""
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        data = bytearray(c.compress(header) + c.flush(zlib.Z_FULL_FLUSH))
        block = c.compress(bytes(MiB)) + c.flush(zlib.Z_FULL_FLUSH)
        crc = zlib.crc32(header)
        zero_block = bytes(MiB)
        for _ in range(n_zeros // MiB):
            data += block
            crc = zlib.crc32(zero_block, crc)
        rest = n_zeros % MiB
        data += c.compress(bytes(rest)) + c.flush()
        crc = zlib.crc32(bytes(rest), crc)
        return cls(name, bytes(data), method=zipfile.ZIP_DEFLATED, crc=crc,
                   size=len(header) + n_zeros)


def write_zip(path, members):
    """A zip archive of ``members`` written byte by byte (zip64 fields where sizes need them),
    so that the directory can declare whatever a test wants."""
    out, directory = bytearray(), bytearray()
    for m in members:
        offset = len(out)
        big = m.size >= 0xFFFFFFFF or len(m.data) >= 0xFFFFFFFF
        extra = struct.pack("<HHQQ", 1, 16, m.size, len(m.data)) if big else b""
        sizes = (0xFFFFFFFF, 0xFFFFFFFF) if big else (len(m.data), m.size)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 45, 0, m.method, 0, 0x21, m.crc,
                           *sizes, len(m.name), len(extra)) + m.name + extra + m.data
        directory += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 45, 45, 0, m.method, 0, 0x21,
                                 m.crc, *sizes, len(m.name), len(extra), 0, 0, 0, 0,
                                 offset) + m.name + extra
    start = len(out)
    out += directory
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members),
                       len(directory), start, 0)
    with open(path, "wb") as f:
        f.write(out)
    return str(path)


def model_zip(path, *more, replace=None):
    """A valid model file plus the members ``more`` (and some replaced)."""
    members = [Member.stored(name, data) for name, data in model_members().items()
               if name not in (replace or {})]
    members += [Member.stored(name, data) for name, data in (replace or {}).items()]
    return write_zip(path, [*members, *more])


def traced(fn):
    """(result or exception, seconds, peak bytes traced by tracemalloc, numpy's included)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = fn()
    except Exception as error:  # returned, for the test to inspect
        result = error
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


# ---------------------------------------------------------------------- the helpers themselves
def test_the_crafted_zips_are_what_zipfile_and_numpy_read(tmp_path):
    path = write_zip(tmp_path / "z.npz", [
        *[Member.stored(k, v) for k, v in model_members().items()],
        Member.zeros("zeros.npy", npy_header((3 * MiB // 8,)), 3 * MiB)])
    with np.load(path) as archive:
        assert archive["zeros"].shape == (3 * MiB // 8,) and not archive["zeros"].any()
    assert np.array_equal(io.load(path).params, fastprop.Network([3, 5, 2], "tanh", bias=True,
                                                                 seed=1).params)


# ---------------------------------------------------------------------- zip bombs
BOMB = 512 * MiB  # zeros in a member; its deflate stream is some 0.5 MB


def test_an_unused_member_is_never_decompressed(tmp_path):
    path = model_zip(tmp_path / "bomb.npz",
                     Member.zeros("junk.npy", npy_header((BOMB // 8,)), BOMB))
    assert os.path.getsize(path) < BOMB / 500
    net, seconds, peak = traced(lambda: io.load(path))
    assert isinstance(net, fastprop.Network), net
    assert peak < 4 * MiB, f"load traced {peak / MiB:.1f} MiB for a model of 31 parameters"
    print(f"\nunused {BOMB // MiB} MiB member: load in {seconds * 1e3:.1f} ms, "
          f"peak {peak / 1024:.0f} KiB traced")


def test_an_extra_bomb_is_refused_before_decompressing(tmp_path):
    path = model_zip(tmp_path / "bomb.npz",
                     Member.zeros("extra_junk.npy", npy_header((BOMB // 8,)), BOMB))
    assert isinstance(io.load(path), fastprop.Network)  # extras are read only when asked
    error, seconds, peak = traced(lambda: io.load(path, return_extra=True))
    assert isinstance(error, ValueError), error
    message = str(error)
    assert "bomb.npz" in message and "'extra_junk'" in message and "100 times" in message
    assert peak < 4 * MiB and seconds < 5 * SLOW


def test_a_compressed_model_within_bounds_loads(tmp_path):
    members = model_members()
    path = write_zip(tmp_path / "c.npz", [Member.deflated(k, v) for k, v in members.items()])
    assert np.array_equal(io.load(path).params, np.load(_io.BytesIO(members["params.npy"])))


@pytest.mark.parametrize("member", ["params.npy", "layers.npy", "loss.npy"])
def test_a_directory_declaring_a_huge_size_is_refused_before_reading(tmp_path, member):
    """The directory declares a terabyte (zip64) and the header agrees; the data is absent."""
    descr = {"params.npy": "<f8", "layers.npy": "<i8", "loss.npy": "<U2"}[member]
    count = 2**40 // np.dtype(descr).itemsize
    header = npy_header((count,), descr)
    lie = Member.stored(member, header + bytes(64), size=len(header) + 2**40)
    path = write_zip(tmp_path / "huge.npz", [
        *[Member.stored(k, v) for k, v in model_members().items() if k != member], lie])
    error, seconds, peak = traced(lambda: io.load(path))
    assert type(error) is ValueError, error
    assert "huge.npz" in str(error) and repr(member[:-4]) in str(error)
    assert peak < 4 * MiB and seconds < 5 * SLOW


def test_a_deflated_params_of_zeros_out_of_proportion_is_refused(tmp_path):
    """layers say [4096, 4096, 1], 16.8 million parameters: 128 MiB of zeros in 0.1 MB."""
    layers = np.array([4096, 4096, 1], dtype=np.int64)
    n_params = 4096 * 4096 + 4096 + 4096 + 1
    members = model_members(layers=layers, activations=np.array(["tanh"]))
    del members["params.npy"]
    path = write_zip(tmp_path / "zeros.npz", [
        *[Member.stored(k, v) for k, v in members.items()],
        Member.zeros("params.npy", npy_header((n_params,)), 8 * n_params)])
    error, seconds, peak = traced(lambda: io.load(path))
    assert isinstance(error, ValueError), error
    assert "zeros.npz" in str(error) and "'params'" in str(error) and "100 times" in str(error)
    assert peak < 4 * MiB and seconds < 5 * SLOW


# ---------------------------------------------------------------------- headers
def test_a_header_claiming_a_huge_shape_is_a_value_error_not_memory_error(tmp_path):
    path = model_zip(tmp_path / "shape.npz",
                     replace={"params.npy": npy_header((10**11,)) + bytes(64)})
    error, seconds, peak = traced(lambda: io.load(path))
    assert type(error) is ValueError, error
    assert "shape.npz" in str(error) and "'params'" in str(error)
    assert "(100000000000,)" in str(error)
    assert peak < 4 * MiB


def test_a_header_with_a_negative_size_is_refused(tmp_path):
    data = raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-5,), }")
    path = model_zip(tmp_path / "negative.npz", replace={"params.npy": data})
    with pytest.raises(ValueError, match=r"negative.npz.*'params'.*shape \(-5,\).*"
                                         r"sizes in \[0, 2\*\*63\)"):
        io.load(path)


def raw_npy(header_text, data=b""):
    """An .npy stream with this header text, padded as numpy pads it."""
    text = header_text.encode("latin1")
    text += b" " * ((-len(text) - 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + data


@pytest.mark.parametrize("header, reason", [
    ("{'descr': '<f8', 'fortran_order': False, 'shape': " + "(" * 300 + ")" * 300 + "}",
     "unreadable .npy header"),
    ("{'descr': [('a', '<f8', (10**30,))], 'fortran_order': False, 'shape': (1,)}",
     "unreadable .npy header"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 4000 + ",)}",
     r"shape \(9999.*\.\.\. and fortran_order False; expected at most 64 sizes"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': " + str((2**40,) * 8) + "}",
     "2\\*\\*63 bytes or more"),
    ("{'descr': '<f8', 'fortran_order': False, 'shape': (32,), 'x': 1}",
     "unreadable .npy header"),
    ("{'descr': __import__('os').system('exit'), 'fortran_order': False, 'shape': (32,)}",
     "unreadable .npy header"),
])
def test_odd_headers_are_value_errors_naming_the_member(tmp_path, header, reason):
    path = model_zip(tmp_path / "odd.npz", replace={"params.npy": raw_npy(header, bytes(256))})
    with pytest.raises(ValueError, match=f"odd.npz is not a valid fastprop model: member "
                                         f"'params'.*{reason}") as error:
        io.load(path)
    assert len(str(error.value)) < 400


def test_a_header_longer_than_the_bound_is_not_read(tmp_path):
    data = b"\x93NUMPY\x02\x00" + struct.pack("<L", 10**9) + bytes(100)
    path = model_zip(tmp_path / "long.npz", replace={"loss.npy": data})
    with pytest.raises(ValueError, match=r"'loss'.*claims 1,000,000,000 bytes"):
        io.load(path)


def test_long_names_are_refused_before_reading(tmp_path):
    loss = _io.BytesIO()
    np.save(loss, np.array("x" * 100_000))
    path = model_zip(tmp_path / "name.npz", replace={"loss.npy": loss.getvalue()})
    with pytest.raises(ValueError, match=r"name.npz.*loss must be a single value \(a name of "
                                         r"at most 64 characters\), got dtype <U100000"):
        io.load(path)


def test_layers_longer_than_params_allow_are_refused_before_reading(tmp_path):
    layers = _io.BytesIO()
    np.save(layers, np.ones(10_000, dtype=np.int64))
    path = model_zip(tmp_path / "layers.npz", replace={"layers.npy": layers.getvalue()})
    with pytest.raises(ValueError, match=r"layers must list at most one size more than params"):
        io.load(path)


def test_zero_width_elements_are_refused(tmp_path):
    path = model_zip(tmp_path / "v0.npz",
                     Member.stored("extra_names.npy", npy_header((10**15,), "|V0")))
    assert isinstance(io.load(path), fastprop.Network)
    with pytest.raises(ValueError, match=r"'extra_names'.*no bytes"):
        io.load(path, return_extra=True)


def test_save_refuses_zero_width_elements_and_over_long_names(tmp_path):
    net = fastprop.Network([2, 1], seed=0)
    with pytest.raises(ValueError, match="no bytes"):
        io.save(net, tmp_path / "a.npz", extra={"v": np.empty(10**12, dtype="V0")})
    with pytest.raises(ValueError, match="extra names must be at most"):
        io.save(net, tmp_path / "a.npz", extra={"a" * 70_000: np.zeros(2)})
    assert not os.listdir(tmp_path)


# ---------------------------------------------------------------------- the archive
def test_a_damaged_deflate_stream_is_a_value_error(tmp_path):
    members = model_members()
    deflated = [Member.deflated(k, v) for k, v in members.items()]
    params = next(m for m in deflated if m.name == b"params.npy")
    data = bytearray(params.data)
    data[50:90] = bytes(b ^ 0x55 for b in data[50:90])
    params.data = bytes(data)
    path = write_zip(tmp_path / "damaged.npz", deflated)
    with pytest.raises(ValueError, match=r"damaged.npz.*truncated or corrupted"):
        io.load(path)


def test_a_directory_of_many_members_is_not_parsed(tmp_path):
    junk = [Member.stored(f"z{k}", b"") for k in range(25_000)]
    path = model_zip(tmp_path / "many.npz", *junk)
    error, seconds, _ = traced(lambda: io.load(path))
    assert isinstance(error, ValueError), error
    assert "many.npz" in str(error) and "zip directory takes" in str(error)
    assert seconds < 1 * SLOW


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_only_stored_and_deflated_members_are_read(tmp_path, method):
    with zipfile.ZipFile(tmp_path / "m.npz", "w", compression=method) as archive:
        for name, data in model_members().items():
            archive.writestr(name, data)
    with pytest.raises(ValueError, match=f"zip method {method}; only stored or deflated"):
        io.load(tmp_path / "m.npz")


# ---------------------------------------------------------------------- special files
def load_in_a_child(path, timeout=30):
    """io.load(path) in a child process, its address space capped at 2 GiB (not under
    AddressSanitizer, whose shadow memory takes terabytes of addresses): (result, seconds)."""
    code = ("import os, resource, sys\n"
            "if not os.environ.get('FASTPROP_SANITIZED'):\n"
            "    resource.setrlimit(resource.RLIMIT_AS, (2**31, 2**31))\n"
            "import fastprop\n"
            "try:\n"
            "    fastprop.load(sys.argv[1])\n"
            "except ValueError as error:\n"
            "    print('ValueError:', error, file=sys.stderr)\n"
            "    sys.exit(3)\n")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                            text=True, timeout=timeout)
    return result, time.perf_counter() - start


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="POSIX FIFOs")
def test_a_fifo_is_refused_at_once(tmp_path):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    try:
        result, _ = load_in_a_child(fifo)
    except subprocess.TimeoutExpired:
        pytest.fail("load blocked on a FIFO")
    assert result.returncode == 3, result.stderr
    assert "is not a regular file but a FIFO" in result.stderr


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_a_device_is_refused_at_once():
    result, seconds = load_in_a_child("/dev/zero")
    assert result.returncode == 3, result.stderr[-500:]
    assert "/dev/zero is not a regular file but a character device" in result.stderr


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(ValueError, match="is not a regular file but a directory"):
        io.load(tmp_path)


def test_a_symlink_to_a_model_is_followed(tmp_path):
    net = fastprop.Network([2, 3, 1], seed=0)
    io.save(net, tmp_path / "real.npz")
    try:
        os.symlink(tmp_path / "real.npz", tmp_path / "link.npz")
    except (OSError, NotImplementedError):
        pytest.skip("no symlinks here")
    assert np.array_equal(io.load(tmp_path / "link.npz").params, net.params)
    assert stat.S_ISLNK(os.lstat(tmp_path / "link.npz").st_mode)
