"""Per-sample gradients, their norms, ∂E/∂X and ∂z_n/∂x: the core against the reference,
against torch.func, and against the batch gradient they add up to."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import fastprop
from fastprop import reference

from helpers import ACTIVATIONS, DTYPES, RTOL, assert_close, random_batch, ref_params

LOSSES = ("sse", "mse", "cross_entropy", "binary_cross_entropy", "poisson", "huber")


@st.composite
def cases(draw, max_width=24, max_matrices=4, max_t=20):
    """A random network, loss and batch size, with or without sample weights."""
    n = draw(st.integers(1, max_matrices))
    loss = draw(st.sampled_from(LOSSES))
    layers = draw(st.lists(st.integers(1, max_width), min_size=n + 1, max_size=n + 1))
    if loss == "cross_entropy":
        layers[-1] = max(layers[-1], 2)
    activation = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=n - 1, max_size=n - 1))
    bias = draw(st.booleans())
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32))
    t = draw(st.integers(1, max_t))
    weighted = draw(st.booleans())
    huber_delta = draw(st.sampled_from((1.0, 0.3, 2.5)))  # read by "huber" only
    net = fastprop.Network(layers, activation, bias=bias, dtype=dtype, seed=seed, loss=loss,
                           huber_delta=huber_delta)
    rng = np.random.default_rng(seed)
    if bias:
        for b in net.biases:
            b[...] = rng.uniform(-0.5, 0.5, b.shape)
    X, Y = random_batch(rng, net, t)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(layers[-1]), size=t).astype(dtype)
    elif loss in ("binary_cross_entropy", "poisson"):
        Y = rng.uniform(0, 1, Y.shape).astype(dtype)
    w = rng.uniform(0.1, 2.0, t).astype(dtype) if weighted else None
    return net, X, Y, w


@given(cases())
def test_per_sample_gradients_match_reference(case):
    net, X, Y, w = case
    W, b = ref_params(net)
    G = net.per_sample_gradients(X, Y, sample_weight=w)
    G_ref = reference.per_sample_gradients(W, b, net.activations, X, Y, net.loss_name, w,
                                           huber_delta=net.huber_delta)
    assert G.shape == (len(X), net.n_params) and G.dtype == net.dtype
    assert_close(G, G_ref, RTOL[net.dtype], "per-sample gradients")


@given(cases())
def test_per_sample_gradients_sum_to_the_batch_gradient(case):
    net, X, Y, w = case
    G = net.per_sample_gradients(X, Y, sample_weight=w)
    _, flat = net.loss_and_grad(X, Y, sample_weight=w)
    assert_close(G.astype(np.float64).sum(axis=0), flat, RTOL[net.dtype] * 10, "Σ_s rows")


@given(cases())
def test_per_sample_norms_match_reference_and_the_gradients(case):
    net, X, Y, w = case
    W, b = ref_params(net)
    norms = net.per_sample_gradient_norms(X, Y, sample_weight=w)
    assert norms.shape == (len(X),) and norms.dtype == net.dtype
    ref = reference.per_sample_gradient_norms(W, b, net.activations, X, Y, net.loss_name, w,
                                              huber_delta=net.huber_delta)
    assert_close(norms, ref, RTOL[net.dtype], "norms vs reference")
    G = net.per_sample_gradients(X, Y, sample_weight=w).astype(np.float64)
    assert_close(norms, np.linalg.norm(G, axis=1), RTOL[net.dtype], "norms vs ||rows||")


@given(cases())
def test_input_gradient_matches_reference(case):
    net, X, Y, w = case
    W, b = ref_params(net)
    dX = net.input_gradient(X, Y, sample_weight=w)
    ref = reference.input_gradient(W, b, net.activations, X, Y, net.loss_name, w,
                                   huber_delta=net.huber_delta)
    assert dX.shape == X.shape and dX.dtype == net.dtype
    assert_close(dX, ref, RTOL[net.dtype], "∂E/∂X")


@given(cases())
def test_input_jacobian_matches_reference(case):
    net, X, _, _ = case
    W, b = ref_params(net)
    J = net.jacobian(X, wrt="input")
    assert J.shape == (len(X), net.layers[-1], net.layers[0]) and J.dtype == net.dtype
    assert_close(J, reference.input_jacobian(W, b, net.activations, X), RTOL[net.dtype],
                 "∂z_n/∂x")


def test_reference_input_gradient_is_the_central_difference(rng):
    # The reference itself, in float64, against (E(x + h) − E(x − h)) / 2h.
    net = fastprop.Network([3, 5, 4, 2], ["tanh", "softplus"], bias=True, seed=3, loss="mse")
    W, b = ref_params(net)
    X, Y = random_batch(rng, net, 4)
    dX = reference.input_gradient(W, b, net.activations, X, Y, "mse")
    h = 1e-6
    numeric = np.zeros_like(X)
    for s in range(X.shape[0]):
        for k in range(X.shape[1]):
            Xp, Xm = X.copy(), X.copy()
            Xp[s, k] += h
            Xm[s, k] -= h
            numeric[s, k] = (reference.loss(W, b, net.activations, Xp, Y, "mse")
                             - reference.loss(W, b, net.activations, Xm, Y, "mse")) / (2 * h)
    assert np.max(np.abs(numeric)) > 1e-3
    assert_close(dX, numeric, 1e-6, "∂E/∂X vs central differences")


def test_single_sample_shapes(rng):
    net = fastprop.Network([3, 4, 2], "tanh", seed=1, bias=False, loss="sse")
    x, y = rng.standard_normal(3), rng.standard_normal(2)
    assert net.input_gradient(x, y).shape == (3,)
    assert net.jacobian(x, wrt="input").shape == (2, 3)
    assert net.per_sample_gradients(x, y).shape == (1, net.n_params)
    assert net.per_sample_gradient_norms(x, y).shape == (1,)


def test_large_batch_runs_in_chunks_with_the_same_rows(rng):
    # More rows than the workspace's chunk for this layout: the rows must not depend on it.
    # sse: a sample's term does not depend on the batch's size (a mean loss divides by it)
    net = fastprop.Network([8, 300, 300, 4], "relu", bias=True, seed=2, loss="sse")
    X, Y = random_batch(rng, net, 6000)
    norms = net.per_sample_gradient_norms(X, Y)
    assert_close(norms[-50:], net.per_sample_gradient_norms(X[-50:], Y[-50:]),
                 RTOL[net.dtype], "last rows")
    dX = net.input_gradient(X, Y)
    assert_close(dX[-50:], net.input_gradient(X[-50:], Y[-50:]), RTOL[net.dtype], "∂E/∂X")


def test_jacobian_rejects_an_unknown_wrt(rng):
    net = fastprop.Network([3, 2], seed=1, bias=False, loss="sse")
    with pytest.raises(ValueError, match="wrt must be one of params, input"):
        net.jacobian(rng.standard_normal((2, 3)), wrt="weights")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("l_0", [1, 7, 8, 15, 16, 17, 37, 64, 65, 129])
def test_per_sample_weight_blocks_are_the_exact_outer_products(rng, dtype, l_0):
    # One matrix with bias: sample s's ∂E_s/∂W_0 = δ_1 xᵀ and ∂E_s/∂b_0 = δ_1, so the W_0
    # block must be the outer product of the b_0 block and x_s, each entry one rounded product,
    # whatever the widths (rows written by whole cache lines, wrapping into the next row of
    # δ_1 xᵀ, or element by element) and wherever row s starts in G.
    for l_1 in (1, 3, 10):
        net = fastprop.Network([l_0, l_1], bias=True, dtype=dtype, seed=l_0, loss="sse")
        X, Y = random_batch(rng, net, 5)
        G = net.per_sample_gradients(X, Y)
        W_block, b_block = G[:, :l_0 * l_1], G[:, l_0 * l_1:]
        for s in range(len(X)):
            np.testing.assert_array_equal(W_block[s].reshape(l_1, l_0),
                                          np.outer(b_block[s], X[s]))


def test_per_sample_gradients_reject_mismatched_rows(rng):
    net = fastprop.Network([3, 2], seed=1, bias=False, loss="sse")
    with pytest.raises(ValueError, match="same number of rows"):
        net.per_sample_gradients(rng.standard_normal((4, 3)), rng.standard_normal((3, 2)))


# ------------------------------------------------------------------ torch.func

def _torch_model(net):
    torch = pytest.importorskip("torch")
    return torch, net.to_torch().double()


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
def test_per_sample_gradients_match_torch_func(rng, loss):
    torch = pytest.importorskip("torch")
    from torch.func import functional_call, grad, vmap

    net = fastprop.Network([5, 7, 6, 3], ["sigmoid", "tanh"], bias=True, seed=4, loss=loss)
    X, Y = random_batch(rng, net, 11)
    if loss == "cross_entropy":
        Y = rng.dirichlet(np.ones(3), size=11)
    module = net.to_torch().double()
    params = {k: v.detach() for k, v in module.named_parameters()}
    t = len(X)

    def sample_loss(p, x, y):  # sample s's term of E
        z = functional_call(module, p, (x[None],))[0]
        if loss == "sse":
            return ((y - z) ** 2).sum()
        if loss == "mse":
            return ((y - z) ** 2).mean() / t
        return -(y * torch.log_softmax(z, 0)).sum() / t

    g = vmap(grad(sample_loss), in_dims=(None, 0, 0))(params, torch.tensor(X), torch.tensor(Y))
    # The torch module's parameters in the order W_0, b_0, W_1, b_1, …: fastprop's layout.
    G_torch = torch.cat([g[k].reshape(t, -1) for k in params], dim=1).numpy()
    assert_close(net.per_sample_gradients(X, Y), G_torch, 1e-10, "vs vmap(grad)")
    assert_close(net.per_sample_gradient_norms(X, Y), np.linalg.norm(G_torch, axis=1), 1e-10,
                 "norms vs vmap(grad)")


def test_input_jacobian_and_gradient_match_torch_func(rng):
    torch = pytest.importorskip("torch")
    from torch.func import grad, jacrev, vmap

    net = fastprop.Network([4, 8, 8, 3], ["relu", "softplus"], bias=True, seed=6, loss="sse")
    X, Y = random_batch(rng, net, 9)
    module = net.to_torch().double()
    J = vmap(jacrev(lambda x: module(x[None])[0]))(torch.tensor(X)).detach().numpy()
    assert_close(net.jacobian(X, wrt="input"), J, 1e-10, "vs vmap(jacrev)")
    dX = vmap(grad(lambda x, y: ((y - module(x[None])[0]) ** 2).sum()))(
        torch.tensor(X), torch.tensor(Y)).detach().numpy()
    assert_close(net.input_gradient(X, Y), dX, 1e-10, "vs vmap(grad) wrt x")


@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy", "binary_cross_entropy",
                                  "poisson"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_loss_sums_to_the_batch_gradient_and_has_the_rows_norms(rng, loss, dtype):
    net = fastprop.Network([5, 7, 3], "softplus", bias=True, dtype=dtype, seed=9, loss=loss)
    X, _ = random_batch(rng, net, 13)
    Y = rng.uniform(0, 1, (13, 3)).astype(dtype)  # probabilities, labels and counts alike
    w = rng.uniform(0.5, 1.5, 13).astype(dtype)
    G = net.per_sample_gradients(X, Y, sample_weight=w).astype(np.float64)
    _, flat = net.loss_and_grad(X, Y, sample_weight=w)
    assert np.max(np.abs(flat)) > 0
    assert_close(G.sum(axis=0), flat, RTOL[net.dtype] * 10, "Σ_s rows")
    assert_close(net.per_sample_gradient_norms(X, Y, sample_weight=w),
                 np.linalg.norm(G, axis=1), RTOL[net.dtype], "norms")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmHWM from /proc")
def test_norms_of_a_large_batch_never_form_the_gradients():
    # 8192 samples of W2's network: the gradients would be 8192 · 8970 · 4 bytes = 280 MiB.
    code = (
        "import numpy as np, fastprop\n"
        "def peak():\n"
        "    with open('/proc/self/status') as f:\n"
        "        return next(int(l.split()[1]) for l in f if l.startswith('VmHWM:'))\n"
        "net = fastprop.Network([64, 64, 64, 10], 'sigmoid', bias=True, dtype='float32')\n"
        "rng = np.random.default_rng(0)\n"
        "X = rng.standard_normal((8192, 64), dtype=np.float32)\n"
        "Y = rng.standard_normal((8192, 10), dtype=np.float32)\n"
        "net.per_sample_gradient_norms(X[:8], Y[:8])\n"
        "before = peak()\n"
        "norms = net.per_sample_gradient_norms(X, Y)\n"
        "print((peak() - before) / 1024, norms.shape)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    added_mib = float(done.stdout.split()[0])
    assert added_mib < 32, f"the norms of 8192 samples took {added_mib:.0f} MiB"


@pytest.mark.parametrize("delta", [0.3, 2.5])
def test_huber_rows_use_the_networks_delta(rng, delta):
    # The rows sum to the batch gradient only if the per-sample pass reads huber's delta too.
    net = fastprop.Network([5, 7, 3], "softplus", seed=9, loss="huber", huber_delta=delta)
    X, _ = random_batch(rng, net, 13)
    Y = 2 * rng.standard_normal((13, 3))
    d = np.abs(net.forward(X) - Y)
    assert np.any((d > min(delta, 1)) & (d < max(delta, 1)))  # where delta 1 would differ
    G = net.per_sample_gradients(X, Y)
    _, flat = net.loss_and_grad(X, Y)
    assert_close(G.sum(axis=0), flat, RTOL[net.dtype] * 10, "Σ_s rows")
