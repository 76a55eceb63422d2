"""fastprop networks as ONNX graphs, and the ONNX graphs of plain MLPs as fastprop networks.

The graph :func:`to_onnx` writes, for a network with layers l_0..l_n:

==========================  =============================================================
node                        computes
==========================  =============================================================
``Sub``, ``Div``            a_0 = (x − x_mean) / x_scale, when ``extra`` holds them
``Gemm`` (transB=1)         z_{i+1} = W_i a_i + b_i for every row of the batch
                            (initialisers ``W_i`` of shape (l_{i+1}, l_i) as in fastprop,
                            ``b_i`` when bias is on)
σ_i                         a_i = σ(z_i): ``Sigmoid``, ``Tanh``, ``Relu``,
                            ``LeakyRelu`` (alpha=0.01), ``Softplus`` or ``Identity``
``Mul``, ``Add``            y = z_n ⊙ y_scale + y_mean, when ``extra`` holds them
``Softmax`` or ``Sigmoid``  the probabilities of "cross_entropy" or "binary_cross_entropy"
==========================  =============================================================

Inputs and outputs have a symbolic first dimension ``t`` (the rows of the batch): input
``x`` (t, l_0), output ``z`` (t, l_n), named ``y`` instead when the output is
de-standardised, and for the two classification losses a second output ``probabilities``
(t, l_n). The element type is the network's: float or double. onnxruntime has no double
kernel for LeakyRelu (from opset 20) nor for Softplus, so float64 graphs compute these two
through functions of the model, ``fastprop.leaky_relu`` (max(z, 0.01 z)) and
``fastprop.softplus`` (relu(z) + log(1 + exp(−|z|))), which any runtime of IR version ≥ 8
inlines. The model's metadata (``metadata_props``) holds ``fastprop.version``,
``fastprop.layers``, ``fastprop.activations``, ``fastprop.bias``, ``fastprop.loss`` and
``fastprop.dtype``, and the names in ``extra`` (``fastprop.feature_names``,
``fastprop.classes``, ``fastprop.target_names``, ``fastprop.task``), as JSON.

:func:`from_onnx` reads such graphs back, and the plain MLP graphs other tools write:
skl2onnx's for scikit-learn's MLPRegressor and MLPClassifier, torch.onnx.export's for an
``nn.Sequential`` of Linear layers and activations. It follows the one path from the input
through Gemm or MatMul (+ Add) layers with Sigmoid, Tanh, Relu, LeakyRelu(alpha=0.01),
Softplus or Identity between them; a Softmax or Sigmoid after the last layer is read as the
probabilities of "cross_entropy" or "binary_cross_entropy", and an Exp as the rate of
"poisson" (skl2onnx's converter of a poisson regressor): such a head must give an output of
the graph, through Identity or skl2onnx's ZipMap and [1 − p, p]; the labels computed from it
(ArgMax, Binarizer) are not read, and any other computation with it is refused. A Cast
before the first layer may only go to float or double. Anything else is refused with a
``ValueError`` naming the first node it cannot represent. A model file is read only when
it is a regular file (not a FIFO or a device) of at most 2 GiB, and weights kept in another
file ("external data") only from a regular file of the model's own directory, within the
size the tensor declares. For ``loss="poisson"`` the output ``z`` is z_n, the log of the
rate.

:func:`register_skl2onnx` teaches skl2onnx to convert :class:`fastprop.sklearn.MLPRegressor`
and :class:`fastprop.sklearn.MLPClassifier`, alone or inside a Pipeline.

The ``onnx`` package is imported only when these functions are called (``pip install
".[onnx]"`` from the clone).
"""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .. import __version__
from .._npz import open_regular
from .._validate import available_memory
from ..network import LOSSES as NETWORK_LOSSES
from ..network import Network
from ..reference import LEAKY_RELU_SLOPE
from ._common import PROBABILITIES, Preprocessing, check_net, read_extra, write_file

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "to_onnx", "from_onnx", "register_skl2onnx"]

DEFAULT_OPSET = 21  # ONNX 1.16 (2024); onnxruntime >= 1.20 runs it
MIN_OPSET = 13  # Softmax over the last axis only, Gemm with an optional C
FUNCTION_DOMAIN = "fastprop"  # the domain of the float64 graphs' leaky_relu and softplus
_NATIVE = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu", "leaky_relu": "LeakyRelu",
           "softplus": "Softplus", "identity": "Identity"}
_FROM_NATIVE = {op: name for name, op in _NATIVE.items() if name != "identity"}
_METADATA = "fastprop."
MAX_MODEL_BYTES = 2**31 - 1  # protobuf's limit on one message: an ONNX file, or its weights
SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus's default, which torch.onnx.export writes out


def _onnx() -> Any:
    try:
        import onnx
    except ImportError as error:
        raise ImportError("ONNX export and import need the onnx package: "
                          "pip install onnx (and onnxruntime to run it)") from error
    return onnx


# ---------------------------------------------------------------------- writing
# The largest protobuf message, so the largest ONNX model kept in one file or ModelProto.
_PROTOBUF_LIMIT = 2**31


