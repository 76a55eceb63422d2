"""fastprop.export.to_onnx / from_onnx on fastprop's own graphs: onnxruntime against forward,
exact round trips, the CLI's standardisation, the skl2onnx converters, errors."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

import fastprop
from fastprop import cli
from fastprop.export import DEFAULT_OPSET, from_onnx, to_onnx
from fastprop.export.onnx import MIN_OPSET
from helpers import ACTIVATIONS, DTYPES, assert_close, random_inputs as inputs, random_network

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

# onnxruntime's float Gemm (MLAS) sums in its own blocked order and its float Sigmoid and
# Tanh are polynomial approximations; its double kernels use Eigen and the C library.
# Measured against forward on networks like these: at most 3.7e-7 (float32) and 5.5e-16
# (float64) of the output scale (conftest.assert_close's measure); the bounds leave 25-100x
# for other versions and CPUs.
TOL = {"float32": 1e-5, "float64": 1e-13}
CLASSIFICATION = ("cross_entropy", "binary_cross_entropy")


def run(model, X):
    """{output name: array} of onnxruntime on X."""
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {session.get_inputs()[0].name: X})))


def softmax(Z):
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def sigmoid(Z):
    return 1 / (1 + np.exp(-np.asarray(Z, dtype=np.float64)))


# ---------------------------------------------------------------------- onnxruntime = forward
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_onnxruntime_matches_forward(activation, bias, dtype):
    net = random_network([5, 7, 3, 2], activation, bias, dtype)
    model = to_onnx(net)
    onnx.checker.check_model(model, full_check=True)  # with shape inference
    X = inputs(net)
    out = run(model, X)
    assert list(out) == ["z"]
    assert out["z"].dtype == net.dtype
    assert_close(out["z"], net.forward(X), TOL[dtype], f"{activation} bias={bias} {dtype}")


@pytest.mark.parametrize("layers", [[1, 1], [13, 1, 9, 2], [2, 31, 17, 33, 3]])
@pytest.mark.parametrize("dtype", DTYPES)
def test_onnxruntime_matches_forward_for_odd_widths_and_mixed_activations(layers, dtype):
    activations = [ACTIVATIONS[(i + 3) % len(ACTIVATIONS)] for i in range(len(layers) - 2)]
    net = random_network(layers, activations, True, dtype)
    X = inputs(net, t=1)  # a batch of one row, too
    assert_close(run(to_onnx(net), X)["z"], net.forward(X), TOL[dtype], str(layers))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, l_n, link", [("cross_entropy", 4, softmax),
                                              ("binary_cross_entropy", 1, sigmoid),
                                              ("binary_cross_entropy", 3, sigmoid)])
def test_classification_losses_add_a_probabilities_output(loss, l_n, link, dtype):
    net = random_network([3, 6, l_n], "relu", True, dtype, loss=loss)
    X = inputs(net) * 4
    out = run(to_onnx(net), X)
    assert list(out) == ["z", "probabilities"]
    Z = net.forward(X)
    assert_close(out["z"], Z, TOL[dtype], "z")
    assert_close(out["probabilities"], link(Z), TOL[dtype], "probabilities")


@pytest.mark.parametrize("loss", ["sse", "mse"])
def test_regression_losses_have_one_output(loss):
    model = to_onnx(random_network([2, 3, 1], "tanh", True, "float64", loss=loss))
    assert [output.name for output in model.graph.output] == ["z"]


@pytest.mark.parametrize("opset", [MIN_OPSET, 17, DEFAULT_OPSET])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_supported_opset_runs(opset, dtype):
    net = random_network([3, 4, 5, 6, 7, 8, 9, 2], list(ACTIVATIONS), True, dtype,
                         loss="cross_entropy")
    model = to_onnx(net, opset=opset)
    assert [(o.domain, o.version) for o in model.opset_import][0] == ("", opset)
    X = inputs(net)
    assert_close(run(model, X)["z"], net.forward(X), TOL[dtype], f"opset {opset}")


def test_float64_graphs_compute_leaky_relu_and_softplus_as_functions():
    net = random_network([2, 3, 3, 1], ["leaky_relu", "softplus"], True, "float64")
    model = to_onnx(net)
    assert sorted(f.name for f in model.functions) == ["leaky_relu", "softplus"]
    assert {n.op_type for n in model.graph.node if n.domain == "fastprop"} == \
        {"leaky_relu", "softplus"}
    single = to_onnx(random_network([2, 3, 3, 1], ["leaky_relu", "softplus"], True, "float32"))
    assert not single.functions  # float32: the standard LeakyRelu and Softplus
    assert {"LeakyRelu", "Softplus"} <= {n.op_type for n in single.graph.node}


def test_softplus_and_leaky_relu_in_float64_hold_far_out():
    net = fastprop.Network([1, 1, 1], "softplus", bias=False, dtype="float64", seed=0)
    net.params = [1.0, 1.0]
    X = np.array([[-800.0], [-40.0], [-1e-3], [0.0], [2.5], [40.0], [800.0]])
    assert_close(run(to_onnx(net), X)["z"], net.forward(X), 1e-15, "softplus")
    net = fastprop.Network([1, 1, 1], "leaky_relu", bias=False, dtype="float64", seed=0)
    net.params = [1.0, 1.0]
    np.testing.assert_array_equal(run(to_onnx(net), X)["z"], net.forward(X))  # same product


def test_metadata_carries_the_version_and_the_layers():
    net = random_network([4, 6, 5, 3], ["tanh", "relu"], True, "float32", loss="cross_entropy")
    model = to_onnx(net)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["fastprop.version"] == fastprop.__version__
    assert json.loads(props["fastprop.layers"]) == [4, 6, 5, 3]
    assert json.loads(props["fastprop.activations"]) == ["tanh", "relu"]
    assert json.loads(props["fastprop.bias"]) is True
    assert json.loads(props["fastprop.loss"]) == "cross_entropy"
    assert json.loads(props["fastprop.dtype"]) == "float32"
    assert model.producer_name == "fastprop" and model.producer_version == fastprop.__version__
    shapes = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in [*model.graph.input, *model.graph.output]}
    assert shapes == {"x": ["t", 4], "z": ["t", 3], "probabilities": ["t", 3]}
    W_0 = next(i for i in model.graph.initializer if i.name == "W_0")
    assert list(W_0.dims) == [6, 4]  # fastprop's (l_1, l_0), read by Gemm with transB=1


# ---------------------------------------------------------------------- round trips
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_from_onnx_reads_back_the_same_network(activation, bias, dtype):
    for loss in ("sse", "mse", *CLASSIFICATION):
        net = random_network([3, 7, 5, 2], activation, bias, dtype, loss=loss)
        back = from_onnx(to_onnx(net))
        assert (back.layers, back.activations, back.bias, back.dtype, back.loss_name) == \
            (net.layers, net.activations, net.bias, net.dtype, net.loss_name)
        assert back.params.tobytes() == net.params.tobytes()  # bit for bit


def test_round_trip_through_a_file_and_bytes(tmp_path):
    net = random_network([3, 4, 2], "softplus", True, "float64", loss="cross_entropy")
    path = tmp_path / "net.onnx"
    model = net.to_onnx(path)
    assert path.read_bytes() == model.SerializeToString()
    for source in (path, str(path), path.read_bytes(), model):
        back = fastprop.from_onnx(source)
        assert back.params.tobytes() == net.params.tobytes()
    assert fastprop.Network.from_onnx(path, dtype="float32").dtype == np.float32
    assert fastprop.from_onnx(path, loss="sse").loss_name == "sse"


# ---------------------------------------------------------------------- the standardisation
def cli_extra(net, rng, classification):
    l_0, l_n = net.layers[0], net.layers[-1]
    extra = {"feature_names": np.array([f"f{j}" for j in range(l_0)]),
             "x_mean": rng.standard_normal(l_0) * 10, "x_scale": rng.uniform(0.5, 4, l_0),
             "target_names": np.array(["species" if classification else "y"])}
    if classification:
        extra.update(task=np.array("classification"),
                     classes=np.array([f"class {k}" for k in range(l_n)]))
    else:
        extra.update(task=np.array("regression"), y_mean=rng.standard_normal(l_n) * 50,
                     y_scale=rng.uniform(1, 30, l_n))
    return extra


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("classification", [True, False])
def test_the_standardisation_goes_into_the_graph_and_back(classification, dtype):
    rng = np.random.default_rng(3)
    loss = "cross_entropy" if classification else "mse"
    net = random_network([3, 8, 3], "tanh", True, dtype, loss=loss)
    extra = cli_extra(net, rng, classification)
    model = to_onnx(net, extra=extra)
    X = rng.standard_normal((30, 3)) * extra["x_scale"] + extra["x_mean"]
    out = run(model, X.astype(dtype))
    if classification:
        standardised = net.forward((X - extra["x_mean"]) / extra["x_scale"])
        assert_close(out["probabilities"], softmax(standardised), TOL[dtype], "p")
        assert (extra["classes"][out["z"].argmax(axis=1)] == cli.predict(net, extra, X)).all()
    else:
        assert [o.name for o in model.graph.output] == ["y"]
        assert_close(out["y"], cli.predict(net, extra, X), TOL[dtype], "y")

    with pytest.raises(ValueError, match="standardises its input.*return_extra=True"):
        from_onnx(model)
    back, back_extra = from_onnx(model, return_extra=True)
    assert back.params.tobytes() == net.params.tobytes()
    assert set(back_extra) == set(extra)
    for key, value in extra.items():
        if value.dtype.kind == "f":  # rounded to the graph's dtype
            np.testing.assert_array_equal(back_extra[key], value.astype(dtype))
        else:
            np.testing.assert_array_equal(back_extra[key], value)
    if dtype == "float64":  # every number came back exactly: the same predictions
        np.testing.assert_array_equal(cli.predict(back, back_extra, X),
                                      cli.predict(net, extra, X))


def test_from_onnx_without_standardisation_returns_an_empty_extra():
    net, extra = from_onnx(to_onnx(random_network([2, 2], "tanh", True, "float64")),
                           return_extra=True)
    assert extra == {}


@pytest.mark.parametrize("extra, message", [
    ({"x_mean": np.zeros(3), "y_log": np.zeros(1)}, "'y_log'.*does not know how to apply"),
    ({"x_mean": np.zeros(2)}, r"x_mean.*shape \(3,\)"),
    ({"x_scale": np.array([1.0, 0.0, 1.0])}, "x_scale.*must not hold 0"),
    ({"x_mean": np.array([0, np.nan, 0])}, "x_mean.*finite"),
    ({"y_mean": np.zeros(2)}, r"y_mean.*shape \(1,\)"),
    ({"classes": np.array(["a", "b"])}, "classes.*loss is 'mse'"),
    ({"task": np.array("classification")}, "task.*'classification'.*loss is 'mse'"),
    ({"feature_names": np.array(["a"])}, "feature_names.*3 entries"),
])
def test_extra_that_does_not_fit_is_refused(extra, message):
    net = random_network([3, 4, 1], "tanh", True, "float64", loss="mse")
    with pytest.raises(ValueError, match=message):
        to_onnx(net, extra=extra)


@pytest.mark.parametrize("key, value, becomes", [("x_scale", 1e-50, "0.0"),
                                                 ("y_scale", 1e50, "inf"),
                                                 ("x_mean", 1e40, "inf")])
def test_extra_must_fit_the_networks_dtype(key, value, becomes):
    net = random_network([2, 4, 1], "tanh", True, "float32", loss="mse")
    extra = {key: np.full(2 if key.startswith("x") else 1, value)}
    with pytest.raises(ValueError, match=f"{key}.*finite in float32.*becomes {becomes}"):
        to_onnx(net, extra=extra)
    to_onnx(random_network([2, 4, 1], "tanh", True, "float64", loss="mse"), extra=extra)


def test_a_model_beyond_protobufs_limit_is_refused_before_it_is_built(monkeypatch):
    from fastprop.export import onnx as onnx_export

    monkeypatch.setattr(onnx_export, "_PROTOBUF_LIMIT", (1 << 20) + 4000)  # 1 MiB kept aside
    net = random_network([10, 100, 1], "tanh", True, "float32", loss="mse")  # 1,201 params
    with pytest.raises(ValueError, match=r"parameters take 4804 bytes; an ONNX model is one "
                                         r"protobuf message"):
        to_onnx(net)


def test_extra_of_a_classifier_is_checked():
    net = random_network([3, 4, 3], "tanh", True, "float64", loss="cross_entropy")
    with pytest.raises(ValueError, match="y_mean.*de-standardises a regression"):
        to_onnx(net, extra={"y_mean": np.zeros(3)})
    with pytest.raises(ValueError, match="classes.*3 classes"):
        to_onnx(net, extra={"classes": np.array(["a", "b"])})
    with pytest.raises(TypeError, match="extra must be a mapping"):
        to_onnx(net, extra=[1, 2])


# ---------------------------------------------------------------------- the command line
def make_csv(path, t=150, classification=True, seed=0):
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


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse"])
def test_cli_export_onnx_predicts_what_predict_does(tmp_path, capsys, loss, dtype):
    data = tmp_path / "data.csv"
    X = make_csv(data, classification=loss != "mse")
    if loss == "binary_cross_entropy":  # two classes
        text = data.read_text().replace(",mid\n", ",low\n")
        data.write_text(text)
    model = tmp_path / "model.npz"
    assert cli.main(["train", str(data), "--layers", "6", "--epochs", "20", "--quiet",
                     "--loss", loss, "--dtype", dtype, "-o", str(model)]) == 0
    assert cli.main(["export", str(model), "-o", str(tmp_path / "model.onnx")]) == 0
    message = capsys.readouterr().out
    assert "model.onnx" in message and "the input standardisation" in message
    net, extra = fastprop.load(model, return_extra=True)
    out = run(onnx.load(str(tmp_path / "model.onnx")), X.astype(dtype))
    expected = cli.predict(net, extra, X)
    if loss == "mse":
        assert_close(out["y"], expected, TOL[dtype], "regression")
        return
    Z = out["z"]
    index = Z.argmax(axis=1) if Z.shape[1] > 1 else (Z[:, 0] > 0).astype(int)
    assert (extra["classes"][index] == expected).all()
    standardised = net.forward((X - extra["x_mean"]) / extra["x_scale"])
    link = softmax if loss == "cross_entropy" else sigmoid
    assert_close(out["probabilities"], link(standardised), TOL[dtype], "probabilities")
    props = {p.key: json.loads(p.value) for p in onnx.load(str(tmp_path / "model.onnx"))
             .metadata_props if p.key != "fastprop.version"}
    assert props["fastprop.classes"] == extra["classes"].tolist()
    assert props["fastprop.feature_names"] == ["f1", "f2", "f3"]


def test_cli_export_chooses_the_format_from_the_extension(tmp_path, capsys):
    model = tmp_path / "m.npz"
    random_network([2, 3, 1], "tanh", True, "float64").save(model)
    assert cli.main(["export", str(model)]) == 0  # default: ONNX beside the model
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node
    assert cli.main(["export", str(model), "-o", str(tmp_path / "m.h")]) == 0
    assert "m.h" in capsys.readouterr().out and "model_forward" in (tmp_path / "m.h").read_text()
    assert cli.main(["export", str(model), "--opset", "5"]) == 2
    assert "opset must be from 13" in capsys.readouterr().err
    assert cli.main(["export", str(model), "--name", "net"]) == 2
    assert "--name is for --format c" in capsys.readouterr().err
    assert cli.main(["export", str(model), "--format", "c", "--opset", "21"]) == 2
    assert "--opset is for --format onnx" in capsys.readouterr().err
    assert cli.main(["export", str(tmp_path / "missing.npz")]) == 2
    assert "no such model file" in capsys.readouterr().err


# ---------------------------------------------------------------------- scikit-learn pipelines
def test_skl2onnx_converts_fastprop_estimators_in_a_pipeline():
    pytest.importorskip("sklearn")
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from fastprop.export import register_skl2onnx
    from fastprop.sklearn import MLPClassifier, MLPRegressor

    register_skl2onnx()
    register_skl2onnx()  # twice is fine
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4)) * [1, 10, 0.1, 3] + [0, 5, 1, -2]
    targets = {"regression": X[:, 0] ** 2 - X[:, 3],
               "regression, 2 outputs": np.column_stack([X[:, 0] ** 2, X[:, 1]]),
               "binary": np.where(X[:, 0] > 0.3, "yes", "no"),
               "multiclass": np.digitize(X[:, 3], [-3, -1]) + 5}
    for what, y in targets.items():
        for dtype in DTYPES:
            Estimator = MLPRegressor if what.startswith("regression") else MLPClassifier
            mlp = Estimator(hidden_layer_sizes=(9,), activation="tanh", max_iter=30,
                            random_state=0, dtype=dtype)
            pipe = Pipeline([("scale", StandardScaler()), ("mlp", mlp)])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ConvergenceWarning after 30 epochs
                pipe.fit(X, y)
            for X_type in (np.float64, np.float32):
                options = None if Estimator is MLPRegressor else {id(mlp): {"zipmap": False}}
                model = skl2onnx.to_onnx(pipe, X[:1].astype(X_type), options=options)
                out = list(run(model, X.astype(X_type)).values())
                # The graph computes in the input's type: float32 input, float32 tolerance.
                tol = TOL["float64" if X_type is np.float64 and dtype == "float64"
                          else "float32"]
                label = f"{what}, {dtype} network, {np.dtype(X_type).name} input"
                if Estimator is MLPRegressor:
                    assert_close(out[0], pipe.predict(X).reshape(len(X), -1), tol, label)
                else:
                    assert (out[0] == pipe.predict(X)).all(), label
                    assert_close(out[1], pipe.predict_proba(X), tol, label)


# ---------------------------------------------------------------------- bad input
def test_to_onnx_refuses_bad_arguments(tmp_path):
    net = random_network([2, 3, 1], "tanh", True, "float64")
    with pytest.raises(ValueError, match=r"opset must be from 13 to \d+.*got 12"):
        to_onnx(net, opset=12)
    with pytest.raises(ValueError, match="opset must be from 13"):
        to_onnx(net, opset=10_000)
    with pytest.raises(TypeError, match="opset must be an int"):
        to_onnx(net, opset="21")
    with pytest.raises(TypeError, match="net must be a fastprop.Network"):
        to_onnx(object())
    with pytest.raises(FileNotFoundError, match="cannot write the ONNX model to .*does not "
                                                "exist"):
        to_onnx(net, tmp_path / "missing" / "m.onnx")
    with pytest.raises(IsADirectoryError, match="cannot write the ONNX model to"):
        to_onnx(net, tmp_path)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind
