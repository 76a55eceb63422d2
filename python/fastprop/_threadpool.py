"""fastprop's threads under threadpoolctl: ``threadpool_info()`` lists them, ``threadpool_limits``
limits them.

threadpoolctl finds the shared libraries loaded in the process and asks each registered
controller whether it knows one. fastprop's compiled module (``fastprop/_core*.so``, or
``.pyd``) exports two C functions for this, ``fastprop_get_num_threads()`` and
``fastprop_set_num_threads(int)`` (cpp/python/module.cpp); :class:`FastpropController` reads
and sets the core's thread count through them, the count :func:`fastprop.get_num_threads`
reports. It is registered when ``fastprop`` is imported and threadpoolctl (>= 3.5, which
has ``register``) is installed: importing threadpoolctl and registering took 2 to 7 ms on a
loaded 2-CPU machine, 1 to 2 % of ``import fastprop`` (``tp.register()`` timed with
time.perf_counter in a fresh interpreter, after ``import fastprop`` with threadpoolctl
hidden), so it is done at once rather than lazily.

    >>> from threadpoolctl import threadpool_info, threadpool_limits
    >>> [lib["internal_api"] for lib in threadpool_info()]          # doctest: +SKIP
    ['openblas', 'fastprop']
    >>> with threadpool_limits(1):                                  # doctest: +SKIP
    ...     fastprop.get_num_threads()
    1

Inside joblib's workers (the loky and multiprocessing backends) the core takes its thread
count from OMP_NUM_THREADS, which joblib sets there, when FASTPROP_NUM_THREADS is unset.
"""

from __future__ import annotations

import ctypes

__all__ = ["register"]

_registered = False


def register() -> bool:
    """Register :class:`FastpropController` with threadpoolctl, once; False when
    threadpoolctl is missing or too old to take controllers from other packages."""
    global _registered
    if _registered:
        return True
    try:
        import threadpoolctl
    except ImportError:
        return False
    if not hasattr(threadpoolctl, "register") or not hasattr(threadpoolctl, "LibController"):
        return False
    threadpoolctl.register(_controller_class(threadpoolctl.LibController))
    _registered = True
    return True


def _controller_class(LibController: type) -> type:
    """The controller, made once threadpoolctl's base class is at hand."""

    class FastpropController(LibController):
        """threadpoolctl's view of fastprop's thread pool (the core's matrix products)."""

        user_api = "fastprop"
        internal_api = "fastprop"
        # The compiled module's file name starts with "_core"; check_symbols tells fastprop's
        # from any other package's module of that name.
        filename_prefixes = ("_core",)
        check_symbols = ("fastprop_get_num_threads", "fastprop_set_num_threads")

        def get_num_threads(self) -> int | None:
            get = getattr(self.dynlib, "fastprop_get_num_threads", None)
            if get is None:
                return None
            get.restype = ctypes.c_int
            get.argtypes = []
            return int(get())

        def set_num_threads(self, num_threads: int) -> None:
            set_ = getattr(self.dynlib, "fastprop_set_num_threads", None)
            if set_ is None:
                return
            set_.restype = None
            set_.argtypes = [ctypes.c_int]
            # The core ignores counts out of [1, max_threads()]; threadpoolctl passes >= 1.
            set_(int(num_threads))

        def get_version(self) -> str | None:
            from . import __version__

            return __version__

    return FastpropController