def to_onnx(net: Network, path: str | os.PathLike[str] | None = None, *,
            extra: Mapping[str, Any] | None = None, opset: int = DEFAULT_OPSET) -> Any:
    """The network as an ONNX model; written to ``path`` too when one is given.

    Parameters
    ----------
    net : Network
    path : str or os.PathLike, optional
        Where to write the model (atomically: a temporary file, then a rename).
    extra : mapping, optional
        The standardisation and names that go with the network, as
        ``fastprop.load(path, return_extra=True)`` returns them for a model trained by
        ``python -m fastprop train``: ``x_mean`` and ``x_scale`` (l_0,) become
        a_0 = (x − x_mean) / x_scale in the graph, ``y_mean`` and ``y_scale`` (l_n,) of a
        regression y = z_n ⊙ y_scale + y_mean; ``feature_names``, ``classes``,
        ``target_names`` and ``task`` go to the metadata. Any other key is refused.
    opset : int, default 21
        The ONNX operator set, from 13 to the newest the installed onnx package knows.

    Returns
    -------
    onnx.ModelProto
        Checked with ``onnx.checker.check_model``.

    Raises
    ------
    ValueError
        For an opset out of range, ``extra`` that does not fit the network, or parameters
        of 2 GiB or more (an ONNX model is one protobuf message, which cannot be larger).
    OSError
        When ``path`` cannot be written (the message names it).
    """
    onnx = _onnx()
    net = check_net(net)
    pre = read_extra(net, extra)
    opset = _check_opset(onnx, opset)
    dtype = net.dtype
    size = net.n_params * dtype.itemsize
    if size >= _PROTOBUF_LIMIT - (1 << 20):  # the graph, names and metadata need some room
        raise ValueError(f"the network's {net.n_params} parameters take {size} bytes; an ONNX "
                         f"model is one protobuf message, which must stay under 2 GiB "
                         f"({_PROTOBUF_LIMIT} bytes): export a smaller network, or use "
                         f"to_c or fastprop's own .npz")
    elem = _elem_type(onnx, dtype)
    b = _Builder(onnx, dtype, opset)
    a_0 = b.standardise_input("x", pre)
    z_name = "y" if pre.standardises_output else "z"
    z_n = b.layers(a_0, net.weights, net.biases, net.activations,
                   "z_n" if pre.standardises_output else z_name)
    if pre.standardises_output:
        b.destandardise_output(z_n, pre, z_name)
    t = "t"
    outputs = [onnx.helper.make_tensor_value_info(z_name, elem, [t, net.layers[-1]])]
    if net.loss_name in PROBABILITIES:
        b.probabilities(z_name, "probabilities", net.loss_name)
        outputs.append(onnx.helper.make_tensor_value_info("probabilities", elem,
                                                          [t, net.layers[-1]]))
    graph = onnx.helper.make_graph(
        b.nodes, "fastprop", [onnx.helper.make_tensor_value_info("x", elem, [t, net.layers[0]])],
        outputs, initializer=b.initializers, doc_string=_describe(net, pre))
    model = b.model(graph)
    model.doc_string = graph.doc_string
    onnx.helper.set_model_props(model, _metadata(net, pre))
    onnx.checker.check_model(model)
    if path is not None:
        write_file(path, model.SerializeToString(), "ONNX model")
    return model


def _check_opset(onnx: Any, opset: Any) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"opset must be an int, got {type(opset).__name__}")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"opset must be from {MIN_OPSET} to {newest} (the newest this onnx "
                         f"{onnx.__version__} knows), got {opset}")
    return int(opset)


def _elem_type(onnx: Any, dtype: np.dtype) -> int:
    return {"float32": onnx.TensorProto.FLOAT, "float64": onnx.TensorProto.DOUBLE}[dtype.name]


def _metadata(net: Network, pre: Preprocessing) -> dict[str, str]:
    props = {"version": __version__, "layers": list(net.layers),
             "activations": list(net.activations), "bias": net.bias, "loss": net.loss_name,
             "dtype": net.dtype.name}
    for key in ("feature_names", "classes", "target_names", "task"):
        value = getattr(pre, key)
        if value is not None:
            props[key] = list(value) if isinstance(value, tuple) else value
    return {_METADATA + key: value if key == "version" else json.dumps(value)
            for key, value in props.items()}


def _describe(net: Network, pre: Preprocessing) -> str:
    lines = [f"A feedforward network exported by fastprop {__version__}: layers l_0..l_n = "
             f"{', '.join(map(str, net.layers))}, hidden activations "
             f"{', '.join(net.activations) or '(none)'}, "
             f"{'with' if net.bias else 'without'} biases, {net.dtype.name}.",
             "z_{i+1} = W_i a_i" + (" + b_i" if net.bias else "")
             + ", a_i = sigma(z_i) for the hidden layers, a_0 = x, output z_n."]
    if pre.standardises_input:
        lines.append("The input is standardised first: a_0 = (x - x_mean) / x_scale.")
    if pre.standardises_output:
        lines.append("The output is y = z_n * y_scale + y_mean.")
    if net.loss_name in PROBABILITIES:
        lines.append(f"Loss {net.loss_name}: the output 'probabilities' is "
                     f"{PROBABILITIES[net.loss_name]}(z_n).")
    return " ".join(lines)


class _Builder:
    """Nodes, initialisers and functions of fastprop's graph in one dtype.

    ``fresh`` turns a base name into a name unique in the graph (identity for to_onnx,
    skl2onnx's scope inside a pipeline).
    """

    def __init__(self, onnx: Any, dtype: np.dtype, opset: int,
                 fresh: Callable[[str], str] = lambda name: name) -> None:
        self.onnx, self.dtype, self.opset, self.fresh = onnx, np.dtype(dtype), opset, fresh
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self.functions: dict[str, Any] = {}

    def constant(self, name: str, value: Any) -> str:
        name = self.fresh(name)
        array = np.asarray(value, dtype=self.dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], output: str, doc: str, domain: str = "",
             **attributes: Any) -> str:
        output = self.fresh(output)
        self.nodes.append(self.onnx.helper.make_node(
            op, inputs, [output], name=self.fresh(f"{output}_{op}"), doc_string=doc,
            domain=domain, **attributes))
        return output

    def standardise_input(self, x: str, pre: Preprocessing) -> str:
        if not pre.standardises_input:
            return x
        l_0 = len(pre.x_mean if pre.x_mean is not None else pre.x_scale)
        mean = pre.x_mean if pre.x_mean is not None else np.zeros(l_0)
        scale = pre.x_scale if pre.x_scale is not None else np.ones(l_0)
        centred = self.node("Sub", [x, self.constant("x_mean", mean)], "x_centred",
                            "x - x_mean")
        return self.node("Div", [centred, self.constant("x_scale", scale)], "a_0",
                         "a_0 = (x - x_mean) / x_scale")

    def layers(self, a_0: str, W: list[np.ndarray], b: list[np.ndarray],
               activations: tuple[str, ...], z_n: str) -> str:
        n = len(W)
        a = a_0
        for i in range(n):
            inputs = [a, self.constant(f"W_{i}", W[i])]
            if b:
                inputs.append(self.constant(f"b_{i}", b[i]))
            z = z_n if i == n - 1 else f"z_{i + 1}"
            z = self.node("Gemm", inputs, z,
                          f"z_{i + 1} = W_{i} a_{i}{f' + b_{i}' if b else ''} "
                          f"(a row of the batch times W_{i} transposed)", transB=1)
            if i + 1 < n:
                a = self.activation(activations[i], z, f"a_{i + 1}", i + 1)
        return z

    def activation(self, name: str, z: str, a: str, i: int) -> str:
        doc = f"a_{i} = {name}(z_{i})"
        if name == "leaky_relu":
            if self.dtype == np.float64:
                return self.node(self.function(name), [z], a, doc, domain=FUNCTION_DOMAIN)
            return self.node("LeakyRelu", [z], a, doc, alpha=LEAKY_RELU_SLOPE)
        if name == "softplus" and self.dtype == np.float64:
            return self.node(self.function(name), [z], a, doc, domain=FUNCTION_DOMAIN)
        return self.node(_NATIVE[name], [z], a, doc)

    def function(self, name: str) -> str:
        if name not in self.functions:
            self.functions[name] = _function(self.onnx, name, self.opset)
        return name

    def destandardise_output(self, z_n: str, pre: Preprocessing, y: str) -> str:
        l_n = len(pre.y_mean if pre.y_mean is not None else pre.y_scale)
        mean = pre.y_mean if pre.y_mean is not None else np.zeros(l_n)
        scale = pre.y_scale if pre.y_scale is not None else np.ones(l_n)
        scaled = self.node("Mul", [z_n, self.constant("y_scale", scale)], "z_n_scaled",
                           "z_n * y_scale")
        return self.node("Add", [scaled, self.constant("y_mean", mean)], y,
                         "y = z_n * y_scale + y_mean")

    def probabilities(self, z: str, p: str, loss: str) -> str:
        if PROBABILITIES[loss] == "softmax":
            return self.node("Softmax", [z], p, "p = softmax(z_n), over each row", axis=-1)
        return self.node("Sigmoid", [z], p, "p = sigmoid(z_n), each entry")

    def model(self, graph: Any) -> Any:
        helper = self.onnx.helper
        opsets = [helper.make_opsetid("", self.opset)]
        if self.functions:
            opsets.append(helper.make_opsetid(FUNCTION_DOMAIN, 1))
        model = helper.make_model(graph, opset_imports=opsets, producer_name="fastprop",
                                  producer_version=__version__,
                                  functions=list(self.functions.values()))
        ir = helper.find_min_ir_version_for([opsets[0]])
        model.ir_version = max(ir, 8) if self.functions else ir  # local functions: IR 8
        return model


