"""Every documented error: the exception type and a message naming what was expected and given."""

from __future__ import annotations

import numpy as np
import pytest

import fastprop


@pytest.fixture
def net():
    return fastprop.Network([3, 4, 2], seed=0, bias=False, loss="sse")


@pytest.mark.parametrize("layers, error, message", [
    ([3], ValueError, r"at least 2 sizes .* got 1"),
    ([], ValueError, r"at least 2 sizes .* got 0"),
    ([3, 0, 2], ValueError, r"layer sizes must be >= 1, got l_1 = 0"),
    ([3, -4, 2], ValueError, r"layer sizes must be >= 1, got l_1 = -4"),
    ([3, 2.5, 2], TypeError, r"layer sizes must be integers, got l_1 = 2.5"),
    ([3, True, 2], TypeError, r"layer sizes must be integers, got l_1 = True"),
    ("3,4", TypeError, r"layers must be a sequence of ints .* got str"),
    (5, TypeError, r"layers must be a sequence of ints .* got int"),
])
def test_bad_layers(layers, error, message):
    with pytest.raises(error, match=message):
        fastprop.Network(layers, bias=False, loss="sse")


def test_layers_accepts_numpy_integers():
    assert fastprop.Network(np.array([3, 4, 2]), seed=0, bias=False, loss="sse").layers == (3, 4, 2)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"activation": "swish"}, ValueError,
     r"activation must be one of sigmoid, tanh, relu, leaky_relu, softplus, identity; got 'swish'"),
    ({"activation": ["tanh"]}, ValueError, r"n-1 = 2 names .* got 1"),
    ({"activation": ["tanh", "nope"]}, ValueError, r"activation must be one of .*got 'nope'"),
    ({"dtype": "float16"}, ValueError, r"dtype must be 'float64' or 'float32', got 'float16'"),
    ({"dtype": "banana"}, ValueError, r"dtype must be 'float64' or 'float32', got 'banana'"),
    ({"dtype": int}, ValueError, r"dtype must be 'float64' or 'float32'"),
    ({"loss": "hinge"}, ValueError, r"loss must be one of sse, mse, cross_entropy, binary_cross_entropy, poisson, huber; got 'hinge'"),
    ({"bias": "yes"}, TypeError, r"bias must be True or False, got 'yes'"),
    ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*64\), got -1"),
    ({"seed": 1.5}, TypeError, r"seed must be an int or None, got float"),
])
def test_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastprop.Network([3, 4, 4, 2], **kwargs)


@pytest.mark.parametrize("dtype", ["float32", np.float32, np.dtype("float64"), "f8"])
def test_dtype_spellings(dtype):
    assert fastprop.Network([1, 1], dtype=dtype, seed=0, bias=False, loss="sse").dtype == np.dtype(dtype)


@pytest.mark.parametrize("X, message", [
    (np.zeros((5, 4)), r"X must have shape \(t, 3\) or \(3,\), got \(5, 4\)"),
    (np.zeros(4), r"X must have shape \(t, 3\) or \(3,\), got \(4,\)"),
    (np.zeros((2, 5, 3)), r"X must have shape \(t, 3\) or \(3,\), got \(2, 5, 3\)"),
    (np.float64(1.0), r"X must have shape \(t, 3\) or \(3,\), got \(\)"),
    ([[1, 2, 3], [4, 5]], r"X must be a rectangular array of real numbers"),
])
def test_forward_bad_shapes(net, X, message):
    with pytest.raises(ValueError, match=message):
        net.forward(X)


@pytest.mark.parametrize("X, message", [
    (np.array([["a", "b", "c"]]), r"X must hold real numbers \(bool, int or float\), got dtype <U1"),
    (np.zeros((2, 3), dtype=complex), r"X must hold real numbers .* got dtype complex128"),
    (np.array([[object(), 1, 2]]), r"X must hold real numbers .* got dtype object"),
    ("abc", r"X must be an array of real numbers, got str"),
])
def test_forward_non_numeric(net, X, message):
    with pytest.raises(TypeError, match=message):
        net.forward(X)


