"""The checks of what users pass to fastprop, one function per kind of input, one message style.

Every check returns the value in the form fastprop uses (an int, a float, a NumPy dtype, a
tuple) or raises with a message that reads::

    {name} must be {expected}, got {given}

``name`` is the argument as the caller knows it (``lr``, ``betas[1]``, ``X``), ``expected``
what would have been accepted, and ``given`` what was: the value's repr (shortened when
long) and, when the expectation is a type (a real number, an int, a sequence, callable),
the name of the type given first (``got str '0.1'``). A wrong type raises TypeError, a
wrong value ValueError. Lists of names end with ``;`` before ``got``, as their entries are
separated by commas.
"""

from __future__ import annotations

import math
import numbers
import os
import reprlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

__all__ = ["message", "shown", "typed", "check_bool", "check_real", "check_lr", "check_int",
           "check_count", "check_choice", "check_dtype", "check_seed", "fresh_seed", "check_layers",
           "check_activations", "check_callable", "check_pair", "real_array", "check_memory",
           "check_sample_weight"]

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60
_repr.maxlist = _repr.maxtuple = 8


def shown(value: Any) -> str:
    """The repr of a value given, shortened when long."""
    return _repr.repr(value)


def typed(value: Any) -> str:
    """A value given where a type was expected: its type's name, then its repr."""
    return f"{type(value).__name__} {shown(value)}"


def message(name: str, expected: str, given: str, *, verb: str = "be", sep: str = ",") -> str:
    """``"{name} must {verb} {expected}{sep} got {given}"``: every message of this module."""
    return f"{name} must {verb} {expected}{sep} got {given}"


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_bool(value: Any, name: str) -> bool:
    """True or False (NumPy's bool too); not 0, 1 or a string."""
    if not _is_bool(value):
        raise TypeError(message(name, "True or False", shown(value)))
    return bool(value)


def _bound(x: float) -> str:
    return f"{x:g}"


def _interval(low: float, high: float, low_open: bool, high_open: bool) -> str:
    """" > 0", " in [0, 1)", ...: the range of a finite number, as a phrase."""
    if low == -math.inf and high == math.inf:
        return ""
    if high == math.inf:
        return f" {'>' if low_open else '>='} {_bound(low)}"
    if low == -math.inf:
        return f" {'<' if high_open else '<='} {_bound(high)}"
    return (f" in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}"
            f"{')' if high_open else ']'}")


