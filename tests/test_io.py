"""fastprop.io: bit-exact round trips, refusal of bad files (never unpickling), atomic writes."""

from __future__ import annotations

import copy
import os
import pickle

import numpy as np
import pytest

import fastprop
from fastprop import io, reference

DTYPES = ("float64", "float32")


def bits(A: np.ndarray) -> np.ndarray:
    """The raw bytes of an array, so that comparisons are bit for bit (NaN and −0 included)."""
    return np.ascontiguousarray(A).view(np.uint8)


def make_net(dtype="float64", bias=True, activation="tanh", loss="sse", layers=(3, 5, 4, 2)):
    net = fastprop.Network(list(layers), activation, bias=bias, dtype=dtype, seed=7, loss=loss)
    # Irregular values in every entry, including the biases that start at zero.
    net.params = np.random.default_rng(1).standard_normal(net.n_params)
    return net


def assert_same_network(loaded, net):
    assert loaded.layers == net.layers
    assert loaded.activations == net.activations
    assert all(type(name) is str for name in loaded.activations)
    assert loaded.bias == net.bias
    assert loaded.dtype == net.dtype
    assert loaded.loss_name == net.loss_name
    assert loaded.seed == net.seed
    assert loaded.params.dtype == net.params.dtype
    assert np.array_equal(bits(loaded.params), bits(net.params))


def stored(net, **changes):
    """The arrays save() would write, with some replaced or (value None) removed."""
    arrays = {"format": np.array("fastprop"), "version": np.array(1, dtype=np.int64),
              "layers": np.array(net.layers, dtype=np.int64),
              "activations": np.array(net.activations, dtype=str).reshape(-1),
              "bias": np.array(net.bias), "loss": np.array(net.loss_name),
              "dtype": np.array(net.dtype.name), "seed": np.array(net.seed, dtype=np.uint64),
              "params": net.params.copy()}
    arrays.update(changes)
    return {key: value for key, value in arrays.items() if value is not None}


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("loss", reference.LOSSES)
def test_round_trip_is_bit_exact(tmp_path, dtype, bias, loss):
    net = make_net(dtype, bias, loss=loss)
    io.save(net, tmp_path / "net.npz")
    loaded = io.load(tmp_path / "net.npz")
    assert_same_network(loaded, net)
    X = np.random.default_rng(2).standard_normal((6, 3))
    assert np.array_equal(loaded.forward(X), net.forward(X))


@pytest.mark.parametrize("activation", reference.ACTIVATIONS)
def test_round_trip_of_every_activation(tmp_path, activation):
    net = make_net(activation=activation)
    io.save(net, tmp_path / "net.npz")
    assert_same_network(io.load(tmp_path / "net.npz"), net)


def test_round_trip_of_per_layer_activations(tmp_path):
    net = make_net(activation=["relu", "softplus", "sigmoid"], layers=(2, 6, 5, 4, 1))
    io.save(net, tmp_path / "net.npz")
    assert_same_network(io.load(tmp_path / "net.npz"), net)


def test_round_trip_without_hidden_layers(tmp_path):
    net = make_net(layers=(4, 2))  # n = 1: no activations at all
    io.save(net, tmp_path / "net.npz")
    assert_same_network(io.load(tmp_path / "net.npz"), net)


def test_round_trip_keeps_a_seed_above_2_to_the_63(tmp_path):
    net = fastprop.Network([2, 3, 1], seed=2**64 - 1)
    io.save(net, tmp_path / "net.npz")
    assert io.load(tmp_path / "net.npz").seed == 2**64 - 1


def test_save_appends_npz_like_numpy_and_load_finds_it(tmp_path):
    net = make_net()
    written = io.save(net, str(tmp_path / "model"))
    assert written == str(tmp_path / "model.npz")
    assert sorted(os.listdir(tmp_path)) == ["model.npz"]
    assert_same_network(io.load(str(tmp_path / "model")), net)


