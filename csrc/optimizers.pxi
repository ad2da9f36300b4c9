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


cdef void adam_step(floating* params, const floating* grad, floating* first_moment,
                    floating* second_moment, Py_ssize_t size, double lr_t,
                    double beta1, double beta2, double epsilon) noexcept nogil:
    """Adam (Kingma & Ba) with the bias correction folded into lr_t:
    m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr_t m / (sqrt(v) + eps)."""
    cdef Py_ssize_t i
    cdef floating g, mi, vi
    cdef floating b1 = <floating>beta1, b2 = <floating>beta2
    cdef floating c1 = <floating>(1 - beta1), c2 = <floating>(1 - beta2)
    cdef floating lr_f = <floating>lr_t, eps = <floating>epsilon
    for i in range(size):
        g = grad[i]
        mi = b1 * first_moment[i] + c1 * g
        vi = b2 * second_moment[i] + c2 * g * g
        first_moment[i] = mi
        second_moment[i] = vi
        params[i] -= lr_f * mi / (sqrt(vi) + eps)


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
