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


def set_sample_team(Py_ssize_t min_weights=-1):
    """Least weights (the sum of n_in × n_out over the layers) from which a
    Trainer with threads runs its per-sample epochs (batch_size 1, plain SGD
    or SGD with momentum, no dropout) on them, each row's layers split over
    the threads with the same bits as one (csrc/fastbp_sample_team_impl.h);
    -1 keeps it. Returns the previous value (fit reads it so: the threads it
    gives a per-sample fit, fastbp._runtime.sample_team_threads).

    Benchmarks tune it, and tests set 1 to run the team on small networks.
    """
    global fbp_sample_team_min_weights
    old = fbp_sample_team_min_weights
    if min_weights == 0 or min_weights < -1:
        raise ValueError(f"min_weights is >= 1, or -1 to keep it, got {min_weights}")
    if min_weights > 0:
        fbp_sample_team_min_weights = min_weights
    return old


def set_sample_tiny(on=None):
    """Whether per-sample epochs of a net of a few units (one hidden layer
    of at most 4 sigmoid units, at most 4 inputs, one sigmoid output, mse,
    no L2 term or dropout), of plain SGD or of SGD with momentum (not
    Nesterov's), run their unrolled code (csrc/fastbp_sample_impl.h's
    fbp_sample_tiny, fbp_sample_momentum_tiny) rather than the general
    loops; None keeps it. Returns the previous setting.

    Tests turn it off to compare the two, which give the same bits.
    """
    global fbp_sample_tiny_on
    old = bool(fbp_sample_tiny_on)
    if on is not None:
        fbp_sample_tiny_on = 1 if on else 0
    return old


def sample_tiny_runs():
    """Calls of the unrolled per-sample epochs of a net of a few units (plain
    SGD's and momentum's) so far in this process (set_sample_tiny), for the
    tests to see them run."""
    return fbp_sample_tiny_runs


def sample_team_runs():
    """Per-sample epochs run on a team of threads so far in this process
    (set_sample_team), for the tests to see the team run."""
    return fbp_sample_team_runs


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


def bf16_paths():
    """The bfloat16 product paths (csrc/fastbp_bf16.h) that run on this
    machine, slowest first: "emulated" always, "avx512bf16" and "amx" where
    the CPU has the instructions (and, for AMX, the OS grants the tiles)."""
    return [name for code, name in enumerate(BF16_PATHS) if fbp_bf16_path_runs(code)]


def bf16_path():
    """The path the bfloat16 products take now."""
    return BF16_PATHS[fbp_bf16_path()]


def set_bf16_path(str name):
    """Force the bfloat16 products onto one path ("emulated", "avx512bf16",
    "amx"), or let them take the fastest that runs ("auto"); return the path
    in use before. Tests use it to run every path on one machine.

    Raises ValueError for another name, or a path this machine cannot run.
    """
    old = BF16_PATHS[fbp_bf16_path()]
    if name == "auto":
        fbp_bf16_force(FBP_BF16_AUTO)
    elif name not in BF16_PATHS:
        raise ValueError(f"bfloat16 path must be 'auto' or one of {BF16_PATHS}, got {name!r}")
    elif fbp_bf16_force(BF16_PATHS.index(name)) < 0:
        raise ValueError(f"the bfloat16 path {name!r} does not run on this machine "
                         f"(it runs {bf16_paths()})")
    return old


def bf16_round(const float[::1] x):
    """x rounded to bfloat16 (nearest, ties to even; NaN stays NaN): the bit
    patterns, as uint16."""
    cdef Py_ssize_t n = x.shape[0]
    cdef uint16_t[::1] out = np.empty(n, np.uint16)
    if n:
        with nogil:
            fbp_bf16_round_n(&x[0], &out[0], n)
    return np.asarray(out)


def bf16_widen(const uint16_t[::1] h):
    """bfloat16 bit patterns (uint16) as the float32 values they stand for."""
    cdef Py_ssize_t n = h.shape[0]
    cdef float[::1] out = np.empty(n, np.float32)
    if n:
        with nogil:
            fbp_bf16_widen_n(&h[0], &out[0], n)
    return np.asarray(out)


