"""fastprop.export.to_c: the header compiled by the system compiler, run, compared with forward."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

import fastprop
from fastprop import cli
from fastprop.export import to_c
from helpers import ACTIVATIONS, DTYPES, assert_close, random_inputs as inputs, random_network

CC = shutil.which("cc")
CXX = shutil.which("c++")
pytestmark = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on the PATH")

C_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"]
CXX_FLAGS = ["-x", "c++", "-Wall", "-Wextra", "-Werror", "-O2"]

# The C code sums each row of W_i a_i in order with the C library's exp, tanh and log1p;
# the core sums in blocks with FMA and its own SIMD σ, a few ulps from the libm's. Measured
# on networks up to [64, 64, 64, 10] with unit-scale parameters and inputs: at most 2.4e-7
# (float32) and 1.1e-15 (float64) of the output scale (conftest.assert_close's measure).
# The bounds leave 40-100x of that for other compilers (clang contracts a*b + c into an FMA
# by default) and other libms.
TOL = {"float32": 1e-5, "float64": 1e-13}
C_TYPE = {"float32": "float", "float64": "double"}

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include "model.h"

/* Reads t rows of L0 numbers from stdin; writes the outputs of model_forward row by row,
   then those of model_forward_batch, then (with PROBABILITIES) model_probabilities. */
int main(int argc, char **argv)
{
    unsigned long t, s;
    REAL *X, *Z, *B;
    if (argc != 2)
        return 2;
    t = strtoul(argv[1], 0, 10);
    X = (REAL *)malloc(sizeof(REAL) * (t * L0 + 1));
    Z = (REAL *)malloc(sizeof(REAL) * (t * LN + 1));
    B = (REAL *)malloc(sizeof(REAL) * (t * LN + 1));
    if (!X || !Z || !B || fread(X, sizeof(REAL), t * L0, stdin) != t * L0)
        return 3;
    for (s = 0; s < t; ++s)
        NAME(forward)(X + s * L0, Z + s * LN);
    NAME(forward_batch)(X, B, t);
    fwrite(Z, sizeof(REAL), t * LN, stdout);
    fwrite(B, sizeof(REAL), t * LN, stdout);
#ifdef PROBABILITIES
    for (s = 0; s < t; ++s)
        NAME(probabilities)(Z + s * LN, B + s * LN);
    fwrite(B, sizeof(REAL), t * LN, stdout);
#endif
    free(X);
    free(Z);
    free(B);
    return 0;
}
"""


def compile_and_run(tmp_path, source, X, l_n, *, name="model", cxx=False, probabilities=False):
    """The outputs of the driver on X: (forward row by row, forward_batch[, probabilities])."""
    (tmp_path / "model.h").write_text(source)
    (tmp_path / "driver.c").write_text(DRIVER)
    dtype = X.dtype.name
    defines = [f"-DREAL={C_TYPE[dtype]}", f"-DL0={X.shape[1]}", f"-DLN={l_n}",
               f"-DNAME(f)={name}_##f"] + (["-DPROBABILITIES"] if probabilities else [])
    compiler, flags = (CXX, CXX_FLAGS) if cxx else (CC, C_FLAGS)
    binary = tmp_path / ("driver_cxx" if cxx else "driver")
    build = subprocess.run([compiler, *flags, *defines, "-o", str(binary),
                            str(tmp_path / "driver.c"), "-lm"], capture_output=True, text=True)
    assert build.returncode == 0, f"{compiler} failed:\n{build.stderr}"
    run = subprocess.run([str(binary), str(len(X))], input=np.ascontiguousarray(X).tobytes(),
                         capture_output=True, check=True)
    parts = 3 if probabilities else 2
    return np.frombuffer(run.stdout, dtype=X.dtype).reshape(parts, len(X), l_n)


# ---------------------------------------------------------------------- same outputs
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_c_matches_forward(tmp_path, activation, bias, dtype):
    net = random_network([5, 7, 3, 2], activation, bias, dtype)
    X = inputs(net)
    single, batch = compile_and_run(tmp_path, to_c(net), X, 2)
    assert_close(single, net.forward(X), TOL[dtype], f"{activation} bias={bias} {dtype}")
    np.testing.assert_array_equal(batch, single)  # the same code, one row at a time


