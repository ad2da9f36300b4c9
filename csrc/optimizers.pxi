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


cdef void adam_step(floating* params, const floating* grad, floating* first,
                    floating* second, Py_ssize_t size, double lr_t,
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
        mi = b1 * first[i] + c1 * g
        vi = b2 * second[i] + c2 * g * g
        first[i] = mi
        second[i] = vi
        params[i] -= lr_f * mi / (sqrt(vi) + eps)


cdef inline double _adam_rate(double lr, double beta1, double beta2,
                              Py_ssize_t step) noexcept nogil:
    """Adam's step size with both bias corrections, at step ``step`` (from 1)."""
    return lr * sqrt(1 - pow(beta2, <double>step)) / (1 - pow(beta1, <double>step))