def _function(onnx: Any, name: str, opset: int) -> Any:
    """fastprop.leaky_relu or fastprop.softplus for double tensors, from standard ops.

    leaky_relu: a = max(z, 0.01 z), which is 0.01 z where z < 0 and z elsewhere, the same
    product fastprop rounds. softplus: a = relu(z) + log(1 + exp(−|z|)); without log1p in
    ONNX, the second term is lost where exp(−|z|) < 2⁻⁵³ (|z| > 36.7), an absolute error
    below 1.2e-16.
    """
    helper = onnx.helper

    def const(output: str, value: float) -> Any:
        return helper.make_node("Constant", [], [output], value=onnx.numpy_helper.from_array(
            np.array(value, dtype=np.float64), output))

    if name == "leaky_relu":
        nodes = [const("slope", LEAKY_RELU_SLOPE),
                 helper.make_node("Mul", ["slope", "z"], ["slope_z"]),
                 helper.make_node("Max", ["z", "slope_z"], ["a"])]
        doc = f"a = max(z, {LEAKY_RELU_SLOPE} z): fastprop's leaky_relu"
    else:
        nodes = [helper.make_node("Relu", ["z"], ["positive"]),
                 helper.make_node("Abs", ["z"], ["magnitude"]),
                 helper.make_node("Neg", ["magnitude"], ["minus_magnitude"]),
                 helper.make_node("Exp", ["minus_magnitude"], ["e"]),
                 const("one", 1.0),
                 helper.make_node("Add", ["one", "e"], ["one_plus_e"]),
                 helper.make_node("Log", ["one_plus_e"], ["log_one_plus_e"]),
                 helper.make_node("Add", ["positive", "log_one_plus_e"], ["a"])]
        doc = "a = relu(z) + log(1 + exp(-|z|)): fastprop's softplus, stable for every z"
    return helper.make_function(FUNCTION_DOMAIN, name, ["z"], ["a"], nodes,
                                opset_imports=[helper.make_opsetid("", opset)], doc_string=doc)


# ---------------------------------------------------------------------- reading
def from_onnx(model: Any, dtype: DTypeLike | None = None, *, loss: str | None = None,
              return_extra: bool = False) -> Network | tuple[Network, dict[str, np.ndarray]]:
    """A fastprop Network computing what an ONNX graph of a plain MLP computes.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        A path to an ``.onnx`` file, its bytes, or a loaded model.
    dtype : "float64", "float32" or None
        The network's precision; None takes the type the graph computes in.
    loss : str or None
        The network's loss; None takes fastprop's metadata when present, else
        "cross_entropy" after a Softmax, "binary_cross_entropy" after a Sigmoid, else "sse".
    return_extra : bool, default False
        Also return a dict with the standardisation of the input (``x_mean``, ``x_scale``)
        and of the output (``y_mean``, ``y_scale``) when the graph has them, and the names
        in fastprop's metadata (``feature_names``, ``classes``, ``target_names``,
        ``task``): the ``extra`` that :func:`to_onnx` takes. Without it, a graph with a
        standardisation is refused, since the network alone would compute something else.

    Returns
    -------
    Network, or (Network, dict) with ``return_extra=True``

    Raises
    ------
    ValueError
        When ``model`` is not a valid ONNX model, or its graph is not a plain MLP: the
        message names the first node fastprop cannot represent and why.
    FileNotFoundError
        When there is no file at ``model``.
    """
    onnx = _onnx()
    proto, source = _load(onnx, model)
    reader = _Reader(onnx, proto, source)
    chain = reader.read()
    if chain.standardisation and not return_extra:
        raise ValueError(f"{source} standardises its {' and its '.join(chain.standardisation)} "
                         f"around the network; pass return_extra=True to receive the network "
                         f"and the standardisation (x_mean, x_scale, y_mean, y_scale) apart")
    metadata = {p.key[len(_METADATA):]: p.value for p in proto.metadata_props
                if p.key.startswith(_METADATA)}
    meta_loss = _json(metadata, "loss", source)
    loss_given = loss is not None
    if loss is None:
        loss = meta_loss if meta_loss in NETWORK_LOSSES else chain.head_loss or "sse"
    net_dtype = chain.dtype if dtype is None else dtype
    if net_dtype is None:
        raise ValueError(f"{source} computes in {chain.dtype_name}; fastprop computes in "
                         f"float32 or float64: pass dtype='float32' or 'float64'")
    if loss == "cross_entropy" and chain.W[-1].shape[0] < 2:
        given = "the argument loss" if loss_given else f"the metadata {_METADATA}loss"
        raise ValueError(f"{source}: the loss 'cross_entropy' ({given}) needs at least 2 "
                         f"outputs, but the graph's last layer has 1 (for two classes, "
                         f"binary_cross_entropy with one output)")
    try:
        net = chain.network(net_dtype, loss)
    except (ValueError, TypeError) as error:
        raise type(error)(f"{source}: {error}") from None
    if not return_extra:
        return net
    extra = {key: value for key, value in chain.extra.items() if value is not None}
    for mean, scale, size in (("x_mean", "x_scale", net.layers[0]),
                              ("y_mean", "y_scale", net.layers[-1])):
        if (mean in extra) != (scale in extra):  # a graph with only one of them: both, as
            extra.setdefault(mean, np.zeros(size))  # the command line keeps them
            extra.setdefault(scale, np.ones(size))
    for key in ("feature_names", "classes", "target_names"):
        value = _json(metadata, key, source)
        if value is None:
            continue
        if not isinstance(value, list) or not all(isinstance(v, (str, int, float))
                                                  for v in value):
            raise ValueError(f"{source}: the metadata {_METADATA}{key} must be a JSON list "
                             f"of names, got {metadata[key][:100]!r}")
        extra[key] = np.array([str(v) for v in value], dtype=str)
    task = _json(metadata, "task", source)
    if task is not None:
        if not isinstance(task, str):
            raise ValueError(f"{source}: the metadata {_METADATA}task must be a JSON string, "
                             f"got {metadata['task'][:100]!r}")
        extra["task"] = np.array(task)
    try:  # the names and the task must fit the network, as to_onnx's extra must
        read_extra(net, extra)
    except (ValueError, TypeError) as error:
        raise ValueError(f"{source}: its metadata does not fit the network it holds: "
                         f"{error}") from None
    return net, extra