def bf16_gemm(const float[:, ::1] A, const float[:, ::1] B, float[:, ::1] C,
              bint trans_a=False, bint trans_b=False, bint accumulate=False):
    """C = op(A) . op(B), or C += when ``accumulate``, with op(A) and op(B)
    rounded to bfloat16 and the sums in float32, on the path in use;
    op(X) is X, or X^T when trans_ is set."""
    cdef Py_ssize_t m = A.shape[1] if trans_a else A.shape[0]
    cdef Py_ssize_t k = A.shape[0] if trans_a else A.shape[1]
    cdef Py_ssize_t n = B.shape[0] if trans_b else B.shape[1]
    cdef Py_ssize_t kb = B.shape[1] if trans_b else B.shape[0]
    if kb != k or C.shape[0] != m or C.shape[1] != n:
        raise ValueError(f"shapes do not multiply: op(A) {m}x{k}, op(B) {kb}x{n}, "
                         f"C {C.shape[0]}x{C.shape[1]}")
    # one entry at least: k = 0 makes empty packs, and &Ap[0] must be valid
    cdef uint16_t[::1] Ap = np.empty(max(fbp_bf16_a_size(m, k), 1), np.uint16)
    cdef uint16_t[::1] Bp = np.empty(max(fbp_bf16_b_size(k, n), 1), np.uint16)
    cdef const float* a = &A[0, 0] if A.shape[0] * A.shape[1] else NULL
    cdef const float* b = &B[0, 0] if B.shape[0] * B.shape[1] else NULL
    if m == 0 or n == 0:
        return
    with nogil:
        bf16_gemm_strided(m, n, k, a, 1 if trans_a else k, m if trans_a else 1,
                          b, 1 if trans_b else n, k if trans_b else 1, &C[0, 0], n,
                          accumulate, &Ap[0], &Bp[0])


def bf16_pack_a(const float[:, ::1] A, bint trans=False):
    """The bfloat16 pack (csrc/fastbp_bf16.h) of op(A), the left operand of a
    product: A, or A^T (A stored k x m) when ``trans``."""
    cdef Py_ssize_t m = A.shape[1] if trans else A.shape[0]
    cdef Py_ssize_t k = A.shape[0] if trans else A.shape[1]
    cdef uint16_t[::1] Ap = np.empty(fbp_bf16_a_size(m, k), np.uint16)
    if m and k:
        with nogil:
            fbp_bf16_pack_a(m, k, &A[0, 0], 1 if trans else k, m if trans else 1, &Ap[0])
    elif Ap.shape[0]:
        Ap[:] = 0
    return np.asarray(Ap)


def bf16_pack_b(const float[:, ::1] B, bint trans=False):
    """The bfloat16 pack of op(B), the right operand of a product: B, or
    B^T (B stored n x k) when ``trans``."""
    cdef Py_ssize_t n = B.shape[0] if trans else B.shape[1]
    cdef Py_ssize_t k = B.shape[1] if trans else B.shape[0]
    cdef uint16_t[::1] Bp = np.empty(fbp_bf16_b_size(k, n), np.uint16)
    if n and k:
        with nogil:
            fbp_bf16_pack_b(k, n, &B[0, 0], 1 if trans else n, k if trans else 1, &Bp[0])
    elif Bp.shape[0]:
        Bp[:] = 0
    return np.asarray(Bp)


