"""Conversion to and from PyTorch's ``nn.Sequential`` and scikit-learn's MLP estimators.

PyTorch: ``nn.Sequential`` of ``nn.Linear`` and activations.

fastprop's model is exactly such a stack::

    nn.Sequential(nn.Linear(l_0, l_1), σ_1, nn.Linear(l_1, l_2), σ_2, ..., nn.Linear(l_{n-1}, l_n))

torch's ``Linear.weight`` has shape (out_features, in_features) = (l_{i+1}, l_i), the shape
of W_i, and ``Linear.bias`` is b_i, so the parameters are copied as they are.

=====================================  ==============  =====================================
torch module                           fastprop σ      note
=====================================  ==============  =====================================
``nn.Sigmoid()``                       ``sigmoid``
``nn.Tanh()``                          ``tanh``
``nn.ReLU()``                          ``relu``
``nn.LeakyReLU(0.01)``                 ``leaky_relu``  other slopes are refused
``nn.Softplus()``                      ``softplus``    beta=1, threshold=20 only; see below
``nn.Identity()`` or nothing           ``identity``    between two Linear layers
=====================================  ==============  =====================================

torch's Softplus returns z itself where z > threshold = 20, while fastprop computes
log(1 + e^z) exactly; the two differ there by log(1 + e^−z) < 2.1e-9, below float32's
resolution at such z but visible in float64.

Nested ``nn.Sequential`` containers are flattened. The stack must end with a Linear layer
(fastprop's output z_n has no activation), and all Linear layers must agree on bias.
torch is imported only when these functions are called.

scikit-learn: a fitted ``sklearn.neural_network.MLPRegressor`` or ``MLPClassifier`` holds
``coefs_[i]`` = W_iᵀ, of shape (l_i, l_{i+1}), and ``intercepts_[i]`` = b_i; its hidden
``activation`` ("logistic" is fastprop's "sigmoid", "tanh", "relu", "identity") is shared by
all hidden layers, and its output link ``out_activation_`` gives the loss:

==================  ==========================  ==========================================
out_activation_     estimator                   fastprop loss
==================  ==========================  ==========================================
``identity``        MLPRegressor                "mse" (scikit-learn's squared error / 2)
``softmax``         MLPClassifier, multiclass   "cross_entropy"
``logistic``        MLPClassifier, binary or    "binary_cross_entropy"
                    multilabel
``exp``             MLPRegressor,               "poisson" (z_n the log of the rate that
                    ``loss="poisson"``          ``predict`` gives, e^{z_n})
==================  ==========================  ==========================================

:func:`from_sklearn` copies such an estimator (or one of :mod:`fastprop.sklearn`) into a
Network; :func:`to_sklearn` builds a fitted scikit-learn estimator from a Network whose
hidden layers share one of scikit-learn's activations, with ``partial_fit`` ready to go on
training it. A "cross_entropy" network with two outputs becomes a binary classifier with
one, z_1 − z_0 (softmax(z)_1 = sigmoid(z_1 − z_0)), and a network without biases gets zero
intercepts. scikit-learn is imported only when these functions are called.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import DTypeLike

from .network import Network
from .reference import LEAKY_RELU_SLOPE

if TYPE_CHECKING:
    import torch

__all__ = ["from_torch", "to_torch", "from_sklearn", "to_sklearn"]

SOFTPLUS_THRESHOLD = 20.0  # torch.nn.Softplus's default


def from_torch(module: torch.nn.Module, dtype: DTypeLike | None = None, *,
               loss: str = "sse") -> Network:
    """A fastprop Network with the layers, activations and parameters of a torch stack.

    Parameters
    ----------
    module : torch.nn.Sequential or torch.nn.Linear
        Linear layers with the supported activations between them (see the module
        docstring), ending with a Linear layer.
    dtype : "float64", "float32" or None
        Precision of the network; None takes that of the torch weights (which must then be
        float32 or float64).
    loss : str, default "sse"
        The loss of the new network (torch modules do not carry one).

    Returns
    -------
    Network
        ``net.forward(X)`` equals ``module(torch.as_tensor(X))`` up to rounding.

    Raises
    ------
    TypeError
        When ``module`` is not a torch module, or holds an unsupported kind of layer.
    ValueError
        When the stack does not fit the model: an activation with unsupported settings, two
        activations in a row, no Linear layer, an activation after the last Linear, layer
        sizes that do not chain, mixed bias or mixed dtypes.
    """
    nn = _torch().nn
    if not isinstance(module, nn.Module):
        raise TypeError(f"module must be a torch.nn.Sequential, got {type(module).__name__}")
    if not isinstance(module, (nn.Sequential, nn.Linear)):
        raise TypeError(f"module must be a torch.nn.Sequential of Linear layers and "
                        f"activations, got {type(module).__name__}")
    linears, activations = _parse(_flatten(module))
    layers = [linears[0].in_features] + [linear.out_features for linear in linears]
    bias = linears[0].bias is not None
    for i, linear in enumerate(linears):
        if (linear.bias is not None) != bias:
            raise ValueError(f"all Linear layers must agree on bias; Linear 0 has "
                             f"bias={bias}, Linear {i} has bias={linear.bias is not None}")
        if i > 0 and linear.in_features != linears[i - 1].out_features:
            raise ValueError(f"Linear {i} has in_features={linear.in_features}, but Linear "
                             f"{i - 1} has out_features={linears[i - 1].out_features}")
    if dtype is None:
        dtype = _common_dtype(linears)
    net = Network(layers, activations, bias=bias, dtype=dtype, seed=0, loss=loss)
    weights, biases = net.weights, net.biases  # each property builds all its views: once
    for i, linear in enumerate(linears):
        weights[i][...] = _to_numpy(linear.weight)
        if bias:
            biases[i][...] = _to_numpy(linear.bias)
    return net


def to_torch(net: Network) -> torch.nn.Sequential:
    """A torch ``nn.Sequential`` computing the same z_n as ``net``, with copied parameters.

    Linear layers alternate with the hidden activations (``nn.Identity()`` for
    "identity"); the parameters have the network's dtype and live on the CPU. The result
    does not share memory with ``net``.
    """
    torch = _torch()
    nn = torch.nn
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
    torch_dtype = {"float64": torch.float64, "float32": torch.float32}[net.dtype.name]
    modules: list[Any] = []
    weights, biases = net.weights, net.biases  # each property builds all its views: once
    for i, (l_in, l_out) in enumerate(zip(net.layers[:-1], net.layers[1:])):
        linear = nn.Linear(l_in, l_out, bias=net.bias, dtype=torch_dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(weights[i].copy()))
            if net.bias:
                linear.bias.copy_(torch.from_numpy(biases[i].copy()))
        modules.append(linear)
        if i + 1 < net.n:
            modules.append(_activation_module(nn, net.activations[i]))
    return nn.Sequential(*modules)


# ---------------------------------------------------------------------- helpers
def _torch() -> Any:
    try:
        import torch
    except ImportError as error:
        raise ImportError("fastprop.interop needs PyTorch: pip install torch") from error
    return torch


def _flatten(module: Any) -> list[tuple[str, Any]]:
    """(position, module) of every leaf, nested Sequentials opened; positions as '2.1'."""
    nn = _torch().nn
    if not isinstance(module, nn.Sequential):
        return [("0", module)]
    leaves = []
    for name, child in module.named_children():
        if isinstance(child, nn.Sequential):
            leaves += [(f"{name}.{sub}", leaf) for sub, leaf in _flatten(child)]
        else:
            leaves.append((name, child))
    return leaves


def _parse(leaves: Sequence[tuple[str, Any]]) -> tuple[list[Any], list[str]]:
    """The Linear layers and the n−1 activation names between them."""
    nn = _torch().nn
    linears: list[Any] = []
    activations: list[str] = []
    pending: tuple[str, str] | None = None  # (position, σ) seen since the last Linear
    for position, leaf in leaves:
        if isinstance(leaf, nn.Linear):
            if linears:
                activations.append(pending[1] if pending else "identity")
            elif pending:
                raise ValueError(f"the stack must start with a Linear layer, found "
                                 f"{type(leaves[0][1]).__name__} at position {leaves[0][0]}")
            linears.append(leaf)
            pending = None
            continue
        name = _activation_name(leaf, position)
        if pending is not None:
            raise ValueError(f"two activations in a row, at positions {pending[0]} and "
                             f"{position}: fastprop has one σ per hidden layer")
        pending = (position, name)
    if not linears:
        raise ValueError("the stack has no Linear layer")
    if pending is not None:
        raise ValueError(f"the stack must end with a Linear layer (fastprop's output z_n has "
                         f"no activation), found {type(leaves[-1][1]).__name__} at position "
                         f"{pending[0]} after the last Linear")
    return linears, activations


def _activation_name(leaf: Any, position: str) -> str:
    nn = _torch().nn
    where = f"{type(leaf).__name__} at position {position}"
    if isinstance(leaf, nn.Identity):
        return "identity"
    if isinstance(leaf, nn.Sigmoid):
        return "sigmoid"
    if isinstance(leaf, nn.Tanh):
        return "tanh"
    if isinstance(leaf, nn.ReLU):
        return "relu"
    if isinstance(leaf, nn.LeakyReLU):
        if leaf.negative_slope != LEAKY_RELU_SLOPE:
            raise ValueError(f"{where} has negative_slope={leaf.negative_slope}; fastprop's "
                             f"leaky_relu has slope {LEAKY_RELU_SLOPE}")
        return "leaky_relu"
    if isinstance(leaf, nn.Softplus):
        if leaf.beta != 1 or leaf.threshold != SOFTPLUS_THRESHOLD:
            raise ValueError(f"{where} has beta={leaf.beta}, threshold={leaf.threshold}; "
                             f"fastprop's softplus is beta=1 (threshold "
                             f"{SOFTPLUS_THRESHOLD:g}, torch's default)")
        return "softplus"
    raise TypeError(f"unsupported module {where}; fastprop supports Linear, Sigmoid, Tanh, "
                    f"ReLU, LeakyReLU(0.01), Softplus() and Identity")


def _activation_module(nn: Any, name: str) -> Any:
    return {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
            "leaky_relu": lambda: nn.LeakyReLU(LEAKY_RELU_SLOPE), "softplus": nn.Softplus,
            "identity": nn.Identity}[name]()


def _common_dtype(linears: Sequence[Any]) -> str:
    """The one dtype of every weight and bias, float32 or float64."""
    names = {str(p.dtype).removeprefix("torch.") for linear in linears
             for p in (linear.weight, linear.bias) if p is not None}
    if len(names) != 1:
        raise ValueError(f"the Linear layers mix dtypes {sorted(names)}; pass dtype= to choose")
    (name,) = names
    if name not in ("float32", "float64"):
        raise ValueError(f"the weights are {name}; fastprop computes in float32 or float64: "
                         f"pass dtype='float32' or 'float64' to convert")
    return name


def _to_numpy(parameter: Any) -> np.ndarray:
    """A float64 NumPy copy (exact for float16, bfloat16, float32 and float64)."""
    torch = _torch()
    return parameter.detach().to(device="cpu", dtype=torch.float64).numpy()


# ---------------------------------------------------------------------- scikit-learn
_FROM_SKLEARN = {"logistic": "sigmoid", "tanh": "tanh", "relu": "relu", "identity": "identity"}
_TO_SKLEARN = {name: sk for sk, name in _FROM_SKLEARN.items()}
_OUTPUT_LOSS = {"identity": "mse", "softmax": "cross_entropy",
                "logistic": "binary_cross_entropy", "exp": "poisson"}


def from_sklearn(estimator: Any, dtype: DTypeLike | None = None, *,
                 loss: str | None = None) -> Network:
    """A fastprop Network with the layers, activation and parameters of a fitted MLP.

    Parameters
    ----------
    estimator : fitted MLPRegressor or MLPClassifier
        scikit-learn's (``sklearn.neural_network``) or fastprop's (:mod:`fastprop.sklearn`).
    dtype : "float64", "float32" or None
        Precision of the network; None takes that of ``coefs_``.
    loss : str or None
        The network's loss; None takes it from the output link (see the module docstring).

    Returns
    -------
    Network
        ``net.forward(X)`` is the estimator's output before its link: ``predict(X)`` of a
        regressor; the logits whose softmax or sigmoid is ``predict_proba(X)``.

    Raises
    ------
    TypeError
        When ``estimator`` is not such an estimator.
    ValueError
        When it is not fitted, or has an output link fastprop does not have.
    """
    names = ("coefs_", "intercepts_", "activation", "out_activation_")
    if type(estimator).__name__ not in ("MLPRegressor", "MLPClassifier"):
        raise TypeError(f"estimator must be a fitted MLPRegressor or MLPClassifier (of "
                        f"scikit-learn or fastprop.sklearn), got {type(estimator).__name__}")
    try:
        coefs, intercepts, activation, link = (getattr(estimator, name) for name in names)
    except AttributeError:
        raise ValueError(f"this {type(estimator).__name__} is not fitted yet: call fit "
                         f"first") from None
    if activation not in _FROM_SKLEARN:
        raise ValueError(f"activation {activation!r} has no fastprop equivalent; expected one "
                         f"of {', '.join(_FROM_SKLEARN)}")
    if link not in _OUTPUT_LOSS:
        raise ValueError(f"the output link out_activation_={link!r} has no fastprop "
                         f"equivalent (fastprop's output z_n is linear, read through "
                         f"identity, softmax, logistic or exp)")
    if loss is None:
        loss = _OUTPUT_LOSS[link]
    if dtype is None:
        dtype = np.asarray(coefs[0]).dtype
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"coefs_ are {dtype}; pass dtype='float32' or 'float64'")
    layers = [np.shape(coefs[0])[0]] + [np.shape(c)[1] for c in coefs]
    net = Network(layers, _FROM_SKLEARN[activation], bias=True, dtype=dtype, seed=0, loss=loss)
    weights, biases = net.weights, net.biases  # each property builds all its views: once
    for i, (c, b) in enumerate(zip(coefs, intercepts)):
        weights[i][...] = np.asarray(c).T
        biases[i][...] = b
    return net


def to_sklearn(net: Network, classes: Any = None) -> Any:
    """A fitted scikit-learn MLPRegressor or MLPClassifier computing what ``net`` computes.

    Parameters
    ----------
    net : Network
        Hidden layers sharing one activation scikit-learn has (sigmoid, tanh, relu,
        identity). Loss "sse" or "mse" gives an MLPRegressor, "poisson" an
        ``MLPRegressor(loss="poisson")`` (scikit-learn ≥ 1.7) whose ``predict`` is
        e^{z_n}; "cross_entropy" (l_n ≥ 2) and "binary_cross_entropy" an MLPClassifier.
    classes : array-like or None
        The class labels, in the order of the outputs (two for binary classification);
        None numbers them 0, 1, .... Multilabel networks ("binary_cross_entropy" with
        l_n > 1) take none: their labels are the output indices.

    Returns
    -------
    sklearn.neural_network.MLPRegressor or MLPClassifier
        Fitted: ``predict`` equals ``net.forward`` (regression; its exp for poisson) and
        ``predict_proba`` the softmax or sigmoid of it, up to rounding. The parameters are copies, in the
        network's dtype.
    """
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
        from sklearn.preprocessing import LabelBinarizer
    except ImportError as error:
        raise ImportError("to_sklearn needs scikit-learn: pip install scikit-learn") from error
    if len(set(net.activations)) > 1:
        raise ValueError(f"scikit-learn's MLP has one activation for all hidden layers; this "
                         f"network has {list(net.activations)}")
    activation = net.activations[0] if net.activations else "identity"
    if activation not in _TO_SKLEARN:
        raise ValueError(f"scikit-learn's MLP has no {activation!r} activation; it has "
                         f"{', '.join(_TO_SKLEARN)}")
    W = [w.copy() for w in net.weights]
    b = [v.copy() for v in net.biases] if net.bias else [np.zeros(w.shape[0], net.dtype)
                                                           for w in W]
    l_n = net.layers[-1]
    hidden = list(net.layers[1:-1])
    options = dict(hidden_layer_sizes=tuple(hidden), activation=_TO_SKLEARN[activation])
    if net.loss_name in ("sse", "mse", "poisson"):
        if classes is not None:
            raise ValueError(f"classes are for classifiers; this network's loss is "
                             f"{net.loss_name!r}")
        if net.loss_name == "poisson":
            if "loss" not in MLPRegressor().get_params():
                raise ValueError("a poisson network becomes MLPRegressor(loss='poisson'), "
                                 "which needs scikit-learn 1.7 or newer")
            estimator = MLPRegressor(loss="poisson", **options)
            link = "exp"  # predict gives the rate e^{z_n}
        else:
            estimator = MLPRegressor(**options)
            link = "identity"
    elif net.loss_name in ("cross_entropy", "binary_cross_entropy"):
        estimator = MLPClassifier(**options)
        multilabel = net.loss_name == "binary_cross_entropy" and l_n > 1
        if net.loss_name == "cross_entropy" and l_n < 2:
            raise ValueError("a cross_entropy network needs at least 2 outputs (classes), "
                             "got l_n = 1")
        if net.loss_name == "cross_entropy" and l_n == 2:
            # softmax([z_0, z_1])_1 = sigmoid(z_1 − z_0): scikit-learn's binary form
            W[-1] = (W[-1][1] - W[-1][0])[np.newaxis, :]
            b[-1] = b[-1][1:] - b[-1][:1]
        if multilabel:
            if classes is not None:
                raise ValueError("a multilabel network (binary_cross_entropy, l_n > 1) takes "
                                 "no classes: its labels are the output indices")
            binarizer = LabelBinarizer().fit(np.vstack([np.eye(l_n, dtype=int),
                                                        np.zeros((1, l_n), dtype=int)]))
        else:
            n_classes = l_n if l_n > 1 else 2
            labels = np.arange(n_classes) if classes is None else np.asarray(classes)
            if labels.ndim != 1 or len(labels) != n_classes or len(np.unique(labels)) != n_classes:
                raise ValueError(f"classes must be {n_classes} distinct labels for this "
                                 f"network, got {classes!r}")
            binarizer = LabelBinarizer().fit(labels)
            if not np.array_equal(binarizer.classes_, labels):
                raise ValueError(f"classes must be given in sorted order, as scikit-learn "
                                 f"keeps them (output j is classes[j]); got {list(labels)}")
        estimator._label_binarizer = binarizer
        estimator.classes_ = binarizer.classes_
        link = "softmax" if net.loss_name == "cross_entropy" and l_n > 2 else "logistic"
    else:  # "huber": scikit-learn's MLPs have no such loss
        raise ValueError(f"scikit-learn's MLPRegressor and MLPClassifier have no loss like "
                         f"this network's {net.loss_name!r}: to_sklearn takes the losses "
                         f"'sse', 'mse', 'poisson', 'cross_entropy' and "
                         f"'binary_cross_entropy'")
    estimator.coefs_ = [w.T.copy() for w in W]
    estimator.intercepts_ = b
    estimator.n_layers_ = net.n + 1
    estimator.n_outputs_ = W[-1].shape[0]
    estimator.out_activation_ = link
    estimator.n_features_in_ = net.layers[0]
    # The state a first fit leaves, so that partial_fit continues from these parameters.
    estimator.n_iter_ = 0
    estimator.t_ = 0
    estimator.loss_curve_ = []
    estimator.best_loss_ = np.inf
    estimator.validation_scores_ = None
    estimator.best_validation_score_ = None
    estimator._no_improvement_count = 0
    estimator._best_coefs = [c.copy() for c in estimator.coefs_]
    estimator._best_intercepts = [c.copy() for c in estimator.intercepts_]
    return estimator