def _json(metadata: dict[str, str], key: str, source: str) -> Any:
    if key not in metadata:
        return None
    try:
        return json.loads(metadata[key])
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        raise ValueError(f"{source}: the metadata {_METADATA}{key} is not JSON (or is "
                         f"nested too deeply): {metadata[key][:100]!r}") from None


def _load(onnx: Any, model: Any) -> tuple[Any, str]:
    """(ModelProto, a description for messages), checked by onnx.checker; the data of
    external tensors read from the model file's directory (refused for bytes and a
    ModelProto, which have none)."""
    base_dir = None
    if isinstance(model, onnx.ModelProto):
        proto, source = model, "the ONNX model"
    elif isinstance(model, (bytes, bytearray, memoryview)):
        source = "the ONNX model (bytes)"
        proto = _parse(onnx, bytes(model), source)
    elif isinstance(model, (str, os.PathLike)):
        source = os.fspath(model)
        if not isinstance(source, str):
            raise TypeError(f"model must be a path of str, got {type(source).__name__}")
        proto = _parse(onnx, _read_regular(source, "ONNX file", MAX_MODEL_BYTES), source)
        base_dir = os.path.dirname(os.path.abspath(source))
    else:
        raise TypeError(f"model must be a path, bytes or an onnx.ModelProto, got "
                        f"{type(model).__name__}")
    _load_external_data(onnx, proto, base_dir, source)
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"{source} is not a valid ONNX model: {first}") from None
    return proto, source


def _read_regular(path: str, what: str, limit: int, offset: int = 0,
                  length: int | None = None) -> bytes:
    """The bytes of a regular file (from offset, length of them or all), at most limit.

    FIFOs, devices, sockets and directories are refused before anything is read (they could
    block or never end), and so is a file larger than limit.
    """
    try:
        f = open_regular(path, what)
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, f"no such {what}", path) from None
    with f:
        size = os.fstat(f.fileno()).st_size
        end = size if length is None else offset + length
        if offset > size or end > size:
            raise ValueError(f"{path} holds {size} bytes, fewer than the {end} the model "
                             f"reads from it (offset {offset}, length {length})")
        if end - offset > limit:
            raise ValueError(f"{path} would have {end - offset} bytes read, more than the "
                             f"{limit} a {what} may have here")
        f.seek(offset)
        data = f.read(end - offset + 1 if length is None else end - offset)
    if len(data) != end - offset:  # the file changed while it was read
        raise ValueError(f"{path} changed size while it was read")
    return data


def _load_external_data(onnx: Any, proto: Any, base_dir: str | None, source: str) -> None:
    """Put the data of every tensor kept in another file into proto, as onnx.load does, but
    reading it from the model's directory (not the current one) and only from regular files
    there, within the size each tensor declares."""
    helper = onnx.external_data_helper
    for tensor in helper._get_all_tensors(proto):
        if helper.uses_external_data(tensor):
            data = _external_data(onnx, tensor, base_dir, source)
            del tensor.external_data[:]
            tensor.data_location = onnx.TensorProto.DEFAULT
            tensor.raw_data = data


def _external_data(onnx: Any, tensor: Any, base_dir: str | None, source: str) -> bytes:
    """The bytes of a tensor whose data is in another file, that file read as a regular
    file of the model's directory (no absolute path, no '..', no symbolic link out of the
    directory), within the size the tensor declares."""
    info = {entry.key: entry.value for entry in tensor.external_data}
    location = info.get("location", "")
    where = f"{source}: the initialiser {tensor.name!r} keeps its data in {location!r}"
    if base_dir is None:
        raise ValueError(f"{where}, a file beside the model; pass the model's path rather "
                         f"than its bytes or a ModelProto (or load it with onnx.load)")
    parts = location.replace("\\", "/").split("/")
    if not location or os.path.isabs(location) or location.startswith(("/", "\\")) \
            or ".." in parts or (len(location) > 1 and location[1] == ":"):
        raise ValueError(f"{where}; external data must be a relative path inside the "
                         f"model's directory {base_dir}")
    path = os.path.join(base_dir, location)
    real_dir = os.path.realpath(base_dir)
    if os.path.commonpath([real_dir, os.path.realpath(path)]) != real_dir:
        raise ValueError(f"{where}, which leads out of the model's directory {base_dir}")
    try:
        itemsize = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type).itemsize
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{where}, of an element type fastprop does not read") from None
    expected = int(np.prod(tensor.dims, dtype=np.int64)) * itemsize
    try:
        offset = int(info.get("offset", 0))
        length = int(info.get("length", expected))
    except ValueError:
        raise ValueError(f"{where} with offset {info.get('offset')!r} and length "
                         f"{info.get('length')!r}, which are not integers") from None
    if offset < 0 or length != expected:
        raise ValueError(f"{where} at offset {offset}, {length} bytes, but the tensor of "
                         f"shape {tuple(tensor.dims)} has {expected}")
    return _read_regular(path, "file of external data", min(MAX_MODEL_BYTES, available_memory()),
                         offset, length)


