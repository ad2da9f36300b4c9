# Prediction: the forward pass over X's rows, on one thread or on threads of
# its own that claim blocks of rows (and convert other float layouts), run by
# Predictor, which owns a network's description.

@cython.auto_pickle(False)  # raw pointers: a Predictor is not picklable
cdef class Predictor:
    """A network's compiled description for prediction: its layer specs
    (widths, activation codes, offsets into the parameters) and its
    parameters, referenced, not copied.

    Built once per architecture and parameter array (fastbp.Network keeps
    one), then ``predict`` runs without re-reading the description.

    Parameters
    ----------
    sizes : ndarray of np.intc, shape (n_layers + 1,)
        Layer widths, input first, each >= 1; C-contiguous.
    acts : ndarray of np.intc, shape (n_layers,)
        Activation codes (:class:`Activation`) of the layers after the input.
    params : ndarray of float32 or float64, shape (n_params,)
        The flat vector [W_0, b_0, W_1, b_1, ...], C-contiguous and aligned;
        its values are read at each ``predict``.
    compute : {"float32", "bfloat16"}, default="float32"
        "bfloat16" (float32 params only): the products take their operands
        rounded to bfloat16 and sum in float32 (csrc/predict_bf16.pxi); W's
        rounded forms are made once per parameter values, and again at a
        predict that finds the values changed (see ``params_fixed``).

    Attributes
    ----------
    params_fixed : bool, default=False
        Set by a caller that guarantees params' values no longer change
        while it is True (fastbp.Network: until it hands out writable views
        of them, :meth:`fastbp.Network.layer_params`). compute="bfloat16"
        then trusts the forms it made (after the flag was set) without
        comparing params with their copy, and calls of fewer than 8 rows use
        W's packs too (the same bits as rounding W as they read it).
    spare_work : ndarray or None
        A workspace a caller keeps here between calls (Network.predict's
        chunks: it takes it, and puts it back after).

    Examples
    --------
    >>> model = Predictor(sizes, acts, params)          # doctest: +SKIP
    >>> threads = model.predict(X, out, n_threads=2)    # doctest: +SKIP
    """
    cdef fbp_layer *layers  # on the heap, as the Trainer's
    cdef int n_layers
    cdef readonly object sizes, acts, params
    cdef readonly str compute
    cdef Bf16Predict bf16  # compute="bfloat16": its forms and workspace
    cdef public object spare_work

    def __init__(self, sizes, acts, params, compute="float32"):
        sizes = _int_codes(sizes, "sizes")
        acts = _int_codes(acts, "acts")
        _check_layers(<const int*>_data(sizes), sizes.shape[0], <const int*>_data(acts),
                      acts.shape[0])
        if not isinstance(params, np.ndarray) or params.ndim != 1:
            raise TypeError(f"params must be a 1-D NumPy array, got {_describe(params)}")
        if params.dtype != np.float64 and params.dtype != np.float32:
            raise TypeError(f"params must be float32 or float64, got {params.dtype}")
        if not (params.flags.c_contiguous and params.flags.aligned):
            raise ValueError("params must be C-contiguous and aligned")
        if compute not in ("float32", "bfloat16"):
            raise ValueError(f'compute must be "float32" or "bfloat16", got {compute!r}')
        if compute == "bfloat16" and params.dtype != np.float32:
            raise ValueError(f'compute="bfloat16" needs float32 params, got {params.dtype}')
        sizes.flags.writeable = acts.flags.writeable = False
        self.n_layers = <int>acts.shape[0]
        PyMem_Free(self.layers)  # a second __init__ replaces the first's
        self.layers = <fbp_layer*>PyMem_Malloc(self.n_layers * sizeof(fbp_layer))
        if self.layers == NULL:
            raise MemoryError()
        # predict never takes f': no layer keeps its a (the workspace is _z_width's)
        n_params = fbp_layers_init(self.layers, <const int*>_data(sizes),
                                   <const int*>_data(acts), self.n_layers, 0)
        if params.shape[0] != n_params:
            raise ValueError(f"params has {params.shape[0]} elements; sizes "
                             f"{sizes.tolist()} need {n_params}")
        self.sizes, self.acts, self.params = sizes, acts, params
        self.compute = compute
        self.bf16 = Bf16Predict() if compute == "bfloat16" else None

    def __dealloc__(self):
        PyMem_Free(self.layers)

    @property
    def params_fixed(self):
        return self.bf16 is not None and self.bf16.fixed

    @params_fixed.setter
    def params_fixed(self, value):
        if self.bf16 is not None:
            self.bf16.fixed = bool(value)
            if value:
                self.bf16.forms = None  # made before: not trusted

    def predict(self, X, out, work=None, int n_threads=1, bint check_finite=False):
        """out = the network's outputs for the rows of X.

        Parameters
        ----------
        X : ndarray of shape (m, sizes[0]), or CSR rows
            Dense rows in the params' dtype, C-contiguous (see input_rows),
            or CSR rows; or a float32 or float64 array of another dtype or
            layout (Fortran order, a strided view; aligned, native byte
            order), which the threads convert a block at a time: the outputs
            are then the bits of the converted X's. compute="bfloat16"
            converts such an X to C-contiguous float32 first.
        out : ndarray of shape (m, sizes[-1]), the params' dtype
            C-contiguous; written.
        work : ndarray of the params' dtype, or None
            ``n_threads * predict_workspace_share(sizes, m, n_threads,
            convert)`` scalars or more; None: allocated here. Must be None
            with compute="bfloat16", which keeps a workspace of its own.
        n_threads : int, default=1
            Threads of its own, which claim blocks of rows (1 on a ready X
            without ``check_finite``, or with it on a small one, scanned
            first: one pass over all rows on this thread).
        check_finite : bool, default=False
            Each thread checks its blocks of a dense X through their first
            layer's pre-activation (_forward_pass_finite_x), not in a pass
            of its own.

        Returns
        -------
        int
            The threads that ran (1 when they could not be started), or -1
            when ``check_finite`` found a NaN or infinity in X (``out`` is
            then incomplete).
        """
        if self.bf16 is not None:
            if work is not None:
                raise ValueError('work must be None with compute="bfloat16"')
            return self.bf16.run(self.layers, self.n_layers, <const int*>_data(self.sizes),
                                 self.params, X, out, n_threads, check_finite)
        if self.params.dtype == np.float64:
            return _predict[double](self, X, self.params, work, out, n_threads, check_finite)
        return _predict[float](self, X, self.params, work, out, n_threads, check_finite)


