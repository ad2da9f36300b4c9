# Trainer: the Python object that owns a fit's native state (the structs of
# csrc/fastbp_state.h and the arrays behind them), checks everything, then
# runs train_rows_kernel without the GIL.

cdef int _NO_DTYPE = 0, _FLOAT32 = 1, _FLOAT64 = 2


def aligned_empty(Py_ssize_t size, dtype):
    """An uninitialised 1-D array of ``size`` elements of ``dtype`` whose
    data starts on a 64-byte (cache-line) boundary.

    The kernels' 64-byte SIMD loads run measurably slower when every one
    straddles two cache lines; NumPy only promises 16 bytes.
    """
    cdef cnp.dtype descr = dtype if type(dtype) is type(_FLOAT64_DTYPE) else np.dtype(dtype)
    cdef Py_ssize_t itemsize = descr.itemsize
    cdef cnp.npy_intp n
    cdef cnp.ndarray raw
    cdef Py_ssize_t offset
    if itemsize > 0 and 64 % itemsize == 0:
        # C calls, no NumPy Python calls: every fit makes three of these
        n = size + 64 // itemsize
        raw = cnp.PyArray_EMPTY(1, &n, descr.type_num, 0)
        # the address from C: ndarray.ctypes.data costs ~1.5 us, much of a small fit
        offset = (64 - (<size_t>cnp.PyArray_DATA(raw) & 63)) & 63
        if offset % itemsize == 0:
            return raw[offset // itemsize:offset // itemsize + size]
    cdef Py_ssize_t nbytes = size * itemsize
    raw = np.empty(nbytes + 64, np.uint8)
    offset = (64 - (<size_t>cnp.PyArray_DATA(raw) & 63)) & 63
    return raw[offset:offset + nbytes].view(descr)


_FLOAT64_DTYPE = np.dtype(np.float64)


# A fit's passes over all its parameters, its private copy of them and the
# NaN check after each kernel call, only move memory, into fresh pages for
# the copy: on a big network they take threads (fastbp._runtime.pass_threads).
# 1024-2048-2048-10 float64 (50 MB), fresh copy 12.9 -> 7.3 ms on 2 threads
# (an idle process, madvised huge pages as NumPy's), about 4% of a 600-row
# epoch at batch 512.
cdef struct _VectorPass:
    const char* src
    char* dst  # NULL: find a non-finite value instead of copying
    Py_ssize_t n, item
    int n_threads
    Py_ssize_t found[64]  # each thread's first non-finite index, -1: none


cdef void _vector_pass_part(void* job_, int index) noexcept nogil:
    cdef _VectorPass* job = <_VectorPass*>job_
    # whole cache lines a thread
    cdef Py_ssize_t per_line = 64 // job.item
    cdef Py_ssize_t lines = (job.n + per_line - 1) // per_line
    cdef Py_ssize_t lo = _share(lines, index, job.n_threads) * per_line
    cdef Py_ssize_t hi = _share(lines, index + 1, job.n_threads) * per_line
    cdef Py_ssize_t r = -1
    if hi > job.n:
        hi = job.n
    if hi > lo:
        if job.dst != NULL:
            memcpy(job.dst + lo * job.item, job.src + lo * job.item, (hi - lo) * job.item)
        elif job.item == 8:
            r = fbp_first_nonfinite_d(<const double*>job.src + lo, hi - lo)
        else:
            r = fbp_first_nonfinite_f(<const float*>job.src + lo, hi - lo)
    job.found[index] = lo + r if r >= 0 else -1


cdef Py_ssize_t vector_pass(const void* src, void* dst, Py_ssize_t n, Py_ssize_t item,
                            int n_threads) noexcept nogil:
    """Copy n items of ``item`` bytes (4 or 8) from src to dst, or with dst
    NULL return the index of the first non-finite float in src (-1: none),
    on ``n_threads`` threads (on this one alone where they cannot start)."""
    cdef _VectorPass job
    cdef int t
    job.src = <const char*>src
    job.dst = <char*>dst
    job.n = n
    job.item = item
    job.n_threads = n_threads if 1 < n_threads <= 64 else 1
    if job.n_threads == 1 or fbp_run_threads(job.n_threads, _vector_pass_part, &job) != 0:
        job.n_threads = 1
        _vector_pass_part(&job, 0)
    for t in range(job.n_threads):
        if job.found[t] >= 0:
            return job.found[t]
    return -1



# A bfloat16 fit's scratch (gradient, workspace, packs: ~3x a big network's
# weights), handed from a Trainer that ends to the next one of the same
# sizes: fresh pages are zeroed by the kernel on first touch, ~10% of a
# 600-row fit of 1024-2048-2048-10 at batch 512. One fit's three arrays at
# most; a Trainer never hands them out, so nothing else holds them.
cdef list _spare_scratch = []
cdef int _SPARE_SCRATCH_ARRAYS = 3


cdef object _scratch_empty(Py_ssize_t size, dtype):
    """aligned_empty(size, dtype), from _spare_scratch when it has one."""
    cdef Py_ssize_t i
    for i in range(len(_spare_scratch)):
        array = <cnp.ndarray>_spare_scratch[i]
        if cnp.PyArray_DIM(array, 0) == size and array.dtype == dtype:
            del _spare_scratch[i]
            return array
    return aligned_empty(size, dtype)


cdef void _scratch_spare(object array) noexcept:
    """Keep ``array`` (or None: nothing) for _scratch_empty."""
    if array is None:
        return
    _spare_scratch.append(array)
    if len(_spare_scratch) > _SPARE_SCRATCH_ARRAYS:
        del _spare_scratch[0]


def bf16_spare_scratch(bint clear=False):
    """The scratch arrays kept for the next bfloat16 fit (tests: fill them,
    then drop the list), forgotten by the next fit with ``clear``."""
    kept = list(_spare_scratch)
    if clear:
        del _spare_scratch[:]
    return kept


def aligned_copy(cnp.ndarray array not None, int n_threads=1, out=None):
    """A copy of ``array`` (1-D, C-contiguous, float32 or float64 in native
    byte order) whose data starts on a 64-byte boundary, as
    :func:`aligned_empty`'s: a fit's private copy of the weights, made in C
    (``copy[...] = array`` costs a small fit ~0.5 µs), on ``n_threads``
    threads. Into ``out`` when it is such an array, writeable, of the same
    dtype and size and not ``array`` (a big network's spare, whose pages
    are mapped already), else into a new one."""
    cdef int kind = cnp.PyArray_TYPE(array)
    if (cnp.PyArray_NDIM(array) != 1 or not cnp.PyArray_IS_C_CONTIGUOUS(array)
            or not cnp.PyArray_ISNOTSWAPPED(array)
            or (kind != cnp.NPY_DOUBLE and kind != cnp.NPY_FLOAT)):
        raise TypeError(f"array must be a 1-D C-contiguous float32 or float64 array in "
                        f"native byte order, got {_describe(array)}")
    cdef cnp.ndarray copy
    cdef Py_ssize_t n = cnp.PyArray_DIM(array, 0), item = cnp.PyArray_ITEMSIZE(array)
    if (out is not None and out is not array and cnp.PyArray_Check(out)
            and cnp.PyArray_TYPE(<cnp.ndarray>out) == kind
            and cnp.PyArray_NDIM(<cnp.ndarray>out) == 1
            and cnp.PyArray_DIM(<cnp.ndarray>out, 0) == n
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out)
            and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>out)
            and (<size_t>cnp.PyArray_DATA(<cnp.ndarray>out) & 63) == 0):
        copy = <cnp.ndarray>out
    else:
        copy = aligned_empty(n, array.dtype)
    cdef const void* src = cnp.PyArray_DATA(array)
    cdef void* dst = cnp.PyArray_DATA(copy)
    if n_threads < 1:
        raise ValueError(f"n_threads must be >= 1, got {n_threads}")
    if n_threads == 1:
        memcpy(dst, src, n * item)
    else:
        with nogil:
            vector_pass(src, dst, n, item, n_threads)
    return copy


