# Rprop, registered as "rprop" (fastbp.optim.Rprop): iRPROP- (Igel &
# Huesken) as torch.optim.Rprop takes it. Per element, from the sign of
# g prev: > 0, step_size *= etaplus; < 0, step_size *= etaminus and g = 0
# for this step; = 0, unchanged. Then step_size is clamped to
# [step_size_min, step_size_max], p -= sign(g) step_size and prev = g. Only
# the gradient's signs count, so it wants full batches. The step that counts
# t = 1 starts every step size at lr (its only use), so its buffers start at
# zero as every optimiser's do.

cdef enum:
    # its hyper-parameter, buffer and rate slots, in the order registered below
    RPROP_ETAMINUS = 0
    RPROP_ETAPLUS = 1
    RPROP_STEP_SIZE_MIN = 2
    RPROP_STEP_SIZE_MAX = 3
    RPROP_PREV = 0
    RPROP_STEP_SIZE = 1


cdef void _rprop_advance(fbp_optimizer_state* opt, StepRates* rates) noexcept nogil:
    opt.step_count += 1
    rates.value[0] = opt.lr


cdef void _rprop_step(const fbp_optimizer_state* opt, floating* params,
                      Py_ssize_t offset, Py_ssize_t count, const floating* grad,
                      const StepRates* rates) noexcept nogil:
    cdef floating etaminus = <floating>opt.hyper[RPROP_ETAMINUS]
    cdef floating etaplus = <floating>opt.hyper[RPROP_ETAPLUS]
    cdef floating low = <floating>opt.hyper[RPROP_STEP_SIZE_MIN]
    cdef floating high = <floating>opt.hyper[RPROP_STEP_SIZE_MAX]
    cdef floating* prev = <floating*>opt.buffers[RPROP_PREV]
    cdef floating* step_size = <floating*>opt.buffers[RPROP_STEP_SIZE]
    cdef floating g, turn, size
    cdef Py_ssize_t i
    if opt.step_count == 1:
        for i in range(offset, offset + count):
            step_size[i] = <floating>rates.value[0]
    for i in range(offset, offset + count):
        g = grad[i - offset]
        turn = g * prev[i]  # in floating, as torch's product: its sign decides
        size = step_size[i]
        if turn > 0:
            size = size * etaplus
        elif turn < 0:
            size = size * etaminus
            g = 0
        if size < low:
            size = low
        if size > high:
            size = high
        step_size[i] = size
        prev[i] = g
        if g > 0:
            params[i] -= size
        elif g < 0:
            params[i] += size


def _check_rprop(dict values, buffers):
    # named as fastbp.Rprop takes them
    if not 0 < values["etaminus"] < 1 < values["etaplus"] < float("inf"):
        raise ValueError(f"etas must satisfy 0 < etas[0] < 1 < etas[1] < inf, got "
                         f"({values['etaminus']!r}, {values['etaplus']!r})")
    if not 0 <= values["step_size_min"] <= values["step_size_max"] < float("inf"):
        raise ValueError(f"step_sizes must satisfy 0 <= step_sizes[0] <= step_sizes[1] < inf, "
                         f"got ({values['step_size_min']!r}, {values['step_size_max']!r})")
    check_buffers_given("rprop", buffers, ("prev", "step_size"))


cdef OptimizerFunctions RPROP_FUNCTIONS
RPROP_FUNCTIONS.is_plain = NULL
RPROP_FUNCTIONS.advance = _rprop_advance
RPROP_FUNCTIONS.step_d = _rprop_step[double]
RPROP_FUNCTIONS.step_f = _rprop_step[float]
RPROP_FUNCTIONS.marked_rows_d = NULL
RPROP_FUNCTIONS.marked_rows_f = NULL
register_optimizer("rprop", &RPROP_FUNCTIONS,
                   {"etaminus": 0.5, "etaplus": 1.2, "step_size_min": 1e-6, "step_size_max": 50.0},
                   ("prev", "step_size"), _check_rprop)
