# The nogil training loop over a fit's state (csrc/fastbp_state.h): the
# minibatch loop on this thread, handing over to threads.pxi's threads or to
# the per-sample C path (csrc/fastbp_sample.h), and whole epochs in one call.

# fbp_sample_team_min_weights: least weights for a per-sample epoch on the
# Trainer's threads (its team); fbp_sample_team_runs: team epochs so far;
# fbp_sample_tiny_on: whether a net of a few units takes its unrolled epochs,
# fbp_sample_tiny_runs: their calls so far
cdef extern from "fastbp_sample.h" nogil:
    Py_ssize_t fbp_sample_team_min_weights
    Py_ssize_t fbp_sample_team_runs
    int fbp_sample_tiny_on
    Py_ssize_t fbp_sample_tiny_runs
    int fbp_sample_epoch_d(const fbp_network* net, const fbp_batches* data, double lr,
                           Py_ssize_t start, Py_ssize_t stop, fbp_totals* totals)
    int fbp_sample_epoch_f(const fbp_network* net, const fbp_batches* data, double lr,
                           Py_ssize_t start, Py_ssize_t stop, fbp_totals* totals)
    Py_ssize_t fbp_sample_epochs_d(const fbp_network* net, const fbp_batches* data, double lr,
                                   Py_ssize_t n_epochs, Py_ssize_t rows, double* data_sums,
                                   double* penalty_sums, int* status)
    Py_ssize_t fbp_sample_epochs_f(const fbp_network* net, const fbp_batches* data, double lr,
                                   Py_ssize_t n_epochs, Py_ssize_t rows, double* data_sums,
                                   double* penalty_sums, int* status)


cdef inline bint takes_sample_paths(const fbp_network* net,
                                    const fbp_batches* data) noexcept nogil:
    """Whether the rows go one at a time to the fused per-sample paths of
    csrc/fastbp_sample.h (a bfloat16 run aside, which has its own loop):
    batches of one dense, unweighted row and no step rules (clipping or an
    average need the minibatch loop's whole gradient and params)."""
    return (data.batch_size == 1 and data.sample_weight == NULL and data.X != NULL
            and net.rules == NULL)