@pytest.mark.parametrize("method", ["loss", "gradient", "step", "fit"])
@pytest.mark.parametrize("X, Y, message", [
    (np.zeros((5, 3)), np.zeros((5, 3)), r"Y must have shape \(t, 2\), got \(5, 3\)"),
    (np.zeros((5, 3)), np.zeros((4, 2)), r"same number of rows \(samples\), got 5 and 4"),
    (np.zeros((5, 3)), np.zeros((5, 2, 1)), r"Y must have shape \(t, 2\), got \(5, 2, 1\)"),
    (np.zeros((5, 4)), np.zeros((5, 2)), r"X must have shape \(t, 3\)"),
])
def test_training_calls_bad_shapes(net, method, X, Y, message):
    args = {"loss": (), "gradient": (), "step": (0.1,), "fit": (1, 0.1)}[method]
    with pytest.raises(ValueError, match=message):
        getattr(net, method)(X, Y, *args)


@pytest.mark.parametrize("layers", [[3, 1], [3, 4, 1]])
def test_cross_entropy_needs_two_outputs(layers, tmp_path):
    # softmax of one output is 1 whatever z: a loss of 0 and no gradient, ever.
    with pytest.raises(ValueError, match=r"at least 2 outputs \(l_n\) for loss "
                                         r"'cross_entropy'.*got l_n = 1"):
        fastprop.Network(layers, loss="cross_entropy")
    # nor through a file that says so
    fastprop.Network(layers, seed=0).save(tmp_path / "m.npz")
    state = dict(np.load(tmp_path / "m.npz"))
    state["loss"] = np.array("cross_entropy")
    np.savez(tmp_path / "ce.npz", **state)
    with pytest.raises(ValueError, match=r"not a valid fastprop model: .*at least 2 outputs"):
        fastprop.load(tmp_path / "ce.npz")


def test_single_output_takes_one_dimensional_y_and_checks_its_rows():
    # A 1-D Y of t targets is the column Y.reshape(-1, 1) for a single output (l_n = 1).
    net = fastprop.Network([2, 1], seed=0, bias=False, loss="sse")
    X = np.arange(8.0).reshape(4, 2)
    assert net.loss(X, np.arange(4.0)) == net.loss(X, np.arange(4.0).reshape(-1, 1))
    with pytest.raises(ValueError, match=r"X and Y must have the same number of rows \(samples\), "
                                         r"got 4 and 3"):
        net.loss(X, np.zeros(3))


@pytest.mark.parametrize("lr, error, message", [
    (0.0, ValueError, r"lr must be a finite number > 0, got 0.0"),
    (-1, ValueError, r"lr must be a finite number > 0, got -1"),
    (float("nan"), ValueError, r"lr must be a finite number > 0, got nan"),
    (float("inf"), ValueError, r"lr must be a finite number > 0, got inf"),
    ("0.1", TypeError, r"lr must be a real number, got str"),
])
def test_bad_learning_rate(net, lr, error, message):
    X, Y = np.zeros((2, 3)), np.zeros((2, 2))
    with pytest.raises(error, match=message):
        net.step(X, Y, lr)
    with pytest.raises(error, match=message):
        net.fit(X, Y, 1, lr, optimizer="sgd")


@pytest.mark.parametrize("kwargs, error, message", [
    ({"epochs": -1}, ValueError, r"epochs must be >= 0, got -1"),
    ({"epochs": 2.0}, TypeError, r"epochs must be an int, got float"),
    ({"batch_size": 0}, ValueError, r"batch_size must be >= 1, got 0"),
    ({"batch_size": -3}, ValueError, r"batch_size must be >= 1, got -3"),
    ({"batch_size": 1.5}, TypeError, r"batch_size must be an int, got float"),
    ({"epochs": 2**64}, ValueError, r"epochs must be <= 2\*\*63 - 1, got 18446744073709551616"),
    ({"batch_size": 2**64}, ValueError, r"batch_size must be <= 2\*\*63 - 1, got 1844674407370955"),
    ({"patience": 2**63}, ValueError, r"patience must be <= 2\*\*63 - 1, got 9223372036854775808"),
    ({"shuffle": 1}, TypeError, r"shuffle must be True or False, got 1"),
    ({"callback": 3}, TypeError, r"callback must be callable or None, got int"),
])
def test_bad_fit_options(net, kwargs, error, message):
    options = {"epochs": 1, "lr": 0.1, **kwargs}
    with pytest.raises(error, match=message):
        net.fit(np.zeros((2, 3)), np.zeros((2, 2)), **options)


