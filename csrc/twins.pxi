# Test twins and tuning knobs; nothing here is on a fit's or predict's path.
# The twins are def functions on typed memoryviews that call one inner kernel
# each, so the tests can check it alone; they trust the caller for shapes and
# codes. The knobs move the thresholds (BLAS, tiles, the column split) so the
# tests run every product path on small shapes.

def set_blas_min_flops(Py_ssize_t flops):
    """Set the multiply-add count from which gemm goes to BLAS; return the old.

    Tests use it to run both the loop and the BLAS paths on small shapes.
    """
    global BLAS_MIN_FLOPS
    old = BLAS_MIN_FLOPS
    BLAS_MIN_FLOPS = flops
    return old


def set_column_split(Py_ssize_t min_bytes, Py_ssize_t block, Py_ssize_t max_rows=-1):
    """Set when fastbp's training threads split a layer's columns instead of
    its rows: W over ``min_bytes`` bytes, or shares of ``max_rows`` rows of a
    batch or fewer (-1: unchanged), in shares of ``block`` columns. Returns
    the old triple.

    Tests use it to run the column split on small networks, or the row split
    on small batches.
    """
    global COLUMN_SPLIT_MIN_BYTES, COLUMN_BLOCK, COLUMN_SPLIT_MAX_ROWS
    if block < 1:
        raise ValueError(f"block must be at least 1, got {block}")
    old = (COLUMN_SPLIT_MIN_BYTES, COLUMN_BLOCK, COLUMN_SPLIT_MAX_ROWS)
    COLUMN_SPLIT_MIN_BYTES = min_bytes
    COLUMN_BLOCK = block
    if max_rows >= 0:
        COLUMN_SPLIT_MAX_ROWS = max_rows
    return old


def column_split_plan(const int[::1] sizes, Py_ssize_t batch_size, int n_threads,
                      int itemsize, bint dense=True):
    """(forward, backward): for each layer, whether fastbp's training threads
    split its forward product, and the product sending delta back through
    its W, by columns (else by rows) at ``batch_size`` on ``n_threads``."""
    cdef int l, n_layers = <int>sizes.shape[0] - 1
    cdef bint forward[64]
    cdef bint backward[64]
    if not 1 <= n_layers <= 63 or n_threads < 1 or batch_size < 1:
        raise ValueError("sizes must have 2 to 64 entries, n_threads and batch_size be >= 1")
    _column_split_plan(&sizes[0], n_layers, batch_size, n_threads, itemsize, dense, forward,
                       backward)
    return ([bool(forward[l]) for l in range(n_layers)],
            [bool(backward[l]) for l in range(n_layers)])


def set_tiled_gemm(bint on):
    """Switch the register-tiled products (csrc/fastbp_gemm.h) on or off;
    return whether they are in use, which needs a CPU with AVX-512.

    Off, BLAS computes every product. Tests use it to run both paths.
    """
    return bool(fbp_gemm_enable(on))


def tiled_gemm_in_use():
    """Whether the register-tiled products run (a CPU with AVX-512, not
    switched off by set_tiled_gemm or FASTBP_TILED_GEMM=0)."""
    return bool(fbp_gemm_available())


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


def train_rows(const floating[:, ::1] X, const floating[:, ::1] T,
               const floating[::1] sample_weight, const Py_ssize_t[::1] order,
               Py_ssize_t start, Py_ssize_t stop, Py_ssize_t batch_size,
               floating[::1] params, floating[::1] grad, floating[::1] state1,
               floating[::1] state2, const int[::1] sizes, const int[::1] acts,
               int loss, double l2, int optimizer, double lr, double momentum,
               bint nesterov, double beta2, double epsilon,
               Py_ssize_t step_count, floating[::1] work, int n_threads=1):
    """Train on positions [start, stop) of ``order`` without the GIL: a
    :class:`Trainer` built for one call, on the caller's buffers.

    With start=0, stop=n it trains a whole epoch in one call. Takes sample
    weights (empty: none), and SGD (optimizer 0; state1 = velocity) or Adam
    (optimizer 1; state1, state2 = moments, momentum = beta1). Minibatches
    use ``n_threads`` threads of their own (at most FBP_MAX_THREADS);
    ``work`` then needs ``workspace_size(sizes, batch_size, n_threads)``
    elements.
    Returns ``(status, loss_sum, penalty_sum, rows_done, step_count)``.
    """
    cdef Trainer trainer = Trainer.__new__(Trainer)
    cdef Py_ssize_t n_params, needed
    trainer._setup(sizes, acts, &sizes[0], sizes.shape[0], &acts[0], acts.shape[0], loss, l2,
                   batch_size, n_threads)
    n_params = trainer.net.n_params
    needed = trainer._workspace_needed()
    # The caller's buffers go straight into the state, without the setters:
    # a Trainer per call must stay cheap next to a small epoch. So only the
    # sizes are checked here (the fused type fixed the dtype), and run checks
    # the range. This call's memoryviews keep the buffers alive: the Trainer
    # does not outlive it.
    if work.shape[0] < needed:
        raise ValueError(f"work has {work.shape[0]} elements; {trainer._n_threads} threads "
                         f"need workspace_size(sizes, batch_size, n_threads) = {needed}")
    if params.shape[0] != n_params or grad.shape[0] != n_params:
        raise ValueError(f"params and grad need {n_params} elements")
    if X.shape[1] != sizes[0] or T.shape[1] != sizes[sizes.shape[0] - 1] \
            or T.shape[0] != X.shape[0] or 0 < sample_weight.shape[0] != X.shape[0]:
        raise ValueError("X, T or sample_weight do not fit the network and each other")
    if optimizer != SGD and optimizer != ADAM:
        raise ValueError(f"unknown optimizer code {optimizer}")
    if ((optimizer == ADAM or momentum != 0) and state1.shape[0] != n_params
            or optimizer == ADAM and state2.shape[0] != n_params):
        raise ValueError(f"the optimizer's state needs {n_params} elements")
    trainer.dtype_code = _FLOAT64 if floating is double else _FLOAT32
    trainer.net.params = &params[0]
    trainer.net.grad = &grad[0]
    trainer.net.work = &work[0]
    trainer.data.X = &X[0, 0]
    trainer.data.X_values = NULL
    trainer.data.T = &T[0, 0]
    trainer.data.sample_weight = &sample_weight[0] if sample_weight.shape[0] > 0 else NULL
    trainer.data.order = &order[0] if order.shape[0] > 0 else NULL
    trainer.data.n_positions = order.shape[0] if order.shape[0] > 0 else X.shape[0]
    trainer.has_data = True
    trainer.opt.kind = optimizer
    trainer.opt.lr = lr
    if optimizer == SGD:
        trainer.opt.momentum = momentum
        trainer.opt.nesterov = nesterov
        trainer.opt.velocity = &state1[0] if momentum != 0 else NULL
    else:
        trainer.opt.beta1 = momentum
        trainer.opt.beta2 = beta2
        trainer.opt.epsilon = epsilon
        trainer.opt.first_moment = &state1[0]
        trainer.opt.second_moment = &state2[0]
        trainer.opt.step_count = step_count
    trainer.has_optimizer = True
    status, loss_sum, penalty_sum, rows_done = trainer._run(start, stop)
    return (status, loss_sum, penalty_sum, rows_done,
            trainer.step_count if optimizer != SGD else step_count)
