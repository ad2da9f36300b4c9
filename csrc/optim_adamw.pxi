# AdamW (Loshchilov & Hutter), registered as "adamw" (fastbp.optim.AdamW),
# as torch.optim.AdamW: Adam (optim_adam.pxi, either flavour, the same
# moments and rates) with decoupled weight decay, W = (1 - lr weight_decay) W
# before each step, on the weights only: the biases take Adam's own step.
# The step walks its block run by run (params_run); on a sparse X, W_0's
# marked-rows step decays every row, since each is a weight.

cdef extern from * nogil:
    # its loops, made here from fastbp_adam.h's macro (AdamW's W; its b take Adam's loops), with the
    # arguments of Adam's loops: optim_adam.pxi's MomentsLoops
    """
    #include "fastbp_adam.h"
    FBP_DEFINE_ADAM_LOOPS(fbp_adamw, 1, 0)
    """
    void fbp_adamw_step_f(float* p, const float* g, float* m, float* v, Py_ssize_t n,
                          float lr, float lr_g, float keep, float b1, float b2, float c1,
                          float c2, float eps)
    void fbp_adamw_step_d(double* p, const double* g, double* m, double* v, Py_ssize_t n,
                          double lr, double lr_g, double keep, double b1, double b2, double c1,
                          double c2, double eps)
    double fbp_adamw_rows_f(float* W, const float* dW, float* m, float* v,
                            unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1,
                            Py_ssize_t n_out, double l2_over_m, float lr, float lr_g,
                            float keep, float b1, float b2, float c1, float c2, float eps)
    double fbp_adamw_rows_d(double* W, const double* dW, double* m, double* v,
                            unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1,
                            Py_ssize_t n_out, double l2_over_m, double lr, double lr_g,
                            double keep, double b1, double b2, double c1, double c2,
                            double eps)


cdef enum:
    # its hyper-parameter after Adam's four, and its rate after Adam's two
    ADAMW_WEIGHT_DECAY = 4
    ADAMW_KEEP = 2


cdef MomentsLoops ADAMW_LOOPS
ADAMW_LOOPS.step_d = fbp_adamw_step_d
ADAMW_LOOPS.step_f = fbp_adamw_step_f
ADAMW_LOOPS.rows_d = fbp_adamw_rows_d
ADAMW_LOOPS.rows_f = fbp_adamw_rows_f


cdef void _adamw_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    """Adam's step t and rates, and keep = 1 - lr weight_decay."""
    _adam_advance(opt, rates)
    rates.value[ADAMW_KEEP] = 1 - opt.lr * opt.hyper[ADAMW_WEIGHT_DECAY]


cdef void _adamw_step(const fbp_optimizer_state* opt, floating* params, Py_ssize_t offset,
                      Py_ssize_t count, const floating* grad,
                      const StepRates* rates) noexcept nogil:
    """On W: p = keep p, then Adam's step; on b: Adam's step."""
    cdef Py_ssize_t end, stop = offset + count
    cdef bint is_W
    while offset < stop:
        end = params_run(opt, offset, stop, &is_W)
        moments_step(opt, &ADAMW_LOOPS if is_W else &ADAM_LOOPS, params, offset,
                     end - offset, grad, rates.value[ADAM_LR_T], 0, rates.value[ADAMW_KEEP],
                     rates.value[ADAM_EPSILON_T])
        grad += end - offset
        offset = end


cdef double _adamw_marked_rows_d(const fbp_optimizer_state* opt, const fbp_network* net,
                                 Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                 const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &ADAMW_LOOPS, net, i0, i1, l2_over_m, rates.value[ADAM_LR_T], 0,
                        rates.value[ADAMW_KEEP], rates.value[ADAM_EPSILON_T], <double*>NULL)


cdef double _adamw_marked_rows_f(const fbp_optimizer_state* opt, const fbp_network* net,
                                 Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                 const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &ADAMW_LOOPS, net, i0, i1, l2_over_m, rates.value[ADAM_LR_T], 0,
                        rates.value[ADAMW_KEEP], rates.value[ADAM_EPSILON_T], <float*>NULL)


def _check_adamw(dict values, buffers):
    check_moments("adamw", values, buffers)
    check_hyper_above("weight_decay", values["weight_decay"], 0, inclusive=True)


cdef OptimizerFunctions ADAMW_FUNCTIONS
ADAMW_FUNCTIONS.is_plain = NULL
ADAMW_FUNCTIONS.advance = _adamw_advance
ADAMW_FUNCTIONS.step_d = _adamw_step[double]
ADAMW_FUNCTIONS.step_f = _adamw_step[float]
ADAMW_FUNCTIONS.marked_rows_d = _adamw_marked_rows_d
ADAMW_FUNCTIONS.marked_rows_f = _adamw_marked_rows_f
register_optimizer("adamw", &ADAMW_FUNCTIONS,
                   {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "torch_epsilon": 1.0,
                    "weight_decay": 1e-2},
                   ("first_moment", "second_moment"), _check_adamw)
