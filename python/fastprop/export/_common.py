"""What the ONNX and C exporters share: the preprocessing a model file carries, the
probabilities of the classification losses, and writing a file with a clear error."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._files import write_file
from ..network import Network

# The output link of each classification loss: the second output of an exported model.
PROBABILITIES = {"cross_entropy": "softmax", "binary_cross_entropy": "sigmoid"}
REGRESSION_LOSSES = ("sse", "mse")

# The keys of ``extra`` (as fastprop.load(path, return_extra=True) returns them for a model
# trained by `python -m fastprop train`) that an export understands.
EXTRA_KEYS = ("x_mean", "x_scale", "y_mean", "y_scale", "feature_names", "target_names",
              "classes", "task")


@dataclass(frozen=True)
class Preprocessing:
    """What surrounds the network in a model file, checked against the network.

    a_0 = (x − x_mean) / x_scale before the first layer, and y = z_n ⊙ y_scale + y_mean
    after the last (each part absent when None), with the names that go with them.
    """

    x_mean: np.ndarray | None = None
    x_scale: np.ndarray | None = None
    y_mean: np.ndarray | None = None
    y_scale: np.ndarray | None = None
    feature_names: tuple[str, ...] | None = None
    target_names: tuple[str, ...] | None = None
    classes: tuple[str, ...] | None = None
    task: str | None = None

    @property
    def standardises_input(self) -> bool:
        return self.x_mean is not None or self.x_scale is not None

    @property
    def standardises_output(self) -> bool:
        return self.y_mean is not None or self.y_scale is not None


def check_net(net: Any) -> Network:
    if not isinstance(net, Network):
        raise TypeError(f"net must be a fastprop.Network, got {type(net).__name__}")
    return net


def read_extra(net: Network, extra: Mapping[str, Any] | None) -> Preprocessing:
    """The standardisation and names in ``extra``, each checked against ``net``.

    Every key must be one of :data:`EXTRA_KEYS`: a key that would change the predictions
    but that the exporter does not know is refused rather than left out of the export.
    """
    if extra is None:
        return Preprocessing()
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping of names to arrays (as "
                        f"fastprop.load(path, return_extra=True) returns), got "
                        f"{type(extra).__name__}")
    unknown = [key for key in extra if key not in EXTRA_KEYS]
    if unknown:
        raise ValueError(f"extra has key(s) {', '.join(map(repr, unknown))} that the export "
                         f"does not know how to apply; it understands "
                         f"{', '.join(EXTRA_KEYS)}")
    l_0, l_n = net.layers[0], net.layers[-1]
    classification = net.loss_name in PROBABILITIES
    task = extra.get("task")
    if task is not None:
        task = str(np.asarray(task))
        if task not in ("classification", "regression"):
            raise ValueError(f"extra['task'] must be 'classification' or 'regression', got "
                             f"{task!r}")
        if (task == "classification") != classification:
            raise ValueError(f"extra['task'] is {task!r} but the network's loss is "
                             f"{net.loss_name!r}")
    y_given = [key for key in ("y_mean", "y_scale") if key in extra]
    if y_given and classification:
        raise ValueError(f"extra[{y_given[0]!r}] de-standardises a regression output, but the "
                         f"network's loss is {net.loss_name!r} (a classifier)")
    classes = _names(extra, "classes", None)
    if classes is not None:
        if not classification:
            raise ValueError(f"extra['classes'] names the classes of a classifier, but the "
                             f"network's loss is {net.loss_name!r}")
        expected = 2 if net.loss_name == "binary_cross_entropy" and l_n == 1 else l_n
        if len(classes) != expected:
            raise ValueError(f"extra['classes'] must name {expected} classes for l_n = {l_n} "
                             f"and loss {net.loss_name!r}, got {len(classes)}")
    dtype = net.dtype
    return Preprocessing(
        x_mean=_vector(extra, "x_mean", l_0, "l_0", dtype),
        x_scale=_vector(extra, "x_scale", l_0, "l_0", dtype, nonzero=True),
        y_mean=_vector(extra, "y_mean", l_n, "l_n", dtype),
        y_scale=_vector(extra, "y_scale", l_n, "l_n", dtype, nonzero=True),
        feature_names=_names(extra, "feature_names", l_0),
        target_names=_names(extra, "target_names", None),
        classes=classes, task=task)


def _vector(extra: Mapping[str, Any], key: str, size: int, what: str, dtype: np.dtype,
            nonzero: bool = False) -> np.ndarray | None:
    """extra[key], (size,) finite numbers (and not 0 where they divide) in float64 and in the
    network's dtype, which the exported model computes in."""
    if key not in extra:
        return None
    value = np.asarray(extra[key])
    if value.dtype.kind not in "biuf":
        raise TypeError(f"extra[{key!r}] must hold real numbers, got dtype {value.dtype}")
    if value.shape != (size,):
        raise ValueError(f"extra[{key!r}] must have shape ({size},) ({what} = {size}), got "
                         f"{value.shape}")
    value = value.astype(np.float64)
    if not np.all(np.isfinite(value)):
        raise ValueError(f"extra[{key!r}] must be finite, got {value}")
    if nonzero and np.any(value == 0):
        raise ValueError(f"extra[{key!r}] divides, so it must not hold 0; got {value}")
    with np.errstate(over="ignore", under="ignore"):
        typed = value.astype(dtype)
    bad = ~np.isfinite(typed) | ((typed == 0) & (value != 0) if nonzero else False)
    if np.any(bad):
        k = int(np.argmax(bad))
        raise ValueError(f"extra[{key!r}] must be {'non-zero and ' if nonzero else ''}finite "
                         f"in {np.dtype(dtype).name}, the network's dtype, which the export "
                         f"computes in; got {float(value[k])!r}, which becomes "
                         f"{float(typed[k])!r}")
    return value


def _names(extra: Mapping[str, Any], key: str, size: int | None) -> tuple[str, ...] | None:
    if key not in extra:
        return None
    value = np.asarray(extra[key])
    if value.ndim != 1 or value.dtype.kind not in "Ubiuf":
        raise ValueError(f"extra[{key!r}] must be a 1-D array of names, got dtype "
                         f"{value.dtype} and shape {value.shape}")
    if size is not None and len(value) != size:
        raise ValueError(f"extra[{key!r}] must have {size} entries, got {len(value)}")
    return tuple(str(name) for name in value.tolist())


def describe_layers(net: Network) -> str:
    """'4, 16, 3'."""
    return ", ".join(str(l_i) for l_i in net.layers)
