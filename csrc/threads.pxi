# Minibatch training on threads of fastbp's own (csrc/fastbp_threads.h): each
# thread takes its rows of a batch, or its columns of a large layer, then its
# block of the update. training.pxi starts them.

cdef struct TrainJob:
    # one train_rows_kernel call on n_threads threads; the state is shared
    const fbp_network* net
    const fbp_batches* data
    const fbp_optimizer_state* opt
    Py_ssize_t start, stop
    int n_threads
    fbp_barrier barrier
    # each thread's share of a batch's J and L2 sum; read after a barrier
    double J_part[64]
    double penalty_part[64]
    # with clipping, each norm part's sum of squares (step_rules.pxi)
    double norm_part[NORM_PARTS]
    # results, written by thread 0 (each thread advances a copy of opt and
    # counts the average's steps, so the caller stores thread 0's afterwards)
    int status
    fbp_totals totals
    fbp_optimizer_state opt_after
    Py_ssize_t ema_steps_after


cdef Py_ssize_t _threaded_workspace_size(const fbp_layer* layers, const int* sizes,
                                         int n_layers, Py_ssize_t rows) noexcept nogil:
    # z_1..z_L (and the a's kept), a_out, delta_1..delta_L in z's layout (every
    # layer's delta is kept for the update after the barrier), gathered X, T
    # and weight rows
    return rows * (2 * fbp_layers_z_width(layers, n_layers) + sizes[n_layers] + sizes[0]
                   + sizes[n_layers] + 1)


cdef inline Py_ssize_t _share(Py_ssize_t count, int index, int n_threads) noexcept nogil:
    """Start of thread ``index``'s contiguous share of ``count`` items."""
    return count * index // n_threads


# A layer whose W spans more than this many bytes is split by columns over
# the threads, not by rows: split by rows, every thread multiplies by all of
# W, which then streams from L3 once per thread. Two threads on a 2048 x
# 2048 layer (tools/split_rate.py), time of the column split over the row
# split at 32, 128 and 512 rows: forward 0.74x, 0.84x, 0.95x in float32
# (0.72x, 0.81x, 0.93x in float64); delta . W^T 0.57x, 0.88x, 0.90x (0.58x,
# 0.83x, 0.98x). 1024-2048-2048-10 fits on 2 threads ran 1.29x, 1.07x and
# 1.01x faster at batch 32, 128 and 512 in float32 (1.23x, 1.06x, 0.98x).
cdef Py_ssize_t COLUMN_SPLIT_MAX_ROWS = 16
# Small batches split columns too, whatever W's size: a thread with 16 rows
# or fewer spends as long copying W's panels for the tiles as multiplying by
# them. 2 threads, batch 32, row split -> column split, us a sample
# (fastbp's own threads, from an idle process, median of 5): 784-256-128-10
# float32 7.66 -> 7.03, float64 13.84 -> 12.49; 100-400-400-10 11.29 ->
# 9.47 and 18.78 -> 15.43; 256-256-256-10 5.33 -> 5.04 and 9.57 -> 9.29;
# at batch 64 the two were level (0.95-1.08x), at 128 the rows 4-11% faster.
cdef Py_ssize_t COLUMN_SPLIT_MIN_BYTES = 2 * 1024 * 1024
# threads take whole blocks of 64 columns: whole 4-vector panels of the
# float32 tiles (two of float64)
cdef Py_ssize_t COLUMN_BLOCK = 64


cdef inline bint _splits_columns(Py_ssize_t k_in, Py_ssize_t k_out, Py_ssize_t columns,
                                 int n_threads, size_t item,
                                 Py_ssize_t thread_rows) noexcept nogil:
    """Whether a product with W (k_in x k_out) splits its ``columns`` output
    columns over the threads, whose shares of a batch are ``thread_rows``
    rows (or fewer)."""
    return ((k_in * k_out * <Py_ssize_t>item > COLUMN_SPLIT_MIN_BYTES
             or thread_rows <= COLUMN_SPLIT_MAX_ROWS)
            and columns >= COLUMN_BLOCK * n_threads)


cdef void _column_split_plan(const int* sizes, int n_layers, Py_ssize_t batch_size,
                            int n_threads, size_t item, bint dense,
                            bint* forward_columns, bint* backward_columns) noexcept nogil:
    """Which layers' products the training threads split by columns: the
    forward product of layer l (hidden layers only, the first only on dense
    input) and the product sending delta back through W_l (l > 0)."""
    cdef int l
    cdef Py_ssize_t thread_rows = (batch_size + n_threads - 1) // n_threads
    for l in range(n_layers):
        forward_columns[l] = (l < n_layers - 1 and (l > 0 or dense)
                              and _splits_columns(sizes[l], sizes[l + 1], sizes[l + 1],
                                                  n_threads, item, thread_rows))
        backward_columns[l] = l > 0 and _splits_columns(sizes[l], sizes[l + 1], sizes[l],
                                                        n_threads, item, thread_rows)


