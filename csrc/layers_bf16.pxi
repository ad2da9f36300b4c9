# Mixed-precision training (compute_dtype "bfloat16", float32 params): a
# layer's three products -- a += z_prev . W, delta_prev = delta . W^T and
# dW += z_prev^T . delta -- take their operands rounded to bfloat16 (nearest,
# ties to even) and sum in float32; biases, activations, losses and the
# optimiser stay float32. Here: the plan of a fit's buffers, the products'
# shares for threads, W's packs and the small way's products; the loop that
# runs them is training_bf16.pxi's.
#
# Two ways to the same rounding, chosen per layer once per Trainer:
# - packed (fastbp_bf16.h): W's two packs made once a step, activations and
#   deltas packed before each product; AMX, AVX512-BF16 or emulated;
# - small (a width or the batch size <= BF16_SMALL): the operands rounded
#   to bfloat16 values held in float32 (W's once a step), then the float32
#   product (products.pxi). Padding a few units to the packs' 32 would cost
#   more than the product. The products of two bfloat16 values are exact
#   in float32, so the two ways differ only in the order of the float32
#   sums (and the instructions' bfloat16 denormals taken as zero).

#: a layer with a width (or a batch size) at most this takes the small way
cdef Py_ssize_t BF16_SMALL = 16
#: a fit's team of threads starts when a batch has a third this many
#: multiply-adds, and a product is shared for each sixteenth of it (2^25:
#: ~100 us of AMX work, against ~30 us to start a thread)
cdef Py_ssize_t BF16_THREAD_MACS = 1 << 25


cdef struct Bf16Work:
    # per layer: the small way (1) or the packs (0), chosen by bf16_plan
    bint small[FBP_MAX_LAYERS]
    # packed: W's pack as B (k = n_in; the forward product) and as A (k =
    # n_out; layers l > 0: delta_prev^T = W . delta^T, since W's rows pack
    # as A at memory speed, and W^T's as B took 4x longer at 2048 x 2048)
    uint16_t* w_pack[FBP_MAX_LAYERS]
    uint16_t* wa_pack[FBP_MAX_LAYERS]
    # small: W's values rounded to bfloat16, in float32
    float* w_round[FBP_MAX_LAYERS]
    # scratch for one product at a time: an A pack and a B pack, or the
    # two operands rounded
    uint16_t* a_pack
    uint16_t* b_pack
    float* a_round
    float* b_round


