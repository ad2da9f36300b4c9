# Predict in bfloat16 mixed precision: Predictor(..., compute="bfloat16").
#
# Products take their operands rounded to bfloat16 (nearest, ties to even)
# and sum in float32; biases, activations and outputs stay float32. A layer's
# product runs one of three ways, all with those semantics (a product of two
# bfloat16 values is exact in float32, so they differ only in the order of
# the float32 sums, csrc/fastbp_bf16_rows.h):
#   BF16_PACKED    the packs of csrc/fastbp_bf16.h on AMX or AVX512-BF16:
#                  W's packs are made once per parameter values (Bf16Weights),
#                  a layer's outputs are packed as it writes them;
#   BF16_FLOAT     float32 products (gemm_nn) of the rounded values: W
#                  rounded once (Bf16Weights), z rounded in place. For the
#                  narrow layers (a side under BF16_PACK_MIN_WIDTH) whose
#                  32-wide packs would be mostly zeros, and where the CPU has
#                  neither instruction set (emulated packs only cost more);
#   BF16_ROUNDING  for blocks of fewer than BF16_ROUNDING_ROWS rows (one-row
#                  latency): both operands rounded as they are read, or where
#                  W's packs are at hand and AVX512-BF16 runs, A's rows
#                  rounded as read against the packs (the same sums in the
#                  same order). A call of so few rows has the packs only when
#                  its caller vouches that params are unchanged
#                  (Predictor.params_fixed): checking them would cost more
#                  than the product.
# Rows go in blocks of BF16_BLOCK_ROWS, on any number of threads: a row's
# block, so its path and its bits, depend only on m, never on the threads.

from libc.string cimport memcmp

cdef extern from "fastbp_bf16_rows.h" nogil:
    void fbp_bf16_round_f32(const float* x, float* out, Py_ssize_t n)
    void fbp_bf16_gemm_rounding(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, const float* A,
                                Py_ssize_t lda, const float* B, Py_ssize_t ldb, float* C,
                                Py_ssize_t ldc)
    void fbp_bf16_gemm_packed_rows_any(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                                       const float* A, Py_ssize_t lda, const uint16_t* Bp,
                                       float* C, Py_ssize_t ldc)
    int fbp_bf16_packed_rows_run()
    int FBP_BF16_EMULATED

cdef enum:
    BF16_ROUNDING = 0
    BF16_FLOAT = 1
    BF16_PACKED = 2

cdef Py_ssize_t BF16_BLOCK_ROWS = 128  # 64-256 within 8% (784-256-128-10, 784-128-10)
cdef Py_ssize_t BF16_ROUNDING_ROWS = 8
cdef int BF16_PACK_MIN_WIDTH = 8  # 128x10 on AMX: 8% less time than in float32


cdef inline int _bf16_layer_path(Py_ssize_t rows, Py_ssize_t k, Py_ssize_t n) noexcept nogil:
    if rows < BF16_ROUNDING_ROWS:
        return BF16_ROUNDING
    if (k < BF16_PACK_MIN_WIDTH or n < BF16_PACK_MIN_WIDTH
            or fbp_bf16_path() == FBP_BF16_EMULATED):
        return BF16_FLOAT
    return BF16_PACKED


cdef struct Bf16Job:
    const int* sizes
    const fbp_layer* layers
    int n_layers
    const float* params     # as given: biases, and W for BF16_ROUNDING
    const float* rounded    # W rounded to bfloat16 values (BF16_FLOAT)
    const uint16_t* packs   # W's packs, layer l's at pack_at[l] (BF16_PACKED)
    const Py_ssize_t* pack_at
    fbp_input x
    float* out
    float* work             # n_threads workspaces of work_per_thread floats
    Py_ssize_t work_per_thread
    Py_ssize_t z_floats     # each of a workspace's two z buffers
    Py_ssize_t m
    Py_ssize_t block_rows
    Py_ssize_t next_row
    bint check_finite
    int nonfinite
    bint packed_rows        # BF16_ROUNDING reads the packs
    int caller_cpu          # as PredictJob's