def _parse(onnx: Any, data: bytes, source: str) -> Any:
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception as error:  # google.protobuf.message.DecodeError and kin
        raise ValueError(f"{source} is not an ONNX model: it does not parse as one "
                         f"({type(error).__name__}: {error})") from None
    if not proto.HasField("graph"):
        raise ValueError(f"{source} is not an ONNX model: it has no graph")
    return proto


class _Chain:
    """The layers found along the graph's path, and what surrounds them."""

    def __init__(self) -> None:
        self.W: list[np.ndarray] = []
        self.b: list[np.ndarray | None] = []
        self.activations: list[str] = []
        self.head_loss: str | None = None
        self.dtype: str | None = None
        self.dtype_name = ""
        self.extra: dict[str, np.ndarray | None] = {}
        self.standardisation: list[str] = []

    def network(self, dtype: DTypeLike, loss: str) -> Network:
        bias = any(b is not None for b in self.b)
        layers = [self.W[0].shape[1]] + [W.shape[0] for W in self.W]
        net = Network(layers, self.activations, bias=bias, dtype=dtype, seed=0, loss=loss)
        weights, biases = net.weights, net.biases  # each property builds all its views
        for i, W in enumerate(self.W):
            weights[i][...] = W
            if bias:  # a layer without b_i among layers with one: b_i = 0, exactly
                biases[i][...] = 0 if self.b[i] is None else self.b[i]
        return net


