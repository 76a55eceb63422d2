"""``python -m fastprop bench``: fastprop against NumPy, PyTorch, JAX, scikit-learn and FANN.

Every contender trains the same model on the same data from the same initial weights:

    z_{i+1} = W_i a_i + b_i,   a_i = σ(z_i) for 1 ≤ i ≤ n−1,   a_0 = x,   output z_n,
    E = Σ_samples ||y − z_n||²  (a sum: no ½, no mean),
    W_i −= lr·∂E/∂W_i, b_i −= lr·∂E/∂b_i  after every (mini)batch, in order, no shuffling.

The initial W_i and b_i are fastprop's (``Network(..., seed=0)``), copied into every peer.
Each run starts again from them, so every repeat does the same arithmetic and every
contender should end at the same E: the final E of each, evaluated by one float64 NumPy
forward pass on the whole data set, is compared with fastprop's (see :data:`LOSS_RTOL`).

Timing: every contender is warmed up once (JIT compilation happens there; its time is
reported as ``warmup_s``), then the repeats run round-robin across contenders, the start of
the round rotating, each after a pause of :data:`SETTLE_S` in which the previous contender's
threads go idle, and the median, min and max rate are reported. Rates are steps/s for
training and samples/s for inference; GFLOP/s use 6·batch·Σ l_i·l_{i+1} per training step
and 2·Σ l_i·l_{i+1} per inference sample, and the share of the peak uses :data:`PEAK_GFLOPS`
(doubled where fastprop's kernels use AVX-512).

The workloads, the contenders and how to run this are described in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module, metadata
from typing import Any, NamedTuple

import numpy as np

import fastprop
from fastprop import _core

__all__ = ["WORKLOADS", "QUICK_WORKLOADS", "CONTENDERS", "Workload", "main"]

# The machine's peak, not measured: 2 cores × 2 FMA pipes × 256-bit vectors × 2 flops ×
# ≈3.1 GHz ≈ 200 GFLOP/s in float32 (8 lanes) and 100 in float64 (4 lanes). Where fastprop's
# kernels use AVX-512 (512-bit vectors, on CPUs with two 512-bit FMA pipes) the peak at the
# same clock doubles: see _peak_gflops. Shares of it are of the whole machine, whatever
# --threads is.
PEAK_GFLOPS = {"float32": 200.0, "float64": 100.0}

# Two contenders "end at the same loss" when their final E differ by at most this fraction of
# fastprop's. The runs are the same arithmetic in another summation order, so they drift
# apart by rounding only, amplified over the steps. Largest drift seen in the full run of
# benchmarks/results/: float64 9e-14 (2e-8 for FANN, which clips σ'), float32 4e-6 on W1
# and 3e-5 in the width sweep; the bounds leave room for other kernels' summation orders.
LOSS_RTOL = {"float64": 1e-6, "float32": 1e-2}

DTYPES = ("float32", "float64")


# ---------------------------------------------------------------------- workloads
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

SWEEP_WIDTHS = (16, 32, 64, 128, 256, 512, 1024, 2048)
QUICK_SWEEP_WIDTHS = (8, 16, 32)
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


class Runner(NamedTuple):
    """What a contender prepared for one case.

    ``reset()`` goes back to the initial parameters (not timed); ``run()`` is the timed work
    and returns when it is done; ``result()`` gives the trained (W, b) as NumPy arrays
    shaped as in the model, or, for inference, z_n of all samples.
    """

    reset: Callable[[], None]
    run: Callable[[], None]
    result: Callable[[], Any]


class Skip(Exception):
    """A contender cannot run a case: its message says why."""


def _need(module: str) -> Any:
    """Import a peer's module, or Skip with the ImportError's message."""
    try:
        return import_module(module)
    except ImportError as error:
        raise Skip(f"{type(error).__name__}: {error}") from None


def _sse(W: Sequence[np.ndarray], b: Sequence[np.ndarray], activation: str, X: np.ndarray,
         Y: np.ndarray) -> float:
    """E = Σ ||y − z_n||² in float64, the one judge of every contender's final parameters."""
    sigma = _NUMPY_SIGMA[activation][0]
    a = np.asarray(X, np.float64)
    for i, W_i in enumerate(W):
        z = a @ np.asarray(W_i, np.float64).T                     # z_{i+1} = a_i W_iᵀ (+ b_i)
        if b:
            z += np.asarray(b[i], np.float64)
        a = sigma(z, np.empty_like(z))                            # a_n is not used
    return float(np.sum((np.asarray(Y, np.float64) - z) ** 2))


# ---------------------------------------------------------------------- fastprop
def _fastprop_train(case: Case) -> Runner:
    """``net.fit`` over the whole run: one call, all steps in C++."""
    w = case.workload
    net = fastprop.Network(w.layers, w.activation, bias=w.bias, dtype=case.dtype, seed=0)
    initial = net.params.copy()
    batch_size = None if w.full_batch else w.batch

    def reset() -> None:
        net.params = initial

    def run() -> None:
        net.fit(case.X, case.Y, epochs=w.epochs, lr=w.lr, batch_size=batch_size, shuffle=False)

    return Runner(reset, run, lambda: (net.weights, net.biases))


