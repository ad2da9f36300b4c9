# SGD, registered as "sgd" (fastbp.optim.SGD): plain, with momentum, or
# Nesterov's, and optionally decoupled weight decay, W = (1 - lr weight_decay)
# W before each step, on the weights only (params_run). Plain SGD keeps no
# state, so the loops fold its step into the products (is_plain) and its
# step function below runs with momentum or decay only, or from the tests'
# optimizer_update.
# With momentum and no decay, batch-1 fits run the fused per-sample epoch
# of csrc/fastbp_sample.h (sample_epoch), which gives the weights of the
# step below, bit for bit, where the minibatch loop's products are plain
# loops; with decay it declines and the minibatch loop runs.

cdef extern from "fastbp_sample.h" nogil:
    int fbp_sample_momentum_epoch_d(const fbp_network* net, const fbp_batches* data, double lr,
                                    double mu, int nesterov, void* velocity, Py_ssize_t start,
                                    Py_ssize_t stop, fbp_totals* totals)
    int fbp_sample_momentum_epoch_f(const fbp_network* net, const fbp_batches* data, double lr,
                                    double mu, int nesterov, void* velocity, Py_ssize_t start,
                                    Py_ssize_t stop, fbp_totals* totals)
    Py_ssize_t fbp_sample_momentum_epochs_d(const fbp_network* net, const fbp_batches* data,
                                            double lr, double mu, int nesterov, void* velocity,
                                            Py_ssize_t n_epochs, Py_ssize_t rows,
                                            double* data_sums, double* penalty_sums, int* status)
    Py_ssize_t fbp_sample_momentum_epochs_f(const fbp_network* net, const fbp_batches* data,
                                            double lr, double mu, int nesterov, void* velocity,
                                            Py_ssize_t n_epochs, Py_ssize_t rows,
                                            double* data_sums, double* penalty_sums, int* status)


cdef enum:
    # its hyper-parameter and buffer slots, in the order registered below
    SGD_MOMENTUM = 0
    SGD_NESTEROV = 1
    SGD_WEIGHT_DECAY = 2
    SGD_VELOCITY = 0
    # its rates
    SGD_LR = 0
    SGD_KEEP = 1


cdef bint _sgd_is_plain(const fbp_optimizer_state* opt) noexcept nogil:
    # with decay the step needs the gradient: off the folded and per-sample paths
    return opt.hyper[SGD_MOMENTUM] == 0 and opt.hyper[SGD_WEIGHT_DECAY] == 0


cdef void _sgd_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    # no step count: its steps do not depend on it
    rates.value[SGD_LR] = opt.lr
    rates.value[SGD_KEEP] = 1 - opt.lr * opt.hyper[SGD_WEIGHT_DECAY]


cdef void _sgd_decay(const fbp_optimizer_state* opt, floating* params, Py_ssize_t offset,
                     Py_ssize_t count, floating keep) noexcept nogil:
    """W = keep W on the weights among params[offset:offset + count]."""
    cdef Py_ssize_t i, end, stop = offset + count
    cdef bint is_W
    while offset < stop:
        end = params_run(opt, offset, stop, &is_W)
        if is_W:
            for i in range(offset, end):
                params[i] = keep * params[i]
        offset = end


cdef void _sgd_step(const fbp_optimizer_state* opt, floating* params, Py_ssize_t offset,
                    Py_ssize_t count, const floating* grad, const StepRates* rates) noexcept nogil:
    """Plain: p -= lr g. Momentum: v = mu v - lr g; p += v.
    Nesterov: v = mu v - lr g; p += mu v - lr g. Decay first: W = keep W."""
    cdef Py_ssize_t i
    cdef floating step, v
    cdef floating lr_f = <floating>rates.value[SGD_LR], mu = <floating>opt.hyper[SGD_MOMENTUM]
    cdef floating* velocity = <floating*>opt.buffers[SGD_VELOCITY]  # NULL if plain
    if opt.hyper[SGD_WEIGHT_DECAY] != 0:
        _sgd_decay(opt, params, offset, count, <floating>rates.value[SGD_KEEP])
    params += offset
    if velocity != NULL:
        velocity += offset
    if opt.hyper[SGD_MOMENTUM] == 0:
        for i in range(count):
            params[i] -= lr_f * grad[i]
    elif opt.hyper[SGD_NESTEROV] == 0:
        for i in range(count):
            v = mu * velocity[i] - lr_f * grad[i]
            velocity[i] = v
            params[i] += v
    else:
        for i in range(count):
            step = lr_f * grad[i]
            v = mu * velocity[i] - step
            velocity[i] = v
            params[i] += mu * v - step


