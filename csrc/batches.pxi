# A minibatch's rows from the batch source (fbp_batches, csrc/fastbp_state.h):
# pointed at where they lie, or gathered in the row order; shared by the
# one-thread loop (training.pxi) and its threads (threads.pxi).

cdef inline void _gather_rows(const fbp_batches* data, Py_ssize_t pos, Py_ssize_t first,
                              Py_ssize_t count, Py_ssize_t n_in, Py_ssize_t n_out,
                              floating* x_rows, floating* t_rows,
                              floating* w_rows) noexcept nogil:
    """Copy batch rows [first, first + count) of positions from ``pos`` on,
    in ``data.order``, into the batch buffers: X's rows only when dense (CSR
    rows are read where they lie), weights only when there are some."""
    cdef Py_ssize_t r, row
    cdef const floating* X = <const floating*>data.X
    cdef const floating* T = <const floating*>data.T
    cdef const floating* sw = <const floating*>data.sample_weight
    for r in range(first, first + count):
        row = data.order[pos + r]
        if X != NULL:
            memcpy(x_rows + r * n_in, X + row * n_in, n_in * sizeof(floating))
        memcpy(t_rows + r * n_out, T + row * n_out, n_out * sizeof(floating))
        if sw != NULL:
            w_rows[r] = sw[row]


cdef inline double _batch_rows(const fbp_batches* data, Py_ssize_t pos, Py_ssize_t m,
                               Py_ssize_t first, Py_ssize_t count, Py_ssize_t n_in,
                               Py_ssize_t n_out, floating* x_rows, floating* t_rows,
                               floating* w_rows, fbp_input* xb, const floating** tb,
                               const floating** wb) noexcept nogil:
    """Point xb, tb and wb (NULL without weights) at the m-row batch from
    position ``pos``: at the data itself when there is no ``order``, else at
    the buffers, into which batch rows [first, first + count) are gathered
    (CSR rows go through ``order`` instead). Returns the sum of the batch's
    sample weights (m without weights)."""
    cdef Py_ssize_t r
    cdef double sw_sum
    cdef const floating* sw = <const floating*>data.sample_weight
    cdef const Py_ssize_t* order = data.order
    if data.X == NULL:
        xb.dense = NULL
        xb.values = data.X_values
        xb.indices = data.X_indices
        xb.indptr = data.X_indptr
        xb.order = order
        xb.first = pos
    if order != NULL:
        _gather_rows(data, pos, first, count, n_in, n_out, x_rows, t_rows, w_rows)
        if data.X != NULL:
            xb[0] = dense_input(x_rows)
        tb[0] = t_rows
        wb[0] = w_rows if sw != NULL else NULL
    else:
        if data.X != NULL:
            xb[0] = dense_input(<const floating*>data.X + pos * n_in)
        tb[0] = <const floating*>data.T + pos * n_out
        wb[0] = sw + pos if sw != NULL else NULL
    if sw == NULL:
        return m
    sw_sum = 0
    for r in range(m):
        sw_sum += sw[order[pos + r]] if order != NULL else sw[pos + r]
    return sw_sum
