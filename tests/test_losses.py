"""The losses: "sse", "mse", "cross_entropy" (target probabilities or integer labels) and
"binary_cross_entropy".

Checked for every loss:

- the core's gradient against central differences of ``net.loss`` (float64, every entry of
  ``net.params`` perturbed), and against ``fastprop.reference`` in both dtypes;
- the loss value, ∂E/∂z_n and ∂E/∂params against torch.nn.functional (mse_loss with
  reduction "sum" and "mean", cross_entropy with class indices, with probabilities and with
  soft targets that do not sum to one, binary_cross_entropy_with_logits);
- numerical stability: logits of ±1e4 give a finite loss and gradient in both dtypes, equal
  to the reference's;
- integer labels are the same as their one-hot probabilities, and labels out of range are
  refused with a ValueError naming the range.

∂E/∂z_n is read off a one-layer network without bias fed the identity: with X = I_t,
z_n = X W_0ᵀ = W_0ᵀ exactly, so W_0 = Zᵀ sets arbitrary logits Z and ∂E/∂W_0 = δ_nᵀ X = δ_nᵀ.
"""

from __future__ import annotations

import numpy as np
import pytest

import fastprop
from fastprop import reference

from helpers import DTYPES, RTOL, assert_close, ref_params

# (loss name, target kind): the kind says how Y is drawn (see `targets`).
CASES = [
    ("sse", "real"),
    ("mse", "real"),
    ("cross_entropy", "probabilities"),
    ("cross_entropy", "labels"),
    ("cross_entropy", "unnormalised"),
    ("binary_cross_entropy", "probabilities"),
]
CASE_IDS = ["sse", "mse", "cross_entropy-probabilities", "cross_entropy-labels",
            "cross_entropy-unnormalised", "binary_cross_entropy"]

# Central differences (E(p + h) − E(p − h)) / 2h in float64: truncation error ~h²·|E'''|
# ~1e-12 and rounding ~eps·|E|/h ~1e-10 for h = 1e-6 and |E| <= 100; 1e-6 of the largest
# gradient entry leaves a wide margin without letting a wrong formula through (a wrong
# factor or sign is an O(1) error).
FD_STEP = 1e-6
FD_RTOL = 1e-6
# torch evaluates the same float64 formulas with its own kernels and autograd: rounding only.
TORCH_RTOL = 1e-12
# ... and in float32, its own float32 rounding against ours (a few ulps of 6e-8 per term).
TORCH_RTOL_FLOAT32 = 1e-5
LOGIT_SCALE = 1e4  # far beyond exp's range in either dtype (e^88 overflows float32)


# ---------------------------------------------------------------------- helpers
def targets(rng, loss, kind, t, l_n):
    """Y for a loss: "real" standard normal; "probabilities" rows on the simplex for
    cross_entropy, soft labels in [0, 1] elementwise for binary_cross_entropy; "unnormalised"
    the same soft labels for cross_entropy (torch allows them: E = lse(z)·Σ_j y_j − y·z);
    "labels" integer classes (t,), every class present."""
    if kind == "real":
        return rng.standard_normal((t, l_n))
    if kind == "probabilities" and loss == "cross_entropy":
        return rng.dirichlet(np.ones(l_n), size=t)
    if kind in ("probabilities", "unnormalised"):  # soft targets; Σ_j y_j ≠ 1 for cross_entropy
        return rng.uniform(0, 1, (t, l_n))
    if kind == "labels":
        labels = rng.integers(0, l_n, t)
        labels[:l_n] = np.arange(l_n)
        return labels
    raise AssertionError(kind)


def one_hot(Y, l_n):
    """Integer labels as probabilities (the reference and torch's probability form take these)."""
    if Y.ndim == 1:
        return np.eye(l_n)[Y]
    return Y


def make_net(loss, dtype="float64", layers=(3, 5, 4), seed=2):
    net = fastprop.Network(list(layers), "tanh", bias=True, dtype=dtype, seed=seed, loss=loss)
    bias_rng = np.random.default_rng(seed)
    for b in net.biases:
        b[...] = bias_rng.uniform(-0.5, 0.5, b.shape)
    return net


def logits_net(Z, loss, dtype="float64"):
    """(net, X) with net.forward(X) == Z exactly and ∂E/∂Z == net.gradient(X, Y)[1][0].T."""
    t, l_n = Z.shape
    net = fastprop.Network([t, l_n], bias=False, dtype=dtype, seed=0, loss=loss)
    net.weights[0][...] = Z.T
    X = np.eye(t, dtype=dtype)
    np.testing.assert_array_equal(net.forward(X), Z.astype(dtype))
    return net, X


