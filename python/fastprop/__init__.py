"""fastprop: feedforward neural networks trained by backpropagation in a fast C++ core.

The model: layers 0..n with sizes l_0..l_n, z_{i+1} = W_i a_i (+ b_i), a_i = σ(z_i) for the
hidden layers, a_0 = x, output z_n, error E = Σ_samples ||y − z_n||². See :class:`Network`.
:mod:`fastprop.reference` is the same model in plain NumPy and imports without the extension.
"""

import importlib as _importlib
import importlib.metadata as _metadata

try:
    __version__ = _metadata.version("fastprop")
except _metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

# The submodules users reach as attributes, imported on first use (``fastprop.sklearn`` needs
# scikit-learn, ``fastprop.export.onnx`` onnx: nothing optional is imported by ``import
# fastprop``). They are not in __all__, so that ``from fastprop import *`` stays light.
_SUBMODULES = ("bench", "cli", "distributed", "ensemble", "export", "history", "interop", "io",
               "many", "model_selection", "network", "optim", "reference", "sklearn")

__all__ = ["Network", "Trace", "History", "load", "save", "from_onnx", "optim", "reference",
           "fit_many", "FitManyResult",
           "set_num_threads", "get_num_threads", "max_threads", "__version__"]

from . import reference

try:
    from . import optim
    from .io import load, save
    from ._runtime import get_num_threads, max_threads, set_num_threads
    from .history import History, Trace
    from .network import Network
    from .many import FitManyResult, fit_many
    from ._threadpool import register as _register_with_threadpoolctl

    _register_with_threadpoolctl()  # threadpoolctl sees and limits fastprop's threads
    del _register_with_threadpoolctl

    def from_onnx(model, dtype=None, *, loss=None, return_extra=False):  # noqa: D103
        from .export.onnx import from_onnx

        return from_onnx(model, dtype, loss=loss, return_extra=return_extra)

    from_onnx.__doc__ = "A Network from an ONNX graph: see :func:`fastprop.export.from_onnx`."
except ImportError as _error:  # the compiled core is missing; fastprop.reference still works
    if "_core" not in str(_error):
        raise
    _missing_core = _error


def __getattr__(name: str):
    """The submodules on first use (``import fastprop; fastprop.sklearn`` works)."""
    if "_missing_core" in globals() and name in (
            "Network", "Trace", "History", "load", "save", "from_onnx", "optim", "fit_many",
            "FitManyResult", "set_num_threads", "get_num_threads", "max_threads", *_SUBMODULES) and name != "reference":
        raise ImportError(
            "fastprop's compiled core (fastprop._core) is not built: install the package "
            "with `pip install .` from the source tree, which compiles it. "
            "fastprop.reference works without it."
        ) from _missing_core
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'fastprop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES})