def _fastprop_infer(case: Case) -> Runner:
    """``net.forward`` of the whole array in one call."""
    w = case.workload
    net = fastprop.Network(w.layers, w.activation, bias=w.bias, dtype=case.dtype, seed=0)
    out: list[np.ndarray] = []

    def run() -> None:
        out[:] = [net.forward(case.X)]

    return Runner(lambda: None, run, lambda: out[0])


# ---------------------------------------------------------------------- NumPy
def _sigmoid(z: np.ndarray, out: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):  # exp(−z) = inf for z ≪ 0 gives the right 0
        np.negative(z, out=out)
        np.exp(out, out=out)
    out += 1
    return np.reciprocal(out, out=out)


def _sigmoid_prime_times(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> None:
    """delta ⊙= σ'(z) = a(1 − a), in place."""
    np.subtract(1, a, out=scratch)
    delta *= a
    delta *= scratch


def _relu_prime_times(delta: np.ndarray, a: np.ndarray, scratch: np.ndarray) -> None:
    """delta ⊙= relu'(z) = [a > 0], in place."""
    np.greater(a, 0, out=scratch)
    delta *= scratch


# σ(z, out) and delta ⊙= σ'(z) from a = σ(z), for the hidden layers.
_NUMPY_SIGMA = {
    "sigmoid": (_sigmoid, _sigmoid_prime_times),
    "relu": (lambda z, out: np.maximum(z, 0, out=out), _relu_prime_times),
}


def _numpy_forward(W: list[np.ndarray], b: list[np.ndarray], sigma: Callable, a: list,
                   z: list) -> np.ndarray:
    """z_{i+1} = a_i W_iᵀ + b_i, a_{i+1} = σ(z_{i+1}) into preallocated buffers; returns z_n.

    ``a[0]`` is the input; a[1..n−1] and z[1..n] are written.
    """
    n = len(W)
    for i in range(n):
        np.matmul(a[i], W[i].T, out=z[i + 1])
        if b:
            z[i + 1] += b[i]
        if i + 1 < n:
            sigma(z[i + 1], a[i + 1])
    return z[n]


def _numpy_buffers(layers: Sequence[int], t: int, dtype: str) -> list[np.ndarray | None]:
    """One (t, l_i) buffer per layer i ≥ 1, None at 0."""
    return [None] + [np.empty((t, size), dtype) for size in layers[1:]]


def _numpy_train(case: Case) -> Runner:
    """Batched backpropagation with NumPy matrix products into preallocated buffers."""
    w, n = case.workload, case.n
    sigma, sigma_prime_times = _NUMPY_SIGMA[w.activation]
    W = [W_i.copy() for W_i in case.W]
    b = [b_i.copy() for b_i in case.b]
    z, a, delta, scratch = (_numpy_buffers(w.layers, w.batch, case.dtype) for _ in range(4))
    dE_dW = [np.empty_like(W_i) for W_i in W]
    batches = case.minibatches()
    lr = np.asarray(w.lr, case.dtype)[()]

    def reset() -> None:
        for p, p0 in zip(W + b, case.W + case.b):
            p[...] = p0

    def step(X: np.ndarray, Y: np.ndarray) -> None:
        a[0] = X
        z_n = _numpy_forward(W, b, sigma, a, z)
        np.subtract(z_n, Y, out=delta[n])
        delta[n] *= 2                                              # δ_n = −2(y − z_n)
        for i in range(n - 1, -1, -1):
            np.matmul(delta[i + 1].T, a[i], out=dE_dW[i])          # ∂E/∂W_i = δ_{i+1}ᵀ a_i
            if i >= 1:
                np.matmul(delta[i + 1], W[i], out=delta[i])        # ∂E/∂a_i = δ_{i+1} W_i
                sigma_prime_times(delta[i], a[i], scratch[i])      # δ_i = ∂E/∂a_i ⊙ σ'(z_i)
            if b:
                b[i] -= lr * delta[i + 1].sum(axis=0)              # ∂E/∂b_i = Σ_s δ_{i+1}
            dE_dW[i] *= lr
            W[i] -= dE_dW[i]

    def run() -> None:
        for _ in range(w.epochs):
            for X, Y in batches:
                step(X, Y)

    return Runner(reset, run, lambda: (W, b))


def _numpy_infer(case: Case) -> Runner:
    """The forward pass in chunks of ``batch`` rows into one preallocated output."""
    w = case.workload
    sigma = _NUMPY_SIGMA[w.activation][0]
    z, a = (_numpy_buffers(w.layers, w.batch, case.dtype) for _ in range(2))
    out = np.empty((w.t, w.layers[-1]), case.dtype)

    def run() -> None:
        for s in range(0, w.t, w.batch):
            a[0] = case.X[s:s + w.batch]
            out[s:s + w.batch] = _numpy_forward(case.W, case.b, sigma, a, z)

    return Runner(lambda: None, run, lambda: out)


# ---------------------------------------------------------------------- PyTorch
def _torch_forward(torch: Any, W: list, b: list, activation: str, X: Any) -> Any:
    sigma = {"sigmoid": torch.sigmoid, "relu": torch.relu}[activation]
    a = X
    for i in range(len(W)):
        z = torch.nn.functional.linear(a, W[i], b[i] if b else None)  # z_{i+1} = a_i W_iᵀ + b_i
        a = sigma(z)
    return z


def _torch_train(case: Case) -> Runner:
    """Eager autograd: E = ((y − z)**2).sum(), E.backward(), p −= lr·p.grad under no_grad."""
    torch = _need("torch")
    w = case.workload
    W = [torch.tensor(W_i, requires_grad=True) for W_i in case.W]
    b = [torch.tensor(b_i, requires_grad=True) for b_i in case.b]
    params = W + b
    batches = [(torch.from_numpy(X), torch.from_numpy(Y)) for X, Y in case.minibatches()]

    def reset() -> None:
        with torch.no_grad():
            for p, p0 in zip(params, case.W + case.b):
                p.copy_(torch.from_numpy(p0))

    def run() -> None:
        for _ in range(w.epochs):
            for X, Y in batches:
                E = ((Y - _torch_forward(torch, W, b, w.activation, X)) ** 2).sum()
                E.backward()
                with torch.no_grad():
                    for p in params:
                        p.sub_(p.grad, alpha=w.lr)
                        p.grad = None

    return Runner(reset, run, lambda: ([p.detach().numpy() for p in W],
                                       [p.detach().numpy() for p in b]))


def _torch_infer(case: Case) -> Runner:
    """The forward pass under inference_mode, in chunks of ``batch`` rows."""
    torch = _need("torch")
    w = case.workload
    W = [torch.from_numpy(W_i) for W_i in case.W]
    b = [torch.from_numpy(b_i) for b_i in case.b]
    X = torch.from_numpy(case.X)
    out = torch.empty((w.t, w.layers[-1]), dtype=W[0].dtype)

    def run() -> None:
        with torch.inference_mode():
            for s in range(0, w.t, w.batch):
                out[s:s + w.batch] = _torch_forward(torch, W, b, w.activation, X[s:s + w.batch])

    return Runner(lambda: None, run, lambda: out.numpy())


# ---------------------------------------------------------------------- JAX
def _jax() -> Any:
    jax = _need("jax")
    jax.config.update("jax_enable_x64", True)  # float64 at all; float32 stays float32
    return jax


def _jax_forward(jax: Any, activation: str, params: tuple, X: Any) -> Any:
    sigma = {"sigmoid": jax.nn.sigmoid, "relu": jax.nn.relu}[activation]
    W, b = params
    a = X
    for i in range(len(W)):
        z = a @ W[i].T + b[i] if b else a @ W[i].T                # z_{i+1} = a_i W_iᵀ + b_i
        a = sigma(z)
    return z


def _jax_train(case: Case, scan: bool) -> Runner:
    """jax.grad of E; ``scan``: one jit(lax.scan) of the whole run, else a jitted step per batch."""
    jax = _jax()
    jnp, lax = jax.numpy, jax.lax
    w = case.workload
    forward = functools.partial(_jax_forward, jax, w.activation)

    def step(params: tuple, batch: tuple) -> tuple:
        X, Y = batch
        g = jax.grad(lambda p: jnp.sum((Y - forward(p, X)) ** 2))(params)
        return jax.tree.map(lambda p, dE_dp: p - w.lr * dE_dp, params, g)

    batches = case.minibatches()
    if scan:
        Xs = jnp.asarray(np.stack([X for X, _ in batches]))
        Ys = jnp.asarray(np.stack([Y for _, Y in batches]))

        @jax.jit
        def whole_run(params: tuple, Xs: Any, Ys: Any) -> tuple:  # data as arguments, not constants
            def epoch(params: tuple, _: Any) -> tuple:
                return lax.scan(lambda p, batch: (step(p, batch), None), params, (Xs, Ys))[0], None
            return lax.scan(epoch, params, None, length=w.epochs)[0]
    else:
        device_batches = [(jnp.asarray(X), jnp.asarray(Y)) for X, Y in batches]
        jit_step = jax.jit(step, donate_argnums=0)

    state: list[tuple] = []

    def reset() -> None:
        state[:] = [(list(map(jnp.asarray, case.W)), list(map(jnp.asarray, case.b)))]

    def run() -> None:
        params = state.pop()
        if scan:
            params = whole_run(params, Xs, Ys)
        else:
            for _ in range(w.epochs):
                for batch in device_batches:
                    params = jit_step(params, batch)
        state.append(jax.block_until_ready(params))

    def result() -> tuple:
        W, b = state[-1]
        return [np.asarray(W_i) for W_i in W], [np.asarray(b_i) for b_i in b]

    return Runner(reset, run, result)


def _jax_infer(case: Case, scan: bool) -> Runner:
    """A jitted forward pass per chunk; ``scan``: one jit(lax.map) over all chunks."""
    jax = _jax()
    jnp = jax.numpy
    w = case.workload
    params = (list(map(jnp.asarray, case.W)), list(map(jnp.asarray, case.b)))
    forward = jax.jit(functools.partial(_jax_forward, jax, w.activation))
    chunks = jnp.asarray(case.X.reshape(w.t // w.batch, w.batch, w.layers[0]))
    chunk_list = list(chunks)
    mapped = jax.jit(lambda p, Xs: jax.lax.map(lambda X: forward(p, X), Xs))
    out: list[Any] = []

    def run() -> None:
        if scan:
            out[:] = [jax.block_until_ready(mapped(params, chunks))]
        else:
            out[:] = jax.block_until_ready([forward(params, X) for X in chunk_list])

    return Runner(lambda: None, run,
                  lambda: np.concatenate([np.asarray(z).reshape(-1, w.layers[-1]) for z in out]))


# ---------------------------------------------------------------------- scikit-learn
_SKLEARN_ACTIVATION = {"sigmoid": "logistic", "relu": "relu"}


def _sklearn_semantics(case: Case) -> str | None:
    if not case.workload.bias:
        return "MLPRegressor always has intercepts (b_i); W1 has none"
    return None


def _sklearn_model(case: Case) -> tuple[Any, Callable[[], None]]:
    """An MLPRegressor whose SGD step equals the model's, and a reset to the initial W_i, b_i.

    sklearn's squared loss is ½·mean over the batch and its gradient (z − y)ᵀa / batch is
    ∂E/∂W / (2·batch), so learning_rate_init = 2·batch·lr gives the same update W_i −=
    lr·∂E/∂W_i. momentum=0, alpha=0 (no L2), constant rate, no shuffling, no early stop.
    """
    neural_network = _need("sklearn.neural_network")
    w = case.workload
    model = neural_network.MLPRegressor(
        hidden_layer_sizes=w.layers[1:-1], activation=_SKLEARN_ACTIVATION[w.activation],
        solver="sgd", alpha=0.0, batch_size=w.batch, learning_rate="constant",
        learning_rate_init=max(2 * w.batch * w.lr, 1e-300), momentum=0.0,
        nesterovs_momentum=False, shuffle=False, max_iter=max(w.epochs, 1), tol=0.0,
        n_iter_no_change=2**62, early_stopping=False, warm_start=True)
    # warm_start carries the count of epochs without improvement from fit to fit: the huge
    # n_iter_no_change keeps it from ever stopping a run early.
    model.partial_fit(case.X[:w.batch], case.Y[:w.batch])  # creates coefs_, intercepts_

    def reset() -> None:
        model.coefs_ = [W_i.T.copy() for W_i in case.W]  # sklearn's coefs_[i] is W_iᵀ
        model.intercepts_ = [b_i.copy() for b_i in case.b]
        model.loss_curve_ = []  # would grow by every run

    reset()
    return model, reset


def _sklearn_train(case: Case) -> Runner:
    """``MLPRegressor.fit`` with warm_start over the whole run (max_iter = epochs)."""
    model, reset = _sklearn_model(case)
    exceptions = _need("sklearn.exceptions")

    def run() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", exceptions.ConvergenceWarning)  # max_iter is meant
            model.fit(case.X, case.Y)

    return Runner(reset, run, lambda: ([c.T for c in model.coefs_], model.intercepts_))


def _sklearn_infer(case: Case) -> Runner:
    """``MLPRegressor.predict`` in chunks of ``batch`` rows."""
    model, _ = _sklearn_model(case)
    w = case.workload
    out = np.empty((w.t, w.layers[-1]), case.dtype)

    def run() -> None:
        for s in range(0, w.t, w.batch):
            out[s:s + w.batch] = model.predict(case.X[s:s + w.batch]).reshape(-1, w.layers[-1])

    return Runner(lambda: None, run, lambda: out)


# ---------------------------------------------------------------------- FANN
def _fann_semantics(case: Case) -> str | None:
    w = case.workload
    if w.activation != "sigmoid":
        return f"FANN 2.2 has no {w.activation} (FANN_LINEAR_PIECE is clipped to [0, 1])"
    if not w.bias:
        return "FANN always has a bias neuron per layer; W1 has no b_i"
    if case.dtype != "float64":
        return "fann2 is built on doublefann: float64 only"
    if w.kind != "train":
        return "fann2's run() takes one sample per call: no batched inference"
    return None


def _fann_train(case: Case) -> Runner:
    """FANN_TRAIN_BATCH, one ``train_epoch`` per minibatch, each minibatch its own data set.

    FANN's sigmoid is 1/(1+exp(−2·s·x)), so hidden steepness s = 0.5; the output is linear
    with steepness 1; ERRORFUNC_LINEAR. A batch epoch adds (lr_fann / t)·Σ(y − z)·a to the
    weights, −(lr_fann / 2t)·∂E/∂W, so lr_fann = 2·batch·lr. FANN clips a to [0.01, 0.99] in
    σ'(z) = a(1 − a): the runs agree while no hidden unit saturates.
    """
    libfann = _need("fann2.libfann")
    w = case.workload
    net = libfann.neural_net()
    net.create_standard_array(list(w.layers))
    net.set_activation_function_hidden(libfann.SIGMOID)
    net.set_activation_steepness_hidden(0.5)
    net.set_activation_function_output(libfann.LINEAR)
    net.set_activation_steepness_output(1.0)
    net.set_train_error_function(libfann.ERRORFUNC_LINEAR)
    net.set_training_algorithm(libfann.TRAIN_BATCH)
    net.set_learning_rate(2 * w.batch * w.lr)
    net.set_learning_momentum(0.0)
    # FANN numbers neurons layer by layer, each layer followed by its bias neuron.
    first = np.cumsum([0] + [size + 1 for size in w.layers])
    batches = []
    for X, Y in case.minibatches():
        data = libfann.training_data()
        data.set_train_data(X.tolist(), Y.tolist())
        batches.append(data)

    def reset() -> None:
        for i, (W_i, b_i) in enumerate(zip(case.W, case.b)):
            l_out, l_in = W_i.shape
            for r in range(l_out):
                to = int(first[i + 1] + r)
                for c in range(l_in):
                    net.set_weight(int(first[i] + c), to, float(W_i[r, c]))
                net.set_weight(int(first[i] + l_in), to, float(b_i[r]))

    def run() -> None:
        for _ in range(w.epochs):
            for data in batches:
                net.train_epoch(data)

    def result() -> tuple:
        return _fann_parameters(net, w.layers)

    return Runner(reset, run, result)


def _fann_parameters(net: Any, layers: Sequence[int]) -> tuple[list, list]:
    """W_i and b_i of a FANN network, read from its saved form (weights printed to 20 digits).

    The file lists, for every neuron of layers 1..n in order, its connections from all l_i
    neurons of the layer before and then from that layer's bias neuron.
    """
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "net.fann")
        net.save(path)
        with open(path) as file:
            line = next(line for line in file if line.startswith("connections"))
    pairs = re.findall(r"\((\d+), ([^)]+)\)", line.partition("=")[2])
    source = np.array([int(s) for s, _ in pairs])
    weight = np.array([float(v) for _, v in pairs])
    W, b, start, first = [], [], 0, 0
    for l_in, l_out in zip(layers, layers[1:]):
        count = l_out * (l_in + 1)
        assert np.array_equal(source[start:start + count],
                              np.tile(np.arange(first, first + l_in + 1), l_out))
        augmented = weight[start:start + count].reshape(l_out, l_in + 1)
        W.append(augmented[:, :-1])
        b.append(augmented[:, -1])
        start, first = start + count, first + l_in + 1
    return W, b


# ---------------------------------------------------------------------- the contenders
@dataclass(frozen=True)
class Contender:
    """A contender: how it trains and infers, and which cases have its semantics.

    ``train`` and ``infer`` take a :class:`Case` and return a :class:`Runner`, raising
    :class:`Skip` when the library is missing; ``semantics`` returns why a case cannot be
    run with the model's exact semantics, or None (it is asked before ``train``/``infer``,
    so an ``infer`` of None must be excluded there).
    """

    name: str
    package: str  # the distribution whose version is reported
    train: Callable[[Case], Runner]
    infer: Callable[[Case], Runner] | None
    semantics: Callable[[Case], str | None] = lambda case: None


CONTENDERS = {c.name: c for c in (
    Contender("fastprop", "fastprop", _fastprop_train, _fastprop_infer),
    Contender("numpy", "numpy", _numpy_train, _numpy_infer),
    Contender("torch", "torch", _torch_train, _torch_infer),
    Contender("jax-step", "jax", functools.partial(_jax_train, scan=False),
              functools.partial(_jax_infer, scan=False)),
    Contender("jax-scan", "jax", functools.partial(_jax_train, scan=True),
              functools.partial(_jax_infer, scan=True)),
    Contender("sklearn", "scikit-learn", _sklearn_train, _sklearn_infer, _sklearn_semantics),
    Contender("fann", "fann2", _fann_train, None, _fann_semantics),
)}


# ---------------------------------------------------------------------- measuring
# Seconds of rest before each timed run, so that no contender starts while the previous
# one's worker threads still busy-wait for work (OpenBLAS's spin for a while after each call,
# as do XLA's and fastprop's, briefly) and compete for the cores.
SETTLE_S = 0.2


def _time_one(runner: Runner, settle_s: float = SETTLE_S) -> float:
    runner.reset()
    gc.collect()
    time.sleep(settle_s)
    start = time.perf_counter()
    runner.run()
    return time.perf_counter() - start


def _agrees(E: float, E_fastprop: float, dtype: str) -> bool:
    """Whether a final E is fastprop's within :data:`LOSS_RTOL` (relative)."""
    return bool(math.isfinite(E) and abs(E - E_fastprop) <= LOSS_RTOL[dtype] * abs(E_fastprop))


def _final_E(case: Case, result: Any) -> float:
    if case.workload.kind == "infer":
        return float(np.sum((case.Y.astype(np.float64) - np.asarray(result, np.float64)) ** 2))
    W, b = result
    return _sse(W, b, case.workload.activation, case.X, case.Y)


def run_case(case: Case, names: Sequence[str], repeats: int,
             log: Callable[[str], None], settle_s: float = SETTLE_S) -> dict[str, Any]:
    """Warm up and time every contender on one case, repeats round-robin; one result dict."""
    w = case.workload
    initial_E = (_sse(case.W, case.b, w.activation, case.X, case.Y) if w.kind == "train"
                 else None)
    entries: dict[str, dict[str, Any]] = {}
    runners: dict[str, Runner] = {}
    for name in names:
        contender = CONTENDERS[name]
        reason = contender.semantics(case)
        if reason is not None:
            entries[name] = {"status": "semantics differ", "reason": reason}
            continue
        try:
            runner = (contender.train if w.kind == "train" else contender.infer)(case)
            log(f"  {name}: warm-up")
            entries[name] = {"status": "ok", "warmup_s": _time_one(runner, settle_s),
                             "seconds": []}
            runners[name] = runner
        except Skip as reason:
            entries[name] = {"status": "skipped", "reason": str(reason)}
        except Exception as error:  # a peer that breaks is reported, not fatal
            entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    for r in range(repeats):
        order = list(runners)
        first = r % len(order) if order else 0
        for name in order[first:] + order[:first]:  # round-robin, the first one rotating
            try:
                entries[name]["seconds"].append(_time_one(runners[name], settle_s))
            except Exception as error:
                entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
                del runners[name]
    for name, runner in runners.items():
        try:
            entries[name]["final_E"] = _final_E(case, runner.result())
        except Exception as error:
            entries[name] = {"status": "failed", "reason": f"{type(error).__name__}: {error}"}
    return {"workload": w.key, "name": w.name, "dtype": case.dtype, "kind": w.kind,
            "layers": list(w.layers), "activation": w.activation, "bias": w.bias,
            "samples": w.t, "batch": w.batch, "steps": w.steps if w.kind == "train" else None,
            "lr": w.lr, "unit": w.unit, "units_per_run": w.units_per_run,
            "flops_per_unit": w.flops_per_unit, "initial_E": initial_E,
            "contenders": _summarise(entries, w, case.dtype)}


def _summarise(entries: dict[str, dict[str, Any]], w: Workload, dtype: str) -> dict:
    """Rates, spread, GFLOP/s, share of the peak, fastprop's ratio and the loss check."""
    for entry in entries.values():
        if entry["status"] != "ok":
            continue
        rates = sorted(w.units_per_run / s for s in entry["seconds"])
        entry["rate_median"] = float(np.median(rates))
        entry["rate_min"], entry["rate_max"] = rates[0], rates[-1]
        entry["gflops"] = entry["rate_median"] * w.flops_per_unit / 1e9
        entry["peak_share"] = entry["gflops"] / _peak_gflops()[dtype]
    reference = entries.get("fastprop", {})
    for entry in entries.values():
        if entry["status"] == "ok" and reference.get("status") == "ok":
            entry["fastprop_ratio"] = reference["rate_median"] / entry["rate_median"]
            entry["loss_agrees"] = _agrees(entry["final_E"], reference["final_E"], dtype)
    return entries


def run_sweep(names: Sequence[str], repeats: int, quick: bool,
              log: Callable[[str], None]) -> list[dict[str, Any]]:
    """GFLOP/s of training [w, w, w, w] relu networks, batch 256, float32, for every width."""
    results = []
    for width in QUICK_SWEEP_WIDTHS if quick else SWEEP_WIDTHS:
        log(f"sweep: width {width}")
        results.append(run_case(make_case(sweep_workload(width, quick), "float32"), names,
                                repeats, log, 0.0 if quick else SETTLE_S))
    return results


# ---------------------------------------------------------------------- threads
def configure_threads(threads: int | None, names: Sequence[str]) -> dict[str, Any]:
    """Set every contender's thread count to ``threads`` (None: each library's default).

    Runs before any peer is imported: XLA reads XLA_FLAGS and OpenMP reads OMP_WAIT_POLICY
    once, when they load; fastprop's core reads FASTPROP_NUM_THREADS at its first parallel
    computation. Returns ``{"notes": {contender: what was done}, "blas_limit": ...}``, the
    latter a threadpoolctl limit to restore at the end, or None.
    """
    notes: dict[str, str] = {}
    blas_limit: Any = None
    if "torch" in names and "torch" not in sys.modules:
        # PyTorch's OpenMP threads busy-wait at every barrier by default; on a shared machine
        # with more runnable threads than cores that made its steps 10-30x slower here.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        notes["torch"] = f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}"
    if threads is None:
        return {"notes": {**notes, "all": "each library's default thread count"},
                "blas_limit": None}
    setter = getattr(fastprop, "set_num_threads", None)
    if setter is not None:
        setter(threads)
        notes["fastprop"] = f"fastprop.set_num_threads({threads})"
    else:
        os.environ["FASTPROP_NUM_THREADS"] = str(threads)
        notes["fastprop"] = f"FASTPROP_NUM_THREADS={threads}"
    try:
        threadpoolctl = import_module("threadpoolctl")
        blas_limit = threadpoolctl.threadpool_limits(limits=threads, user_api="blas")
        notes["numpy"] = notes["sklearn"] = f"threadpoolctl: BLAS limited to {threads}"
    except ImportError:
        notes["numpy"] = notes["sklearn"] = "threadpoolctl missing: BLAS threads not limited"
    if "torch" in names:
        try:
            import_module("torch").set_num_threads(threads)
            notes["torch"] = ", ".join(filter(None, (notes.get("torch"),
                                                     f"torch.set_num_threads({threads})")))
        except ImportError:
            pass
    if "jax" in sys.modules:
        jax_note = "jax was imported before: XLA's threads not set"
    elif threads == 1:
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_"
                                   "eigen=false intra_op_parallelism_threads=1").strip()
        jax_note = "XLA_FLAGS: Eigen pool off, 1 intra-op thread"
    else:
        jax_note = "XLA uses all cores (no flag sets another count)"
    notes["jax-step"] = notes["jax-scan"] = jax_note
    notes["fann"] = "single-threaded C"
    return {"notes": notes, "blas_limit": blas_limit}


# ---------------------------------------------------------------------- report
def _versions(names: Sequence[str]) -> dict[str, str | None]:
    versions = {}
    packages = sorted({CONTENDERS[n].package for n in names})
    for name in ("numpy", *packages, *(["jaxlib"] if "jax" in packages else [])):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _machine() -> dict[str, Any]:
    """The CPU's name and vector flags (from /proc/cpuinfo where there is one), cores, Python."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    cpu = fields.get("model name") or platform.processor()
    flags = [f for f in fields.get("flags", "").split() if f in ("avx2", "fma", "avx512f")]
    return {"cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(),
            "fastprop_kernels": _core.kernel_isa(), "python": platform.python_version(),
            "platform": platform.platform()}


def _peak_gflops() -> dict[str, float]:
    """PEAK_GFLOPS for the vector width of the kernels fastprop runs here."""
    scale = 2.0 if _core.kernel_isa() == "avx512" else 1.0
    return {dtype: scale * peak for dtype, peak in PEAK_GFLOPS.items()}


def _fmt_rate(rate: float) -> str:
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if rate >= scale:
            return f"{rate / scale:.3g}{suffix}"
    return f"{rate:.3g}"


def format_table(results: Sequence[dict[str, Any]]) -> str:
    """The results as a plain-text table, one row per workload, dtype and contender."""
    header = (f"{'workload':<16} {'dtype':<7} {'contender':<9} {'rate':>8} {'unit':<9} "
              f"{'min-max':>15} {'GFLOP/s':>8} {'peak':>6} {'fp/peer':>8} {'warm-up':>8} "
              f"{'final E':>12}  same E")
    lines = [header, "-" * len(header)]
    for res in results:
        label = f"{res['workload']} {res['name']}"[:16]
        for name, e in res["contenders"].items():
            if e["status"] != "ok":
                lines.append(f"{label:<16} {res['dtype']:<7} {name:<9} {e['status']}: "
                             f"{e['reason']}")
                continue
            ratio = "" if name == "fastprop" else f"{e.get('fastprop_ratio', math.nan):.2f}x"
            agrees = {True: "yes", False: "NO", None: "?"}[e.get("loss_agrees")]
            lines.append(
                f"{label:<16} {res['dtype']:<7} {name:<9} {_fmt_rate(e['rate_median']):>8} "
                f"{res['unit']:<9} {_fmt_rate(e['rate_min']) + '-' + _fmt_rate(e['rate_max']):>15}"
                f" {e['gflops']:>8.2f} {100 * e['peak_share']:>5.1f}% {ratio:>8} "
                f"{e['warmup_s']:>7.3f}s {e['final_E']:>12.6g}  "
                f"{'-' if name == 'fastprop' else agrees}")
    return "\n".join(lines)


def plot(report: dict[str, Any], path: str) -> None:
    """Bar chart of fastprop's ratio to each peer per workload; GFLOP/s against width."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars, sweep) = plt.subplots(1, 2, figsize=(15, 5.5))
    groups = [f"{r['workload']} {r['dtype']}" for r in report["results"]]
    peers = [n for n in report["contenders"] if n != "fastprop"]
    width = 0.8 / max(len(peers), 1)
    for k, peer in enumerate(peers):
        ratios = [r["contenders"].get(peer, {}).get("fastprop_ratio", np.nan)
                  for r in report["results"]]
        bars.bar(np.arange(len(groups)) + (k - (len(peers) - 1) / 2) * width, ratios, width,
                 label=peer)
    bars.axhline(1.0, color="black", linewidth=0.8)
    bars.set_yscale("log")
    bars.set_xticks(np.arange(len(groups)), groups, rotation=30, ha="right")
    bars.set_ylabel("fastprop rate / peer rate (>1: fastprop faster)")
    bars.set_title("fastprop against each peer (missing bar: skipped or semantics differ)")
    bars.legend(fontsize="small")
    for name in report["contenders"]:
        ok = [r for r in report["sweep"] if r["contenders"].get(name, {}).get("status") == "ok"]
        if not ok:
            continue
        width = np.array([r["layers"][0] for r in ok])
        gflops = np.array([[r["contenders"][name][key] * r["flops_per_unit"] / 1e9
                            for key in ("rate_median", "rate_min", "rate_max")] for r in ok])
        sweep.errorbar(width, gflops[:, 0], yerr=[gflops[:, 0] - gflops[:, 1],
                                                  gflops[:, 2] - gflops[:, 0]],
                       marker="o", capsize=3, label=name)
    sweep.set_xscale("log", base=2)
    sweep.set_xlabel("width w of [w, w, w, w] relu, batch 256, float32 training")
    sweep.set_ylabel(f"GFLOP/s (machine peak {_peak_gflops()['float32']:.0f})")
    sweep.set_title("Training throughput against layer width (median, bars: min-max)")
    sweep.grid(True, which="both", alpha=0.3)
    sweep.legend(fontsize="small")
    meta = report["meta"]
    fig.suptitle(f"fastprop {meta['versions'].get('fastprop')} on {meta['machine']['cpu']}, "
                 f"threads: {meta['threads'] or 'default'}, median of {meta['repeats']}",
                 fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------------- command line
def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m fastprop bench",
        description="Time fastprop against NumPy, PyTorch, JAX, scikit-learn and FANN on the "
                    "same workloads with the same semantics (see benchmarks/README.md).")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated keys, default all: " + ", ".join(
                            f"{w.key} {w.name}" for w in WORKLOADS.values()))
    parser.add_argument("--dtype", choices=("auto", *DTYPES), default="auto",
                        help="run every workload in this dtype (default: W1, W2 in both, "
                             "the others in float32)")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated, default all: " + ", ".join(CONTENDERS))
    parser.add_argument("--threads", type=int, default=None,
                        help="threads of every contender (default: each library's own)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed runs per contender, median reported (default 5)")
    parser.add_argument("--json", metavar="PATH", help="write every number to this JSON file")
    parser.add_argument("--plot", metavar="PATH",
                        help="write a PNG (needs matplotlib); runs the width sweep too")
    parser.add_argument("--sweep", action="store_true",
                        help="run the width sweep even without --plot")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, for tests: the numbers mean nothing")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    args = parser.parse_args(argv)
    table = QUICK_WORKLOADS if args.quick else WORKLOADS
    args.workloads = [k.strip().upper() for k in args.workloads.split(",") if k.strip()]
    args.contenders = [c.strip() for c in args.contenders.split(",") if c.strip()]
    unknown = [k for k in args.workloads if k not in table]
    if unknown:
        parser.error(f"unknown workloads {unknown}; choose from {', '.join(table)}")
    unknown = [c for c in args.contenders if c not in CONTENDERS]
    if unknown:
        parser.error(f"unknown contenders {unknown}; choose from {', '.join(CONTENDERS)}")
    if "fastprop" not in args.contenders:
        args.contenders.insert(0, "fastprop")  # the reference of every ratio and loss
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    args.table = table
    return args


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages, where the system has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark, print the table, write the JSON and the PNG if asked.

    Parameters
    ----------
    argv : sequence of str or None
        The arguments after ``bench`` (None: ``sys.argv[1:]``); ``--help`` lists them.

    Returns
    -------
    int
        0, or 1 when a contender's final E disagrees with fastprop's.
    """
    args = _parse(argv)
    log = (lambda message: None) if args.quiet else (
        lambda message: print(message, file=sys.stderr, flush=True))
    threads = configure_threads(args.threads, args.contenders)
    started, load_before = time.time(), _load()
    try:
        results = []
        for key in args.workloads:
            w = args.table[key]
            for dtype in (w.dtypes if args.dtype == "auto" else (args.dtype,)):
                log(f"{key} {w.name} {dtype}")
                results.append(run_case(make_case(w, dtype), args.contenders, args.repeats, log,
                                        0.0 if args.quick else SETTLE_S))
        sweep = (run_sweep(args.contenders, args.repeats, args.quick, log)
                 if args.plot or args.sweep else [])
    finally:
        if threads["blas_limit"] is not None:
            threads["blas_limit"].restore_original_limits()
    skipped = {name: e["reason"] for r in results + sweep for name, e in r["contenders"].items()
               if e["status"] == "skipped"}
    report = {
        "meta": {"command": " ".join(["python -m fastprop bench",
                                      *(sys.argv[1:] if argv is None else argv)]),
                 "date": time.strftime("%Y-%m-%d %H:%M:%S %z", time.localtime(started)),
                 "duration_s": round(time.time() - started, 1), "quick": args.quick,
                 "repeats": args.repeats, "threads": args.threads,
                 "load_average_before": load_before, "load_average_after": _load(),
                 "machine": _machine(), "versions": _versions(args.contenders),
                 "peak_gflops": _peak_gflops(), "loss_rtol": LOSS_RTOL},
        "contenders": {name: {"package": CONTENDERS[name].package,
                              "threads": threads["notes"].get(name, threads["notes"].get("all")),
                              "skipped": skipped.get(name)} for name in args.contenders},
        "results": results,
        "sweep": sweep,
    }
    print(format_table(results))
    if sweep:
        print("\nwidth sweep, [w, w, w, w] relu, batch 256, float32 training:")
        print(format_table(sweep))
    print(f"\nload average (1, 5, 15 min) before {load_before}, after {_load()}, on "
          f"{os.cpu_count()} cores; fastprop's kernels: {_core.kernel_isa()}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
            file.write("\n")
    if args.plot:
        try:
            plot(report, args.plot)
        except ImportError as error:
            print(f"no plot: {error}", file=sys.stderr)
    disagree = [f"{r['workload']} {r['dtype']} {name}" for r in results + sweep
                for name, e in r["contenders"].items() if e.get("loss_agrees") is False]
    if disagree:
        print(f"\nfinal E differs from fastprop's by more than {LOSS_RTOL}: "
              f"{', '.join(disagree)}")
    return 1 if disagree else 0


if __name__ == "__main__":
    sys.exit(main())
