# Python-callable twins. They trust the Python layer for shapes and codes.

#: whether train_rows can use threads of its own on this platform
HAVE_THREADS = bool(FBP_HAVE_THREADS)
#: most threads of fastbp's own in one call
MAX_THREADS = FBP_MAX_THREADS


def set_blas_min_flops(Py_ssize_t flops):
    """Set the multiply-add count from which gemm goes to BLAS; return the old.

    Tests use it to run both the loop and the BLAS paths on small shapes.
    """
    global BLAS_MIN_FLOPS
    old = BLAS_MIN_FLOPS
    BLAS_MIN_FLOPS = flops
    return old


def set_column_split(Py_ssize_t min_bytes, Py_ssize_t block, Py_ssize_t max_rows=-1):
    """Set when fastbp's training threads split a layer's columns instead of
    its rows: W over ``min_bytes`` bytes, or shares of ``max_rows`` rows of a
    batch or fewer (-1: unchanged), in shares of ``block`` columns. Returns
    the old triple.

    Tests use it to run the column split on small networks, or the row split
    on small batches.
    """
    global COLUMN_SPLIT_MIN_BYTES, COLUMN_BLOCK, COLUMN_SPLIT_MAX_ROWS
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    old = (COLUMN_SPLIT_MIN_BYTES, COLUMN_BLOCK, COLUMN_SPLIT_MAX_ROWS)
    COLUMN_SPLIT_MIN_BYTES = min_bytes
    COLUMN_BLOCK = block
    if max_rows >= 0:
        COLUMN_SPLIT_MAX_ROWS = max_rows
    return old


def column_split_plan(const int[::1] sizes, Py_ssize_t batch_size, int n_threads,
                      int itemsize, bint dense=True):
    """(forward, backward): for each layer, whether fastbp's training threads
    split its forward product, and the product sending delta back through
    its W, by columns (else by rows) at ``batch_size`` on ``n_threads``."""
    cdef int l, n_layers = <int>sizes.shape[0] - 1
    cdef bint forward[64]
    cdef bint backward[64]
    if not 1 <= n_layers <= 63 or n_threads < 1 or batch_size < 1:
        raise ValueError("sizes must have 2 to 64 entries, n_threads and batch_size be >= 1")
    _column_split_plan(&sizes[0], n_layers, batch_size, n_threads, itemsize, dense, forward,
                       backward)
    return ([bool(forward[l]) for l in range(n_layers)],
            [bool(backward[l]) for l in range(n_layers)])


def set_tiled_gemm(bint on):
    """Switch the register-tiled products (csrc/fastbp_gemm.h) on or off;
    return whether they are in use, which needs a CPU with AVX-512.

    Off, BLAS computes every product. Tests use it to run both paths.
    """
    return bool(fbp_gemm_enable(on))


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


def tiled_gemm_in_use():
    """Whether the register-tiled products run (a CPU with AVX-512, not
    switched off by set_tiled_gemm or FASTBP_TILED_GEMM=0)."""
    return bool(fbp_gemm_available())


def workspace_size(const int[::1] sizes, Py_ssize_t rows, int n_threads=1):
    """Number of scalars of workspace for ``rows`` rows of a network, trained
    on ``n_threads`` threads."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t size = _workspace_size(&sizes[0], n_layers, rows)
    if n_threads > 1:
        size = max(size, _threaded_workspace_size(&sizes[0], n_layers, rows))
    return size


def pass_workspace_size(const int[::1] sizes, Py_ssize_t rows):
    """Number of scalars network_loss and weighted_loss_gradient need for
    ``rows`` rows: z_1..z_L, a_out and two deltas, without the training
    loop's gathered batch (rows x sizes[0], which for a wide sparse X would
    dwarf the rest)."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t z_offsets[64]
    return (_z_offsets(&sizes[0], n_layers, rows, z_offsets) + rows * sizes[n_layers]
            + 2 * rows * _max_width(&sizes[0], n_layers))


def dense_forward(const floating[:, ::1] z_prev, const floating[:, ::1] W,
                  const floating[::1] b, floating[:, ::1] a):
    """a = z_prev . W + b (pre-activation of one layer)."""
    cdef Py_ssize_t r, m = z_prev.shape[0], n_out = W.shape[1]
    with nogil:
        for r in range(m):
            memcpy(&a[r, 0], &b[0], n_out * sizeof(floating))
        gemm_nn(<int>m, <int>n_out, <int>W.shape[0], &z_prev[0, 0], &W[0, 0],
                &a[0, 0])