@pytest.mark.parametrize("layers", [[1, 1], [3, 1], [13, 1, 9, 2], [2, 31, 17, 33, 3],
                                    [64, 64, 64, 10]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_c_matches_forward_for_odd_widths(tmp_path, layers, dtype):
    activations = [ACTIVATIONS[i % len(ACTIVATIONS)] for i in range(len(layers) - 2)]
    net = random_network(layers, activations, True, dtype, seed=len(layers))
    X = inputs(net, t=37)
    single, batch = compile_and_run(tmp_path, to_c(net), X, layers[-1])
    assert_close(single, net.forward(X), TOL[dtype], f"{layers} {dtype}")
    np.testing.assert_array_equal(batch, single)


@pytest.mark.skipif(CXX is None, reason="no C++ compiler (c++) on the PATH")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
def test_c_compiles_as_cpp_with_every_activation(tmp_path, bias, dtype):
    layers = [4, 5, 3, 7, 2, 6, 9, 3]  # six hidden layers, one per activation
    net = random_network(layers, list(ACTIVATIONS), bias, dtype, loss="cross_entropy")
    X = inputs(net)
    single, batch, p = compile_and_run(tmp_path, to_c(net), X, 3, cxx=True, probabilities=True)
    Z = net.forward(X)
    assert_close(single, Z, TOL[dtype], f"C++ bias={bias} {dtype}")
    assert_close(p, softmax(Z), TOL[dtype], "C++ probabilities")


def softmax(Z):
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def sigmoid(Z):
    return 1 / (1 + np.exp(-np.asarray(Z, dtype=np.float64)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, l_n, link", [("cross_entropy", 4, softmax),
                                              ("binary_cross_entropy", 1, sigmoid),
                                              ("binary_cross_entropy", 3, sigmoid)])
def test_c_probabilities_are_the_link_of_forward(tmp_path, loss, l_n, link, dtype):
    net = random_network([3, 6, l_n], "tanh", True, dtype, loss=loss)
    X = inputs(net) * 4  # logits far from 0, where a naive softmax or sigmoid overflows
    single, _, p = compile_and_run(tmp_path, to_c(net), X, l_n, probabilities=True)
    assert_close(p, link(net.forward(X)), TOL[dtype], loss)
    assert np.all((p >= 0) & (p <= 1))
    if loss == "cross_entropy":
        np.testing.assert_allclose(p.sum(axis=1), 1, rtol=TOL[dtype])


def test_c_has_no_probabilities_for_a_regression():
    assert "probabilities" not in to_c(random_network([2, 3, 1], "tanh", True, "float64"))


# ---------------------------------------------------------------------- exact parameters
PARAMETER_DRIVER = r"""
#include <stdio.h>
#include "model.h"
int main(void)
{
    fwrite(model_W0, sizeof model_W0, 1, stdout);
    fwrite(model_b0, sizeof model_b0, 1, stdout);
    fwrite(model_W1, sizeof model_W1, 1, stdout);
    fwrite(model_b1, sizeof model_b1, 1, stdout);
    return 0;
}
"""


@pytest.mark.parametrize("dtype", DTYPES)
def test_c_parameters_are_exact(tmp_path, dtype):
    net = random_network([6, 5, 4], "relu", True, dtype)
    info = np.finfo(dtype)
    special = [0.0, -0.0, info.max, -info.max, info.tiny, info.smallest_subnormal, 1 / 3,
               np.inf, -np.inf, np.nan, 0.1, 1e-30, 123456789.0]
    net.params[:len(special)] = special
    (tmp_path / "model.h").write_text(to_c(net))
    (tmp_path / "params.c").write_text(PARAMETER_DRIVER)
    subprocess.run([CC, *C_FLAGS, "-o", str(tmp_path / "params"), str(tmp_path / "params.c"),
                    "-lm"], check=True)
    out = subprocess.run([str(tmp_path / "params")], capture_output=True, check=True).stdout
    written = np.frombuffer(out, dtype=dtype)
    nan = np.isnan(net.params)
    np.testing.assert_array_equal(np.isnan(written), nan)
    assert written[~nan].tobytes() == net.params[~nan].tobytes()  # bit for bit, -0.0 included


@pytest.mark.parametrize("dtype", DTYPES)
def test_c_keeps_the_sign_of_nan(tmp_path, dtype):
    net = random_network([2, 2, 1], "relu", True, dtype)
    net.params[:2] = [np.nan, -np.nan]
    (tmp_path / "model.h").write_text(to_c(net))
    (tmp_path / "params.c").write_text(PARAMETER_DRIVER)
    subprocess.run([CC, *C_FLAGS, "-o", str(tmp_path / "params"), str(tmp_path / "params.c"),
                    "-lm"], check=True)
    out = subprocess.run([str(tmp_path / "params")], capture_output=True, check=True).stdout
    written = np.frombuffer(out, dtype=dtype)[:2]
    assert np.all(np.isnan(written)) and list(np.signbit(written)) == [False, True]


# ---------------------------------------------------------------------- the standardisation
@pytest.mark.parametrize("dtype", DTYPES)
def test_c_applies_the_standardisation(tmp_path, dtype):
    net = random_network([3, 8, 2], "tanh", True, dtype)
    rng = np.random.default_rng(5)
    extra = {"x_mean": rng.standard_normal(3) * 10, "x_scale": rng.uniform(0.5, 4, 3),
             "y_mean": np.array([100.0, -3.0]), "y_scale": np.array([20.0, 0.25])}
    X = (rng.standard_normal((40, 3)) * extra["x_scale"] + extra["x_mean"]).astype(dtype)
    y, _ = compile_and_run(tmp_path, to_c(net, extra=extra), X, 2)
    expected = cli.predict(net, extra, X)  # what `python -m fastprop predict` computes
    assert_close(y, expected, TOL[dtype], "standardised")


def make_csv(path, t=120, classification=True, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((t, 3)) * [1.0, 5.0, 0.1] + [0.0, 20.0, -1.0]
    if classification:
        target = np.array(["low", "mid", "high"])[np.digitize(X[:, 0] + X[:, 2] * 3,
                                                                [-3.5, -2.5])]
        rows = [f"{a!r},{b!r},{c!r},{y}" for (a, b, c), y in zip(X.tolist(), target)]
    else:
        target = X[:, 0] * 30 + X[:, 1]
        rows = [f"{a!r},{b!r},{c!r},{y!r}" for (a, b, c), y in zip(X.tolist(), target.tolist())]
    path.write_text("f1,f2,f3,target\n" + "\n".join(rows) + "\n")
    return X


@pytest.mark.parametrize("classification", [True, False])
def test_cli_export_c_matches_predict(tmp_path, capsys, classification):
    data = tmp_path / "data.csv"
    X = make_csv(data, classification=classification)
    model, header = tmp_path / "model.npz", tmp_path / "model.h"
    assert cli.main(["train", str(data), "--layers", "6", "--epochs", "20", "--quiet",
                     "-o", str(model)]) == 0
    assert cli.main(["export", str(model), "--format", "c", "-o", str(header)]) == 0
    assert "model.h" in capsys.readouterr().out
    net, extra = fastprop.load(model, return_extra=True)
    source = header.read_text()
    assert "model_standardise" in source and "f1, f2, f3" in source
    l_n = net.layers[-1]
    out = compile_and_run(tmp_path, source, X.astype(net.dtype), l_n,
                          probabilities=classification)
    expected = cli.predict(net, extra, X)
    if classification:
        classes = extra["classes"]
        assert (classes[out[0].argmax(axis=1)] == expected).all()
        assert "model_classes" in source and all(f'"{c}"' in source for c in classes)
    else:
        assert_close(out[0], expected, TOL[net.dtype.name], "regression, de-standardised")
        assert "model_destandardise" in source


# ---------------------------------------------------------------------- the code itself
def test_c_needs_only_math_h_and_writes_no_global():
    net = random_network([4, 5, 3], "sigmoid", True, "float32", loss="cross_entropy")
    source = to_c(net, extra={"x_mean": np.zeros(4), "x_scale": np.ones(4),
                              "feature_names": np.array(["a", "b", "c", "d"]),
                              "classes": np.array(["x", "y", "z"])})
    assert re.findall(r"^[ \t]*#[ \t]*include.*$", source, re.M) == ["#include <math.h>"]
    assert not re.search(r"\b(malloc|calloc|realloc|alloca|free)\s*\(", source)
    file_scope = [line for line in source.splitlines()
                  if line and not line[0].isspace() and line[0] not in "/*#{}"]
    for line in file_scope:  # every definition at file scope is constant data or a function
        assert line.startswith(("static const ", "static inline void ")), line


def test_c_comment_lists_the_layers_and_activations():
    net = random_network([4, 6, 5, 2], ["tanh", "leaky_relu"], False, "float64")
    source = to_c(net, name="tiny")
    head = source[:source.index("*/")]
    assert "4, 6, 5, 2" in head and "sigma_1          tanh" in head
    assert "sigma_2          leaky_relu" in head and "bias             none" in head
    assert "void tiny_forward(const double *x, double *z);" in head
    assert "tiny_dense(u, tiny_W0, a0, 4, 6);" in source  # no b_i without bias
    assert "/* z_1 = W_0 a_0, in u */" in source
    assert "/* a_2 = leaky_relu(z_2), in place */" in source
    assert source.isascii()


def test_two_models_live_in_one_translation_unit(tmp_path):
    first = random_network([3, 4, 2], "relu", True, "float32", seed=1)
    second = random_network([3, 5, 2], "softplus", False, "float32", seed=2)
    (tmp_path / "first.h").write_text(to_c(first, name="first"))
    (tmp_path / "second.h").write_text(to_c(second, name="second"))
    (tmp_path / "model.h").write_text('#include "first.h"\n#include "second.h"\n'
                                      '#include "first.h"\n')  # the guard holds
    driver = DRIVER.replace("NAME(forward)(X + s * L0, Z + s * LN)",
                            "first_forward(X + s * L0, Z + s * LN)") \
                   .replace("NAME(forward_batch)(X, B, t)", "second_forward_batch(X, B, t)")
    (tmp_path / "driver.c").write_text(driver)
    subprocess.run([CC, *C_FLAGS, "-DREAL=float", "-DL0=3", "-DLN=2", "-o",
                    str(tmp_path / "both"), str(tmp_path / "driver.c"), "-lm"], check=True)
    X = inputs(first, t=10)
    out = subprocess.run([str(tmp_path / "both"), "10"], input=X.tobytes(), capture_output=True,
                         check=True).stdout
    Z = np.frombuffer(out, dtype=np.float32).reshape(2, 10, 2)
    assert_close(Z[0], first.forward(X), TOL["float32"], "first")
    assert_close(Z[1], second.forward(X), TOL["float32"], "second")


def test_network_to_c_writes_the_file(tmp_path):
    net = random_network([2, 3, 1], "tanh", True, "float64")
    path = tmp_path / "net.h"
    source = net.to_c(path, name="net")
    assert path.read_text() == source and "net_forward" in source


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize("name", ["", "1model", "my-model", "_model", "model name", "modèle",
                                  "model;"])
def test_c_name_must_be_an_identifier(name):
    net = random_network([2, 1], "tanh", True, "float64")
    with pytest.raises(ValueError, match=r"name must be a C identifier .*got"):
        to_c(net, name=name)


def test_c_name_must_be_a_str():
    with pytest.raises(TypeError, match="name must be a str"):
        to_c(random_network([2, 1], "tanh", True, "float64"), name=3)


def test_c_refuses_what_it_cannot_write(tmp_path):
    net = random_network([2, 1], "tanh", True, "float64")
    with pytest.raises(FileNotFoundError, match=r"cannot write the C code to .*does not exist"):
        to_c(net, tmp_path / "missing" / "model.h")
    with pytest.raises(IsADirectoryError, match=r"cannot write the C code to .*is a directory"):
        to_c(net, tmp_path)
    with pytest.raises(TypeError, match="net must be a fastprop.Network"):
        to_c("model")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="needs a directory this user cannot write to")
def test_c_refuses_a_read_only_directory(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match=r"cannot write the C code to .*locked"):
            to_c(random_network([2, 1], "tanh", True, "float64"), locked / "model.h")
    finally:
        locked.chmod(0o700)


def test_c_reports_a_denied_write(tmp_path, monkeypatch):
    """The message of any OSError names the file (here a PermissionError, as for a read-only
    directory, which root, who runs some CI, is never refused)."""
    from fastprop import _files

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_files.os, "open", denied)
    with pytest.raises(PermissionError, match=r"cannot write the C code to .*m\.h: Permission "
                                              r"denied"):
        to_c(random_network([2, 1], "tanh", True, "float64"), tmp_path / "m.h")


def test_cli_export_reports_a_bad_name_and_path(tmp_path, capsys):
    model = tmp_path / "model.npz"
    random_network([2, 3, 1], "tanh", True, "float64").save(model)
    assert cli.main(["export", str(model), "--format", "c", "--name", "9lives",
                     "-o", str(tmp_path / "m.h")]) == 2
    assert "name must be a C identifier" in capsys.readouterr().err
    assert cli.main(["export", str(model), "--format", "c",
                     "-o", str(tmp_path / "no" / "m.h")]) == 2
    assert "cannot write the C code" in capsys.readouterr().err


def test_export_refuses_to_replace_what_is_not_a_regular_file(tmp_path):
    net = random_network([2, 1], "tanh", True, "float64")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "fifo.h"
        os.mkfifo(fifo)
        with pytest.raises(OSError, match=r"cannot write the C code to .*fifo\.h: it is a FIFO"):
            to_c(net, fifo)
        assert os.path.exists(fifo) and not os.path.isfile(fifo)  # left as it was
    if os.path.exists("/dev/null"):
        with pytest.raises(OSError, match="it is a character device, not a regular file"):
            to_c(net, "/dev/null")
        link = tmp_path / "null.h"
        link.symlink_to("/dev/null")
        with pytest.raises(OSError, match=r"a symbolic link to /dev/null\): it is a character"):
            to_c(net, link)


def test_export_writes_through_a_symbolic_link(tmp_path):
    net = random_network([2, 1], "tanh", True, "float64")
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.h"
    target.write_text("old")
    link = tmp_path / "model.h"
    link.symlink_to(target)
    to_c(net, link)
    assert link.is_symlink() and target.read_text() == to_c(net)


def test_export_says_when_a_directory_exists_but_takes_no_file(tmp_path, monkeypatch):
    """A directory where creating a file fails with ENOENT (as in /proc) exists: the
    message must not say it does not."""
    from fastprop import _files

    def missing(*args, **kwargs):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(_files.os, "open", missing)
    with pytest.raises(FileNotFoundError, match="no file can be created in the directory") \
            as error:
        to_c(random_network([2, 1], "tanh", True, "float64"), tmp_path / "m.h")
    assert "does not exist" not in str(error.value)
    if os.path.isdir("/proc/self"):
        monkeypatch.undo()
        with pytest.raises(OSError) as error:
            to_c(random_network([2, 1], "tanh", True, "float64"), "/proc/self/m.h")
        assert "does not exist" not in str(error.value)


def test_cli_export_refuses_to_overwrite_its_model_and_an_empty_output(tmp_path, capsys):
    random_network([2, 3, 1], "tanh", True, "float64").save(tmp_path / "net.npz")
    model = tmp_path / "net.h"  # a model file with a header's name
    os.rename(tmp_path / "net.npz", model)
    saved = model.read_bytes()
    assert cli.main(["export", str(model), "--format", "c"]) == 2  # default output: net.h
    assert "is the model file" in capsys.readouterr().err
    link = tmp_path / "link.h"
    link.symlink_to(model)
    assert cli.main(["export", str(model), "--format", "c", "-o", str(link)]) == 2
    assert "is the model file" in capsys.readouterr().err
    assert model.read_bytes() == saved
    assert cli.main(["export", str(model), "--format", "c", "-o", ""]) == 2
    err = capsys.readouterr().err
    assert "-o/--output must name the file to write" in err and err.count("\n") == 1



WORKSPACE_DRIVER = r"""
#include <stdio.h>
#include "model.h"

static REAL workspace[MODEL_WORK_SIZE]; /* static memory, as on a microcontroller */

int main(void)
{
    REAL x[L0], z[LN];
    while (fread(x, sizeof(REAL), L0, stdin) == L0) {
        model_forward_ws(x, z, workspace);
        fwrite(z, sizeof(REAL), LN, stdout);
    }
    printf("%lu", (unsigned long)MODEL_STACK_BYTES);
    return 0;
}
"""


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layers, standardise", [([5, 9, 3, 7, 2], False), ([6, 3, 4, 1], True),
                                                 ([3, 2], False), ([3, 2], True)])
