"""Leaving Python: fastprop networks as ONNX graphs and as dependency-free C, and back.

=====================================  ======================================================
``to_onnx(net, path, extra=...)``      an ONNX model (needs the onnx package)
``from_onnx(model)``                   a Network from fastprop's ONNX graphs and the plain
                                       MLP graphs of skl2onnx and torch.onnx.export
``register_skl2onnx()``                skl2onnx converters for fastprop.sklearn's estimators
``to_c(net, path, name="model")``      one C99 / C++ header, nothing but <math.h>
=====================================  ======================================================

``Network.to_onnx``, ``Network.from_onnx``, ``Network.to_c`` and ``fastprop.from_onnx`` call
these. ``extra`` is the standardisation and the names that ``fastprop.load(path,
return_extra=True)`` returns for a model trained by ``python -m fastprop train``; the
exports apply it inside the graph or the C code. Nothing here imports onnx until it is used.
"""

from .c import to_c
from .onnx import DEFAULT_OPSET, from_onnx, register_skl2onnx, to_onnx

__all__ = ["to_onnx", "from_onnx", "register_skl2onnx", "to_c", "DEFAULT_OPSET"]