def check_real(value: Any, name: str, *, low: float = -math.inf, high: float = math.inf,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number within [low, high] (either end open): a float.

    TypeError for anything but a real number (bool included); ValueError for NaN, ±inf or a
    number out of range.
    """
    if type(value) is float:  # the common case, without the ABC's isinstance (a few µs)
        x = value
    elif _is_bool(value) or not isinstance(value, numbers.Real):
        raise TypeError(message(name, "a real number", typed(value)))
    else:
        try:
            x = float(value)
        except OverflowError:  # an int beyond float's range
            x = math.inf
    above = x > low if low_open else x >= low
    below = x < high if high_open else x <= high
    if not (math.isfinite(x) and above and below):
        raise ValueError(message(name, "a finite number" + _interval(low, high, low_open,
                                                                      high_open), shown(value)))
    return x


def check_lr(lr: Any, name: str = "lr") -> float:
    """A learning rate (or an initial step size): a finite number > 0."""
    return check_real(lr, name, low=0, low_open=True)


def check_int(value: Any, name: str, *, low: int | None = None,
              high: int | None = None) -> int:
    """An integer (NumPy's too, not bool) within [low, high]: an int."""
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        raise TypeError(message(name, "an int", typed(value)))
    if (low is not None and value < low) or (high is not None and value > high):
        expected = (f">= {low}" if high is None else f"<= {high}" if low is None
                    else f"in [{low}, {high}]")
        raise ValueError(message(name, expected, shown(value)))
    return int(value)


def check_count(value: Any, name: str, *, low: int) -> int:
    """A count of epochs, rows or epochs of patience: an int >= low and <= 2**63 - 1 (the
    core counts them in 64 bits; the command line has the same bound)."""
    value = check_int(value, name, low=low)
    if value > 2**63 - 1:
        raise ValueError(message(name, "<= 2**63 - 1", shown(value)))
    return value


def check_choice(value: Any, name: str, choices: Sequence[str], *,
                 expected: str | None = None) -> str:
    """One of the names ``choices``; ``expected`` says so when the list alone does not."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(message(name, expected or f"one of {', '.join(choices)}", shown(value),
                                 sep=";"))
    return value


def check_dtype(dtype: DTypeLike, name: str = "dtype") -> np.dtype:
    """float64 or float32, in any spelling NumPy understands ("f8", np.float32, ...)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    # Not `dt in DTYPES`: a dtype equals anything np.dtype() turns into it, None included.
    if dt is None or dt.name not in ("float64", "float32"):
        raise ValueError(message(name, "'float64' or 'float32'", shown(dtype)))
    return dt


def check_seed(seed: Any, name: str = "seed") -> int:
    """A seed of the core's generator: an int in [0, 2**64)."""
    if _is_bool(seed) or not isinstance(seed, numbers.Integral):
        raise TypeError(message(name, "an int or None", typed(seed)))
    if not 0 <= seed < 2**64:
        raise ValueError(message(name, "in [0, 2**64)", shown(seed)))
    return int(seed)


def fresh_seed() -> int:
    """A seed drawn from the operating system's entropy."""
    return int(np.random.SeedSequence().generate_state(1, np.uint64)[0])


def check_layers(layers: Any) -> tuple[int, ...]:
    """Layer sizes (l_0, ..., l_n): a sequence (or array) of at least 2 integers >= 1."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, (Sequence, np.ndarray)):
        raise TypeError(message("layers", "a sequence of ints (l_0, ..., l_n)", typed(layers)))
    sizes = []
    for i, size in enumerate(layers):
        if _is_bool(size) or not isinstance(size, numbers.Integral):
            raise TypeError(message("layer sizes", "integers", f"l_{i} = {shown(size)}"))
        if size < 1:
            raise ValueError(message("layer sizes", ">= 1", f"l_{i} = {shown(size)}"))
        sizes.append(int(size))
    if len(sizes) < 2:
        raise ValueError(message("layers", "at least 2 sizes (l_0, ..., l_n)", str(len(sizes))))
    return tuple(sizes)


def check_activations(activation: Any, n: int, choices: Sequence[str]) -> tuple[str, ...]:
    """σ_1 … σ_{n−1} of a network of n weight matrices: one name for all, or n−1 names."""
    if isinstance(activation, str):
        return (check_choice(activation, "activation", choices),) * (n - 1)
    try:
        names = tuple(activation)
    except TypeError:
        raise TypeError(message("activation", "a name or a sequence of names",
                                typed(activation))) from None
    if len(names) != n - 1:
        raise ValueError(message("activation", f"one name or a list of n-1 = {n - 1} names (one "
                                 f"per hidden layer)", str(len(names))))
    return tuple(check_choice(a, "activation", choices) for a in names)


def check_callable(value: Any, name: str) -> Callable[..., Any] | None:
    """A callable or None."""
    if value is not None and not callable(value):
        raise TypeError(message(name, "callable or None", typed(value)))
    return value


def check_pair(value: Any, name: str, expected: str = "a pair of numbers") -> tuple[Any, Any]:
    """Two items, unpacked; their own checks are the caller's."""
    try:
        first, second = value
    except (TypeError, ValueError):
        raise TypeError(message(name, expected, shown(value))) from None
    return first, second


def real_array(A: ArrayLike, name: str) -> np.ndarray:
    """A as a NumPy array of bool, int or float, without copying when it is one already."""
    if A is None or isinstance(A, (str, bytes)):
        raise TypeError(message(name, "an array of real numbers", typed(A)))
    try:
        arr = np.asarray(A)
    except (ValueError, TypeError) as error:
        raise ValueError(message(name, "a rectangular array of real numbers",
                                 f"{shown(A)} ({error})")) from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(message(name, "real numbers (bool, int or float)", f"dtype {arr.dtype}",
                                verb="hold"))
    return arr


def check_sample_weight(sample_weight: ArrayLike, t: int, dtype: DTypeLike = np.float64,
                        name: str = "sample_weight", *, totals: bool = True) -> np.ndarray:
    """Weights of t samples: a 1-D array of t finite numbers >= 0, not all 0 (unless t = 0),
    whose total and its reciprocal are finite in ``dtype``; returned as a C-contiguous array
    of ``dtype``. Without ``totals``, the weights alone (a part of the data set, whose total
    is checked with the others').

    A weight scales its sample's term of the loss; a mean loss divides by the total weight.
    """
    w = real_array(sample_weight, name)
    if w.ndim != 1 or w.shape[0] != t:
        raise ValueError(message(name, f"a 1-D array of {t} weights (one per row of X)",
                                 f"shape {w.shape}"))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        w = np.ascontiguousarray(w, dtype=dtype)
        total = float(np.sum(w, dtype=np.float64))
        total_finite = bool(np.isfinite(np.float64(total).astype(dtype)))
        reciprocal_finite = bool(np.isfinite(np.divide(1, np.float64(total).astype(dtype))))
    ok = np.isfinite(w) & (w >= 0)
    if not np.all(ok):
        bad = np.asarray(sample_weight)[np.argmin(ok)].item()
        raise ValueError(message(name, f"finite numbers >= 0 (in {np.dtype(dtype).name})",
                                 shown(bad), verb="hold"))
    if not totals:
        return w
    if t and not total > 0:
        raise ValueError(message(name, "at least one weight > 0", "all weights zero",
                                 verb="have"))
    if not total_finite:
        raise ValueError(message(name, f"a total finite in {np.dtype(dtype).name}",
                                 shown(total), verb="have"))
    if t and not reciprocal_finite:  # a mean loss divides by the total
        raise ValueError(message(name, f"a total whose reciprocal is finite in "
                                 f"{np.dtype(dtype).name} (rescale them: a mean loss depends "
                                 f"only on their ratios)", shown(total), verb="have"))
    return w


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation, when the system says (Linux)."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_memory(layers: tuple[int, ...], bias: bool, dtype: np.dtype) -> None:
    """Refuse, before allocating anything, a network whose buffers cannot fit in memory."""
    n_params = sum(l_out * (l_in + bias) for l_in, l_out in zip(layers, layers[1:]))
    if n_params >= 2**63:
        raise ValueError(f"layers {layers} give {n_params} parameters, more than a 64-bit "
                         f"size can count")
    needed = 2 * n_params * dtype.itemsize  # the parameters and their gradient
    available = available_memory()
    if available is not None and needed > available:
        raise MemoryError(f"layers {layers} need {n_params:,} parameters: {needed / 2**30:.1f} GiB "
                          f"for the parameters and their gradient, but only "
                          f"{available / 2**30:.1f} GiB of memory is available")


_PACKAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "")


def caller_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` in the calling function that names the first
    frame outside fastprop: the user's call, or scikit-learn's loop calling an estimator's
    fit, however many of fastprop's own frames lie between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    return level