@cython.auto_pickle(False)
cdef class Bf16Weights:
    """The bfloat16 forms of one parameter vector's values, made at once:
    ``source``, a copy of the values they were made from (a predict compares
    the parameters with it and makes new forms when they differ), the
    rounded float32 copy ``rounded`` and the packs ``packs`` of each W."""
    cdef readonly object source, rounded, packs, pack_at


cdef Bf16Weights _bf16_weights(const float[::1] params, const fbp_layer* layers,
                               int n_layers):
    cdef Bf16Weights forms = Bf16Weights.__new__(Bf16Weights)
    cdef Py_ssize_t l, total = 0
    cdef Py_ssize_t[::1] pack_at = np.empty(n_layers, np.intp)
    for l in range(n_layers):
        pack_at[l] = total
        total += (<Py_ssize_t>fbp_bf16_b_size(layers[l].n_in, layers[l].n_out) + 31) // 32 * 32
    cdef cnp.ndarray source = np.array(params, np.float32)
    cdef cnp.ndarray rounded = aligned_empty(params.shape[0], np.float32)
    cdef cnp.ndarray packs = aligned_empty(max(total, 1), np.uint16)
    cdef const float* p = &params[0]
    cdef float* r = <float*>_data(rounded)
    cdef uint16_t* b = <uint16_t*>_data(packs)
    with nogil:
        memcpy(r, p, params.shape[0] * sizeof(float))  # the biases as they are
        for l in range(n_layers):
            fbp_bf16_round_f32(p + layers[l].W, r + layers[l].W,
                               <Py_ssize_t>layers[l].n_in * layers[l].n_out)
            fbp_bf16_pack_b(layers[l].n_in, layers[l].n_out, p + layers[l].W, layers[l].n_out,
                            1, b + pack_at[l])
    forms.source, forms.rounded, forms.packs = source, rounded, packs
    forms.pack_at = np.asarray(pack_at)
    return forms


cdef bint _bf16_current(Bf16Weights forms, const float[::1] params) except -1:
    """Whether ``forms`` were made from the values params holds now."""
    cdef const float* p = &params[0]
    cdef const float* s
    cdef int differ
    if forms is None:
        return False
    s = <const float*>_data(forms.source)
    with nogil:
        differ = memcmp(p, s, params.shape[0] * sizeof(float))
    return differ == 0


cdef void _bf16_dense_rows(const fbp_input* x, Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t n_in,
                           float* dense) noexcept nogil:
    """CSR rows [r0, r0 + rows) of x written out as dense rows."""
    cdef Py_ssize_t r, k, row
    cdef const float* values = <const float*>x.values
    memset(dense, 0, rows * n_in * sizeof(float))
    for r in range(rows):
        row = _csr_row(x, r0 + r)
        for k in range(x.indptr[row], x.indptr[row + 1]):
            dense[r * n_in + x.indices[k]] = values[k]


