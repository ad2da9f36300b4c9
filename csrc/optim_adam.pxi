# Adam (Kingma & Ba), registered as "adam" (fastbp.optim.Adam), in
# scikit-learn's form or, with torch_epsilon, PyTorch's. Its advance counts
# the step t and folds both bias corrections into the rates: lr_t = lr
# sqrt(1 - b2^t) / (1 - b1^t), and eps_t. Its element loops are C
# (fastbp_adam.h); on a sparse X it steps W_0 in one pass with the L2 term.
# Its variants AdamW and NAdam (optim_adamw.pxi, optim_nadam.pxi) keep the
# same moments in the same slots and step through moments_step and
# moments_rows below with loops of their own from fastbp_adam.h.

cdef extern from "fastbp_adam.h" nogil:
    # every variant's loops take these arguments: see MomentsLoops below
    void fbp_adam_step_f(float* p, const float* g, float* m, float* v, Py_ssize_t n, float lr,
                         float lr_g, float keep, float b1, float b2, float c1, float c2,
                         float eps)
    void fbp_adam_step_d(double* p, const double* g, double* m, double* v, Py_ssize_t n,
                         double lr, double lr_g, double keep, double b1, double b2, double c1,
                         double c2, double eps)
    double fbp_adam_rows_f(float* W, const float* dW, float* m, float* v, unsigned char* marks,
                           Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n_out, double l2_over_m,
                           float lr, float lr_g, float keep, float b1, float b2, float c1,
                           float c2, float eps)
    double fbp_adam_rows_d(double* W, const double* dW, double* m, double* v,
                           unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n_out,
                           double l2_over_m, double lr, double lr_g, double keep, double b1,
                           double b2, double c1, double c2, double eps)


ctypedef void (*MomentsStep_f)(float*, const float*, float*, float*, Py_ssize_t, float, float,
                               float, float, float, float, float, float) noexcept nogil
ctypedef void (*MomentsStep_d)(double*, const double*, double*, double*, Py_ssize_t, double,
                               double, double, double, double, double, double,
                               double) noexcept nogil
ctypedef double (*MomentsRows_f)(float*, const float*, float*, float*, unsigned char*,
                                 Py_ssize_t, Py_ssize_t, Py_ssize_t, double, float, float,
                                 float, float, float, float, float, float) noexcept nogil
ctypedef double (*MomentsRows_d)(double*, const double*, double*, double*, unsigned char*,
                                 Py_ssize_t, Py_ssize_t, Py_ssize_t, double, double, double,
                                 double, double, double, double, double, double) noexcept nogil


cdef struct MomentsLoops:
    # one variant's element loops (fastbp_adam.h): the step on a block and
    # on W_0's marked rows, per dtype
    MomentsStep_d step_d
    MomentsStep_f step_f
    MomentsRows_d rows_d
    MomentsRows_f rows_f


cdef enum:
    # its hyper-parameter, buffer and rate slots, in the order registered
    # below; its variants register beta1, beta2 and epsilon first too
    ADAM_BETA1 = 0
    ADAM_BETA2 = 1
    ADAM_EPSILON = 2
    ADAM_TORCH_EPSILON = 3
    ADAM_FIRST_MOMENT = 0
    ADAM_SECOND_MOMENT = 1
    ADAM_LR_T = 0
    ADAM_EPSILON_T = 1


cdef MomentsLoops ADAM_LOOPS
ADAM_LOOPS.step_d = fbp_adam_step_d
ADAM_LOOPS.step_f = fbp_adam_step_f
ADAM_LOOPS.rows_d = fbp_adam_rows_d
ADAM_LOOPS.rows_f = fbp_adam_rows_f


cdef inline void moments_step(const fbp_optimizer_state* opt, const MomentsLoops* loops,
                              floating* params, Py_ssize_t offset, Py_ssize_t count,
                              const floating* grad, double lr, double lr_g, double keep,
                              double eps) noexcept nogil:
    """The loop ``loops`` on params[offset:offset + count], whose gradient
    is grad[0:count], with the moments of the same elements:
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; then
    p -= lr m / (sqrt(v) + eps), in the variant's form (lr_g, keep)."""
    cdef double b1 = opt.hyper[ADAM_BETA1], b2 = opt.hyper[ADAM_BETA2]
    cdef floating* m = <floating*>opt.buffers[ADAM_FIRST_MOMENT] + offset
    cdef floating* v = <floating*>opt.buffers[ADAM_SECOND_MOMENT] + offset
    if floating is double:
        loops.step_d(params + offset, grad, m, v, count, lr, lr_g, keep, b1, b2,
                     1 - b1, 1 - b2, eps)
    else:
        loops.step_f(params + offset, grad, m, v, count, <float>lr, <float>lr_g,
                     <float>keep, <float>b1, <float>b2, <float>(1 - b1), <float>(1 - b2),
                     <float>eps)


