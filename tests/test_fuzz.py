"""Property-based fuzzing of the NumPy boundary: shapes, dtypes, memory layouts and values.

Hypothesis draws networks (1–3 weight matrices of widths 1–5, every activation, bias on/off,
float32/float64, the losses sse, mse and binary_cross_entropy) and inputs of every real dtype
(bool, int8, int64, uint8, float16, float32, float64, big-endian >f8), in every memory layout
(C, Fortran, strided slices, negative strides, read-only, unaligned, nested lists), with
values of magnitudes from 1e-310 (subnormal) to 1e300 and NaN/±inf injected. What is proven:

* valid inputs: ``forward``, ``gradient`` (E, dW, db) and a 3-epoch ``fit`` agree with
  ``fastprop.reference`` run on the same inputs converted to the network's dtype
  (``np.asarray(A).astype(dtype)``), within helpers' RTOL (plus SUBNORMAL_ATOL for results
  that are themselves subnormal); non-finite results agree exactly as IEEE 754 has them: NaN
  where the reference has NaN, the same infinity where it has one, and no exception;
* invalid inputs (wrong rank, wrong width, mismatched rows, complex/object/str dtypes, ragged
  lists) raise TypeError or ValueError whose message names the parameter (X or Y) — never
  anything else, never a crash;
* ``fit`` on data with NaN or ±inf raises FloatingPointError naming the epoch the loss became
  non-finite, with ``history`` holding exactly the epochs before it and, when that is epoch
  0, the parameters untouched. (That the parameters are also finite after a later epoch is
  the separate test ``test_fit_stopped_by_inf_input_leaves_finite_parameters``.) With
  binary cross-entropy, fit refuses a target of ±inf with ValueError instead, before any
  update: it trains on targets in [0, 1] only.

Magnitudes are chosen clear of the overflow threshold (no intermediate within a few decades
of the largest float), where the batched core and the per-sample reference could legitimately
disagree about which sum overflows first. The number of examples run is printed at the end of
the module (``pytest -s``); the hypothesis profile (conftest.py) decides the count
(derandomized in CI).
"""

from __future__ import annotations

import collections
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import fastprop
from fastprop import reference

from helpers import ACTIVATIONS, RTOL, ref_params

# Each property runs this many times the profile's max_examples: the input space here is far
# larger than that of the other property tests (7 dimensions of choice per array).
EXAMPLES_FACTOR = 5
EXAMPLES = settings().max_examples * EXAMPLES_FACTOR
# Sums and products that land in the subnormal range round to a multiple of the smallest
# subnormal, in a different order in the core and the reference: a few thousand of those.
SUBNORMAL_ATOL = {np.dtype(np.float64): 2**12 * np.finfo(np.float64).smallest_subnormal,
                  np.dtype(np.float32): 2**12 * np.finfo(np.float32).smallest_subnormal}

INPUT_DTYPES = ["bool", "int8", "int64", "uint8", "float16", "float32", "float64", ">f8"]
LAYOUTS = ["C", "F", "strided", "negative_strides", "read_only", "unaligned", "list"]
LOSSES = ["sse", "mse", "binary_cross_entropy"]
# Powers of ten for the values of one array. A network's largest gain per layer is below 15
# (widths <= 5, Glorot/He ranges <= 2.45), so through 3 layers and t <= 8 rows a magnitude
# grows by < 1e5: 1e300 overflows only in products of two such values (~1e600), far from
# 1.8e308; 1e30 never does in float64. For float32 (max 3.4e38): 1e25 overflows only in
# products (~1e50), 1e4 never; 1e300 becomes inf on conversion.
SCALES = {np.dtype(np.float64): [-310, -300, -30, -8, 0, 0, 0, 3, 30, 300],
          np.dtype(np.float32): [-42, -40, -30, -8, 0, 0, 0, 4, 25, 300]}
SPECIALS = [np.nan, np.inf, -np.inf]

COUNTS: collections.Counter = collections.Counter()


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    total = sum(COUNTS.values())
    print(f"\nfuzz examples run: {total} ({', '.join(f'{k} {v}' for k, v in sorted(COUNTS.items()))})")