cdef inline Py_ssize_t _bf16_cells(size_t n, size_t item) noexcept nogil:
    # n items of ``item`` bytes in whole 64-byte lines, counted in floats
    return <Py_ssize_t>((n * item + 63) // 64 * 16)


cdef Py_ssize_t bf16_plan(Bf16Work* work, const fbp_layer* layers, int n_layers,
                          Py_ssize_t batch_size, float* base) noexcept nogil:
    """Choose each layer's way and lay the buffers out from ``base`` (NULL:
    only count). Returns the floats the layout takes."""
    cdef int l
    cdef Py_ssize_t n_in, n_out, used = 0, widest = 0
    cdef size_t a_size = 0, b_size = 0
    cdef bint small
    for l in range(n_layers):
        n_in = layers[l].n_in
        n_out = layers[l].n_out
        small = n_in <= BF16_SMALL or n_out <= BF16_SMALL or batch_size <= BF16_SMALL
        work.small[l] = small
        work.w_pack[l] = work.wa_pack[l] = NULL
        work.w_round[l] = NULL
        widest = max(widest, max(n_in, n_out))
        if small:
            work.w_round[l] = base + used if base != NULL else NULL
            used += _bf16_cells(n_in * n_out, sizeof(float))
            continue
        work.w_pack[l] = <uint16_t*>(base + used) if base != NULL else NULL
        used += _bf16_cells(fbp_bf16_b_size(n_in, n_out), sizeof(uint16_t))
        if l > 0:
            work.wa_pack[l] = <uint16_t*>(base + used) if base != NULL else NULL
            used += _bf16_cells(fbp_bf16_a_size(n_in, n_out), sizeof(uint16_t))
        # A: rows of z_prev (forward), z_prev^T (gradient); B: delta (gradient),
        # delta^T (the delta product)
        a_size = max(a_size, max(fbp_bf16_a_size(batch_size, n_in),
                                 fbp_bf16_a_size(n_in, batch_size)))
        b_size = max(b_size, max(fbp_bf16_b_size(batch_size, n_out),
                                 fbp_bf16_b_size(n_out, batch_size)))
    work.a_pack = <uint16_t*>(base + used) if base != NULL else NULL
    used += _bf16_cells(a_size, sizeof(uint16_t))
    work.b_pack = <uint16_t*>(base + used) if base != NULL else NULL
    used += _bf16_cells(b_size, sizeof(uint16_t))
    work.a_round = base + used if base != NULL else NULL
    used += _bf16_cells(batch_size * widest, sizeof(float))
    work.b_round = base + used if base != NULL else NULL
    used += _bf16_cells(batch_size * widest, sizeof(float))
    return used


cdef struct _Bf16Product:
    Py_ssize_t m, n, k, ldc
    const uint16_t* Ap
    const uint16_t* Bp
    float* C
    int accumulate
    int n_threads
    bint by_rows
    # operands still to pack (NULL: already packed): A(i, p) = A[i a_rs + p a_cs]
    const float* A
    Py_ssize_t a_rs, a_cs
    const float* B
    Py_ssize_t b_rs, b_cs


cdef inline Py_ssize_t _block_share(Py_ssize_t count, int index, int n) noexcept nogil:
    # start of thread index's share of count items in whole blocks of 32
    return min((count + 31) // 32 * index // n * 32, count)


cdef void _bf16_pack_share(const _Bf16Product* job, int index) noexcept nogil:
    # thread index packs its 32-row blocks of A and 32-column panels of B
    # (those not packed yet)
    cdef int n = job.n_threads
    cdef Py_ssize_t lo, hi
    if job.A != NULL:
        lo = _block_share(job.m, index, n)
        hi = _block_share(job.m, index + 1, n)
        if hi > lo:
            fbp_bf16_pack_a(hi - lo, job.k, job.A + lo * job.a_rs, job.a_rs, job.a_cs,
                            <uint16_t*>job.Ap + lo * fbp_bf16_lda(job.k))
    if job.B != NULL:
        lo = _block_share(job.n, index, n)
        hi = _block_share(job.n, index + 1, n)
        if hi > lo:
            fbp_bf16_pack_b(job.k, hi - lo, job.B + lo * job.b_cs, job.b_rs, job.b_cs,
                            <uint16_t*>job.Bp + lo * fbp_bf16_up(job.k))


cdef void _bf16_gemm_share(const _Bf16Product* job, int index) noexcept nogil:
    # once every block of the packs is written: thread index's share of
    # whole 32-row (or 32-column) blocks of C; every entry of C sums the same
    # terms in the same order on any thread count
    cdef int n = job.n_threads
    cdef Py_ssize_t lo = _block_share(job.m if job.by_rows else job.n, index, n)
    cdef Py_ssize_t hi = _block_share(job.m if job.by_rows else job.n, index + 1, n)
    if hi <= lo:
        return
    if job.by_rows:
        fbp_bf16_gemm_packed(hi - lo, job.n, job.k, job.Ap + lo * fbp_bf16_lda(job.k),
                             job.Bp, job.C + lo * job.ldc, job.ldc, job.accumulate)
    else:
        fbp_bf16_gemm_packed(job.m, hi - lo, job.k, job.Ap,
                             job.Bp + lo * fbp_bf16_up(job.k), job.C + lo, job.ldc,
                             job.accumulate)


cdef int _bf16_product_job(_Bf16Product* job, Py_ssize_t thread_macs, int n_threads,
                           Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                           const float* A, Py_ssize_t a_rs, Py_ssize_t a_cs, uint16_t* Ap,
                           const float* B, Py_ssize_t b_rs, Py_ssize_t b_cs, uint16_t* Bp,
                           float* C, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """Fill ``job`` for C (m x n, rows ldc apart) = A.B, or += with
    ``accumulate``, A packed into Ap first unless NULL (then Ap holds its
    pack), B likewise, on up to ``n_threads`` threads, one for each
    ``thread_macs`` multiply-adds, C split along its longer side; returns
    the threads it takes (job.n_threads)."""
    cdef int threads = <int>min(<Py_ssize_t>n_threads, m * n * k // max(thread_macs, 1))
    job.by_rows = m >= n
    threads = <int>max(1, min(<Py_ssize_t>threads, ((m if job.by_rows else n) + 31) // 32))
    job.m = m
    job.n = n
    job.k = k
    job.ldc = ldc
    job.Ap = Ap
    job.Bp = Bp
    job.C = C
    job.accumulate = accumulate
    job.n_threads = threads
    job.A = A
    job.a_rs = a_rs
    job.a_cs = a_cs
    job.B = B
    job.b_rs = b_rs
    job.b_cs = b_cs
    return threads


def set_bf16_train_threading(Py_ssize_t thread_macs=-1):
    """Multiply-adds a thread of bfloat16 training is worth
    (BF16_THREAD_MACS: the team's start, a sixteenth of it a product's
    share; benchmarks and tests, -1 keeps it). Returns the previous value."""
    global BF16_THREAD_MACS
    old = BF16_THREAD_MACS
    if thread_macs == 0 or thread_macs < -1:
        raise ValueError("thread_macs is >= 1, or -1 to keep it")
    if thread_macs > 0:
        BF16_THREAD_MACS = thread_macs
    return old


cdef inline bint bf16_on(const fbp_network* net, floating* dtype_tag) noexcept nogil:
    """Whether net's products run in bfloat16 (float32 networks only)."""
    if floating is float:
        return net.bf16 != NULL
    return False


cdef void _round_values(const float* x, float* out, Py_ssize_t n) noexcept nogil:
    # x rounded to bfloat16, held in float32 (exactly)
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = fbp_bf16_widen(fbp_bf16_round(x[i]))


cdef struct _Bf16Packing:
    const fbp_network* net
    int n_threads


cdef void _bf16_pack_part(void* p, int index) noexcept nogil:
    # thread index's share of every W's packs: whole 32-column panels of the
    # B pack, whole 32-row blocks of the A pack (each entry packed the same)
    cdef _Bf16Packing* job = <_Bf16Packing*>p
    cdef const fbp_network* net = job.net
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef const float* params = <const float*>net.params
    cdef const fbp_layer* layer
    cdef int l, n = job.n_threads
    cdef Py_ssize_t blocks, lo, hi
    for l in range(net.n_layers):
        layer = &net.layers[l]
        if work.small[l]:
            if index == 0:
                _round_values(params + layer.W, work.w_round[l], layer.n_in * layer.n_out)
            continue
        blocks = (layer.n_out + 31) // 32
        lo = blocks * index // n * 32
        hi = min(blocks * (index + 1) // n * 32, <Py_ssize_t>layer.n_out)
        if hi > lo:
            fbp_bf16_pack_b(layer.n_in, hi - lo, params + layer.W + lo, layer.n_out, 1,
                            work.w_pack[l] + lo * fbp_bf16_up(layer.n_in))
        if l > 0:
            blocks = (layer.n_in + 31) // 32
            lo = blocks * index // n * 32
            hi = min(blocks * (index + 1) // n * 32, <Py_ssize_t>layer.n_in)
            if hi > lo:
                fbp_bf16_pack_a(hi - lo, layer.n_out, params + layer.W + lo * layer.n_out,
                                layer.n_out, 1, work.wa_pack[l] + lo * fbp_bf16_lda(layer.n_out))


cdef void bf16_pack_weight_rows(const fbp_network* net, int l, Py_ssize_t r0,
                                Py_ssize_t r1) noexcept nogil:
    """Rows [r0, r1) of W_l (r0 even) into its packs (or rounded, the small
    way) after a step changed them, while they are in cache: only their
    values are written, the packs' zeros stay from _bf16_pack_part. Each
    entry is the one _bf16_pack_part writes."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef const fbp_layer* layer = &net.layers[l]
    cdef const float* W = <const float*>net.params + layer.W
    cdef Py_ssize_t i, j, n_in = layer.n_in, n_out = layer.n_out
    cdef Py_ssize_t k_pad = fbp_bf16_up(n_in), k_even = n_in & ~(<Py_ssize_t>1)
    cdef Py_ssize_t lda = fbp_bf16_lda(n_out)
    cdef uint16_t* Bp = work.w_pack[l]
    if work.small[l]:
        _round_values(W + r0 * n_out, work.w_round[l] + r0 * n_out, (r1 - r0) * n_out)
        return
    if min(r1, k_even) > r0:  # pairs of rows: row p's entries at Bp + 32 p on
        fbp_bf16_pack_b_rows(min(r1, k_even) - r0, n_out, k_pad, W + r0 * n_out, n_out,
                             Bp + r0 * 32)
    if k_even < n_in and r0 <= k_even < r1:  # an odd k's last row, paired with zeros
        for j in range(n_out):
            Bp[(j & ~31) * k_pad + k_even * 32 + 2 * (j & 31)] = \
                fbp_bf16_round(W[k_even * n_out + j])
    if l > 0:
        for i in range(r0, r1):
            fbp_bf16_round_n(W + i * n_out, work.wa_pack[l] + i * lda, n_out)


cdef void bf16_round_rows(const float* x, float* out, Py_ssize_t r0, Py_ssize_t r1,
                          Py_ssize_t cols) noexcept nogil:
    """Rows [r0, r1) of out = x (rows of ``cols``) rounded to bfloat16 in
    float32: a thread's share of a small-way product's operand."""
    _round_values(x + r0 * cols, out + r0 * cols, (r1 - r0) * cols)


cdef void bf16_forward_product(const fbp_network* net, Py_ssize_t l, Py_ssize_t m,
                               float* a) noexcept nogil:
    """a (m x n_out) += round(z_prev) (m x n_in, in a_round: bf16_round_rows)
    . W_l, the small way."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef int n_in = net.layers[l].n_in, n_out = net.layers[l].n_out
    gemm_nn(<int>m, n_out, n_in, <const float*>work.a_round,
            <const float*>work.w_round[l], a)


cdef inline void bf16_transpose_rows(const float* x, Py_ssize_t rows, Py_ssize_t cols,
                                     Py_ssize_t c0, Py_ssize_t c1, float* out) noexcept nogil:
    """Rows [c0, c1) of out (cols x rows) = x^T (fbp_f32_transpose_rows:
    8 x 8 blocks in AVX2 registers where it runs)."""
    fbp_f32_transpose_rows(x, rows, cols, c0, c1, out)


cdef void bf16_small_gradients(const fbp_network* net, Py_ssize_t l, Py_ssize_t m,
                               const float* delta, float* dW, bint accumulate,
                               float* delta_prev) noexcept nogil:
    """The small way's backward products of layer l, round(z_prev) (m x n_in)
    in a_round already (bf16_round_rows): dW_l (n_in x n_out) =
    round(z_prev)^T . round(delta), or += with ``accumulate`` (dW holding
    the L2 term); then, unless ``delta_prev`` is NULL, delta_prev (m x
    n_in, zeros) += round(delta) . W_l^T. delta is rounded once, for both."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef int n_in = net.layers[l].n_in, n_out = net.layers[l].n_out
    if not accumulate:
        memset(dW, 0, n_in * n_out * sizeof(float))
    _round_values(delta, work.b_round, m * n_out)
    gemm_tn(n_in, n_out, <int>m, <float>1, <const float*>work.a_round,
            <const float*>work.b_round, dW)
    if delta_prev != NULL:
        gemm_nt(<int>m, n_in, n_out, <const float*>work.b_round,
                <const float*>work.w_round[l], delta_prev)
