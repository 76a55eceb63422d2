"""The model, written out in NumPy one equation per line: fastprop's ground truth.

Nothing here is compiled or fast. Every function takes the parameters explicitly —
``W`` (a list of the n matrices W_i, each of shape (l_{i+1}, l_i)) and ``b`` (a list of the
n vectors b_i, or an empty list when there is no bias) — and works one sample at a time,
exactly as the equations read:

    z_{i+1} = W_i a_i (+ b_i),   a_i = σ(z_i) for 1 ≤ i ≤ n−1,   a_0 = x,   output z_n
    E = Σ_samples ||y − z_n||²
    δ_n = ∂E/∂z_n = −2(y − z_n)
    for i = n−1 … 0:   ∂E/∂W_i = δ_{i+1} a_iᵀ (summed over samples),   ∂E/∂b_i = δ_{i+1},
                       δ_i = (W_iᵀ δ_{i+1}) ⊙ σ'(z_i)  for i ≥ 1

The C++ core evaluates the same quantities batched (different order, same meaning) and is
tested against this module, which is itself tested against finite differences. It imports
without the compiled extension.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "softplus", "identity")
LOSSES = ("sse", "mse", "cross_entropy", "binary_cross_entropy", "poisson", "huber")
LEAKY_RELU_SLOPE = 0.01  # as torch.nn.LeakyReLU

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "sigma",
    "sigma_prime",
    "forward",
    "forward_trace",
    "loss",
    "gradient",
    "step",
    "fit",
    "init_params",
    "Optimizer",
    "per_sample_gradients",
    "per_sample_gradient_norms",
    "input_gradient",
    "input_jacobian",
    "dpsgd_gradient",
]


def sigma(name: str, z: np.ndarray) -> np.ndarray:
    """a = σ(z) elementwise, stable for every finite z (no overflow in exp)."""
    if name == "sigmoid":
        e = np.exp(-np.abs(z))  # never exp of a positive number
        return np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.where(z < 0, 0, z).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z < 0, z.dtype.type(LEAKY_RELU_SLOPE) * z, z)
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "identity":
        return z
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


def sigma_prime(name: str, z: np.ndarray) -> np.ndarray:
    """σ'(z) elementwise, exact also where it is tiny (large |z|)."""
    if name == "sigmoid":
        e = np.exp(-np.abs(z))
        return e / (1 + e) ** 2  # σ(z) σ(−z)
    if name == "tanh":
        e = np.exp(-2 * np.abs(z))
        return 4 * e / (1 + e) ** 2  # 1 − tanh²(z)
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1, z.dtype.type(LEAKY_RELU_SLOPE)).astype(z.dtype)
    if name == "softplus":
        return sigma("sigmoid", z)
    if name == "identity":
        return np.ones_like(z)
    raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {name!r}")


def _hidden_activations(activation: str | Sequence[str], n: int) -> list[str]:
    """σ_1 … σ_{n−1} as a list indexed by layer: names[i] is σ_i (names[0] unused)."""
    names = [activation] * (n - 1) if isinstance(activation, str) else list(activation)
    if len(names) != n - 1:
        raise ValueError(f"expected {n - 1} hidden activations, got {len(names)}")
    return [""] + names


def forward_trace(W, b, activation, x):
    """Every z_i and a_i of one sample x: lists indexed by layer (z[0] and a[n] are None)."""
    n = len(W)
    sig = _hidden_activations(activation, n)
    z, a = [None], [x]  # a_0 = x
    for i in range(n):
        z.append(W[i] @ a[i] + (b[i] if b else 0))  # z_{i+1} = W_i a_i (+ b_i)
        a.append(sigma(sig[i + 1], z[i + 1]) if i + 1 < n else None)  # a_i = σ(z_i)
    return z, a


def forward(W, b, activation, X):
    """z_n for every sample (row) of X: shape (t, l_n)."""
    X = np.asarray(X)
    out = np.empty((X.shape[0], W[-1].shape[0]), dtype=W[-1].dtype)
    for s, x in enumerate(X):
        z, _ = forward_trace(W, b, activation, x)
        out[s] = z[-1]
    return out