cdef int train_rows_kernel(const fbp_network* net, const fbp_batches* data,
                           fbp_optimizer_state* opt, Py_ssize_t start, Py_ssize_t stop,
                           int n_threads, fbp_totals* totals,
                           floating* dtype_tag) noexcept nogil:
    """Minibatch training over positions [start, stop) of the batch source.

    Batches are consecutive runs of ``data.batch_size`` positions; the last
    may be shorter. ``net``'s params (and ``opt``'s buffers and step count)
    are updated in place; ``dtype_tag`` (NULL) only picks the scalar type of
    the void pointers. ``totals`` adds up J's data and L2 terms times each
    batch's row count. Returns 0, or 1 when a batch loss is not finite (that
    batch's update is not applied); a bfloat16 run (net.bf16) also returns
    2 when it leaves a param non-finite, which callers check otherwise.
    Minibatches run on ``n_threads`` threads of their own (_train_part) when
    it is above 1 and the platform can start them; one dense row without
    weights or step rules takes a fused per-sample path of
    csrc/fastbp_sample.h: plain SGD's, or the optimiser's own
    (optimizer_sample_epoch: SGD with momentum), unless it declines; that
    path takes ``net.n_threads`` (the Trainer's) for a network of
    fbp_sample_team_min_weights weights or more (set_sample_team).
    Dropout draws a batch's masks from the positions net.drop_first + pos of
    its rows, on every path.

    With ``net.rules`` (step_rules.pxi), each step's gradient is clipped to
    its norm first (then the step is never folded into the products, nor a
    sparse W_0's into its L2 term) and the average takes the params after it.

    With ``net.bf16`` (compute_dtype bfloat16, layers_bf16.pxi) the batches
    run in bf16_train_rows (training_bf16.pxi), on a team of up to
    ``n_threads`` threads (the same bits on any count).
    """
    cdef const int* sizes = net.sizes
    cdef int n_layers = net.n_layers
    cdef int status
    cdef Py_ssize_t pos, m, batch_size = data.batch_size
    cdef Py_ssize_t n_in = sizes[0], n_out = sizes[n_layers]
    cdef const floating* sw = <const floating*>data.sample_weight
    cdef floating* params = <floating*>net.params
    cdef floating* grad = <floating*>net.grad
    cdef floating* work = <floating*>net.work
    cdef Py_ssize_t x_off
    cdef floating* x_rows
    cdef floating* t_rows
    cdef floating* w_rows
    cdef fbp_input xb
    cdef const floating* tb
    cdef const floating* wb
    cdef double J, penalty, sw_sum
    cdef StepRates rates
    cdef fbp_step_rules* rules = net.rules
    # clipping needs the whole gradient before any step
    cdef bint clipping = rules != NULL and rules.clip_norm > 0
    cdef bint plain = optimizer_is_plain(opt) and not clipping
    cdef bint sparse_w0
    cdef Py_ssize_t w0_size = n_in * sizes[1]
    cdef TrainJob job
    cdef fbp_task task
    cdef fbp_network own
    totals.loss_sum = 0
    totals.penalty_sum = 0
    totals.rows_done = 0
    if bf16_on(net, dtype_tag):  # bfloat16 products: a loop of their own
        return bf16_train_rows(net, data, opt, start, stop, n_threads, totals)
    if takes_sample_paths(net, data):
        # per-sample: the fused C paths (csrc/fastbp_sample.h), dropout and
        # all; with step rules, or settings without one, the minibatch loop
        # at m = 1
        if plain:
            if floating is double:
                return fbp_sample_epoch_d(net, data, opt.lr, start, stop, totals)
            else:
                return fbp_sample_epoch_f(net, data, opt.lr, start, stop, totals)
        if optimizer_has_sample_epoch(opt):
            status = optimizer_sample_epoch(opt, net, data, start, stop, totals, dtype_tag)
            if status != SAMPLE_EPOCH_DECLINED:
                return status
    # set up after the per-sample paths, which need none of it (XOR's epoch is 4 rows)
    # a sparse X: W_0's step fused with its L2 term, if the optimiser has one
    sparse_w0 = (optimizer_steps_marked_rows(opt) and data.X == NULL
                 and net.row_marks != NULL and not clipping)
    # the passes' view of the network: dropout's draws need each batch's position
    own = net[0]
    x_off = _workspace_size(net.layers, sizes, n_layers, batch_size) \
        - batch_size * (n_in + n_out + 1)
    x_rows = work + x_off
    t_rows = x_rows + batch_size * n_in
    w_rows = t_rows + batch_size * n_out
    if n_threads > 1:
        job.net = net
        job.data = data
        job.opt = opt
        job.start = start
        job.stop = stop
        job.n_threads = n_threads
        job.status = 0
        job.totals = totals[0]
        fbp_barrier_init(&job.barrier, n_threads)
        task = _train_part_d if floating is double else _train_part_f
        # -1: the threads could not be started; train on this one instead
        if fbp_run_threads(n_threads, task, &job) == 0:
            totals[0] = job.totals
            opt[0] = job.opt_after  # the threads advanced copies of opt
            if rules != NULL:
                rules.ema_steps = job.ema_steps_after
            return job.status
    pos = start
    while pos < stop:
        m = batch_size if pos + batch_size <= stop else stop - pos
        sw_sum = _batch_rows(data, pos, m, 0, m, n_in, n_out, x_rows, t_rows, w_rows,
                             &xb, &tb, &wb)
        own.drop_first = net.drop_first + pos
        forward_pass(&own, &xb, m, dtype_tag)
        if plain:
            # the update folds into the weight-gradient gemm: no grad buffer
            J = backward_sgd(&own, &xb, tb, m, wb, sw_sum, opt.lr, &penalty)
            if not isfinite(J):
                return 1
        else:
            J = backward_pass(&own, &xb, tb, m, wb, sw_sum, &penalty, sparse_w0)
            if not isfinite(J):
                if sparse_w0:  # no step follows to unmark the rows
                    memset(net.row_marks, 0, n_in)
                return 1
            optimizer_advance(opt, &rates)
            if clipping:
                scale_gradient(grad, 0, net.n_params,
                               clip_coefficient(gradient_squares(net, dtype_tag), rules.clip_norm))
            if sparse_w0:
                # W_0 in one pass with its L2 term (most of its rows have no other)
                penalty += 0.5 * net.l2 / sw_sum * optimizer_marked_rows_step(
                    opt, net, 0, n_in, net.l2 / sw_sum, rates, dtype_tag)
                optimizer_step(opt, params, w0_size, net.n_params - w0_size, grad + w0_size,
                               rates)
            else:
                optimizer_step(opt, params, 0, net.n_params, grad, rates)
        if rules != NULL and rules.ema != NULL:
            average_params(rules, rules.ema_steps, params, 0, net.n_params)
            rules.ema_steps += 1
        totals.loss_sum += J * m
        totals.penalty_sum += penalty * m
        totals.rows_done += m
        pos += m
    return 0


