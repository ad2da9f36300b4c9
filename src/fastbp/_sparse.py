"""Sparse inputs: a SciPy sparse X becomes :class:`CsrRows`, the CSR arrays
the kernels multiply where they lie (csrc/inputs.pxi), never densified.

Only the first layer sees X, so only its products change: a = X·W + b row by
row over each row's non-zeros, and ∂J/∂W = Xᵀ·δ scattered from them.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse

from . import _kernels

#: the largest column count int32 column indices can name
MAX_COLUMNS = np.iinfo(np.int32).max


class CsrRows:
    """Rows of a CSR matrix in the arrays and dtypes the kernels read.

    ``indptr`` holds absolute offsets into ``values`` and ``indices``, so a
    slice of rows is a view: only ``indptr`` is sliced (what
    ``Network.predict`` does chunk by chunk). Index arrays and boolean masks
    gather rows into a new, compact matrix.

    Parameters
    ----------
    values : ndarray of float32 or float64, shape (nnz,)
    indices : ndarray of int32, shape (nnz,)
        Column of each value.
    indptr : ndarray of int64, shape (n_rows + 1,)
        Row i's entries are ``values[indptr[i]:indptr[i + 1]]``.
    n_columns : int
    """

    __slots__ = ("values", "indices", "indptr", "shape")
    ndim = 2

    def __init__(self, values: np.ndarray, indices: np.ndarray, indptr: np.ndarray,
                 n_columns: int):
        self.values, self.indices, self.indptr = values, indices, indptr
        self.shape = (indptr.shape[0] - 1, n_columns)

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    @property
    def nnz(self) -> int:
        """Stored entries of these rows."""
        return int(self.indptr[-1] - self.indptr[0])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows) -> "CsrRows":
        if isinstance(rows, slice):
            start, stop, step = rows.indices(self.shape[0])
            if step == 1:
                stop = max(start, stop)
                return CsrRows(self.values, self.indices, self.indptr[start:stop + 1],
                               self.shape[1])
        picked = np.arange(self.shape[0])[rows]
        if picked.ndim != 1:
            raise IndexError("CsrRows takes a slice, an index array or a boolean mask")
        starts, stops = self.indptr[picked], self.indptr[picked + 1]
        lengths = stops - starts
        indptr = np.zeros(picked.shape[0] + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        # position of every kept entry in the old arrays
        taken = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1])
        return CsrRows(self.values[taken], self.indices[taken], indptr, self.shape[1])

    def to_scipy(self) -> scipy.sparse.csr_array:
        """These rows as a SciPy CSR array (sharing nothing with them)."""
        first = self.indptr[0]
        entries = slice(first, self.indptr[-1])
        return scipy.sparse.csr_array(
            (self.values[entries].copy(), self.indices[entries].copy(), self.indptr - first),
            shape=self.shape)

    def __repr__(self) -> str:
        return f"CsrRows(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"


def is_sparse(data) -> bool:
    """Whether ``data`` is a SciPy sparse matrix or array, or CsrRows."""
    return isinstance(data, CsrRows) or scipy.sparse.issparse(data)


def as_csr_rows(data, dtype: np.dtype, name: str, n_columns: int | None = None) -> CsrRows:
    """A SciPy sparse matrix or array (any format) as finite :class:`CsrRows`
    of ``dtype``: CSR input of the right dtypes is used where it lies, other
    formats and dtypes are converted once (O(non-zeros), never dense)."""
    if isinstance(data, CsrRows):
        rows = data
    else:
        if data.ndim != 2:
            raise ValueError(f"{name} must be 2-D, got a {data.ndim}-D sparse array")
        if data.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold real numbers, got sparse dtype {data.dtype}")
        if data.shape[1] > MAX_COLUMNS:
            raise ValueError(f"{name} has {data.shape[1]} columns; at most {MAX_COLUMNS} "
                             "are supported")
        csr = data if data.format == "csr" else data.tocsr()
        with np.errstate(over="ignore", invalid="ignore"):
            values = np.ascontiguousarray(csr.data, dtype=dtype)
        rows = CsrRows(values, np.ascontiguousarray(csr.indices, dtype=np.int32),
                       np.ascontiguousarray(csr.indptr, dtype=np.int64), csr.shape[1])
        _check_finite(rows, csr, name)
    if rows.shape[0] == 0 or rows.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {rows.shape}")
    if n_columns is not None and rows.shape[1] != n_columns:
        raise ValueError(f"{name} has {rows.shape[1]} columns, the network expects {n_columns}")
    if rows.dtype != dtype:
        rows = CsrRows(rows.values.astype(dtype), rows.indices, rows.indptr, rows.shape[1])
        _check_finite(rows, rows, name)
    return rows


def _check_finite(rows: CsrRows, original, name: str) -> None:
    """Reject a NaN or infinity (or a value that overflows the dtype) with the
    row and column of the first."""
    first, last = int(rows.indptr[0]), int(rows.indptr[-1])
    at = _kernels.first_nonfinite(rows.values[first:last])
    if at < 0:
        return
    k = first + at
    row = int(np.searchsorted(rows.indptr, k, side="right")) - 1
    column = int(rows.indices[k])
    bad = int(np.count_nonzero(~np.isfinite(rows.values[first:last])))
    given = original.data[k - first].item() if not isinstance(original, CsrRows) else None
    if given is not None and np.isfinite(given):
        raise ValueError(f"{name}[{row}, {column}] = {given!r} overflows {rows.dtype}; "
                         f"{bad} value(s) do not fit")
    raise ValueError(f"{name} contains {bad} NaN or infinite value(s), first at "
                     f"[{row}, {column}]")