# ---------------------------------------------------------------------- strategies
@st.composite
def networks(draw, losses=LOSSES):
    layers = draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))
    n = len(layers) - 1
    activation = draw(st.lists(st.sampled_from(ACTIVATIONS), min_size=n - 1, max_size=n - 1))
    return fastprop.Network(layers, activation if n > 1 else "sigmoid",
                            bias=draw(st.booleans()),
                            dtype=draw(st.sampled_from(["float64", "float32"])),
                            loss=draw(st.sampled_from(losses)),
                            seed=draw(st.integers(0, 2**32)))


@st.composite
def arrays(draw, shape, net_dtype, specials=True):
    """(logical array, layout): values of one dtype and magnitude, maybe with NaN/±inf."""
    dtype = np.dtype(draw(st.sampled_from(INPUT_DTYPES)))
    size = int(np.prod(shape))
    seed = draw(st.integers(0, 2**32))
    rng = np.random.default_rng(seed)
    if dtype.kind == "b":
        A = rng.integers(0, 2, size).astype(bool)
    elif dtype.kind in "iu":
        info = np.iinfo(dtype)
        A = rng.integers(info.min, int(info.max) + 1, size, dtype=dtype) \
            if draw(st.booleans()) else rng.integers(max(info.min, -3), 4, size).astype(dtype)
    else:
        scale = 10.0 ** draw(st.sampled_from(SCALES[np.dtype(net_dtype)]))
        values = rng.standard_normal(size) * scale
        if specials and size and draw(st.booleans()):
            for _ in range(draw(st.integers(1, 3))):
                values[rng.integers(size)] = draw(st.sampled_from(SPECIALS))
        with np.errstate(over="ignore"):
            A = values.astype(dtype)  # float16 turns big values into inf: data as given
    return A.reshape(shape), draw(st.sampled_from(LAYOUTS))


def in_layout(A, layout):
    """A with the same values, in the given memory layout (or as nested lists)."""
    if layout == "C":
        return np.ascontiguousarray(A)
    if layout == "F":
        return np.asfortranarray(A)
    if layout == "strided":
        big = np.zeros(tuple(2 * s + 1 for s in A.shape), dtype=A.dtype)
        view = big[tuple(slice(1, None, 2) for _ in A.shape)]
        view[...] = A
        return view
    if layout == "negative_strides":
        flipped = A[tuple(slice(None, None, -1) for _ in A.shape)].copy()
        return flipped[tuple(slice(None, None, -1) for _ in A.shape)]
    if layout == "read_only":
        out = A.copy()
        out.setflags(write=False)
        return out
    if layout == "unaligned":
        buffer = np.zeros(A.nbytes + 1, dtype=np.uint8)
        out = np.ndarray(A.shape, dtype=A.dtype, buffer=buffer, offset=1)
        out[...] = A
        return out
    if layout == "list":
        # An empty batch as nested lists is [], which carries no width: keep it an array.
        return A.tolist() if A.size else A
    raise ValueError(layout)


def converted(A, net):
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(A).astype(net.dtype)


def conversion_overflows(A, net):
    """True when converting A to the network's dtype turns finite values into ±inf."""
    A = np.asarray(A)
    return bool(np.any(np.isfinite(A) & ~np.isfinite(converted(A, net))))


def call(fn, *arrays_):
    """Call the library; NumPy's cast-overflow warning is expected (only) when the data has
    finite values beyond the network's dtype, and is then let through."""
    with warnings.catch_warnings():
        if any(overflow for overflow in arrays_):
            warnings.filterwarnings("ignore", "overflow encountered in cast", RuntimeWarning)
        return fn()


