"""Networks from elsewhere: from_onnx on the graphs of skl2onnx and torch.onnx.export and its
refusals, from_sklearn / to_sklearn, and fastprop importing without the optional packages."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastprop
from fastprop import cli
from helpers import DTYPES, assert_close

# Both sides compute the same products in different orders (and torch's and onnxruntime's
# float32 σ are their own approximations); measured differences stay below 4e-7 (float32)
# and 1e-15 (float64) of the output scale, and these bounds leave 25x or more.
TOL = {"float32": 1e-5, "float64": 1e-13}
SKLEARN_ACTIVATIONS = ("logistic", "tanh", "relu", "identity")


def softmax(Z):
    Z = np.asarray(Z, dtype=np.float64)
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def sigmoid(Z):
    return 1 / (1 + np.exp(-np.asarray(Z, dtype=np.float64)))


def data(t=60, l_0=3, seed=0):
    return np.random.default_rng(seed).standard_normal((t, l_0))


# ---------------------------------------------------------------------- without the extras
def test_import_fastprop_needs_none_of_the_optional_packages():
    code = ("import sys\n"
            "import fastprop, fastprop.export, fastprop.interop\n"
            "net = fastprop.Network([2, 3, 1], 'tanh', bias=True)\n"
            "assert 'model_forward' in net.to_c()\n"
            "loaded = sorted(m for m in ('onnx', 'onnxruntime', 'skl2onnx', 'torch', 'sklearn')"
            " if m in sys.modules)\n"
            "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_onnx_export_without_onnx_says_what_to_install(tmp_path):
    code = ("import sys\n"
            "sys.modules['onnx'] = None  # as if not installed\n"
            "import fastprop\n"
            "from fastprop import cli\n"
            "net = fastprop.Network([2, 1])\n"
            "try:\n"
            "    net.to_onnx()\n"
            "except ImportError as error:\n"
            "    assert \"pip install onnx\" in str(error), error\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n"
            f"net.save({str(tmp_path / 'm.npz')!r})\n"
            f"assert cli.main(['export', {str(tmp_path / 'm.npz')!r}]) == 2\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "pip install onnx" in result.stderr


# ---------------------------------------------------------------------- torch.onnx.export
def torch_modules():
    nn = pytest.importorskip("torch").nn
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
            "leaky_relu": lambda: nn.LeakyReLU(0.01), "softplus": nn.Softplus,
            "identity": nn.Identity}


def torch_export(module, x, dynamo):
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")  # both of torch's exporters write through it
    if dynamo:
        pytest.importorskip("onnxscript")  # the exporter torch.onnx.export(dynamo=True) needs
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation of the legacy exporter, and others
        torch.onnx.export(module, (torch.from_numpy(x),), f, dynamo=dynamo, input_names=["x"],
                          output_names=["z"], verbose=False,
                          **({} if dynamo else {"dynamic_axes": {"x": {0: "t"}}}))
    return f.getvalue()


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_from_onnx_reads_torch_sequentials(dtype, dynamo):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    modules = torch_modules()
    torch.manual_seed(0)
    sizes = [3, 6, 5, 7, 4, 5, 6, 2]
    stack = []
    for i, activation in enumerate(modules):  # every activation once
        stack += [nn.Linear(sizes[i], sizes[i + 1]), modules[activation]()]
    stack.append(nn.Linear(sizes[-2], sizes[-1], bias=False))  # a layer without b_i
    module = nn.Sequential(*stack).to(getattr(torch, dtype)).eval()
    x = data(l_0=3).astype(dtype)
    net = fastprop.from_onnx(torch_export(module, x, dynamo))
    assert net.layers == tuple(sizes) and net.activations == tuple(modules)
    assert net.bias and not np.any(net.biases[-1])  # b_i = 0 where torch has none
    assert net.dtype == np.dtype(dtype)
    with torch.no_grad():
        expected = module(torch.from_numpy(x)).numpy()
    assert_close(net.forward(x), expected, TOL[dtype], f"{dtype}, dynamo={dynamo}")


# ---------------------------------------------------------------------- skl2onnx graphs
def sklearn_estimator(kind, activation="tanh", hidden=(5, 4), seed=0):
    neural = pytest.importorskip("sklearn.neural_network")
    X = data(seed=seed)
    Estimator = neural.MLPRegressor if kind.startswith("regression") else neural.MLPClassifier
    y = {"regression": X[:, 0] * 2 - X[:, 1],
         "binary": np.where(X[:, 0] > 0, "yes", "no"),
         "multiclass": np.digitize(X[:, 1], [-0.5, 0.5]),
         "multilabel": (X[:, :3] > 0).astype(int)}[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning
        return Estimator(hidden_layer_sizes=hidden, activation=activation, max_iter=50,
                         random_state=seed).fit(X, y), X


def pre_link(estimator, X):
    """The estimator's z_n: predict for a regressor, the logits under predict_proba."""
    if estimator.out_activation_ == "identity":
        return estimator.predict(X).reshape(len(X), -1)
    P = estimator.predict_proba(X)
    if estimator.out_activation_ == "softmax":
        return P
    return P[:, 1:] if P.shape[1] == 2 and estimator.n_outputs_ == 1 else P


