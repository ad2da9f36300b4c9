# Optimiser steps on a flat parameter vector (or a block of it), and the
# functions through which the training loops (training.pxi, threads.pxi)
# reach the optimiser: once per batch, or per block of parameters, never per
# element. Only this file branches on the optimiser's kind.

cdef void sgd_step(floating* params, const floating* grad, floating* velocity,
                   Py_ssize_t size, double lr, double momentum,
                   bint nesterov) noexcept nogil:
    """Plain: p -= lr g. Momentum: v = mu v - lr g; p += v.
    Nesterov: v = mu v - lr g; p += mu v - lr g."""
    cdef Py_ssize_t i
    cdef floating step, v
    cdef floating lr_f = <floating>lr, mu = <floating>momentum
    if momentum == 0:
        for i in range(size):
            params[i] -= lr_f * grad[i]
    elif not nesterov:
        for i in range(size):
            v = mu * velocity[i] - lr_f * grad[i]
            velocity[i] = v
            params[i] += v
    else:
        for i in range(size):
            step = lr_f * grad[i]
            v = mu * velocity[i] - step
            velocity[i] = v
            params[i] += mu * v - step


cdef extern from "fastbp_optim.h" nogil:
    void fbp_adam_step_f(float* p, const float* g, float* m, float* v, Py_ssize_t n, float lr,
                         float b1, float b2, float c1, float c2, float eps)
    void fbp_adam_step_d(double* p, const double* g, double* m, double* v, Py_ssize_t n,
                         double lr, double b1, double b2, double c1, double c2, double eps)
    double fbp_adam_rows_f(float* W, const float* dW, float* m, float* v, unsigned char* marks,
                           Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n_out, double l2_over_m,
                           float lr, float b1, float b2, float c1, float c2, float eps)
    double fbp_adam_rows_d(double* W, const double* dW, double* m, double* v,
                           unsigned char* marks, Py_ssize_t i0, Py_ssize_t i1, Py_ssize_t n_out,
                           double l2_over_m, double lr, double b1, double b2, double c1,
                           double c2, double eps)
    double fbp_l2_gradient_f(const float* W, float* dW, Py_ssize_t n, double l2_over_m)
    double fbp_l2_gradient_d(const double* W, double* dW, Py_ssize_t n, double l2_over_m)
    double fbp_l2_shrink_f(float* W, Py_ssize_t n, float shrink)
    double fbp_l2_shrink_d(double* W, Py_ssize_t n, double shrink)


cdef inline void adam_step(floating* params, const floating* grad, floating* first_moment,
                           floating* second_moment, Py_ssize_t size, double lr_t,
                           double beta1, double beta2, double epsilon) noexcept nogil:
    """Adam (Kingma & Ba) with the bias correction folded into lr_t:
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr_t m / (sqrt(v) + eps)
    (csrc/fastbp_optim.h)."""
    if floating is double:
        fbp_adam_step_d(params, grad, first_moment, second_moment, size, lr_t, beta1, beta2,
                        1 - beta1, 1 - beta2, epsilon)
    else:
        fbp_adam_step_f(params, grad, first_moment, second_moment, size, <float>lr_t,
                        <float>beta1, <float>beta2, <float>(1 - beta1), <float>(1 - beta2),
                        <float>epsilon)


cdef inline double adam_first_layer(const fbp_optimizer_state* opt, const fbp_network* net,
                                    Py_ssize_t i0, Py_ssize_t i1, double l2_over_m,
                                    double lr_t, double eps_t,
                                    floating* dtype_tag) noexcept nogil:
    """Adam on rows [i0, i1) of W_0 after a sparse batch's backward pass
    (backward_pass with sparse_first_layer): their gradient is the L2 term
    plus dW on the rows net.row_marks marks. Returns sum W^2 over the rows."""
    cdef Py_ssize_t n_out = net.sizes[1]
    cdef floating* W = <floating*>net.params
    cdef floating* dW = <floating*>net.grad
    cdef floating* m = <floating*>opt.first_moment
    cdef floating* v = <floating*>opt.second_moment
    if floating is double:
        return fbp_adam_rows_d(W, dW, m, v, net.row_marks, i0, i1, n_out, l2_over_m, lr_t,
                               opt.beta1, opt.beta2, 1 - opt.beta1, 1 - opt.beta2, eps_t)
    else:
        return fbp_adam_rows_f(W, dW, m, v, net.row_marks, i0, i1, n_out, l2_over_m,
                               <float>lr_t, <float>opt.beta1, <float>opt.beta2,
                               <float>(1 - opt.beta1), <float>(1 - opt.beta2), <float>eps_t)


cdef inline double l2_gradient(const floating* W, floating* dW, Py_ssize_t size,
                               double l2_over_m) noexcept nogil:
    """dW = (l2/m) W; returns sum W^2 (csrc/fastbp_optim.h)."""
    if floating is double:
        return fbp_l2_gradient_d(W, dW, size, l2_over_m)
    else:
        return fbp_l2_gradient_f(W, dW, size, l2_over_m)