def assert_ieee_close(actual, desired, dtype, what):
    """NaN exactly where desired is NaN, the same infinities, finite values within RTOL."""
    actual = np.asarray(actual, dtype=np.float64)
    desired = np.asarray(desired, dtype=np.float64)
    assert actual.shape == desired.shape, f"{what}: shape {actual.shape} != {desired.shape}"
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(desired), err_msg=f"{what}: NaN")
    inf = np.isinf(desired)
    np.testing.assert_array_equal(np.isinf(actual), inf, err_msg=f"{what}: infinities")
    np.testing.assert_array_equal(actual[inf], desired[inf], err_msg=f"{what}: sign of inf")
    finite = np.isfinite(desired)
    a, d = actual[finite], desired[finite]
    scale = np.max(np.abs(d), initial=0.0)
    bound = RTOL[dtype] * (np.abs(d) + scale) + SUBNORMAL_ATOL[dtype]
    error = np.abs(a - d)
    assert np.all(error <= bound), \
        f"{what}: max error {np.max(error / bound, initial=0):.2f}x the tolerance " \
        f"(scale {scale:.3e})"


def flat(W, b):
    """Blocks in the parameter buffer's layout, W_0, (b_0,) W_1, (b_1,) ..., as one vector:
    compared as one array, as helpers.assert_close does, so that a block whose entries cancel
    to nearly zero is judged against the scale of the whole gradient or parameter vector."""
    blocks = []
    for i, W_i in enumerate(W):
        blocks.append(np.ravel(W_i))
        if b:
            blocks.append(np.ravel(b[i]))
    return np.concatenate(blocks)


def reference_run(fn, *args, **kwargs):
    with np.errstate(all="ignore"):
        return fn(*args, **kwargs)


# ---------------------------------------------------------------------- valid inputs
@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_forward_of_any_real_input_agrees_with_reference(data):
    net = data.draw(networks())
    t = data.draw(st.integers(0, 8))
    single = data.draw(st.booleans())
    shape = (net.layers[0],) if single else (t, net.layers[0])
    A, layout = data.draw(arrays(shape, net.dtype))
    X = in_layout(A, layout)
    z = call(lambda: net.forward(X), conversion_overflows(A, net))
    W, b = ref_params(net)
    Xc = converted(A, net)
    expected = reference_run(reference.forward, W, b, list(net.activations),
                             Xc[np.newaxis] if single else Xc)
    assert_ieee_close(z, expected[0] if single else expected, net.dtype,
                      f"forward, {A.dtype} {layout}")
    assert z.dtype == net.dtype
    COUNTS["forward"] += 1


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_gradient_of_any_real_input_agrees_with_reference(data):
    net = data.draw(networks())
    t = data.draw(st.integers(0, 8))
    single = data.draw(st.booleans())
    l_0, l_n = net.layers[0], net.layers[-1]
    A, layout_x = data.draw(arrays((l_0,) if single else (t, l_0), net.dtype))
    B, layout_y = data.draw(arrays((l_n,) if single else (t, l_n), net.dtype))
    X, Y = in_layout(A, layout_x), in_layout(B, layout_y)
    E, dW, db = call(lambda: net.gradient(X, Y), conversion_overflows(A, net),
                     conversion_overflows(B, net))
    W, b = ref_params(net)
    Xc, Yc = converted(A, net), converted(B, net)
    if single:
        Xc, Yc = Xc[np.newaxis], Yc[np.newaxis]
    E_ref, dW_ref, db_ref = reference_run(reference.gradient, W, b, list(net.activations), Xc,
                                          Yc, loss=net.loss_name)
    what = f"gradient ({net.loss_name}), X {A.dtype} {layout_x}, Y {B.dtype} {layout_y}"
    assert_ieee_close(E, E_ref, net.dtype, f"E of {what}")
    assert len(dW) == len(dW_ref) and len(db) == len(db_ref)
    assert all(g.dtype == net.dtype for g in dW + db)
    assert_ieee_close(flat(dW, db), flat(dW_ref, db_ref), net.dtype, f"∂E/∂params of {what}")
    COUNTS["gradient"] += 1


