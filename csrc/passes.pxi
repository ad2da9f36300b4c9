# Whole-network forward and backward passes over the flat parameter vector,
# and the workspace layout they share.

cdef inline Py_ssize_t _max_width(const int* sizes, int n_layers) noexcept nogil:
    cdef Py_ssize_t l, w = 0
    for l in range(n_layers + 1):
        if sizes[l] > w:
            w = sizes[l]
    return w


cdef inline Py_ssize_t _z_width(const int* sizes, int n_layers) noexcept nogil:
    """Scalars of z_1..z_L a row where no layer keeps its a (predict's
    layout; the others take fbp_layers_z_width of their specs): an m-row
    workspace holds them in its first m times as many, then a_out."""
    cdef Py_ssize_t l, total = 0
    for l in range(1, n_layers + 1):
        total += sizes[l]
    return total


cdef inline floating* _layer_z(const fbp_network* net, floating* rows, Py_ssize_t l,
                               Py_ssize_t m) noexcept nogil:
    """Layer l's z (z_{l+1}) in ``rows``, an m-row workspace (or a buffer
    of its layout, such as the threads' deltas)."""
    return rows + m * net.layers[l].z


cdef inline floating* _layer_a(const fbp_network* net, floating* rows, Py_ssize_t l,
                               Py_ssize_t m) noexcept nogil:
    """Layer l's a in ``rows``, an m-row workspace: z's own block, unless
    the layer keeps its a (fbp_layers_init)."""
    return rows + m * net.layers[l].a


cdef inline floating* _a_out(const fbp_network* net, floating* work, Py_ssize_t m) noexcept nogil:
    """a_out, the output layer's pre-activation, after z_1..z_L of m rows."""
    return work + m * net.layers[net.n_layers - 1].a


cdef Py_ssize_t _workspace_size(const fbp_layer* layers, const int* sizes, int n_layers,
                                Py_ssize_t rows) noexcept nogil:
    # z_1..z_L (and the a's kept), a_out, two delta buffers, gathered X, T and
    # weight rows
    cdef Py_ssize_t total = rows * fbp_layers_z_width(layers, n_layers)
    total += rows * sizes[n_layers]
    total += 2 * rows * _max_width(sizes, n_layers)
    total += rows * sizes[0] + rows * sizes[n_layers] + rows
    # one scratch row after the deltas for the per-sample path (lr * delta)
    total += _max_width(sizes, n_layers)
    return total


cdef inline fbp_network _network(const int* sizes, const fbp_layer* layers, int n_layers,
                                 int loss, double l2, const void* params, void* grad,
                                 void* work) noexcept nogil:
    """A network view of separate buffers, for the entry points and twins
    that take them one by one (predict, objective, twins); ``layers`` from
    fbp_layers_init."""
    cdef fbp_network net
    net.sizes = sizes
    net.layers = layers
    net.n_layers = n_layers
    net.loss = loss
    net.loss_param = 0  # the objective's entry points set theirs
    net.l2 = l2
    net.params = <void*>params  # the passes that only read it take it const
    net.grad = grad
    net.work = work
    net.n_params = 0  # only the training loop reads it
    net.row_marks = NULL
    net.drop_factors = NULL  # the layers' specs carry no op: no dropout
    net.drop_seed = 0
    net.drop_epoch = 0
    net.drop_first = 0
    net.rules = NULL
    net.bf16 = NULL  # float32 products: predict and the objective
    net.n_threads = 1
    return net


cdef inline void forward_pass(const fbp_network* net, const fbp_input* x, Py_ssize_t m,
                              floating* dtype_tag) noexcept nogil:
    """Fill z_1..z_L and a_out in net's workspace for m rows of x."""
    forward_rows(net, x, 0, m, m, dtype_tag)


cdef inline void _layer_product(const fbp_input* x_rows, Py_ssize_t l, int rows, int n_out,
                                int n_in, const floating* z_prev, const floating* W,
                                floating* a) noexcept nogil:
    # a += z_prev . W; layer 0's input may be sparse
    if l == 0:
        input_gemm_nn(x_rows, rows, n_out, n_in, W, a)
    else:
        gemm_nn(rows, n_out, n_in, z_prev, W, a)


cdef void forward_rows(const fbp_network* net, const fbp_input* x_rows, Py_ssize_t r0,
                       Py_ssize_t rows, Py_ssize_t m, floating* dtype_tag) noexcept nogil:
    """forward_pass for rows [r0, r0 + rows) of an m-row batch (x_rows holds
    those rows); writes only their part of the workspace. ``dtype_tag``
    (NULL) only picks the scalar type."""
    forward_layers_from(net, x_rows, 0, r0, rows, m, dtype_tag)


