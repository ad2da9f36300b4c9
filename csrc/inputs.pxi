# The first layer's input rows (fbp_input, csrc/fastbp_state.h): dense rows
# go to the dense products; CSR rows are multiplied where they lie, so a
# sparse X is never densified, whole or by batch.

cdef inline fbp_input dense_input(const void* X) noexcept nogil:
    """Dense rows from X on."""
    cdef fbp_input x
    x.dense = X
    x.values = NULL
    x.indices = NULL
    x.indptr = NULL
    x.order = NULL
    x.first = 0
    return x


cdef inline fbp_input input_rows_from(const fbp_input* x, Py_ssize_t r0, Py_ssize_t n_in,
                                      floating* dtype_tag) noexcept nogil:
    """The rows of ``x`` from row r0 on."""
    cdef fbp_input part = x[0]
    if x.dense != NULL:
        part.dense = <const floating*>x.dense + r0 * n_in
    else:
        part.first = x.first + r0
    return part


cdef inline Py_ssize_t _csr_row(const fbp_input* x, Py_ssize_t r) noexcept nogil:
    return x.order[x.first + r] if x.order != NULL else x.first + r


cdef void input_gemm_nn(const fbp_input* x, int rows, int n_out, int n_in,
                        const floating* W, floating* C) noexcept nogil:
    """C += x . W for ``rows`` rows of x (n_in columns); W is n_in x n_out."""
    cdef Py_ssize_t r, k, j, row
    cdef const floating* values = <const floating*>x.values
    cdef const floating* w_row
    cdef floating* c_row
    cdef floating v
    if x.dense != NULL:
        gemm_nn(rows, n_out, n_in, <const floating*>x.dense, W, C)
        return
    for r in range(rows):
        row = _csr_row(x, r)
        c_row = C + r * n_out
        for k in range(x.indptr[row], x.indptr[row + 1]):
            # c_row += v * W[column, :], an axpy over a contiguous row of W
            v = values[k]
            w_row = W + <Py_ssize_t>x.indices[k] * n_out
            for j in range(n_out):
                c_row[j] += v * w_row[j]


cdef void input_gemm_tn(const fbp_input* x, Py_ssize_t i0, Py_ssize_t i1, int n_out,
                        int n_in, int m, floating alpha, const floating* delta,
                        floating* C) noexcept nogil:
    """Rows [i0, i1) of C (n_in x n_out) += alpha x^T . delta over the m rows
    of x; delta is m x n_out. Sparse rows scatter each value's delta row
    into the row of C its column names."""
    cdef Py_ssize_t r, k, j, row, column
    cdef const floating* values = <const floating*>x.values
    cdef const floating* d_row
    cdef floating* c_row
    cdef floating v
    if i1 <= i0:
        return
    if x.dense != NULL:
        gemm_tn_ld(<int>(i1 - i0), n_out, m, alpha, <const floating*>x.dense + i0, n_in,
                   delta, C + i0 * n_out)
        return
    for r in range(m):
        row = _csr_row(x, r)
        d_row = delta + r * n_out
        for k in range(x.indptr[row], x.indptr[row + 1]):
            column = x.indices[k]
            if column < i0 or column >= i1:
                continue
            v = alpha * values[k]
            c_row = C + column * n_out
            for j in range(n_out):
                c_row[j] += v * d_row[j]


cdef void input_gradient_marked(const fbp_input* x, Py_ssize_t i0, Py_ssize_t i1, int n_out,
                                int m, const floating* delta, floating* dW,
                                unsigned char* marks) noexcept nogil:
    """dW = x^T . delta on the rows [i0, i1) of dW that sparse x's non-zeros
    reach, each zeroed and marked in ``marks`` when first reached; the other
    rows are left as they are (optimizer_marked_rows_step reads only marked rows)."""
    cdef Py_ssize_t r, k, j, row, column
    cdef const floating* values = <const floating*>x.values
    cdef const floating* d_row
    cdef floating* c_row
    cdef floating v
    for r in range(m):
        row = _csr_row(x, r)
        d_row = delta + r * n_out
        for k in range(x.indptr[row], x.indptr[row + 1]):
            column = x.indices[k]
            if column < i0 or column >= i1:
                continue
            c_row = dW + column * n_out
            if not marks[column]:
                marks[column] = 1
                memset(c_row, 0, n_out * sizeof(floating))
            v = values[k]
            for j in range(n_out):
                c_row[j] += v * d_row[j]