FIT_EPOCHS = 3
FIT_LR = 1e-3


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_fit_on_finite_input_agrees_with_reference(data):
    net = data.draw(networks())
    t = data.draw(st.integers(1, 8))
    l_0, l_n = net.layers[0], net.layers[-1]
    A, layout_x = data.draw(arrays((t, l_0), net.dtype, specials=False))
    B, layout_y = data.draw(arrays((t, l_n), net.dtype, specials=False))
    B = trainable(B, net)
    Xc, Yc = converted(A, net), converted(B, net)
    # Gradient descent on huge data overflows (tested below); here it must run its course.
    with np.errstate(all="ignore"):
        assume(np.all(np.abs(Xc) < 1e3) and np.all(np.abs(Yc) < 1e3))
    W, b = ref_params(net)
    expected = reference_run(reference.fit, W, b, list(net.activations), Xc, Yc, FIT_EPOCHS,
                             FIT_LR, loss=net.loss_name)
    assume(np.all(np.isfinite(expected)) and all(np.all(np.isfinite(p)) for p in W + b))
    X, Y = in_layout(A, layout_x), in_layout(B, layout_y)
    history = net.fit(X, Y, FIT_EPOCHS, FIT_LR, optimizer="sgd")
    what = f"fit ({net.loss_name}), X {A.dtype} {layout_x}, Y {B.dtype} {layout_y}"
    assert_ieee_close(history, expected, net.dtype, f"history of {what}")
    assert_ieee_close(net.params, flat(W, b), net.dtype, f"parameters after {what}")
    COUNTS["fit"] += 1


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_fit_on_nan_or_inf_raises_floating_point_error_naming_the_epoch(data):
    net = data.draw(networks())
    t = data.draw(st.integers(1, 8))
    l_0, l_n = net.layers[0], net.layers[-1]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32)))
    X, Y = rng.standard_normal((t, l_0)), trainable(rng.standard_normal((t, l_n)), net)
    target = data.draw(st.sampled_from(["X", "Y"]))
    array = X if target == "X" else Y
    row, col = data.draw(st.integers(0, t - 1)), data.draw(st.integers(0, array.shape[1] - 1))
    array[row, col] = special = data.draw(st.sampled_from(SPECIALS))
    before = net.params.copy()
    if target == "Y" and net.loss_name == "binary_cross_entropy" and not np.isnan(special):
        with pytest.raises(ValueError, match="Y to train on with loss 'binary_cross_entropy' "
                                             r"must be probabilities or labels in \[0, 1\]"):
            net.fit(X, Y, 5, FIT_LR, optimizer="sgd")  # ±inf: a target it cannot reach
        np.testing.assert_array_equal(net.params, before)
        COUNTS["fit_refused"] += 1
        return
    with pytest.raises(FloatingPointError, match=r"NaN or infinite in epoch (\d+)") as info:
        net.fit(X, Y, 5, FIT_LR, optimizer="sgd")
    epoch = int(re.search(r"epoch (\d+)", str(info.value)).group(1))
    assert len(net.history) == epoch, "history must hold exactly the epochs before the error"
    assert np.all(np.isfinite(net.history))
    if epoch == 0:
        np.testing.assert_array_equal(net.params, before)
    COUNTS["fit_non_finite"] += 1


def trainable(B, net):
    """B as targets fit accepts: binary cross-entropy trains on [0, 1] only (the gradient and
    the loss take any target, and are fuzzed with any)."""
    if net.loss_name != "binary_cross_entropy" or B.dtype.kind == "b":
        return B
    return np.clip(B, 0, 1).astype(B.dtype)


# ---------------------------------------------------------------------- invalid inputs
@st.composite
def bad_arrays(draw, good_shape, name, l_other):
    """An array that is not a valid X (or Y) for good_shape; the pattern of the message."""
    kind = draw(st.sampled_from(["rank", "width", "complex", "object", "str", "ragged"]))
    t = good_shape[0]
    if kind == "rank":
        shape = draw(st.sampled_from([(), (t, good_shape[1], 2), (1, t, good_shape[1], 1)]))
        return np.zeros(shape), ValueError
    if kind == "width":
        width = draw(st.integers(1, 7).filter(lambda w: w != good_shape[1]))
        two_d = draw(st.booleans())
        # a 1-D Y is one sample's target (t == 1), or one target per row when l_n is 1
        if not two_d and (width == good_shape[1] or (name == "Y" and t == 1)
                          or (name == "Y" and good_shape[1] == 1 and width == t)):
            two_d = True
        return np.zeros((t, width) if two_d else (width,)), ValueError
    if kind == "complex":
        return np.zeros(good_shape, dtype=complex), TypeError
    if kind == "object":
        return np.zeros(good_shape).astype(object), TypeError
    if kind == "str":
        return np.full(good_shape, "1.0"), TypeError
    return [[0.0] * good_shape[1], [0.0] * (good_shape[1] + 1)], ValueError