cdef inline Py_ssize_t _column_share(Py_ssize_t count, int index, int n_threads) noexcept nogil:
    """Start of thread ``index``'s columns: its even share rounded to whole
    blocks, the rest to the last thread."""
    cdef Py_ssize_t start
    if index >= n_threads:
        return count
    start = (_share(count, index, n_threads) + COLUMN_BLOCK // 2) // COLUMN_BLOCK * COLUMN_BLOCK
    return start if start < count else count


cdef void _forward_layer_columns(const fbp_network* net, const fbp_input* xb, int l,
                                 Py_ssize_t m, Py_ssize_t c0, Py_ssize_t c1,
                                 floating* dtype_tag) noexcept nogil:
    """Columns [c0, c1) of hidden layer l's z for all m rows: z = f(z_prev . W
    + b), times its dropout mask; layer 0's input must be dense.
    ``dtype_tag`` (NULL) picks the scalar type."""
    cdef const fbp_layer* layer = &net.layers[l]
    cdef Py_ssize_t r, n_in = layer.n_in, n_out = layer.n_out, count = c1 - c0
    cdef floating* work = <floating*>net.work
    cdef const floating* W = <const floating*>net.params + layer.W
    cdef const floating* b = <const floating*>net.params + layer.b
    cdef const floating* z_prev
    cdef floating* z = _layer_z(net, work, l, m) + c0
    cdef floating* a = _layer_a(net, work, l, m) + c0  # z, unless the layer keeps a
    if count <= 0:
        return
    z_prev = <const floating*>xb.dense if l == 0 else _layer_z(net, work, l - 1, m)
    for r in range(m):
        memcpy(a + r * n_out, b + c0, count * sizeof(floating))
    gemm_nn_ld(<int>m, <int>count, <int>n_in, z_prev, <int>n_in, W + c0, <int>n_out, a,
               <int>n_out)
    for r in range(m):
        activate_rows(a + r * n_out, z + r * n_out, 1, count, layer.activation)
    if layer.train_op == FBP_OP_DROPOUT:
        dropout_forward(net, l, 0, m, c0, c1, m, dtype_tag)


cdef void _backward_block(const fbp_network* net, int l, Py_ssize_t m, Py_ssize_t r0,
                          Py_ssize_t rows, Py_ssize_t c0, Py_ssize_t c1,
                          floating* deltas) noexcept nogil:
    """Rows [r0, r0 + rows) and columns [c0, c1) of delta_l = (delta_{l+1} .
    W_l^T) * f'(a_l) (times z_l's dropout mask), with the old W_l: they need
    only rows [c0, c1) of W_l.
    delta_l (the one for layer l - 1's z) is at z_l's place in ``deltas``."""
    cdef const fbp_layer* layer = &net.layers[l]
    cdef Py_ssize_t r, k_in = layer.n_in, k_out = layer.n_out, count = c1 - c0
    cdef const floating* W = <const floating*>net.params + layer.W + c0 * k_out
    cdef const floating* z = _layer_z(net, <floating*>net.work, l - 1, m) + r0 * k_in + c0
    cdef floating* delta = _layer_z(net, deltas, l - 1, m) + r0 * k_in + c0
    if count <= 0 or rows <= 0:
        return
    if count == k_in:  # whole rows: one contiguous block
        memset(delta, 0, rows * k_in * sizeof(floating))
    else:
        for r in range(rows):
            memset(delta + r * k_in, 0, count * sizeof(floating))
    gemm_nt_ld(<int>rows, <int>count, <int>k_out, _layer_z(net, deltas, l, m) + r0 * k_out, W,
               delta, <int>k_in)
    if count == k_in:
        multiply_layer_derivative(net, l - 1, m, r0 * k_in, z, delta, rows * k_in)
    else:
        for r in range(rows):
            multiply_layer_derivative(net, l - 1, m, (r0 + r) * k_in + c0, z + r * k_in,
                                      delta + r * k_in, count)


cdef double _own_deltas(TrainJob* job, const fbp_network* net, int index,
                        const fbp_input* xb, const floating* tb, const floating* wb,
                        double sw_sum, Py_ssize_t m, Py_ssize_t r0, Py_ssize_t rows,
                        const bint* forward_columns,
                        const bint* backward_columns) noexcept nogil:
    """Thread ``index``'s part of an m-row batch's forward pass, output delta
    and deltas of every layer (old weights), layer by layer: a layer marked
    in ``forward_columns`` (``backward_columns``) computes this thread's
    columns of z_{l+1} (of delta_l) for all m rows, the others rows [r0, r0 +
    rows). A barrier comes before a layer that reads what other threads
    wrote; with no layer marked there is none. Returns the share of J's data
    term of the thread's rows. ``net`` is the thread's view of job.net,
    whose drop_first is the batch's."""
    cdef int l, n_layers = net.n_layers, n_threads = job.n_threads
    cdef Py_ssize_t n_in = net.sizes[0], n_out = net.sizes[n_layers]
    cdef floating* work = <floating*>net.work
    cdef floating* a_out = _a_out(net, work, m)
    cdef floating* deltas = a_out + m * n_out  # laid out as z_1..z_L (_layer_z)
    cdef double J
    cdef fbp_input x_own = input_rows_from(xb, r0, n_in, <floating*>NULL)
    for l in range(n_layers):
        if l > 0 and (forward_columns[l] or forward_columns[l - 1]):
            fbp_barrier_wait(&job.barrier)  # z_l holds other threads' parts
        if forward_columns[l]:
            _forward_layer_columns(net, xb, l, m,
                                   _column_share(net.layers[l].n_out, index, n_threads),
                                   _column_share(net.layers[l].n_out, index + 1, n_threads),
                                   <floating*>NULL)
        else:
            forward_layer_rows(net, &x_own, l, r0, rows, m, <floating*>NULL)
    J = output_delta(a_out + r0 * n_out, _layer_z(net, work, n_layers - 1, m) + r0 * n_out,
                     tb + r0 * n_out, _layer_z(net, deltas, n_layers - 1, m) + r0 * n_out, rows,
                     n_out, net.loss, net.loss_param, net.layers[n_layers - 1].activation,
                     wb + r0 if wb != NULL else NULL, sw_sum)
    for l in range(n_layers - 1, 0, -1):
        if backward_columns[l] or (l < n_layers - 1 and backward_columns[l + 1]):
            fbp_barrier_wait(&job.barrier)  # delta_{l+1} holds other threads' parts
        if backward_columns[l]:
            _backward_block(net, l, m, 0, m, _column_share(net.layers[l].n_in, index, n_threads),
                            _column_share(net.layers[l].n_in, index + 1, n_threads), deltas)
        else:
            _backward_block(net, l, m, r0, rows, 0, net.layers[l].n_in, deltas)
    return J


cdef double _update_own_block(const fbp_network* net, const fbp_optimizer_state* opt,
                              const fbp_input* xb, double sw_sum, Py_ssize_t m, int index,
                              int n_threads, StepRates rates, bint clipping,
                              floating* dtype_tag) noexcept nogil:
    """After every thread's deltas: thread ``index``'s rows [i0, i1) of every
    W and columns [c0, c1) of every b take the optimiser step (a sum over
    all m rows). Returns the L2 term of those rows of W.

    W -= lr (z_prev^T delta + l2/m W) on contiguous blocks of W; each thread
    packs only its part of z_prev for the gemm. With ``clipping`` only the
    gradient of the blocks is written: the step waits for the whole
    gradient's norm (_finish_own_blocks).
    """
    cdef const fbp_layer* layer
    cdef int l, t, n_layers = net.n_layers
    cdef Py_ssize_t k_in, k_out, i, i0, i1, c0, c1, r, w_off, count
    cdef floating* params = <floating*>net.params
    cdef floating* grad = <floating*>net.grad
    cdef floating* work = <floating*>net.work
    cdef floating* deltas = _a_out(net, work, m) + m * net.sizes[n_layers]
    cdef floating* delta
    cdef floating* W
    cdef floating* dW
    cdef floating* p
    cdef const floating* z_prev
    cdef double penalty = 0, l2_over_m = net.l2 / sw_sum
    cdef floating step = <floating>(-opt.lr), shrink = <floating>(1 - opt.lr * l2_over_m)
    cdef bint plain = optimizer_is_plain(opt) and not clipping
    cdef bint sparse_w0 = (optimizer_steps_marked_rows(opt) and xb.dense == NULL
                           and net.row_marks != NULL and not clipping)
    for l in range(n_layers):
        layer = &net.layers[l]
        k_in = layer.n_in
        k_out = layer.n_out
        i0 = _share(k_in, index, n_threads)
        i1 = _share(k_in, index + 1, n_threads)
        c0 = _share(k_out, index, n_threads)
        c1 = _share(k_out, index + 1, n_threads)
        W = params + layer.W
        z_prev = _layer_z(net, work, l - 1, m) if l > 0 else NULL  # layer 0's input is xb
        delta = _layer_z(net, deltas, l, m)
        if plain:
            # the step folds into the gemm, as in backward_sgd
            if net.l2 != 0:
                penalty += l2_shrink(W + i0 * k_out, (i1 - i0) * k_out, shrink)
            if l == 0:
                input_gemm_tn(xb, i0, i1, <int>k_out, <int>k_in, <int>m, step, delta, W)
            elif i1 > i0:
                gemm_tn_ld(<int>(i1 - i0), <int>k_out, <int>m, step, z_prev + i0,
                           <int>k_in, delta, W + i0 * k_out)
            p = params + layer.b
            for r in range(m):
                for i in range(c0, c1):
                    p[i] += step * delta[r * k_out + i]
            continue
        # gradient of the block, then the optimiser step on it
        dW = grad + layer.W
        if l == 0 and sparse_w0:
            # as in train_rows_kernel: this block of W_0 steps in one pass with
            # its L2 term; dW holds x^T delta on the rows marked
            input_gradient_marked(xb, i0, i1, <int>k_out, <int>m, delta, dW, net.row_marks)
        elif net.l2 != 0:
            penalty += l2_gradient(W + i0 * k_out, dW + i0 * k_out, (i1 - i0) * k_out,
                                   l2_over_m)
        else:
            memset(dW + i0 * k_out, 0, (i1 - i0) * k_out * sizeof(floating))
        if l == 0:
            if not sparse_w0:
                input_gemm_tn(xb, i0, i1, <int>k_out, <int>k_in, <int>m, 1, delta, dW)
        elif i1 > i0:
            gemm_tn_ld(<int>(i1 - i0), <int>k_out, <int>m, 1, z_prev + i0, <int>k_in,
                       delta, dW + i0 * k_out)
        p = grad + layer.b  # the bias gradient
        memset(p + c0, 0, (c1 - c0) * sizeof(floating))
        for r in range(m):
            for i in range(c0, c1):
                p[i] += delta[r * k_out + i]
        if clipping:
            continue
        # the step on this thread's rows of W, then on its part of b
        w_off = layer.W + i0 * k_out
        count = (i1 - i0) * k_out
        if l == 0 and sparse_w0:
            penalty += optimizer_marked_rows_step(opt, net, i0, i1, l2_over_m, rates, W)
            count = 0
        for t in range(2):
            optimizer_step(opt, params, w_off, count, grad + w_off, rates)
            w_off = layer.b + c0
            count = c1 - c0
    return 0.5 * l2_over_m * penalty


cdef void _finish_own_blocks(const fbp_network* net, const fbp_optimizer_state* opt,
                             int index, int n_threads, StepRates rates, bint clipping,
                             double coef, Py_ssize_t ema_steps,
                             floating* dtype_tag) noexcept nogil:
    """The step rules on thread ``index``'s blocks (as _update_own_block's:
    rows [i0, i1) of every W, columns [c0, c1) of every b): with
    ``clipping``, the gradient scaled by ``coef`` and the optimiser's step;
    then, with an average, its step ``ema_steps`` + 1 (step_rules.pxi)."""
    cdef const fbp_layer* layer
    cdef int block
    cdef Py_ssize_t first, last, offset, count
    cdef floating* params = <floating*>net.params
    cdef floating* grad = <floating*>net.grad
    cdef bint averaging = net.rules.ema != NULL
    for block in range(2 * net.n_layers):
        layer = &net.layers[block // 2]
        if block % 2 == 0:  # rows of W
            first = _share(layer.n_in, index, n_threads)
            last = _share(layer.n_in, index + 1, n_threads)
            offset = layer.W + first * layer.n_out
            count = (last - first) * layer.n_out
        else:  # columns of b
            first = _share(layer.n_out, index, n_threads)
            last = _share(layer.n_out, index + 1, n_threads)
            offset = layer.b + first
            count = last - first
        if clipping:
            scale_gradient(grad, offset, count, coef)
            optimizer_step(opt, params, offset, count, grad + offset, rates)
        if averaging:
            average_params(net.rules, ema_steps, params, offset, count)


cdef double _clip_coefficient(TrainJob* job, int index, floating* dtype_tag) noexcept nogil:
    """After every thread's blocks of the gradient: clip_coefficient of the
    whole gradient, the same on every thread (each sums its norm parts, then
    all add every part in order, as gradient_squares does on one thread)."""
    cdef const fbp_network* net = job.net
    cdef int part, n_threads = job.n_threads
    cdef double squares = 0
    fbp_barrier_wait(&job.barrier)  # the whole gradient is written
    for part in range(_share(NORM_PARTS, index, n_threads),
                      _share(NORM_PARTS, index + 1, n_threads)):
        job.norm_part[part] = gradient_part_squares(net, part, dtype_tag)
    fbp_barrier_wait(&job.barrier)  # every part is summed
    for part in range(NORM_PARTS):
        squares += job.norm_part[part]
    return clip_coefficient(squares, net.rules.clip_norm)


cdef void _train_part(TrainJob* job, int index, floating* dtype_tag) noexcept nogil:
    """Thread ``index``'s part of train_rows_kernel's minibatch loop.

    Per batch: forward pass, output delta and the deltas of all layers on its
    own rows (they use the old weights and only those rows), except that a
    large W's products split their columns (_own_deltas); a barrier; then
    the update of its own columns of every W and b (a sum over all rows); a
    barrier. Every thread sees the same J after the first barrier, so all
    stop at the same batch when it is not finite.
    """
    # this thread's view of the network: dropout's draws need the batch's position
    cdef fbp_network own = job.net[0]
    cdef const fbp_network* net = &own
    cdef const fbp_batches* data = job.data
    cdef fbp_optimizer_state opt = job.opt[0]  # this thread's copy, advanced per batch
    cdef const int* sizes = net.sizes
    cdef int l, t, n_layers = net.n_layers, n_threads = job.n_threads
    cdef Py_ssize_t B = data.batch_size, n_in = sizes[0], n_out = sizes[n_layers]
    cdef Py_ssize_t pos = job.start, m, r0, rows
    cdef floating* x_rows = <floating*>net.work \
        + _threaded_workspace_size(net.layers, sizes, n_layers, B) - B * (n_in + n_out + 1)
    cdef floating* t_rows = x_rows + B * n_in
    cdef floating* w_rows = t_rows + B * n_out
    cdef fbp_input xb
    cdef const floating* tb
    cdef const floating* wb
    cdef double J, penalty, sw_sum
    cdef StepRates rates
    cdef bint forward_columns[64]
    cdef bint backward_columns[64]
    cdef bint clipping = net.rules != NULL and net.rules.clip_norm > 0
    cdef Py_ssize_t ema_steps = net.rules.ema_steps if net.rules != NULL else 0
    cdef double coef = 1

    _column_split_plan(sizes, n_layers, B, n_threads, sizeof(floating), data.X != NULL,
                       forward_columns, backward_columns)
    while pos < job.stop:
        m = B if pos + B <= job.stop else job.stop - pos
        r0 = _share(m, index, n_threads)
        rows = _share(m, index + 1, n_threads) - r0
        # each thread gathers its own rows; all sum the same weights alike
        sw_sum = _batch_rows(data, pos, m, r0, rows, n_in, n_out, x_rows, t_rows, w_rows,
                             &xb, &tb, &wb)
        if data.order != NULL and forward_columns[0]:
            fbp_barrier_wait(&job.barrier)  # every thread's rows are gathered
        own.drop_first = job.net.drop_first + pos
        job.J_part[index] = _own_deltas(job, net, index, &xb, tb, wb, sw_sum, m, r0, rows,
                                        forward_columns, backward_columns)
        fbp_barrier_wait(&job.barrier)

        J = 0
        for t in range(n_threads):
            J += job.J_part[t]
        if not isfinite(J):
            if index == 0:
                job.status = 1
            break
        optimizer_advance(&opt, &rates)
        job.penalty_part[index] = _update_own_block(net, &opt, &xb, sw_sum, m, index, n_threads,
                                                    rates, clipping, dtype_tag)
        if net.rules != NULL:
            if clipping:
                coef = _clip_coefficient(job, index, dtype_tag)
            _finish_own_blocks(net, &opt, index, n_threads, rates, clipping, coef, ema_steps,
                               dtype_tag)
            if net.rules.ema != NULL:
                ema_steps += 1
        fbp_barrier_wait(&job.barrier)
        if index == 0:
            penalty = 0
            for t in range(n_threads):
                penalty += job.penalty_part[t]
            job.totals.loss_sum += J * m
            job.totals.penalty_sum += penalty * m
            job.totals.rows_done += m
        pos += m
    if index == 0:
        job.opt_after = opt
        job.ema_steps_after = ema_steps


cdef void _train_part_d(void* job, int index) noexcept nogil:
    _train_part(<TrainJob*>job, index, <double*>NULL)


cdef void _train_part_f(void* job, int index) noexcept nogil:
    _train_part(<TrainJob*>job, index, <float*>NULL)
