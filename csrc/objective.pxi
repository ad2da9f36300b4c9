# J and dJ/dparams over a set of rows in one pass, for the Python layer's
# loss, gradients and lbfgs (fastbp._objective): entry points, not twins.

cdef Py_ssize_t _pass_size(const fbp_layer* layers, const int* sizes, int n_layers,
                           Py_ssize_t rows) noexcept nogil:
    # z_1..z_L (and the a's kept), a_out and two deltas
    return (rows * fbp_layers_z_width(layers, n_layers) + rows * sizes[n_layers]
            + 2 * rows * _max_width(sizes, n_layers))


def pass_workspace_size(const int[::1] sizes, Py_ssize_t rows, acts=None):
    """Number of scalars network_loss and weighted_loss_gradient need for
    ``rows`` rows: z_1..z_L (with the a's of the layers that keep theirs),
    a_out and two deltas, without the training loop's gathered batch (rows x
    sizes[0], which for a wide sparse X would dwarf the rest). ``acts``: the
    activation codes, or None for activations whose f' is written through z
    (no layer keeps its a)."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef int[::1] codes
    if acts is None:
        return (rows * _z_width(&sizes[0], n_layers) + rows * sizes[n_layers]
                + 2 * rows * _max_width(&sizes[0], n_layers))
    codes = _int_codes(acts, "acts")
    _objective_network(sizes, codes, 0, None, 0.0, NULL, NULL, NULL, layers)
    return _pass_size(layers, &sizes[0], n_layers, rows)


cdef fbp_network _objective_network(const int[::1] sizes, const int[::1] acts, int loss,
                                    object loss_param, double l2, const void* params,
                                    void* grad, void* work, fbp_layer* layers) except *:
    """The network of the objective's entry points, its specs laid out in
    ``layers`` (FBP_MAX_LAYERS of them)."""
    cdef int n_layers = <int>sizes.shape[0] - 1
    cdef fbp_network net
    if not 1 <= n_layers <= FBP_MAX_LAYERS or acts.shape[0] != n_layers:
        raise ValueError(f"sizes needs 2 to {FBP_MAX_LAYERS + 1} widths and acts one code "
                         f"per layer, got {sizes.shape[0]} and {acts.shape[0]}")
    fbp_layers_init(layers, &sizes[0], &acts[0], n_layers, 1)
    net = _network(&sizes[0], layers, n_layers, loss, l2, params, grad, work)
    net.loss_param = loss_param_of(loss, loss_param)
    return net


cdef int _check_pass_work(const fbp_network* net, Py_ssize_t m, Py_ssize_t size) except -1:
    # the workspace comes from Python, sized by pass_workspace_size
    if size < _pass_size(net.layers, net.sizes, net.n_layers, m):
        raise ValueError(f"work has {size} scalars; {m} rows need "
                         f"{_pass_size(net.layers, net.sizes, net.n_layers, m)} "
                         f"(pass_workspace_size with the activation codes)")
    return 0


def network_loss(X, const floating[:, ::1] T,
                 const floating[::1] params, const int[::1] sizes,
                 const int[::1] acts, int loss, double l2,
                 floating[::1] work, floating[::1] grad, loss_param=None):
    """Return J for (X, T) and write dJ/dparams into grad; X is dense rows
    or CSR rows (see input_rows); loss_param is the loss's parameter (None:
    the row's default, loss_param_defaults())."""
    cdef double J, penalty
    cdef unsigned int saved_csr
    cdef fbp_input x
    cdef Py_ssize_t m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x)
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef fbp_network net = _objective_network(sizes, acts, loss, loss_param, l2, &params[0],
                                              &grad[0], &work[0], layers)
    if T.shape[0] != m:
        raise ValueError(f"X has {m} rows but T has {T.shape[0]}")
    _check_pass_work(&net, m, work.shape[0])
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work[0])
        J = backward_pass(&net, &x, &T[0, 0], m, <const floating*>NULL, <double>m, &penalty)
        fbp_denormals_restore(saved_csr)
    return J + penalty


def weighted_loss_gradient(X, const floating[:, ::1] T,
                           const floating[::1] sample_weight,
                           const floating[::1] params, const int[::1] sizes,
                           const int[::1] acts, int loss, double l2,
                           floating[::1] work, floating[::1] grad, loss_param=None):
    """Return (data term, L2 term) of J with row weights; write dJ/dparams.

    X is dense rows or CSR rows (see input_rows). An empty ``sample_weight``
    means all rows weigh 1; loss_param is the loss's parameter (None: the
    row's default, loss_param_defaults()).
    """
    cdef double J, penalty, sw_sum = 0
    cdef fbp_input x
    cdef unsigned int saved_csr
    cdef Py_ssize_t r, m = input_rows(X, sizes[0], _np_dtype(&params[0]), &x)
    cdef const floating* sw = NULL
    cdef fbp_layer layers[FBP_MAX_LAYERS]
    cdef fbp_network net = _objective_network(sizes, acts, loss, loss_param, l2, &params[0],
                                              &grad[0], &work[0], layers)
    if sample_weight.shape[0] > 0:
        sw = &sample_weight[0]
        for r in range(sample_weight.shape[0]):
            sw_sum += sample_weight[r]
    else:
        sw_sum = m
    if T.shape[0] != m or 0 < sample_weight.shape[0] != m:
        raise ValueError(f"T or sample_weight do not have X's {m} rows")
    _check_pass_work(&net, m, work.shape[0])
    with nogil:
        saved_csr = fbp_denormals_off()
        forward_pass(&net, &x, m, &work[0])
        J = backward_pass(&net, &x, &T[0, 0], m, sw, sw_sum, &penalty)
        fbp_denormals_restore(saved_csr)
    return J, penalty
