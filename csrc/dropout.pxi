# Dropout, a layer op of training only (fbp_train_op, csrc/fastbp_state.h):
# inverted dropout on a hidden layer's z, each unit kept with probability q
# and scaled by 1/q, so E[z] is unchanged; its draws are counter-based
# (csrc/fastbp_dropout.h), the same on any thread and any split of a batch.
# The layer walk (passes.pxi, threads.pxi) calls dropout_forward after the
# layer's activation, and takes delta back through the factors it left
# (mask times f'(z)) instead of through f'.

cdef extern from "fastbp_dropout.h" nogil:
    uint64_t fbp_dropout_row_key(uint64_t seed, int64_t epoch, int64_t position, int layer)
    uint32_t fbp_dropout_draw(uint64_t row_key, uint32_t unit)
    void fbp_dropout_row_d(double* z, double* factor, Py_ssize_t n, uint32_t first,
                           uint64_t row_key, uint32_t threshold, double scale)
    void fbp_dropout_row_f(float* z, float* factor, Py_ssize_t n, uint32_t first,
                           uint64_t row_key, uint32_t threshold, float scale)


cdef void dropout_forward(const fbp_network* net, Py_ssize_t l, Py_ssize_t r0,
                          Py_ssize_t rows, Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t m,
                          floating* dtype_tag) noexcept nogil:
    """Rows [r0, r0 + rows) and columns [c0, c1) of layer l's z, in an m-row
    workspace, right after its activation: the factors get mask * f'(z)
    (f' through the z before the mask), then z *= mask. Row r's draws are
    those of position net.drop_first + r in the epoch."""
    cdef const fbp_layer* layer = &net.layers[l]
    cdef Py_ssize_t r, i, n = layer.n_out, count = c1 - c0
    cdef floating* z = <floating*>net.work + m * layer.z + r0 * n + c0
    cdef floating* factor = <floating*>net.drop_factors + m * layer.z + r0 * n + c0
    # the layer's a (z's own block unless it keeps a): f' may read either
    cdef const floating* a = <const floating*>net.work + m * layer.a + r0 * n + c0
    cdef uint64_t key
    if count <= 0 or rows <= 0:
        return
    if count == n:  # whole rows: one block
        for i in range(rows * n):
            factor[i] = 1
        multiply_derivative(a, z, factor, rows * n, layer.activation)
    else:
        for r in range(rows):
            for i in range(count):
                factor[r * n + i] = 1
            multiply_derivative(a + r * n, z + r * n, factor + r * n, count, layer.activation)
    for r in range(rows):
        key = fbp_dropout_row_key(net.drop_seed, net.drop_epoch, net.drop_first + r0 + r, <int>l)
        if floating is double:
            fbp_dropout_row_d(z + r * n, factor + r * n, count, <uint32_t>c0, key,
                              layer.drop_threshold, layer.drop_scale)
        else:
            fbp_dropout_row_f(z + r * n, factor + r * n, count, <uint32_t>c0, key,
                              layer.drop_threshold, <float>layer.drop_scale)


cdef inline void times_factors(floating* delta, const floating* factor,
                               Py_ssize_t size) noexcept nogil:
    """delta *= factor, element by element: a dropout layer's f' step."""
    cdef Py_ssize_t i
    for i in range(size):
        delta[i] *= factor[i]


cdef inline void multiply_layer_derivative(const fbp_network* net, Py_ssize_t l, Py_ssize_t m,
                                           Py_ssize_t offset, const floating* z,
                                           floating* delta, Py_ssize_t size) noexcept nogil:
    """delta *= f'(a) for ``size`` units of layer l's z in an m-row
    workspace, from element ``offset`` of its block on (z points there); a
    dropout layer takes its factors (mask * f'(z)) instead."""
    if net.layers[l].train_op == FBP_OP_DROPOUT:
        times_factors(delta, <const floating*>net.drop_factors + m * net.layers[l].z + offset,
                      size)
    else:
        multiply_derivative(<const floating*>net.work + m * net.layers[l].a + offset, z, delta,
                            size, net.layers[l].activation)


cdef int set_dropout_layer(fbp_layer* layer, double rate) noexcept nogil:
    """Put dropout of ``rate`` (in [0, 1); 0: none) on a layer's spec: a
    unit drops when its 32-bit draw is below round(rate 2^32), so it is kept
    with probability q = 1 - threshold 2^-32, and scaled by exactly 1/q.
    Returns 1 when the layer drops units."""
    cdef double threshold = rate * 4294967296.0 + 0.5
    if threshold >= 4294967295.0:
        threshold = 4294967295.0
    layer.drop_threshold = <uint32_t>threshold
    if layer.drop_threshold == 0:
        layer.train_op = FBP_OP_NONE
        layer.drop_scale = 1
        return 0
    layer.train_op = FBP_OP_DROPOUT
    layer.drop_scale = 4294967296.0 / (4294967296.0 - <double>layer.drop_threshold)
    return 1


cdef list check_dropout_rates(rates, int n_hidden):
    """``rates`` as a list of floats, one per hidden layer, each in [0, 1);
    else ValueError."""
    rates = [float(rate) for rate in rates]
    if len(rates) != n_hidden:
        raise ValueError(f"rates needs one rate per hidden layer ({n_hidden}), "
                         f"got {len(rates)}")
    for rate in rates:
        if not 0 <= rate < 1:
            raise ValueError(f"dropout rates must be in [0, 1), got {rates}")
    return rates


cdef bint set_dropout_layers(fbp_layer* layers, list rates) except -1:
    """set_dropout_layer with each hidden layer's rate (check_dropout_rates);
    whether any layer drops units."""
    cdef Py_ssize_t l
    cdef bint any_drops = False
    for l in range(len(rates)):
        if set_dropout_layer(&layers[l], rates[l]):
            any_drops = True
    return any_drops
