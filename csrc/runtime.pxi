# What every later part takes from the C runtime headers: denormals off
# inside kernel calls, scans for NaN and infinity, threads and barriers;
# and the two production entry points built on them.

cdef extern from "fastbp_denormals.h" nogil:
    unsigned int fbp_denormals_off()
    void fbp_denormals_restore(unsigned int saved)


cdef extern from "fastbp_finite.h" nogil:
    Py_ssize_t fbp_first_nonfinite_f(const float* x, Py_ssize_t n)
    Py_ssize_t fbp_first_nonfinite_d(const double* x, Py_ssize_t n)


cdef extern from "fastbp_threads.h" nogil:
    ctypedef struct fbp_barrier:
        pass
    ctypedef void (*fbp_task)(void* job, int index) noexcept nogil
    void fbp_barrier_init(fbp_barrier* b, int n)
    void fbp_barrier_wait(fbp_barrier* b)
    Py_ssize_t fbp_claim(Py_ssize_t* counter, Py_ssize_t step)
    void fbp_raise_flag(int* flag)
    int fbp_run_threads(int n, fbp_task task, void* job)
    int fbp_current_cpu()
    void fbp_leave_cpu(int cpu)
    int FBP_MAX_THREADS
    int FBP_HAVE_THREADS


cdef extern from "fastbp_pool.h" nogil:
    int fbp_pool_run(int n, fbp_task task, void* job)


#: whether fastbp can start threads of its own on this platform
HAVE_THREADS = bool(FBP_HAVE_THREADS)
#: most threads of fastbp's own in one call
MAX_THREADS = FBP_MAX_THREADS


cdef inline Py_ssize_t _first_nonfinite(const floating* x, Py_ssize_t n) noexcept nogil:
    if floating is double:
        return fbp_first_nonfinite_d(x, n)
    else:
        return fbp_first_nonfinite_f(x, n)


def first_nonfinite(cnp.ndarray values not None):
    """Index of the first NaN or infinity in ``values`` (1-D, C-contiguous,
    native float32 or float64), or -1; allocates nothing (an isfinite mask
    would be a quarter of a float32 X's size). Takes the array itself, not a
    typed memoryview: acquiring one costs ~0.5 µs, and fit and predict check
    every X and Y with this."""
    cdef Py_ssize_t n, found = -1
    cdef int kind = cnp.PyArray_TYPE(values)
    cdef const void* data = cnp.PyArray_DATA(values)
    if (cnp.PyArray_NDIM(values) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(values)
            or not cnp.PyArray_ISNOTSWAPPED(values)
            or (kind != cnp.NPY_DOUBLE and kind != cnp.NPY_FLOAT)):
        raise TypeError(f"values must be a 1-D C-contiguous float32 or float64 array in "
                        f"native byte order, got {(<object>values).dtype} of shape "
                        f"{(<object>values).shape}")
    n = cnp.PyArray_DIM(values, 0)
    if n == 0:
        return -1
    with nogil:
        if kind == cnp.NPY_DOUBLE:
            found = fbp_first_nonfinite_d(<const double*>data, n)
        else:
            found = fbp_first_nonfinite_f(<const float*>data, n)
    return found


cdef inline bint plain_rows(object data, int type_num, Py_ssize_t n_columns) noexcept:
    """Whether ``data`` is a NumPy array (not a subclass) of ``type_num`` in
    native byte order, 2-D with ``n_columns`` columns, C-contiguous and
    aligned: what the kernels read where it lies. C macros, no attribute
    look-ups: each ``.flags`` read from Python costs a small fit ~0.3 µs."""
    cdef cnp.ndarray array
    if not cnp.PyArray_CheckExact(data):
        return False
    array = <cnp.ndarray>data
    return (cnp.PyArray_NDIM(array) == 2 and cnp.PyArray_TYPE(array) == type_num
            and cnp.PyArray_ISNOTSWAPPED(array) and cnp.PyArray_IS_C_CONTIGUOUS(array)
            and cnp.PyArray_ISALIGNED(array) and cnp.PyArray_DIM(array, 1) == n_columns)


cdef inline bint _any_nonfinite(const void* values, int type_num, Py_ssize_t n) noexcept nogil:
    if type_num == cnp.NPY_DOUBLE:
        return fbp_first_nonfinite_d(<const double*>values, n) >= 0
    return fbp_first_nonfinite_f(<const float*>values, n) >= 0


def ready_rows(X, Y, Py_ssize_t n_in, Py_ssize_t n_out, cnp.dtype dtype not None):
    """Whether X and Y go to the kernels as they are: NumPy arrays (not a
    subclass) of ``dtype`` (float32 or float64) in native byte order, 2-D,
    C-contiguous and aligned, of ``n_in`` and ``n_out`` columns and the same
    number of rows, at least one, and every value finite.

    fit's fast check of ready input (fastbp._inputs.check_XY); False sends
    X and Y through the general checks, which convert them or raise.
    """
    cdef int type_num = dtype.type_num
    cdef Py_ssize_t n
    cdef bint found
    cdef const void* x
    cdef const void* y
    if type_num != cnp.NPY_DOUBLE and type_num != cnp.NPY_FLOAT:
        return False
    if not (plain_rows(X, type_num, n_in) and plain_rows(Y, type_num, n_out)):
        return False
    n = cnp.PyArray_DIM(<cnp.ndarray>X, 0)
    if n < 1 or cnp.PyArray_DIM(<cnp.ndarray>Y, 0) != n:
        return False
    x = cnp.PyArray_DATA(<cnp.ndarray>X)
    y = cnp.PyArray_DATA(<cnp.ndarray>Y)
    if n * (n_in + n_out) <= 65536:  # the GIL's release would cost more than the scan
        return not (_any_nonfinite(x, type_num, n * n_in)
                    or _any_nonfinite(y, type_num, n * n_out))
    with nogil:
        found = (_any_nonfinite(x, type_num, n * n_in)
                 or _any_nonfinite(y, type_num, n * n_out))
    return not found