def on_cache_lines(cnp.ndarray params):
    """``params`` if its data starts on a 64-byte boundary, else a copy that
    does (aligned_empty). Network keeps its parameters so: a one-row predict
    of 784-256-128-10, bound by reading W, took 1.5x as long when W was 16
    bytes off a line and each 64-byte load of it straddled two."""
    if (<size_t>cnp.PyArray_DATA(params) & 63) == 0:
        return params
    aligned = aligned_empty(params.size, params.dtype)
    aligned[...] = params
    return aligned


cdef int _predict(Predictor model, X, const floating[::1] params, work, floating[:, ::1] out,
                  int n_threads, bint check_finite) except -2:
    # Predictor.predict for one dtype: the one pass, or the threads (which
    # alone convert another float layout and check X)
    cdef PredictJob job
    job.source = NULL
    cdef bint convert = False
    if isinstance(X, np.ndarray) and not (X.dtype == _np_dtype(&params[0])
                                          and X.flags.c_contiguous and X.flags.aligned):
        convert = _set_converted_source(&job, X, model.layers[0].n_in)
    if n_threads == 1 and not convert and not (check_finite and not _scan_first(X, params)):
        if check_finite and _first_nonfinite(<const floating*>cnp.PyArray_DATA(<cnp.ndarray>X),
                                             <Py_ssize_t>X.size) >= 0:
            return -1
        _predict_one_pass(model, X, params, work, out)
        return 1
    return _predict_threads(model, &job, convert, X, params, work, out, n_threads,
                            check_finite)


cdef inline bint _scan_first(X, const floating[::1] params):
    # check_finite on one thread: a small dense X (a one-row call) is
    # scanned before the one pass (same bits as the threads' pass over all
    # its rows, which checks through z_1 and costs a workspace and a job)
    return (isinstance(X, np.ndarray) and X.ndim == 2
            and X.shape[0] * X.shape[1] <= PREDICT_SCAN_MAX
            and X.dtype == _np_dtype(&params[0]) and X.flags.c_contiguous and X.flags.aligned)


cdef Py_ssize_t PREDICT_SCAN_MAX = 65536


