# Compiled backpropagation kernels for fastbp.
#
# Conventions (see shared GUIDE):
# - float32/float64 through the fused type ``floating``;
# - every cdef kernel is ``noexcept nogil`` and works on raw, already
#   validated, C-contiguous buffers; the Python layer checks shapes first;
# - each kernel has a ``def`` twin taking typed memoryviews, for the tests.
#
# Parameters of a network live in one flat vector, layer after layer:
#   [W_0 (n_0 x n_1, row-major), b_0 (n_1), W_1 (n_1 x n_2), b_1, ...]
# so that one update loop serves every optimiser step.
#
# Notation follows the notes: a = z_prev . W + b (pre-activation),
# z = f(a) (output), delta = dJ/da.

cimport cython
from cython cimport floating
from libc.math cimport exp, log, log1p, fabs, tanh, isfinite, sqrt, pow
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm

cdef extern from "fastbp_math.h" nogil:
    void fbp_sigmoid_rows_d(const double* a, double* z, Py_ssize_t size)
    void fbp_sigmoid_rows_f(const float* a, float* z, Py_ssize_t size)
    double fbp_exp_shifted_d(const double* x, double* z, Py_ssize_t n, double shift)
    double fbp_exp_shifted_f(const float* x, float* z, Py_ssize_t n, double shift)

cdef extern from "fastbp_sample.h" nogil:
    int fbp_sample_epoch_d(const double* X, const double* T, Py_ssize_t n,
                           const Py_ssize_t* order, double* params,
                           const int* sizes, const int* acts, int n_layers,
                           int loss, double l2, double lr, double* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done)
    int fbp_sample_epoch_f(const float* X, const float* T, Py_ssize_t n,
                           const Py_ssize_t* order, float* params,
                           const int* sizes, const int* acts, int n_layers,
                           int loss, double l2, double lr, float* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done)

cdef extern from "fastbp_gemm.h" nogil:
    Py_ssize_t fbp_gemm_f(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, float alpha,
                          const float* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                          const float* B, Py_ssize_t ldb, float* C, Py_ssize_t ldc)
    Py_ssize_t fbp_gemm_d(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k, double alpha,
                          const double* A, Py_ssize_t a_rs, Py_ssize_t a_cs,
                          const double* B, Py_ssize_t ldb, double* C, Py_ssize_t ldc)
    int fbp_gemm_enable(int on)

cdef extern from "fastbp_threads.h" nogil:
    ctypedef struct fbp_barrier:
        pass
    ctypedef void (*fbp_task)(void* job, int index) noexcept nogil
    void fbp_barrier_init(fbp_barrier* b, int n)
    void fbp_barrier_wait(fbp_barrier* b)
    int fbp_run_threads(int n, fbp_task task, void* job)
    int FBP_MAX_THREADS
    int FBP_HAVE_THREADS

# Activation codes, mirrored by fastbp.network.ACTIVATIONS.
cdef enum:
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4

# Loss codes, mirrored by fastbp.losses.LOSSES.
cdef enum:
    MSE = 0
    BCE = 1
    CROSS_ENTROPY = 2

# Optimiser codes, mirrored by fastbp.optim.
cdef enum:
    OPT_SGD = 0
    OPT_ADAM = 1

# Below this many multiply-adds a gemm call costs more than plain loops.
# Measured (bench/crossover.py, 1 thread): loops win only for products of
# about 100 multiply-adds or fewer (a 2-2-1 net); from a 4-8-3 net at
# batch 4 on, OpenBLAS is faster, and 3-4x faster at 64-32-10.
cdef Py_ssize_t BLAS_MIN_FLOPS = 128


# ---------------------------------------------------------------------------
# Matrix products, row-major, always accumulating: C += op(A) . op(B)
# ---------------------------------------------------------------------------

cdef void _blas_gemm(bint trans_a, bint trans_b, int m, int n, int k,
                     floating alpha, const floating* A, int lda,
                     const floating* B, int ldb, floating* C,
                     int ldc) noexcept nogil:
    # Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T,
    # so BLAS gets the operands swapped.
    cdef char ta = b'T' if trans_b else b'N'
    cdef char tb = b'T' if trans_a else b'N'
    cdef floating one = 1.0
    if floating is float:
        sgemm(&ta, &tb, &n, &m, &k, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &one, C, &ldc)
    else:
        dgemm(&ta, &tb, &n, &m, &k, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &one, C, &ldc)


cdef inline int _tiled_gemm(int m, int n, int k, floating alpha, const floating* A,
                            Py_ssize_t a_rs, Py_ssize_t a_cs, const floating* B,
                            Py_ssize_t ldb, floating* C, Py_ssize_t ldc) noexcept nogil:
    # csrc/fastbp_gemm.h: the leading columns it covers, BLAS does the rest
    if floating is float:
        return <int>fbp_gemm_f(m, n, k, alpha, A, a_rs, a_cs, B, ldb, C, ldc)
    else:
        return <int>fbp_gemm_d(m, n, k, alpha, A, a_rs, a_cs, B, ldb, C, ldc)


cdef void gemm_nn(int m, int n, int k, const floating* A, const floating* B,
                  floating* C) noexcept nogil:
    """C (m x n) += A (m x k) . B (k x n)."""
    cdef Py_ssize_t r, i, j
    cdef floating s
    cdef const floating* b_row
    cdef floating* c_row
    cdef int done
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        done = _tiled_gemm(m, n, k, 1, A, k, 1, B, n, C, n)
        if done < n:
            _blas_gemm(False, False, m, n - done, k, 1, A, k, B + done, n, C + done, n)
        return
    for r in range(m):
        c_row = C + r * n
        for i in range(k):
            s = A[r * k + i]
            b_row = B + i * n
            # axpy over a contiguous row: vectorises without reassociation
            for j in range(n):
                c_row[j] += s * b_row[j]