@pytest.mark.parametrize("X_type", [np.float64, np.float32])
@pytest.mark.parametrize("kind, loss", [("regression", "sse"), ("binary", "binary_cross_entropy"),
                                        ("multiclass", "cross_entropy"),
                                        ("multilabel", "binary_cross_entropy")])
def test_from_onnx_reads_skl2onnx_graphs_of_sklearn_mlps(kind, loss, X_type):
    skl2onnx = pytest.importorskip("skl2onnx")
    estimator, X = sklearn_estimator(kind)
    model = skl2onnx.to_onnx(estimator, X[:1].astype(X_type))
    net = fastprop.from_onnx(model)
    dtype = np.dtype(X_type).name
    assert net.dtype == X_type and net.loss_name == loss
    assert net.layers == (3, 5, 4, estimator.n_outputs_) and net.activations == ("tanh", "tanh")
    Z = net.forward(X)
    if loss == "sse":
        expected = estimator.predict(X).reshape(-1, 1)
    else:
        link = softmax if loss == "cross_entropy" else sigmoid
        Z = link(Z)
        expected = pre_link(estimator, X)
    assert_close(Z, expected, TOL[dtype], f"{kind} {dtype}")


# ---------------------------------------------------------------------- refusals
def graph(nodes, initializers=(), l_0=3, l_n=2, elem=None, extra_inputs=()):
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    elem = onnx.TensorProto.FLOAT if elem is None else elem
    inputs = [helper.make_tensor_value_info("x", elem, ["t", l_0]), *extra_inputs]
    g = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("z", elem,
                                                                              ["t", l_n])],
                          initializer=[onnx.numpy_helper.from_array(np.asarray(a, np.float32), n)
                                       for n, a in initializers])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def dense(name, x, out, l_in, l_out, seed=0):
    onnx = pytest.importorskip("onnx")
    W = np.random.default_rng(seed).standard_normal((l_out, l_in))
    return (onnx.helper.make_node("Gemm", [x, f"{name}_W", f"{name}_b"], [out], name=name,
                                  transB=1),
            [(f"{name}_W", W), (f"{name}_b", np.ones(l_out))])


def test_from_onnx_names_an_unsupported_activation():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z1", 3, 4)
    second, p2 = dense("layer1", "a1", "z", 4, 2)
    elu = onnx.helper.make_node("Elu", ["z1"], ["a1"], name="my_elu")
    with pytest.raises(ValueError, match=r"node #1 'my_elu' \(Elu\) is not an operation "
                                         r"fastprop's model has"):
        fastprop.from_onnx(graph([first, elu, second], p1 + p2))


def test_from_onnx_names_a_branch():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z1", 3, 4)
    second, p2 = dense("layer1", "a1", "z", 4, 2)
    relu = onnx.helper.make_node("Relu", ["z1"], ["a1"], name="relu")
    side = onnx.helper.make_node("Sigmoid", ["z1"], ["side"], name="side_branch")
    with pytest.raises(ValueError, match=r"'side_branch' \(Sigmoid\) also reads 'z1': the graph "
                                         r"branches"):
        fastprop.from_onnx(graph([first, relu, side, second], p1 + p2))


