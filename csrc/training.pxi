# The nogil training loop over a fit's state (csrc/fastbp_state.h): the
# minibatch loop on this thread, handing over to threads.pxi's threads or to
# the per-sample C path (csrc/fastbp_sample.h), and whole epochs in one call.

cdef extern from "fastbp_sample.h" nogil:
    int fbp_sample_epoch_d(const fbp_network* net, const fbp_batches* data, double lr,
                           Py_ssize_t start, Py_ssize_t stop, fbp_totals* totals)
    int fbp_sample_epoch_f(const fbp_network* net, const fbp_batches* data, double lr,
                           Py_ssize_t start, Py_ssize_t stop, fbp_totals* totals)


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
    batch's update is not applied). Minibatches run on ``n_threads`` threads
    of their own (_train_part) when it is above 1 and the platform can start
    them; one dense row without weights takes the fused per-sample path of
    csrc/fastbp_sample.h: plain SGD's, or the optimiser's own
    (optimizer_sample_epoch: SGD with momentum).
    """
    cdef const int* sizes = net.sizes
    cdef int n_layers = net.n_layers
    cdef Py_ssize_t pos, m, batch_size = data.batch_size
    cdef Py_ssize_t n_in = sizes[0], n_out = sizes[n_layers]
    cdef const floating* sw = <const floating*>data.sample_weight
    cdef floating* params = <floating*>net.params
    cdef floating* grad = <floating*>net.grad
    cdef floating* work = <floating*>net.work
    cdef Py_ssize_t x_off = _workspace_size(sizes, n_layers, batch_size) \
        - batch_size * (n_in + n_out + 1)
    cdef floating* x_rows = work + x_off
    cdef floating* t_rows = x_rows + batch_size * n_in
    cdef floating* w_rows = t_rows + batch_size * n_out
    cdef fbp_input xb
    cdef const floating* tb
    cdef const floating* wb
    cdef double J, penalty, sw_sum
    cdef StepRates rates
    cdef bint plain = optimizer_is_plain(opt)
    # a sparse X: W_0's step fused with its L2 term, if the optimiser has one
    cdef bint sparse_w0 = (optimizer_steps_marked_rows(opt) and data.X == NULL
                           and net.row_marks != NULL)
    cdef Py_ssize_t w0_size = n_in * sizes[1]
    cdef TrainJob job
    cdef fbp_task task
    totals.loss_sum = 0
    totals.penalty_sum = 0
    totals.rows_done = 0
    if batch_size == 1 and sw == NULL and data.X != NULL:
        # per-sample: the fused C paths (csrc/fastbp_sample.h)
        if plain:
            if floating is double:
                return fbp_sample_epoch_d(net, data, opt.lr, start, stop, totals)
            else:
                return fbp_sample_epoch_f(net, data, opt.lr, start, stop, totals)
        if optimizer_has_sample_epoch(opt):
            return optimizer_sample_epoch(opt, net, data, start, stop, totals, dtype_tag)
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
            return job.status
    pos = start
    while pos < stop:
        m = batch_size if pos + batch_size <= stop else stop - pos
        sw_sum = _batch_rows(data, pos, m, 0, m, n_in, n_out, x_rows, t_rows, w_rows,
                             &xb, &tb, &wb)
        forward_pass(net, &xb, m, dtype_tag)
        if plain:
            # the update folds into the weight-gradient gemm: no grad buffer
            J = backward_sgd(net, &xb, tb, m, wb, sw_sum, opt.lr, &penalty)
            if not isfinite(J):
                return 1
        else:
            J = backward_pass(net, &xb, tb, m, wb, sw_sum, &penalty, sparse_w0)
            if not isfinite(J):
                if sparse_w0:  # no step follows to unmark the rows
                    memset(net.row_marks, 0, n_in)
                return 1
            optimizer_advance(opt, &rates)
            if sparse_w0:
                # W_0 in one pass with its L2 term (most of its rows have no other)
                penalty += 0.5 * net.l2 / sw_sum * optimizer_marked_rows_step(
                    opt, net, 0, n_in, net.l2 / sw_sum, rates, dtype_tag)
                optimizer_step(opt, params, grad, w0_size, net.n_params - w0_size, rates)
            else:
                optimizer_step(opt, params, grad, 0, net.n_params, rates)
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
    counted) or that left non-finite parameters (status 2, not counted)."""
    cdef Py_ssize_t e, start
    cdef fbp_totals totals
    status[0] = 0
    for e in range(n_epochs):
        start = e * epoch_rows if data.order != NULL else 0
        status[0] = train_rows_kernel(net, data, opt, start, start + epoch_rows, n_threads,
                                      &totals, dtype_tag)
        if status[0] != 0:
            return e
        if floating is double:
            if fbp_first_nonfinite_d(<const double*>net.params, net.n_params) >= 0:
                status[0] = 2
        else:
            if fbp_first_nonfinite_f(<const float*>net.params, net.n_params) >= 0:
                status[0] = 2
        if status[0] != 0:
            return e
        data_sums[e] = totals.loss_sum
        penalty_sums[e] = totals.penalty_sum
    return n_epochs