def torch_loss(loss, Z, Y):
    """torch.nn.functional's loss for logits Z (a tensor) and targets Y (NumPy)."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    if loss == "sse":
        return F.mse_loss(Z, torch.from_numpy(Y).to(Z.dtype), reduction="sum")
    if loss == "mse":
        return F.mse_loss(Z, torch.from_numpy(Y).to(Z.dtype))
    if loss == "cross_entropy" and Y.ndim == 1:
        return F.cross_entropy(Z, torch.from_numpy(Y).long())  # class indices
    if loss == "cross_entropy":
        return F.cross_entropy(Z, torch.from_numpy(Y).to(Z.dtype))  # class probabilities
    if loss == "binary_cross_entropy":
        return F.binary_cross_entropy_with_logits(Z, torch.from_numpy(Y).to(Z.dtype))
    raise AssertionError(loss)


def torch_model(net):
    """nn.Sequential of Linear and Tanh in float64 with the network's W_i and b_i."""
    torch = pytest.importorskip("torch")
    layers = []
    for i in range(net.n):
        linear = torch.nn.Linear(net.layers[i], net.layers[i + 1], bias=net.bias,
                                 dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(net.weights[i].astype(np.float64)))
            if net.bias:
                linear.bias.copy_(torch.from_numpy(net.biases[i].astype(np.float64)))
        layers.append(linear)
        if i + 1 < net.n:
            layers.append(torch.nn.Tanh())
    return torch.nn.Sequential(*layers)


def stiff_logits(t=6, l_n=3):
    """Logits of ±1e4 (and one moderate entry per row), so that exp over- and underflows."""
    Z = np.array([[1, -1, 0], [-1, 1, 0.5], [1, 1, -1], [-1, -1, -1], [0, 1, -1], [1, 0, 1]],
                 dtype=np.float64)[:t, :l_n]
    return LOGIT_SCALE * Z


# ---------------------------------------------------------------------- finite differences
@pytest.mark.parametrize("loss, kind", CASES, ids=CASE_IDS)
def test_gradient_matches_central_differences(rng, loss, kind):
    net = make_net(loss)
    X = rng.standard_normal((7, 3))
    Y = targets(rng, loss, kind, 7, 4)
    E, grad = net.loss_and_grad(X, Y)
    p = net.params
    numeric = np.empty_like(grad)
    for k in range(net.n_params):
        saved = p[k]
        p[k] = saved + FD_STEP
        E_plus = net.loss(X, Y)
        p[k] = saved - FD_STEP
        E_minus = net.loss(X, Y)
        p[k] = saved
        numeric[k] = (E_plus - E_minus) / (2 * FD_STEP)
    assert np.max(np.abs(grad)) > 1e-3, "the gradient is near zero: the check would be empty"
    assert_close(grad, numeric, FD_RTOL, f"∂E/∂params of {loss}")
    assert E == net.loss(X, Y)


# ---------------------------------------------------------------------- against the reference
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, kind", CASES, ids=CASE_IDS)
def test_gradient_matches_reference(rng, loss, kind, dtype):
    net = make_net(loss, dtype)
    X = rng.standard_normal((9, 3)).astype(dtype)
    Y = targets(rng, loss, kind, 9, 4)
    if Y.dtype.kind == "f":
        Y = Y.astype(dtype)
    W, b = ref_params(net)
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X,
                                               one_hot(Y, 4).astype(dtype), loss)
    rtol = RTOL[net.dtype]
    assert_close(E, E_ref, rtol, "E")
    assert_close(net.loss(X, Y), E_ref, rtol, "net.loss")
    for i in range(net.n):
        assert_close(dW[i], dW_ref[i], rtol, f"∂E/∂W_{i}")
        assert_close(db[i], db_ref[i], rtol, f"∂E/∂b_{i}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, kind", CASES, ids=CASE_IDS)
def test_stiff_logits_give_finite_loss_and_gradient(rng, loss, kind, dtype):
    Z = stiff_logits()
    Y = targets(rng, loss, kind, 6, 3)
    net, X = logits_net(Z, loss, dtype)
    E, dW, _ = net.gradient(X, Y)
    dE_dZ = dW[0].T
    assert np.isfinite(E) and np.all(np.isfinite(dE_dZ)), f"E = {E}, ∂E/∂z_n = {dE_dZ}"
    E_ref, dE_dZ_ref = reference_at_logits(Z.astype(dtype), one_hot(Y, 3).astype(dtype), loss)
    assert_close(E, E_ref, RTOL[net.dtype], "E")
    assert_close(dE_dZ, dE_dZ_ref, RTOL[net.dtype], "∂E/∂z_n")


