"""Sparse X (scipy.sparse CSR, CSC, COO): the first layer's passes read the non-zeros.

Checked, for both dtypes and bias on and off: forward, loss, gradient and loss_and_grad on
a sparse X agree with the same calls on X.toarray() and with fastprop.reference, within the
rounding of another summation order (helpers.RTOL); so do fits (full batch, shuffled
minibatches, every first-order optimiser, sample weights, validation); matrices with empty
rows, explicit zeros, unsorted and duplicate indices, int32 and int64 indices; the
estimators of fastprop.sklearn (fit, partial_fit, predict, predict_proba, score) on sparse X
against dense X and against scikit-learn's MLP given the same weights; bad input raises a
clear error; and ``import fastprop`` does not import SciPy.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest

import fastprop
from fastprop import reference

from helpers import DTYPES, RTOL, assert_close, ref_params

sp = pytest.importorskip("scipy.sparse")

FORMATS = ("csr", "csc", "coo")
# Fits compound the rounding of each step; as test_core_vs_reference.py's FIT_RTOL.
FIT_RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-3}


def random_sparse(rng, t, l_0, density=0.2, dtype="float64", fmt="csr"):
    """A random sparse (t, l_0) matrix with an empty row, an explicit zero, unsorted column
    indices in its rows and a duplicated entry (which CSR sums, as scipy does)."""
    X = sp.random(t, l_0, density=density, format="csr", dtype=np.float64,
                  random_state=np.random.RandomState(int(rng.integers(2**31))),
                  data_rvs=lambda k: rng.standard_normal(k))
    X = X.tolil()
    X[0, :] = 0  # an empty row
    X = X.tocsr()
    X.eliminate_zeros()
    data, indices, indptr = list(X.data), list(X.indices), list(X.indptr)
    # an explicit zero and a duplicate in the last row, its columns in reverse order
    last = slice(indptr[-2], indptr[-1])
    row = list(zip(indices[last], data[last]))[::-1] + [(8, 0.3), (1, 0.0), (2, 0.5), (2, 0.25)]
    indices = indices[:indptr[-2]] + [k for k, _ in row]
    data = data[:indptr[-2]] + [v for _, v in row]
    indptr[-1] = len(data)
    X = sp.csr_matrix((np.array(data, dtype=dtype), np.array(indices), np.array(indptr)),
                      shape=(t, l_0))
    assert not X.has_sorted_indices and not X.has_canonical_format
    return X if fmt == "csr" else X.asformat(fmt)


def make_net(layers=(9, 6, 3), dtype="float64", bias=True, loss="sse", activation="tanh",
             seed=3):
    net = fastprop.Network(list(layers), activation, bias=bias, dtype=dtype, seed=seed, loss=loss)
    if bias:
        b_rng = np.random.default_rng(seed)
        for b in net.biases:
            b[...] = b_rng.uniform(-0.5, 0.5, b.shape)
    return net


def dense(X):
    return np.asarray(X.toarray())


# ---------------------------------------------------------------------- single passes
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("fmt", FORMATS)
def test_forward_sparse_matches_dense_and_reference(rng, dtype, bias, fmt):
    net = make_net(dtype=dtype, bias=bias)
    X = random_sparse(rng, 13, 9, dtype=dtype, fmt=fmt)
    out = net.forward(X)
    assert out.shape == (13, 3) and out.dtype == net.dtype
    assert_close(out, net.forward(dense(X)), RTOL[net.dtype], "z_n, sparse vs dense")
    W, b = ref_params(net)
    assert_close(out, reference.forward(W, b, net.activations, dense(X).astype(np.float64)),
                 RTOL[net.dtype], "z_n vs reference")
    assert np.all(out[0] == net.forward(np.zeros((1, 9)))[0])  # the empty row


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "identity"])
def test_forward_sparse_every_layer_count(rng, activation):
    for layers in [(9, 2), (9, 5, 2), (9, 5, 4, 2)]:
        net = make_net(layers, activation=activation)
        X = random_sparse(rng, 11, 9)
        assert_close(net.forward(X), net.forward(dense(X)), RTOL[net.dtype], f"{layers}")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("loss", ["sse", "mse", "cross_entropy"])
def test_gradient_sparse_matches_dense_and_reference(rng, dtype, bias, loss):
    net = make_net(dtype=dtype, bias=bias, loss=loss)
    X = random_sparse(rng, 17, 9, dtype=dtype)
    Y = rng.dirichlet(np.ones(3), size=17) if loss == "cross_entropy" \
        else rng.standard_normal((17, 3))
    E, dW, db = net.gradient(X, Y)
    E_d, dW_d, db_d = net.gradient(dense(X), Y)
    E_ref, dW_ref, db_ref = reference.gradient(*ref_params(net), net.activations,
                                               dense(X).astype(np.float64), Y, loss)
    assert_close(E, E_d, RTOL[net.dtype], "E sparse vs dense")
    assert_close(E, E_ref, RTOL[net.dtype], "E vs reference")
    assert np.abs(dW[0]).max() > 0  # the comparison cannot pass empty
    for i in range(net.n):
        assert_close(dW[i], dW_d[i], RTOL[net.dtype], f"dE/dW_{i} sparse vs dense")
        assert_close(dW[i], dW_ref[i], RTOL[net.dtype], f"dE/dW_{i} vs reference")
    for i in range(len(db)):
        assert_close(db[i], db_d[i], RTOL[net.dtype], f"dE/db_{i}")
        assert_close(db[i], db_ref[i], RTOL[net.dtype], f"dE/db_{i} vs reference")
    # ∂E/∂W_0 is zero in every column no row has an entry in
    empty_columns = np.asarray(abs(X).sum(axis=0)).ravel() == 0
    assert np.all(dW[0][:, empty_columns] == 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_loss_and_grad_sparse_at_other_params(rng, dtype, fmt):
    net = make_net(dtype=dtype)
    X = random_sparse(rng, 20, 9, dtype=dtype, fmt=fmt)
    Y = rng.standard_normal((20, 3))
    w = rng.uniform(0, 2, 20)
    p = net.params.copy() * 0.5
    before = net.params.copy()
    E, g = net.loss_and_grad(X, Y, p, sample_weight=w)
    E_d, g_d = net.loss_and_grad(dense(X), Y, p, sample_weight=w)
    assert_close(E, E_d, RTOL[net.dtype], "E")
    assert_close(g, g_d, RTOL[net.dtype], "∂E/∂params")
    assert np.array_equal(net.params, before)
    assert_close(net.loss(X, Y, w), net.loss(dense(X), Y, w), RTOL[net.dtype], "loss")


def test_int64_and_int32_indices_give_the_same_bits(rng):
    net = make_net()
    X = random_sparse(rng, 30, 9)
    X64 = X.copy()  # scipy's constructor would take int64 indices back to int32
    X64.indices, X64.indptr = X.indices.astype(np.int64), X.indptr.astype(np.int64)
    assert X64.indices.dtype == np.int64
    Y = rng.standard_normal((30, 3))
    assert np.array_equal(net.forward(X), net.forward(X64))
    assert np.array_equal(net.loss_and_grad(X, Y)[1], net.loss_and_grad(X64, Y)[1])


def test_sparse_batches_larger_than_a_chunk(rng):
    # Thousands of rows run in chunks (and halves on two threads): the row views must follow.
    net = make_net((40, 16, 3))
    X = random_sparse(rng, 3000, 40, density=0.05)
    Y = rng.standard_normal((3000, 3))
    assert_close(net.forward(X), net.forward(dense(X)), RTOL[net.dtype], "z_n")
    assert_close(net.loss_and_grad(X, Y)[1], net.loss_and_grad(dense(X), Y)[1],
                 RTOL[net.dtype], "∂E/∂params")


def test_empty_batch_and_all_empty_rows(rng):
    net = make_net()
    Z = sp.csr_matrix((5, 9))
    assert np.array_equal(net.forward(Z), net.forward(np.zeros((5, 9))))
    E, g = net.loss_and_grad(sp.csr_matrix((0, 9)), np.zeros((0, 3)))
    assert E == 0 and not np.any(g)


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam", "adamw", "rprop"])
def test_fit_sparse_matches_dense(rng, dtype, optimizer):
    X = random_sparse(rng, 40, 9, dtype=dtype)
    Y = rng.standard_normal((40, 3))
    w = rng.uniform(0, 2, 40)
    runs = []
    for data in (X, dense(X)):
        net = make_net(dtype=dtype)
        history = net.fit(data, Y, epochs=6, lr=0.01, optimizer=optimizer, batch_size=7,
                          shuffle=True, seed=4, sample_weight=w, validation_fraction=0.2)
        runs.append((np.asarray(history), history.val_loss, net.params.copy()))
    (h, v, p), (h_d, v_d, p_d) = runs
    assert_close(h, h_d, FIT_RTOL[np.dtype(dtype)], "E per epoch")
    assert_close(v, v_d, FIT_RTOL[np.dtype(dtype)], "validation E per epoch")
    assert_close(p, p_d, FIT_RTOL[np.dtype(dtype)], "params after fit")


@pytest.mark.parametrize("batch_size, shuffle", [(None, False), (4, False), (5, True)])
def test_fit_sparse_matches_reference(rng, batch_size, shuffle):
    net = make_net(bias=False)
    X = random_sparse(rng, 12, 9)
    Y = rng.standard_normal((12, 3))
    W, b = ref_params(net)
    history = net.fit(X, Y, epochs=5, lr=0.01, batch_size=batch_size, shuffle=shuffle, seed=2,
                      optimizer="sgd")
    history_ref = reference.fit(W, b, net.activations, dense(X), Y, epochs=5, lr=0.01,
                                batch_size=batch_size, shuffle=shuffle, seed=2)
    assert_close(history, history_ref, FIT_RTOL[net.dtype], "E per epoch")
    for i in range(net.n):
        assert_close(net.weights[i], W[i], FIT_RTOL[net.dtype], f"W_{i}")


def test_fit_sparse_validation_data_and_step(rng):
    X, X_val = random_sparse(rng, 30, 9), random_sparse(rng, 8, 9, fmt="coo")
    Y, Y_val = rng.standard_normal((30, 3)), rng.standard_normal((8, 3))
    a, b = make_net(), make_net()
    ha = a.fit(X, Y, 3, lr=0.01, validation_data=(X_val, Y_val))
    hb = b.fit(dense(X), Y, 3, lr=0.01, validation_data=(dense(X_val), Y_val))
    assert_close(ha.val_loss, hb.val_loss, FIT_RTOL[a.dtype], "validation E")
    assert_close(a.step(X, Y, 0.01), b.step(dense(X), Y, 0.01), FIT_RTOL[a.dtype], "step E")
    assert_close(a.params, b.params, FIT_RTOL[a.dtype], "params after step")


# ---------------------------------------------------------------------- bad input
def test_sparse_wrong_number_of_columns():
    net = make_net()
    with pytest.raises(ValueError, match=r"X must have shape \(t, 9\), got a sparse matrix of "
                                         r"shape \(4, 8\)"):
        net.forward(sp.csr_matrix((4, 8)))
    with pytest.raises(ValueError, match="same number of rows"):
        net.loss(sp.csr_matrix((4, 9)), np.zeros((5, 3)))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_sparse_non_finite_values_are_refused(bad):
    X = sp.csr_matrix(np.eye(3, 9))
    X.data[1] = bad
    with pytest.raises(ValueError, match="X must hold finite values, got NaN or inf"):
        make_net().fit(X, np.zeros((3, 3)), 1, lr=0.1)


def test_sparse_float32_overflow_is_refused():
    X = sp.csr_matrix(np.eye(3, 9) * 1e300)
    with pytest.raises(ValueError, match="finite values"):
        make_net(dtype="float32").forward(X)


def test_sparse_not_convertible_and_not_real():
    class Broken:
        shape = (2, 9)
        nnz = 0
        format = "weird"

        def tocsr(self):
            raise RuntimeError("cannot")

    with pytest.raises(TypeError, match="a sparse matrix convertible to CSR"):
        make_net().forward(Broken())
    with pytest.raises(TypeError, match="real numbers"):
        make_net().forward(sp.csr_matrix(np.eye(2, 9) * 1j))


def test_sparse_corrupt_indices_are_refused():
    X = sp.csr_matrix(np.eye(3, 9))
    X.indices[1] = 9  # out of range: scipy itself does not check until asked
    with pytest.raises(ValueError, match=r"column indices must be in \[0, 9\), got 9"):
        make_net().forward(X)


def test_core_refuses_csc_given_directly():
    # The binding reads CSR's arrays; a CSC matrix (which has the same attributes) handed to
    # it past the Python layer is refused rather than read as rows.
    net = make_net()
    with pytest.raises(ValueError, match="must be a CSR matrix here, got format csc"):
        net._core.forward(sp.csc_matrix(np.eye(9)))


def test_dense_only_calls_refuse_sparse():
    net = make_net()
    X = sp.csr_matrix(np.eye(3, 9))
    with pytest.raises(TypeError, match="trace needs a dense X"):
        net.trace(X)
    with pytest.raises(TypeError, match="jacobian needs a dense X"):
        net.jacobian(X)
    with pytest.raises(ValueError, match="Levenberg-Marquardt needs a dense X"):
        make_net(layers=(9, 3, 3)).fit(X, np.zeros((3, 3)), 1, optimizer="lm")


def test_import_fastprop_does_not_import_scipy():
    code = ("import sys, fastprop, numpy as np\n"
            "net = fastprop.Network([2, 1], seed=0)\n"
            "net.fit(np.ones((3, 2)), np.ones((3, 1)), 1, lr=0.1)\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    assert out.strip() == "[]"


# ---------------------------------------------------------------------- fastprop.sklearn
@pytest.fixture
def sk():
    """(fastprop.sklearn, sklearn.neural_network), or the test skips without scikit-learn."""
    pytest.importorskip("sklearn")
    import sklearn.neural_network

    from fastprop import sklearn as fp_sklearn

    return fp_sklearn, sklearn.neural_network


def quiet(fit, *args, **kwargs):
    """fit(...) with scikit-learn's ConvergenceWarning (short fits on purpose) silenced."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fit(*args, **kwargs)