def test_from_onnx_names_an_activation_on_the_output():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z1", 3, 2)
    relu = onnx.helper.make_node("Relu", ["z1"], ["z"], name="out_relu")
    with pytest.raises(ValueError, match=r"'out_relu' \(Relu\) applies an activation to the "
                                         r"output z_n"):
        fastprop.from_onnx(graph([first, relu], p1))


def test_from_onnx_names_a_leaky_relu_of_another_slope():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z1", 3, 4)
    second, p2 = dense("layer1", "a1", "z", 4, 2)
    leaky = onnx.helper.make_node("LeakyRelu", ["z1"], ["a1"], name="leaky", alpha=0.2)
    with pytest.raises(ValueError, match=r"'leaky' \(LeakyRelu\) has alpha=0.2"):
        fastprop.from_onnx(graph([first, leaky, second], p1 + p2))


def test_from_onnx_names_weights_that_are_not_constants():
    onnx = pytest.importorskip("onnx")
    node = onnx.helper.make_node("MatMul", ["x", "w"], ["z"], name="mm")
    w = onnx.helper.make_tensor_value_info("w", onnx.TensorProto.FLOAT, [3, 2])
    with pytest.raises(ValueError, match=r"2 inputs \(x, w\)"):
        fastprop.from_onnx(graph([node], extra_inputs=[w]))


def test_from_onnx_names_the_scaler_of_a_pipeline():
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    estimator, X = sklearn_estimator("regression")
    pipe = Pipeline([("scale", StandardScaler()), ("mlp", estimator)]).fit(X, estimator.predict(X))
    with pytest.raises(ValueError, match=r"\(ai\.onnx\.ml\.Scaler\) where a layer"):
        fastprop.from_onnx(skl2onnx.to_onnx(pipe, X[:1].astype(np.float32)))


def test_from_onnx_names_the_reshape_of_a_multi_output_regressor():
    """skl2onnx reshapes the (t, 2) output of a 2-output MLPRegressor to (2t, 1)."""
    skl2onnx = pytest.importorskip("skl2onnx")
    neural = pytest.importorskip("sklearn.neural_network")
    X = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        estimator = neural.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5).fit(X, X[:, :2])
    with pytest.raises(ValueError, match=r"\(Reshape\) reshapes the output z_n \(t, 2\) to "
                                         r"\[-1, 1\]"):
        fastprop.from_onnx(skl2onnx.to_onnx(estimator, X[:1]))


def test_from_onnx_refuses_a_changed_fastprop_function():
    onnx = pytest.importorskip("onnx")
    net = fastprop.Network([2, 3, 1], "softplus", bias=True, dtype="float64", seed=0)
    model = net.to_onnx()
    function = next(f for f in model.functions if f.name == "softplus")
    function.node[0].op_type = "Sigmoid"  # Relu(z) -> Sigmoid(z)
    with pytest.raises(ValueError, match="fastprop.softplus whose body is not fastprop's"):
        fastprop.from_onnx(model)
    assert onnx  # used


def test_from_onnx_refuses_what_is_not_an_onnx_model(tmp_path):
    pytest.importorskip("onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01 certainly not protobuf \xff" * 10)
    with pytest.raises(ValueError, match="junk.onnx is not an ONNX model"):
        fastprop.from_onnx(junk)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.onnx is not an ONNX model: it has no graph"):
        fastprop.from_onnx(empty)
    with pytest.raises(FileNotFoundError, match="no such ONNX file"):
        fastprop.from_onnx(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="is not a regular file but a directory"):
        fastprop.from_onnx(tmp_path)
    with pytest.raises(TypeError, match="model must be a path, bytes or an onnx.ModelProto"):
        fastprop.from_onnx(3.5)


def test_from_onnx_refuses_an_invalid_graph():
    onnx = pytest.importorskip("onnx")
    node = onnx.helper.make_node("Relu", ["undefined"], ["z"])
    with pytest.raises(ValueError, match="is not a valid ONNX model"):
        fastprop.from_onnx(graph([node]))


def test_from_onnx_refuses_a_float16_graph_unless_told_the_dtype():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z", 3, 2)
    model = graph([first], p1, elem=onnx.TensorProto.FLOAT16)
    for init in model.graph.initializer:  # the parameters in float16, as the input
        array = onnx.numpy_helper.to_array(init).astype(np.float16)
        init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
    with pytest.raises(ValueError, match="computes in float16.*pass dtype="):
        fastprop.from_onnx(model)
    assert fastprop.from_onnx(model, dtype="float32").layers == (3, 2)