@settings(max_examples=EXAMPLES)
@given(data=st.data())
def test_invalid_input_raises_an_error_naming_the_parameter(data):
    net = data.draw(networks(losses=["sse", "mse"]))
    method = data.draw(st.sampled_from(["forward", "loss", "gradient", "fit", "step"]))
    t = data.draw(st.integers(2, 6))
    l_0, l_n = net.layers[0], net.layers[-1]
    bad = "X" if method == "forward" else data.draw(st.sampled_from(["X", "Y", "rows"]))
    X, Y = np.zeros((t, l_0)), np.zeros((t, l_n))
    if bad == "rows":
        Y, error = np.zeros((t + data.draw(st.integers(1, 3)), l_n)), ValueError
    elif bad == "X":
        X, error = data.draw(bad_arrays((t, l_0), "X", l_n))
    else:
        Y, error = data.draw(bad_arrays((t, l_n), "Y", l_0))
    calls = {"forward": lambda: net.forward(X), "loss": lambda: net.loss(X, Y),
             "gradient": lambda: net.gradient(X, Y), "fit": lambda: net.fit(X, Y, 1, 0.1, optimizer="sgd"),
             "step": lambda: net.step(X, Y, 0.1)}
    with pytest.raises((TypeError, ValueError)) as info:
        calls[method]()
    assert isinstance(info.value, error), f"{method}: {type(info.value).__name__}: {info.value}"
    named = "X" if bad == "X" else "Y"
    assert re.search(rf"\b{named}\b", str(info.value)), \
        f"{method} with a bad {named}: message does not name it: {info.value}"
    COUNTS["invalid"] += 1


# ---------------------------------------------------------------------- inf into a saturated σ
@pytest.mark.parametrize("activation", [
    "sigmoid", "tanh", "relu", "identity"])
def test_fit_stopped_by_inf_input_leaves_finite_parameters(activation):
    """README: "A NaN or infinite loss stops fit with FloatingPointError, the parameters left
    at the last finite state". An infinite input with a saturating σ gives a finite loss in
    epoch 0 but a non-finite gradient (∂E/∂W_0 = δ_1 xᵀ holds inf·0 = NaN), so the update
    must not be applied."""
    net = fastprop.Network([2, 3, 1], activation, seed=0, bias=False, loss="sse")
    X, Y = np.array([[np.inf, 0.0]]), np.array([[0.0]])
    with pytest.raises(FloatingPointError, match=r"epoch \d+"):
        net.fit(X, Y, 5, 0.1, optimizer="sgd")
    assert np.all(np.isfinite(net.params)), f"parameters after the stop: {net.params}"


# ---------------------------------------------------------------------- the README's figures
def test_readme_states_the_examples_each_profile_runs():
    """README, Reliability: the examples of one run in each hypothesis profile. Hypothesis runs
    exactly max_examples valid examples of a passing property, so a run is the properties
    above times EXAMPLES_FACTOR times the profile's max_examples (the count printed at the
    end of the module shows it: ``pytest -s tests/test_fuzz.py``)."""
    readme = Path(__file__).resolve().parents[1] / "README.md"
    if not readme.exists():
        pytest.skip("no README.md beside tests/")
    properties = [f for f in globals().values() if getattr(f, "is_hypothesis_test", False)]
    per_property = {name: EXAMPLES_FACTOR * settings.get_profile(name).max_examples
                    for name in ("default", "thorough")}
    text = " ".join(readme.read_text(encoding="utf-8").split())
    assert len(properties) == 5
    assert f"{len(properties) * per_property['default']:,} examples in each run of the suite, " \
           f"{per_property['default']:,} for each of five properties" in text
    assert f"--hypothesis-profile=thorough`: {per_property['thorough']:,} per property" in text