cdef inline double l2_shrink(floating* W, Py_ssize_t size, floating shrink) noexcept nogil:
    """W *= shrink; returns sum W^2 before (csrc/fastbp_optim.h)."""
    if floating is double:
        return fbp_l2_shrink_d(W, size, shrink)
    else:
        return fbp_l2_shrink_f(W, size, shrink)


cdef inline double adam_rate(const fbp_optimizer_state* opt, Py_ssize_t step) noexcept nogil:
    """Adam's step size with both bias corrections folded in, at step ``step``
    (from 1): lr sqrt(1 - b2^t) / (1 - b1^t)."""
    return (opt.lr * sqrt(1 - pow(opt.beta2, <double>step))
            / (1 - pow(opt.beta1, <double>step)))


cdef inline double adam_epsilon(const fbp_optimizer_state* opt, Py_ssize_t step) noexcept nogil:
    """The epsilon adam_step adds to sqrt(v) at step ``step``.

    PyTorch divides by sqrt(v)/sqrt(1 - b2^t) + eps; with the correction
    folded into adam_rate that is eps sqrt(1 - b2^t) next to sqrt(v).
    """
    if opt.torch_epsilon:
        return opt.epsilon * sqrt(1 - pow(opt.beta2, <double>step))
    return opt.epsilon


# ---------------------------------------------------------------------------
# The loops' interface to the optimiser. A new optimiser adds its branch to
# each function below (and its step above or in fastbp_optim.h).

cdef struct StepRates:
    # the scalars of one step that the element loops take: Adam's lr_t and
    # eps_t (adam_rate, adam_epsilon); SGD's lr
    double lr
    double epsilon


cdef inline bint optimizer_is_plain(const fbp_optimizer_state* opt) noexcept nogil:
    """Whether a step is p -= opt.lr g with no state (SGD without momentum):
    the loops then fold it into the weight-gradient products (backward_sgd,
    the threads' update, the per-sample path) and write no gradient."""
    return opt.kind == SGD and opt.momentum == 0


cdef inline bint optimizer_steps_marked_rows(const fbp_optimizer_state* opt) noexcept nogil:
    """Whether the optimiser steps W_0 of a sparse batch in one pass with its
    L2 term (optimizer_marked_rows_step): then the backward pass leaves dW_0
    to the rows the batch marks (backward_pass with sparse_first_layer)."""
    return opt.kind == ADAM


cdef inline Py_ssize_t optimizer_step_count(const fbp_optimizer_state* opt,
                                            Py_ssize_t batches) noexcept nogil:
    """The step count after ``batches`` more steps; only an optimiser whose
    step depends on it counts (Adam; SGD stays at 0)."""
    if opt.kind == ADAM:
        return opt.step_count + batches
    return opt.step_count


cdef inline StepRates optimizer_rates(const fbp_optimizer_state* opt,
                                      Py_ssize_t step) noexcept nogil:
    """The scalars of step number ``step`` (from 1, as optimizer_step_count
    counts), for optimizer_step and optimizer_marked_rows_step."""
    cdef StepRates rates
    if opt.kind == ADAM:
        rates.lr = adam_rate(opt, step)
        rates.epsilon = adam_epsilon(opt, step)
    else:
        rates.lr = opt.lr
        rates.epsilon = 0
    return rates


cdef inline void optimizer_step(const fbp_optimizer_state* opt, floating* params,
                                const floating* grad, Py_ssize_t offset, Py_ssize_t count,
                                StepRates rates) noexcept nogil:
    """One step of ``opt`` on params[offset:offset + count], with the rates
    of the current step (optimizer_rates)."""
    cdef floating* velocity = <floating*>opt.velocity
    if opt.kind == SGD:
        sgd_step(params + offset, grad + offset,
                 velocity + offset if velocity != NULL else NULL, count, opt.lr,
                 opt.momentum, opt.nesterov)
    else:
        adam_step(params + offset, grad + offset, <floating*>opt.first_moment + offset,
                  <floating*>opt.second_moment + offset, count, rates.lr, opt.beta1,
                  opt.beta2, rates.epsilon)


cdef inline double optimizer_marked_rows_step(const fbp_optimizer_state* opt,
                                              const fbp_network* net, Py_ssize_t i0,
                                              Py_ssize_t i1, double l2_over_m, StepRates rates,
                                              floating* dtype_tag) noexcept nogil:
    """The step on rows [i0, i1) of W_0 after a sparse batch's backward pass,
    for an optimiser that optimizer_steps_marked_rows: the gradient is the
    L2 term plus dW on the marked rows. Returns sum W^2 over the rows."""
    if opt.kind == ADAM:
        return adam_first_layer(opt, net, i0, i1, l2_over_m, rates.lr, rates.epsilon,
                                dtype_tag)
    return 0  # no other optimiser steps marked rows