@pytest.mark.parametrize("to", ["FLOAT16", "INT32", "INT64", "BFLOAT16"])
def test_from_onnx_refuses_a_cast_that_changes_the_input(to):
    """A Cast to float16 rounds x and one to an integer truncates it: what the graph
    computes is then not the network of its weights on x."""
    onnx = pytest.importorskip("onnx")
    cast = onnx.helper.make_node("Cast", ["x"], ["xc"], to=getattr(onnx.TensorProto, to),
                                 name="narrow")
    back = onnx.helper.make_node("Cast", ["xc"], ["xf"], to=onnx.TensorProto.FLOAT)
    first, p1 = dense("layer0", "xf", "z", 3, 2)
    with pytest.raises(ValueError, match=r"node #0 'narrow' \(Cast\) converts the input to"):
        fastprop.from_onnx(graph([cast, back, first], p1))
    widen = onnx.helper.make_node("Cast", ["x"], ["xf"], to=onnx.TensorProto.DOUBLE)
    first, p1 = dense("layer0", "xf", "z", 3, 2)
    model = graph([widen, first], p1)
    for init in model.graph.initializer:
        array = onnx.numpy_helper.to_array(init).astype(np.float64)
        init.CopyFrom(onnx.numpy_helper.from_array(array, init.name))
    assert fastprop.from_onnx(model).dtype == np.float64  # float32 -> float64 is exact


def head_graph(nodes, initializers, outputs, l_n=3):
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    F = onnx.TensorProto.FLOAT
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", F, ["t", 3])],
                          [helper.make_tensor_value_info(o, F, ["t", l_n]) for o in outputs],
                          initializer=[onnx.numpy_helper.from_array(np.asarray(a, np.float32), n)
                                       for n, a in initializers])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])


def test_from_onnx_refuses_a_head_that_is_not_the_output():
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    first, p1 = dense("layer0", "x", "z1", 3, 3)
    tanh = helper.make_node("Tanh", ["z1"], ["a1"])
    second, p2 = dense("layer1", "a1", "z", 3, 3, seed=1)
    softmax = helper.make_node("Softmax", ["z"], ["p"], name="head")
    # the graph gives a1, a hidden layer, and the Softmax dangles
    with pytest.raises(ValueError, match=r"'head' \(Softmax\) gives probabilities 'p' that are "
                                         r"not an output"):
        fastprop.from_onnx(head_graph([first, tanh, second, softmax], p1 + p2, ["a1"]))
    # arithmetic after the head: p * 3
    sigmoid = helper.make_node("Sigmoid", ["z"], ["p"], name="head")
    mul = helper.make_node("Mul", ["p", "k"], ["pk"], name="scale")
    with pytest.raises(ValueError, match=r"'scale' \(Mul\) computes with the probabilities"):
        fastprop.from_onnx(head_graph([first, tanh, second, sigmoid, mul],
                                      p1 + p2 + [("k", np.full(3, 3.0))], ["pk"]))
    # the head itself the output: read
    net = fastprop.from_onnx(head_graph([first, tanh, second, softmax], p1 + p2, ["p"]))
    assert net.loss_name == "cross_entropy"


def test_from_onnx_refuses_a_softmax_of_one_output_naming_it():
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z", 3, 1)
    softmax = onnx.helper.make_node("Softmax", ["z"], ["p"], name="one")
    with pytest.raises(ValueError, match=r"'one' \(Softmax\) takes the softmax of a single"):
        fastprop.from_onnx(head_graph([first, softmax], p1, ["p"], l_n=1))
    model = head_graph([first], p1, ["z"], l_n=1)
    onnx.helper.set_model_props(model, {"fastprop.loss": '"cross_entropy"'})
    with pytest.raises(ValueError, match=r"the ONNX model: the loss 'cross_entropy' \(the "
                                         r"metadata fastprop.loss\) needs at least 2 outputs"):
        fastprop.from_onnx(model)


