# The minibatch loop of a bfloat16 fit (net.bf16, layers_bf16.pxi), on one
# thread or on a team of its own started once per call (as float32's
# _train_part): every phase of a batch is split over the team between
# barriers, in pieces whose values do not depend on the split, so a fit
# has the same bits on any thread count (tests/test_bf16_threads.py):
# - the packed products and their operands' packs: whole 32-row or
#   32-column blocks (_bf16_pack_share, _bf16_gemm_share);
# - gathering the rows, the bias rows, the activations, the delta
#   transposes, f' and the small way's operands rounded (z_prev) or zeroed
#   (delta_prev): rows of the batch; the bias sums: columns;
# - the step, W's packs for the next batch made in the same pass while W's
#   rows are in cache (W read once a step), clipping's scaling and the
#   average: whole 32-row blocks of each W, and a share of each b. Without
#   clipping or an L2 term, a packed layer's dW is never written whole: each
#   32 rows of it are computed into a thread's own panel and stepped from
#   there (_team_gradient_step), saving the gradient's trips to memory.
# Thread 0 alone takes the rest, each small or serial by nature: the output
# delta and J, the optimiser's advance, the L2 term's sums, clipping's
# norm, and the products of the small way (a width or the batch <= 16):
# its elementwise passes over the batch x the wide side shared by rows, a
# width-10 output layer on thread 0 alone kept thread 1 waiting ~7 % of a
# 2-thread fit on an AMX Xeon (perf).
# The last batch's step also looks for non-finite params in each share it
# writes, while they are in cache: every param is written by each step, so
# that is the check of the run's result (status 2), without another pass.

from libc.stdlib cimport malloc, calloc, free


cdef struct Bf16Team:
    const fbp_network* net
    const fbp_batches* data
    fbp_optimizer_state* opt  # advanced by thread 0 between barriers
    Py_ssize_t start, stop
    int n_threads
    # a product takes one more thread for each this many multiply-adds
    Py_ssize_t thread_macs
    fbp_barrier barrier
    # 32 rows of dW for each thread (32 x the widest layer each), or NULL:
    # no layer's gradient is stepped from panels
    float* panels
    Py_ssize_t panel_size
    # per thread: 1 when the last batch's step wrote a non-finite param
    # (NULL: not checked in the step)
    int* nonfinite
    # written by thread 0, read by all after a barrier
    double J, penalty, coef
    StepRates rates
    int status
    fbp_totals totals


cdef inline void _team_wait(Bf16Team* team) noexcept nogil:
    if team.n_threads > 1:
        fbp_barrier_wait(&team.barrier)


cdef void _team_product(Bf16Team* team, int index, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const float* A, Py_ssize_t a_rs, Py_ssize_t a_cs, uint16_t* Ap,
                        const float* B, Py_ssize_t b_rs, Py_ssize_t b_cs, uint16_t* Bp,
                        float* C, Py_ssize_t ldc, bint accumulate) noexcept nogil:
    """The product of _bf16_product_job on the team: every thread calls it
    alike; what each wrote before it is in place before C is, and C is whole
    on return."""
    cdef _Bf16Product job
    cdef int threads = _bf16_product_job(&job, team.thread_macs, team.n_threads, m, n, k,
                                         A, a_rs, a_cs, Ap, B, b_rs, b_cs, Bp, C, ldc,
                                         accumulate)
    if index < threads:
        _bf16_pack_share(&job, index)
    _team_wait(team)
    if index < threads:
        _bf16_gemm_share(&job, index)
    _team_wait(team)