#: whether a reference count sees every reference (Trainer.take_params):
#: CPython up to 3.13 with the GIL, as fastbp._runtime.EXACT_REFCOUNTS
cdef bint _EXACT_REFCOUNTS = (sys.implementation.name == "cpython"
                              and sys.version_info < (3, 14)
                              and getattr(sys, "_is_gil_enabled", lambda: True)())
#: the largest parameter array a Trainer keeps as a spare (take_params): a
#: bigger network's fit takes a spare of the network's own
#: (fastbp._runtime.SPARE_PARAMS_MIN_BYTES), whose copy dwarfs an allocation
cdef Py_ssize_t _SPARE_PARAMS_MAX_BYTES = 1 << 16


cdef bint _unshared(PyObject* array) noexcept:
    """Whether nothing but one reference, the caller's attribute, refers to
    ``array``, an array owning its data or a view whose base is such an
    array, referred to by ``array`` alone (every view of ``array`` refers to
    its base): its memory may be written. Borrowed pointers, which add no
    reference (tests/test_fit_fixed_cost.py checks the counts)."""
    cdef PyObject* base
    if array == <PyObject*>None or not _EXACT_REFCOUNTS or Py_REFCNT(<object>array) != 1:
        return False
    base = cnp.PyArray_BASE(<cnp.ndarray>array)
    if base == NULL:
        return cnp.PyArray_CHKFLAGS(<cnp.ndarray>array, cnp.NPY_ARRAY_OWNDATA)
    return (Py_REFCNT(<object>base) == 1 and cnp.PyArray_CheckExact(<object>base)
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray><object>base, cnp.NPY_ARRAY_OWNDATA))


cdef inline void* _data(cnp.ndarray array) noexcept:
    return cnp.PyArray_DATA(array)