cdef void _bf16_forward_block(const Bf16Job* job, Py_ssize_t r0, Py_ssize_t rows,
                              float* z0, float* z1, uint16_t* Ap) noexcept nogil:
    """The outputs of rows [r0, r0 + rows) into job.out: z0 and z1 take the
    hidden layers' outputs in turn (z1 first holds X's rows when they are
    made dense or rounded), Ap the packed input of a BF16_PACKED layer."""
    cdef int l, n_layers = job.n_layers, ready = BF16_ROUNDING, path
    cdef const fbp_layer* layer
    cdef Py_ssize_t r, k, n, n_in = job.sizes[0]
    cdef const float* z_in
    cdef float* a
    if job.x.dense != NULL:
        z_in = <const float*>job.x.dense + r0 * n_in
    else:
        _bf16_dense_rows(&job.x, r0, rows, n_in, z1)
        z_in = z1
    for l in range(n_layers):
        layer = &job.layers[l]
        k = layer.n_in
        n = layer.n_out
        path = _bf16_layer_path(rows, k, n)
        a = job.out + r0 * n if l == n_layers - 1 else (z0 if l % 2 == 0 else z1)
        for r in range(rows):  # a = b + the product
            memcpy(a + r * n, job.params + layer.b, n * sizeof(float))
        if path == BF16_ROUNDING and job.packed_rows:
            fbp_bf16_gemm_packed_rows_any(rows, n, k, z_in, k, job.packs + job.pack_at[l], a, n)
        elif path == BF16_ROUNDING:
            fbp_bf16_gemm_rounding(rows, n, k, z_in, k, job.params + layer.W, n, a, n)
        elif path == BF16_PACKED:
            if ready != BF16_PACKED:  # X's rows: the layers after pack as they write
                fbp_bf16_pack_a(rows, k, z_in, k, 1, Ap)
            fbp_bf16_gemm_packed(rows, n, k, Ap, job.packs + job.pack_at[l], a, n, 1)
        else:
            if ready != BF16_FLOAT:  # X's rows, into z1 (free while layer 0 writes z0)
                fbp_bf16_round_f32(z_in, z1, rows * k)
                z_in = z1
            gemm_nn(<int>rows, <int>n, <int>k, z_in, job.rounded + layer.W, a)
        activate_rows(a, a, rows, n, layer.activation)
        if l < n_layers - 1:  # the next layer's input, as its path reads it
            ready = _bf16_layer_path(rows, n, job.sizes[l + 2])
            if ready == BF16_PACKED:
                fbp_bf16_pack_a(rows, n, a, n, 1, Ap)
            elif ready == BF16_FLOAT:
                fbp_bf16_round_f32(a, a, rows * n)
        z_in = a


cdef void _bf16_part(void* job_, int index) noexcept nogil:
    """Thread ``index``: the blocks of rows it claims."""
    cdef Bf16Job* job = <Bf16Job*>job_
    cdef float* z0 = job.work + index * job.work_per_thread
    cdef float* z1 = z0 + job.z_floats
    cdef uint16_t* Ap = <uint16_t*>(z1 + job.z_floats)
    cdef Py_ssize_t r0, rows, n_in = job.sizes[0]
    if index > 0:
        fbp_leave_cpu(job.caller_cpu)
    while True:
        r0 = fbp_claim(&job.next_row, job.block_rows)
        if r0 >= job.m:
            return
        rows = job.m - r0 if job.m - r0 < job.block_rows else job.block_rows
        if (job.check_finite and job.x.dense != NULL
                and _first_nonfinite(<const float*>job.x.dense + r0 * n_in, rows * n_in) >= 0):
            fbp_raise_flag(&job.nonfinite)  # read after the join
            continue
        _bf16_forward_block(job, r0, rows, z0, z1, Ap)