cdef void _team_forward(Bf16Team* team, const fbp_network* net, int index, const float* x,
                        Py_ssize_t m, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """forward_pass in bfloat16 products: z = f(z_prev . W + b) layer by
    layer, this thread's rows [r0, r1) of each a, z and mask."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef const fbp_layer* layer
    cdef const float* params = <const float*>net.params
    cdef float* ws = <float*>net.work
    cdef const float* z_prev = x
    cdef float* a
    cdef int l
    cdef Py_ssize_t r, n_in, n_out
    for l in range(net.n_layers):
        layer = &net.layers[l]
        n_in = layer.n_in
        n_out = layer.n_out
        a = _layer_a(net, ws, l, m)
        for r in range(r0, r1):  # a starts from b
            memcpy(a + r * n_out, params + layer.b, n_out * sizeof(float))
        if work.small[l]:  # z_prev rounded by rows on the team, the product on thread 0
            bf16_round_rows(z_prev, work.a_round, r0, r1, n_in)
            _team_wait(team)
            if index == 0:
                bf16_forward_product(net, l, m, a)
            _team_wait(team)
        else:
            _team_product(team, index, m, n_out, n_in, z_prev, n_in, 1, work.a_pack,
                          NULL, 0, 0, work.w_pack[l], a, n_out, 1)
        activate_rows(a + r0 * n_out, _layer_z(net, ws, l, m) + r0 * n_out, r1 - r0, n_out,
                      layer.activation)
        if layer.train_op == FBP_OP_DROPOUT:
            dropout_forward(net, l, r0, r1 - r0, 0, n_out, m, <float*>NULL)
        _team_wait(team)  # z is whole: the next layer's A
        z_prev = _layer_z(net, ws, l, m)


cdef inline bint _steps_in_panels(const Bf16Team* team, const fbp_network* net,
                                   int l) noexcept nogil:
    """Whether layer l's dW goes from panels to the step (_team_gradient_step):
    a packed layer, with no L2 term in dW and no clipping waiting for its norm."""
    return (team.panels != NULL and not (<Bf16Work*>net.bf16).small[l] and net.l2 == 0
            and (net.rules == NULL or net.rules.clip_norm <= 0))


cdef void _step_share(Bf16Team* team, const fbp_network* net, int index, Py_ssize_t offset,
                      Py_ssize_t count, const float* grad, bint check) noexcept nogil:
    """params[offset:offset + count] through the step (their gradient
    grad[0:count]), clipping's scaling before it and the average after it;
    with ``check`` (the run's last step), whether the new values are finite."""
    cdef fbp_step_rules* rules = net.rules
    if rules != NULL and rules.clip_norm > 0:
        scale_gradient(<float*>grad, 0, count, team.coef)
    optimizer_step(team.opt, <float*>net.params, offset, count, grad, team.rates)
    if check and team.nonfinite != NULL and fbp_first_nonfinite_f(
            <const float*>net.params + offset, count) >= 0:
        team.nonfinite[index] = 1
    if rules != NULL and rules.ema != NULL:
        average_params(rules, rules.ema_steps, <const float*>net.params, offset, count)


cdef void _team_gradient_step(Bf16Team* team, const fbp_network* net, int index, int l,
                              const float* z_prev, const float* delta, Py_ssize_t m,
                              bint pack) noexcept nogil:
    """dW_l = z_prev^T . delta and the step on W_l, 32 rows at a time: this
    thread's whole 32-row blocks of dW computed into its panel (as
    _team_product's blocks: the same sums), each stepped at once, then (with
    ``pack``) packed for the next batch, or (without: the run's last step)
    checked. After the delta product: W_l's old packs are not read again
    this batch."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef const fbp_layer* layer = &net.layers[l]
    cdef Py_ssize_t n_in = layer.n_in, n_out = layer.n_out, lo, hi, r0, r1
    cdef float* panel = team.panels + index * team.panel_size
    cdef _Bf16Product job
    _bf16_product_job(&job, 1, team.n_threads, n_in, n_out, m, z_prev, 1, n_in,
                      work.a_pack, delta, n_out, 1, work.b_pack, NULL, n_out, 0)
    job.n_threads = team.n_threads  # the step's shares: every thread's blocks of rows
    _bf16_pack_share(&job, index)
    _team_wait(team)
    lo = _block_share(n_in, index, team.n_threads)
    hi = _block_share(n_in, index + 1, team.n_threads)
    r0 = lo
    while r0 < hi:
        r1 = min(r0 + 32, hi)
        fbp_bf16_gemm_packed(r1 - r0, n_out, m, work.a_pack + r0 * fbp_bf16_lda(m),
                             work.b_pack, panel, n_out, 0)
        _step_share(team, net, index, layer.W + r0 * n_out, (r1 - r0) * n_out, panel, not pack)
        if pack:
            bf16_pack_weight_rows(net, l, r0, r1)
        r0 = r1


cdef void _team_backward(Bf16Team* team, const fbp_network* net, int index, const float* x,
                         Py_ssize_t m, Py_ssize_t r0, Py_ssize_t r1, double sw_sum,
                         bint pack) noexcept nogil:
    """backward_pass after the output delta (delta after a_out): dW, db and
    the deltas below, layer by layer, in bfloat16 products; thread 0 adds
    the L2 term's sum to team.penalty (times l2/(2 sw_sum) later). A layer
    whose gradient goes from panels (_steps_in_panels) takes its step here,
    W's packs for the next batch too with ``pack``."""
    cdef Bf16Work* work = <Bf16Work*>net.bf16
    cdef const fbp_layer* layer
    cdef const float* params = <const float*>net.params
    cdef float* grad = <float*>net.grad
    cdef float* ws = <float*>net.work
    cdef float* delta = _a_out(net, ws, m) + m * net.sizes[net.n_layers]
    cdef float* delta_prev = delta + m * _max_width(net.sizes, net.n_layers)
    cdef float* swap
    cdef float* db
    cdef const float* z_prev
    cdef int l, n = team.n_threads
    cdef Py_ssize_t r, j, c0, c1, n_in, n_out
    cdef double l2_over_m = net.l2 / sw_sum
    cdef bint panels
    for l in range(net.n_layers - 1, -1, -1):
        layer = &net.layers[l]
        n_in = layer.n_in
        n_out = layer.n_out
        z_prev = _layer_z(net, ws, l - 1, m) if l > 0 else x
        panels = _steps_in_panels(team, net, l)
        # dJ/dW = z_prev^T . delta + (l2/m) W: the L2 part first, then the product adds
        if net.l2 != 0 and index == 0:
            team.penalty += l2_gradient(params + layer.W, grad + layer.W, n_in * n_out,
                                        l2_over_m)
        # dJ/db = column sums of delta, this thread's columns
        db = grad + layer.b
        c0 = _share(n_out, index, n)
        c1 = _share(n_out, index + 1, n)
        memset(db + c0, 0, (c1 - c0) * sizeof(float))
        for r in range(m):
            for j in range(c0, c1):
                db[j] += delta[r * n_out + j]
        if panels:  # and b's step, on the columns this thread summed
            _step_share(team, net, index, layer.b + c0, c1 - c0, grad + layer.b + c0, not pack)
        if work.small[l]:
            # the passes over m x n_in by rows on the team: z_prev's rounding and
            # delta_prev's zeros before thread 0's products, f' after them
            bf16_round_rows(z_prev, work.a_round, r0, r1, n_in)
            if l > 0:
                memset(delta_prev + r0 * n_in, 0, (r1 - r0) * n_in * sizeof(float))
            _team_wait(team)
            if index == 0:
                bf16_small_gradients(net, l, m, delta, grad + layer.W, net.l2 != 0,
                                     delta_prev if l > 0 else NULL)
            if l > 0:
                _team_wait(team)
                multiply_layer_derivative(net, l - 1, m, r0 * n_in, z_prev + r0 * n_in,
                                          delta_prev + r0 * n_in, (r1 - r0) * n_in)
        else:
            if l > 0:  # delta_prev^T (n_in x m, in a_round) = W . delta^T, then turned
                _team_product(team, index, n_in, m, n_out, NULL, 0, 0, work.wa_pack[l],
                              delta, 1, n_out, work.b_pack, work.a_round, m, 0)
                bf16_transpose_rows(work.a_round, n_in, m, r0, r1, delta_prev)
                multiply_layer_derivative(net, l - 1, m, r0 * n_in, z_prev + r0 * n_in,
                                          delta_prev + r0 * n_in, (r1 - r0) * n_in)
            if panels:
                _team_gradient_step(team, net, index, l, z_prev, delta, m, pack)
            else:
                _team_product(team, index, n_in, n_out, m, z_prev, 1, n_in, work.a_pack,
                              delta, n_out, 1, work.b_pack, grad + layer.W, n_out,
                              net.l2 != 0)
        if l > 0:
            _team_wait(team)  # delta_prev is whole: the next layer's
            swap = delta
            delta = delta_prev
            delta_prev = swap


cdef void _team_step(Bf16Team* team, const fbp_network* net, int index,
                     bint pack) noexcept nogil:
    """The step on this thread's whole 32-row blocks of every W and share
    of every b (the steps are elementwise) of the layers not stepped in the
    backward pass; with ``pack``, a few rows at a time, then W's packs of
    those rows for the next batch while they are in cache."""
    cdef const fbp_layer* layer
    cdef const float* grad = <const float*>net.grad
    cdef int l, n = team.n_threads
    cdef Py_ssize_t lo, hi, r0, r1, rows
    for l in range(net.n_layers):
        if _steps_in_panels(team, net, l):
            continue
        layer = &net.layers[l]
        lo = _block_share(layer.n_in, index, n)
        hi = _block_share(layer.n_in, index + 1, n)
        # ~64 KiB of W a pass: it stays in L2 from the step to the packs
        rows = max(16, (16384 // layer.n_out) & ~(<Py_ssize_t>15))
        r0 = lo
        while r0 < hi:
            r1 = min(r0 + rows, hi)
            _step_share(team, net, index, layer.W + r0 * layer.n_out, (r1 - r0) * layer.n_out,
                        grad + layer.W + r0 * layer.n_out, not pack)
            if pack:
                bf16_pack_weight_rows(net, l, r0, r1)
            r0 = r1
        lo = _share(layer.n_out, index, n)
        _step_share(team, net, index, layer.b + lo, _share(layer.n_out, index + 1, n) - lo,
                    grad + layer.b + lo, not pack)


cdef void _bf16_team_part(void* p, int index) noexcept nogil:
    """Thread ``index``'s part of bf16_train_rows: per batch its rows
    gathered, the forward pass, the output delta (thread 0), the backward
    pass and the step, each phase's shares as the file's head says."""
    cdef Bf16Team* team = <Bf16Team*>p
    cdef fbp_network own = team.net[0]  # dropout's draws need each batch's position
    cdef const fbp_network* net = &own
    cdef const fbp_batches* data = team.data
    cdef const int* sizes = net.sizes
    cdef int n_layers = net.n_layers, n = team.n_threads
    cdef Py_ssize_t pos = team.start, m, r0, r1, B = data.batch_size
    cdef Py_ssize_t n_in = sizes[0], n_out = sizes[n_layers]
    cdef float* ws = <float*>net.work
    cdef float* x_rows = ws + _workspace_size(net.layers, sizes, n_layers, B) \
        - B * (n_in + n_out + 1)
    cdef float* t_rows = x_rows + B * n_in
    cdef float* w_rows = t_rows + B * n_out
    cdef fbp_input xb
    cdef const float* tb
    cdef const float* wb
    cdef double sw_sum
    cdef _Bf16Packing packing
    packing.net = net
    packing.n_threads = n
    _bf16_pack_part(&packing, index)  # W's packs for the first batch
    while pos < team.stop:
        m = B if pos + B <= team.stop else team.stop - pos
        r0 = _share(m, index, n)
        r1 = _share(m, index + 1, n)
        sw_sum = _batch_rows(data, pos, m, r0, r1 - r0, n_in, n_out, x_rows, t_rows, w_rows,
                             &xb, &tb, &wb)
        own.drop_first = team.net.drop_first + pos
        _team_wait(team)  # every row gathered, every pack made
        _team_forward(team, net, index, <const float*>xb.dense, m, r0, r1)
        if index == 0:
            team.J = output_delta(_a_out(net, ws, m), _layer_z(net, ws, n_layers - 1, m), tb,
                                  _a_out(net, ws, m) + m * n_out, m, n_out, net.loss,
                                  net.loss_param, net.layers[n_layers - 1].activation, wb,
                                  sw_sum)
            team.penalty = 0
            if isfinite(team.J):  # the rates, for steps taken in the backward pass
                optimizer_advance(team.opt, &team.rates)
        _team_wait(team)
        if not isfinite(team.J):
            if index == 0:
                team.status = 1
            break
        _team_backward(team, net, index, <const float*>xb.dense, m, r0, r1, sw_sum,
                       pos + m < team.stop)
        _team_wait(team)  # the whole gradient is written
        if index == 0:
            team.penalty = 0.5 * (net.l2 / sw_sum) * team.penalty
            team.coef = 1
            if net.rules != NULL and net.rules.clip_norm > 0:
                team.coef = clip_coefficient(gradient_squares(net, <float*>NULL),
                                             net.rules.clip_norm)
        _team_wait(team)
        _team_step(team, net, index, pos + m < team.stop)
        _team_wait(team)  # the params and the packs are whole
        if index == 0:
            if net.rules != NULL and net.rules.ema != NULL:
                net.rules.ema_steps += 1
            team.totals.loss_sum += team.J * m
            team.totals.penalty_sum += team.penalty * m
            team.totals.rows_done += m
        _team_wait(team)  # nobody reads ema_steps before it is counted
        pos += m


cdef int bf16_train_rows(const fbp_network* net, const fbp_batches* data,
                         fbp_optimizer_state* opt, Py_ssize_t start, Py_ssize_t stop,
                         int n_threads, fbp_totals* totals) noexcept nogil:
    """train_rows_kernel for a network with net.bf16: the same contract
    (``totals`` set, 0 or 1 returned; and 2 when the run leaves a param
    non-finite, which the callers check after the other loops), on a team
    of up to ``n_threads`` threads when a batch's products are large enough
    to share (the same bits on any count)."""
    cdef Bf16Team team
    cdef Py_ssize_t weights = 0
    cdef int l, i, flags
    for l in range(net.n_layers):
        weights += net.layers[l].n_in * net.layers[l].n_out
    team.net = net
    team.data = data
    team.opt = opt
    team.start = start
    team.stop = stop
    team.status = 0
    team.coef = 1
    team.totals.loss_sum = 0
    team.totals.penalty_sum = 0
    team.totals.rows_done = 0
    # started once a call, a team's thread costs a barrier a phase, not a
    # start: a product is shared for each sixteenth of BF16_THREAD_MACS
    team.thread_macs = max(BF16_THREAD_MACS // 16, 1)
    team.n_threads = <int>max(1, min(<Py_ssize_t>n_threads,
                                     3 * weights * data.batch_size // BF16_THREAD_MACS))
    team.panel_size = 32 * _max_width(net.sizes, net.n_layers)
    team.panels = <float*>malloc(team.n_threads * team.panel_size * sizeof(float))
    flags = team.n_threads
    team.nonfinite = <int*>calloc(flags, sizeof(int))  # NULL: a pass checks at the end
    fbp_barrier_init(&team.barrier, team.n_threads)
    if team.n_threads == 1 or fbp_run_threads(team.n_threads, _bf16_team_part, &team) != 0:
        team.n_threads = 1
        fbp_barrier_init(&team.barrier, 1)
        _bf16_team_part(&team, 0)
    free(team.panels)
    if team.status == 0:
        if team.totals.rows_done == 0 or team.nonfinite == NULL:  # no step, or none checked
            team.status = 2 if fbp_first_nonfinite_f(<const float*>net.params,
                                                     net.n_params) >= 0 else 0
        for i in range(flags if team.nonfinite != NULL else 0):
            if team.nonfinite[i]:
                team.status = 2
    free(team.nonfinite)
    totals[0] = team.totals
    return team.status
