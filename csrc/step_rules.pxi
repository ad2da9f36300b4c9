# What the training loops do around every optimiser step, whatever the
# optimiser (fastbp_state.h's fbp_step_rules; Network.fit's clip_norm and
# ema). Before the step, the gradient's global L2 norm is clipped as
# torch.nn.utils.clip_grad_norm_ clips it; after it, the params' exponential
# moving average takes them in, as torch.optim.swa_utils.AveragedModel with
# get_ema_multi_avg_fn does (its first update copies them). The loops
# (training.pxi, threads.pxi) call these once per batch or per block of
# parameters, before and after the optimiser's table.

cdef enum:
    # The gradient's squares are summed over this many fixed parts of the
    # params, then the parts in order: one thread, or several each summing
    # its own parts, round alike, so a clipped fit keeps its bits on any
    # number of threads.
    NORM_PARTS = 64


cdef double _sum_squares(const floating* g, Py_ssize_t count) noexcept nogil:
    """sum g^2 in double over four interleaved running sums: a fixed order,
    so the result depends on g and count only (four sums run 3-4x faster
    than one, whose adds wait on each other)."""
    cdef Py_ssize_t i, n4 = count - count % 4
    cdef double x0, x1, x2, x3, s0 = 0, s1 = 0, s2 = 0, s3 = 0
    for i in range(0, n4, 4):
        x0 = g[i]
        x1 = g[i + 1]
        x2 = g[i + 2]
        x3 = g[i + 3]
        s0 += x0 * x0
        s1 += x1 * x1
        s2 += x2 * x2
        s3 += x3 * x3
    for i in range(n4, count):
        x0 = g[i]
        s0 += x0 * x0
    return (s0 + s1) + (s2 + s3)


cdef double gradient_part_squares(const fbp_network* net, int part,
                                  floating* dtype_tag) noexcept nogil:
    """sum grad^2 over norm part ``part`` (of NORM_PARTS) of the params.
    ``dtype_tag`` (NULL) only picks the scalar type."""
    cdef Py_ssize_t first = net.n_params * part // NORM_PARTS
    cdef Py_ssize_t last = net.n_params * (part + 1) // NORM_PARTS
    return _sum_squares(<const floating*>net.grad + first, last - first)


cdef double gradient_squares(const fbp_network* net, floating* dtype_tag) noexcept nogil:
    """||grad||^2: the parts' sums added in order, as the threads add them."""
    cdef int part
    cdef double total = 0
    for part in range(NORM_PARTS):
        total += gradient_part_squares(net, part, dtype_tag)
    return total


cdef inline double clip_coefficient(double squares, double clip_norm) noexcept nogil:
    """The factor clip_grad_norm_ scales the gradient by: clip_norm /
    (||grad|| + 1e-6), at most 1 (NaN when the norm is NaN)."""
    cdef double coef = clip_norm / (sqrt(squares) + 1e-6)
    return 1.0 if coef >= 1 else coef


cdef void scale_gradient(floating* grad, Py_ssize_t offset, Py_ssize_t count,
                         double coef) noexcept nogil:
    """grad[offset:offset + count] *= coef (nothing to do when it is 1)."""
    cdef Py_ssize_t i
    cdef floating c = <floating>coef
    if coef == 1:
        return
    grad += offset
    for i in range(count):
        grad[i] *= c


cdef void average_params(const fbp_step_rules* rules, Py_ssize_t steps,
                         const floating* params, Py_ssize_t offset,
                         Py_ssize_t count) noexcept nogil:
    """ema[offset:offset + count] after step ``steps`` + 1: a copy of the
    params after the first (steps 0), then ema = decay ema + (1 - decay)
    params, in torch.lerp's form for the weight w = 1 - decay: ema + w
    (params - ema), or params - (params - ema)(1 - w) when w >= 0.5."""
    cdef Py_ssize_t i
    cdef floating* ema = <floating*>rules.ema + offset
    cdef floating w = <floating>(1 - rules.ema_decay)
    cdef floating rest = 1 - w
    params += offset
    if steps == 0:
        memcpy(ema, params, count * sizeof(floating))
    elif w < 0.5:
        for i in range(count):
            ema[i] += w * (params[i] - ema[i])
    else:
        for i in range(count):
            ema[i] = params[i] - (params[i] - ema[i]) * rest