def text_like(rng, t=120, l_0=60, classes=3, dtype="float64"):
    X = random_sparse(rng, t, l_0, density=0.1, dtype=dtype)
    y = np.asarray(X[:, :classes].sum(axis=1)).ravel()
    y = np.digitize(y, np.quantile(y, np.linspace(0, 1, classes + 1)[1:-1]))
    return X, y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_classifier_sparse_matches_dense(rng, sk, dtype, fmt):
    X, y = text_like(rng, dtype=dtype)
    X = X.asformat(fmt)
    w = rng.uniform(0.5, 1.5, len(y))
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, batch_size=16, dtype=dtype,
              alpha=1e-3)
    a = quiet(sk[0].MLPClassifier(**kw).fit, X, y, sample_weight=w)
    b = quiet(sk[0].MLPClassifier(**kw).fit, dense(X), y, sample_weight=w)
    rtol = FIT_RTOL[np.dtype(dtype)]
    assert_close(a.loss_curve_, b.loss_curve_, rtol, "loss curve")
    assert_close(a.predict_proba(X), b.predict_proba(dense(X)), rtol, "predict_proba")
    assert np.array_equal(a.predict(X), a.predict(dense(X)))
    assert a.score(X, y, sample_weight=w) == pytest.approx(b.score(dense(X), y, sample_weight=w))
    a.partial_fit(X, y)
    b.partial_fit(dense(X), y)
    assert_close(a.coefs_[0], b.coefs_[0], rtol, "W_0 after partial_fit")