def activate(const floating[:, ::1] a, floating[:, ::1] z, int kind):
    """z = f(a) for the activation code ``kind``."""
    with nogil:
        activate_rows(&a[0, 0], &z[0, 0], a.shape[0], a.shape[1], kind)


def activation_derivative(const floating[:, ::1] z, floating[:, ::1] out,
                          int kind):
    """out = f'(a), written through the outputs z = f(a)."""
    cdef Py_ssize_t i, size = z.shape[0] * z.shape[1]
    with nogil:
        for i in range(size):
            (&out[0, 0])[i] = 1
        multiply_derivative(&z[0, 0], &out[0, 0], size, kind)


def loss_output_delta(const floating[:, ::1] a_out, const floating[:, ::1] z_out,
                      const floating[:, ::1] T, floating[:, ::1] delta,
                      int loss, int kind):
    """Write delta_out = dJ/da_out and return the data term of J."""
    cdef double J
    with nogil:
        J = output_delta(&a_out[0, 0], &z_out[0, 0], &T[0, 0], &delta[0, 0],
                         a_out.shape[0], a_out.shape[1], loss, kind, NULL,
                         <double>a_out.shape[0])
    return J


def backprop_delta(const floating[:, ::1] delta_next,
                   const floating[:, ::1] W_next, const floating[:, ::1] z,
                   int kind, floating[:, ::1] delta):
    """delta = (delta_next . W_next^T) * f'(a), f' taken from z = f(a)."""
    cdef Py_ssize_t m = delta_next.shape[0], n = W_next.shape[0]
    with nogil:
        memset(&delta[0, 0], 0, m * n * sizeof(floating))
        gemm_nt(<int>m, <int>n, <int>W_next.shape[1], &delta_next[0, 0],
                &W_next[0, 0], &delta[0, 0])
        multiply_derivative(&z[0, 0], &delta[0, 0], m * n, kind)


def layer_gradients(const floating[:, ::1] z_prev, const floating[:, ::1] delta,
                    const floating[:, ::1] W, double l2_over_m,
                    floating[:, ::1] dW, floating[::1] db):
    """dW = z_prev^T . delta + (l2/m) W and db = column sums of delta."""
    cdef Py_ssize_t i, r, j, n_in = W.shape[0], n_out = W.shape[1]
    cdef Py_ssize_t m = delta.shape[0]
    with nogil:
        for i in range(n_in * n_out):
            (&dW[0, 0])[i] = <floating>(l2_over_m * (&W[0, 0])[i])
        gemm_tn(<int>n_in, <int>n_out, <int>m, 1, &z_prev[0, 0], &delta[0, 0],
                &dW[0, 0])
        for j in range(n_out):
            db[j] = 0
        for r in range(m):
            for j in range(n_out):
                db[j] += delta[r, j]


def sgd_update(floating[::1] params, const floating[::1] grad,
               floating[::1] velocity, double lr, double momentum,
               bint nesterov):
    """One SGD step on a flat parameter vector (velocity updated in place)."""
    with nogil:
        sgd_step(&params[0], &grad[0], &velocity[0], params.shape[0], lr,
                 momentum, nesterov)


cdef inline object _np_dtype(const floating* tag):
    return np.float64 if floating is double else np.float32