cdef inline double moments_rows(const fbp_optimizer_state* opt, const MomentsLoops* loops,
                                const fbp_network* net, Py_ssize_t i0, Py_ssize_t i1,
                                double l2_over_m, double lr, double lr_g, double keep,
                                double eps, floating* dtype_tag) noexcept nogil:
    """The loop ``loops`` on rows [i0, i1) of W_0, whose gradient is the L2
    term plus dW on the rows net.row_marks marks (fastbp_adam.h). Returns
    sum W^2 over them."""
    cdef double b1 = opt.hyper[ADAM_BETA1], b2 = opt.hyper[ADAM_BETA2]
    cdef Py_ssize_t n_out = net.sizes[1]
    cdef floating* W = <floating*>net.params
    cdef const floating* dW = <const floating*>net.grad
    cdef floating* m = <floating*>opt.buffers[ADAM_FIRST_MOMENT]
    cdef floating* v = <floating*>opt.buffers[ADAM_SECOND_MOMENT]
    if floating is double:
        return loops.rows_d(W, dW, m, v, net.row_marks, i0, i1, n_out, l2_over_m, lr, lr_g,
                            keep, b1, b2, 1 - b1, 1 - b2, eps)
    else:
        return loops.rows_f(W, dW, m, v, net.row_marks, i0, i1, n_out, l2_over_m, <float>lr,
                            <float>lr_g, <float>keep, <float>b1, <float>b2, <float>(1 - b1),
                            <float>(1 - b2), <float>eps)


cdef void _adam_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    """Step t = step_count + 1: lr_t = lr sqrt(1 - b2^t) / (1 - b1^t), and
    the epsilon next to sqrt(v). PyTorch divides by sqrt(v)/sqrt(1 - b2^t) +
    eps; with the correction folded into lr_t that is eps sqrt(1 - b2^t)."""
    cdef double t
    opt.step_count += 1
    t = <double>opt.step_count
    rates.value[ADAM_LR_T] = (opt.lr * sqrt(1 - pow(opt.hyper[ADAM_BETA2], t))
                              / (1 - pow(opt.hyper[ADAM_BETA1], t)))
    if opt.hyper[ADAM_TORCH_EPSILON] != 0:
        rates.value[ADAM_EPSILON_T] = (opt.hyper[ADAM_EPSILON]
                                       * sqrt(1 - pow(opt.hyper[ADAM_BETA2], t)))
    else:
        rates.value[ADAM_EPSILON_T] = opt.hyper[ADAM_EPSILON]


cdef void _adam_step(const fbp_optimizer_state* opt, floating* params, Py_ssize_t offset,
                     Py_ssize_t count, const floating* grad,
                     const StepRates* rates) noexcept nogil:
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr_t m / (sqrt(v) + eps_t)."""
    moments_step(opt, &ADAM_LOOPS, params, offset, count, grad, rates.value[ADAM_LR_T], 0, 1,
                 rates.value[ADAM_EPSILON_T])


cdef double _adam_marked_rows_d(const fbp_optimizer_state* opt, const fbp_network* net,
                                Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &ADAM_LOOPS, net, i0, i1, l2_over_m, rates.value[ADAM_LR_T], 0, 1,
                        rates.value[ADAM_EPSILON_T], <double*>NULL)


cdef double _adam_marked_rows_f(const fbp_optimizer_state* opt, const fbp_network* net,
                                Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &ADAM_LOOPS, net, i0, i1, l2_over_m, rates.value[ADAM_LR_T], 0, 1,
                        rates.value[ADAM_EPSILON_T], <float*>NULL)


cdef check_moments(str name, dict values, buffers):
    """The checks Adam and its variants share: beta1 and beta2 in [0, 1),
    epsilon > 0, both moments given."""
    check_hyper_range("beta1", values["beta1"], 0, 1, high_open=True)
    check_hyper_range("beta2", values["beta2"], 0, 1, high_open=True)
    check_hyper_above("epsilon", values["epsilon"], 0)
    check_buffers_given(name, buffers, ("first_moment", "second_moment"))


def _check_adam(dict values, buffers):
    check_moments("adam", values, buffers)


cdef OptimizerFunctions ADAM_FUNCTIONS
ADAM_FUNCTIONS.is_plain = NULL
ADAM_FUNCTIONS.advance = _adam_advance
ADAM_FUNCTIONS.step_d = _adam_step[double]
ADAM_FUNCTIONS.step_f = _adam_step[float]
ADAM_FUNCTIONS.marked_rows_d = _adam_marked_rows_d
ADAM_FUNCTIONS.marked_rows_f = _adam_marked_rows_f
register_optimizer("adam", &ADAM_FUNCTIONS,
                   {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "torch_epsilon": 0.0},
                   ("first_moment", "second_moment"), _check_adam)
