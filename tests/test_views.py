"""params, weights and biases are zero-copy views into the one parameter buffer."""

from __future__ import annotations

import copy
import gc
import pickle

import numpy as np
import pytest

import fastprop

from helpers import DTYPES


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [False, True])
def test_weights_and_biases_share_memory_with_params(dtype, bias):
    net = fastprop.Network([3, 4, 2], bias=bias, dtype=dtype, seed=0, loss="sse")
    for W in net.weights:
        assert np.shares_memory(W, net.params)
        assert W.dtype == net.dtype and W.flags.writeable
    for b in net.biases:
        assert np.shares_memory(b, net.params)
    assert net.params.shape == (3 * 4 + 4 * 2 + (4 + 2 if bias else 0),)
    assert net.n_params == net.params.size


def test_layout_order_is_W0_b0_W1_b1():
    net = fastprop.Network([2, 3, 1], bias=True, seed=0, loss="sse")
    net.params[:] = np.arange(net.n_params)
    np.testing.assert_array_equal(net.weights[0], np.arange(6).reshape(3, 2))
    np.testing.assert_array_equal(net.biases[0], [6, 7, 8])
    np.testing.assert_array_equal(net.weights[1], [[9, 10, 11]])
    np.testing.assert_array_equal(net.biases[1], [12])


def test_writing_into_weights_changes_forward():
    net = fastprop.Network([2, 2, 1], "identity", seed=0, bias=False, loss="sse")
    net.weights[0][...] = [[1, 0], [0, 1]]
    net.weights[1][...] = [[2, 3]]
    np.testing.assert_array_equal(net.forward([5.0, 7.0]), [2 * 5 + 3 * 7])
    net.params[-1] = 0
    np.testing.assert_array_equal(net.forward([5.0, 7.0]), [10])


def test_writing_into_biases_changes_forward():
    net = fastprop.Network([1, 1], bias=True, seed=0, loss="sse")
    net.weights[0][...] = 0
    net.biases[0][...] = 4
    np.testing.assert_array_equal(net.forward([[1.0], [2.0]]), [[4], [4]])


@pytest.mark.parametrize("dtype", DTYPES)
def test_assigning_a_layer_copies_into_it(dtype):
    """``net.weights[i] = W`` writes W_i (a list of views would take the array and leave the
    network as it was); the shape is checked, the index is an int."""
    net = fastprop.Network([2, 2, 1], "identity", seed=0, bias=True, dtype=dtype)
    net.weights[0] = [[1, 0], [0, 1]]
    net.weights[-1] = np.array([[2.0, 3.0]])
    net.biases[1] = [1]
    net.biases[0] = 0.0  # a number fills the layer, as view[...] = 0.0 does
    np.testing.assert_array_equal(net.forward([5.0, 7.0]), [2 * 5 + 3 * 7 + 1])
    before = net.params.copy()
    with pytest.raises(ValueError, match=r"weights\[0\] must have shape \(2, 2\), got \(2, 3\)"):
        net.weights[0] = np.ones((2, 3))
    with pytest.raises(TypeError, match=r"weights\[i\] = array sets one layer"):
        net.weights[0:1] = [np.ones((2, 2))]
    with pytest.raises(TypeError, match=r"biases\[1\] must be an array of real numbers"):
        net.biases[1] = "1"
    with pytest.raises(IndexError):
        net.weights[2] = np.ones((1, 2))
    np.testing.assert_array_equal(net.params, before)
    assert isinstance(net.weights, list) and len(net.biases) == 2
    assert fastprop.Network([2, 1], bias=False).biases == []


def test_an_estimators_coefs_item_assignment_reaches_the_network():
    pytest.importorskip("sklearn")
    import warnings

    from fastprop.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # three epochs do not converge
        est = MLPRegressor(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit(
            rng.random((20, 3)), rng.random(20))
    est.coefs_[0] = np.ones((3, 4))  # scikit-learn's layout, W_0ᵀ
    est.intercepts_[1] = [5.0]
    np.testing.assert_array_equal(est._net.weights[0], np.ones((4, 3)))
    np.testing.assert_array_equal(est._net.biases[1], [5.0])
    with pytest.raises(ValueError, match=r"coefs_\[0\] must have shape \(3, 4\)"):
        est.coefs_[0] = np.ones((4, 3))


def test_step_updates_the_views_in_place(xor):
    net = fastprop.Network([2, 3, 1], seed=0, bias=False, loss="sse")
    W0 = net.weights[0]
    before = W0.copy()
    net.step(*xor, lr=0.1)
    assert not np.array_equal(W0, before)
    np.testing.assert_array_equal(W0, net.weights[0])


def test_view_keeps_network_alive():
    net = fastprop.Network([2, 3, 1], seed=0, bias=False, loss="sse")
    params = net.params
    expected = params.copy()
    del net
    gc.collect()
    np.testing.assert_array_equal(params, expected)


def test_params_setter_copies_values_and_checks_shape():
    net = fastprop.Network([2, 3, 1], seed=0, bias=False, loss="sse")
    net.params = np.ones(net.n_params)
    assert np.all(net.params == 1)
    with pytest.raises(ValueError, match=r"params must have shape \(9,\), got \(8,\)"):
        net.params = np.ones(8)


def test_gradient_arrays_share_one_flat_buffer(xor):
    net = fastprop.Network([2, 3, 1], bias=True, seed=0, loss="sse")
    _, dW, db = net.gradient(*xor)
    roots = set()
    for g in dW + db:
        while g.base is not None:
            g = g.base
        roots.add(id(g))
    assert len(roots) == 1
    assert [g.shape for g in dW] == [W.shape for W in net.weights]
    assert [g.shape for g in db] == [b.shape for b in net.biases]


@pytest.mark.parametrize("clone", [copy.deepcopy, lambda net: pickle.loads(pickle.dumps(net))])
def test_copies_are_equal_and_independent(clone, xor):
    net = fastprop.Network([2, 3, 1], "tanh", bias=True, dtype="float32", seed=4, loss="sse")
    twin = clone(net)
    assert repr(twin) == repr(net)
    np.testing.assert_array_equal(twin.params, net.params)
    assert not np.shares_memory(twin.params, net.params)
    twin.step(*xor, lr=0.1)
    assert not np.array_equal(twin.params, net.params)


def test_same_seed_same_network_and_init_redraws():
    a = fastprop.Network([4, 5, 3], seed=123, bias=False, loss="sse")
    b = fastprop.Network([4, 5, 3], seed=123, bias=False, loss="sse")
    np.testing.assert_array_equal(a.params, b.params)
    c = fastprop.Network([4, 5, 3], bias=False, loss="sse")
    assert isinstance(c.seed, int)
    np.testing.assert_array_equal(fastprop.Network([4, 5, 3], seed=c.seed, bias=False, loss="sse").params, c.params)
    a.init(7)
    assert a.seed == 7 and not np.array_equal(a.params, b.params)
