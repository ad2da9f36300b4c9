# Activations and losses: z = f(a), f'(a) through z (or a), and the output delta
# dJ/da_out with the data term of J. The arithmetic is C, shared with the
# per-sample path (csrc/fastbp_activations.h); these pick float or double.
# Each activation and loss is one row of its table (fastbp_activation_table.h,
# fastbp_loss_table.h); Python learns them from activation_table() and
# loss_table() below.

cdef extern from "fastbp_codes.h" nogil:
    const int FBP_N_ACTIVATIONS
    const int FBP_N_LOSSES
    const int FBP_ANY_OUTPUT
    const char* const fbp_activation_names[]
    const int fbp_activation_elementwise[]
    const int fbp_activation_needs_a[]
    const char* const fbp_loss_names[]
    const int fbp_loss_outputs[]
    const double fbp_loss_params[]

cdef extern from "fastbp_activations.h" nogil:
    void fbp_activate_rows_d(const double* a, double* z, Py_ssize_t m, Py_ssize_t n, int kind)
    void fbp_activate_rows_f(const float* a, float* z, Py_ssize_t m, Py_ssize_t n, int kind)
    void fbp_multiply_derivative_d(const double* a, const double* z, double* delta,
                                   Py_ssize_t size, int kind)
    void fbp_multiply_derivative_f(const float* a, const float* z, float* delta,
                                   Py_ssize_t size, int kind)
    double fbp_output_delta_row_d(const double* a, const double* z, const double* t,
                                  double* delta, Py_ssize_t n, int loss, int kind,
                                  double scale, double param)
    double fbp_output_delta_row_f(const float* a, const float* z, const float* t,
                                  float* delta, Py_ssize_t n, int loss, int kind,
                                  double scale, double param)


cdef inline void activate_rows(const floating* a, floating* z, Py_ssize_t m,
                               Py_ssize_t n, int kind) noexcept nogil:
    """z = f(a) for an (m x n) block; z may alias a."""
    if floating is double:
        fbp_activate_rows_d(a, z, m, n, kind)
    else:
        fbp_activate_rows_f(a, z, m, n, kind)


cdef inline void multiply_derivative(const floating* a, const floating* z, floating* delta,
                                     Py_ssize_t size, int kind) noexcept nogil:
    """delta *= f'(a), written through the outputs z, or through the
    pre-activations a for a row that needs them (z's block otherwise; not
    for softmax)."""
    if floating is double:
        fbp_multiply_derivative_d(a, z, delta, size, kind)
    else:
        fbp_multiply_derivative_f(a, z, delta, size, kind)


cdef double output_delta(const floating* a_out, const floating* z_out,
                         const floating* T, floating* delta, Py_ssize_t m,
                         Py_ssize_t n, int loss, double loss_param, int kind,
                         const floating* sw, double sw_sum) noexcept nogil:
    """Write delta_out and return the data term of J, for m rows; loss_param
    is the loss's parameter (fbp_network's).

    Row r carries the weight sw[r] / sw_sum (1/m without sample weights,
    sw == NULL and sw_sum == m): J is the weighted mean of the row losses.
    """
    cdef Py_ssize_t r
    cdef double total = 0, scale
    for r in range(m):
        scale = (sw[r] if sw != NULL else 1.0) / sw_sum
        if floating is double:
            total += scale * fbp_output_delta_row_d(a_out + r * n, z_out + r * n, T + r * n,
                                                    delta + r * n, n, loss, kind, scale,
                                                    loss_param)
        else:
            total += scale * fbp_output_delta_row_f(a_out + r * n, z_out + r * n, T + r * n,
                                                    delta + r * n, n, loss, kind, scale,
                                                    loss_param)
    return total


def activation_table():
    """The compiled activations, in code order (a name's index is its code).

    Returns
    -------
    list of (str, bool)
        Each activation's name and whether it acts on each unit alone
        (z_k = f(a_k), so a hidden layer may use it; softmax does not).
    """
    return [(fbp_activation_names[code].decode(), bool(fbp_activation_elementwise[code]))
            for code in range(FBP_N_ACTIVATIONS)]


def activations_of_a():
    """The compiled activations whose f' is written through the
    pre-activation a, not the output z: a layer with one keeps its a.

    Returns
    -------
    list of str
        Their names, in code order.
    """
    return [fbp_activation_names[code].decode() for code in range(FBP_N_ACTIVATIONS)
            if fbp_activation_needs_a[code]]


def loss_table():
    """The compiled losses, in code order (a name's index is its code).

    Returns
    -------
    list of (str, str or None)
        Each loss's name and the output activation its output delta is
        written for (None: any output, the delta goes through its f').
    """
    return [(fbp_loss_names[code].decode(),
             None if fbp_loss_outputs[code] == FBP_ANY_OUTPUT
             else fbp_activation_names[fbp_loss_outputs[code]].decode())
            for code in range(FBP_N_LOSSES)]


def loss_param_defaults():
    """Each compiled loss's parameter default, in code order (0.0 for a
    loss without a parameter): huber's delta, cross_entropy's label smoothing.

    Returns
    -------
    list of float
    """
    return [fbp_loss_params[code] for code in range(FBP_N_LOSSES)]


cdef double loss_param_of(int loss, object loss_param) except? -1:
    """``loss_param``, or the row's default when it is None; finite."""
    if not 0 <= loss < FBP_N_LOSSES:
        raise ValueError(f"unknown loss code {loss}")
    cdef double value = fbp_loss_params[loss] if loss_param is None else loss_param
    if not isfinite(value):
        raise ValueError(f"loss_param must be finite, got {loss_param!r}")
    return value
