# Optimiser steps on a flat parameter vector (or a block of it).

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


cdef inline void optimizer_step(const fbp_optimizer_state* opt, floating* params,
                                const floating* grad, Py_ssize_t offset, Py_ssize_t count,
                                double lr_t, double eps_t) noexcept nogil:
    """One step of ``opt`` on params[offset:offset + count]; Adam takes lr_t
    and eps_t from adam_rate and adam_epsilon of the current step."""
    cdef floating* velocity = <floating*>opt.velocity
    if opt.kind == SGD:
        sgd_step(params + offset, grad + offset,
                 velocity + offset if velocity != NULL else NULL, count, opt.lr,
                 opt.momentum, opt.nesterov)
    else:
        adam_step(params + offset, grad + offset, <floating*>opt.first_moment + offset,
                  <floating*>opt.second_moment + offset, count, lr_t, opt.beta1,
                  opt.beta2, eps_t)