@cython.auto_pickle(False)  # raw pointers: a Trainer is not picklable
cdef class Trainer:
    """The native state of one fit, and the nogil training loop over it.

    Holds the network (sizes, activations, loss, L2, the parameters trained
    in place, their gradient and the workspace), the batch source (X, T,
    sample weights, row order, batch size), the optimiser (any of
    :func:`optimizer_kinds`, its buffers updated in place) and the rules
    around its steps (:meth:`set_clip_norm`, :meth:`set_ema`). The arrays are
    referenced, not copied, so they must stay as they are between ``run``
    calls; every check happens in the setters and before ``run`` releases
    the GIL.

    Parameters
    ----------
    sizes : ndarray of np.intc, shape (n_layers + 1,)
        Layer widths, input first, each >= 1; C-contiguous.
    acts : ndarray of np.intc, shape (n_layers,)
        Activation codes of the layers after the input: indices into
        :func:`activation_table` (``fastbp.ACTIVATIONS``).
    loss : int
        Loss code: an index into :func:`loss_table`.
    l2 : float
        L2 penalty on the weights (not the biases), >= 0.
    batch_size : int
        Rows per minibatch, >= 1; the last batch of a run may be shorter.
    n_threads : int, default=1
        Threads of its own for minibatches, and for the per-sample epochs
        of a network with at least :func:`set_sample_team` weights; clamped
        to [1, 64]; 1 where the platform has no threads (``HAVE_THREADS``).
    loss_param : float or None, default=None
        The loss's parameter (huber's delta, cross_entropy's label
        smoothing; fastbp.losses checks it), finite; None is the row's
        default (:func:`loss_param_defaults`).

    Examples
    --------
    >>> t = Trainer(sizes, acts, LOSSES["mse"], 0.0, 32)  # doctest: +SKIP
    >>> t.set_params(params); t.set_data(X, T); t.set_optimizer("sgd", 0.1)  # doctest: +SKIP
    >>> status, data_sum, penalty_sum, rows = t.run(0, X.shape[0])  # doctest: +SKIP
    """
    cdef fbp_network net
    # net.layers, on the heap: a fixed array of FBP_MAX_LAYERS made every
    # Trainer 4.5 kB that tp_alloc zeroes, a cost each small fit felt
    cdef fbp_layer *layers
    cdef fbp_batches data
    cdef fbp_optimizer_state opt
    cdef fbp_step_rules rules  # net.rules when one is on
    cdef int _n_threads, dtype_code
    cdef int _pass_threads  # the NaN check's after each run (pass_threads)
    cdef bint has_data, has_optimizer, running
    cdef Py_ssize_t n_rows
    # references that keep the buffers behind the raw pointers alive
    cdef object sizes_array, acts_array, params_array, grad_array, work_array
    cdef object spare_array  # take_params'
    cdef object X_array, T_array, weight_array, order_array, marks_array, ema_array
    cdef list buffer_arrays
    # dropout's factors (net.drop_factors), and whether a layer drops units
    cdef object drop_array
    cdef bint has_dropout
    # compute_dtype bfloat16: net.bf16 points here, its buffers in bf16_array
    cdef Bf16Work* bf16
    cdef object bf16_array

    def __init__(self, sizes, acts, int loss, double l2, Py_ssize_t batch_size,
                 int n_threads=1, loss_param=None):
        # checked, not copied: _setup keeps its own copy of the widths, and
        # the codes end up in the layer specs
        _check_int_codes(sizes, "sizes")
        _check_int_codes(acts, "acts")
        self._setup(sizes, acts, <const int*>_data(sizes), sizes.shape[0],
                    <const int*>_data(acts), acts.shape[0], loss, l2, batch_size, n_threads,
                    loss_param)

    cdef _setup(self, sizes, acts, const int* width, Py_ssize_t n_sizes, const int* code,
                Py_ssize_t n_layers, int loss, double l2, Py_ssize_t batch_size,
                int n_threads, object loss_param):
        # __init__'s checks on raw ints, no NumPy calls: every fit builds a
        # Trainer, and small fits would feel them
        if self.sizes_array is not None:
            # the buffers set so far were checked against the first sizes
            raise RuntimeError("a Trainer is initialised once; make a new one")
        _check_layers(width, n_sizes, code, n_layers)
        if not 0 <= loss < FBP_N_LOSSES:
            raise ValueError(f"unknown loss code {loss}")
        if not (l2 >= 0 and isfinite(l2)):
            raise ValueError(f"l2 must be finite and >= 0, got {l2!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        # one block: the layer specs, then a private copy of the widths (the
        # loops read them without the GIL)
        cdef size_t specs = n_layers * sizeof(fbp_layer)
        cdef char* block = <char*>PyMem_Malloc(specs + n_sizes * sizeof(int))
        if block == NULL:
            raise MemoryError()
        self.layers = <fbp_layer*>block
        memcpy(block + specs, width, n_sizes * sizeof(int))
        width = <const int*>(block + specs)
        self.sizes_array = sizes
        self.acts_array = acts
        self.net.sizes = width
        self.net.n_params = fbp_layers_init(self.layers, width, code, <int>n_layers, 1)
        self.net.layers = self.layers
        self.net.n_layers = <int>n_layers
        self.net.loss = loss
        self.net.loss_param = loss_param_of(loss, loss_param)
        self.net.l2 = l2
        self.data.batch_size = batch_size
        self._n_threads = max(1, min(n_threads, FBP_MAX_THREADS)) if FBP_HAVE_THREADS else 1
        self._pass_threads = self._n_threads
        self.net.n_threads = self._n_threads  # a wide network's per-sample team
        self.dtype_code = _NO_DTYPE

    def __dealloc__(self):
        if self.bf16 != NULL and self.net.bf16 != NULL:
            _scratch_spare(self.grad_array)
            _scratch_spare(self.work_array)
            _scratch_spare(self.bf16_array)
        PyMem_Free(self.layers)
        PyMem_Free(self.bf16)

    @property
    def compute_dtype(self):
        """The products' precision: "float32" (the params') or "bfloat16"."""
        return "bfloat16" if self.net.bf16 != NULL else "float32"

    def set_compute_dtype(self, str name):
        """Run the layers' products in ``name``: "float32" or "bfloat16".

        With "bfloat16" (float32 params and dense X only, checked by
        ``run``), the forward, delta and weight-gradient products take their
        operands rounded to bfloat16 and sum in float32 (csrc/layers_bf16.pxi);
        params, biases, activations, loss and the optimiser stay float32.
        Every batch then runs on the calling thread.
        """
        if self.running:
            raise RuntimeError("set_compute_dtype while run is running")
        if name not in ("float32", "bfloat16"):
            raise ValueError(f"compute_dtype must be 'float32' or 'bfloat16', got {name!r}")
        self.net.bf16 = NULL
        self.bf16_array = None
        if name == "float32":
            return
        if self.bf16 == NULL:
            self.bf16 = <Bf16Work*>PyMem_Malloc(sizeof(Bf16Work))
            if self.bf16 == NULL:
                raise MemoryError()
        size = bf16_plan(self.bf16, self.layers, self.net.n_layers, self.data.batch_size, NULL)
        self.bf16_array = _scratch_empty(size, np.float32)
        bf16_plan(self.bf16, self.layers, self.net.n_layers, self.data.batch_size,
                  <float*>_data(self.bf16_array))
        self.net.bf16 = self.bf16

    cdef Py_ssize_t _workspace_needed(self) noexcept:
        cdef Py_ssize_t size = _workspace_size(self.layers, self.net.sizes, self.net.n_layers,
                                               self.data.batch_size)
        if self._n_threads > 1:
            size = max(size, _threaded_workspace_size(self.layers, self.net.sizes,
                                                      self.net.n_layers, self.data.batch_size))
        return size

    @property
    def n_threads(self):
        """Threads of its own ``run`` uses for minibatches (and a wide
        network's per-sample epochs)."""
        return self._n_threads

    @property
    def pass_threads(self):
        """Threads of the check for non-finite params after each ``run``
        (a memory-bound pass: a big network's takes several even when its
        minibatches run on one thread and the BLAS's); ``n_threads`` until
        set, clamped to [1, 64] as it is."""
        return self._pass_threads

    @pass_threads.setter
    def pass_threads(self, int value):
        if self.running:
            raise RuntimeError("setting pass_threads while run is running")
        if value < 1:
            raise ValueError(f"pass_threads must be >= 1, got {value}")
        self._pass_threads = min(value, FBP_MAX_THREADS) if FBP_HAVE_THREADS else 1

    @property
    def lr(self):
        """The learning rate of the next ``run``; schedules set it between runs."""
        if not self.has_optimizer:
            raise RuntimeError("no optimizer yet: call set_optimizer first")
        return self.opt.lr

    @lr.setter
    def lr(self, double value):
        if self.running:
            raise RuntimeError("setting lr while run is running")
        if not self.has_optimizer:
            raise RuntimeError("no optimizer yet: call set_optimizer first")
        self.opt.lr = _check_lr(value)

    @property
    def step_count(self):
        """The optimiser's step count after the last ``run`` (0 for one
        whose step does not depend on it, as plain SGD)."""
        return self.opt.step_count

    @property
    def ema_steps(self):
        """Steps the average of :meth:`set_ema` took in so far."""
        return self.rules.ema_steps

    def set_clip_norm(self, double clip_norm):
        """Clip each step's gradient to an L2 norm of at most ``clip_norm``.

        As ``torch.nn.utils.clip_grad_norm_``: the gradient g of all the
        params (J's, L2 term included) is scaled by min(1, clip_norm /
        (||g|| + 1e-6)) before the optimiser's step. Such steps are never
        folded into the products (plain SGD) and take no per-sample path.

        Parameters
        ----------
        clip_norm : float
            Finite and > 0; 0 turns clipping off.
        """
        if self.running:
            raise RuntimeError("set_clip_norm while run is running")
        if not (clip_norm >= 0 and isfinite(clip_norm)):
            raise ValueError(f"clip_norm must be finite and > 0 (0: off), got {clip_norm!r}")
        self.rules.clip_norm = clip_norm
        self._place_rules()

    def set_ema(self, ema, double decay=0.0, Py_ssize_t steps=0):
        """Average the params after each step into ``ema``, updated in place.

        After the first step ``ema`` is a copy of the params, after each
        later one ema = decay ema + (1 - decay) params (as
        ``torch.optim.swa_utils.AveragedModel`` with ``get_ema_multi_avg_fn``).

        Parameters
        ----------
        ema : ndarray or None
            Params-shaped, in the params' dtype, C-contiguous and writeable;
            None turns averaging off.
        decay : float
            In (0, 1).
        steps : int, default=0
            Steps averaged so far (0: the next step copies the params).
        """
        self._require_params("set_ema")
        if ema is not None:
            ema = self._params_like(ema, "ema")
            if not (0 < decay < 1):
                raise ValueError(f"decay must be in (0, 1), got {decay!r}")
            if steps < 0:
                raise ValueError(f"steps must be >= 0, got {steps}")
        self.ema_array = ema
        self.rules.ema = _data(ema) if ema is not None else NULL
        self.rules.ema_decay = decay if ema is not None else 0.0
        self.rules.ema_steps = steps if ema is not None else 0
        self._place_rules()

    cdef _place_rules(self):
        # the loops see rules only when one is on (else their default paths)
        self.net.rules = (&self.rules if self.rules.clip_norm > 0 or self.rules.ema != NULL
                          else NULL)

    def set_params(self, params):
        """Train ``params`` in place; it fixes the dtype of everything else.

        Parameters
        ----------
        params : ndarray of float32 or float64, shape (n_params,)
            The flat vector [W_0, b_0, W_1, b_1, ...], C-contiguous and
            writeable. A new dtype forgets the data and the optimiser.
        """
        dtype_code = self._params_dtype(params, "params")
        if params.shape[0] != self.net.n_params:
            raise ValueError(f"params has {params.shape[0]} elements; sizes "
                             f"{[self.net.sizes[l] for l in range(self.net.n_layers + 1)]} "
                             f"need {self.net.n_params}")
        if dtype_code != self.dtype_code:
            self._forget()
            self.dtype_code = dtype_code
        if self.grad_array is None or self.grad_array.dtype != params.dtype:
            if self.net.bf16 != NULL:
                self.grad_array = _scratch_empty(self.net.n_params, params.dtype)
                self.work_array = _scratch_empty(self._workspace_needed(), params.dtype)
            else:
                self.grad_array = aligned_empty(self.net.n_params, params.dtype)
                self.work_array = aligned_empty(self._workspace_needed(), params.dtype)
            self.net.grad = _data(self.grad_array)
            self.net.work = _data(self.work_array)
        self.params_array = params
        self.net.params = _data(params)
        self._place_drop_factors()

    def take_params(self, cnp.ndarray src not None, int n_threads=1, spare=None):
        """:meth:`set_params` on a private copy of ``src``, returned: a lean
        fit's copy of the network's parameters (:func:`aligned_copy`) and its
        hand-over in one call. The copy goes into ``spare`` when that fits,
        else into an array this trainer trained before, once nothing else
        refers to it (the network published a newer one, or set_weights
        replaced it), else into a new one. Small fits then allocate nothing:
        a new array costs ~1.5 µs, ~20 µs with the caches cold (a fit after
        a pause, as bench/compare.py times it)."""
        cdef bint given = spare is not None  # the network's own spare (a big network's)
        if not given and not self.running:
            if _unshared(<PyObject*>self.spare_array):
                spare = self.spare_array
            elif self.params_array is not src and _unshared(<PyObject*>self.params_array):
                spare = self.params_array
        last = self.params_array
        copy = aligned_copy(src, n_threads, spare)
        self.set_params(copy)
        if not given and last is not copy and last is not None and (
                cnp.PyArray_NBYTES(<cnp.ndarray>last) <= _SPARE_PARAMS_MAX_BYTES):
            # the network's parameters until it publishes the copy: the next
            # call's spare if nothing holds them then (a network that keeps
            # spares of its own keeps this one: it must hold the only reference)
            self.spare_array = last
        elif copy is self.spare_array:
            self.spare_array = None
        return copy

    def set_data(self, X, T, sample_weight=None):
        """Train on the rows of (X, T), weighted by ``sample_weight``.

        Parameters
        ----------
        X : ndarray, shape (n_rows, sizes[0]), or CSR rows
            Inputs, C-contiguous, in the params' dtype; or the rows of a CSR
            matrix (``values`` in the params' dtype, ``indices`` int32,
            ``indptr`` int64, ``shape``; see ``fastbp._sparse.CsrRows``),
            multiplied where they lie, never densified.
        T : ndarray, shape (n_rows, sizes[-1])
            Targets, C-contiguous, in the params' dtype.
        sample_weight : ndarray, shape (n_rows,), optional
            Row weights in the params' dtype; None or empty: every row weighs 1.
        """
        self._require_params("set_data")
        cdef int n_layers = self.net.n_layers
        cdef fbp_input x
        cdef Py_ssize_t n_rows
        cdef int kind = cnp.PyArray_TYPE(<cnp.ndarray>self.params_array)
        if (sample_weight is None and plain_rows(X, kind, self.net.sizes[0])
                and plain_rows(T, kind, self.net.sizes[n_layers])
                and cnp.PyArray_DIM(<cnp.ndarray>X, 0) == cnp.PyArray_DIM(<cnp.ndarray>T, 0)):
            # dense rows that pass every check below, found by C macros alone
            x = dense_input(cnp.PyArray_DATA(<cnp.ndarray>X))
            n_rows = cnp.PyArray_DIM(<cnp.ndarray>X, 0)
        else:
            n_rows = input_rows(X, self.net.sizes[0], self.params_array.dtype, &x)
            T = self._floats(T, "T", 2)
            if T.shape[1] != self.net.sizes[n_layers]:
                raise ValueError(f"T has {T.shape[1]} columns; the network has "
                                 f"{self.net.sizes[n_layers]} outputs")
            if T.shape[0] != n_rows:
                raise ValueError(f"X has {n_rows} rows but T has {T.shape[0]}")
            if sample_weight is not None and np.shape(sample_weight) == (0,):
                sample_weight = None
            if sample_weight is not None:
                sample_weight = self._floats(sample_weight, "sample_weight", 1)
                if sample_weight.shape[0] != n_rows:
                    raise ValueError(f"sample_weight has {sample_weight.shape[0]} elements "
                                     f"for {n_rows} rows")
        if self.order_array is not None:
            _check_order(self.order_array, n_rows)
        self.X_array, self.T_array, self.weight_array = X, T, sample_weight
        self.n_rows = n_rows
        self.data.X = x.dense
        # an optimiser's marked-rows step on W_0 (sparse X) reads these marks (all 0
        # between runs)
        self.marks_array = None if x.dense != NULL else np.zeros(self.net.sizes[0], np.uint8)
        self.net.row_marks = (NULL if x.dense != NULL
                              else <unsigned char*>cnp.PyArray_DATA(self.marks_array))
        self.data.X_values = x.values
        self.data.X_indices = x.indices
        self.data.X_indptr = x.indptr
        self.data.T = _data(T)
        self.data.sample_weight = _data(sample_weight) if sample_weight is not None else NULL
        self.data.n_positions = (self.order_array.shape[0] if self.order_array is not None
                                 else self.n_rows)
        self.has_data = True

    def set_order(self, order):
        """Visit the rows in ``order``: position i of a run is row order[i].

        Parameters
        ----------
        order : ndarray of np.intp, shape (n_positions,), or None
            Row indices, C-contiguous; None: positions are rows.
        """
        if self.running:
            raise RuntimeError("set_order while run is running")
        if order is not None:
            if not _plain_order(order) and (
                    not isinstance(order, np.ndarray) or order.dtype != np.intp
                    or order.ndim != 1 or not order.flags.c_contiguous):
                raise TypeError(f"order must be None or a C-contiguous 1-D np.intp array, "
                                f"got {_describe(order)}")
            if self.has_data:
                _check_order(order, self.n_rows)
        self.order_array = order
        self.data.order = <const Py_ssize_t*>_data(order) if order is not None else NULL
        self.data.n_positions = order.shape[0] if order is not None else self.n_rows

    def set_dropout(self, rates, seed):
        """Train with inverted dropout on the hidden layers' z, one rate in
        [0, 1) each (all 0: none), its masks drawn from ``seed`` (an int in
        [0, 2**64)) and :meth:`set_dropout_epoch`; see csrc/dropout.pxi."""
        if self.running:
            raise RuntimeError("set_dropout while run is running")
        rates = check_dropout_rates(rates, self.net.n_layers - 1)
        self.net.drop_seed = _check_drop_seed(seed)
        self.has_dropout = set_dropout_layers(self.layers, rates)
        self._place_drop_factors()

    def set_dropout_epoch(self, Py_ssize_t epoch, Py_ssize_t first=0):
        """Draw the next run's masks as those of epoch ``epoch`` (run_epochs:
        and the ones after), position 0 being position ``first`` in it."""
        if self.running:
            raise RuntimeError("set_dropout_epoch while run is running")
        if epoch < 0 or first < 0:
            raise ValueError(f"need epoch >= 0 and first >= 0, got {epoch}, {first}")
        self.net.drop_epoch, self.net.drop_first = epoch, first

    cdef _place_drop_factors(self):
        self.drop_array = _drop_factors(self.drop_array, self.has_dropout, self.params_array,
                                        self.data.batch_size
                                        * fbp_layers_z_width(self.layers, self.net.n_layers))
        self.net.drop_factors = _data(self.drop_array) if self.drop_array is not None else NULL

    def set_optimizer(self, str name, double lr, dict hyper=None, dict buffers=None,
                      Py_ssize_t step_count=0):
        """Optimise with the optimiser its file registered as ``name``.

        Parameters
        ----------
        name : str
            A key of :func:`optimizer_kinds` ("sgd", "adam", ...).
        lr : float
            Learning rate, finite and >= 0.
        hyper : dict of str to float, optional
            Its hyper-parameters by name (``OptimizerKind.hyper_names``);
            those left out take its defaults. Flags are 0 or 1.
        buffers : dict of str to ndarray, optional
            Its parameter-shaped buffers by name (``OptimizerKind.buffer_names``),
            in the params' dtype, updated in place; which it needs may
            depend on ``hyper`` (SGD: a velocity with momentum > 0).
        step_count : int, default=0
            Steps taken so far, for an optimiser whose step depends on the
            count (Adam's bias corrections use step_count + 1 next).
        """
        self._require_params("set_optimizer")
        cdef OptimizerKind kind = optimizer_kind(name)
        lr = _check_lr(lr)
        if buffers is None:
            buffers = {}
        values = kind.settings(hyper, buffers)
        if step_count < 0:
            raise ValueError(f"step_count must be >= 0, got {step_count}")
        arrays = [self._params_like(buffers[key], key) if key in buffers else None
                  for key in kind.buffer_names] if buffers else []
        self._forget_optimizer()
        kind.place(&self.opt, lr, values, arrays, step_count)
        self.opt.layers = self.net.layers
        self.opt.n_layers = self.net.n_layers
        self.buffer_arrays = arrays
        self.has_optimizer = True

    def run(self, Py_ssize_t start, Py_ssize_t stop):
        """Train on positions [start, stop) without the GIL.

        Batches are consecutive runs of ``batch_size`` positions from
        ``start``; split an epoch on batch boundaries to get the batches of
        one call.

        Returns
        -------
        status : int
            0; 1 when a batch loss was not finite (that batch's update is
            not applied and the run stops there); 2 when the call left
            non-finite parameters (checked here, at memory speed).
        data_sum, penalty_sum : float
            J's data and L2 terms, each batch's times its row count.
        rows : int
            Rows trained.
        """
        return self._run(start, stop)

    def run_epochs(self, Py_ssize_t n_epochs, Py_ssize_t epoch_rows, double[::1] data_sums,
                   double[::1] penalty_sums):
        """Train ``n_epochs`` whole epochs in one call without the GIL.

        For small epochs, whose Python bookkeeping would cost more than the
        training. Epoch e is positions [e epoch_rows, (e + 1) epoch_rows) of
        the order (set an order of n_epochs epoch_rows positions, e.g. one
        permutation an epoch back to back), or without an order rows
        [0, epoch_rows) each time. The learning rate stays as it is.

        Parameters
        ----------
        n_epochs, epoch_rows : int
        data_sums, penalty_sums : ndarray of float64, shape (n_epochs,)
            Filled with each completed epoch's J terms, times its rows.

        Returns
        -------
        epochs : int
            Epochs completed with a finite loss and finite parameters.
        status : int
            0; 1 when epoch ``epochs`` met a non-finite batch loss (that
            batch's update not applied); 2 when it left non-finite
            parameters.
        """
        cdef int status = 0, dtype_code = self.dtype_code
        cdef Py_ssize_t done = 0
        cdef unsigned int saved_csr
        self._check_runnable()
        if n_epochs < 0 or epoch_rows < 1:
            raise ValueError(f"need n_epochs >= 0 and epoch_rows >= 1, got {n_epochs}, "
                             f"{epoch_rows}")
        if data_sums.shape[0] < n_epochs or penalty_sums.shape[0] < n_epochs:
            raise ValueError(f"data_sums and penalty_sums need {n_epochs} elements")
        needed = n_epochs * epoch_rows if self.order_array is not None else epoch_rows
        if needed > self.data.n_positions:
            raise ValueError(f"{n_epochs} epochs of {epoch_rows} rows need {needed} "
                             f"positions; there are {self.data.n_positions}")
        if n_epochs == 0:
            return 0, 0
        self.running = True
        try:
            with nogil:
                saved_csr = fbp_denormals_off()
                if dtype_code == _FLOAT64:
                    done = train_epochs_kernel(&self.net, &self.data, &self.opt, n_epochs,
                                               epoch_rows, self._n_threads, &data_sums[0],
                                               &penalty_sums[0], &status, <double*>NULL)
                else:
                    done = train_epochs_kernel(&self.net, &self.data, &self.opt, n_epochs,
                                               epoch_rows, self._n_threads, &data_sums[0],
                                               &penalty_sums[0], &status, <float*>NULL)
                fbp_denormals_restore(saved_csr)
        finally:
            self.running = False
        return done, status

    cdef _check_runnable(self):
        if self.dtype_code == _NO_DTYPE:
            raise RuntimeError("no parameters yet: call set_params first")
        if not self.has_data:
            raise RuntimeError("no data yet: call set_data first")
        if not self.has_optimizer:
            raise RuntimeError("no optimizer yet: call set_optimizer first")
        if self.running:
            raise RuntimeError("run is already running on this Trainer in another thread")
        if self.net.bf16 != NULL and (self.dtype_code != _FLOAT32 or self.data.X == NULL):
            raise ValueError("compute_dtype 'bfloat16' trains float32 params on dense X only, "
                             f"got {self.params_array.dtype} params and "
                             f"{'dense' if self.data.X != NULL else 'sparse'} X")

    cdef tuple _run(self, Py_ssize_t start, Py_ssize_t stop):
        cdef int status, dtype_code = self.dtype_code
        cdef fbp_totals totals
        cdef unsigned int saved_csr
        self._check_runnable()
        if not (0 <= start <= stop <= self.data.n_positions):
            raise ValueError(f"need 0 <= start <= stop <= {self.data.n_positions} "
                             f"(the number of {'positions' if self.order_array is not None else 'rows'}), "
                             f"got start={start}, stop={stop}")
        self.running = True
        try:
            with nogil:
                saved_csr = fbp_denormals_off()
                if dtype_code == _FLOAT64:
                    status = train_rows_kernel(&self.net, &self.data, &self.opt, start, stop,
                                               self._n_threads, &totals, <double*>NULL)
                    if status == 0 and vector_pass(self.net.params, NULL, self.net.n_params, 8,
                                                   self._pass_threads) >= 0:
                        status = 2
                else:
                    status = train_rows_kernel(&self.net, &self.data, &self.opt, start, stop,
                                               self._n_threads, &totals, <float*>NULL)
                    # a bfloat16 run checks its params in its last step (status 2)
                    if status == 0 and self.net.bf16 == NULL and vector_pass(
                            self.net.params, NULL, self.net.n_params, 4, self._pass_threads) >= 0:
                        status = 2
                fbp_denormals_restore(saved_csr)
        finally:
            self.running = False
        return status, totals.loss_sum, totals.penalty_sum, totals.rows_done

    # -- checks ------------------------------------------------------------

    cdef _require_params(self, str method):
        if self.dtype_code == _NO_DTYPE:
            raise RuntimeError(f"call set_params before {method}")
        if self.running:
            raise RuntimeError(f"{method} while run is running")

    cdef int _params_dtype(self, params, str name) except -1:
        if self.sizes_array is None:
            raise RuntimeError("Trainer.__init__ was not called")
        cdef int kind
        if (cnp.PyArray_Check(params) and cnp.PyArray_NDIM(<cnp.ndarray>params) == 1
                and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>params)
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>params)
                and cnp.PyArray_ISALIGNED(<cnp.ndarray>params)
                and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>params) and not self.running):
            # what the checks below let through, found by C macros alone
            kind = cnp.PyArray_TYPE(<cnp.ndarray>params)
            if kind == cnp.NPY_DOUBLE:
                return _FLOAT64
            if kind == cnp.NPY_FLOAT:
                return _FLOAT32
        if not isinstance(params, np.ndarray) or params.ndim != 1:
            raise TypeError(f"{name} must be a 1-D NumPy array, got {_describe(params)}")
        if params.dtype == np.float64:
            code = _FLOAT64
        elif params.dtype == np.float32:
            code = _FLOAT32
        else:
            raise TypeError(f"{name} must be float32 or float64, got {params.dtype}")
        if not (params.flags.c_contiguous and params.flags.aligned and params.flags.writeable):
            raise ValueError(f"{name} must be C-contiguous, aligned and writeable")
        if self.running:
            raise RuntimeError("set_params while run is running")
        return code

    cdef _floats(self, array, str name, int ndim):
        if (cnp.PyArray_Check(array) and cnp.PyArray_NDIM(<cnp.ndarray>array) == ndim
                and cnp.PyArray_TYPE(<cnp.ndarray>array)
                == cnp.PyArray_TYPE(<cnp.ndarray>self.params_array)
                and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>array)
                and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>array)
                and cnp.PyArray_ISALIGNED(<cnp.ndarray>array)):
            return array  # what the checks below let through, found by C macros alone
        dtype = self.params_array.dtype
        if not isinstance(array, np.ndarray) or array.ndim != ndim:
            raise TypeError(f"{name} must be a {ndim}-D NumPy array, got {_describe(array)}")
        if array.dtype != dtype:
            raise TypeError(f"{name} is {array.dtype} but params are {dtype}")
        if not (array.flags.c_contiguous and array.flags.aligned):
            raise ValueError(f"{name} must be C-contiguous and aligned")
        return array

    cdef _params_like(self, array, str name):
        array = self._floats(array, name, 1)
        if array.shape[0] != self.net.n_params:
            raise ValueError(f"{name} has {array.shape[0]} elements; params have "
                             f"{self.net.n_params}")
        if not array.flags.writeable:
            raise ValueError(f"{name} must be writeable: it is updated in place")
        return array

    cdef _forget(self):
        # a new dtype: the data and optimiser buffers no longer fit
        self.has_data = False
        self.X_array = self.T_array = self.weight_array = self.marks_array = None
        self.data.X = self.data.T = self.data.sample_weight = self.data.X_values = NULL
        self.net.row_marks = NULL
        self._forget_optimizer()
        self.has_optimizer = False
        self.ema_array = None  # the average's dtype no longer fits
        self.rules.ema = NULL
        self._place_rules()

    cdef _forget_optimizer(self):
        self.buffer_arrays = None
        memset(&self.opt, 0, sizeof(fbp_optimizer_state))


