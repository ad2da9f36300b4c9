# RMSprop, registered as "rmsprop" (fastbp.optim.RMSprop), as
# torch.optim.RMSprop: s = rho s + (1 - rho) g^2; centered, also
# ga = rho ga + (1 - rho) g, and s - ga^2 in place of s; then
# p -= lr g / (sqrt(s) + eps), or with momentum b = mu b + g / (sqrt(s) + eps)
# and p -= lr b. Its steps do not depend on the step count. torch's alpha is
# registered as rho (Keras's name for the same decay): alpha is the products'
# word in csrc, and tests/test_csrc_layout.py keeps an optimiser's words out
# of other files.

cdef enum:
    # its hyper-parameter and buffer slots, in the order registered below
    RMSPROP_RHO = 0
    RMSPROP_EPSILON = 1
    RMSPROP_MOMENTUM = 2
    RMSPROP_CENTERED = 3
    RMSPROP_SQUARE_AVG = 0
    RMSPROP_MOMENTUM_BUFFER = 1
    RMSPROP_GRAD_AVG = 2


cdef void _rmsprop_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    rates.value[0] = opt.lr


cdef void _rmsprop_step(const fbp_optimizer_state* opt, floating* params,
                        Py_ssize_t offset, Py_ssize_t count, const floating* grad,
                        const StepRates* rates) noexcept nogil:
    cdef floating rho = <floating>opt.hyper[RMSPROP_RHO]
    cdef floating rest = <floating>(1 - opt.hyper[RMSPROP_RHO])
    cdef floating eps = <floating>opt.hyper[RMSPROP_EPSILON]
    cdef floating mu = <floating>opt.hyper[RMSPROP_MOMENTUM]
    cdef floating lr = <floating>rates.value[0]
    cdef bint centered = opt.hyper[RMSPROP_CENTERED] != 0
    # NULL when not needed: momentum_buffer without momentum, grad_avg uncentered
    cdef floating* square_avg = <floating*>opt.buffers[RMSPROP_SQUARE_AVG]
    cdef floating* momentum_buffer = <floating*>opt.buffers[RMSPROP_MOMENTUM_BUFFER]
    cdef floating* grad_avg = <floating*>opt.buffers[RMSPROP_GRAD_AVG]
    cdef floating g, s, ga, denominator
    cdef Py_ssize_t i
    for i in range(offset, offset + count):
        g = grad[i - offset]
        s = rho * square_avg[i] + rest * g * g
        square_avg[i] = s
        if centered:
            ga = grad_avg[i]
            ga = ga + rest * (g - ga)  # torch's lerp
            grad_avg[i] = ga
            s = s - ga * ga
        denominator = <floating>sqrt(s) + eps
        if mu != 0:
            momentum_buffer[i] = mu * momentum_buffer[i] + g / denominator
            params[i] -= lr * momentum_buffer[i]
        else:
            params[i] -= lr * g / denominator


def _check_rmsprop(dict values, buffers):
    # named as fastbp.RMSprop takes them
    check_hyper_range("alpha", values["rho"], 0, 1, high_open=True)
    check_hyper_above("epsilon", values["epsilon"], 0)
    check_hyper_range("momentum", values["momentum"], 0, 1, high_open=True)
    check_buffers_given("rmsprop", buffers, ("square_avg",)
                        + (("momentum_buffer",) if values["momentum"] != 0 else ())
                        + (("grad_avg",) if values["centered"] != 0 else ()))


cdef OptimizerFunctions RMSPROP_FUNCTIONS
RMSPROP_FUNCTIONS.is_plain = NULL
RMSPROP_FUNCTIONS.advance = _rmsprop_advance
RMSPROP_FUNCTIONS.step_d = _rmsprop_step[double]
RMSPROP_FUNCTIONS.step_f = _rmsprop_step[float]
RMSPROP_FUNCTIONS.marked_rows_d = NULL
RMSPROP_FUNCTIONS.marked_rows_f = NULL
register_optimizer("rmsprop", &RMSPROP_FUNCTIONS,
                   {"rho": 0.99, "epsilon": 1e-8, "momentum": 0.0, "centered": 0.0},
                   ("square_avg", "momentum_buffer", "grad_avg"), _check_rmsprop)