def network_predict(X, const floating[::1] params,
                    const int[::1] sizes, const int[::1] acts,
                    work, floating[:, ::1] out):
    """out = network output for X (dense rows or CSR rows, see input_rows);
    work holds predict_workspace_share(sizes, X.shape[0], 1) scalars or more,
    or is None to have one allocated here (a one-row call saves ~1 µs of
    Python)."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef fbp_input x
    cdef Py_ssize_t l, m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x), z_off = 0
    cdef unsigned int saved_csr
    cdef Py_ssize_t needed = _predict_forward_share(&sizes[0], n_layers, m, 1)
    cdef floating[::1] work_view
    if work is None:
        work = np.empty(max(1, needed), _np_dtype(&params[0]))
    work_view = work
    if work_view.shape[0] < needed:
        raise ValueError("work is smaller than predict_workspace_share(sizes, rows, 1)")
    cdef fbp_network net = _network(&sizes[0], &acts[0], n_layers, 0, 0.0, &params[0], NULL,
                                    &work_view[0])
    if out.shape[0] != m or out.shape[1] != sizes[n_layers]:
        raise ValueError("out must have X's rows and the network's outputs")
    if m == 0:
        return
    for l in range(1, n_layers):
        z_off += m * sizes[l]
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work_view[0])
        memcpy(&out[0, 0], &work_view[z_off], m * sizes[n_layers] * sizeof(floating))
        fbp_denormals_restore(saved_csr)


cdef Py_ssize_t _predict_forward_share(const int* sizes, int n_layers, Py_ssize_t rows,
                                       int n_threads) noexcept:
    # z_1..z_L and a_out for a thread's even share, in whole 64-byte lines
    cdef Py_ssize_t share = (rows + n_threads - 1) // n_threads
    cdef Py_ssize_t z_offsets[64]
    cdef Py_ssize_t size = _z_offsets(sizes, n_layers, share, z_offsets)
    return (size + share * sizes[n_layers] + 15) // 16 * 16


cdef Py_ssize_t _predict_share(const int* sizes, int n_layers, Py_ssize_t rows,
                               int n_threads, bint convert) noexcept:
    cdef Py_ssize_t l, n_params = 0
    cdef Py_ssize_t share = _predict_forward_share(sizes, n_layers, rows, n_threads)
    if convert:  # and a block of converted rows of X
        for l in range(n_layers):
            n_params += (<Py_ssize_t>sizes[l] + 1) * sizes[l + 1]
        share += (_predict_block_rows(n_params, rows, n_threads) * sizes[0] + 15) // 16 * 16
    return share


def predict_workspace_share(const int[::1] sizes, Py_ssize_t rows, int n_threads,
                            bint convert=False):
    """Scalars of workspace per thread for network_predict_threads (or, with
    one thread, network_predict) on ``rows`` rows: the forward pass's z_1..z_L
    and a_out for the thread's share, and with ``convert`` a block of X's rows
    converted to the network's dtype, rounded up to 64 bytes so that the
    threads' workspaces share no cache line."""
    return _predict_share(&sizes[0], <int>sizes.shape[0] - 1, rows, n_threads, convert)


# The rows of a block that predict's threads claim: at least PREDICT_BLOCK_ROWS
# (the tiles copy each panel of W once per block of up to 192 rows; 64-row
# blocks would spend a fifth of the time copying) and at least
# PREDICT_BLOCK_FLOPS of work, so that a claim and the block's BLAS calls
# stay small on small networks.
cdef Py_ssize_t PREDICT_BLOCK_ROWS = 256
cdef double PREDICT_BLOCK_FLOPS = 4e6


