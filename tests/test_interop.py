"""fastprop.interop: the same z_n as torch in both directions, exact parameter copies, errors."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop
from fastprop import reference

torch = pytest.importorskip("torch")
nn = torch.nn
from fastprop.interop import from_torch, to_torch  # noqa: E402  (after the skip)

# float64: the two compute the same products in different orders; 1e-12 of the output scale
# is ~1e4 ulps, far above such rounding and far below any real difference.
# float32: the same at eps 6e-8.
TOL = {"float64": 1e-12, "float32": 1e-5}
TORCH_DTYPE = {"float64": torch.float64, "float32": torch.float32}
MODULES = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU,
           "leaky_relu": lambda: nn.LeakyReLU(0.01), "softplus": nn.Softplus,
           "identity": nn.Identity}


def torch_out(module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


def assert_same_outputs(net, module, X):
    expected = torch_out(module, X)
    actual = net.forward(X)
    scale = max(1.0, float(np.max(np.abs(expected))))
    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= TOL[net.dtype.name] * scale


def sample(dtype, t=9, l_0=3, seed=0):
    return np.random.default_rng(seed).standard_normal((t, l_0)).astype(dtype)


def torch_stack(activation, bias=True, dtype="float64", sizes=(3, 6, 5, 2)):
    torch.manual_seed(0)
    modules = []
    for i, (l_in, l_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        modules.append(nn.Linear(l_in, l_out, bias=bias, dtype=TORCH_DTYPE[dtype]))
        if i + 2 < len(sizes):
            modules.append(MODULES[activation]())
    return nn.Sequential(*modules)


# ---------------------------------------------------------------------- same outputs
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", reference.ACTIVATIONS)
def test_to_torch_computes_the_same_outputs(activation, bias, dtype):
    net = fastprop.Network([3, 6, 5, 2], activation, bias=bias, dtype=dtype, seed=1)
    if bias:
        net.params = np.random.default_rng(1).standard_normal(net.n_params)  # nonzero b_i
    module = to_torch(net)
    assert all(p.dtype == TORCH_DTYPE[dtype] for p in module.parameters())
    assert_same_outputs(net, module, sample(dtype))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", reference.ACTIVATIONS)
def test_from_torch_computes_the_same_outputs(activation, bias, dtype):
    module = torch_stack(activation, bias, dtype)
    net = from_torch(module)
    assert net.dtype == np.dtype(dtype)
    assert net.layers == (3, 6, 5, 2)
    assert net.activations == (activation, activation)
    assert net.bias == bias
    assert_same_outputs(net, module, sample(dtype))


def test_weights_are_copied_in_torch_layout():
    module = torch_stack("tanh")
    net = from_torch(module)
    linears = [m for m in module if isinstance(m, nn.Linear)]
    for W, b, linear in zip(net.weights, net.biases, linears):
        assert np.array_equal(W, linear.weight.detach().numpy())  # (out, in) = (l_{i+1}, l_i)
        assert np.array_equal(b, linear.bias.detach().numpy())


def test_round_trip_is_exact():
    net = fastprop.Network([4, 7, 3, 2], ["relu", "softplus"], bias=True, seed=3,
                           loss="cross_entropy")
    net.params = np.random.default_rng(3).standard_normal(net.n_params)
    back = from_torch(to_torch(net), loss="cross_entropy")
    assert back.layers == net.layers and back.activations == net.activations
    assert back.loss_name == "cross_entropy"
    assert np.array_equal(back.params, net.params)


def test_to_torch_does_not_share_memory():
    net = fastprop.Network([2, 3, 1], seed=0)
    module = to_torch(net)
    net.weights[0][...] = 0
    assert torch.count_nonzero(module[0].weight) > 0


def test_a_single_linear_layer_is_a_network_without_hidden_layers():
    torch.manual_seed(0)
    linear = nn.Linear(3, 2, dtype=torch.float64)
    net = from_torch(linear)
    assert net.layers == (3, 2) and net.activations == ()
    assert_same_outputs(net, linear, sample("float64"))


def test_nothing_or_identity_between_linear_layers_is_identity():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 4), nn.Identity(), nn.Linear(4, 1))
    net = from_torch(module)
    assert net.activations == ("identity", "identity")
    assert_same_outputs(net, module, sample("float32"))


def test_nested_sequentials_are_flattened():
    torch.manual_seed(0)
    module = nn.Sequential(nn.Sequential(nn.Linear(3, 4), nn.ReLU()),
                           nn.Sequential(nn.Linear(4, 5), nn.Tanh()), nn.Linear(5, 2))
    net = from_torch(module)
    assert net.activations == ("relu", "tanh")
    assert_same_outputs(net, module, sample("float32"))


def test_dtype_argument_converts_the_weights():
    module = torch_stack("sigmoid", dtype="float32")
    net = from_torch(module, dtype="float64")
    assert net.dtype == np.float64
    assert np.array_equal(net.weights[0], module[0].weight.detach().numpy().astype(np.float64))


def test_float16_weights_need_an_explicit_dtype():
    module = torch_stack("tanh").to(torch.float16)
    with pytest.raises(ValueError, match="float16.*pass dtype"):
        from_torch(module)
    assert from_torch(module, dtype="float32").dtype == np.float32


def test_softplus_differs_from_torch_only_above_its_threshold():
    # torch's Softplus returns z where z > 20; fastprop computes log(1 + e^z) exactly.
    net = fastprop.Network([1, 1, 1], "softplus", dtype="float64", seed=0)
    net.weights[0][...] = 1.0
    net.weights[1][...] = 1.0
    X = np.array([[5.0], [19.0], [21.0], [30.0]])
    difference = np.abs(net.forward(X) - torch_out(to_torch(net), X))[:, 0]
    assert np.all(difference[:2] <= 1e-12)
    assert np.all(difference[2:] <= np.log1p(np.exp(-20.0)))


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("module, error, message", [
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Dropout(), nn.Linear(3, 1)),
     TypeError, "unsupported module Dropout at position 1"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.GELU(), nn.Linear(3, 1)),
     TypeError, "unsupported module GELU at position 1"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU()),
     ValueError, "must end with a Linear layer.*ReLU at position 1"),
    (lambda: nn.Sequential(nn.Tanh(), nn.Linear(2, 1)),
     ValueError, "must start with a Linear layer.*Tanh at position 0"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Tanh(), nn.Linear(3, 1)),
     ValueError, "two activations in a row, at positions 1 and 2"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(4, 1)),
     ValueError, "Linear 1 has in_features=4, but Linear 0 has out_features=3"),
    (lambda: nn.Sequential(nn.Linear(2, 3, bias=False), nn.Tanh(), nn.Linear(3, 1)),
     ValueError, "agree on bias"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.LeakyReLU(0.2), nn.Linear(3, 1)),
     ValueError, "negative_slope=0.2"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(beta=2), nn.Linear(3, 1)),
     ValueError, "beta=2"),
    (lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(threshold=5), nn.Linear(3, 1)),
     ValueError, "threshold=5"),
    (lambda: nn.Sequential(nn.Linear(2, 3).double(), nn.Tanh(), nn.Linear(3, 1)),
     ValueError, "mix dtypes"),
    (lambda: nn.Sequential(), ValueError, "no Linear layer"),
    (lambda: nn.Conv1d(1, 1, 1), TypeError, "got Conv1d"),
    (lambda: [nn.Linear(2, 1)], TypeError, "got list"),
])
def test_unsupported_stacks_are_refused_naming_the_module(module, error, message):
    with pytest.raises(error, match=message):
        from_torch(module())


def test_to_torch_refuses_what_is_not_a_network():
    with pytest.raises(TypeError, match="fastprop.Network"):
        to_torch(nn.Linear(2, 1))