def test_from_onnx_names_the_mul_of_a_torch_softplus_with_beta():
    torch = pytest.importorskip("torch")
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softplus(beta=2),
                                 torch.nn.Linear(4, 2)).double()
    for dynamo in (False, True):
        model = torch_export(module, data(t=4), dynamo)
        with pytest.raises(ValueError, match=r"\(Mul\) multiplies '.*' by a constant"):
            fastprop.from_onnx(model)


def metadata_model(props):
    onnx = pytest.importorskip("onnx")
    first, p1 = dense("layer0", "x", "z", 3, 2)
    model = graph([first], p1)
    onnx.helper.set_model_props(model, props)
    return model


@pytest.mark.parametrize("props, message", [
    ({"fastprop.classes": '["a", "b", "c"]', "fastprop.loss": '"cross_entropy"'},
     "must name 2 classes"),
    ({"fastprop.feature_names": '["a", "b"]'}, "must have 3 entries"),
    ({"fastprop.task": '"classification"'}, "task'] is 'classification' but the network's "
                                            "loss is 'sse'"),
    ({"fastprop.classes": '"abc"'}, "must be a JSON list of names"),
    ({"fastprop.loss": "[" * 100_000 + "]" * 100_000}, "not JSON .or is nested too deeply"),
])
def test_from_onnx_refuses_metadata_that_does_not_fit(props, message):
    with pytest.raises(ValueError, match=message):
        fastprop.from_onnx(metadata_model(props), return_extra=True)


# ---------------------------------------------------------------------- scikit-learn
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass", "multilabel"])
def test_from_sklearn_computes_what_sklearn_computes(kind, activation, dtype):
    estimator, X = sklearn_estimator(kind, activation)
    if dtype == "float32":  # scikit-learn keeps the dtype of the data it was fitted on
        estimator.coefs_ = [c.astype(np.float32) for c in estimator.coefs_]
        estimator.intercepts_ = [b.astype(np.float32) for b in estimator.intercepts_]
    net = fastprop.Network.from_sklearn(estimator)
    assert net.dtype == np.dtype(dtype) and net.bias
    loss = {"identity": "mse", "softmax": "cross_entropy",
            "logistic": "binary_cross_entropy"}[estimator.out_activation_]
    assert net.loss_name == loss
    Z = net.forward(X)
    if loss != "mse":
        Z = (softmax if loss == "cross_entropy" else sigmoid)(Z)
    assert_close(Z, pre_link(estimator, X), TOL[dtype], f"{kind} {activation} {dtype}")


def test_from_sklearn_reads_fastprop_estimators_too():
    pytest.importorskip("sklearn")
    from fastprop.sklearn import MLPClassifier

    X = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after 20 epochs
        clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=20, random_state=0).fit(
            X, np.digitize(X[:, 0], [-0.5, 0.5]))
    net = fastprop.Network.from_sklearn(clf)
    assert net.params.tobytes() == clf.network_.params.tobytes()
    assert_close(softmax(net.forward(X)), clf.predict_proba(X), 1e-13, "probabilities")


def test_from_sklearn_refuses_what_it_cannot_copy():
    neural = pytest.importorskip("sklearn.neural_network")
    with pytest.raises(ValueError, match="not fitted yet"):
        fastprop.Network.from_sklearn(neural.MLPRegressor())
    with pytest.raises(TypeError, match="must be a fitted MLPRegressor or MLPClassifier"):
        fastprop.Network.from_sklearn(object())
    X = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        poisson = neural.MLPRegressor(loss="poisson", hidden_layer_sizes=(3,),
                                      max_iter=5).fit(X, np.exp(X[:, 0]))
    with pytest.raises(ValueError, match="activation 'softmax' has no fastprop equivalent"):
        poisson.activation = "softmax"
        fastprop.Network.from_sklearn(poisson)