def test_the_mistakes_of_a_newcomer_from_pytorch_are_named(net):
    """A learning rate in epochs' place, an optimiser class where an object goes, one network
    where fit_many takes a list: each message says what to write instead."""
    X, Y = np.zeros((2, 3)), np.zeros((2, 2))
    with pytest.raises(TypeError, match=r"epochs must be an int, got float 0\.01 .*write "
                                        r"lr=0\.01\)"):
        net.fit(X, Y, 0.01)
    with pytest.raises(TypeError, match=r"got float32 .*write lr=0\.1\)"):
        net.fit(X, Y, np.float32(0.1))
    with pytest.raises(TypeError, match=r"epochs must be an int, got float -0\.5$"):
        net.fit(X, Y, -0.5)
    with pytest.raises(TypeError, match=r"optimizer='adam'"):
        net.step(X, Y, optimizer=fastprop.optim.Adam)
    with pytest.raises(TypeError, match=r"base class Optimizer: .*optimizer=Adam\(\)"):
        net.fit(X, Y, 1, optimizer=fastprop.optim.Optimizer)
    with pytest.raises(TypeError, match=r"got the class Adam: make one, "
                                        r"optimizer=Adam\(\.\.\.\), or give its name, "
                                        r"optimizer='adam'"):
        net.fit(X, Y, 1, optimizer=fastprop.optim.Adam)
    with pytest.raises(TypeError, match=r"optimizer='lm'"):
        net.fit(X, Y, 1, optimizer=fastprop.optim.LevenbergMarquardt)
    with pytest.raises(TypeError, match=r"got one Network: give \[net\]"):
        fastprop.fit_many(net, X, Y, 1)


def test_fit_refuses_an_empty_batch(net):
    with pytest.raises(ValueError, match=r"fit needs at least one sample, got X with 0 rows"):
        net.fit(np.zeros((0, 3)), np.zeros((0, 2)), 1, 0.1, optimizer="sgd")


def test_empty_batch_is_a_sum_over_nothing(net):
    X, Y = np.zeros((0, 3)), np.zeros((0, 2))
    assert net.forward(X).shape == (0, 2)
    assert net.loss(X, Y) == 0.0
    E, dW, _ = net.gradient(X, Y)
    assert E == 0.0 and all(np.all(g == 0) for g in dW)


def test_nan_stops_fit_at_the_last_finite_state(net):
    X = np.ones((4, 3))
    Y = np.ones((4, 2))
    Y[2, 1] = np.nan
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"NaN or infinite in epoch 0"):
        net.fit(X, Y, 10, 0.1, optimizer="sgd")
    np.testing.assert_array_equal(net.params, before)
    assert len(net.history) == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layers, t, batch_size", [
    ([300, 77, 130, 9], 90, None),  # blocked products, several k slices
    ([64, 64, 64, 10], 256, 128),   # minibatches run as two halves
    ([3, 4, 2], 5, None),           # plain loops
])
def test_nan_gradient_with_a_finite_loss_stops_fit(dtype, layers, t, batch_size, rng):
    # An infinite input into saturated tanh units: z and E stay finite, but dE/dW_0 = δ_1ᵀ x
    # meets 0 · inf = NaN. fit must stop before the update.
    net = fastprop.Network(layers, "tanh", bias=True, dtype=dtype, seed=1, loss="sse")
    X = rng.standard_normal((t, layers[0])).astype(dtype)
    Y = rng.standard_normal((t, layers[-1])).astype(dtype)
    X[1, 2] = np.inf
    E, dW, db = net.gradient(X, Y)
    assert np.isfinite(E) and not np.all(np.isfinite(dW[0]))
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"NaN or infinite in epoch 0"):
        net.fit(X, Y, 3, 1e-3, batch_size=batch_size, shuffle=False, optimizer="sgd")
    np.testing.assert_array_equal(net.params, before)