cdef void gemm_nt(int m, int n, int k, const floating* A, const floating* B,
                  floating* C) noexcept nogil:
    """C (m x n) += A (m x k) . B^T, with B stored (n x k)."""
    cdef Py_ssize_t r, i, j
    cdef floating s0, s1, s2, s3
    cdef const floating* a_row
    cdef const floating* b_row
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        _blas_gemm(False, True, m, n, k, 1, A, k, B, k, C, n)
        return
    for r in range(m):
        a_row = A + r * k
        for i in range(n):
            b_row = B + i * k
            # four accumulators let the compiler keep several sums in flight
            s0 = 0; s1 = 0; s2 = 0; s3 = 0
            j = 0
            while j + 4 <= k:
                s0 += a_row[j] * b_row[j]
                s1 += a_row[j + 1] * b_row[j + 1]
                s2 += a_row[j + 2] * b_row[j + 2]
                s3 += a_row[j + 3] * b_row[j + 3]
                j += 4
            while j < k:
                s0 += a_row[j] * b_row[j]
                j += 1
            C[r * n + i] += (s0 + s1) + (s2 + s3)


cdef void gemm_tn(int m, int n, int k, floating alpha, const floating* A,
                  const floating* B, floating* C) noexcept nogil:
    """C (m x n) += alpha A^T . B, with A stored (k x m) and B stored (k x n)."""
    gemm_tn_ld(m, n, k, alpha, A, m, B, C)


cdef void gemm_tn_ld(int m, int n, int k, floating alpha, const floating* A,
                     int lda, const floating* B, floating* C) noexcept nogil:
    """gemm_tn on a column block of A: its rows are lda elements apart."""
    cdef Py_ssize_t r, i, j
    cdef floating s
    cdef const floating* b_row
    cdef floating* c_row
    cdef int done
    if <Py_ssize_t>m * n * k >= BLAS_MIN_FLOPS:
        done = _tiled_gemm(m, n, k, alpha, A, 1, lda, B, n, C, n)
        if done < n:
            _blas_gemm(True, False, m, n - done, k, alpha, A, lda, B + done, n, C + done, n)
        return
    for r in range(k):
        b_row = B + r * n
        for i in range(m):
            s = alpha * A[r * lda + i]
            c_row = C + i * n
            for j in range(n):
                c_row[j] += s * b_row[j]


# ---------------------------------------------------------------------------
# Activations. Derivatives are taken from the outputs z, as in the notes.
# ---------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------
# Whole-network passes over the flat parameter vector.
# ---------------------------------------------------------------------------

cdef inline Py_ssize_t _max_width(const int* sizes, int n_layers) noexcept nogil:
    cdef Py_ssize_t l, w = 0
    for l in range(n_layers + 1):
        if sizes[l] > w:
            w = sizes[l]
    return w


cdef inline Py_ssize_t _z_offsets(const int* sizes, int n_layers, Py_ssize_t m,
                                  Py_ssize_t* z_offsets) noexcept nogil:
    """Offsets of z_l (l = 1..L) for m rows in the workspace; returns their
    total, where a_out starts. The Python layer caps L at 63."""
    cdef Py_ssize_t l, total = 0
    for l in range(1, n_layers + 1):
        z_offsets[l] = total
        total += m * sizes[l]
    return total


cdef Py_ssize_t _workspace_size(const int* sizes, int n_layers,
                                Py_ssize_t rows) noexcept nogil:
    # z_1..z_L, a_out, two delta buffers, gathered X, T and weight rows
    cdef Py_ssize_t l, total = 0
    for l in range(1, n_layers + 1):
        total += rows * sizes[l]
    total += rows * sizes[n_layers]
    total += 2 * rows * _max_width(sizes, n_layers)
    total += rows * sizes[0] + rows * sizes[n_layers] + rows
    # one scratch row after the deltas for the per-sample path (lr * delta)
    total += _max_width(sizes, n_layers)
    return total


cdef void forward_pass(const floating* X, Py_ssize_t m, const floating* params,
                       const int* sizes, const int* acts, int n_layers,
                       floating* work) noexcept nogil:
    """Fill z_1..z_L and a_out in the workspace for m rows of X."""
    forward_rows(X, 0, m, m, params, sizes, acts, n_layers, work)


cdef void forward_rows(const floating* X_rows, Py_ssize_t r0, Py_ssize_t rows,
                       Py_ssize_t m, const floating* params, const int* sizes,
                       const int* acts, int n_layers,
                       floating* work) noexcept nogil:
    """forward_pass for rows [r0, r0 + rows) of an m-row batch (X_rows holds
    those rows); writes only their part of the workspace."""
    cdef Py_ssize_t l, r, n_in, n_out
    cdef const floating* z_prev = X_rows
    cdef const floating* W = params
    cdef const floating* b
    cdef floating* a
    cdef Py_ssize_t z_offsets[64]
    cdef floating* a_out = work + _z_offsets(sizes, n_layers, m, z_offsets)
    for l in range(n_layers):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        b = W + n_in * n_out
        a = work + z_offsets[l + 1] + r0 * n_out
        # a = z_prev . W + b: start from the bias, then accumulate
        if l == n_layers - 1:
            for r in range(rows):
                memcpy(a_out + (r0 + r) * n_out, b, n_out * sizeof(floating))
            gemm_nn(<int>rows, <int>n_out, <int>n_in, z_prev, W, a_out + r0 * n_out)
            activate_rows(a_out + r0 * n_out, a, rows, n_out, acts[l])
        else:
            for r in range(rows):
                memcpy(a + r * n_out, b, n_out * sizeof(floating))
            gemm_nn(<int>rows, <int>n_out, <int>n_in, z_prev, W, a)
            activate_rows(a, a, rows, n_out, acts[l])
        z_prev = a
        W = b + n_out


