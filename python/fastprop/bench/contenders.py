"""The contenders of ``python -m fastprop bench``: fastprop and each peer, on the same model.

Each contender turns a :class:`~fastprop.bench.workloads.Case` into a :class:`Runner`: a reset
to the initial parameters, the timed run, and its result. Every peer does the model's
arithmetic (E summed over the batch, plain SGD, no shuffling); a peer whose library is
missing raises :class:`Skip`, and one that cannot have the model's semantics on a case says
why in its ``semantics``.
"""

from __future__ import annotations

import functools
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import import_module
from typing import Any, NamedTuple

import numpy as np

import fastprop

from .workloads import Case

__all__ = ["Contender", "CONTENDERS", "Runner", "Skip"]


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



# ---------------------------------------------------------------------- fastprop
def _fastprop_train(case: Case) -> Runner:
    """``net.fit`` over the whole run: one call, all steps in C++."""
    w = case.workload
    net = fastprop.Network(w.layers, w.activation, bias=w.bias, dtype=case.dtype, seed=0,
                           loss="sse")
    initial = net.params.copy()
    batch_size = None if w.full_batch else w.batch

    def reset() -> None:
        net.params = initial

    def run() -> None:
        net.fit(case.X, case.Y, epochs=w.epochs, lr=w.lr, optimizer="sgd", batch_size=batch_size,
                shuffle=False)

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