@pytest.mark.parametrize("dtype", DTYPES)
def test_poisson_networks_go_to_and_from_sklearn_and_onnx(dtype):
    neural = pytest.importorskip("sklearn.neural_network")
    if "loss" not in neural.MLPRegressor().get_params():
        pytest.skip("scikit-learn without MLPRegressor(loss='poisson')")
    from fastprop.sklearn import MLPRegressor
    X = data()
    y = np.exp(0.5 * X[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = neural.MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=20,
                                     random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = MLPRegressor(loss="poisson", hidden_layer_sizes=(4,), max_iter=5,
                            random_state=0).fit(X, y)
    for estimator in (theirs, ours):
        net = fastprop.Network.from_sklearn(estimator, dtype=dtype)
        assert net.loss_name == "poisson"
        rate = np.exp(net.forward(X.astype(dtype)).astype(np.float64)).ravel()
        assert_close(rate, estimator.predict(X), TOL[dtype], type(estimator).__module__)
        back = net.to_sklearn()
        assert back.loss == "poisson" and back.out_activation_ == "exp"
        assert_close(back.predict(X.astype(dtype)), rate, TOL[dtype], "to_sklearn")
        if pytest.importorskip("onnx"):
            again = fastprop.from_onnx(net.to_onnx())
            assert again.loss_name == "poisson"
            np.testing.assert_array_equal(again.params, net.params)


def random_net(layers, activation, loss, dtype="float64", bias=True, seed=0):
    net = fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=seed, loss=loss)
    net.params = np.random.default_rng(seed).standard_normal(net.n_params)
    return net


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "identity"])
@pytest.mark.parametrize("loss, l_n", [("sse", 1), ("mse", 2), ("cross_entropy", 4),
                                       ("cross_entropy", 2), ("binary_cross_entropy", 1),
                                       ("binary_cross_entropy", 3)])
def test_to_sklearn_predicts_what_the_network_computes(loss, l_n, activation, dtype):
    pytest.importorskip("sklearn")
    net = random_net([3, 5, 4, l_n], activation, loss, dtype)
    X = data().astype(dtype)
    estimator = net.to_sklearn()
    Z = net.forward(X)
    if loss in ("sse", "mse"):
        assert type(estimator).__name__ == "MLPRegressor"
        assert_close(estimator.predict(X).reshape(len(X), -1), Z, TOL[dtype], "predict")
        return
    assert type(estimator).__name__ == "MLPClassifier"
    P = softmax(Z) if loss == "cross_entropy" else sigmoid(Z)
    if loss == "binary_cross_entropy" and l_n == 1:
        P = np.hstack([1 - P, P])
    assert_close(estimator.predict_proba(X), P, TOL[dtype], "predict_proba")
    if loss == "cross_entropy":
        assert (estimator.predict(X) == Z.argmax(axis=1)).all()


def test_to_sklearn_labels_and_partial_fit():
    pytest.importorskip("sklearn")
    net = random_net([3, 5, 3], "tanh", "cross_entropy")
    X = data()
    clf = net.to_sklearn(classes=["ant", "bee", "cat"])
    assert (clf.predict(X) == np.array(["ant", "bee", "cat"])[net.forward(X).argmax(axis=1)]).all()
    before = [c.copy() for c in clf.coefs_]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.partial_fit(X, clf.predict(X)[::-1])  # scikit-learn trains on from here
    assert any(not np.array_equal(a, b) for a, b in zip(before, clf.coefs_))
    back = fastprop.Network.from_sklearn(clf)
    assert back.layers == net.layers and back.loss_name == "cross_entropy"


def test_sklearn_round_trip_is_exact():
    pytest.importorskip("sklearn")
    net = random_net([4, 6, 5, 2], "relu", "mse", dtype="float32")
    back = fastprop.Network.from_sklearn(net.to_sklearn())
    assert back.params.tobytes() == net.params.tobytes() and back.loss_name == "mse"


def test_to_sklearn_refuses_what_sklearn_lacks():
    pytest.importorskip("sklearn")
    with pytest.raises(ValueError, match="no 'leaky_relu' activation"):
        random_net([2, 3, 1], "leaky_relu", "sse").to_sklearn()
    with pytest.raises(ValueError, match="one activation for all hidden layers"):
        random_net([2, 3, 3, 1], ["tanh", "relu"], "sse").to_sklearn()
    with pytest.raises(ValueError, match="classes must be 3 distinct labels"):
        random_net([2, 3, 3], "tanh", "cross_entropy").to_sklearn(classes=["a", "b"])
    with pytest.raises(ValueError, match="sorted order"):
        random_net([2, 3, 3], "tanh", "cross_entropy").to_sklearn(classes=["c", "b", "a"])
    with pytest.raises(ValueError, match="classes are for classifiers"):
        random_net([2, 3, 1], "tanh", "sse").to_sklearn(classes=[0, 1])
    with pytest.raises(ValueError, match="at least 2 outputs"):
        random_net([2, 3, 1], "tanh", "cross_entropy").to_sklearn()
    with pytest.raises(ValueError, match="MLPClassifier have no loss like this network's "
                                         "'huber'"):
        random_net([2, 3, 1], "tanh", "huber").to_sklearn()