def _loss_and_delta(loss_name, z_n, y, t, huber_delta=1.0):
    """E of one sample and δ_n = ∂E/∂z_n (t: the batch size, for the mean losses)."""
    if loss_name == "sse":
        r = y - z_n
        return float(np.sum(r.astype(np.float64) ** 2)), -2 * r  # E = ||y − z_n||², δ_n = −2(y − z_n)
    if loss_name == "mse":
        r = y - z_n
        m = t * z_n.size
        return float(np.sum(r.astype(np.float64) ** 2)) / m, (-2 * r) / z_n.dtype.type(m)
    if loss_name == "cross_entropy":
        shifted = z_n - np.max(z_n)
        log_softmax = shifted - np.log(np.sum(np.exp(shifted)))
        E = -float(np.sum(y.astype(np.float64) * log_softmax)) / t
        return E, (np.exp(log_softmax) * np.sum(y) - y) / z_n.dtype.type(t)
    if loss_name == "binary_cross_entropy":
        m = t * z_n.size
        terms = np.maximum(z_n, 0) - y * z_n + np.log1p(np.exp(-np.abs(z_n)))
        return float(np.sum(terms.astype(np.float64))) / m, (sigma("sigmoid", z_n) - y) / z_n.dtype.type(m)
    if loss_name == "poisson":  # z_n = log λ: e^z − y z per element (no log y!), mean
        m = t * z_n.size
        terms = np.exp(z_n) - y * z_n
        return float(np.sum(terms.astype(np.float64))) / m, (np.exp(z_n) - y) / z_n.dtype.type(m)
    if loss_name == "huber":  # d = z − y: ½d² for |d| <= delta, delta(|d| − ½delta) beyond, mean
        m = t * z_n.size
        d = z_n - y
        a = np.abs(d.astype(np.float64))
        terms = np.where(a <= huber_delta, 0.5 * a ** 2, huber_delta * (a - 0.5 * huber_delta))
        return float(np.sum(terms)) / m, np.clip(d, -huber_delta, huber_delta) / z_n.dtype.type(m)
    raise ValueError(f"loss must be one of {', '.join(LOSSES)}; got {loss_name!r}")


def gradient(W, b, activation, X, Y, loss="sse", huber_delta=1.0):
    """(E, dE_dW, dE_db): E and its gradients, each summed over the samples (rows of X, Y)."""
    n = len(W)
    sig = _hidden_activations(activation, n)
    dE_dW = [np.zeros_like(W_i) for W_i in W]
    dE_db = [np.zeros_like(b_i) for b_i in b] if b else []
    E = 0.0
    t = len(X)
    for x, y in zip(X, Y):
        z, a = forward_trace(W, b, activation, x)
        E_s, delta_n = _loss_and_delta(loss, z[n], y, t, huber_delta)
        E += E_s
        delta = {n: delta_n}  # δ_n = ∂E/∂z_n
        for i in range(n - 1, -1, -1):
            dE_dW[i] += np.outer(delta[i + 1], a[i])  # ∂E/∂W_i = δ_{i+1} a_iᵀ
            if b:
                dE_db[i] += delta[i + 1]  # ∂E/∂b_i = δ_{i+1}
            if i >= 1:
                delta[i] = (W[i].T @ delta[i + 1]) * sigma_prime(sig[i], z[i])  # δ_i
    return E, dE_dW, dE_db


def loss(W, b, activation, X, Y, loss="sse", huber_delta=1.0):
    """E of the batch: for "sse", the sum over samples of ||y − z_n||²."""
    n = len(W)
    t = len(X)
    return sum(_loss_and_delta(loss, forward_trace(W, b, activation, x)[0][n], y, t,
                               huber_delta)[0]
               for x, y in zip(X, Y))


def _backward_one(W, b, activation, x, y, loss_name, size, w_s, huber_delta=1.0):
    """(E_s, δ, a) of one sample: its term of E and the δ_i, a_i of the backward pass (dicts
    and lists indexed by layer); the term is w_s times the unweighted one, and a mean loss
    divides by ``size`` (t, or the total weight)."""
    n = len(W)
    sig = _hidden_activations(activation, n)
    z, a = forward_trace(W, b, activation, x)
    E_s, delta_n = _loss_and_delta(loss_name, z[n], y, size, huber_delta)
    delta = {n: delta_n * delta_n.dtype.type(w_s)}  # δ_n = ∂E_s/∂z_n
    for i in range(n - 1, 0, -1):
        delta[i] = (W[i].T @ delta[i + 1]) * sigma_prime(sig[i], z[i])  # δ_i = (W_iᵀ δ_{i+1}) ⊙ σ'(z_i)
    return w_s * E_s, delta, a


def _sizes(X, sample_weight):
    """The weights w_s (all 1 without) and what a mean loss divides by (t, or Σ w_s)."""
    t = len(X)
    w = np.ones(t) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    return w, (t if sample_weight is None else float(np.sum(w)))


def per_sample_gradients(W, b, activation, X, Y, loss="sse", sample_weight=None,
                         huber_delta=1.0):
    """(t, n_params): row s is ∂E_s/∂params, E_s sample s's term of E, flattened in the
    core's layout W_0, b_0, W_1, b_1, … (each W_i row-major); the rows sum to the gradient."""
    w, size = _sizes(X, sample_weight)
    rows = []
    for s, (x, y) in enumerate(zip(X, Y)):
        _, delta, a = _backward_one(W, b, activation, x, y, loss, size, w[s], huber_delta)
        parts = []
        for i in range(len(W)):
            parts.append(np.outer(delta[i + 1], a[i]).ravel())  # ∂E_s/∂W_i = δ_{i+1} a_iᵀ
            if b:
                parts.append(delta[i + 1])  # ∂E_s/∂b_i = δ_{i+1}
        rows.append(np.concatenate(parts))
    return np.array(rows).reshape(len(X), -1)


