"""fastprop: feedforward neural networks trained by backpropagation in a fast C++ core.

The model: layers 0..n with sizes l_0..l_n, z_{i+1} = W_i a_i (+ b_i), a_i = σ(z_i) for the
hidden layers, a_0 = x, output z_n, error E = Σ_samples ||y − z_n||². See :class:`Network`.
:mod:`fastprop.reference` is the same model in plain NumPy and imports without the extension.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fastprop")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0+unknown"

__all__ = ["Network", "Trace", "History", "load", "save", "from_onnx", "optim", "reference",
           "fit_many", "FitManyResult",
           "set_num_threads", "get_num_threads", "__version__"]

from . import reference

try:
    from . import optim
    from .io import load, save
    from ._runtime import get_num_threads, set_num_threads
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
        if name in ("Network", "Trace", "History", "load", "save", "from_onnx", "optim",
                    "fit_many", "FitManyResult",
                    "set_num_threads", "get_num_threads"):
            raise ImportError(
                "fastprop's compiled core (fastprop._core) is not built: install the package "
                "with `pip install .` from the source tree, which compiles it. "
                "fastprop.reference works without it."
            ) from _missing_core
        raise AttributeError(f"module 'fastprop' has no attribute {name!r}")