def bf16_gemm_packed(const uint16_t[::1] Ap, const uint16_t[::1] Bp, float[:, ::1] C,
                     Py_ssize_t k, bint accumulate=False, Py_ssize_t row0=0,
                     Py_ssize_t col0=0):
    """C = A.B, or C += A.B, from the packs of A (m x k) and B (k x n) that
    bf16_pack_a and bf16_pack_b made, on the path in use. With ``row0`` and
    ``col0`` (multiples of 32), C is the block of A.B from that row and
    column on, computed from the packs in place (as threads share them)."""
    cdef Py_ssize_t m = C.shape[0], n = C.shape[1]
    # entries of 32 rows of A's pack, of 32 columns of B's
    cdef size_t a_block = fbp_bf16_a_size(1, k), b_block = fbp_bf16_b_size(k, 1)
    if row0 % 32 or col0 % 32 or row0 < 0 or col0 < 0:
        raise ValueError(f"row0 and col0 must be multiples of 32, got {row0} and {col0}")
    if (<size_t>Ap.shape[0] < fbp_bf16_a_size(row0 + m, k)
            or <size_t>Bp.shape[0] < fbp_bf16_b_size(k, col0 + n)
            or (k and (<size_t>Ap.shape[0] % a_block or <size_t>Bp.shape[0] % b_block))):
        raise ValueError(f"the packs do not hold a {row0 + m}x{k} and a {k}x{col0 + n} operand")
    # k = 0: empty packs, which the product never reads
    cdef const uint16_t* a = &Ap[0] + row0 * (a_block // 32) if Ap.shape[0] else NULL
    cdef const uint16_t* b = &Bp[0] + col0 * (b_block // 32) if Bp.shape[0] else NULL
    if m and n:
        with nogil:
            fbp_bf16_gemm_packed(m, n, k, a, b, &C[0, 0], n, accumulate)


def workspace_size(const int[::1] sizes, Py_ssize_t rows, int n_threads=1, acts=None):
    """Number of scalars of workspace for ``rows`` rows of a network, trained
    on ``n_threads`` threads; ``acts``: its activation codes, or None for
    activations whose f' is written through z (no layer keeps its a)."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef int[::1] codes = _int_codes(np.zeros(n_layers, np.intc) if acts is None else acts,
                                     "acts")
    _objective_network(sizes, codes, 0, None, 0.0, NULL, NULL, NULL, layers)
    cdef Py_ssize_t size = _workspace_size(layers, &sizes[0], n_layers, rows)
    if n_threads > 1:
        size = max(size, _threaded_workspace_size(layers, &sizes[0], n_layers, rows))
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
                          int kind, const floating[:, ::1] a=None):
    """out = f'(a), written through the outputs z = f(a), or through the
    pre-activations ``a`` (z's shape) for a row that needs them."""
    cdef Py_ssize_t i, size = z.shape[0] * z.shape[1]
    cdef const floating* pre = _preactivations(a, z, kind)
    with nogil:
        for i in range(size):
            (&out[0, 0])[i] = 1
        multiply_derivative(pre, &z[0, 0], &out[0, 0], size, kind)


cdef const floating* _preactivations(const floating[:, ::1] a, const floating[:, ::1] z,
                                     int kind) except? NULL:
    # the a a twin hands multiply_derivative: z's block for a row written
    # through z, as the passes do
    if not (0 <= kind < FBP_N_ACTIVATIONS and fbp_activation_needs_a[kind]):
        return &z[0, 0]
    if a is None or a.shape[0] != z.shape[0] or a.shape[1] != z.shape[1]:
        raise ValueError(f"{fbp_activation_names[kind].decode()}'s f' needs a, z's shape")
    return &a[0, 0]


def loss_output_delta(const floating[:, ::1] a_out, const floating[:, ::1] z_out,
                      const floating[:, ::1] T, floating[:, ::1] delta,
                      int loss, int kind, loss_param=None):
    """Write delta_out = dJ/da_out and return the data term of J (loss_param:
    the loss's parameter, None for the row's default)."""
    cdef double J, param = loss_param_of(loss, loss_param)
    with nogil:
        J = output_delta(&a_out[0, 0], &z_out[0, 0], &T[0, 0], &delta[0, 0],
                         a_out.shape[0], a_out.shape[1], loss, param, kind, NULL,
                         <double>a_out.shape[0])
    return J


def backprop_delta(const floating[:, ::1] delta_next,
                   const floating[:, ::1] W_next, const floating[:, ::1] z,
                   int kind, floating[:, ::1] delta, const floating[:, ::1] a=None):
    """delta = (delta_next . W_next^T) * f'(a), f' taken from z = f(a), or
    from ``a`` for a row that needs it."""
    cdef Py_ssize_t m = delta_next.shape[0], n = W_next.shape[0]
    cdef const floating* pre = _preactivations(a, z, kind)
    with nogil:
        memset(&delta[0, 0], 0, m * n * sizeof(floating))
        gemm_nt(<int>m, <int>n, <int>W_next.shape[1], &delta_next[0, 0],
                &W_next[0, 0], &delta[0, 0])
        multiply_derivative(pre, &z[0, 0], &delta[0, 0], m * n, kind)


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


def optimizer_update(str name, floating[::1] params, const floating[::1] grad, double lr,
                     dict hyper=None, dict buffers=None, Py_ssize_t step_count=0):
    """One step of the optimiser registered as ``name`` (optimizer_kinds) on
    a flat parameter vector, its hyper-parameters and buffers (params-shaped,
    in the params' dtype, updated in place) by name as Trainer.set_optimizer
    takes them. Returns its step count after the step."""
    cdef OptimizerKind kind = optimizer_kind(name)
    cdef fbp_optimizer_state opt
    cdef StepRates rates
    if buffers is None:
        buffers = {}
    values = kind.settings(hyper, buffers)
    kind.place(&opt, lr, values, [buffers.get(key) for key in kind.buffer_names], step_count)
    with nogil:
        optimizer_advance(&opt, &rates)
        optimizer_step(&opt, &params[0], 0, params.shape[0], &grad[0], rates)
    return opt.step_count


def layer_specs(const int[::1] sizes, const int[::1] acts):
    """fbp_layers_init's specs, one dict a layer, and the parameter count."""
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef int l
    cdef fbp_network net = _objective_network(sizes, acts, 0, None, 0.0, NULL, NULL, NULL, layers)
    return ([{"n_in": layers[l].n_in, "n_out": layers[l].n_out, "W": layers[l].W,
              "b": layers[l].b, "z": layers[l].z, "a": layers[l].a,
              "activation": layers[l].activation,
              "train_op": layers[l].train_op} for l in range(net.n_layers)],
            layers[net.n_layers - 1].b + layers[net.n_layers - 1].n_out)


def dropout_masks(const int[::1] sizes, rates, uint64_t seed, int64_t epoch, int64_t first,
                  Py_ssize_t m):
    """The masks (0 or 1/P(kept)) a fit with dropout ``rates`` and ``seed``
    draws for rows at positions [first, first + m) of epoch ``epoch``: one
    float64 array (m, sizes[l + 1]) per hidden layer l (ones where it drops
    nothing)."""
    cdef int l, n_layers = <int>sizes.shape[0] - 1
    cdef Py_ssize_t r
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef double[:, ::1] mask, other
    cdef int[::1] acts = np.zeros(n_layers, np.intc)
    _objective_network(sizes, acts, 0, None, 0.0, NULL, NULL, NULL, layers)
    set_dropout_layers(layers, check_dropout_rates(rates, n_layers - 1))
    masks = []
    for l in range(n_layers - 1):
        mask = np.ones((m, sizes[l + 1]))
        other = np.ones((m, sizes[l + 1]))  # the factor the kernel scales alongside
        if layers[l].train_op == FBP_OP_DROPOUT:
            for r in range(m):
                fbp_dropout_row_d(&mask[r, 0], &other[r, 0], sizes[l + 1], 0,
                                  fbp_dropout_row_key(seed, epoch, first + r, l),
                                  layers[l].drop_threshold, layers[l].drop_scale)
        masks.append(np.asarray(mask))
    return masks


def dropout_loss_gradient(const floating[:, ::1] X, const floating[:, ::1] T,
                          const floating[::1] params, const int[::1] sizes,
                          const int[::1] acts, int loss, double l2, rates, uint64_t seed,
                          int64_t epoch, int64_t first, floating[::1] grad):
    """J (data term + L2 term) of one batch, the rows of (X, T), through the
    training passes with dropout (the masks of :func:`dropout_masks`), and
    dJ/dparams written into grad: what a fit's step on that batch uses."""
    cdef double J, penalty
    cdef Py_ssize_t m = X.shape[0]
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef fbp_input x = dense_input(&X[0, 0])
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef fbp_network net = _objective_network(sizes, acts, loss, None, l2, &params[0],
                                              &grad[0], NULL, layers)
    # sized by the specs: a layer that keeps its a widens the z blocks
    cdef floating[::1] work = np.empty(_workspace_size(layers, &sizes[0], n_layers, m),
                                       _np_dtype(&params[0]))
    cdef floating[::1] factors = np.empty(m * fbp_layers_z_width(layers, n_layers),
                                          _np_dtype(&params[0]))
    net.work = &work[0]
    set_dropout_layers(layers, check_dropout_rates(rates, n_layers - 1))
    net.drop_factors = &factors[0]
    net.drop_seed = seed
    net.drop_epoch = epoch
    net.drop_first = first
    if T.shape[0] != m or X.shape[1] != sizes[0] or grad.shape[0] != params.shape[0]:
        raise ValueError("X, T or grad do not match the network")
    with nogil:
        forward_pass(&net, &x, m, &work[0])
        J = backward_pass(&net, &x, &T[0, 0], m, <const floating*>NULL, <double>m, &penalty)
    return J + penalty
