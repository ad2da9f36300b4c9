# The training loop: batches from the data, the per-sample C path, the
# minibatch loop and its threaded twin.

cdef extern from "fastbp_sample.h" nogil:
    int fbp_sample_epoch_d(const double* X, const double* T, Py_ssize_t n,
                           const Py_ssize_t* order, double* params,
                           const int* sizes, const int* acts, int n_layers,
                           int loss, double l2, double lr, double* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done)
    int fbp_sample_epoch_f(const float* X, const float* T, Py_ssize_t n,
                           const Py_ssize_t* order, float* params,
                           const int* sizes, const int* acts, int n_layers,
                           int loss, double l2, double lr, float* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done)


cdef inline void _gather_rows(const floating* X, const floating* T,
                              const floating* sw, const Py_ssize_t* order,
                              Py_ssize_t pos, Py_ssize_t first, Py_ssize_t count,
                              Py_ssize_t n_in, Py_ssize_t n_out,
                              floating* x_rows, floating* t_rows,
                              floating* w_rows) noexcept nogil:
    """Copy batch rows [first, first + count) of positions from ``pos`` on,
    in ``order``, into the batch buffers (w_rows only with weights)."""
    cdef Py_ssize_t r, row
    for r in range(first, first + count):
        row = order[pos + r]
        memcpy(x_rows + r * n_in, X + row * n_in, n_in * sizeof(floating))
        memcpy(t_rows + r * n_out, T + row * n_out, n_out * sizeof(floating))
        if sw != NULL:
            w_rows[r] = sw[row]


cdef inline double _batch_rows(const floating* X, const floating* T,
                               const floating* sw, const Py_ssize_t* order,
                               Py_ssize_t pos, Py_ssize_t m, Py_ssize_t first,
                               Py_ssize_t count, Py_ssize_t n_in, Py_ssize_t n_out,
                               floating* x_rows, floating* t_rows, floating* w_rows,
                               const floating** xb, const floating** tb,
                               const floating** wb) noexcept nogil:
    """Point xb, tb and wb (NULL without weights) at the m-row batch from
    position ``pos``: at the data itself when there is no ``order``, else at
    the buffers, into which batch rows [first, first + count) are gathered.
    Returns the sum of the batch's sample weights (m without weights)."""
    cdef Py_ssize_t r
    cdef double sw_sum
    if order != NULL:
        _gather_rows(X, T, sw, order, pos, first, count, n_in, n_out, x_rows, t_rows, w_rows)
        xb[0] = x_rows
        tb[0] = t_rows
        wb[0] = w_rows if sw != NULL else NULL
    else:
        xb[0] = X + pos * n_in
        tb[0] = T + pos * n_out
        wb[0] = sw + pos if sw != NULL else NULL
    if sw == NULL:
        return m
    sw_sum = 0
    for r in range(m):
        sw_sum += sw[order[pos + r]] if order != NULL else sw[pos + r]
    return sw_sum