cdef Py_ssize_t _predict_block_rows(Py_ssize_t n_params, Py_ssize_t m,
                                    int n_threads) noexcept:
    # at most the even share that sized the workspaces; one thread takes all
    # m rows at once: network_predict's one pass, and its bits
    cdef Py_ssize_t rows = max(PREDICT_BLOCK_ROWS,
                               <Py_ssize_t>(PREDICT_BLOCK_FLOPS / (2.0 * n_params)) + 1)
    if n_threads == 1:
        return m
    return min(rows, (m + n_threads - 1) // n_threads)


cdef bint _set_converted_source(PredictJob* job, object X, Py_ssize_t n_in) except -1:
    """Point job.source at X when the threads can convert its rows: a 2-D,
    aligned, native-order float32 or float64 array of n_in columns, in
    another dtype or layout than the network's. False for anything else."""
    if not (isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == n_in
            and X.dtype in (np.float64, np.float32) and X.dtype.isnative
            and X.flags.aligned):
        return False
    job.source = <const char*>cnp.PyArray_DATA(X)
    job.source_double = X.dtype == np.float64
    job.source_row_stride = X.strides[0]
    job.source_col_stride = X.strides[1]
    return True


def network_predict_threads(X, const floating[::1] params,
                            const int[::1] sizes, const int[::1] acts,
                            floating[::1] work, floating[:, ::1] out, int n_threads,
                            bint check_finite=False):
    """network_predict with the rows split over ``n_threads`` threads of its
    own; ``work`` holds ``n_threads * predict_workspace_share(...)`` scalars.
    Returns the threads that ran (1 when they could not be started). With
    ``check_finite``, each thread checks its blocks of a dense X through
    their first layer's pre-activation (_forward_pass_finite_x), not in a
    pass of its own; then -1 means X holds a NaN or infinity and ``out`` is
    incomplete.

    X may also be a float32 or float64 array of another dtype or layout than
    the network's (Fortran order, a strided view; aligned, native byte
    order): each thread then converts its blocks as it claims them, and
    ``work`` holds ``n_threads * predict_workspace_share(..., convert=True)``
    scalars. The outputs are the bits of the converted X's."""
    cdef PredictJob job
    cdef int i, status = 0
    cdef unsigned int saved_csr
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t m
    cdef bint convert = False
    job.source = NULL
    if isinstance(X, np.ndarray) and not (X.dtype == _np_dtype(&params[0])
                                          and X.flags.c_contiguous and X.flags.aligned):
        convert = _set_converted_source(&job, X, sizes[0])
    if convert:
        m = X.shape[0]
    else:
        m = input_rows(X, sizes[0], _np_dtype(&params[0]), &job.x)
    if not 1 <= n_threads <= FBP_MAX_THREADS:
        raise ValueError(f"n_threads must be in [1, {FBP_MAX_THREADS}], got {n_threads}")
    job.work_per_thread = _predict_share(&sizes[0], n_layers, m, n_threads, convert)
    job.rows_offset = _predict_forward_share(&sizes[0], n_layers, m, n_threads)
    if work.shape[0] < n_threads * job.work_per_thread:
        raise ValueError("work is too small for n_threads workspaces")
    if out.shape[0] != m or out.shape[1] != sizes[n_layers]:
        raise ValueError("out must have X's rows and the network's outputs")
    if m == 0:
        return 1
    job.sizes = &sizes[0]
    job.acts = &acts[0]
    job.n_layers = n_layers
    job.params = &params[0]
    job.out = &out[0, 0]
    job.work = &work[0]
    job.m = m
    job.n_threads = n_threads
    job.next_row = 0
    job.check_finite = check_finite
    job.nonfinite = 0
    # blocks of 256 rows (more on small networks, for PREDICT_BLOCK_FLOPS)
    job.block_rows = _predict_block_rows(params.shape[0], m, n_threads)
    with nogil:
        saved_csr = fbp_denormals_off()  # the threads inherit the mode
        if n_threads > 1:
            status = fbp_run_threads(n_threads, _predict_part_d if floating is double
                                     else _predict_part_f, &job)
        if n_threads == 1 or status != 0:  # one thread runs every share in turn
            for i in range(n_threads):
                if floating is double:
                    _predict_part_d(&job, i)
                else:
                    _predict_part_f(&job, i)
        fbp_denormals_restore(saved_csr)
    if job.nonfinite:
        return -1
    return n_threads if status == 0 else 1


def network_loss(X, const floating[:, ::1] T,
                 const floating[::1] params, const int[::1] sizes,
                 const int[::1] acts, int loss, double l2,
                 floating[::1] work, floating[::1] grad):
    """Return J for (X, T) and write dJ/dparams into grad; X is dense rows
    or CSR rows (see input_rows)."""
    cdef double J, penalty
    cdef unsigned int saved_csr
    cdef fbp_input x
    cdef Py_ssize_t m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x)
    cdef fbp_network net = _network(&sizes[0], &acts[0], <int>sizes.shape[0] - 1, loss, l2,
                                    &params[0], &grad[0], &work[0])
    if T.shape[0] != m:
        raise ValueError(f"X has {m} rows but T has {T.shape[0]}")
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work[0])
        J = backward_pass(&net, &x, &T[0, 0], m, <const floating*>NULL, <double>m, &penalty)
        fbp_denormals_restore(saved_csr)
    return J + penalty


def weighted_loss_gradient(X, const floating[:, ::1] T,
                           const floating[::1] sample_weight,
                           const floating[::1] params, const int[::1] sizes,
                           const int[::1] acts, int loss, double l2,
                           floating[::1] work, floating[::1] grad):
    """Return (data term, L2 term) of J with row weights; write dJ/dparams.

    X is dense rows or CSR rows (see input_rows). An empty ``sample_weight``
    means all rows weigh 1.
    """
    cdef double J, penalty, sw_sum = 0
    cdef fbp_input x
    cdef unsigned int saved_csr
    cdef Py_ssize_t r, m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x)
    cdef const floating* sw = NULL
    cdef fbp_network net = _network(&sizes[0], &acts[0], <int>sizes.shape[0] - 1, loss, l2,
                                    &params[0], &grad[0], &work[0])
    if sample_weight.shape[0] > 0:
        sw = &sample_weight[0]
        for r in range(sample_weight.shape[0]):
            sw_sum += sample_weight[r]
    else:
        sw_sum = m
    if T.shape[0] != m or 0 < sample_weight.shape[0] != m:
        raise ValueError(f"T or sample_weight do not have X's {m} rows")
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work[0])
        J = backward_pass(&net, &x, &T[0, 0], m, sw, sw_sum, &penalty)
        fbp_denormals_restore(saved_csr)
    return J, penalty