cdef double backward_pass(const floating* X, const floating* T, Py_ssize_t m,
                          const floating* params, floating* grad,
                          const int* sizes, const int* acts, int n_layers,
                          int loss, double l2, floating* work,
                          const floating* sw, double sw_sum,
                          double* penalty_out) noexcept nogil:
    """After forward_pass: write dJ/dparams into grad and return the data
    term of J; the L2 term l2/(2 sw_sum) sum ||W||^2 goes to penalty_out."""
    cdef Py_ssize_t l, r, j, n_in, n_out, z_total = 0, count
    cdef Py_ssize_t max_w = _max_width(sizes, n_layers)
    cdef Py_ssize_t w_off, b_off
    cdef floating* z_out
    cdef floating* a_out
    cdef floating* delta
    cdef floating* delta_prev
    cdef floating* swap
    cdef const floating* z_prev
    cdef const floating* W
    cdef floating* dW
    cdef floating* db
    cdef double J, penalty = 0, w_val, l2_over_m = l2 / sw_sum
    cdef Py_ssize_t z_offsets[64]

    z_total = _z_offsets(sizes, n_layers, m, z_offsets)
    a_out = work + z_total
    delta = a_out + m * sizes[n_layers]
    delta_prev = delta + m * max_w
    z_out = work + z_offsets[n_layers]

    J = output_delta(a_out, z_out, T, delta, m, sizes[n_layers], loss,
                     acts[n_layers - 1], sw, sw_sum)

    # walk the layers backwards; offsets of W_l and b_l in the flat vector
    w_off = 0
    for l in range(n_layers):
        w_off += (<Py_ssize_t>sizes[l] + 1) * sizes[l + 1]
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        w_off -= (n_in + 1) * n_out
        b_off = w_off + n_in * n_out
        W = params + w_off
        dW = grad + w_off
        db = grad + b_off
        z_prev = X if l == 0 else work + z_offsets[l]

        # dJ/dW = z_prev^T . delta + (l2/m) W ; biases are not penalised
        count = n_in * n_out
        if l2 != 0:
            for j in range(count):
                w_val = W[j]
                penalty += w_val * w_val
                dW[j] = <floating>(l2_over_m * w_val)
        else:
            memset(dW, 0, count * sizeof(floating))
        gemm_tn(<int>n_in, <int>n_out, <int>m, 1, z_prev, delta, dW)
        # dJ/db = column sums of delta
        memset(db, 0, n_out * sizeof(floating))
        for r in range(m):
            for j in range(n_out):
                db[j] += delta[r * n_out + j]

        if l > 0:
            # delta_prev = (delta . W^T) * f'(a_prev)
            memset(delta_prev, 0, m * n_in * sizeof(floating))
            gemm_nt(<int>m, <int>n_in, <int>n_out, delta, W, delta_prev)
            multiply_derivative(z_prev, delta_prev, m * n_in, acts[l - 1])
            swap = delta
            delta = delta_prev
            delta_prev = swap
    penalty_out[0] = 0.5 * l2_over_m * penalty
    return J


cdef double backward_sgd(const floating* X, const floating* T, Py_ssize_t m,
                         floating* params, const int* sizes, const int* acts,
                         int n_layers, int loss, double l2, double lr,
                         floating* work, const floating* sw, double sw_sum,
                         double* penalty_out) noexcept nogil:
    """After forward_pass: apply one plain SGD step layer by layer; return the
    data term of J and write the L2 term to penalty_out.

    The update goes straight into W through gemm (alpha = -lr, beta = 1), so
    no gradient buffer is written and read back. Each layer's delta for the
    layer below is taken before its W changes. Returns NaN without touching
    the weights when the data term of J is not finite.
    """
    cdef Py_ssize_t l, r, j, n_in, n_out, z_total = 0, count
    cdef Py_ssize_t max_w = _max_width(sizes, n_layers)
    cdef Py_ssize_t w_off
    cdef floating* a_out
    cdef floating* delta
    cdef floating* delta_prev
    cdef floating* swap
    cdef const floating* z_prev
    cdef floating* W
    cdef floating* b
    cdef floating shrink, step, w_val
    cdef double J, penalty = 0, l2_over_m = l2 / sw_sum
    cdef Py_ssize_t z_offsets[64]

    z_total = _z_offsets(sizes, n_layers, m, z_offsets)
    a_out = work + z_total
    delta = a_out + m * sizes[n_layers]
    delta_prev = delta + m * max_w
    J = output_delta(a_out, work + z_offsets[n_layers], T, delta, m,
                     sizes[n_layers], loss, acts[n_layers - 1], sw, sw_sum)
    if not isfinite(J):
        return J

    w_off = 0
    for l in range(n_layers):
        w_off += (<Py_ssize_t>sizes[l] + 1) * sizes[l + 1]
    step = <floating>(-lr)
    shrink = <floating>(1 - lr * l2_over_m)
    for l in range(n_layers - 1, -1, -1):
        n_in = sizes[l]
        n_out = sizes[l + 1]
        w_off -= (n_in + 1) * n_out
        W = params + w_off
        b = W + n_in * n_out
        z_prev = X if l == 0 else work + z_offsets[l]
        if l > 0:
            # delta_prev = (delta . W^T) * f'(a_prev), with the old W
            memset(delta_prev, 0, m * n_in * sizeof(floating))
            gemm_nt(<int>m, <int>n_in, <int>n_out, delta, W, delta_prev)
            multiply_derivative(z_prev, delta_prev, m * n_in, acts[l - 1])
        # W <- W - lr (z_prev^T delta + (l2/m) W), biases not penalised
        count = n_in * n_out
        if l2 != 0:
            for j in range(count):
                w_val = W[j]
                penalty += <double>w_val * w_val
                W[j] = shrink * w_val
        gemm_tn(<int>n_in, <int>n_out, <int>m, step, z_prev, delta, W)
        for r in range(m):
            for j in range(n_out):
                b[j] += step * delta[r * n_out + j]
        if l > 0:
            swap = delta
            delta = delta_prev
            delta_prev = swap
    penalty_out[0] = 0.5 * l2_over_m * penalty
    return J


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