cdef _predict_one_pass(Predictor model, X, const floating[::1] params, work,
                       floating[:, ::1] out):
    """All of X's rows in one forward pass on this thread; with ``work``
    None, a workspace is allocated here (a one-row call saves ~1 µs of
    Python)."""
    cdef const int* sizes = <const int*>_data(model.sizes)
    cdef int n_layers = model.n_layers
    cdef fbp_input x
    cdef Py_ssize_t m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x)
    cdef unsigned int saved_csr
    cdef Py_ssize_t needed = _predict_forward_share(sizes, n_layers, m, 1)
    cdef floating[::1] work_view
    if work is None:
        work = np.empty(max(1, needed), _np_dtype(&params[0]))
    work_view = work
    if work_view.shape[0] < needed:
        raise ValueError("work is smaller than predict_workspace_share(sizes, rows, 1)")
    cdef fbp_network net = _network(sizes, model.layers, n_layers, 0, 0.0, &params[0], NULL,
                                    &work_view[0])
    if out.shape[0] != m or out.shape[1] != sizes[n_layers]:
        raise ValueError("out must have X's rows and the network's outputs")
    if m == 0:
        return
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work_view[0])
        memcpy(&out[0, 0], _layer_z(&net, &work_view[0], n_layers - 1, m),
               m * sizes[n_layers] * sizeof(floating))
        fbp_denormals_restore(saved_csr)


cdef Py_ssize_t _predict_forward_share(const int* sizes, int n_layers, Py_ssize_t rows,
                                       int n_threads) noexcept:
    # z_1..z_L and a_out for the rows a thread runs at once (all rows on
    # one thread, else a block), in whole 64-byte lines
    cdef Py_ssize_t share = _predict_block_rows(_n_params(sizes, n_layers), rows, n_threads)
    return (share * _z_width(sizes, n_layers) + share * sizes[n_layers] + 15) // 16 * 16


cdef Py_ssize_t _n_params(const int* sizes, int n_layers) noexcept:
    cdef Py_ssize_t l, n_params = 0
    for l in range(n_layers):
        n_params += (<Py_ssize_t>sizes[l] + 1) * sizes[l + 1]
    return n_params


cdef Py_ssize_t _predict_share(const int* sizes, int n_layers, Py_ssize_t rows,
                               int n_threads, bint convert) noexcept:
    cdef Py_ssize_t share = _predict_forward_share(sizes, n_layers, rows, n_threads)
    if convert:  # and a block of converted rows of X
        share += (_predict_block_rows(_n_params(sizes, n_layers), rows, n_threads) * sizes[0]
                  + 15) // 16 * 16
    return share


