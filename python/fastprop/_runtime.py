"""The threads of the core's matrix products, and the FASTPROP_* environment it reads."""

from __future__ import annotations

import warnings

from . import _core
from ._validate import check_int

__all__ = ["set_num_threads", "get_num_threads", "max_threads"]


def max_threads() -> int:
    """The most threads fastprop uses: max(64, 4 × the number of CPUs). More only cost."""
    return int(_core.max_threads())


def set_num_threads(k: int) -> None:
    """Use k threads, 1 <= k <= :func:`max_threads`, for the matrix products of every network
    in this process.

    The default is the environment variable FASTPROP_NUM_THREADS when set (capped at the same
    bound), else OMP_NUM_THREADS (as joblib's and loky's workers set it), else the number of
    CPUs. Small products stay on one thread whatever k is. Results are bit-identical for every
    k: each sum over samples is taken in the same order.
    """
    k = check_int(k, "k", low=1)
    if k > max_threads():
        raise ValueError(f"k must be <= {max_threads()} (fastprop.max_threads()), got {k}")
    _core.set_num_threads(k)


def get_num_threads() -> int:
    """The number of threads the matrix products may use (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def _warn_about_ignored_settings(environ: dict[str, str] | None = None) -> None:
    """A RuntimeWarning for each FASTPROP_* variable of the environment (or of ``environ``)
    that the core ignores or caps for its value: the core parses them, Python only warns."""
    for variable, value, effect in _core.ignored_settings(environ):
        warnings.warn(f"{variable}={value!r} is {effect}", RuntimeWarning, stacklevel=2)


_warn_about_ignored_settings()