def test_c_reuses_two_buffers_and_takes_a_workspace(tmp_path, dtype, layers, standardise):
    net = random_network(layers, "tanh", True, dtype, seed=3)
    extra = {"x_mean": np.full(layers[0], 0.5), "x_scale": np.full(layers[0], 2.0)} \
        if standardise else None
    source = to_c(net, extra=extra)
    kept = layers[1:-1] + ([layers[0]] if standardise else [])
    numbers = max(min(len(kept), 2) * max(kept, default=0), 1)  # two buffers of the widest
    itemsize = np.dtype(dtype).itemsize
    assert f"#define MODEL_WORK_SIZE {numbers} " in source
    assert f"#define MODEL_STACK_BYTES {numbers * itemsize} " in source
    assert f"MODEL_STACK_BYTES = {numbers * itemsize} bytes on the stack" in source
    (tmp_path / "model.h").write_text(source)
    (tmp_path / "ws.c").write_text(WORKSPACE_DRIVER)
    subprocess.run([CC, *C_FLAGS, f"-DREAL={C_TYPE[dtype]}", f"-DL0={layers[0]}",
                    f"-DLN={layers[-1]}", "-o", str(tmp_path / "ws"), str(tmp_path / "ws.c"),
                    "-lm"], check=True)
    X = inputs(net, t=7)
    out = subprocess.run([str(tmp_path / "ws")], input=X.tobytes(), capture_output=True,
                         check=True).stdout
    Z = np.frombuffer(out[:7 * layers[-1] * itemsize], dtype=dtype).reshape(7, layers[-1])
    assert int(out[7 * layers[-1] * itemsize:]) == numbers * itemsize
    expected = net.forward(((X - 0.5) / 2.0).astype(dtype)) if standardise else net.forward(X)
    assert_close(Z, expected, TOL[dtype], "forward_ws")