cdef Py_ssize_t train_epochs_kernel(const fbp_network* net, const fbp_batches* data,
                                    fbp_optimizer_state* opt, Py_ssize_t n_epochs,
                                    Py_ssize_t epoch_rows, int n_threads, double* data_sums,
                                    double* penalty_sums, int* status,
                                    floating* dtype_tag) noexcept nogil:
    """train_rows_kernel over ``n_epochs`` whole epochs of ``epoch_rows``
    positions: epoch e is positions [e epoch_rows, (e + 1) epoch_rows) of the
    order when there is one, else rows [0, epoch_rows) again. Writes each
    epoch's sums of J's terms (times rows) and returns the epochs completed;
    stops after an epoch whose loss was not finite (status 1, that epoch not
    counted) or that left non-finite parameters (status 2, not counted).
    Dropout draws epoch e's masks as those of epoch net.drop_epoch + e, its
    positions counted from the epoch's first."""
    cdef Py_ssize_t e, start, done
    cdef fbp_totals totals
    cdef fbp_network epoch_net
    status[0] = 0
    if takes_sample_paths(net, data) and not bf16_on(net, dtype_tag):
        # train_rows_kernel's per-sample paths, every epoch in one call: plain
        # SGD's (fastbp_sample.h), unless it declines a network with dropout,
        # else the optimiser's own where it has them (SGD with momentum on a
        # net of a few units); -1: the epochs go one by one
        if not optimizer_is_plain(opt):
            done = optimizer_sample_epochs(opt, net, data, n_epochs, epoch_rows, data_sums,
                                           penalty_sums, status, dtype_tag)
        else:
            if floating is double:
                done = fbp_sample_epochs_d(net, data, opt.lr, n_epochs, epoch_rows, data_sums,
                                           penalty_sums, status)
            else:
                done = fbp_sample_epochs_f(net, data, opt.lr, n_epochs, epoch_rows, data_sums,
                                           penalty_sums, status)
        if done >= 0:
            return done
    epoch_net = net[0]
    for e in range(n_epochs):
        start = e * epoch_rows if data.order != NULL else 0
        epoch_net.drop_epoch = net.drop_epoch + e
        epoch_net.drop_first = net.drop_first - start
        status[0] = train_rows_kernel(&epoch_net, data, opt, start, start + epoch_rows,
                                      n_threads, &totals, dtype_tag)
        if status[0] != 0:
            return e
        if floating is double:
            if fbp_first_nonfinite_d(<const double*>net.params, net.n_params) >= 0:
                status[0] = 2
        elif net.bf16 == NULL:  # a bfloat16 run checks its params itself (status 2)
            if fbp_first_nonfinite_f(<const float*>net.params, net.n_params) >= 0:
                status[0] = 2
        if status[0] != 0:
            return e
        data_sums[e] = totals.loss_sum
        penalty_sums[e] = totals.penalty_sum
    return n_epochs