def test_a_network_without_bias_gets_zero_intercepts():
    pytest.importorskip("sklearn")
    net = random_net([3, 4, 1], "tanh", "sse", bias=False)
    estimator = net.to_sklearn()
    assert all(not np.any(b) for b in estimator.intercepts_)
    X = data()
    assert_close(estimator.predict(X), net.forward(X)[:, 0], TOL["float64"], "no bias")


def test_cli_predict_still_reads_the_model_after_an_onnx_round_trip(tmp_path):
    """export -> from_onnx(return_extra=True) gives what `predict` needs."""
    pytest.importorskip("onnx")
    net = random_net([2, 4, 1], "tanh", "mse")
    extra = {"x_mean": np.array([1.0, 2.0]), "x_scale": np.array([3.0, 4.0]),
             "y_mean": np.array([5.0]), "y_scale": np.array([6.0])}
    back, back_extra = fastprop.from_onnx(net.to_onnx(extra=extra), return_extra=True)
    X = data(l_0=2)
    np.testing.assert_array_equal(cli.predict(back, back_extra, X), cli.predict(net, extra, X))


# ---------------------------------------------------------------------- files from_onnx reads
def external_model(directory, seed, location="weights.bin"):
    """A fastprop graph saved with its weights in ``location`` beside it."""
    onnx = pytest.importorskip("onnx")
    net = fastprop.Network([2, 3, 1], "tanh", bias=True, dtype="float32", seed=seed)
    directory.mkdir(exist_ok=True)
    path = directory / "model.onnx"
    onnx.save_model(net.to_onnx(), str(path), save_as_external_data=True, location=location,
                    size_threshold=0)
    return net, path


def test_from_onnx_reads_external_data_beside_the_model_not_in_the_current_directory(
        tmp_path, monkeypatch):
    net, path = external_model(tmp_path / "model", seed=1)
    external_model(tmp_path, seed=5)  # a weights.bin of other weights in the current directory
    monkeypatch.chdir(tmp_path)
    loaded = fastprop.from_onnx(path)
    for mine, theirs in zip(loaded.weights, net.weights):
        np.testing.assert_array_equal(mine, theirs)
    relative = fastprop.from_onnx("model/model.onnx")
    np.testing.assert_array_equal(relative.weights[0], net.weights[0])
    onnx = pytest.importorskip("onnx")
    with pytest.raises(ValueError, match="pass the model's path rather than its bytes"):
        fastprop.from_onnx(path.read_bytes())
    proto = onnx.load(str(path), load_external_data=False)
    for location in ("/etc/passwd", "../weights.bin", "sub/../../weights.bin"):
        for tensor in proto.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        hostile = tmp_path / "model" / "hostile.onnx"
        hostile.write_bytes(proto.SerializeToString())
        with pytest.raises(ValueError, match="inside the model's directory"):
            fastprop.from_onnx(hostile)


def test_from_onnx_reads_regular_files_only(tmp_path):
    pytest.importorskip("onnx")
    import os
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs here")
    fifo = tmp_path / "fifo.onnx"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match="not a regular file but a FIFO"):
        fastprop.from_onnx(fifo)  # opened without blocking, refused before reading
    if os.path.exists("/dev/zero"):
        with pytest.raises(ValueError, match="not a regular file but a character device"):
            fastprop.from_onnx("/dev/zero")
    # external data that is a FIFO or a device is refused the same way
    net, path = external_model(tmp_path / "m", seed=2)
    os.remove(tmp_path / "m" / "weights.bin")
    os.mkfifo(tmp_path / "m" / "weights.bin")
    with pytest.raises(ValueError, match="not a regular file but a FIFO"):
        fastprop.from_onnx(path)
    os.remove(tmp_path / "m" / "weights.bin")
    (tmp_path / "m" / "weights.bin").write_bytes(b"\0" * 8)  # shorter than the weights
    with pytest.raises(ValueError, match="fewer than"):
        fastprop.from_onnx(path)
