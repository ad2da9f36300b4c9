# Adagrad (Duchi, Hazan & Singer), registered as "adagrad"
# (fastbp.optim.Adagrad), as torch.optim.Adagrad: at step t (from 1),
# clr = lr / (1 + (t - 1) lr_decay); acc += g^2; p -= clr g / (sqrt(acc) + eps).
# The accumulator starts at initial_accumulator_value: the step that counts
# t = 1 writes it before adding g^2, so its buffer starts at zero as every
# optimiser's does.

cdef enum:
    # its hyper-parameter, buffer and rate slots, in the order registered below
    ADAGRAD_LR_DECAY = 0
    ADAGRAD_EPSILON = 1
    ADAGRAD_INITIAL_ACCUMULATOR_VALUE = 2
    ADAGRAD_ACCUMULATOR = 0
    ADAGRAD_CLR = 0


cdef void _adagrad_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    opt.step_count += 1
    rates.value[ADAGRAD_CLR] = opt.lr / (1 + (opt.step_count - 1) * opt.hyper[ADAGRAD_LR_DECAY])


cdef void _adagrad_step(const fbp_optimizer_state* opt, floating* params,
                        Py_ssize_t offset, Py_ssize_t count, const floating* grad,
                        const StepRates* rates) noexcept nogil:
    cdef floating clr = <floating>rates.value[ADAGRAD_CLR]
    cdef floating eps = <floating>opt.hyper[ADAGRAD_EPSILON]
    cdef floating* accumulator = <floating*>opt.buffers[ADAGRAD_ACCUMULATOR]
    cdef floating g, s
    cdef Py_ssize_t i
    if opt.step_count == 1:
        for i in range(offset, offset + count):
            accumulator[i] = <floating>opt.hyper[ADAGRAD_INITIAL_ACCUMULATOR_VALUE]
    for i in range(offset, offset + count):
        g = grad[i - offset]
        s = accumulator[i] + g * g
        accumulator[i] = s
        params[i] -= clr * g / (<floating>sqrt(s) + eps)


def _check_adagrad(dict values, buffers):
    check_hyper_range("lr_decay", values["lr_decay"], 0, float("inf"), high_open=True)
    check_hyper_above("epsilon", values["epsilon"], 0)
    check_hyper_range("initial_accumulator_value", values["initial_accumulator_value"], 0,
                      float("inf"), high_open=True)
    check_buffers_given("adagrad", buffers, ("accumulator",))


cdef OptimizerFunctions ADAGRAD_FUNCTIONS
ADAGRAD_FUNCTIONS.is_plain = NULL
ADAGRAD_FUNCTIONS.advance = _adagrad_advance
ADAGRAD_FUNCTIONS.step_d = _adagrad_step[double]
ADAGRAD_FUNCTIONS.step_f = _adagrad_step[float]
ADAGRAD_FUNCTIONS.marked_rows_d = NULL
ADAGRAD_FUNCTIONS.marked_rows_f = NULL
register_optimizer("adagrad", &ADAGRAD_FUNCTIONS,
                   {"lr_decay": 0.0, "epsilon": 1e-10, "initial_accumulator_value": 0.0},
                   ("accumulator",), _check_adagrad)