@cython.auto_pickle(False)
cdef class Bf16Predict:
    """A Predictor's bfloat16 state (compute="bfloat16"): the bfloat16 forms
    of its parameters, made at the first predict that uses them and again
    whenever the parameters' values have changed, and a spare workspace."""
    cdef Bf16Weights forms
    cdef object spare
    cdef bint fixed  # Predictor.params_fixed

    cdef int run(self, const fbp_layer* layers, int n_layers, const int* sizes,
                 const float[::1] params, X, float[:, ::1] out, int n_threads,
                 bint check_finite) except -2:
        """Predictor.predict's work in bfloat16 (same arguments, checked
        here); returns as it does."""
        cdef Bf16Job job
        cdef Bf16Weights forms = None
        cdef int i, status = 0
        cdef unsigned int saved_csr
        cdef Py_ssize_t m, max_in = 0, max_width = 0, block
        if isinstance(X, np.ndarray) and not (X.dtype == np.float32 and X.flags.c_contiguous
                                              and X.flags.aligned):
            if X.ndim != 2 or X.dtype.kind != "f":
                raise TypeError(f"X must be 2-D float32 or float64, got {_describe(X)}")
            X = np.ascontiguousarray(X, np.float32)
        m = input_rows(X, sizes[0], np.float32, &job.x)
        if not 1 <= n_threads <= FBP_MAX_THREADS:
            raise ValueError(f"n_threads must be in [1, {FBP_MAX_THREADS}], got {n_threads}")
        if out.shape[0] != m or out.shape[1] != sizes[n_layers]:
            raise ValueError("out must have X's rows and the network's outputs")
        if m == 0:
            return 1
        job.rounded = NULL
        job.packs = NULL
        job.pack_at = NULL
        job.packed_rows = False
        # some block multiplies the forms, or W's packs serve a few rows
        if m >= BF16_ROUNDING_ROWS or (self.fixed and fbp_bf16_packed_rows_run()):
            forms = self.forms
            if forms is None or not (self.fixed or _bf16_current(forms, params)):
                forms = self.forms = _bf16_weights(params, layers, n_layers)
            job.rounded = <const float*>_data(forms.rounded)
            job.packs = <const uint16_t*>_data(forms.packs)
            job.pack_at = <const Py_ssize_t*>_data(forms.pack_at)
            job.packed_rows = fbp_bf16_packed_rows_run()
        for i in range(n_layers + 1):
            max_width = max(max_width, sizes[i])
            if i < n_layers:
                max_in = max(max_in, sizes[i])
        block = min(m, BF16_BLOCK_ROWS)
        job.z_floats = (block * max_width + 15) // 16 * 16
        job.work_per_thread = (2 * job.z_floats
                               + (<Py_ssize_t>fbp_bf16_a_size(block, max_in) + 31) // 32 * 16)
        n_threads = <int>min(n_threads, (m + block - 1) // block)
        work, self.spare = self.spare, None  # another thread's call makes its own
        if work is None or work.shape[0] < n_threads * job.work_per_thread:
            work = aligned_empty(n_threads * job.work_per_thread, np.float32)
        job.sizes = sizes
        job.layers = layers
        job.n_layers = n_layers
        job.params = &params[0]
        job.out = &out[0, 0]
        job.work = <float*>_data(work)
        job.m = m
        job.block_rows = block
        job.next_row = 0
        job.check_finite = check_finite
        job.nonfinite = 0
        job.caller_cpu = -1
        with nogil:
            saved_csr = fbp_denormals_off()
            if n_threads > 1:
                job.caller_cpu = fbp_current_cpu()
                status = fbp_pool_run(n_threads, _bf16_part, &job)
            if n_threads == 1 or status != 0:
                job.caller_cpu = -1
                for i in range(n_threads):
                    _bf16_part(&job, i)
            fbp_denormals_restore(saved_csr)
        self.spare = work
        if job.nonfinite:
            return -1
        return n_threads if status == 0 else 1


def set_bf16_predict_tuning(Py_ssize_t block_rows=-1, Py_ssize_t rounding_rows=-1,
                            int pack_min_width=-1):
    """Tuning knobs of bfloat16 predict (benchmarks and tests): rows a block,
    blocks below which operands are rounded as read, the narrowest layer
    side that uses packs; -1 keeps one. Returns the previous three."""
    global BF16_BLOCK_ROWS, BF16_ROUNDING_ROWS, BF16_PACK_MIN_WIDTH
    old = (BF16_BLOCK_ROWS, BF16_ROUNDING_ROWS, BF16_PACK_MIN_WIDTH)
    if block_rows == 0 or rounding_rows == 0 or pack_min_width == 0:
        raise ValueError("the knobs are >= 1, or -1 to keep one")
    if block_rows > 0:
        BF16_BLOCK_ROWS = block_rows
    if rounding_rows > 0:
        BF16_ROUNDING_ROWS = rounding_rows
    if pack_min_width > 0:
        BF16_PACK_MIN_WIDTH = pack_min_width
    return old