class _Reader:
    """Follows the one path from the graph's input to its output, node by node."""

    LAYER_OPS = ("Gemm", "MatMul")

    def __init__(self, onnx: Any, proto: Any, source: str) -> None:
        self.onnx, self.proto, self.source = onnx, proto, source
        graph = proto.graph
        self.constants: dict[str, np.ndarray] = {
            init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
        self.position: dict[int, int] = {}
        self.consumers: dict[str, list[Any]] = {}
        for index, node in enumerate(graph.node):
            self.position[id(node)] = index
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx") \
                    and all(i == "" for i in node.input):
                self.constants[node.output[0]] = self._constant_value(node)
                continue
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
        self.outputs = [output.name for output in graph.output]
        self.functions = {(f.domain, f.name): f for f in proto.functions}
        self.input_nodes: dict[str, Any] = {}  # the Sub and Div that standardise x

    # --------------------------------------------------------------- the walk
    def read(self) -> _Chain:
        chain = _Chain()
        graph = self.proto.graph
        inputs = [i for i in graph.input if i.name not in self.constants]
        if len(inputs) != 1:
            raise ValueError(f"{self.source} has {len(inputs)} inputs "
                             f"({', '.join(i.name for i in inputs)}); a fastprop network "
                             f"takes one, x of shape (t, l_0)")
        x = inputs[0]
        elem = x.type.tensor_type.elem_type if x.type.HasField("tensor_type") else None
        self._set_dtype(chain, elem, f"its input {x.name!r}")
        t = self._prologue(x.name, chain)
        while True:
            node = self._sole_consumer(t, "a layer (Gemm or MatMul)")
            if node.op_type not in self.LAYER_OPS or node.domain not in ("", "ai.onnx"):
                raise self._refuse(node, "where a layer (Gemm, or MatMul + Add) was expected")
            t = self._layer(node, t, chain)
            t = self._skip_identities(t)
            after = self.consumers.get(t, [])
            if len(after) == 1 and self._is_layer(after[0]):
                chain.activations.append("identity")
                continue
            sigma = self._hidden_activation(t, after)
            if sigma is not None:
                a = self._skip_identities(sigma[1])
                following = self.consumers.get(a, [])
                if len(following) == 1 and self._is_layer(following[0]):
                    chain.activations.append(sigma[0])
                    t = a
                    continue
            return self._epilogue(t, chain)

    def _hidden_activation(self, z: str, after: list[Any]) -> tuple[str, str] | None:
        """(fastprop's σ, the tensor a) when the nodes reading z compute a = σ(z)."""
        if len(after) == 1:
            name = self._activation(after[0])
            return None if name is None else (name, after[0].output[0])
        # torch.onnx.export (dynamo) writes torch's Softplus, z where z > threshold = 20,
        # as Where(Greater(z, 20), z, Softplus(z)): fastprop's softplus up to
        # log(1 + e^-z) < 2.1e-9 there, as for Network.from_torch.
        ops = {node.op_type: node for node in after if node.domain in ("", "ai.onnx")}
        if len(after) != 3 or set(ops) != {"Softplus", "Greater", "Where"}:
            return None
        softplus, greater, where = ops["Softplus"], ops["Greater"], ops["Where"]
        threshold = self.constants.get(greater.input[1]) if len(greater.input) == 2 else None
        if greater.input[0] != z or threshold is None or threshold.size != 1 \
                or float(threshold.reshape(-1)[0]) != SOFTPLUS_THRESHOLD or softplus.attribute \
                or list(where.input) != [greater.output[0], z, softplus.output[0]] \
                or len(self.consumers.get(softplus.output[0], [])) != 1 \
                or len(self.consumers.get(greater.output[0], [])) != 1:
            return None
        return "softplus", where.output[0]

    def _prologue(self, t: str, chain: _Chain) -> str:
        """Cast, Identity, and a standardisation (Sub, Div) before the first layer."""
        while True:
            node = self._sole_consumer(t, "a layer (Gemm or MatMul)")
            op = node.op_type if node.domain in ("", "ai.onnx") else None
            if op == "Identity":
                t = node.output[0]
            elif op == "Cast":
                to = self._attribute(node, "to")
                tp = self.onnx.TensorProto
                if to not in (tp.FLOAT, tp.DOUBLE):
                    try:
                        kind = self.onnx.helper.tensor_dtype_to_np_dtype(to).name
                    except (KeyError, TypeError, ValueError):
                        kind = f"type {to}"
                    raise self._refuse(node, f"converts the input to {kind}, which changes its "
                                             f"values (rounding or truncating them) before the "
                                             f"first layer; fastprop's input is float32 or "
                                             f"float64")
                self._set_dtype(chain, to, f"node {self._name(node)}")
                t = node.output[0]
            elif op == "Sub" and "x_mean" not in chain.extra and "x_scale" not in chain.extra:
                chain.extra["x_mean"] = self._operand(node, t, "x_mean", commutative=False)
                self.input_nodes["x_mean"] = node
                t = node.output[0]
            elif op == "Div" and "x_scale" not in chain.extra:
                chain.extra["x_scale"] = self._operand(node, t, "x_scale", commutative=False)
                self.input_nodes["x_scale"] = node
                t = node.output[0]
            else:
                if "x_mean" in chain.extra or "x_scale" in chain.extra:
                    chain.standardisation.append("input")
                return t

    def _layer(self, node: Any, a: str, chain: _Chain) -> str:
        """W_i and b_i of a Gemm, or of a MatMul and the Add after it; returns z_{i+1}."""
        if node.input[0] != a:
            raise self._refuse(node, f"multiplies {a!r} from the right; a layer computes a "
                                     f"row of the batch times W_i transposed")
        if node.op_type == "Gemm":
            alpha, beta = self._attribute(node, "alpha", 1.0), self._attribute(node, "beta", 1.0)
            if self._attribute(node, "transA", 0):
                raise self._refuse(node, "has transA=1, which transposes the batch")
            B = self._weight(node, 1)
            W = B if self._attribute(node, "transB", 0) else B.T
            W = W * alpha if alpha != 1 else W
            l_out = W.shape[0]
            b = None
            if len(node.input) > 2 and node.input[2]:
                b = self._bias(node, node.input[2], l_out)
                b = b * beta if beta != 1 else b
            z = node.output[0]
        else:
            W = self._weight(node, 1).T
            l_out = W.shape[0]
            z = node.output[0]
            b = None
            after = self.consumers.get(z, [])
            if len(after) == 1 and after[0].op_type == "Add" \
                    and after[0].domain in ("", "ai.onnx") \
                    and self._constant_operand(after[0], z) is not None:
                b = self._bias(after[0], self._constant_operand(after[0], z), l_out)
                z = after[0].output[0]
        if chain.W and W.shape[1] != chain.W[-1].shape[0]:
            raise self._refuse(node, f"takes {W.shape[1]} inputs, but the layer before gives "
                                     f"{chain.W[-1].shape[0]}")
        if not chain.W:
            self._check_input_width(W.shape[1], node)
            for key, standardising in self.input_nodes.items():
                chain.extra[key] = self._broadcast(standardising, chain.extra[key], W.shape[1])
        chain.W.append(W)
        chain.b.append(b)
        return z

    def _epilogue(self, t: str, chain: _Chain) -> _Chain:
        """After z_n: nothing, a de-standardisation (Mul, Add), a Reshape that keeps the
        shape, or the probabilities (Softmax, Sigmoid) and whatever follows them."""
        l_n = chain.W[-1].shape[0]
        after = self.consumers.get(t, [])
        if len(after) > 1:
            for node in after:  # a scaling among them: the first thing fastprop cannot do
                if node.op_type in ("Mul", "Div") and node.domain in ("", "ai.onnx") \
                        and self._constant_operand(node, t) is not None:
                    others = ", ".join(self._name(n) for n in after if n is not node)
                    raise self._refuse(node, f"{'multiplies' if node.op_type == 'Mul' else 'divides'} "
                                             f"{t!r} by a constant, which fastprop's model "
                                             f"does not do between layers (and {others} "
                                             f"also read {t!r})")
            raise self._refuse(after[1], f"also reads {t!r}: the graph branches, and a "
                                         f"fastprop network is one chain of layers")
        node = after[0] if len(after) == 1 else None
        op = node.op_type if node is not None and node.domain in ("", "ai.onnx") else None
        if op in ("Softmax", "Sigmoid"):
            if op == "Softmax" and self._attribute(node, "axis", -1) not in (-1, 1):
                raise self._refuse(node, "normalises over another axis than the outputs")
            if op == "Softmax" and l_n == 1:
                raise self._refuse(node, "takes the softmax of a single output, which is "
                                         "always 1 (for two classes, a Sigmoid of one output "
                                         "is binary_cross_entropy's)")
            self._check_head(node)
            chain.head_loss = "cross_entropy" if op == "Softmax" else "binary_cross_entropy"
            return chain
        if op == "Exp":  # the rate e^{z_n} of loss="poisson", as skl2onnx's converter writes
            self._check_head(node)
            chain.head_loss = "poisson"
            return chain
        scale = None
        if op == "Mul":
            scale = node
            chain.extra["y_scale"] = self._broadcast(node, self._operand(node, t, "y_scale"), l_n)
            t = node.output[0]
            after = self.consumers.get(t, [])
            node = after[0] if len(after) == 1 else None
            if node is not None and node.op_type == "Add" and node.domain in ("", "ai.onnx"):
                chain.extra["y_mean"] = self._broadcast(node, self._operand(node, t, "y_mean"),
                                                        l_n)
                t = node.output[0]
            chain.standardisation.append("output")
            t = self._skip_identities(t)
            after = self.consumers.get(t, [])
            node = after[0] if len(after) == 1 else None
            op = node.op_type if node is not None and node.domain in ("", "ai.onnx") else None
        if op == "Reshape":
            shape = self.constants.get(node.input[1]) if len(node.input) > 1 else None
            if shape is None or [int(s) for s in np.ravel(shape)] not in ([-1, l_n], [0, l_n]):
                raise self._refuse(node, f"reshapes the output z_n (t, {l_n}) to "
                                         f"{None if shape is None else np.ravel(shape).tolist()}")
            t = self._skip_identities(node.output[0])
            after = self.consumers.get(t, [])
        if after:
            node = after[0]
            if scale is not None:
                raise self._refuse(scale, f"multiplies {scale.input[0]!r} by a constant, which "
                                          f"fastprop reads only as the last step of a graph "
                                          f"(y = z_n * y_scale + y_mean), but node "
                                          f"{self._name(node)} follows it")
            if self._activation(node) is not None:
                raise self._refuse(node, "applies an activation to the output z_n, which has "
                                         "none in fastprop's model (only a Softmax or a "
                                         "Sigmoid can end the graph, as the probabilities of "
                                         "a classification loss)")
            raise self._refuse(node, "is not an operation fastprop's model has")
        if t not in self.outputs:
            raise ValueError(f"{self.source}: the path through the layers ends at {t!r}, "
                             f"which is not an output of the graph")
        return chain

    def _check_head(self, head: Any) -> None:
        """The probabilities head computes must be an output of the graph, through Identity
        (or skl2onnx's ZipMap, or its [1 - p, p] of a binary classifier), and nothing may
        compute with them but the labels (ArgMax, Binarizer), which are not read."""
        p = head.output[0]
        frontier, seen, reached = [p], {p}, False
        while frontier:
            t = frontier.pop()
            reached = reached or t in self.outputs
            for user in self.consumers.get(t, []):
                op = user.op_type if user.domain in ("", "ai.onnx", "ai.onnx.ml") else None
                follow = None
                if op in ("Identity", "ZipMap"):
                    follow = user.output[0]
                elif op in ("ArgMax", "Binarizer"):
                    continue  # the labels: computed from the probabilities, not read
                elif op == "Sub" and t == p and head.op_type == "Sigmoid" \
                        and self._is_one_minus(user, p):
                    continue  # 1 - p, which the Concat below joins to p
                elif op == "Concat" and t == p and head.op_type == "Sigmoid" \
                        and len(user.input) == 2 and user.input[1] == p \
                        and any(self._is_one_minus(n, p)
                                for n in self.consumers.get(p, []) if n.output[0] ==
                                user.input[0]):
                    follow = user.output[0]
                else:
                    raise self._refuse(user, f"computes with the probabilities {t!r} that the "
                                             f"{head.op_type} {self._name(head)} gives; a "
                                             f"fastprop network ends with them")
                if follow is not None and follow not in seen:
                    seen.add(follow)
                    frontier.append(follow)
        if not reached:
            raise self._refuse(head, f"gives probabilities {p!r} that are not an output of "
                                     f"the graph, so they are not what it computes")

    def _is_one_minus(self, node: Any, p: str) -> bool:
        """node computes 1 - p."""
        if node.op_type != "Sub" or list(node.input[1:]) != [p]:
            return False
        one = self.constants.get(node.input[0])
        return one is not None and one.size == 1 and float(one.reshape(-1)[0]) == 1.0

    # --------------------------------------------------------------- pieces
    def _sole_consumer(self, t: str, expected: str) -> Any:
        users = self.consumers.get(t, [])
        if not users:
            raise ValueError(f"{self.source}: the path from the input ends at {t!r} before "
                             f"{expected}; fastprop reads graphs of at least one layer")
        if len(users) > 1:
            raise self._refuse(users[1], f"also reads {t!r}: the graph branches, and a "
                                         f"fastprop network is one chain of layers")
        return users[0]

    def _skip_identities(self, t: str) -> str:
        while True:
            users = self.consumers.get(t, [])
            if len(users) == 1 and users[0].op_type == "Identity" \
                    and users[0].domain in ("", "ai.onnx"):
                t = users[0].output[0]
            else:
                return t

    def _is_layer(self, node: Any) -> bool:
        return node.op_type in self.LAYER_OPS and node.domain in ("", "ai.onnx")

    def _activation(self, node: Any) -> str | None:
        """fastprop's name for a hidden σ node, None for another kind of node."""
        if node.domain in ("", "ai.onnx"):
            name = _FROM_NATIVE.get(node.op_type)
            if name == "leaky_relu":
                alpha = self._attribute(node, "alpha", 0.01)
                if np.float32(alpha) != np.float32(LEAKY_RELU_SLOPE):
                    raise self._refuse(node, f"has alpha={alpha:g}; fastprop's leaky_relu "
                                             f"has slope {LEAKY_RELU_SLOPE}")
            if name == "softplus" and node.attribute:
                raise self._refuse(node, "has attributes fastprop's softplus does not have")
            return name
        if node.domain == FUNCTION_DOMAIN and node.op_type in ("leaky_relu", "softplus"):
            mine = _function(self.onnx, node.op_type, 1)
            theirs = self.functions.get((FUNCTION_DOMAIN, node.op_type))
            if theirs is None or [n.SerializeToString() for n in theirs.node] != \
                    [n.SerializeToString() for n in mine.node]:
                raise self._refuse(node, f"calls a function {FUNCTION_DOMAIN}.{node.op_type} "
                                         f"whose body is not fastprop's")
            return node.op_type
        return None

    def _weight(self, node: Any, index: int) -> np.ndarray:
        name = node.input[index] if len(node.input) > index else ""
        W = self.constants.get(name)
        if W is None:
            raise self._refuse(node, f"multiplies by {name!r}, which is not a constant of the "
                                     f"graph")
        if W.ndim != 2 or W.dtype.kind != "f":
            raise self._refuse(node, f"has a weight matrix {name!r} of shape {W.shape} and "
                                     f"dtype {W.dtype}; expected a 2-D float matrix")
        return W.astype(np.float64)

    def _bias(self, node: Any, name: str, l_out: int) -> np.ndarray:
        b = self.constants.get(name)
        if b is None:
            raise self._refuse(node, f"adds {name!r}, which is not a constant of the graph")
        return self._broadcast(node, b, l_out)

    def _broadcast(self, node: Any, value: np.ndarray, size: int) -> np.ndarray:
        """A constant of shape (), (1,), (size,), (1, 1) or (1, size) as a (size,) vector."""
        if value.dtype.kind != "f" or value.size not in (1, size) or value.ndim > 2 \
                or (value.ndim == 2 and value.shape[0] != 1):
            raise self._refuse(node, f"has a constant of shape {value.shape} and dtype "
                                     f"{value.dtype} where a vector of {size} floats was "
                                     f"expected")
        return np.broadcast_to(value.astype(np.float64).reshape(-1), (size,)).copy()

    def _operand(self, node: Any, t: str, what: str, commutative: bool = True) -> np.ndarray:
        """The constant that node combines with the path's tensor t."""
        if len(node.input) != 2 or (not commutative and node.input[0] != t):
            raise self._refuse(node, f"is not of the form {node.op_type}({t}, {what})")
        value = self._constant_operand(node, t)
        if value is None:
            raise self._refuse(node, f"combines {t!r} with {what}, which is not a constant")
        value = self.constants[value]
        if value.dtype.kind != "f":
            raise self._refuse(node, f"combines {t!r} with a constant of dtype {value.dtype}")
        return value.astype(np.float64)

    def _constant_operand(self, node: Any, t: str) -> str | None:
        others = [name for name in node.input if name != t]
        if len(node.input) != 2 or len(others) != 1 or others[0] not in self.constants:
            return None
        return others[0]

    def _check_input_width(self, l_0: int, node: Any) -> None:
        x = [i for i in self.proto.graph.input if i.name not in self.constants][0]
        dims = x.type.tensor_type.shape.dim if x.type.tensor_type.HasField("shape") else []
        if len(dims) != 2:
            raise ValueError(f"{self.source}: the input {x.name!r} has rank {len(dims)}; "
                             f"a fastprop network takes a matrix x of shape (t, l_0)")
        if dims[1].HasField("dim_value") and dims[1].dim_value != l_0:
            raise self._refuse(node, f"takes {l_0} inputs, but the graph's input has "
                                     f"{dims[1].dim_value} columns")

    def _set_dtype(self, chain: _Chain, elem: int | None, where: str) -> None:
        """The type the graph computes in, from its input or a Cast before the first layer."""
        tp = self.onnx.TensorProto
        chain.dtype = {tp.FLOAT: "float32", tp.DOUBLE: "float64"}.get(elem)
        if chain.dtype is None:
            try:
                name = self.onnx.helper.tensor_dtype_to_np_dtype(elem).name
            except (KeyError, TypeError, ValueError):
                name = "an unknown type"
            chain.dtype_name = f"{name} ({where})"

    def _attribute(self, node: Any, name: str, default: Any = None) -> Any:
        for attribute in node.attribute:
            if attribute.name == name:
                return self.onnx.helper.get_attribute_value(attribute)
        return default

    def _constant_value(self, node: Any) -> np.ndarray:
        for attribute in node.attribute:
            value = self.onnx.helper.get_attribute_value(attribute)
            if attribute.name == "value":
                return self.onnx.numpy_helper.to_array(value)
            if attribute.name in ("value_float", "value_int"):
                return np.array(value)
            if attribute.name in ("value_floats", "value_ints"):
                return np.array(value)
        return np.array([])  # a sparse or string constant: never a weight fastprop reads

    def _name(self, node: Any) -> str:
        label = f"{node.domain}.{node.op_type}" if node.domain not in ("", "ai.onnx") \
            else node.op_type
        index = self.position.get(id(node), "?")
        return f"#{index} {node.name!r} ({label})" if node.name else f"#{index} ({label})"

    def _refuse(self, node: Any, reason: str) -> ValueError:
        return ValueError(
            f"{self.source} is not a network fastprop can represent: node {self._name(node)} "
            f"{reason}. fastprop reads one path of Gemm or MatMul + Add layers with Sigmoid, "
            f"Tanh, Relu, LeakyRelu(alpha=0.01), Softplus or Identity between them, "
            f"optionally ending in Softmax or Sigmoid")


# ---------------------------------------------------------------------- skl2onnx
def register_skl2onnx() -> None:
    """Register converters for fastprop's scikit-learn estimators with skl2onnx.

    After this call, ``skl2onnx.to_onnx`` converts :class:`fastprop.sklearn.MLPRegressor`
    and :class:`fastprop.sklearn.MLPClassifier`, alone or in a Pipeline::

        fastprop.export.register_skl2onnx()
        onx = skl2onnx.to_onnx(Pipeline([("scale", StandardScaler()), ("mlp", mlp)]), X[:1])

    The regressor becomes fastprop's layers (Gemm and σ nodes, in the input's type: float,
    or double for a double input), with one output of shape (t, l_n). The classifier uses
    skl2onnx's converter for scikit-learn's MLPClassifier, whose attributes fastprop's
    estimator shares (``coefs_``, ``intercepts_``, ``activation``, ``out_activation_``,
    ``classes_``), so its outputs (label, probabilities) and options (``zipmap``, ...) are
    those of scikit-learn's, limits included: for a multilabel classifier that converter
    writes a Binarizer node that onnxruntime (1.32) runs for float input only. Calling
    this function again does nothing more.
    """
    try:
        import skl2onnx
        from skl2onnx.common.shape_calculator import calculate_linear_classifier_output_shapes
        from skl2onnx.operator_converters.multilayer_perceptron import (
            convert_sklearn_mlp_classifier,
        )
    except ImportError as error:
        raise ImportError("register_skl2onnx needs skl2onnx: pip install skl2onnx") from error
    from ..sklearn import MLPClassifier, MLPRegressor

    skl2onnx.update_registered_converter(
        MLPRegressor, "FastpropMLPRegressor", _regressor_shape, _convert_regressor)
    skl2onnx.update_registered_converter(
        MLPClassifier, "FastpropMLPClassifier", calculate_linear_classifier_output_shapes,
        convert_sklearn_mlp_classifier,
        options={"zipmap": [True, False, "columns"], "output_class_labels": [False, True],
                 "nocl": [True, False]})


def _regressor_shape(operator: Any) -> None:
    """(N, l_f) -> (N, l_n), in the input's float type (double stays double)."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    kind = DoubleTensorType if isinstance(operator.inputs[0].type, DoubleTensorType) \
        else FloatTensorType
    N = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = kind([N, operator.raw_operator.n_outputs_])


def _convert_regressor(scope: Any, operator: Any, container: Any) -> None:
    """fastprop's layers from the input to the output, in the input's float type."""
    onnx = _onnx()
    from skl2onnx.common.data_types import DoubleTensorType

    from skl2onnx.common.data_types import FloatTensorType

    net = operator.raw_operator.network_
    kind = operator.inputs[0].type
    dtype = np.dtype(np.float64 if isinstance(kind, DoubleTensorType) else np.float32)
    elem = _elem_type(onnx, dtype)
    x = operator.inputs[0].full_name
    if not isinstance(kind, (DoubleTensorType, FloatTensorType)):  # e.g. int64: as skl2onnx
        cast = scope.get_unique_variable_name("cast_input")
        container.add_node("Cast", [x], [cast], to=elem,
                           name=scope.get_unique_operator_name("Cast"))
        x = cast
    b = _Builder(onnx, dtype, container.target_opset, scope.get_unique_variable_name)
    z_n = b.layers(x, net.weights, net.biases, net.activations, "z_n")
    if b.functions:  # fastprop.sklearn's activations are scikit-learn's: never leaky_relu
        raise ValueError(f"the regressor's activations {net.activations} need ONNX functions, "
                         f"which this converter does not write")
    for init in b.initializers:
        array = onnx.numpy_helper.to_array(init)
        container.add_initializer(init.name, elem, array.shape, array.ravel().tolist())
    for node in b.nodes:
        attributes = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        container.add_node(node.op_type, list(node.input), list(node.output),
                           name=scope.get_unique_operator_name(node.op_type), **attributes)
    # loss="poisson": the prediction is the rate e^{z_n}, z_n its log
    link = "Exp" if getattr(operator.raw_operator, "out_activation_", None) == "exp" \
        else "Identity"
    container.add_node(link, [z_n], [operator.outputs[0].full_name],
                       name=scope.get_unique_operator_name(link))