cdef int _sgd_sample_epoch(fbp_optimizer_state* opt, const fbp_network* net,
                           const fbp_batches* data, Py_ssize_t start, Py_ssize_t stop,
                           fbp_totals* totals, floating* dtype_tag) noexcept nogil:
    # momentum only: train_rows_kernel takes plain SGD's own fused path first;
    # the fused epoch has no decay step
    if opt.hyper[SGD_WEIGHT_DECAY] != 0:
        return SAMPLE_EPOCH_DECLINED
    if floating is double:
        return fbp_sample_momentum_epoch_d(net, data, opt.lr, opt.hyper[SGD_MOMENTUM],
                                           opt.hyper[SGD_NESTEROV] != 0,
                                           opt.buffers[SGD_VELOCITY], start, stop, totals)
    else:
        return fbp_sample_momentum_epoch_f(net, data, opt.lr, opt.hyper[SGD_MOMENTUM],
                                           opt.hyper[SGD_NESTEROV] != 0,
                                           opt.buffers[SGD_VELOCITY], start, stop, totals)


cdef int _sgd_sample_epoch_d(fbp_optimizer_state* opt, const fbp_network* net,
                             const fbp_batches* data, Py_ssize_t start, Py_ssize_t stop,
                             fbp_totals* totals) noexcept nogil:
    return _sgd_sample_epoch(opt, net, data, start, stop, totals, <double*>NULL)


cdef int _sgd_sample_epoch_f(fbp_optimizer_state* opt, const fbp_network* net,
                             const fbp_batches* data, Py_ssize_t start, Py_ssize_t stop,
                             fbp_totals* totals) noexcept nogil:
    return _sgd_sample_epoch(opt, net, data, start, stop, totals, <float*>NULL)


cdef Py_ssize_t _sgd_sample_epochs(fbp_optimizer_state* opt, const fbp_network* net,
                                   const fbp_batches* data, Py_ssize_t n_epochs, Py_ssize_t rows,
                                   double* data_sums, double* penalty_sums, int* status,
                                   floating* dtype_tag) noexcept nogil:
    # momentum without decay: every epoch in one call where csrc/fastbp_sample.h
    # takes the net (a net of a few units, fbp_sample_momentum_epochs), else -1
    if opt.hyper[SGD_MOMENTUM] == 0 or opt.hyper[SGD_WEIGHT_DECAY] != 0:
        return -1
    if floating is double:
        return fbp_sample_momentum_epochs_d(net, data, opt.lr, opt.hyper[SGD_MOMENTUM],
                                            opt.hyper[SGD_NESTEROV] != 0,
                                            opt.buffers[SGD_VELOCITY], n_epochs, rows,
                                            data_sums, penalty_sums, status)
    else:
        return fbp_sample_momentum_epochs_f(net, data, opt.lr, opt.hyper[SGD_MOMENTUM],
                                            opt.hyper[SGD_NESTEROV] != 0,
                                            opt.buffers[SGD_VELOCITY], n_epochs, rows,
                                            data_sums, penalty_sums, status)


cdef Py_ssize_t _sgd_sample_epochs_d(fbp_optimizer_state* opt, const fbp_network* net,
                                     const fbp_batches* data, Py_ssize_t n_epochs,
                                     Py_ssize_t rows, double* data_sums, double* penalty_sums,
                                     int* status) noexcept nogil:
    return _sgd_sample_epochs(opt, net, data, n_epochs, rows, data_sums, penalty_sums, status,
                              <double*>NULL)


cdef Py_ssize_t _sgd_sample_epochs_f(fbp_optimizer_state* opt, const fbp_network* net,
                                     const fbp_batches* data, Py_ssize_t n_epochs,
                                     Py_ssize_t rows, double* data_sums, double* penalty_sums,
                                     int* status) noexcept nogil:
    return _sgd_sample_epochs(opt, net, data, n_epochs, rows, data_sums, penalty_sums, status,
                              <float*>NULL)


def _check_sgd(dict values, buffers):
    check_hyper_range("momentum", values["momentum"], 0, 1)
    check_hyper_above("weight_decay", values["weight_decay"], 0, inclusive=True)
    if values["momentum"] > 0 and "velocity" not in buffers:
        raise ValueError("momentum > 0 needs a velocity buffer")


cdef OptimizerFunctions SGD_FUNCTIONS
SGD_FUNCTIONS.is_plain = _sgd_is_plain
SGD_FUNCTIONS.advance = _sgd_advance
SGD_FUNCTIONS.step_d = _sgd_step[double]
SGD_FUNCTIONS.step_f = _sgd_step[float]
SGD_FUNCTIONS.marked_rows_d = NULL
SGD_FUNCTIONS.marked_rows_f = NULL
SGD_FUNCTIONS.sample_epoch_d = _sgd_sample_epoch_d
SGD_FUNCTIONS.sample_epoch_f = _sgd_sample_epoch_f
SGD_FUNCTIONS.sample_epochs_d = _sgd_sample_epochs_d
SGD_FUNCTIONS.sample_epochs_f = _sgd_sample_epochs_f
register_optimizer("sgd", &SGD_FUNCTIONS,
                   {"momentum": 0.0, "nesterov": 0.0, "weight_decay": 0.0}, ("velocity",),
                   _check_sgd)