cdef inline void _gather_rows(const floating* X, const floating* T,
                              const floating* sw, const Py_ssize_t* order,
                              Py_ssize_t pos, Py_ssize_t first, Py_ssize_t count,
                              Py_ssize_t n_in, Py_ssize_t n_out,
                              floating* x_rows, floating* t_rows,
                              floating* w_rows) noexcept nogil:
    """Copy batch rows [first, first + count) of positions from ``pos`` on,
    in ``order``, into the batch buffers (w_rows only with weights)."""
    cdef Py_ssize_t r, row
    for r in range(first, first + count):
        row = order[pos + r]
        memcpy(x_rows + r * n_in, X + row * n_in, n_in * sizeof(floating))
        memcpy(t_rows + r * n_out, T + row * n_out, n_out * sizeof(floating))
        if sw != NULL:
            w_rows[r] = sw[row]


cdef inline double _batch_rows(const floating* X, const floating* T,
                               const floating* sw, const Py_ssize_t* order,
                               Py_ssize_t pos, Py_ssize_t m, Py_ssize_t first,
                               Py_ssize_t count, Py_ssize_t n_in, Py_ssize_t n_out,
                               floating* x_rows, floating* t_rows, floating* w_rows,
                               const floating** xb, const floating** tb,
                               const floating** wb) noexcept nogil:
    """Point xb, tb and wb (NULL without weights) at the m-row batch from
    position ``pos``: at the data itself when there is no ``order``, else at
    the buffers, into which batch rows [first, first + count) are gathered.
    Returns the sum of the batch's sample weights (m without weights)."""
    cdef Py_ssize_t r
    cdef double sw_sum
    if order != NULL:
        _gather_rows(X, T, sw, order, pos, first, count, n_in, n_out, x_rows, t_rows, w_rows)
        xb[0] = x_rows
        tb[0] = t_rows
        wb[0] = w_rows if sw != NULL else NULL
    else:
        xb[0] = X + pos * n_in
        tb[0] = T + pos * n_out
        wb[0] = sw + pos if sw != NULL else NULL
    if sw == NULL:
        return m
    sw_sum = 0
    for r in range(m):
        sw_sum += sw[order[pos + r]] if order != NULL else sw[pos + r]
    return sw_sum


cdef inline double _adam_rate(double lr, double beta1, double beta2,
                              Py_ssize_t step) noexcept nogil:
    """Adam's step size with both bias corrections, at step ``step`` (from 1)."""
    return lr * sqrt(1 - pow(beta2, <double>step)) / (1 - pow(beta1, <double>step))


# ---------------------------------------------------------------------------
# Minibatch training on threads of its own (csrc/fastbp_threads.h)
# ---------------------------------------------------------------------------

cdef struct TrainJob:
    # the arguments of train_rows_kernel; pointers to float or double
    const void* X
    const void* T
    const void* sw
    const Py_ssize_t* order
    Py_ssize_t start, stop, batch_size, steps_before
    void* params
    void* grad
    void* state1
    void* state2
    void* work
    const int* sizes
    const int* acts
    int n_layers, loss, optimizer, n_threads
    double l2, lr, momentum, beta2, epsilon
    bint nesterov
    fbp_barrier barrier
    # each thread's share of a batch's J and L2 sum; read after a barrier
    double J_part[64]
    double penalty_part[64]
    # results, written by thread 0
    int status
    double loss_sum, penalty_sum
    Py_ssize_t rows_done, steps


cdef Py_ssize_t _threaded_workspace_size(const int* sizes, int n_layers,
                                         Py_ssize_t rows) noexcept nogil:
    # z_1..z_L, a_out, delta_1..delta_L (every layer's delta is kept for
    # the update after the barrier), gathered X, T and weight rows
    cdef Py_ssize_t l, total = 0
    for l in range(1, n_layers + 1):
        total += 2 * rows * sizes[l]
    return total + rows * (sizes[n_layers] + sizes[0] + sizes[n_layers] + 1)


cdef inline Py_ssize_t _share(Py_ssize_t count, int index, int n_threads) noexcept nogil:
    """Start of thread ``index``'s contiguous share of ``count`` items."""
    return count * index // n_threads