def test_save_replaces_an_existing_file(tmp_path):
    io.save(make_net(bias=False), tmp_path / "net.npz")
    net = make_net(bias=True)
    io.save(net, tmp_path / "net.npz")
    assert_same_network(io.load(tmp_path / "net.npz"), net)


def test_the_file_is_a_plain_npz_without_pickles(tmp_path):
    io.save(make_net(), tmp_path / "net.npz")
    with np.load(tmp_path / "net.npz", allow_pickle=False) as archive:
        assert {"format", "version", "layers", "activations", "bias", "loss", "dtype", "seed",
                "params"} <= set(archive.files)
        assert archive["activations"].dtype.kind == "U"
        assert archive["format"] == "fastprop" and archive["version"] == 1


def test_extra_arrays_round_trip(tmp_path):
    classes = np.array(["setosa", "versicolor", "virginica"])
    mean = np.array([1.5, -2.0])
    io.save(make_net(), tmp_path / "net.npz", extra={"classes": classes, "x_mean": mean})
    net, extra = io.load(tmp_path / "net.npz", return_extra=True)
    assert set(extra) == {"classes", "x_mean"}
    assert np.array_equal(extra["classes"], classes)
    assert np.array_equal(extra["x_mean"], mean)


def test_without_extra_return_extra_gives_an_empty_dict(tmp_path):
    io.save(make_net(), tmp_path / "net.npz")
    _, extra = io.load(tmp_path / "net.npz", return_extra=True)
    assert extra == {}


def test_extra_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="object array"):
        io.save(make_net(), tmp_path / "net.npz", extra={"names": np.array([1, "a"], dtype=object)})
    assert not os.listdir(tmp_path)


def test_extra_names_must_be_identifiers(tmp_path):
    with pytest.raises(ValueError, match="identifiers"):
        io.save(make_net(), tmp_path / "net.npz", extra={"a/b": np.zeros(1)})


def test_save_refuses_what_is_not_a_network(tmp_path):
    with pytest.raises(TypeError, match="fastprop.Network"):
        io.save({"params": []}, tmp_path / "net.npz")


def test_unknown_keys_are_ignored(tmp_path):
    net = make_net()
    np.savez(tmp_path / "net.npz", **stored(net, comment=np.array("a later addition")))
    assert_same_network(io.load(tmp_path / "net.npz"), net)


