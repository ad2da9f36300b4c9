# NAdam (Dozat), registered as "nadam" (fastbp.optim.NAdam), as
# torch.optim.NAdam: Adam's moments (optim_adam.pxi's slots and
# moments_step) with Nesterov's momentum, mu_t = b1 (1 - 0.5 0.96^(t psi)),
# psi the momentum decay, and P_t = mu_1 ... mu_t:
#   p -= lr [(1 - mu_t)/(1 - P_t) g + mu_{t+1}/(1 - P_{t+1}) m] / (sqrt(v/(1 - b2^t)) + eps).
# Its advance folds sqrt(1 - b2^t) into the two rates and eps, as Adam's
# does. P_t is carried in a hyper slot of its own, with the step it
# belongs to: set anew (Trainer.set_optimizer zeroes the slot; a rollback
# restores the step count) it is worked out again from the step count, by
# the same products in the same order, so a fit resumes bit for bit.

cdef extern from * nogil:
    # its loops, made here from fastbp_adam.h's macro (the Nesterov term), with the
    # arguments of Adam's loops: optim_adam.pxi's MomentsLoops
    """
    #include "fastbp_adam.h"
    FBP_DEFINE_ADAM_LOOPS(fbp_nadam, 0, 1)
    """
    void fbp_nadam_step_f(float* p, const float* g, float* m, float* v, Py_ssize_t n,
                          float lr, float lr_g, float keep, float b1, float b2, float c1,
                          float c2, float eps)
    void fbp_nadam_step_d(double* p, const double* g, double* m, double* v, Py_ssize_t n,
                          double lr, double lr_g, double keep, double b1, double b2, double c1,
                          double c2, double eps)
    double fbp_nadam_rows_f(float* W, const float* dW, float* m, float* v,
                            unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1,
                            Py_ssize_t n_out, double l2_over_m, float lr, float lr_g,
                            float keep, float b1, float b2, float c1, float c2, float eps)
    double fbp_nadam_rows_d(double* W, const double* dW, double* m, double* v,
                            unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1,
                            Py_ssize_t n_out, double l2_over_m, double lr, double lr_g,
                            double keep, double b1, double b2, double c1, double c2,
                            double eps)


cdef enum:
    # its hyper-parameter after beta1, beta2 and epsilon (Adam's slots), the
    # slots it carries P_t and its step in, and its rates
    NADAM_MOMENTUM_DECAY = 3
    NADAM_MU_PRODUCT = 4
    NADAM_PRODUCT_STEP = 5
    NADAM_LR_M = 0
    NADAM_LR_G = 1
    NADAM_EPSILON_T = 2


cdef MomentsLoops NADAM_LOOPS
NADAM_LOOPS.step_d = fbp_nadam_step_d
NADAM_LOOPS.step_f = fbp_nadam_step_f
NADAM_LOOPS.rows_d = fbp_nadam_rows_d
NADAM_LOOPS.rows_f = fbp_nadam_rows_f


cdef inline double _nadam_mu(const fbp_optimizer_state* opt, double t) noexcept nogil:
    """mu_t = b1 (1 - 0.5 0.96^(t psi)), as PyTorch writes it."""
    return opt.hyper[ADAM_BETA1] * (1 - 0.5 * pow(0.96, t * opt.hyper[NADAM_MOMENTUM_DECAY]))


cdef void _nadam_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    """Step t = step_count + 1: P_t = P_{t-1} mu_t, and the rates
    lr (1 - mu_t)/(1 - P_t) on g and lr mu_{t+1}/(1 - P_t mu_{t+1}) on m,
    both times sqrt(1 - b2^t), and eps sqrt(1 - b2^t)."""
    cdef Py_ssize_t s, t
    cdef double product, mu, mu_next, correction
    opt.step_count += 1
    t = opt.step_count
    if t > 1 and opt.hyper[NADAM_PRODUCT_STEP] == t - 1:
        product = opt.hyper[NADAM_MU_PRODUCT]
    else:  # set anew: P_{t-1} from the step count
        product = 1
        for s in range(1, t):
            product *= _nadam_mu(opt, <double>s)
    mu = _nadam_mu(opt, <double>t)
    mu_next = _nadam_mu(opt, <double>(t + 1))
    product *= mu
    opt.hyper[NADAM_MU_PRODUCT] = product
    opt.hyper[NADAM_PRODUCT_STEP] = <double>t
    correction = sqrt(1 - pow(opt.hyper[ADAM_BETA2], <double>t))
    rates.value[NADAM_LR_G] = opt.lr * (1 - mu) / (1 - product) * correction
    rates.value[NADAM_LR_M] = opt.lr * mu_next / (1 - product * mu_next) * correction
    rates.value[NADAM_EPSILON_T] = opt.hyper[ADAM_EPSILON] * correction


cdef void _nadam_step(const fbp_optimizer_state* opt, floating* params, Py_ssize_t offset,
                      Py_ssize_t count, const floating* grad,
                      const StepRates* rates) noexcept nogil:
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    p -= (lr_m m + lr_g g) / (sqrt(v) + eps_t)."""
    moments_step(opt, &NADAM_LOOPS, params, offset, count, grad, rates.value[NADAM_LR_M],
                 rates.value[NADAM_LR_G], 1, rates.value[NADAM_EPSILON_T])


cdef double _nadam_marked_rows_d(const fbp_optimizer_state* opt, const fbp_network* net,
                                 Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                 const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &NADAM_LOOPS, net, i0, i1, l2_over_m, rates.value[NADAM_LR_M],
                        rates.value[NADAM_LR_G], 1, rates.value[NADAM_EPSILON_T],
                        <double*>NULL)


cdef double _nadam_marked_rows_f(const fbp_optimizer_state* opt, const fbp_network* net,
                                 Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                 const StepRates* rates) noexcept nogil:
    return moments_rows(opt, &NADAM_LOOPS, net, i0, i1, l2_over_m, rates.value[NADAM_LR_M],
                        rates.value[NADAM_LR_G], 1, rates.value[NADAM_EPSILON_T],
                        <float*>NULL)


def _check_nadam(dict values, buffers):
    check_moments("nadam", values, buffers)
    check_hyper_above("momentum_decay", values["momentum_decay"], 0, inclusive=True)


cdef OptimizerFunctions NADAM_FUNCTIONS
NADAM_FUNCTIONS.is_plain = NULL
NADAM_FUNCTIONS.advance = _nadam_advance
NADAM_FUNCTIONS.step_d = _nadam_step[double]
NADAM_FUNCTIONS.step_f = _nadam_step[float]
NADAM_FUNCTIONS.marked_rows_d = _nadam_marked_rows_d
NADAM_FUNCTIONS.marked_rows_f = _nadam_marked_rows_f
register_optimizer("nadam", &NADAM_FUNCTIONS,
                   {"beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8, "momentum_decay": 4e-3},
                   ("first_moment", "second_moment"), _check_nadam)
