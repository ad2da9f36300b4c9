# Activations and losses: z = f(a), f'(a) through z, and the output delta
# dJ/da_out with the data term of J.

cdef extern from "fastbp_math.h" nogil:
    void fbp_sigmoid_rows_d(const double* a, double* z, Py_ssize_t size)
    void fbp_sigmoid_rows_f(const float* a, float* z, Py_ssize_t size)
    double fbp_exp_shifted_d(const double* x, double* z, Py_ssize_t n, double shift)
    double fbp_exp_shifted_f(const float* x, float* z, Py_ssize_t n, double shift)


cdef inline double _softplus(double x) noexcept nogil:
    # log(1 + e^x) without overflow.
    if x > 0:
        return x + log1p(exp(-x))
    return log1p(exp(x))


cdef void activate_rows(const floating* a, floating* z, Py_ssize_t m,
                        Py_ssize_t n, int kind) noexcept nogil:
    """z = f(a) for an (m x n) block; z may alias a."""
    cdef Py_ssize_t i, r, size = m * n
    cdef floating mx, v
    cdef double total
    if kind == SIGMOID:
        # vectorised C loop (csrc/fastbp_math.h); same math as _sigmoid
        if floating is double:
            fbp_sigmoid_rows_d(a, z, size)
        else:
            fbp_sigmoid_rows_f(a, z, size)
    elif kind == TANH:
        for i in range(size):
            z[i] = tanh(a[i])
    elif kind == RELU:
        for i in range(size):
            v = a[i]
            z[i] = v if v > 0 else 0
    elif kind == SOFTMAX:
        for r in range(m):
            # subtract the row max so exp never overflows
            mx = a[r * n]
            for i in range(1, n):
                if a[r * n + i] > mx:
                    mx = a[r * n + i]
            if floating is double:
                total = fbp_exp_shifted_d(a + r * n, z + r * n, n, mx)
            else:
                total = fbp_exp_shifted_f(a + r * n, z + r * n, n, mx)
            for i in range(n):
                z[r * n + i] = <floating>(z[r * n + i] / total)
    else:
        if z != a:
            memcpy(z, a, size * sizeof(floating))


cdef void multiply_derivative(const floating* z, floating* delta,
                              Py_ssize_t size, int kind) noexcept nogil:
    """delta *= f'(a), written through the outputs z (not for softmax)."""
    cdef Py_ssize_t i
    cdef floating v
    if kind == SIGMOID:
        for i in range(size):
            v = z[i]
            delta[i] *= v * (1 - v)
    elif kind == TANH:
        for i in range(size):
            v = z[i]
            delta[i] *= 1 - v * v
    elif kind == RELU:
        for i in range(size):
            if not (z[i] > 0):
                delta[i] = 0


# ---------------------------------------------------------------------------
# Losses: the data term J and the output delta dJ/da, for a batch of m rows.
# ---------------------------------------------------------------------------
# ---------------------------------------------------------------------------


cdef double output_delta(const floating* a_out, const floating* z_out,
                         const floating* T, floating* delta, Py_ssize_t m,
                         Py_ssize_t n, int loss, int kind, const floating* sw,
                         double sw_sum) noexcept nogil:
    """Write delta_out and return the data term of J.

    Row r carries the weight sw[r] / sw_sum (1/m without sample weights,
    sw == NULL and sw_sum == m): J is the weighted mean of the row losses.
    """
    cdef Py_ssize_t r, i
    cdef double total = 0, row_loss, diff, scale, mx, lse, weighted
    cdef double t, a
    cdef const floating* z_row
    cdef floating* d_row
    for r in range(m):
        scale = (sw[r] if sw != NULL else 1.0) / sw_sum
        z_row = z_out + r * n
        d_row = delta + r * n
        row_loss = 0
        if loss == MSE:
            # J = 1/(2m) sum (z - t)^2 ; dJ/dz = (z - t)/m
            for i in range(n):
                diff = <double>z_row[i] - <double>T[r * n + i]
                row_loss += diff * diff
                d_row[i] = <floating>(diff * scale)
            row_loss *= 0.5
            if kind == SOFTMAX:
                # Jacobian of softmax: delta_k = p_k (g_k - sum_j p_j g_j)
                weighted = 0
                for i in range(n):
                    weighted += <double>z_row[i] * d_row[i]
                for i in range(n):
                    d_row[i] = <floating>(z_row[i] * (d_row[i] - weighted))
            else:
                multiply_derivative(z_row, d_row, n, kind)
        elif loss == BCE:
            # -[t log s(a) + (1-t) log(1-s(a))] = softplus(a) - t a, stable in a
            for i in range(n):
                t = T[r * n + i]
                a = a_out[r * n + i]
                row_loss += _softplus(a) - t * a
                d_row[i] = <floating>((<double>z_row[i] - t) * scale)
        else:
            # CROSS_ENTROPY with softmax outputs: -sum t log softmax(a), via
            # log-sum-exp
            mx = a_out[r * n]
            for i in range(1, n):
                if a_out[r * n + i] > mx:
                    mx = a_out[r * n + i]
            lse = 0
            for i in range(n):
                lse += exp(a_out[r * n + i] - mx)
            lse = mx + log(lse)
            for i in range(n):
                t = T[r * n + i]
                if t != 0:
                    row_loss += t * (lse - a_out[r * n + i])
                d_row[i] = <floating>((<double>z_row[i] - t) * scale)
        total += row_loss * scale
    return total