cdef void _train_part(TrainJob* job, int index, floating* dtype_tag) noexcept nogil:
    """Thread ``index``'s part of train_rows_kernel's minibatch loop.

    Per batch: forward pass, output delta and the deltas of all layers on its
    own rows (they use the old weights and only those rows); a barrier; then
    the update of its own columns of every W and b (a sum over all rows); a
    barrier. Every thread sees the same J after the first barrier, so all
    stop at the same batch when it is not finite.
    """
    cdef const floating* X = <const floating*>job.X
    cdef const floating* T = <const floating*>job.T
    cdef const floating* sw = <const floating*>job.sw
    cdef const Py_ssize_t* order = job.order
    cdef floating* params = <floating*>job.params
    cdef floating* grad = <floating*>job.grad
    cdef floating* state1 = <floating*>job.state1
    cdef floating* state2 = <floating*>job.state2
    cdef floating* work = <floating*>job.work
    cdef const int* sizes = job.sizes
    cdef const int* acts = job.acts
    cdef int n_layers = job.n_layers, n_threads = job.n_threads, t
    cdef Py_ssize_t B = job.batch_size, n_in = sizes[0], n_out = sizes[n_layers]
    cdef Py_ssize_t pos = job.start, m, r, r0, rows, l, i, i0, i1, c0, c1
    cdef Py_ssize_t k_in, k_out, w_off, count, batches = 0, z_total
    cdef Py_ssize_t z_offsets[64]
    cdef Py_ssize_t w_offsets[64]
    cdef floating* x_rows = work + _threaded_workspace_size(sizes, n_layers, B) \
        - B * (n_in + n_out + 1)
    cdef floating* t_rows = x_rows + B * n_in
    cdef floating* w_rows = t_rows + B * n_out
    cdef floating* a_out
    cdef floating* deltas
    cdef floating* delta
    cdef floating* W
    cdef floating* dW
    cdef floating* p
    cdef const floating* xb
    cdef const floating* tb
    cdef const floating* wb
    cdef const floating* z_prev
    cdef floating step, shrink, w_val
    cdef double J, penalty, sw_sum, l2_over_m, lr_t = job.lr
    cdef bint plain = job.optimizer == OPT_SGD and job.momentum == 0

    w_off = 0
    for l in range(n_layers):
        w_offsets[l] = w_off
        w_off += (<Py_ssize_t>sizes[l] + 1) * sizes[l + 1]
    while pos < job.stop:
        m = B if pos + B <= job.stop else job.stop - pos
        r0 = _share(m, index, n_threads)
        rows = _share(m, index + 1, n_threads) - r0
        z_total = _z_offsets(sizes, n_layers, m, z_offsets)
        a_out = work + z_total
        deltas = a_out + m * n_out  # delta_l at deltas + z_offsets[l]
        # each thread gathers its own rows; all sum the same weights alike
        sw_sum = _batch_rows(X, T, sw, order, pos, m, r0, rows, n_in, n_out, x_rows, t_rows,
                             w_rows, &xb, &tb, &wb)

        # rows [r0, r0 + rows): forward, output delta, deltas of every layer
        forward_rows(xb + r0 * n_in, r0, rows, m, params, sizes, acts, n_layers, work)
        job.J_part[index] = output_delta(
            a_out + r0 * n_out, work + z_offsets[n_layers] + r0 * n_out,
            tb + r0 * n_out, deltas + z_offsets[n_layers] + r0 * n_out, rows,
            n_out, job.loss, acts[n_layers - 1], wb + r0 if wb != NULL else NULL,
            sw_sum)
        for l in range(n_layers - 1, 0, -1):
            # delta_l = (delta_{l+1} . W_l^T) * f'(z_l), with the old W_l
            k_in = sizes[l]
            k_out = sizes[l + 1]
            delta = deltas + z_offsets[l] + r0 * k_in
            memset(delta, 0, rows * k_in * sizeof(floating))
            gemm_nt(<int>rows, <int>k_in, <int>k_out,
                    deltas + z_offsets[l + 1] + r0 * k_out,
                    params + w_offsets[l], delta)
            multiply_derivative(work + z_offsets[l] + r0 * k_in, delta,
                                rows * k_in, acts[l - 1])
        fbp_barrier_wait(&job.barrier)

        J = 0
        for t in range(n_threads):
            J += job.J_part[t]
        if not isfinite(J):
            if index == 0:
                job.status = 1
            break
        batches += 1
        if job.optimizer != OPT_SGD:
            lr_t = _adam_rate(job.lr, job.momentum, job.beta2, job.steps_before + batches)
        # rows [i0, i1) of every W and columns [c0, c1) of every b:
        # W -= lr (z_prev^T delta + l2/m W); contiguous blocks of W, and
        # each thread packs only its part of z_prev for the gemm
        l2_over_m = job.l2 / sw_sum
        step = <floating>(-job.lr)
        shrink = <floating>(1 - job.lr * l2_over_m)
        penalty = 0
        for l in range(n_layers):
            k_in = sizes[l]
            k_out = sizes[l + 1]
            i0 = _share(k_in, index, n_threads)
            i1 = _share(k_in, index + 1, n_threads)
            c0 = _share(k_out, index, n_threads)
            c1 = _share(k_out, index + 1, n_threads)
            W = params + w_offsets[l]
            z_prev = xb if l == 0 else work + z_offsets[l]
            delta = deltas + z_offsets[l + 1]
            if plain:
                if job.l2 != 0:
                    for i in range(i0 * k_out, i1 * k_out):
                        w_val = W[i]
                        penalty += <double>w_val * w_val
                        W[i] = shrink * w_val
                if i1 > i0:
                    gemm_tn_ld(<int>(i1 - i0), <int>k_out, <int>m, step, z_prev + i0,
                               <int>k_in, delta, W + i0 * k_out)
                p = W + k_in * k_out  # the bias
                for r in range(m):
                    for i in range(c0, c1):
                        p[i] += step * delta[r * k_out + i]
                continue
            # gradient of the block, then the optimiser step on it
            dW = grad + w_offsets[l]
            if job.l2 != 0:
                for i in range(i0 * k_out, i1 * k_out):
                    w_val = W[i]
                    penalty += <double>w_val * w_val
                    dW[i] = <floating>(l2_over_m * w_val)
            else:
                memset(dW + i0 * k_out, 0, (i1 - i0) * k_out * sizeof(floating))
            if i1 > i0:
                gemm_tn_ld(<int>(i1 - i0), <int>k_out, <int>m, 1, z_prev + i0, <int>k_in,
                           delta, dW + i0 * k_out)
            p = dW + k_in * k_out  # the bias gradient
            memset(p + c0, 0, (c1 - c0) * sizeof(floating))
            for r in range(m):
                for i in range(c0, c1):
                    p[i] += delta[r * k_out + i]
            # the step on this thread's rows of W, then on its part of b
            w_off = w_offsets[l] + i0 * k_out
            count = (i1 - i0) * k_out
            for t in range(2):
                if job.optimizer == OPT_SGD:
                    sgd_step(params + w_off, grad + w_off, state1 + w_off, count,
                             job.lr, job.momentum, job.nesterov)
                else:
                    adam_step(params + w_off, grad + w_off, state1 + w_off,
                              state2 + w_off, count, lr_t, job.momentum,
                              job.beta2, job.epsilon)
                w_off = w_offsets[l] + k_in * k_out + c0
                count = c1 - c0
        job.penalty_part[index] = 0.5 * l2_over_m * penalty
        fbp_barrier_wait(&job.barrier)
        if index == 0:
            penalty = 0
            for t in range(n_threads):
                penalty += job.penalty_part[t]
            job.loss_sum += J * m
            job.penalty_sum += penalty * m
            job.rows_done += m
        pos += m
    if index == 0:
        job.steps = job.steps_before + (batches if job.optimizer != OPT_SGD else 0)