def predict_workspace_share(const int[::1] sizes, Py_ssize_t rows, int n_threads,
                            bint convert=False):
    """Scalars of workspace per thread for Predictor.predict on ``rows``
    rows: the forward pass's z_1..z_L
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
    # m rows at once: the one pass's bits
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


cdef int _predict_threads(Predictor model, PredictJob* job, bint convert, X,
                          const floating[::1] params, work, floating[:, ::1] out,
                          int n_threads, bint check_finite) except -2:
    """The rows split over ``n_threads`` threads of its own that claim
    blocks of them (see PredictJob), a converted X (``convert``, source set
    in job) included. Returns the threads that ran (1 when they could not
    be started), or -1 when ``check_finite`` found X not finite."""
    cdef int i, status = 0
    cdef unsigned int saved_csr
    cdef const int* sizes = <const int*>_data(model.sizes)
    cdef int n_layers = model.n_layers
    cdef Py_ssize_t m
    cdef floating[::1] work_view
    if convert:
        m = X.shape[0]
    else:
        m = input_rows(X, sizes[0], _np_dtype(&params[0]), &job.x)
    if not 1 <= n_threads <= FBP_MAX_THREADS:
        raise ValueError(f"n_threads must be in [1, {FBP_MAX_THREADS}], got {n_threads}")
    job.work_per_thread = _predict_share(sizes, n_layers, m, n_threads, convert)
    job.rows_offset = _predict_forward_share(sizes, n_layers, m, n_threads)
    if work is None:
        work = aligned_empty(max(1, n_threads * job.work_per_thread), _np_dtype(&params[0]))
    work_view = work
    if work_view.shape[0] < n_threads * job.work_per_thread:
        raise ValueError("work is too small for n_threads workspaces")
    if out.shape[0] != m or out.shape[1] != sizes[n_layers]:
        raise ValueError("out must have X's rows and the network's outputs")
    if m == 0:
        return 1
    job.sizes = sizes
    job.layers = model.layers
    job.n_layers = n_layers
    job.params = &params[0]
    job.out = &out[0, 0]
    job.work = &work_view[0]
    job.m = m
    job.n_threads = n_threads
    job.next_row = 0
    job.check_finite = check_finite
    job.nonfinite = 0
    # blocks of 256 rows (more on small networks, for PREDICT_BLOCK_FLOPS)
    job.block_rows = _predict_block_rows(params.shape[0], m, n_threads)
    job.caller_cpu = -1
    with nogil:
        saved_csr = fbp_denormals_off()  # the pool's workers take the mode
        if n_threads > 1:  # on workers kept between calls (csrc/fastbp_pool.h)
            job.caller_cpu = fbp_current_cpu()
            status = fbp_pool_run(n_threads, _predict_part_d if floating is double
                                     else _predict_part_f, job)
        if n_threads == 1 or status != 0:  # one thread runs every share in turn
            job.caller_cpu = -1
            for i in range(n_threads):
                if floating is double:
                    _predict_part_d(job, i)
                else:
                    _predict_part_f(job, i)
        fbp_denormals_restore(saved_csr)
    if job.nonfinite:
        return -1
    return n_threads if status == 0 else 1


# ---------------------------------------------------------------------------
# Prediction split over threads of its own: rows are independent, so the
# threads take blocks of rows from a shared counter, each running the forward
# pass on its block in its own workspace. Claimed, not dealt out in equal
# shares: the cores of a shared machine often run at unequal speeds (on this
# project's 2-core VM, one core's GEMM rate was 100 against the other's 140
# GFLOP/s), and an equal share waits for the slowest thread. A row's block,
# and so its bits, depend only on m and block_rows, not on which thread ran it.
cdef struct PredictJob:
    const int* sizes
    const fbp_layer* layers
    int n_layers
    const void* params
    fbp_input x
    void* out
    void* work            # n_threads workspaces of work_per_thread scalars
    Py_ssize_t work_per_thread
    Py_ssize_t m
    Py_ssize_t block_rows  # at most a thread's even share: its workspace's rows
    Py_ssize_t next_row    # the first row no thread has claimed
    int n_threads
    bint check_finite      # reject NaN and infinity in each dense block of X
    int nonfinite          # set when a block held one
    # X's first element when the threads convert its rows (another float
    # dtype or layout) into their workspaces, else NULL; strides in bytes
    const char* source
    bint source_double
    Py_ssize_t source_row_stride
    Py_ssize_t source_col_stride
    Py_ssize_t rows_offset  # where a workspace keeps its block of converted rows
    int caller_cpu          # the workers leave the caller's CPU (or -1)


cdef void _predict_part(PredictJob* job, int index, floating* dtype_tag) noexcept nogil:
    """Thread ``index``: the network output for the blocks of rows it claims."""
    cdef int n_layers = job.n_layers
    cdef Py_ssize_t n_in = job.sizes[0], n_out = job.sizes[n_layers], r0, rows
    cdef floating* work = <floating*>job.work + index * job.work_per_thread
    cdef fbp_network net = _network(job.sizes, job.layers, n_layers, 0, 0.0, job.params, NULL,
                                    work)
    cdef fbp_input x_own
    if index > 0:
        fbp_leave_cpu(job.caller_cpu)
    while True:
        r0 = fbp_claim(&job.next_row, job.block_rows)
        if r0 >= job.m:
            return
        rows = job.m - r0 if job.m - r0 < job.block_rows else job.block_rows
        if job.source != NULL:
            _convert_rows(job, r0, rows, work + job.rows_offset)
            x_own = dense_input(work + job.rows_offset)
        else:
            x_own = input_rows_from(&job.x, r0, n_in, dtype_tag)
        if job.check_finite and x_own.dense != NULL:
            if not _forward_pass_finite_x(&net, &x_own, rows, dtype_tag):
                fbp_raise_flag(&job.nonfinite)  # read after the join
                continue
        else:
            forward_pass(&net, &x_own, rows, dtype_tag)
        memcpy(<floating*>job.out + r0 * n_out, _layer_z(&net, work, n_layers - 1, rows),
               rows * n_out * sizeof(floating))


cdef void _convert_rows(const PredictJob* job, Py_ssize_t r0, Py_ssize_t rows,
                        floating* x_rows) noexcept nogil:
    """Rows [r0, r0 + rows) of a float32 or float64 X of any layout, as
    C-contiguous rows of the network's dtype in x_rows. Each thread converts
    the block it is about to use, in its own cache: converting all of X first
    was one more pass over it, on one thread (half of a 2-thread predict of a
    Fortran-order X)."""
    cdef Py_ssize_t r, c, c0, c1, n_in = job.sizes[0]
    cdef Py_ssize_t rs = job.source_row_stride, cs = job.source_col_stride
    cdef const char* first = job.source + r0 * rs
    cdef const double* d
    cdef const float* f
    cdef floating* row
    cdef bint by_rows = (cs if cs >= 0 else -cs) <= (rs if rs >= 0 else -rs)
    if job.source_double and by_rows and cs == sizeof(double):  # C order
        for r in range(rows):
            d = <const double*>(first + r * rs)
            row = x_rows + r * n_in
            for c in range(n_in):
                row[c] = <floating>d[c]
    elif not job.source_double and by_rows and cs == sizeof(float):
        for r in range(rows):
            f = <const float*>(first + r * rs)
            row = x_rows + r * n_in
            for c in range(n_in):
                row[c] = <floating>f[c]
    elif job.source_double and rs == sizeof(double):  # Fortran order
        # 16 columns at a time: 16 runs of rows read side by side, and each
        # row of the block written 64 bytes at a time, not 4
        for c0 in range(0, n_in, 16):
            c1 = c0 + 16 if c0 + 16 < n_in else n_in
            for r in range(rows):
                row = x_rows + r * n_in
                for c in range(c0, c1):
                    row[c] = <floating>(<const double*>(first + c * cs))[r]
    elif not job.source_double and rs == sizeof(float):
        for c0 in range(0, n_in, 16):
            c1 = c0 + 16 if c0 + 16 < n_in else n_in
            for r in range(rows):
                row = x_rows + r * n_in
                for c in range(c0, c1):
                    row[c] = <floating>(<const float*>(first + c * cs))[r]
    else:  # any other strides, element by element
        for r in range(rows):
            for c in range(n_in):
                if job.source_double:
                    x_rows[r * n_in + c] = <floating>(<const double*>(first + r * rs + c * cs))[0]
                else:
                    x_rows[r * n_in + c] = <floating>(<const float*>(first + r * rs + c * cs))[0]


cdef bint _forward_pass_finite_x(const fbp_network* net, const fbp_input* x, Py_ssize_t m,
                                 floating* dtype_tag) noexcept nogil:
    """forward_pass of m dense rows of X that holds no NaN or infinity;
    False, with the pass left unfinished, when X does.

    X is not scanned in a pass of its own (9% of a one-thread predict of
    784-128-10), but through z_1's pre-activation a, sizes[1] numbers a row,
    still in cache: IEEE arithmetic carries a NaN or infinity of X's row
    into that row of every column that fastbp's own code computes (NaN * w
    is NaN, inf * w is +-inf, or NaN when w is 0, and sums keep them), so a
    finite a means a finite X. A non-finite a (from X, or from an overflow
    or a non-finite weight) costs the scan of X that decides.
    """
    cdef const fbp_layer* first = &net.layers[0]
    cdef floating* a
    if not gemm_nn_computes_a_column(<int>m, first.n_out, first.n_in, dtype_tag):
        if _first_nonfinite(<const floating*>x.dense, m * first.n_in) >= 0:
            return False
        forward_pass(net, x, m, dtype_tag)
        return True
    a = layer_preactivation(net, x, 0, 0, m, m, dtype_tag)
    if (_first_nonfinite(a, m * first.n_out) >= 0
            and _first_nonfinite(<const floating*>x.dense, m * first.n_in) >= 0):
        return False
    activate_rows(a, _layer_z(net, <floating*>net.work, 0, m), m, first.n_out, first.activation)
    forward_layers_from(net, x, 1, 0, m, m, dtype_tag)
    return True


cdef void _predict_part_d(void* job, int index) noexcept nogil:
    _predict_part(<PredictJob*>job, index, <double*>NULL)


cdef void _predict_part_f(void* job, int index) noexcept nogil:
    _predict_part(<PredictJob*>job, index, <float*>NULL)