def per_sample_gradient_norms(W, b, activation, X, Y, loss="sse", sample_weight=None,
                              huber_delta=1.0):
    """(t,): ||∂E_s/∂params||, as Σ_i ||δ_{i+1}||² (||a_i||² + 1 with bias), square-rooted."""
    w, size = _sizes(X, sample_weight)
    norms = []
    for s, (x, y) in enumerate(zip(X, Y)):
        _, delta, a = _backward_one(W, b, activation, x, y, loss, size, w[s], huber_delta)
        sq = 0.0
        for i in range(len(W)):
            d2 = float(np.sum(delta[i + 1].astype(np.float64) ** 2))
            a2 = float(np.sum(a[i].astype(np.float64) ** 2))
            sq += d2 * (a2 + (1.0 if b else 0.0))  # ||δ_{i+1} a_iᵀ||_F² = ||δ_{i+1}||² ||a_i||²
        norms.append(np.sqrt(sq))
    return np.array(norms)


def input_gradient(W, b, activation, X, Y, loss="sse", sample_weight=None,
                   huber_delta=1.0):
    """(t, l_0): ∂E/∂x_s = W_0ᵀ δ_1 of each sample."""
    w, size = _sizes(X, sample_weight)
    out = []
    for s, (x, y) in enumerate(zip(X, Y)):
        _, delta, _ = _backward_one(W, b, activation, x, y, loss, size, w[s], huber_delta)
        out.append(W[0].T @ delta[1])  # δ_0 = W_0ᵀ δ_1 (no σ' below the input)
    return np.array(out).reshape(len(X), W[0].shape[1])


def input_jacobian(W, b, activation, X):
    """(t, l_n, l_0): J[s, j] = ∂z_n[j]/∂x_s, from δ_n = e_j backpropagated to W_0ᵀ δ_1."""
    n = len(W)
    sig = _hidden_activations(activation, n)
    l_n, l_0 = W[-1].shape[0], W[0].shape[1]
    J = np.zeros((len(X), l_n, l_0), dtype=W[0].dtype)
    for s, x in enumerate(X):
        z, _ = forward_trace(W, b, activation, x)
        for j in range(l_n):
            delta = {n: np.eye(l_n, dtype=W[0].dtype)[j]}  # δ_n = e_j
            for i in range(n - 1, 0, -1):
                delta[i] = (W[i].T @ delta[i + 1]) * sigma_prime(sig[i], z[i])
            J[s, j] = W[0].T @ delta[1]
    return J


def dpsgd_gradient(per_sample, max_grad_norm, noise, batch_size):
    """Opacus's DP-SGD gradient from per-sample gradients g_s (t, n_params) of each sample's
    own loss: clip each to max_grad_norm, sum, add the noise (n_params), divide by the batch."""
    g = np.asarray(per_sample, dtype=np.float64)
    norms = np.sqrt(np.sum(g**2, axis=1))
    factor = np.minimum(max_grad_norm / (norms + 1e-6), 1.0)  # per_sample_clip_factor
    summed = np.einsum("s,sp->p", factor, g)  # Σ_s c_s g_s
    return (summed + noise) / batch_size  # (summed_grad + noise) / expected_batch_size


