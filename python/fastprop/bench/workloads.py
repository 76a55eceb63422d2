"""The workloads of ``python -m fastprop bench``: networks, data and fastprop's initial weights.

A :class:`Workload` names a network, its data and what is done with it; :func:`make_case`
turns one into a :class:`Case` in one dtype, with the data and the initial W_i, b_i of
``fastprop.Network(..., seed=0)`` that every contender starts from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import fastprop

__all__ = ["Workload", "WORKLOADS", "QUICK_WORKLOADS", "SWEEP_WIDTHS", "QUICK_SWEEP_WIDTHS",
           "UNTUNED_WIDTHS", "SHAPES", "QUICK_SHAPES", "DTYPES", "Case", "make_case", "make_data",
           "sweep_workload", "sweep_keys", "sweep_workloads"]

DTYPES = ("float32", "float64")


@dataclass(frozen=True)
class Workload:
    """One benchmark: a network, its data and what is done with it.

    Parameters
    ----------
    key, name : str
        Short key ("W1") and name ("seed-xor").
    layers : tuple of int
        (l_0, ..., l_n).
    activation : str
        σ of the hidden layers, "sigmoid" or "relu".
    bias : bool
        Whether the network has b_i.
    t : int
        Samples in the data set.
    batch : int
        Rows per gradient step (t for full batch); for inference, rows per call of a peer.
    epochs : int
        Passes over the data; there are ``epochs·t/batch`` steps.
    lr : float
        Learning rate of W_i −= lr·∂E/∂W_i, for the summed E.
    dtypes : tuple of str
        The dtypes it runs in by default.
    kind : str
        "train" or "infer" (forward only, no E is minimised).
    data : str
        "xor" (the 4 XOR samples), "classes" (x normal, y one-hot of the argmax of a fixed
        random linear teacher), "pixels" (the same with x uniform on [0, 1)) or
        "regression" (x normal, y = tanh of the teacher).
    """

    key: str
    name: str
    layers: tuple[int, ...]
    activation: str
    bias: bool
    t: int
    batch: int
    epochs: int
    lr: float
    dtypes: tuple[str, ...] = ("float32",)
    kind: str = "train"
    data: str = "classes"

    def __post_init__(self) -> None:
        assert self.t % self.batch == 0, "every minibatch has the same size"

    @property
    def full_batch(self) -> bool:
        return self.batch == self.t

    @property
    def steps(self) -> int:
        """Gradient steps of one run (training)."""
        return self.epochs * self.t // self.batch

    @property
    def macs(self) -> int:
        """Σ l_i·l_{i+1}: multiply-adds of one sample through the network."""
        return sum(l_in * l_out for l_in, l_out in zip(self.layers, self.layers[1:]))

    @property
    def unit(self) -> str:
        return "steps/s" if self.kind == "train" else "samples/s"

    @property
    def units_per_run(self) -> int:
        return self.steps if self.kind == "train" else self.t

    @property
    def flops_per_unit(self) -> int:
        """6·batch·Σ l_i·l_{i+1} per training step, 2·Σ l_i·l_{i+1} per inference sample."""
        return 6 * self.batch * self.macs if self.kind == "train" else 2 * self.macs


def _workloads(*items: Workload) -> dict[str, Workload]:
    return {w.key: w for w in items}


WORKLOADS = _workloads(
    Workload("W1", "seed-xor", (2, 8, 8, 1), "sigmoid", False, t=4, batch=4, epochs=20_000,
             lr=0.2, dtypes=DTYPES, data="xor"),
    Workload("W2", "small", (64, 64, 64, 10), "sigmoid", True, t=16_384, batch=32, epochs=1,
             lr=1e-3, dtypes=DTYPES),
    Workload("W3", "mnist-like", (784, 256, 256, 10), "relu", True, t=16_384, batch=128,
             epochs=1, lr=3e-5, data="pixels"),
    Workload("W4", "wide", (1024, 1024, 1024, 1024), "relu", True, t=512, batch=512,
             epochs=20, lr=3e-6, data="regression"),
    Workload("W5", "inference", (784, 256, 256, 10), "relu", True, t=65_536, batch=4096,
             epochs=0, lr=0.0, kind="infer", data="pixels"),
)

# The same shapes of work in miniature, for tests: seconds in all, every code path taken.
QUICK_WORKLOADS = _workloads(
    Workload("W1", "seed-xor", (2, 8, 8, 1), "sigmoid", False, t=4, batch=4, epochs=200,
             lr=0.2, dtypes=DTYPES, data="xor"),
    Workload("W2", "small", (8, 8, 8, 3), "sigmoid", True, t=256, batch=32, epochs=1,
             lr=1e-2, dtypes=DTYPES),
    Workload("W3", "mnist-like", (16, 12, 12, 4), "relu", True, t=256, batch=64, epochs=1,
             lr=1e-3, data="pixels"),
    Workload("W4", "wide", (32, 32, 32, 32), "relu", True, t=64, batch=64, epochs=3,
             lr=1e-4, data="regression"),
    Workload("W5", "inference", (16, 12, 12, 4), "relu", True, t=1024, batch=256, epochs=0,
             lr=0.0, kind="infer", data="pixels"),
)

# The sweep's widths: the powers of two, and widths one past a multiple of 8 or 16 floats (the
# AVX2 and AVX-512 vectors), which leave a one-column edge tile in every product. No kernel
# was tuned for those (issue 20: "shapes nobody tuned for").
SWEEP_WIDTHS = (16, 32, 37, 64, 65, 128, 129, 256, 512, 1024, 1025, 2048)
UNTUNED_WIDTHS = (37, 65, 129, 1025)
QUICK_SWEEP_WIDTHS = (8, 13, 16, 32)
SWEEP_BATCH = 256
# Steps per width: about this much work per timed run, 1..500 steps. Runs of a few ms measure
# how fast an idle core wakes (each run follows a SETTLE_S rest) more than how fast the steps
# go: at 2 GFLOP a run, [256]*4 ran at 0.8x on 2 threads against 1 on a 2-vCPU VM, at 1.4x
# when the runs were back to back. Past 500 steps float32 runs of w = 16 drift apart by more
# than LOSS_RTOL (1000 steps: E 245 against 234-264 for the peers; 500: within 4e-4).
SWEEP_FLOPS_PER_RUN = 8e9
SWEEP_MAX_STEPS = 500


def sweep_workload(width: int, quick: bool = False) -> Workload:
    """The [w, w, w, w] relu network with bias, full batch of 256, for the width sweep."""
    layers = (width,) * 4
    macs = 3 * width * width
    steps = 2 if quick else max(1, min(SWEEP_MAX_STEPS,
                                          round(SWEEP_FLOPS_PER_RUN / (6 * SWEEP_BATCH * macs))))
    # The summed E grows with batch·width, and so does the curvature: scale lr down with both.
    return Workload(f"w={width}", "sweep", layers, "relu", True, t=SWEEP_BATCH,
                    batch=SWEEP_BATCH, epochs=steps, lr=1 / (SWEEP_BATCH * width),
                    data="regression")


# The other shapes nobody tuned for, run with the sweep: an odd minibatch, a deep narrow
# network and single-sample steps, relu with bias on the sweep's data, lr = 1/(256·w) as
# the sweep's (the small steps keep float32 runs of 500-2048 steps within LOSS_RTOL); the
# deep network's a quarter of that (at 1/(256·w) its E diverged within 3 steps).
SHAPES = _workloads(
    Workload("b=17", "[64]x4", (64,) * 4, "relu", True, t=17 * 512, batch=17,
             epochs=1, lr=1 / (256 * 64), data="regression"),
    Workload("deep", "[32]x11", (32,) * 11, "relu", True, t=256, batch=256,
             epochs=300, lr=1 / (1024 * 32), data="regression"),
    Workload("b=1", "[64]x4", (64,) * 4, "relu", True, t=2048, batch=1, epochs=1,
             lr=1 / (256 * 64), data="regression"),
)
QUICK_SHAPES = _workloads(
    Workload("b=17", "[8]x4", (8,) * 4, "relu", True, t=17 * 4, batch=17, epochs=1,
             lr=1 / (256 * 8), data="regression"),
    Workload("deep", "[8]x11", (8,) * 11, "relu", True, t=32, batch=32, epochs=2,
             lr=1 / (1024 * 8), data="regression"),
    Workload("b=1", "[8]x4", (8,) * 4, "relu", True, t=8, batch=1, epochs=1,
             lr=1 / (256 * 8), data="regression"),
)


def sweep_keys(quick: bool = False) -> list[str]:
    """The keys of the sweep's widths ("w=37") and of the other untuned shapes ("b=17")."""
    widths = QUICK_SWEEP_WIDTHS if quick else SWEEP_WIDTHS
    return [f"w={width}" for width in widths] + list(QUICK_SHAPES if quick else SHAPES)