cdef void _train_part_d(void* job, int index) noexcept nogil:
    _train_part(<TrainJob*>job, index, <double*>NULL)


cdef void _train_part_f(void* job, int index) noexcept nogil:
    _train_part(<TrainJob*>job, index, <float*>NULL)


cdef int train_rows_kernel(const floating* X, const floating* T,
                           const floating* sw, const Py_ssize_t* order,
                           Py_ssize_t start, Py_ssize_t stop,
                           Py_ssize_t batch_size, floating* params,
                           floating* grad, floating* state1, floating* state2,
                           Py_ssize_t n_params, const int* sizes,
                           const int* acts, int n_layers, int loss, double l2,
                           int optimizer, double lr, double momentum,
                           bint nesterov, double beta2, double epsilon,
                           Py_ssize_t* step_count, floating* work,
                           double* loss_sum, double* penalty_sum,
                           Py_ssize_t* rows_done, int n_threads) noexcept nogil:
    """Minibatch training over positions [start, stop) of the row order.

    Batches are consecutive runs of ``batch_size`` positions; the last may be
    shorter. ``order`` maps positions to rows (NULL: position = row), ``sw``
    holds sample weights (NULL: all 1). SGD uses state1 as the velocity
    (``momentum``); Adam uses state1/state2 as its moments, ``momentum`` as
    beta1, and counts its steps in step_count. loss_sum and penalty_sum add
    up J's data and L2 terms times each batch's row count. Returns 0, or 1
    when a batch loss is not finite (that batch's update is not applied).
    Minibatches run on ``n_threads`` threads of their own (_train_part) when
    it is above 1 and the platform can start them.
    """
    cdef Py_ssize_t pos, m, n_in = sizes[0], n_out = sizes[n_layers]
    cdef Py_ssize_t x_off = _workspace_size(sizes, n_layers, batch_size) \
        - batch_size * (n_in + n_out + 1)
    cdef floating* x_rows = work + x_off
    cdef floating* t_rows = x_rows + batch_size * n_in
    cdef floating* w_rows = t_rows + batch_size * n_out
    cdef const floating* xb
    cdef const floating* tb
    cdef const floating* wb
    cdef double J, penalty, sw_sum, lr_t
    cdef TrainJob job
    cdef fbp_task task
    loss_sum[0] = 0
    penalty_sum[0] = 0
    rows_done[0] = 0
    if (batch_size == 1 and optimizer == OPT_SGD and momentum == 0
            and sw == NULL):
        # per-sample plain SGD: the fused C path (csrc/fastbp_sample.h);
        # without an order, positions are rows, so start there
        if order != NULL:
            order = order + start
        else:
            X = X + start * n_in
            T = T + start * n_out
        if floating is double:
            return fbp_sample_epoch_d(X, T, stop - start, order, params, sizes,
                                      acts, n_layers, loss, l2, lr, work,
                                      loss_sum, penalty_sum, rows_done)
        else:
            return fbp_sample_epoch_f(X, T, stop - start, order, params, sizes,
                                      acts, n_layers, loss, l2, lr, work,
                                      loss_sum, penalty_sum, rows_done)
    if n_threads > 1:
        job.X = X
        job.T = T
        job.sw = sw
        job.order = order
        job.start = start
        job.stop = stop
        job.batch_size = batch_size
        job.steps_before = step_count[0]
        job.params = params
        job.grad = grad
        job.state1 = state1
        job.state2 = state2
        job.work = work
        job.sizes = sizes
        job.acts = acts
        job.n_layers = n_layers
        job.loss = loss
        job.optimizer = optimizer
        job.n_threads = n_threads
        job.l2 = l2
        job.lr = lr
        job.momentum = momentum
        job.beta2 = beta2
        job.epsilon = epsilon
        job.nesterov = nesterov
        job.status = 0
        job.loss_sum = 0
        job.penalty_sum = 0
        job.rows_done = 0
        fbp_barrier_init(&job.barrier, n_threads)
        task = _train_part_d if floating is double else _train_part_f
        # -1: the threads could not be started; train on this one instead
        if fbp_run_threads(n_threads, task, &job) == 0:
            loss_sum[0] = job.loss_sum
            penalty_sum[0] = job.penalty_sum
            rows_done[0] = job.rows_done
            step_count[0] = job.steps
            return job.status
    pos = start
    while pos < stop:
        m = batch_size if pos + batch_size <= stop else stop - pos
        sw_sum = _batch_rows(X, T, sw, order, pos, m, 0, m, n_in, n_out, x_rows, t_rows,
                             w_rows, &xb, &tb, &wb)
        forward_pass(xb, m, params, sizes, acts, n_layers, work)
        if optimizer == OPT_SGD and momentum == 0:
            J = backward_sgd(xb, tb, m, params, sizes, acts, n_layers, loss,
                             l2, lr, work, wb, sw_sum, &penalty)
            if not isfinite(J):
                return 1
        else:
            J = backward_pass(xb, tb, m, params, grad, sizes, acts, n_layers,
                              loss, l2, work, wb, sw_sum, &penalty)
            if not isfinite(J):
                return 1
            if optimizer == OPT_SGD:
                sgd_step(params, grad, state1, n_params, lr, momentum,
                         nesterov)
            else:
                step_count[0] += 1
                lr_t = _adam_rate(lr, momentum, beta2, step_count[0])
                adam_step(params, grad, state1, state2, n_params, lr_t,
                          momentum, beta2, epsilon)
        loss_sum[0] += J * m
        penalty_sum[0] += penalty * m
        rows_done[0] += m
        pos += m
    return 0


