"""The one place where user input becomes C-contiguous float arrays, or an error.

Every public entry point passes its arrays and scalars through here before any
compiled kernel sees them: the kernels do no checking of their own.
"""
from __future__ import annotations

import math
import numbers
import operator

import numpy as np

from . import _kernels
from ._sparse import CsrRows, as_csr_rows, is_sparse

FLOAT_DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}


def check_dtype(dtype) -> np.dtype:
    """Return ``np.float32`` or ``np.float64`` for a dtype name or object."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in FLOAT_DTYPES or isinstance(dtype, bool):
        raise ValueError(f"unknown dtype {dtype!r}: use 'float32' or 'float64'")
    return FLOAT_DTYPES[resolved.name]


#: the products' precisions a network trains in (Network's compute_dtype)
COMPUTE_DTYPES = ("float32", "float64", "bfloat16")


def check_compute_dtype(compute_dtype, dtype) -> str:
    """Return the precision of a network's products: ``compute_dtype``
    after checking it goes with the parameters' ``dtype`` (np.float32 or
    np.float64), or that dtype's name for None. A network computes in its
    own dtype, or in bfloat16 on float32 parameters."""
    name = np.dtype(dtype).name
    if compute_dtype is None:
        return name
    if not isinstance(compute_dtype, str):
        raise TypeError(f"compute_dtype must be None or a str ('bfloat16'), "
                        f"got {type(compute_dtype).__name__}")
    if compute_dtype not in COMPUTE_DTYPES:
        raise ValueError(f"unknown compute_dtype {compute_dtype!r}: use None (the dtype's own "
                         "products) or 'bfloat16'")
    if compute_dtype == "bfloat16" and name != "float32":
        raise ValueError(f"compute_dtype='bfloat16' needs dtype='float32' (float32 master "
                         f"weights), got dtype={name!r}")
    if compute_dtype not in (name, "bfloat16"):
        raise ValueError(f"compute_dtype={compute_dtype!r} does not go with dtype={name!r}: a "
                         f"network computes in its own dtype (None or {name!r}), or in "
                         "'bfloat16' with dtype='float32'")
    return compute_dtype


def is_ready_matrix(data, n_columns: int | None, dtypes) -> bool:
    """Whether ``data`` is ready for the kernels as it is: a non-empty,
    finite, C-contiguous, aligned 2-D NumPy array of one of ``dtypes`` with
    ``n_columns`` columns (None: any). Lets small calls skip the general
    checks and conversions, which would all pass."""
    return (is_ready_layout(data, n_columns, dtypes)
            and _kernels.first_nonfinite(data.reshape(-1)) < 0)


#: arrays taken as they are; other subclasses (masked arrays, np.matrix)
#: go through np.asarray's conversion
_PLAIN_ARRAYS = (np.ndarray, np.memmap)
_NATIVE_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def is_ready_layout(data, n_columns: int | None, dtypes) -> bool:
    """:func:`is_ready_matrix` but for the values: for kernels that scan
    them for NaN and infinity themselves."""
    return (type(data) in _PLAIN_ARRAYS and data.ndim == 2 and data.size > 0
            and (n_columns is None or data.shape[1] == n_columns)
            and data.dtype in dtypes and data.flags.c_contiguous and data.flags.aligned)


def is_convertible_layout(data, n_columns: int) -> bool:
    """Whether predict's threads can convert ``data``'s rows themselves: a
    non-empty 2-D NumPy float32 or float64 array of ``n_columns`` columns,
    aligned and in native byte order, of any strides (its values are checked
    as they are converted)."""
    return (type(data) in _PLAIN_ARRAYS and data.ndim == 2 and data.size > 0
            and data.shape[1] == n_columns and data.dtype in _NATIVE_FLOATS
            and data.flags.aligned)


def usable_as_is(array: np.ndarray, dtype: np.dtype) -> bool:
    """Whether the kernels can read ``array`` where it lies."""
    if isinstance(array, CsrRows):
        return array.dtype == dtype
    flags = array.flags
    return array.dtype == dtype and flags.c_contiguous and flags.aligned


def as_matrix(data, dtype: np.dtype, name: str, n_columns: int | None = None,
              allow_vector: bool = False, lazy: bool = False,
              accept_sparse: bool = False, allow_empty: bool = False) -> np.ndarray:
    """Convert ``data`` to a finite, C-contiguous 2-D array of ``dtype``.

    Strided, Fortran-order, read-only and integer input is copied into a
    fresh array; a C-contiguous array of the right dtype is used as is.
    ``allow_vector`` lets a 1-D array stand for a single column. With
    ``lazy``, a numeric array that would need a copy is returned after the
    shape checks, unconverted and unchecked, for :func:`convert_rows` to
    convert a chunk at a time (memory O(chunk) instead of a copy of X).
    With ``accept_sparse``, SciPy sparse input becomes :class:`CsrRows`
    (never dense); without it, sparse input (targets, weights) is densified.
    ``allow_empty`` takes an array of no rows (a Dask partition may be one).
    This is the one way X reaches the kernels: Network, the estimators (after
    scikit-learn's own checks) and fastbp.dask's partitions.
    """
    if is_ready_matrix(data, n_columns, (dtype,)):
        return data  # the checks below would all pass (~1 µs)
    if not isinstance(data, np.ndarray) and is_sparse(data):  # ndarray first: ~1 µs a call
        if accept_sparse:
            return as_csr_rows(data, dtype, name, n_columns)
        data = data.to_scipy().toarray() if isinstance(data, CsrRows) else data.toarray()
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} could not be read as a numeric array: {exc}") from None
    if array.dtype.kind not in "biuf":
        if array.dtype.kind == "O":
            # numeric strings would convert silently: refuse them like a str array
            if any(isinstance(v, (str, bytes)) for v in array.flat):
                raise TypeError(f"{name} holds non-numeric values (strings)")
            try:
                array = array.astype(np.float64)
            except OverflowError:
                raise ValueError(f"{name} holds a number too large for float64") from None
            except (ValueError, TypeError):
                raise TypeError(f"{name} holds non-numeric values") from None
        else:
            raise TypeError(
                f"{name} must hold numbers, got dtype {array.dtype} "
                "(strings, complex and datetime data are not accepted)"
            )
    if array.ndim == 1 and allow_vector and n_columns in (None, 1):
        array = array.reshape(-1, 1)
    if array.ndim != 2:
        hint = " (reshape a single sample with X.reshape(1, -1))" if array.ndim == 1 else ""
        raise ValueError(f"{name} must be a 2-D array, got {array.ndim}-D with shape {array.shape}{hint}")
    if (array.shape[0] == 0 and not allow_empty) or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    if n_columns is not None and array.shape[1] != n_columns:
        raise ValueError(f"{name} has {array.shape[1]} columns, the network expects {n_columns}")
    if array.dtype.kind == "f" and array.dtype.itemsize > 8:
        # long double: check before narrowing so overflow is reported as such
        _check_finite(array, name)
    if lazy and not usable_as_is(array, dtype) and array.dtype.kind in "biuf" \
            and array.dtype.itemsize <= 8:
        return array
    converted = _as_kernel_array(array, dtype)
    _check_finite(converted, name, original=array)
    return converted


def _as_kernel_array(array: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``array`` itself when the kernels can read it, else a C-contiguous,
    aligned copy in ``dtype`` (overflow to inf is left to the finite check)."""
    if usable_as_is(array, dtype):
        return array  # no conversion, so no overflow to silence (saves ~1.5 µs)
    with np.errstate(over="ignore", invalid="ignore"):
        converted = np.ascontiguousarray(array, dtype=dtype)
    if not converted.flags.aligned:
        # ascontiguousarray passes misaligned buffers through; the kernels need aligned ones
        converted = converted.copy()
    return converted


def convert_rows(array: np.ndarray, start: int, stop: int, dtype: np.dtype,
                 name: str) -> np.ndarray:
    """Rows [start, stop) of an array that ``as_matrix(lazy=True)`` returned,
    as ``as_matrix`` would give them. A non-finite value (or one that
    overflows ``dtype``) raises ``as_matrix``'s error for the whole array,
    which names the first bad row and column and counts them all."""
    converted = _as_kernel_array(array[start:stop], dtype)
    if _kernels.first_nonfinite(converted.reshape(-1)) >= 0:
        as_matrix(array, dtype, name)  # the error path may copy the whole array
        raise ValueError(f"{name} holds values that are not finite in {dtype}")
    return converted


def _check_finite(array: np.ndarray, name: str, original: np.ndarray | None = None) -> None:
    """Raise a ValueError naming the first NaN or infinity (row, column) of a
    2-D float array; float32/float64 C-contiguous arrays are scanned without a
    mask. ``original``: the array before a conversion that may have overflowed."""
    if array.dtype.kind != "f":
        return
    if array.dtype.type in (np.float32, np.float64) and array.flags.c_contiguous:
        if _kernels.first_nonfinite(array.reshape(-1)) < 0:  # no mask as large as X
            return
    elif np.isfinite(array).all():  # long double, before it is narrowed
        return
    finite = np.isfinite(array)
    bad = int(np.count_nonzero(~finite))
    row, col = np.argwhere(~finite)[0]
    if original is not None and original.dtype.kind in "biuf" and np.isfinite(original[row, col]):
        raise ValueError(
            f"{name}[{row}, {col}] = {original[row, col].item()!r} overflows {array.dtype}; "
            f"{bad} value(s) do not fit"
        )
    raise ValueError(f"{name} contains {bad} NaN or infinite value(s), first at [{row}, {col}]")


def check_rows_match(X: np.ndarray, Y: np.ndarray) -> None:
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")


def check_int(value, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integral number (not bool) within [minimum, maximum]."""
    if type(value) is int and value >= minimum and (maximum is None or value <= maximum):
        return value  # the common case, without the ABC checks (~0.5 µs)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = operator.index(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_float(value, name: str, minimum: float | None = None, strict: bool = False,
                maximum: float | None = None, strict_max: bool = False) -> float:
    """A finite real number within the given bounds."""
    if type(value) is not float:  # float itself skips the ABC check
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"{name} must be a real number, got {value!r}")
        value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        relation = ">" if strict else ">="
        raise ValueError(f"{name} must be {relation} {minimum}, got {value}")
    if maximum is not None and (value > maximum or (strict_max and value == maximum)):
        relation = "<" if strict_max else "<="
        raise ValueError(f"{name} must be {relation} {maximum}, got {value}")
    return value


def check_bool(value, name: str) -> bool:
    """True or False (NumPy's too), as a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_seed(seed, name: str = "seed"):
    if seed is None or isinstance(seed, np.random.Generator):
        return seed
    return check_int(seed, name, 0)


def check_choice(value, choices, what: str) -> str:
    """``value`` must be one of the names in ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {what} {value!r}; choose one of {sorted(choices)}")
    return value


def check_sample_weight(sample_weight, n: int, dtype) -> np.ndarray | None:
    """Per-row weights as a 1-D array of ``dtype``: finite, non-negative, not
    all zero, one per row; None stays None."""
    if sample_weight is None:
        return None
    weights = as_matrix(sample_weight, dtype, "sample_weight", allow_vector=True)
    if weights.shape != (n, 1):
        raise ValueError(f"sample_weight must have one weight per row of X ({n}), "
                         f"got shape {np.shape(sample_weight)}")
    weights = weights.ravel()
    if weights.min() < 0:
        raise ValueError("sample_weight must be non-negative")
    if not weights.any():
        raise ValueError("sample_weight is all zeros: no row would count")
    return weights


def split_rows(arrays, fraction: float, rng, name: str) -> tuple:
    """Hold out ``fraction`` of the rows, drawn with ``rng``: returns (kept,
    held out), each a tuple of C-contiguous arrays matching ``arrays`` (None
    entries stay None)."""
    n = arrays[0].shape[0]
    n_out = int(round(fraction * n))
    if n_out < 1 or n_out >= n:
        raise ValueError(f"{name}={fraction} leaves {n_out} of {n} rows for validation: "
                         "at least one row must go to each side")
    held_out = np.zeros(n, bool)
    held_out[rng.choice(n, n_out, replace=False)] = True
    pick = lambda mask: tuple(None if a is None else a[mask] if isinstance(a, CsrRows)
                              else np.ascontiguousarray(a[mask]) for a in arrays)
    return pick(~held_out), pick(held_out)