def sweep_workloads(keys: list[str] | None = None, quick: bool = False) -> list[Workload]:
    """The sweep's workloads for ``keys`` (None: all of :func:`sweep_keys`), in that order.

    Raises
    ------
    ValueError
        For a key that is neither "w=<width>" with a positive width nor a shape's key.
    """
    shapes = QUICK_SHAPES if quick else SHAPES
    out = []
    for key in sweep_keys(quick) if keys is None else keys:
        if key in shapes:
            out.append(shapes[key])
            continue
        width = key[2:] if key.startswith("w=") else ""
        if not width.isdigit() or int(width) < 1:
            raise ValueError(f"a sweep key is 'w=<width>' or one of {', '.join(shapes)}; "
                             f"got {key!r}")
        out.append(sweep_workload(int(width), quick))
    return out


def make_data(w: Workload, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """X (t, l_0) and Y (t, l_n) of the workload, deterministic, C-contiguous, in ``dtype``."""
    if w.data == "xor":
        X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
        Y = np.array([[0], [1], [1], [0]], dtype=np.float64)
        return X.astype(dtype), Y.astype(dtype)
    rng = np.random.default_rng(sum(w.layers) + w.t)
    l_0, l_n = w.layers[0], w.layers[-1]
    X = rng.uniform(0, 1, (w.t, l_0)) if w.data == "pixels" else rng.standard_normal((w.t, l_0))
    teacher = rng.standard_normal((l_0, l_n)) / math.sqrt(l_0)
    scores = (X - X.mean(axis=0)) @ teacher
    if w.data == "regression":
        Y = np.tanh(scores)
    else:
        Y = np.eye(l_n)[np.argmax(scores, axis=1)]
    return np.ascontiguousarray(X, dtype=dtype), np.ascontiguousarray(Y, dtype=dtype)


# ---------------------------------------------------------------------- one case
@dataclass
class Case:
    """A workload in one dtype, with its data and fastprop's initial parameters."""

    workload: Workload
    dtype: str
    X: np.ndarray
    Y: np.ndarray
    W: list[np.ndarray]  # W_i, (l_{i+1}, l_i)
    b: list[np.ndarray]  # b_i, (l_{i+1},); [] without bias

    @property
    def n(self) -> int:
        return len(self.W)

    def minibatches(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(X_k, Y_k) views of the batches of one epoch, in order."""
        size = self.workload.batch
        return [(self.X[s:s + size], self.Y[s:s + size]) for s in range(0, len(self.X), size)]


def make_case(w: Workload, dtype: str) -> Case:
    """Data and the initial parameters of ``fastprop.Network(..., seed=0)``."""
    X, Y = make_data(w, dtype)
    net = fastprop.Network(w.layers, w.activation, bias=w.bias, dtype=dtype, seed=0)
    return Case(w, dtype, X, Y, [W.copy() for W in net.weights], [b.copy() for b in net.biases])