cdef Py_ssize_t input_rows(object X, Py_ssize_t n_in, object dtype, fbp_input* x) except -1:
    """Point ``x`` at the rows of X and return their count, after every check
    the kernels need: X is a C-contiguous, aligned 2-D ndarray of ``dtype``,
    or CSR rows (an object with ``values`` of ``dtype``, ``indices`` int32,
    ``indptr`` int64, all 1-D and C-contiguous, and ``shape``, as
    fastbp._sparse.CsrRows holds them). The caller keeps X alive."""
    cdef Py_ssize_t n_rows
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise TypeError(f"X must be a 2-D NumPy array, got {_describe(X)}")
        if X.dtype != dtype:
            raise TypeError(f"X is {X.dtype} but params are {np.dtype(dtype)}")
        if not (X.flags.c_contiguous and X.flags.aligned):
            raise ValueError("X must be C-contiguous and aligned")
        if X.shape[1] != n_in:
            raise ValueError(f"X has {X.shape[1]} columns; the network takes {n_in} inputs")
        x[0] = dense_input(cnp.PyArray_DATA(X))
        return X.shape[0]
    if not hasattr(X, "indptr"):
        raise TypeError(f"X must be a NumPy array or CSR rows, got {_describe(X)}")
    values, indices, indptr = X.values, X.indices, X.indptr
    for name, array, kind in (("values", values, dtype), ("indices", indices, np.int32),
                              ("indptr", indptr, np.int64)):
        if (not isinstance(array, np.ndarray) or array.ndim != 1 or array.dtype != kind
                or not (array.flags.c_contiguous and array.flags.aligned)):
            raise TypeError(f"X's {name} must be a C-contiguous 1-D {np.dtype(kind)} array, "
                            f"got {_describe(array)}")
    if indices.shape[0] != values.shape[0] or indptr.shape[0] < 1:
        raise ValueError("X's values and indices differ in length, or indptr is empty")
    if X.shape[1] != n_in:
        raise ValueError(f"X has {X.shape[1]} columns; the network takes {n_in} inputs")
    n_rows = indptr.shape[0] - 1
    if X.shape[0] != n_rows:
        raise ValueError(f"X's shape says {X.shape[0]} rows, its indptr {n_rows}")
    x.dense = NULL
    x.values = cnp.PyArray_DATA(values)
    x.indices = <const int32_t*>cnp.PyArray_DATA(indices)
    x.indptr = <const int64_t*>cnp.PyArray_DATA(indptr)
    x.order = NULL
    x.first = 0
    _check_csr(x, n_rows, values.shape[0], n_in)
    return n_rows


cdef int _check_csr(const fbp_input* x, Py_ssize_t n_rows, Py_ssize_t n_values,
                    Py_ssize_t n_in) except -1:
    # the products index W and values with these: one pass over the rows'
    # entries, far cheaper than the products themselves
    cdef Py_ssize_t r, k, bad = -1
    cdef const int64_t* indptr = x.indptr
    with nogil:
        if indptr[0] < 0 or indptr[n_rows] > n_values:
            bad = -2
        else:
            for r in range(n_rows):
                if indptr[r + 1] < indptr[r]:
                    bad = -3
                    break
            if bad == -1:
                for k in range(indptr[0], indptr[n_rows]):
                    if x.indices[k] < 0 or x.indices[k] >= n_in:
                        bad = k
                        break
    if bad == -2:
        raise ValueError(f"X's indptr points outside its {n_values} values")
    if bad == -3:
        raise ValueError("X's indptr decreases")
    if bad >= 0:
        raise ValueError(f"X's indices hold column {x.indices[bad]} outside [0, {n_in})")
    return 0


cdef inline object _np_dtype(const floating* tag):
    return np.float64 if floating is double else np.float32


cdef str _describe(obj):
    if isinstance(obj, np.ndarray):
        return f"a {obj.ndim}-D {obj.dtype} array"
    return type(obj).__name__