class Optimizer:
    """The update rules of fastprop.optim, as torch.optim writes them, on a list of arrays.

    method: "sgd" (with momentum and nesterov), "adam", "adamw" or "rprop".
    """

    def __init__(self, method="sgd", lr=0.01, weight_decay=0.0, momentum=0.0, nesterov=False,
                 betas=(0.9, 0.999), eps=1e-8, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0)):
        self.method, self.lr, self.weight_decay = method, lr, weight_decay
        self.momentum, self.nesterov = momentum, nesterov
        self.betas, self.eps, self.etas, self.step_sizes = betas, eps, etas, step_sizes
        self.steps = 0
        self.m, self.v = None, None

    def update(self, params, grads):
        """One update of every array in params (in place) from grads of the same shapes."""
        self.steps += 1
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.full_like(p, self.lr) if self.method == "rprop" else np.zeros_like(p)
                      for p in params]
        for p, g, m, v in zip(params, grads, self.m, self.v):
            getattr(self, "_" + self.method.replace("adamw", "adam"))(p, g, m, v)

    def _sgd(self, p, g, m, v):
        d = g + self.weight_decay * p
        if self.momentum:
            m[...] = d if self.steps == 1 else self.momentum * m + d  # b = μ b + d
            d = d + self.momentum * m if self.nesterov else m
        p -= p.dtype.type(self.lr) * d

    def _adam(self, p, g, m, v):
        beta1, beta2 = self.betas
        if self.method == "adamw":
            p *= p.dtype.type(1 - self.lr * self.weight_decay)  # decoupled decay
            d = g
        else:
            d = g + self.weight_decay * p  # L2
        m += (1 - beta1) * (d - m)  # m = β1 m + (1 − β1) g
        v[...] = beta2 * v + (1 - beta2) * d * d  # v = β2 v + (1 − β2) g²
        step_size = self.lr / (1 - beta1**self.steps)
        denom = np.sqrt(v) / np.sqrt(1 - beta2**self.steps) + self.eps
        p -= p.dtype.type(step_size) * (m / denom)

    def _rprop(self, p, g, m, v):
        eta_minus, eta_plus = self.etas
        d = g + self.weight_decay * p
        agreement = d * m  # same sign as the previous gradient?
        factor = np.where(agreement > 0, eta_plus, np.where(agreement < 0, eta_minus, 1))
        v[...] = np.clip(v * factor, *self.step_sizes)
        d = np.where(agreement < 0, 0, d)  # a sign change: no step, forget the gradient
        p -= np.sign(d) * v
        m[...] = d


def step(W, b, activation, X, Y, lr, loss="sse", optimizer=None):
    """One update on the batch, in place; returns E before it.

    Without optimizer, gradient descent: W_i += dW_i = −lr ∂E/∂W_i (and b_i).
    """
    E, dE_dW, dE_db = gradient(W, b, activation, X, Y, loss)
    if optimizer is not None:
        optimizer.update(W + b, dE_dW + dE_db)
        return E
    for i in range(len(W)):
        W[i] -= W[i].dtype.type(lr) * dE_dW[i]  # dW_i = −m ∂E/∂W_i
        if b:
            b[i] -= b[i].dtype.type(lr) * dE_db[i]
    return E


class SplitMix64:
    """The core's generator (cpp/runtime/random.hpp), so a seed means the same numbers here."""

    _MASK = (1 << 64) - 1

    def __init__(self, seed: int):
        self.state = seed & self._MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & self._MASK
        x = self.state
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & self._MASK
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & self._MASK
        return x ^ (x >> 31)

    def uniform(self) -> float:
        return (self.next() >> 11) * 2.0**-53

    def below(self, bound: int) -> int:
        threshold = ((1 << 64) - bound) % bound
        r = self.next()
        while r < threshold:
            r = self.next()
        return r % bound


def init_params(layers, activation="sigmoid", bias=False, dtype="float64", seed=0):
    """(W, b) as the core initialises them from ``seed`` (Glorot, or He before relu)."""
    n = len(layers) - 1
    sig = _hidden_activations(activation, n)
    rng = SplitMix64(seed)
    W, b = [], []
    for i in range(n):
        l_in, l_out = layers[i], layers[i + 1]
        following = i + 1 if i + 1 < n else n - 1  # σ after W_i (the output: σ_{n−1})
        he = following >= 1 and sig[following] in ("relu", "leaky_relu")
        r = np.sqrt(6.0 / l_in) if he else np.sqrt(6.0 / (l_in + l_out))
        values = [(2 * rng.uniform() - 1) * r for _ in range(l_out * l_in)]
        W.append(np.array(values, dtype=dtype).reshape(l_out, l_in))
        if bias:
            b.append(np.zeros(l_out, dtype=dtype))
    return W, b


def fit(W, b, activation, X, Y, epochs, lr, loss="sse", batch_size=None, shuffle=False, seed=0,
        optimizer=None):
    """``epochs`` passes of gradient descent, in place; the E of each epoch, as an array.

    batch_size None is the classic full batch. With minibatches, an epoch's E is the sum
    (for a mean loss, the row-weighted mean) of its minibatch losses, each before its update;
    shuffle permutes the samples every epoch with the core's generator and Fisher–Yates.
    """
    X, Y = np.asarray(X), np.asarray(Y)
    t = len(X)
    batch = t if batch_size is None else min(batch_size, t)
    order = list(range(t))
    rng = SplitMix64(seed)
    history = []
    for _ in range(epochs):
        if shuffle and batch < t:
            for k in range(t, 1, -1):
                j = rng.below(k)
                order[k - 1], order[j] = order[j], order[k - 1]
        E_epoch = 0.0
        for r0 in range(0, t, batch):
            rows = order[r0:r0 + batch]
            E = step(W, b, activation, X[rows], Y[rows], lr, loss, optimizer)
            E_epoch += E * len(rows) / t if loss != "sse" else E
        history.append(E_epoch)
    return np.array(history)