# ---------------------------------------------------------------------------
# Python-callable twins. They trust the Python layer for shapes and codes.
# ---------------------------------------------------------------------------

#: whether train_rows can use threads of its own on this platform
HAVE_THREADS = bool(FBP_HAVE_THREADS)


def set_blas_min_flops(Py_ssize_t flops):
    """Set the multiply-add count from which gemm goes to BLAS; return the old.

    Tests use it to run both the loop and the BLAS paths on small shapes.
    """
    global BLAS_MIN_FLOPS
    old = BLAS_MIN_FLOPS
    BLAS_MIN_FLOPS = flops
    return old


def set_tiled_gemm(bint on):
    """Switch the register-tiled products (csrc/fastbp_gemm.h) on or off;
    return whether they are in use, which needs a CPU with AVX-512.

    Off, BLAS computes every product. Tests use it to run both paths.
    """
    return bool(fbp_gemm_enable(on))


def workspace_size(const int[::1] sizes, Py_ssize_t rows, int n_threads=1):
    """Number of scalars of workspace for ``rows`` rows of a network, trained
    on ``n_threads`` threads."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t size = _workspace_size(&sizes[0], n_layers, rows)
    if n_threads > 1:
        size = max(size, _threaded_workspace_size(&sizes[0], n_layers, rows))
    return size


def dense_forward(const floating[:, ::1] z_prev, const floating[:, ::1] W,
                  const floating[::1] b, floating[:, ::1] a):
    """a = z_prev . W + b (pre-activation of one layer)."""
    cdef Py_ssize_t r, m = z_prev.shape[0], n_out = W.shape[1]
    with nogil:
        for r in range(m):
            memcpy(&a[r, 0], &b[0], n_out * sizeof(floating))
        gemm_nn(<int>m, <int>n_out, <int>W.shape[0], &z_prev[0, 0], &W[0, 0],
                &a[0, 0])


def activate(const floating[:, ::1] a, floating[:, ::1] z, int kind):
    """z = f(a) for the activation code ``kind``."""
    with nogil:
        activate_rows(&a[0, 0], &z[0, 0], a.shape[0], a.shape[1], kind)


def activation_derivative(const floating[:, ::1] z, floating[:, ::1] out,
                          int kind):
    """out = f'(a), written through the outputs z = f(a)."""
    cdef Py_ssize_t i, size = z.shape[0] * z.shape[1]
    with nogil:
        for i in range(size):
            (&out[0, 0])[i] = 1
        multiply_derivative(&z[0, 0], &out[0, 0], size, kind)


def loss_output_delta(const floating[:, ::1] a_out, const floating[:, ::1] z_out,
                      const floating[:, ::1] T, floating[:, ::1] delta,
                      int loss, int kind):
    """Write delta_out = dJ/da_out and return the data term of J."""
    cdef double J
    with nogil:
        J = output_delta(&a_out[0, 0], &z_out[0, 0], &T[0, 0], &delta[0, 0],
                         a_out.shape[0], a_out.shape[1], loss, kind, NULL,
                         <double>a_out.shape[0])
    return J


def backprop_delta(const floating[:, ::1] delta_next,
                   const floating[:, ::1] W_next, const floating[:, ::1] z,
                   int kind, floating[:, ::1] delta):
    """delta = (delta_next . W_next^T) * f'(a), f' taken from z = f(a)."""
    cdef Py_ssize_t m = delta_next.shape[0], n = W_next.shape[0]
    with nogil:
        memset(&delta[0, 0], 0, m * n * sizeof(floating))
        gemm_nt(<int>m, <int>n, <int>W_next.shape[1], &delta_next[0, 0],
                &W_next[0, 0], &delta[0, 0])
        multiply_derivative(&z[0, 0], &delta[0, 0], m * n, kind)


def layer_gradients(const floating[:, ::1] z_prev, const floating[:, ::1] delta,
                    const floating[:, ::1] W, double l2_over_m,
                    floating[:, ::1] dW, floating[::1] db):
    """dW = z_prev^T . delta + (l2/m) W and db = column sums of delta."""
    cdef Py_ssize_t i, r, j, n_in = W.shape[0], n_out = W.shape[1]
    cdef Py_ssize_t m = delta.shape[0]
    with nogil:
        for i in range(n_in * n_out):
            (&dW[0, 0])[i] = <floating>(l2_over_m * (&W[0, 0])[i])
        gemm_tn(<int>n_in, <int>n_out, <int>m, 1, &z_prev[0, 0], &delta[0, 0],
                &dW[0, 0])
        for j in range(n_out):
            db[j] = 0
        for r in range(m):
            for j in range(n_out):
                db[j] += delta[r, j]