@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_regressor_sparse_matches_dense(rng, sk, solver):
    X, _ = text_like(rng)
    y = np.asarray(X @ rng.standard_normal(X.shape[1])).ravel()
    kw = dict(hidden_layer_sizes=(6,), max_iter=8, random_state=1, solver=solver,
              early_stopping=solver != "lbfgs")
    a = quiet(sk[0].MLPRegressor(**kw).fit, X, y)
    b = quiet(sk[0].MLPRegressor(**kw).fit, dense(X), y)
    assert_close(a.loss_curve_, b.loss_curve_, 1e-9, "loss curve")
    assert_close(a.predict(X.tocsc()), b.predict(dense(X)), 1e-9, "predict")
    assert a.score(X, y) == pytest.approx(b.score(dense(X), y), rel=1e-9)


def test_classifier_sparse_predictions_match_scikit_learn(rng, sk):
    # scikit-learn's MLP, given the weights fastprop learnt from sparse X, predicts the same.
    X, y = text_like(rng)
    clf = quiet(sk[0].MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit,
                X, y)
    ref = quiet(sk[1].MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit,
                X, y)
    ref.coefs_ = [W.copy() for W in clf.coefs_]
    ref.intercepts_ = [b.copy() for b in clf.intercepts_]
    assert_close(clf.predict_proba(X), ref.predict_proba(X), 1e-12, "predict_proba")
    assert np.array_equal(clf.predict(X), ref.predict(X))
    # and fitted on the same sparse data for as long, both learn the task about as well
    ref = quiet(sk[1].MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0).fit,
                X, y)
    assert abs(clf.score(X, y) - ref.score(X, y)) < 0.15


def test_lm_solver_refuses_sparse(rng, sk):
    X, y = text_like(rng, l_0=10)
    with pytest.raises(ValueError, match="Levenberg-Marquardt needs a dense X"):
        sk[0].MLPRegressor(hidden_layer_sizes=(3,), solver="lm", alpha=0).fit(X, y * 1.0)