def train_rows(const floating[:, ::1] X, const floating[:, ::1] T,
               const floating[::1] sample_weight, const Py_ssize_t[::1] order,
               Py_ssize_t start, Py_ssize_t stop, Py_ssize_t batch_size,
               floating[::1] params, floating[::1] grad, floating[::1] state1,
               floating[::1] state2, const int[::1] sizes, const int[::1] acts,
               int loss, double l2, int optimizer, double lr, double momentum,
               bint nesterov, double beta2, double epsilon,
               Py_ssize_t step_count, floating[::1] work, int n_threads=1):
    """Train on positions [start, stop) of ``order`` without the GIL: a
    :class:`Trainer` built for one call, on the caller's buffers.

    With start=0, stop=n it trains a whole epoch in one call. Takes sample
    weights (empty: none), and SGD (optimizer 0; state1 = velocity) or Adam
    (optimizer 1; state1, state2 = moments, momentum = beta1). Minibatches
    use ``n_threads`` threads of their own (at most FBP_MAX_THREADS);
    ``work`` then needs ``workspace_size(sizes, batch_size, n_threads)``
    elements.
    Returns ``(status, loss_sum, penalty_sum, rows_done, step_count)``.
    """
    cdef Trainer trainer = Trainer.__new__(Trainer)
    cdef Py_ssize_t n_params, needed
    trainer._setup(sizes, acts, &sizes[0], sizes.shape[0], &acts[0], acts.shape[0], loss, l2,
                   batch_size, n_threads)
    n_params = trainer.net.n_params
    needed = trainer._workspace_needed()
    # The caller's buffers go straight into the state, without the setters:
    # a Trainer per call must stay cheap next to a small epoch. So only the
    # sizes are checked here (the fused type fixed the dtype), and run checks
    # the range. This call's memoryviews keep the buffers alive: the Trainer
    # does not outlive it.
    if work.shape[0] < needed:
        raise ValueError(f"work has {work.shape[0]} elements; {trainer._n_threads} threads "
                         f"need workspace_size(sizes, batch_size, n_threads) = {needed}")
    if params.shape[0] != n_params or grad.shape[0] != n_params:
        raise ValueError(f"params and grad need {n_params} elements")
    if X.shape[1] != sizes[0] or T.shape[1] != sizes[sizes.shape[0] - 1] \
            or T.shape[0] != X.shape[0] or 0 < sample_weight.shape[0] != X.shape[0]:
        raise ValueError("X, T or sample_weight do not fit the network and each other")
    if optimizer != SGD and optimizer != ADAM:
        raise ValueError(f"unknown optimizer code {optimizer}")
    if ((optimizer == ADAM or momentum != 0) and state1.shape[0] != n_params
            or optimizer == ADAM and state2.shape[0] != n_params):
        raise ValueError(f"the optimizer's state needs {n_params} elements")
    trainer.dtype_code = _FLOAT64 if floating is double else _FLOAT32
    trainer.net.params = &params[0]
    trainer.net.grad = &grad[0]
    trainer.net.work = &work[0]
    trainer.data.X = &X[0, 0]
    trainer.data.X_values = NULL
    trainer.data.T = &T[0, 0]
    trainer.data.sample_weight = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    trainer.data.order = &order[0] if order.shape[0] > 0 else NULL
    trainer.data.n_positions = order.shape[0] if order.shape[0] > 0 else X.shape[0]
    trainer.has_data = True
    trainer.opt.kind = optimizer
    trainer.opt.lr = lr
    if optimizer == SGD:
        trainer.opt.momentum = momentum
        trainer.opt.nesterov = nesterov
        trainer.opt.velocity = &state1[0] if momentum != 0 else NULL
    else:
        trainer.opt.beta1 = momentum
        trainer.opt.beta2 = beta2
        trainer.opt.epsilon = epsilon
        trainer.opt.first_moment = &state1[0]
        trainer.opt.second_moment = &state2[0]
        trainer.opt.step_count = step_count
    trainer.has_optimizer = True
    status, loss_sum, penalty_sum, rows_done = trainer._run(start, stop)
    return (status, loss_sum, penalty_sum, rows_done,
            trainer.step_count if optimizer != SGD else step_count)
