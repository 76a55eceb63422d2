"""The threads of the core's matrix products, and the FASTPROP_* environment it reads."""

from __future__ import annotations

import os
import re
import warnings

from . import _core
from ._validate import check_int

__all__ = ["set_num_threads", "get_num_threads"]


def set_num_threads(k: int) -> None:
    """Use k >= 1 threads for the matrix products of every network in this process.

    The default is the environment variable FASTPROP_NUM_THREADS when set, else the number
    of CPUs. Small products stay on one thread whatever k is. Results are bit-identical for
    every k: each sum over samples is taken in the same order.
    """
    _core.set_num_threads(check_int(k, "k", low=1))


def get_num_threads() -> int:
    """The number of threads the matrix products may use (see :func:`set_num_threads`)."""
    return int(_core.get_num_threads())


def _warn_about_ignored_settings(environ: dict[str, str]) -> None:
    """A RuntimeWarning for each FASTPROP_* variable the core would ignore for its value."""
    isa = environ.get("FASTPROP_MAX_ISA")
    if isa is not None and isa not in ("portable", "avx2", "avx512"):
        warnings.warn(f"FASTPROP_MAX_ISA={isa!r} is ignored (the kernels are not capped): "
                      f"expected 'portable', 'avx2' or 'avx512'", RuntimeWarning, stacklevel=2)
    threads = environ.get("FASTPROP_NUM_THREADS")
    match = re.fullmatch(r"\s*\+?(\d+)", threads) if threads is not None else None
    if threads is not None and (match is None or int(match.group(1)) == 0):
        warnings.warn(f"FASTPROP_NUM_THREADS={threads!r} is ignored (the default is the number "
                      f"of CPUs): expected a positive integer", RuntimeWarning, stacklevel=2)


_warn_about_ignored_settings(dict(os.environ))