cdef int _check_layers(const int* width, Py_ssize_t n_sizes, const int* code,
                       Py_ssize_t n_layers) except -1:
    """Widths and activation codes that fbp_layers_init can lay out."""
    cdef Py_ssize_t l
    if n_sizes < 2 or n_sizes > FBP_MAX_LAYERS + 1:
        raise ValueError(f"sizes needs 2 to 64 layer widths, got {n_sizes}")
    if n_layers != n_sizes - 1:
        raise ValueError(f"acts needs one code per layer after the input "
                         f"({n_sizes - 1}), got {n_layers}")
    for l in range(n_sizes):
        if width[l] < 1:
            raise ValueError(f"every layer width must be >= 1, got sizes="
                             f"{[width[i] for i in range(n_sizes)]}")
    for l in range(n_layers):
        if not 0 <= code[l] < FBP_N_ACTIVATIONS:  # a table's rows: fastbp_codes.h
            raise ValueError(f"acts holds an unknown activation code: "
                             f"{[code[i] for i in range(n_layers)]} "
                             f"(known: {list(range(FBP_N_ACTIVATIONS))})")
    return 0


cdef uint64_t _check_drop_seed(seed) except? 0:
    if not 0 <= seed < 2 ** 64:
        raise ValueError(f"seed must be in [0, 2**64), got {seed!r}")
    return <uint64_t>seed