# The largest learning rate each dtype takes: lr·∂E/∂W overflows at the first update.
HUGE_LR = {"float32": 1e38, "float64": 1e308}
OPTIMIZERS = {
    "sgd": lambda lr: fastprop.optim.SGD(lr=lr),
    "sgd+decay": lambda lr: fastprop.optim.SGD(lr=lr, weight_decay=0.5),
    "momentum": lambda lr: fastprop.optim.SGD(lr=lr, momentum=0.9),
    "nesterov": lambda lr: fastprop.optim.SGD(lr=lr, momentum=0.9, nesterov=True),
    "adam": lambda lr: fastprop.optim.Adam(lr=lr),
    "adamw": lambda lr: fastprop.optim.AdamW(lr=lr),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("optimizer", list(OPTIMIZERS))
@pytest.mark.parametrize("batch_size", [None, 2])
def test_an_update_that_overflows_is_not_made(dtype, optimizer, batch_size, rng):
    # The loss and the gradient are finite; the update to p − lr·g is not. fit stops before
    # it, the parameters and the optimiser's state as they were.
    net = fastprop.Network([3, 4, 2], "tanh", bias=True, dtype=dtype, seed=0)
    X = rng.standard_normal((4, 3)).astype(dtype)
    Y = np.full((4, 2), 1e3, dtype)
    E, g = net.loss_and_grad(X, Y)
    assert np.isfinite(E) and np.all(np.isfinite(g))
    opt = OPTIMIZERS[optimizer](HUGE_LR[dtype])
    before = net.params.copy()
    with pytest.raises(FloatingPointError, match=r"NaN or infinite in epoch 0"):
        net.fit(X, Y, 1, optimizer=opt, batch_size=batch_size, shuffle=False)
    np.testing.assert_array_equal(net.params, before)
    assert opt.steps == 0 and len(net.history) == 0
    for name, buffer in opt.state.items():
        np.testing.assert_array_equal(buffer, 0, err_msg=f"the optimiser's {name} moved")
    # step() keeps the same promise.
    with pytest.raises(FloatingPointError, match=r"parameters are left as they were"):
        net.step(X, Y, optimizer=opt)
    np.testing.assert_array_equal(net.params, before)
    assert opt.steps == 0


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_fit_diverging_by_overflow_ends_at_its_last_finite_update(dtype, rng):
    # Full batch, one update per epoch, each state recorded by the callback: growing steps
    # overflow after some epochs, and the network must end at the last recorded state.
    net = fastprop.Network([3, 8, 2], "identity", bias=False, dtype=dtype, seed=0, loss="sse")
    X = (rng.standard_normal((50, 3)) * 10).astype(dtype)
    Y = rng.standard_normal((50, 2)).astype(dtype)
    states = [net.params.copy()]
    with pytest.raises(FloatingPointError, match=r"in epoch \d+"):
        net.fit(X, Y, 10_000, 1.0, optimizer="sgd",
                callback=lambda epoch, logs: states.append(net.params.copy()))
    assert len(states) >= 2  # at least one update was made before the stop
    np.testing.assert_array_equal(net.params, states[-1])
    assert len(net.history) == len(states) - 1


def test_step_with_a_nan_target_changes_nothing(net):
    Y = np.ones((4, 2))
    Y[1, 0] = np.nan
    before = net.params.copy()
    with pytest.raises(FloatingPointError):
        net.step(np.ones((4, 3)), Y, lr=0.1)
    np.testing.assert_array_equal(net.params, before)


def test_divergence_stops_fit_naming_the_epoch(rng):
    net = fastprop.Network([3, 8, 2], "identity", seed=0, bias=False, loss="sse")
    X = rng.standard_normal((50, 3)) * 10
    Y = rng.standard_normal((50, 2))
    with pytest.raises(FloatingPointError, match=r"in epoch \d+") as info:
        net.fit(X, Y, 10_000, 1.0, optimizer="sgd")
    assert np.all(np.isfinite(net.params))
    assert f"epoch {len(net.history)}" in str(info.value)
    assert np.all(np.isfinite(net.history))


def test_nan_input_propagates_without_error(net):
    X = np.array([[np.nan, 0, 0], [1, 2, 3]])
    z = net.forward(X)
    assert np.all(np.isnan(z[0])) and np.all(np.isfinite(z[1]))
    E, dW, _ = net.gradient(X, np.zeros((2, 2)))
    assert np.isnan(E)


@pytest.mark.parametrize("make", [
    lambda X: np.asfortranarray(X),
    lambda X: X[::-1],
    lambda X: np.repeat(X, 2, axis=1)[:, ::2],
    lambda X: X.astype(">f8"),
    lambda X: X.astype(np.float32),
    lambda X: (X * 10).astype(np.int64),
    lambda X: X > 0,
    lambda X: X.tolist(),
])
def test_any_memory_layout_and_real_dtype_gives_the_right_answer(net, rng, make):
    X = rng.standard_normal((6, 3))
    Xm = make(X)
    expected = net.forward(np.array(np.asarray(Xm), dtype=np.float64))
    np.testing.assert_array_equal(net.forward(Xm), expected)


def test_read_only_input(net, rng):
    X = rng.standard_normal((4, 3))
    X.setflags(write=False)
    np.testing.assert_array_equal(net.forward(X), net.forward(X.copy()))


def test_callback_exception_propagates_and_keeps_history(net):
    def callback(epoch, logs):
        if epoch == 2:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        net.fit(np.ones((2, 3)), np.ones((2, 2)), 10, 0.1, callback=callback, optimizer="sgd")
    assert len(net.history) == 3


def test_callback_returning_false_stops(net):
    seen = []
    history = net.fit(np.ones((2, 3)), np.ones((2, 2)), 10, 0.1,
                      callback=lambda epoch, logs: seen.append(logs["loss"]) or epoch < 3, optimizer="sgd")
    assert len(history) == 4 and list(history) == seen


def test_network_too_large_for_memory_is_refused_before_allocating():
    with pytest.raises(MemoryError, match=r"need 20,000,000,000 parameters: .* GiB .* available"):
        fastprop.Network([100_000, 100_000, 100_000], bias=False, loss="sse")


def test_parameter_count_beyond_64_bits_is_refused():
    with pytest.raises(ValueError, match=r"more than a 64-bit size can count"):
        fastprop.Network([2**40, 2**40, 2], bias=False, loss="sse")


# ---------------------------------------------------------------------- one check per kind
def _message_of(call, value):
    with pytest.raises((TypeError, ValueError)) as info:
        call(value)
    return type(info.value), str(info.value)


def _fit(**options):
    net = fastprop.Network([3, 4, 2], seed=0, bias=False, loss="sse")
    return net.fit(np.zeros((2, 3)), np.zeros((2, 2)), **{"epochs": 1, "lr": 0.1, **options})


# Arguments of one kind, from different modules: each group must be checked by one function,
# so that a bad value gets the same message whatever the argument (its name aside).
SAME_KIND = {
    "flag": [("bias", lambda v: fastprop.Network([2, 1], bias=v, loss="sse")),
             ("nesterov", lambda v: fastprop.optim.SGD(momentum=0.9, nesterov=v)),
             ("shuffle", lambda v: _fit(shuffle=v))],
    "real >= 0": [("min_delta", lambda v: _fit(min_delta=v)),
                  ("weight_decay", lambda v: fastprop.optim.SGD(weight_decay=v)),
                  ("eps", lambda v: fastprop.optim.Adam(eps=v))],
    "real > 0": [("lr", lambda v: _fit(lr=v)),
                 ("lr", lambda v: fastprop.optim.Rprop(lr=v)),
                 ("mu", lambda v: fastprop.optim.LevenbergMarquardt(mu=v))],
    "count >= 1": [("k", fastprop.set_num_threads),
                   ("batch_size", lambda v: _fit(batch_size=v))],
    "name": [("loss", lambda v: fastprop.Network([2, 1], loss=v, bias=False)),
             ("activation", lambda v: fastprop.Network([2, 2, 1], v, bias=False, loss="sse"))],
}
BAD_VALUES = {"flag": ["yes", 1, None], "real >= 0": [-1, -0.5, float("nan"), "0.1", True],
              "real > 0": [0, -1.5, float("inf"), "1", False], "count >= 1": [0, -2, 1.5, "2"],
              "name": ["nope", ""]}


@pytest.mark.parametrize("kind", list(SAME_KIND))
def test_one_kind_of_input_gets_one_message(kind):
    for value in BAD_VALUES[kind]:
        seen = {}
        for name, call in SAME_KIND[kind]:
            error, text = _message_of(call, value)
            assert text.startswith(f"{name} must "), text
            seen[name] = (error, text[len(name):])
        different = set(seen.values())
        if kind == "name":  # the lists of valid names differ; the form does not
            different = {(error, text.split(";")[-1]) for error, text in different}
        assert len(different) == 1, f"{kind}, {value!r}: {seen}"