cdef int train_rows_kernel(const floating* X, const floating* T,
                           const floating* sw, const Py_ssize_t* order,
                           Py_ssize_t start, Py_ssize_t stop,
                           Py_ssize_t batch_size, floating* params,
                           floating* grad, floating* state1, floating* state2,
                           Py_ssize_t n_params, const int* sizes,
                           const int* acts, int n_layers, int loss, double l2,
                           int optimizer, double lr, double momentum,
                           bint nesterov, double beta2, double epsilon,
                           Py_ssize_t* step_count, floating* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done, int n_threads) noexcept nogil:
    """Minibatch training over positions [start, stop) of the row order.

    Batches are consecutive runs of ``batch_size`` positions; the last may be
    shorter. ``order`` maps positions to rows (NULL: position = row), ``sw``
    holds sample weights (NULL: all 1). SGD uses state1 as the velocity
    (``momentum``); Adam uses state1/state2 as its moments, ``momentum`` as
    beta1, and counts its steps in step_count. loss_sum and penalty_sum add
    up J's data and L2 terms times each batch's row count. Returns 0, or 1
    when a batch loss is not finite (that batch's update is not applied).
    Minibatches run on ``n_threads`` threads of their own (_train_part) when
    it is above 1 and the platform can start them.
    """
    cdef Py_ssize_t pos, m, n_in = sizes[0], n_out = sizes[n_layers]
    cdef Py_ssize_t x_off = _workspace_size(sizes, n_layers, batch_size) \
        - batch_size * (n_in + n_out + 1)
    cdef floating* x_rows = work + x_off
    cdef floating* t_rows = x_rows + batch_size * n_in
    cdef floating* w_rows = t_rows + batch_size * n_out
    cdef const floating* xb
    cdef const floating* tb
    cdef const floating* wb
    cdef double J, penalty, sw_sum, lr_t
    cdef TrainJob job
    cdef fbp_task task
    loss_sum[0] = 0
    penalty_sum[0] = 0
    rows_done[0] = 0
    if (batch_size == 1 and optimizer == SGD and momentum == 0
            and sw == NULL):
        # per-sample plain SGD: the fused C path (csrc/fastbp_sample.h);
        # without an order, positions are rows, so start there
        if order != NULL:
            order = order + start
        else:
            X = X + start * n_in
            T = T + start * n_out
        if floating is double:
            return fbp_sample_epoch_d(X, T, stop - start, order, params, sizes,
                                      acts, n_layers, loss, l2, lr, work,
                                      loss_sum, penalty_sum, rows_done)
        else:
            return fbp_sample_epoch_f(X, T, stop - start, order, params, sizes,
                                      acts, n_layers, loss, l2, lr, work,
                                      loss_sum, penalty_sum, rows_done)
    if n_threads > 1:
        job.X = X
        job.T = T
        job.sw = sw
        job.order = order
        job.start = start
        job.stop = stop
        job.batch_size = batch_size
        job.steps_before = step_count[0]
        job.params = params
        job.grad = grad
        job.state1 = state1
        job.state2 = state2
        job.work = work
        job.sizes = sizes
        job.acts = acts
        job.n_layers = n_layers
        job.loss = loss
        job.optimizer = optimizer
        job.n_threads = n_threads
        job.l2 = l2
        job.lr = lr
        job.momentum = momentum
        job.beta2 = beta2
        job.epsilon = epsilon
        job.nesterov = nesterov
        job.status = 0
        job.loss_sum = 0
        job.penalty_sum = 0
        job.rows_done = 0
        fbp_barrier_init(&job.barrier, n_threads)
        task = _train_part_d if floating is double else _train_part_f
        # -1: the threads could not be started; train on this one instead
        if fbp_run_threads(n_threads, task, &job) == 0:
            loss_sum[0] = job.loss_sum
            penalty_sum[0] = job.penalty_sum
            rows_done[0] = job.rows_done
            step_count[0] = job.steps
            return job.status
    pos = start
    while pos < stop:
        m = batch_size if pos + batch_size <= stop else stop - pos
        sw_sum = _batch_rows(X, T, sw, order, pos, m, 0, m, n_in, n_out, x_rows, t_rows,
                             w_rows, &xb, &tb, &wb)
        forward_pass(xb, m, params, sizes, acts, n_layers, work)
        if optimizer == SGD and momentum == 0:
            J = backward_sgd(xb, tb, m, params, sizes, acts, n_layers, loss,
                             l2, lr, work, wb, sw_sum, &penalty)
            if not isfinite(J):
                return 1
        else:
            J = backward_pass(xb, tb, m, params, grad, sizes, acts, n_layers,
                              loss, l2, work, wb, sw_sum, &penalty)
            if not isfinite(J):
                return 1
            if optimizer == SGD:
                sgd_step(params, grad, state1, n_params, lr, momentum,
                         nesterov)
            else:
                step_count[0] += 1
                lr_t = _adam_rate(lr, momentum, beta2, step_count[0])
                adam_step(params, grad, state1, state2, n_params, lr_t,
                          momentum, beta2, epsilon)
        loss_sum[0] += J * m
        penalty_sum[0] += penalty * m
        rows_done[0] += m
        pos += m
    return 0
