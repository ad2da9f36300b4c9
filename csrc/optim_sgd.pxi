# SGD, registered as "sgd" (fastbp.optim.SGD): plain, with momentum, or
# Nesterov's. Plain SGD keeps no state, so the loops fold its step into the
# products (is_plain) and its step function below runs with momentum only,
# or from the tests' optimizer_update. With momentum, batch-1 fits run the
# fused per-sample epoch of csrc/fastbp_sample.h (sample_epoch), which
# gives the weights of the step below, bit for bit, where the minibatch
# loop's products are plain loops.

cdef extern from "fastbp_sample.h" nogil:
    int fbp_sample_momentum_epoch_d(const fbp_network* net, const fbp_batches* data, double lr,
                                    double mu, int nesterov, void* velocity, Py_ssize_t start,
                                    Py_ssize_t stop, fbp_totals* totals)
    int fbp_sample_momentum_epoch_f(const fbp_network* net, const fbp_batches* data, double lr,
                                    double mu, int nesterov, void* velocity, Py_ssize_t start,
                                    Py_ssize_t stop, fbp_totals* totals)


cdef enum:
    # its hyper-parameter and buffer slots, in the order registered below
    SGD_MOMENTUM = 0
    SGD_NESTEROV = 1
    SGD_VELOCITY = 0


cdef bint _sgd_is_plain(const fbp_optimizer_state* opt) noexcept nogil:
    return opt.hyper[SGD_MOMENTUM] == 0


cdef void _sgd_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    rates.value[0] = opt.lr  # no step count: its steps do not depend on it


cdef void _sgd_step(const fbp_optimizer_state* opt, floating* params, const floating* grad,
                    Py_ssize_t offset, Py_ssize_t count, const StepRates* rates) noexcept nogil:
    """Plain: p -= lr g. Momentum: v = mu v - lr g; p += v.
    Nesterov: v = mu v - lr g; p += mu v - lr g."""
    cdef Py_ssize_t i
    cdef floating step, v
    cdef floating lr_f = <floating>rates.value[0], mu = <floating>opt.hyper[SGD_MOMENTUM]
    cdef floating* velocity = <floating*>opt.buffers[SGD_VELOCITY]  # NULL if plain
    params += offset
    grad += offset
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
    # momentum only: train_rows_kernel takes plain SGD's own fused path first
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


def _check_sgd(dict values, buffers):
    check_hyper_range("momentum", values["momentum"], 0, 1)
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
register_optimizer("sgd", &SGD_FUNCTIONS, {"momentum": 0.0, "nesterov": 0.0}, ("velocity",),
                   _check_sgd)