def test_two_different_headers_of_one_name_do_not_compile_together(tmp_path):
    first = random_network([3, 4, 2], "relu", True, "float32", seed=1)
    second = random_network([3, 4, 2], "relu", True, "float32", seed=2)
    (tmp_path / "a.h").write_text(to_c(first))
    (tmp_path / "b.h").write_text(to_c(second))
    (tmp_path / "same.h").write_text(to_c(first))  # the same content under another file name
    main = "int main(void) { float x[3] = {0}, z[2]; model_forward(x, z); return 0; }\n"
    (tmp_path / "ok.c").write_text('#include "a.h"\n#include "same.h"\n' + main)
    (tmp_path / "clash.c").write_text('#include "a.h"\n#include "b.h"\n' + main)
    subprocess.run([CC, *C_FLAGS, "-fsyntax-only", str(tmp_path / "ok.c")], check=True)
    clash = subprocess.run([CC, *C_FLAGS, "-fsyntax-only", str(tmp_path / "clash.c")],
                           capture_output=True, text=True)
    assert clash.returncode != 0 and "redefinition" in clash.stderr


def test_two_names_that_differ_in_case_do_not_compile_together(tmp_path):
    """Their macros (MODEL_WORK_SIZE, ...) would be one: the second header stops the build
    instead of sizing the first model's workspace."""
    small = random_network([3, 4, 2], "relu", True, "float32", seed=1)
    wide = random_network([3, 64, 2], "relu", True, "float32", seed=2)
    (tmp_path / "wide.h").write_text(to_c(wide, name="model"))
    (tmp_path / "small.h").write_text(to_c(small, name="Model"))
    (tmp_path / "main.c").write_text('#include "wide.h"\n#include "small.h"\n'
                                     "int main(void) { return 0; }\n")
    flags = [flag for flag in C_FLAGS if flag != "-Werror"]  # an error, not only a warning
    clash = subprocess.run([CC, *flags, "-fsyntax-only", str(tmp_path / "main.c")],
                           capture_output=True, text=True)
    assert clash.returncode != 0 and "MODEL_WORK_SIZE is defined already" in clash.stderr


def test_the_readme_c_example_compiles_and_runs(tmp_path):
    """README.md's main.c, with the float32 network it shows, as shown."""
    with open(os.path.join(os.path.dirname(__file__), "..", "README.md"),
              encoding="utf-8") as f:
        readme = f.read()
    main_c = re.search(r"```c\n(/\* main\.c: .*?)```", readme, re.S).group(1)
    net = random_network([4, 16, 3], "tanh", True, "float32", seed=4)
    net.to_c(tmp_path / "model.h", name="model")
    (tmp_path / "main.c").write_text(main_c)
    subprocess.run([CC, *C_FLAGS, "-o", str(tmp_path / "main"), str(tmp_path / "main.c"),
                    "-lm"], check=True, cwd=tmp_path)
    out = subprocess.run([str(tmp_path / "main")], capture_output=True, text=True,
                         check=True).stdout
    z = np.array(out.split(), dtype=np.float64)
    expected = net.forward(np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32))[0]
    np.testing.assert_allclose(z, expected, rtol=1e-5, atol=1e-6)  # %g prints 6 digits
    assert "static const double model_W0" in to_c(random_network([4, 16, 3], "tanh", True,
                                                                 "float64"))