# ---------------------------------------------------------------------- bad files
def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.load(tmp_path / "nothing.npz")


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99])
def test_truncated_file_is_refused(tmp_path, keep):
    io.save(make_net(), tmp_path / "net.npz")
    data = (tmp_path / "net.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(ValueError, match="cut.npz"):
        io.load(tmp_path / "cut.npz")


def test_corrupted_bytes_are_refused(tmp_path):
    net = make_net(layers=(20, 30, 1))
    io.save(net, tmp_path / "net.npz")
    data = bytearray((tmp_path / "net.npz").read_bytes())
    middle = data.index(np.ascontiguousarray(net.params).tobytes()[:64]) + 100
    data[middle] ^= 0xFF  # one flipped byte inside params: the zip's CRC catches it
    (tmp_path / "net.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        io.load(tmp_path / "net.npz")


def test_random_bytes_are_refused(tmp_path):
    (tmp_path / "noise.npz").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not an .npz"):
        io.load(tmp_path / "noise.npz")


def test_a_npy_file_is_refused(tmp_path):
    with open(tmp_path / "array.npz", "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(ValueError, match="not an .npz"):
        io.load(tmp_path / "array.npz")


class _CreatesMarker:
    """Unpickling this opens (creates) the marker file: proof that the pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def test_a_pickle_renamed_npz_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "model.npz").write_bytes(pickle.dumps(_CreatesMarker(marker)))
    with pytest.raises(ValueError, match="pickle"):
        io.load(tmp_path / "model.npz")
    assert not marker.exists()


def test_an_object_array_inside_the_archive_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    net = make_net()
    payload = np.array([_CreatesMarker(marker)], dtype=object)
    np.savez(tmp_path / "net.npz", **stored(net, activations=payload))
    assert not marker.exists()
    with pytest.raises(ValueError, match="[Oo]bject arrays"):
        io.load(tmp_path / "net.npz")
    assert not marker.exists()


@pytest.mark.parametrize("changes, message", [
    ({"version": np.array(2, dtype=np.int64)}, "version 2 is not supported"),
    ({"format": np.array("keras")}, "format is 'keras'"),
    ({"params": None}, "missing key.*params"),
    ({"layers": None, "seed": None}, "missing key.*layers, seed"),
    ({"params": np.zeros(5)}, r"params must have shape \(54,\)"),
    ({"params": np.zeros(54, dtype=np.float32)}, "params must be float64"),
    ({"layers": np.array([3, 5, 4, 3], dtype=np.int64)}, "params must have shape"),
    ({"layers": np.array([3, 0, 4, 2], dtype=np.int64)}, "layers must be"),
    ({"layers": np.array([3.0, 5.0, 4.0, 2.0])}, "layers must be"),
    ({"activations": np.array(["tanh", "swish"])}, "swish"),
    ({"fits": np.array(-1, dtype=np.int64)}, r"fits must be a count in \[0, 2\*\*63\), got -1"),
    ({"fits": np.array(2**63, dtype=np.uint64)}, "fits must be a count in"),
    ({"fits": np.array([1, 2], dtype=np.int64)}, "fits must be a single integer"),
    ({"fits": np.array(1.5)}, "fits must be a single integer"),
    ({"activations": np.array(["tanh"])}, r"activations must be 2 str"),
    ({"loss": np.array("hinge")}, "hinge"),
    ({"dtype": np.array("float16")}, "dtype must be"),
    ({"bias": np.array(1)}, "bias must be"),
    ({"version": np.array("1")}, "version must be"),
])
def test_inconsistent_files_are_refused_with_the_reason(tmp_path, changes, message):
    net = make_net()  # layers (3, 5, 4, 2) with bias: 54 parameters
    np.savez(tmp_path / "bad.npz", **stored(net, **changes))
    with pytest.raises(ValueError, match=message) as error:
        io.load(tmp_path / "bad.npz")
    assert "bad.npz is not a valid fastprop model" in str(error.value)


# ---------------------------------------------------------------------- atomic writes
def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    old = make_net(bias=False)
    io.save(old, tmp_path / "net.npz")

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        io.save(make_net(bias=True), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == ["net.npz"]
    assert_same_network(io.load(tmp_path / "net.npz"), old)


def test_a_failed_write_leaves_no_file_and_no_temporary(tmp_path, monkeypatch):
    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        io.save(make_net(), tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []


def test_save_refuses_a_directory(tmp_path):
    with pytest.raises(IsADirectoryError, match=r"cannot write the model to .*: it is a "
                                                r"directory"):
        io.save(make_net(), tmp_path)
    assert not os.path.exists(f"{tmp_path}.npz")


def test_save_into_a_missing_directory_names_the_directory(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        io.save(make_net(), tmp_path / "no" / "net.npz")
    assert str(error.value) == (f"cannot write the model to {tmp_path / 'no' / 'net.npz'}: "
                                f"the directory {tmp_path / 'no'} does not exist")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_save_refuses_to_replace_what_is_not_a_regular_file(tmp_path):
    os.mkfifo(tmp_path / "net.npz")
    with pytest.raises(OSError, match=r"net\.npz: it is a FIFO \(named pipe\), not a regular"):
        io.save(make_net(), tmp_path / "net.npz")
    assert not (tmp_path / "net.npz").is_file()  # left as it was


def test_save_writes_through_a_symbolic_link(tmp_path):
    (tmp_path / "models").mkdir()
    target = tmp_path / "models" / "net.npz"
    target.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    net = make_net()
    io.save(net, link)
    assert link.is_symlink()
    assert_same_network(io.load(target), net)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_replaced_file_keeps_its_permissions(tmp_path):
    io.save(make_net(), tmp_path / "net.npz")
    (tmp_path / "net.npz").chmod(0o600)
    io.save(make_net(), tmp_path / "net.npz")
    assert (tmp_path / "net.npz").stat().st_mode & 0o777 == 0o600


def test_a_name_of_255_bytes_can_be_written(tmp_path):
    name = "m" * 251 + ".npz"  # the longest name most file systems take
    net = make_net()
    try:
        path = io.save(net, tmp_path / name)
    except OSError as error:  # a file system with a shorter limit
        pytest.skip(f"this file system refuses a name of 255 bytes: {error}")
    assert_same_network(io.load(path), net)
    assert os.listdir(tmp_path) == [name]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_the_new_file_gets_the_usual_permissions(tmp_path):
    umask = os.umask(0o022)
    try:
        io.save(make_net(), tmp_path / "net.npz")
    finally:
        os.umask(umask)
    assert (tmp_path / "net.npz").stat().st_mode & 0o777 == 0o644


# ---------------------------------------------------------------------- one state for files and pickles
@pytest.mark.parametrize("dtype", DTYPES)
def test_a_file_and_a_pickle_hold_the_same_state(tmp_path, dtype):
    net = make_net(dtype, loss="mse")
    pickled = net.__getstate__()
    assert set(pickled) == {"layers", "activations", "bias", "loss", "dtype", "seed", "fits",
                            "params", "history"}
    path = io.save(net, tmp_path / "net")
    with np.load(path, allow_pickle=False) as archive:
        for key in set(pickled) - {"history"}:
            assert np.array_equal(np.asarray(archive[key]), np.asarray(pickled[key])), key
        assert archive["params"].dtype == pickled["params"].dtype
    assert_same_network(io.load(path), net)
    assert_same_network(pickle.loads(pickle.dumps(net)), net)


@pytest.mark.parametrize("how", ["load", "pickle", "deepcopy"])
def test_a_copy_goes_on_drawing_where_the_network_stopped(tmp_path, how):
    """The count of fits is kept: a copy's next fit shuffles (and draws DP-SGD noise) as the
    original's next fit does, not as its first."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((24, 3)), rng.standard_normal((24, 2))
    net = make_net()
    net.fit(X, Y, 2, lr=1e-3, optimizer="sgd", batch_size=4)
    copy_of = {"load": lambda: io.load(io.save(net, tmp_path / "net")),
               "pickle": lambda: pickle.loads(pickle.dumps(net)),
               "deepcopy": lambda: copy.deepcopy(net)}[how]()
    fresh = make_net()
    fresh.params = net.params
    for each in (net, copy_of, fresh):
        each.fit(X, Y, 2, lr=1e-3, optimizer="dpsgd", batch_size=4, max_grad_norm=1.0)
    np.testing.assert_array_equal(copy_of.params, net.params)
    assert not np.array_equal(fresh.params, net.params)  # the first fit's shuffles and noise


def test_a_file_without_the_count_of_fits_loads_as_before(tmp_path):
    net = make_net()
    np.savez(tmp_path / "old.npz", **stored(net))
    loaded = io.load(tmp_path / "old.npz")
    assert_same_network(loaded, net)
    assert loaded.__getstate__()["fits"] == 0


def test_a_pickle_of_the_earlier_state_layout_still_loads():
    # fastprop 0.1 pickled the hidden activations under the key "activation".
    net = make_net(activation="relu")
    earlier = {**net.__getstate__(), "activation": list(net.activations)}
    del earlier["activations"]
    restored = fastprop.Network.__new__(fastprop.Network)
    restored.__setstate__(earlier)
    assert_same_network(restored, net)


def test_a_network_loads_from_a_file_as_it_unpickles(tmp_path):
    net = make_net()
    path = net.save(tmp_path / "net")
    assert_same_network(fastprop.Network.load(path), net)
    assert_same_network(io.load(path), net)