cdef object _drop_factors(old, bint has_dropout, params, Py_ssize_t size):
    """Dropout's factors (net.drop_factors): m rows of z_1..z_L in the params'
    dtype, ``old`` if it is that; None without dropout or params."""
    if not has_dropout or params is None:
        return None
    if old is not None and old.dtype == params.dtype:
        return old
    return aligned_empty(size, params.dtype)


cdef int _check_int_codes(array, str name) except -1:
    if (not isinstance(array, np.ndarray) or array.dtype != np.intc or array.ndim != 1
            or not array.flags.c_contiguous):
        raise TypeError(f"{name} must be a C-contiguous 1-D np.intc array, "
                        f"got {_describe(array)}")
    return 0


cdef object _int_codes(array, str name):
    _check_int_codes(array, name)
    return array.copy()  # a private copy: the kernels read it without the GIL


cdef double _check_lr(double lr) except? -1:
    if not (lr >= 0 and isfinite(lr)):
        raise ValueError(f"lr must be finite and >= 0, got {lr!r}")
    return lr


cdef bint _plain_order(object order) noexcept:
    """Whether ``order`` is a 1-D C-contiguous np.intp array in native byte
    order, by C macros (set_order's checks from Python cost ~0.5 µs)."""
    return (cnp.PyArray_Check(order) and cnp.PyArray_NDIM(<cnp.ndarray>order) == 1
            and cnp.PyArray_TYPE(<cnp.ndarray>order) == cnp.NPY_INTP
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>order)
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>order))


cdef _check_order(cnp.ndarray order, Py_ssize_t n_rows):
    # a typed loop, not order.min()/max(): fit sets an order every epoch, and
    # NumPy's reductions cost more than the loop on small data; over the raw
    # data, as a typed memoryview costs ~0.5 µs to acquire (set_order checked
    # it is C-contiguous np.intp)
    cdef const Py_ssize_t* rows = <const Py_ssize_t*>cnp.PyArray_DATA(order)
    cdef Py_ssize_t i
    for i in range(cnp.PyArray_DIM(order, 0)):
        if rows[i] < 0 or rows[i] >= n_rows:
            raise ValueError(f"order holds row indices outside [0, {n_rows})")