cdef void forward_layers_from(const fbp_network* net, const fbp_input* x_rows, int first,
                              Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t m,
                              floating* dtype_tag) noexcept nogil:
    """forward_layer_rows for layers first, first + 1, ..., L - 1 (the layers
    before ``first`` already done)."""
    cdef int l
    for l in range(first, net.n_layers):
        forward_layer_rows(net, x_rows, l, r0, rows, m, dtype_tag)


cdef void forward_layer_rows(const fbp_network* net, const fbp_input* x_rows, Py_ssize_t l,
                             Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t m,
                             floating* dtype_tag) noexcept nogil:
    """Layer l of forward_rows: z = f(z_in . W + b) for those rows, times
    its dropout mask on a dropout layer; the output layer keeps its
    pre-activation in a_out."""
    cdef const fbp_layer* layer = &net.layers[l]
    cdef floating* a = layer_preactivation(net, x_rows, l, r0, rows, m, dtype_tag)
    activate_rows(a, _layer_z(net, <floating*>net.work, l, m) + r0 * layer.n_out, rows,
                  layer.n_out, layer.activation)
    if layer.train_op == FBP_OP_DROPOUT:
        dropout_forward(net, l, r0, rows, 0, layer.n_out, m, dtype_tag)


cdef floating* layer_preactivation(const fbp_network* net, const fbp_input* x_rows,
                                   Py_ssize_t l, Py_ssize_t r0, Py_ssize_t rows, Py_ssize_t m,
                                   floating* dtype_tag) noexcept nogil:
    """The first half of forward_layer_rows: a = z_in . W + b for those
    rows, written where that layer keeps it (its z's place, or its own for
    the output layer, a_out, and a layer that keeps it). Returns a's first
    row."""
    cdef const fbp_layer* layer = &net.layers[l]
    cdef Py_ssize_t r, n_in = layer.n_in, n_out = layer.n_out
    cdef floating* work = <floating*>net.work
    cdef const floating* W = <const floating*>net.params + layer.W
    cdef const floating* b = <const floating*>net.params + layer.b
    cdef const floating* z_prev = _layer_z(net, work, l - 1, m) + r0 * n_in if l > 0 else NULL
    # a = z_prev . W + b: start from the bias, then accumulate
    cdef floating* a = _layer_a(net, work, l, m) + r0 * n_out
    for r in range(rows):
        memcpy(a + r * n_out, b, n_out * sizeof(floating))
    _layer_product(x_rows, l, <int>rows, <int>n_out, <int>n_in, z_prev, W, a)
    return a