def sgd_update(floating[::1] params, const floating[::1] grad,
               floating[::1] velocity, double lr, double momentum,
               bint nesterov):
    """One SGD step on a flat parameter vector (velocity updated in place)."""
    with nogil:
        sgd_step(&params[0], &grad[0], &velocity[0], params.shape[0], lr,
                 momentum, nesterov)


def network_predict(const floating[:, ::1] X, const floating[::1] params,
                    const int[::1] sizes, const int[::1] acts,
                    floating[::1] work, floating[:, ::1] out):
    """out = network output for X; work holds X.shape[0] rows of workspace."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t l, m = X.shape[0], z_off = 0
    for l in range(1, n_layers):
        z_off += m * sizes[l]
    with nogil:
        forward_pass(&X[0, 0], m, &params[0], &sizes[0], &acts[0], n_layers,
                     &work[0])
        memcpy(&out[0, 0], &work[z_off], m * sizes[n_layers] * sizeof(floating))


def network_loss(const floating[:, ::1] X, const floating[:, ::1] T,
                 const floating[::1] params, const int[::1] sizes,
                 const int[::1] acts, int loss, double l2,
                 floating[::1] work, floating[::1] grad):
    """Return J for (X, T) and write dJ/dparams into grad."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef double J, penalty
    with nogil:
        forward_pass(&X[0, 0], X.shape[0], &params[0], &sizes[0], &acts[0],
                     n_layers, &work[0])
        J = backward_pass(&X[0, 0], &T[0, 0], X.shape[0], &params[0],
                          &grad[0], &sizes[0], &acts[0], n_layers, loss, l2,
                          &work[0], NULL, <double>X.shape[0], &penalty)
    return J + penalty


def weighted_loss_gradient(const floating[:, ::1] X, const floating[:, ::1] T,
                           const floating[::1] sample_weight,
                           const floating[::1] params, const int[::1] sizes,
                           const int[::1] acts, int loss, double l2,
                           floating[::1] work, floating[::1] grad):
    """Return (data term, L2 term) of J with row weights; write dJ/dparams.

    An empty ``sample_weight`` means all rows weigh 1.
    """
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef double J, penalty, sw_sum = 0
    cdef Py_ssize_t r
    cdef const floating* sw = NULL
    if sample_weight.shape[0] > 0:
        sw = &sample_weight[0]
        for r in range(sample_weight.shape[0]):
            sw_sum += sample_weight[r]
    else:
        sw_sum = X.shape[0]
    with nogil:
        forward_pass(&X[0, 0], X.shape[0], &params[0], &sizes[0], &acts[0],
                     n_layers, &work[0])
        J = backward_pass(&X[0, 0], &T[0, 0], X.shape[0], &params[0],
                          &grad[0], &sizes[0], &acts[0], n_layers, loss, l2,
                          &work[0], sw, sw_sum, &penalty)
    return J, penalty


def train_rows(const floating[:, ::1] X, const floating[:, ::1] T,
               const floating[::1] sample_weight, const Py_ssize_t[::1] order,
               Py_ssize_t start, Py_ssize_t stop, Py_ssize_t batch_size,
               floating[::1] params, floating[::1] grad, floating[::1] state1,
               floating[::1] state2, const int[::1] sizes, const int[::1] acts,
               int loss, double l2, int optimizer, double lr, double momentum,
               bint nesterov, double beta2, double epsilon,
               Py_ssize_t step_count, floating[::1] work, int n_threads=1):
    """Train on positions [start, stop) of ``order`` without the GIL.

    With start=0, stop=n it trains a whole epoch in one call. Takes sample
    weights (empty: none), and SGD (optimizer 0; state1 = velocity) or Adam
    (optimizer 1; state1, state2 = moments, momentum = beta1). Minibatches
    use ``n_threads`` threads of their own (at most 64); ``work`` then needs
    ``workspace_size(sizes, batch_size, n_threads)`` elements.
    Returns ``(status, loss_sum, penalty_sum, rows_done, step_count)``.
    """
    cdef int status, n_layers = <int>sizes.shape[0] - 1
    cdef double loss_sum = 0, penalty_sum = 0
    cdef Py_ssize_t rows_done = 0, steps = step_count
    cdef const Py_ssize_t* order_ptr = &order[0] if order.shape[0] > 0 else NULL
    cdef const floating* sw = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    cdef floating* second = &state2[0] if state2.shape[0] > 0 else NULL
    n_threads = max(1, min(n_threads, FBP_MAX_THREADS))
    if n_threads > 1 and work.shape[0] < workspace_size(sizes, batch_size, n_threads):
        raise ValueError(f"work has {work.shape[0]} elements; {n_threads} threads need "
                         f"workspace_size(sizes, batch_size, n_threads)")
    with nogil:
        status = train_rows_kernel(
            &X[0, 0], &T[0, 0], sw, order_ptr, start, stop, batch_size,
            &params[0], &grad[0], &state1[0], second, params.shape[0],
            &sizes[0], &acts[0], n_layers, loss, l2, optimizer, lr, momentum,
            nesterov, beta2, epsilon, &steps, &work[0], &loss_sum,
            &penalty_sum, &rows_done, n_threads)
    return status, loss_sum, penalty_sum, rows_done, steps
