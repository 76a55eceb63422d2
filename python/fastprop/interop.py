"""Conversion to and from PyTorch: ``nn.Sequential`` of ``nn.Linear`` and activations.

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

__all__ = ["from_torch", "to_torch"]

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
    for i, linear in enumerate(linears):
        net.weights[i][...] = _to_numpy(linear.weight)
        if bias:
            net.biases[i][...] = _to_numpy(linear.bias)
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
    for i, (l_in, l_out) in enumerate(zip(net.layers[:-1], net.layers[1:])):
        linear = nn.Linear(l_in, l_out, bias=net.bias, dtype=torch_dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(net.weights[i].copy()))
            if net.bias:
                linear.bias.copy_(torch.from_numpy(net.biases[i].copy()))
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
