"""Sparse X: scipy.sparse matrices (CSR, CSC, COO, or any format with ``tocsr``) as input.

They are converted once to compressed sparse rows in the network's dtype, with int64 indices,
never to a dense array: the core computes the first layer's product z_1 = W_0 a_0 (+ b_0) and
∂E/∂W_0 = δ_1ᵀ a_0 from the non-zeros (cpp/kernels/sparse.hpp). SciPy stays optional: a sparse
matrix is recognised by its attributes, and this module never imports SciPy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validate import message, typed

__all__ = ["CsrRows", "is_sparse", "as_csr_rows", "rows_for_core"]


def is_sparse(X: Any) -> bool:
    """Whether X is a scipy.sparse matrix or array (or a CsrRows), by duck typing."""
    if type(X) is np.ndarray:
        return False
    if isinstance(X, CsrRows):
        return True
    return type(X).__module__.startswith("scipy.sparse") or (
        hasattr(X, "tocsr") and hasattr(X, "nnz") and hasattr(X, "shape"))


class CsrRows:
    """A sparse X in compressed sparse rows, as the core reads it: ``data`` (nnz,) in the
    network's dtype, ``indices`` (nnz,) and ``indptr`` (t + 1,) in int64, ``shape`` (t, l_0).

    Row s holds the entries ``indptr[s]:indptr[s + 1]``. ``len`` is t, and a slice of rows
    with step 1 is a view (no copy), so that a validation split costs nothing.
    """

    __slots__ = ("data", "indices", "indptr", "shape")
    ndim = 2

    def __init__(self, data: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 shape: tuple[int, int]) -> None:
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1] - self.indptr[0])

    def __getitem__(self, rows: slice) -> CsrRows:
        if not isinstance(rows, slice):
            raise TypeError(message("the rows of a CsrRows", "a slice", typed(rows)))
        start, stop, step = rows.indices(self.shape[0])
        if step != 1:
            raise ValueError(message("a slice of a CsrRows", "a step of 1", str(step),
                                     verb="have"))
        stop = max(start, stop)
        p0, p1 = int(self.indptr[start]), int(self.indptr[stop])
        return CsrRows(self.data[p0:p1], self.indices[p0:p1], self.indptr[start:stop + 1] - p0,
                       (stop - start, self.shape[1]))

    def tocsr(self) -> Any:
        """A scipy.sparse.csr_matrix sharing the arrays (needs SciPy)."""
        import scipy.sparse

        return scipy.sparse.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def __repr__(self) -> str:
        return (f"CsrRows(shape={self.shape}, nnz={self.nnz}, dtype={self.data.dtype.name})")


def as_csr_rows(X: Any, l_0: int | None, dtype: np.dtype, name: str = "X") -> CsrRows:
    """X (sparse) as CsrRows of ``dtype`` with ``l_0`` columns (any number for None).

    CSR is taken as it is (a copy only of what needs another dtype); CSC, COO and other
    formats are converted once with their ``tocsr`` (duplicates summed), never densified.
    Raises TypeError for a matrix that cannot be converted or whose values are not real
    numbers, ValueError for a wrong shape or for NaN or inf among the stored values.
    """
    if isinstance(X, CsrRows) and X.data.dtype == dtype:
        csr = X
    else:
        shape = getattr(X, "shape", None)
        if shape is None or len(shape) != 2:
            raise ValueError(message(name, "a 2-D sparse matrix", f"shape {shape}"))
        if getattr(X, "format", "csr") != "csr":
            try:
                X = X.tocsr()
            except Exception as error:  # noqa: BLE001  (any failure: not convertible)
                raise TypeError(message(name, "a sparse matrix convertible to CSR (csr, csc, "
                                        "coo, ...)", f"{typed(X)} ({error})")) from None
        try:
            data, indices, indptr = (np.asarray(X.data), np.asarray(X.indices),
                                     np.asarray(X.indptr))
        except AttributeError:
            raise TypeError(message(name, "a sparse matrix convertible to CSR (csr, csc, coo, "
                                    "...)", typed(X))) from None
        if data.dtype.kind not in "biuf":
            raise TypeError(message(name, "real numbers (bool, int or float)",
                                    f"dtype {data.dtype}", verb="hold"))
        if indices.dtype.kind not in "iu" or indptr.dtype.kind not in "iu":
            raise TypeError(message(f"the indices of {name}", "integers",
                                    f"dtype {indices.dtype}"))
        with np.errstate(over="ignore"):
            data = np.require(data, dtype=dtype, requirements=("C", "A"))
        csr = CsrRows(data, np.require(indices, dtype=np.int64, requirements="C"),
                      np.require(indptr, dtype=np.int64, requirements="C"),
                      (int(shape[0]), int(shape[1])))
    if l_0 is not None and csr.shape[1] != l_0:
        raise ValueError(f"{name} must have shape (t, {l_0}), got a sparse matrix of shape "
                         f"{csr.shape}")
    if not np.all(np.isfinite(csr.data)):
        raise ValueError(message(name, "finite values", "NaN or inf among its stored values "
                                 f"(in {csr.data.dtype.name})", verb="hold"))
    return csr


def rows_for_core(X: Any) -> Any:
    """X as the core reads it fastest: a sparse X as CSR (converted once, never dense), any
    other as a C-contiguous array."""
    if is_sparse(X):
        return X if getattr(X, "format", None) == "csr" or isinstance(X, CsrRows) else X.tocsr()
    return np.ascontiguousarray(X)