def reference_at_logits(Z, Y, loss):
    """E and δ_n from the reference's per-sample formulas, at given logits."""
    W, b = [Z.T.copy()], []
    X = np.eye(len(Z), dtype=Z.dtype)
    E, dW, _ = reference.gradient(W, b, "identity", X, Y, loss)
    return E, dW[0].T


@pytest.mark.parametrize("label, E_expected", [(0, 0.0), (1, 2 * LOGIT_SCALE), (2, LOGIT_SCALE)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_of_stiff_logits_is_exact(dtype, label, E_expected):
    # Logits (1e4, −1e4, 0): log-softmax is (0, −2e4, −1e4) up to e^−1e4; δ_n = softmax − onehot.
    net, X = logits_net(np.array([[LOGIT_SCALE, -LOGIT_SCALE, 0.0]]), "cross_entropy", dtype)
    E, dW, _ = net.gradient(X, np.array([label]))
    delta = np.array([1.0, 0.0, 0.0]) - np.eye(3)[label]
    assert E == pytest.approx(E_expected, rel=1e-7, abs=1e-7)
    np.testing.assert_allclose(dW[0].T[0], delta, atol=1e-7)


@pytest.mark.parametrize("z, y, E_expected", [(LOGIT_SCALE, 0.0, LOGIT_SCALE), (LOGIT_SCALE, 1.0, 0.0),
                                              (-LOGIT_SCALE, 0.0, 0.0),
                                              (-LOGIT_SCALE, 1.0, LOGIT_SCALE)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_of_stiff_logits_is_exact(dtype, z, y, E_expected):
    # −y log σ(z) − (1 − y) log(1 − σ(z)): |z| where the sign is wrong, e^−|z| ≈ 0 otherwise.
    net, X = logits_net(np.array([[z]]), "binary_cross_entropy", dtype)
    E, dW, _ = net.gradient(X, np.array([[y]]))
    sigma = 1.0 if z > 0 else 0.0
    assert E == pytest.approx(E_expected, rel=1e-7, abs=1e-7)
    np.testing.assert_allclose(dW[0][0, 0], sigma - y, atol=1e-7)


# ---------------------------------------------------------------------- against torch
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stiff", [False, True], ids=["moderate-logits", "logits-1e4"])
@pytest.mark.parametrize("loss, kind", CASES, ids=CASE_IDS)
def test_loss_and_delta_n_match_torch(rng, loss, kind, stiff, dtype):
    torch = pytest.importorskip("torch")
    Z = stiff_logits() if stiff else 3 * rng.standard_normal((6, 3))
    Z = Z.astype(dtype)
    Y = targets(rng, loss, kind, 6, 3)
    if Y.dtype.kind == "f":
        Y = Y.astype(dtype)
    net, X = logits_net(Z, loss, dtype)
    E, dW, _ = net.gradient(X, Y)
    Z_t = torch.from_numpy(Z).requires_grad_()
    E_torch = torch_loss(loss, Z_t, Y)
    E_torch.backward()
    rtol = TORCH_RTOL if dtype == "float64" else TORCH_RTOL_FLOAT32
    assert_close(E, E_torch.item(), rtol, "E")
    assert_close(dW[0].T, Z_t.grad.numpy(), rtol, "∂E/∂z_n")
    assert np.max(np.abs(dW[0])) > 1e-3, "∂E/∂z_n is near zero: the check would be empty"


@pytest.mark.parametrize("loss, kind", CASES, ids=CASE_IDS)
def test_parameter_gradient_matches_torch_autograd(rng, loss, kind):
    torch = pytest.importorskip("torch")
    net = make_net(loss, layers=(3, 6, 5, 4))
    X = rng.standard_normal((10, 3))
    Y = targets(rng, loss, kind, 10, 4)
    model = torch_model(net)
    E_torch = torch_loss(loss, model(torch.from_numpy(X)), Y)
    E_torch.backward()
    grad_torch = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    E, grad = net.loss_and_grad(X, Y)
    assert_close(E, E_torch.item(), TORCH_RTOL, "E")
    assert_close(grad, grad_torch, TORCH_RTOL, "∂E/∂params")


# ---------------------------------------------------------------------- integer labels
@pytest.mark.parametrize("label_dtype", [np.int64, np.int32, np.uint8])
def test_integer_labels_equal_their_one_hot_probabilities(rng, label_dtype):
    net = make_net("cross_entropy")
    X = rng.standard_normal((8, 3))
    labels = targets(rng, "cross_entropy", "labels", 8, 4).astype(label_dtype)
    E, grad = net.loss_and_grad(X, labels)
    E_p, grad_p = net.loss_and_grad(X, np.eye(4)[labels])
    assert E == E_p
    np.testing.assert_array_equal(grad, grad_p)


def test_integer_label_of_a_single_sample(rng):
    net = make_net("cross_entropy")
    x = rng.standard_normal(3)
    assert net.loss(x, 2) == net.loss(x[np.newaxis], np.array([[0, 0, 1, 0]]))


@pytest.mark.parametrize("labels, low, high", [([0, 1, 4], 0, 4), ([-1, 2, 3], -1, 3),
                                               ([5, 5, 5], 5, 5)])
@pytest.mark.parametrize("call", ["loss", "gradient", "loss_and_grad", "step", "fit"])
def test_labels_out_of_range_refused(rng, call, labels, low, high):
    net = make_net("cross_entropy")
    X = rng.standard_normal((3, 3))
    before = net.params.copy()
    pattern = (rf"class labels must be integers in \[0, 4\) for l_n = 4 outputs, got values "
               rf"from {low} to {high}")
    with pytest.raises(ValueError, match=pattern):
        if call == "step":
            net.step(X, np.array(labels), 0.1)
        elif call == "fit":
            net.fit(X, np.array(labels), 1, 0.1)
        else:
            getattr(net, call)(X, np.array(labels))
    np.testing.assert_array_equal(net.params, before)


def test_labels_out_of_range_in_validation_data_refused(rng):
    net = make_net("cross_entropy")
    X = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match=r"class labels must be integers in \[0, 4\)"):
        net.fit(X, np.array([0, 1, 2]), 1, 0.1, validation_data=(X, np.array([0, 4, 1])))


def test_integer_labels_need_the_cross_entropy_loss(rng):
    # With "sse" integers (t,) are not labels: Y must be (t, l_n).
    net = make_net("sse")
    with pytest.raises(ValueError, match=r"Y must have shape \(t, 4\), got \(3,\)"):
        net.loss(rng.standard_normal((3, 3)), np.array([0, 1, 2]))


# ---------------------------------------------------------------------- poisson and huber
# Losses of a real (or count) target whose z_n takes any value: checked on moderate z_n
# against finite differences, the reference and torch.nn.functional (PoissonNLLLoss with
# log_input=True and full=False; HuberLoss with its delta), all with reduction "mean".
REGRESSION_CASES = [("poisson", 1.0), ("huber", 1.0), ("huber", 0.3), ("huber", 2.5)]
REGRESSION_IDS = ["poisson", "huber-1", "huber-0.3", "huber-2.5"]


def regression_targets(rng, loss, t, l_n):
    if loss == "poisson":
        return rng.poisson(2.0, (t, l_n)).astype(np.float64)
    return 2 * rng.standard_normal((t, l_n))  # both sides of huber's delta


def torch_regression_loss(loss, delta, Z, Y):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    target = torch.from_numpy(Y).to(Z.dtype)
    if loss == "poisson":
        return F.poisson_nll_loss(Z, target, log_input=True, full=False)
    return F.huber_loss(Z, target, delta=delta)


def regression_net(loss, delta, dtype="float64", layers=(3, 5, 4)):
    kwargs = {"huber_delta": delta} if loss == "huber" else {}
    net = make_net(loss, dtype, layers)
    if kwargs:
        twin = fastprop.Network(list(layers), "tanh", bias=True, dtype=dtype, seed=2, loss=loss,
                                **kwargs)
        twin.params = net.params
        net = twin
    return net


@pytest.mark.parametrize("loss, delta", REGRESSION_CASES, ids=REGRESSION_IDS)
def test_regression_loss_gradient_matches_central_differences(rng, loss, delta):
    net = regression_net(loss, delta)
    X = rng.standard_normal((7, 3))
    Y = regression_targets(rng, loss, 7, 4)
    E, grad = net.loss_and_grad(X, Y)
    p = net.params
    numeric = np.empty_like(grad)
    for k in range(net.n_params):
        saved = p[k]
        p[k] = saved + FD_STEP
        E_plus = net.loss(X, Y)
        p[k] = saved - FD_STEP
        E_minus = net.loss(X, Y)
        p[k] = saved
        numeric[k] = (E_plus - E_minus) / (2 * FD_STEP)
    assert np.max(np.abs(grad)) > 1e-3, "the gradient is near zero: the check would be empty"
    assert_close(grad, numeric, FD_RTOL, f"∂E/∂params of {loss}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, delta", REGRESSION_CASES, ids=REGRESSION_IDS)
def test_regression_loss_gradient_matches_reference(rng, loss, delta, dtype):
    net = regression_net(loss, delta, dtype)
    X = rng.standard_normal((9, 3)).astype(dtype)
    Y = regression_targets(rng, loss, 9, 4).astype(dtype)
    W, b = ref_params(net)
    E, dW, db = net.gradient(X, Y)
    E_ref, dW_ref, db_ref = reference.gradient(W, b, net.activations, X, Y, loss,
                                               huber_delta=delta)
    rtol = RTOL[net.dtype]
    assert_close(E, E_ref, rtol, "E")
    for i in range(net.n):
        assert_close(dW[i], dW_ref[i], rtol, f"∂E/∂W_{i}")
        assert_close(db[i], db_ref[i], rtol, f"∂E/∂b_{i}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss, delta", REGRESSION_CASES, ids=REGRESSION_IDS)
def test_regression_loss_and_delta_n_match_torch(rng, loss, delta, dtype):
    torch = pytest.importorskip("torch")
    Z = (rng.standard_normal((6, 3)) * (1 if loss == "poisson" else 3)).astype(dtype)
    Y = regression_targets(rng, loss, 6, 3).astype(dtype)
    t, l_n = Z.shape
    net = fastprop.Network([t, l_n], bias=False, dtype=dtype, seed=0, loss=loss,
                           huber_delta=delta)
    net.weights[0][...] = Z.T
    X = np.eye(t, dtype=dtype)
    E, dW, _ = net.gradient(X, Y)
    Z_t = torch.from_numpy(Z).requires_grad_()
    E_torch = torch_regression_loss(loss, delta, Z_t, Y)
    E_torch.backward()
    rtol = TORCH_RTOL if dtype == "float64" else TORCH_RTOL_FLOAT32
    assert_close(E, E_torch.item(), rtol, "E")
    assert_close(dW[0].T, Z_t.grad.numpy(), rtol, "∂E/∂z_n")
    assert np.max(np.abs(dW[0])) > 1e-3, "∂E/∂z_n is near zero: the check would be empty"
    if loss == "huber":  # both of its pieces were exercised
        d = np.abs(Z - Y)
        assert np.any(d < delta) and np.any(d > delta)


@pytest.mark.parametrize("loss, delta", REGRESSION_CASES, ids=REGRESSION_IDS)
def test_regression_parameter_gradient_matches_torch_autograd(rng, loss, delta):
    torch = pytest.importorskip("torch")
    net = regression_net(loss, delta, layers=(3, 6, 5, 4))
    X = rng.standard_normal((10, 3))
    Y = regression_targets(rng, loss, 10, 4)
    model = torch_model(net)
    E_torch = torch_regression_loss(loss, delta, model(torch.from_numpy(X)), Y)
    E_torch.backward()
    grad_torch = np.concatenate([p.grad.numpy().ravel() for p in model.parameters()])
    E, grad = net.loss_and_grad(X, Y)
    assert_close(E, E_torch.item(), TORCH_RTOL, "E")
    assert_close(grad, grad_torch, TORCH_RTOL, "∂E/∂params")


def test_huber_delta_is_kept_by_saving_and_pickling(tmp_path):
    import pickle

    net = fastprop.Network([2, 3, 1], "tanh", seed=0, loss="huber", huber_delta=0.25)
    X, Y = np.array([[0.0, 1.0], [2.0, -1.0]]), np.array([3.0, -2.0])
    for copy in (pickle.loads(pickle.dumps(net)), fastprop.load(net.save(tmp_path / "h"))):
        assert copy.huber_delta == 0.25 and copy.loss_name == "huber"
        assert copy.loss(X, Y) == net.loss(X, Y)
    assert "huber_delta=0.25" in repr(net)
    other = fastprop.Network([2, 3, 1], "tanh", seed=0, loss="huber")
    assert other.loss(X, Y) != net.loss(X, Y)


@pytest.mark.parametrize("delta", [0, -1.0, float("nan"), float("inf")])
def test_huber_delta_out_of_range_is_refused(delta):
    with pytest.raises(ValueError, match=r"huber_delta must be"):
        fastprop.Network([2, 1], loss="huber", huber_delta=delta)