cdef double backward_pass(const fbp_network* net, const fbp_input* x, const floating* T,
                          Py_ssize_t m, const floating* sw, double sw_sum,
                          double* penalty_out, bint sparse_first_layer=False) noexcept nogil:
    """After forward_pass: write dJ/dparams into grad and return the data
    term of J; the L2 term l2/(2 sw_sum) sum ||W||^2 goes to penalty_out.
    Rows are weighted by sw / sw_sum (sw NULL and sw_sum m: unweighted).

    With ``sparse_first_layer`` (a sparse x and net.row_marks), dW_0 holds
    only x^T delta, on the rows marked in net.row_marks, and W_0's L2 term is
    neither in dW_0 nor in penalty_out: optimizer_marked_rows_step adds both."""
    cdef int n_layers = net.n_layers
    cdef double l2 = net.l2
    cdef const floating* params = <const floating*>net.params
    cdef floating* grad = <floating*>net.grad
    cdef floating* work = <floating*>net.work
    cdef const fbp_layer* layer
    cdef Py_ssize_t l, r, j, n_in, n_out, count
    cdef floating* a_out = _a_out(net, work, m)
    cdef floating* delta = a_out + m * net.sizes[n_layers]
    cdef floating* delta_prev = delta + m * _max_width(net.sizes, n_layers)
    cdef floating* swap
    cdef const floating* z_prev
    cdef const floating* W
    cdef floating* dW
    cdef floating* db
    cdef double J, penalty = 0, l2_over_m = l2 / sw_sum

    J = output_delta(a_out, _layer_z(net, work, n_layers - 1, m), T, delta, m,
                     net.sizes[n_layers], net.loss, net.loss_param,
                     net.layers[n_layers - 1].activation, sw, sw_sum)

    # walk the layers backwards
    for l in range(n_layers - 1, -1, -1):
        layer = &net.layers[l]
        n_in = layer.n_in
        n_out = layer.n_out
        W = params + layer.W
        dW = grad + layer.W
        db = grad + layer.b
        z_prev = _layer_z(net, work, l - 1, m) if l > 0 else NULL  # layer 0's input is x

        # dJ/dW = z_prev^T . delta + (l2/m) W ; biases are not penalised
        count = n_in * n_out
        if l == 0 and sparse_first_layer:
            input_gradient_marked(x, 0, n_in, <int>n_out, <int>m, delta, dW, net.row_marks)
        else:
            if l2 != 0:
                penalty += l2_gradient(W, dW, count, l2_over_m)
            else:
                memset(dW, 0, count * sizeof(floating))
            if l == 0:
                input_gemm_tn(x, 0, n_in, <int>n_out, <int>n_in, <int>m, 1, delta, dW)
            else:
                gemm_tn(<int>n_in, <int>n_out, <int>m, 1, z_prev, delta, dW)
        # dJ/db = column sums of delta
        memset(db, 0, n_out * sizeof(floating))
        for r in range(m):
            for j in range(n_out):
                db[j] += delta[r * n_out + j]

        if l > 0:
            # delta_prev = (delta . W^T) * f'(a_prev), times its mask after dropout
            memset(delta_prev, 0, m * n_in * sizeof(floating))
            gemm_nt(<int>m, <int>n_in, <int>n_out, delta, W, delta_prev)
            multiply_layer_derivative(net, l - 1, m, 0, z_prev, delta_prev, m * n_in)
            swap = delta
            delta = delta_prev
            delta_prev = swap
    penalty_out[0] = 0.5 * l2_over_m * penalty
    return J


cdef double backward_sgd(const fbp_network* net, const fbp_input* x, const floating* T,
                         Py_ssize_t m, const floating* sw, double sw_sum, double lr,
                         double* penalty_out) noexcept nogil:
    """After forward_pass: apply one plain SGD step layer by layer; return the
    data term of J and write the L2 term to penalty_out.

    The update goes straight into W through gemm (alpha = -lr, beta = 1), so
    no gradient buffer is written and read back. Each layer's delta for the
    layer below is taken before its W changes. Returns NaN without touching
    the weights when the data term of J is not finite.
    """
    cdef int n_layers = net.n_layers
    cdef double l2 = net.l2
    cdef floating* params = <floating*>net.params
    cdef floating* work = <floating*>net.work
    cdef const fbp_layer* layer
    cdef Py_ssize_t l, r, j, n_in, n_out, count
    cdef floating* a_out = _a_out(net, work, m)
    cdef floating* delta = a_out + m * net.sizes[n_layers]
    cdef floating* delta_prev = delta + m * _max_width(net.sizes, n_layers)
    cdef floating* swap
    cdef const floating* z_prev
    cdef floating* W
    cdef floating* b
    cdef floating shrink, step
    cdef double J, penalty = 0, l2_over_m = l2 / sw_sum

    J = output_delta(a_out, _layer_z(net, work, n_layers - 1, m), T, delta, m,
                     net.sizes[n_layers], net.loss, net.loss_param,
                     net.layers[n_layers - 1].activation, sw, sw_sum)
    if not isfinite(J):
        return J

    step = <floating>(-lr)
    shrink = <floating>(1 - lr * l2_over_m)
    for l in range(n_layers - 1, -1, -1):
        layer = &net.layers[l]
        n_in = layer.n_in
        n_out = layer.n_out
        W = params + layer.W
        b = params + layer.b
        z_prev = _layer_z(net, work, l - 1, m) if l > 0 else NULL  # layer 0's input is x
        if l > 0:
            # delta_prev = (delta . W^T) * f'(a_prev) (times its mask), with the old W
            memset(delta_prev, 0, m * n_in * sizeof(floating))
            gemm_nt(<int>m, <int>n_in, <int>n_out, delta, W, delta_prev)
            multiply_layer_derivative(net, l - 1, m, 0, z_prev, delta_prev, m * n_in)
        # W <- W - lr (z_prev^T delta + (l2/m) W), biases not penalised
        count = n_in * n_out
        if l2 != 0:
            penalty += l2_shrink(W, count, shrink)
        if l == 0:
            input_gemm_tn(x, 0, n_in, <int>n_out, <int>n_in, <int>m, step, delta, W)
        else:
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
