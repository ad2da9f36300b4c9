/* Template of fastbp_sample.h for one scalar type; no include guard:
 * included once per FBP_REAL / FBP_SUFFIX (name_d, name_f). */

/* The team's epoch (fastbp_sample_team_impl.h, included after this file),
   which the epoch functions below hand a wide network over to: plain SGD's
   (plain) or momentum's. */
static int FBP_SUFFIX(fbp_sample_team_epoch)(const fbp_network *net, const fbp_batches *data,
                                             int plain, double lr, double mu, int look_ahead,
                                             void *v_all, ptrdiff_t start, ptrdiff_t stop,
                                             fbp_totals *totals);

/* a = b + z . W for one sample, outputs [j_begin, j_end): the whole blocks
   of FBP_BLOCK outputs from j_begin (a multiple of FBP_BLOCK) up to j_end,
   and with j_end = n_out the tail after the last whole block. Blocks are
   summed in local arrays the compiler keeps in registers (two interleaved
   partial sums over i); summing straight into a[] would chain every i
   through a store. The tail sums four rows at a time for the same reason.
   An output's sums do not depend on the range it is computed in, so a team
   splitting the outputs at whole blocks (fastbp_sample_team_impl.h) gets
   the bits of one call over all of them. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_dense_cols)(FBP_REAL *a, const FBP_REAL *b,
                                                  const FBP_REAL *z, const FBP_REAL *W,
                                                  ptrdiff_t n_in, ptrdiff_t n_out,
                                                  ptrdiff_t j_begin, ptrdiff_t j_end) {
    ptrdiff_t i, j, j0, k;
    for (j0 = j_begin; j0 + FBP_BLOCK <= j_end; j0 += FBP_BLOCK) {
        FBP_REAL even[FBP_BLOCK], odd[FBP_BLOCK];
        for (k = 0; k < FBP_BLOCK; k++) { even[k] = b[j0 + k]; odd[k] = 0; }
        for (i = 0; i + 2 <= n_in; i += 2) {
            const FBP_REAL z0 = z[i], z1 = z[i + 1];
            const FBP_REAL *w0 = W + i * n_out + j0, *w1 = w0 + n_out;
            for (k = 0; k < FBP_BLOCK; k++) {
                even[k] += z0 * w0[k];
                odd[k] += z1 * w1[k];
            }
        }
        if (i < n_in)
            for (k = 0; k < FBP_BLOCK; k++) even[k] += z[i] * W[i * n_out + j0 + k];
        for (k = 0; k < FBP_BLOCK; k++) a[j0 + k] = even[k] + odd[k];
    }
    if (j_end < n_out || j0 == n_out) return;
    for (j = j0; j < n_out; j++) a[j] = b[j];
    for (i = 0; i + 4 <= n_in; i += 4) {
        const FBP_REAL z0 = z[i], z1 = z[i + 1], z2 = z[i + 2], z3 = z[i + 3];
        const FBP_REAL *w0 = W + i * n_out, *w1 = w0 + n_out, *w2 = w1 + n_out, *w3 = w2 + n_out;
        for (j = j0; j < n_out; j++)
            a[j] += (z0 * w0[j] + z1 * w1[j]) + (z2 * w2[j] + z3 * w3[j]);
    }
    for (; i < n_in; i++)
        for (j = j0; j < n_out; j++) a[j] += z[i] * W[i * n_out + j];
}

/* a[j0, j0 + width) = b + z . W, each a_j summed over i in turn (gemm_nn's
   loop at one row), in registers: width is a constant once inlined, and a
   plain loop over k vectorises at each clone's own width. Every lane does
   the scalar operations, so any grouping of the outputs gives the same
   bits, and a block that overlaps another recomputes its outputs as they
   were. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_dense_block_in_turn)(FBP_REAL *a, const FBP_REAL *b,
                                                           const FBP_REAL *z, const FBP_REAL *W,
                                                           ptrdiff_t n_in, ptrdiff_t n_out,
                                                           ptrdiff_t j0, const ptrdiff_t width) {
    FBP_REAL acc[64];
    ptrdiff_t i, k;
    for (k = 0; k < width; k++) acc[k] = b[j0 + k];
    for (i = 0; i < n_in; i++) {
        const FBP_REAL z_i = z[i], *w = W + i * n_out + j0;
        for (k = 0; k < width; k++) acc[k] += z_i * w[k];
    }
    for (k = 0; k < width; k++) a[j0 + k] = acc[k];
}

#if defined(__GNUC__)
/* 16 bytes: a vector on every x86-64 clone (SSE2 up), so an array of them
   stays in registers on each. gcc's own loops vectorised a block of one
   64-byte vector of doubles over i instead, gathering strided weights, and
   wider vector types went through the stack where they are not native.
   32 bytes where the x86-64-v4 clones run (fbp_sample_wide): half the vector
   operations of double's sums, the same bits (each lane's sum is the
   same); on the v3 clone they measured slower, on the baseline much. */
#define FBP_DENSE_VECTORS(name, bytes)                                                       \
    FBP_SAMPLE_INLINE void FBP_SUFFIX(name)(FBP_REAL *a, const FBP_REAL *b, const FBP_REAL *z, \
                                            const FBP_REAL *W, ptrdiff_t n_in, ptrdiff_t n_out, \
                                            ptrdiff_t j0, ptrdiff_t j1, const int nq,           \
                                            const int from) {                                   \
        typedef FBP_REAL Q __attribute__((vector_size(bytes)));                                 \
        const ptrdiff_t lanes = (ptrdiff_t)(sizeof(Q) / sizeof(FBP_REAL));                      \
        Q acc[8], w;                                                                            \
        ptrdiff_t i, at[8];                                                                     \
        int q;                                                                                  \
        for (q = 0; q < nq; q++) {                                                              \
            at[q] = q < from ? j0 + q * lanes : j1 + (q - from) * lanes;                        \
            memcpy(&acc[q], b + at[q], sizeof(Q));                                              \
        }                                                                                       \
        for (i = 0; i < n_in; i++) {                                                            \
            const FBP_REAL z_i = z[i], *row = W + i * n_out;                                    \
            for (q = 0; q < nq; q++) {                                                          \
                memcpy(&w, row + at[q], sizeof(Q));                                             \
                acc[q] += z_i * w;                                                              \
            }                                                                                   \
        }                                                                                       \
        for (q = 0; q < nq; q++) memcpy(a + at[q], &acc[q], sizeof(Q));                         \
    }

/* nq vectors of 16 (or 32) bytes of outputs in one loop over i: vector q
   starts at j0 + q lanes, or at j1 + (q - from) lanes from vector from on
   (j1 may overlap j0's; its outputs come out the same). nq and from are
   constants once inlined. */
FBP_DENSE_VECTORS(fbp_dense_quads16, 16)
FBP_DENSE_VECTORS(fbp_dense_quads32, 32)
#undef FBP_DENSE_VECTORS

FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_dense_quads_in_turn)(FBP_REAL *a, const FBP_REAL *b,
                                                           const FBP_REAL *z, const FBP_REAL *W,
                                                           ptrdiff_t n_in, ptrdiff_t n_out,
                                                           ptrdiff_t j0, ptrdiff_t j1,
                                                           const int nq, const int from,
                                                           const int wide) {
    if (wide)
        FBP_SUFFIX(fbp_dense_quads32)(a, b, z, W, n_in, n_out, j0, j1, nq, from);
    else
        FBP_SUFFIX(fbp_dense_quads16)(a, b, z, W, n_in, n_out, j0, j1, nq, from);
}

/* Outputs [j0, n_out), in blocks of h vectors of 16 bytes (h*lanes <= n_out),
   the last one overlapping the one before where the count is ragged; a
   count up to 2h vectors in one loop. */
#define FBP_DENSE_QUADS(h)                                                                  \
    do {                                                                                    \
        const ptrdiff_t width_ = (h) * quad;                                                \
        while (count > 0) {                                                                 \
            if (count > width_ && count <= 2 * width_ && 2 * (h) <= 8) {                    \
                FBP_SUFFIX(fbp_dense_quads_in_turn)(a, b, z, W, n_in, n_out, j0,            \
                                                    n_out - width_, 2 * (h), (h), wide);    \
                return;                                                                     \
            }                                                                               \
            FBP_SUFFIX(fbp_dense_quads_in_turn)(a, b, z, W, n_in, n_out,                    \
                                                count >= width_ ? j0 : n_out - width_, 0,   \
                                                (h), (h), wide);                            \
            j0 += width_;                                                                   \
            count -= width_;                                                                \
        }                                                                                   \
    } while (0)

/* a = b + z . W in gemm_nn's order, outputs [j_begin, j_end): blocks of 4
   vectors of 64 bytes (256 bytes of outputs) from j_begin (a multiple of
   it) up to j_end as plain loops; with j_end = n_out then the rest (and of
   2 and 1 vectors for float) in vectors of 16 bytes, overlapping rather
   than leaving outputs one at a time (which chains n_in sums), reaching
   back into the last whole block at most; below 16 bytes, float's two or
   three outputs in one loop. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_dense_in_turn)(FBP_REAL *a, const FBP_REAL *b,
                                                     const FBP_REAL *z, const FBP_REAL *W,
                                                     ptrdiff_t n_in, ptrdiff_t n_out,
                                                     const int wide, ptrdiff_t j_begin,
                                                     ptrdiff_t j_end) {
    const ptrdiff_t vector = (ptrdiff_t)(64 / sizeof(FBP_REAL));
    const ptrdiff_t quad = (ptrdiff_t)((wide ? 32 : 16) / sizeof(FBP_REAL));
    ptrdiff_t j0 = j_begin, count, i;
    for (; j0 + 4 * vector <= j_end; j0 += 4 * vector)
        FBP_SUFFIX(fbp_dense_block_in_turn)(a, b, z, W, n_in, n_out, j0, 4 * vector);
    if (j_end < n_out)
        return;
    if (sizeof(FBP_REAL) == 4) {  /* float's blocks of 32 and 16 vectorise as they are */
        if (j0 + 2 * vector <= n_out) {
            FBP_SUFFIX(fbp_dense_block_in_turn)(a, b, z, W, n_in, n_out, j0, 2 * vector);
            j0 += 2 * vector;
        }
        if (j0 + vector <= n_out) {
            FBP_SUFFIX(fbp_dense_block_in_turn)(a, b, z, W, n_in, n_out, j0, vector);
            j0 += vector;
        }
    }
    count = n_out - j0;
    if (count == 0)
        return;
    if (n_out >= 8 * quad)
        FBP_DENSE_QUADS(8);
    else if (n_out >= 4 * quad)
        FBP_DENSE_QUADS(4);
    else if (n_out >= 2 * quad)
        FBP_DENSE_QUADS(2);
    else if (n_out >= quad)
        FBP_DENSE_QUADS(1);
    else if (n_out == 1) {
        FBP_REAL s0 = b[0];
        for (i = 0; i < n_in; i++) s0 += z[i] * W[i];
        a[0] = s0;
    } else {  /* float's 2 or 3 outputs: outputs 0, 1 and the last */
        const ptrdiff_t mid = 1, last = n_out - 1;
        FBP_REAL s0 = b[0], s1 = b[mid], s2 = b[last];
        for (i = 0; i < n_in; i++) {
            const FBP_REAL z_i = z[i], *row = W + i * n_out;
            s0 += z_i * row[0];
            s1 += z_i * row[mid];
            s2 += z_i * row[last];
        }
        a[0] = s0;
        a[mid] = s1;
        a[last] = s2;
    }
}
#undef FBP_DENSE_QUADS
#else
/* a = b + z . W in gemm_nn's order, outputs [j_begin, j_end): blocks of 4
   vectors of 64 bytes, then with j_end = n_out the last outputs one by one. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_dense_in_turn)(FBP_REAL *a, const FBP_REAL *b,
                                                     const FBP_REAL *z, const FBP_REAL *W,
                                                     ptrdiff_t n_in, ptrdiff_t n_out,
                                                     const int wide, ptrdiff_t j_begin,
                                                     ptrdiff_t j_end) {
    const ptrdiff_t vector = (ptrdiff_t)(64 / sizeof(FBP_REAL));
    ptrdiff_t i, j, j0 = j_begin;
    (void)wide;
    for (; j0 + 4 * vector <= j_end; j0 += 4 * vector)
        FBP_SUFFIX(fbp_dense_block_in_turn)(a, b, z, W, n_in, n_out, j0, 4 * vector);
    if (j_end < n_out)
        return;
    for (j = j0; j < n_out; j++) {
        FBP_REAL acc = b[j];
        for (i = 0; i < n_in; i++) acc += z[i] * W[i * n_out + j];
        a[j] = acc;
    }
}
#endif

/* Inverted dropout on layer l's z, right after f: dropout.pxi's
   dropout_forward at one row (the row at ``position``'s draws), leaving the
   factors mask * f' (f' through the z before the mask) at drop_factors + z. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_sample_dropout)(const fbp_network *net, int l,
                                                      ptrdiff_t position, FBP_REAL *z,
                                                      const FBP_REAL *a) {
    const fbp_layer *layer = &net->layers[l];
    FBP_REAL *factor = (FBP_REAL *)net->drop_factors + layer->z;
    const ptrdiff_t n = layer->n_out;
    for (ptrdiff_t i = 0; i < n; i++) factor[i] = 1;
    FBP_SUFFIX(fbp_multiply_derivative)(a, z, factor, n, layer->activation);
    FBP_SUFFIX(fbp_dropout_row_inline)(
        z, factor, n, 0,
        fbp_dropout_row_key(net->drop_seed, net->drop_epoch, net->drop_first + position, l),
        layer->drop_threshold, (FBP_REAL)layer->drop_scale);
}

/* Layer l - 1's dropout factors, or NULL where delta goes through its f'. */
FBP_SAMPLE_INLINE const FBP_REAL *FBP_SUFFIX(fbp_sample_factors)(const fbp_network *net, int l,
                                                                const int dropout) {
    if (!dropout || l == 0 || net->layers[l - 1].train_op != FBP_OP_DROPOUT) return NULL;
    return (const FBP_REAL *)net->drop_factors + net->layers[l - 1].z;
}

/* dot * f'(a_i), or dot * factor_i below a dropout layer (times_factors).
   a_i and z_i come as values, read where the caller reads them. */
FBP_SAMPLE_INLINE FBP_REAL FBP_SUFFIX(fbp_sample_below)(FBP_REAL dot, FBP_REAL a_i, FBP_REAL z_i,
                                                        const FBP_REAL *factor, ptrdiff_t i,
                                                        int kind) {
    if (factor != NULL) return dot * factor[i];
    return FBP_SUFFIX(fbp_times_derivative)(dot, a_i, z_i, kind);
}

/* One row's forward pass, z = f(a) layer by layer (the output keeps its a
   in a_out), then the output delta into delta; returns J's data term.
   in_turn: each a_j summed over i in turn (the momentum path's order; 2: in
   32-byte vectors, fbp_dense_in_turn's wide), else fbp_dense's. With dropout, the hidden layers' masks of the row at
   ``position``. a0_ready: layer 0's a is summed already (momentum's plain
   step sums it while it steps W_0, fbp_rows_momentum's next, in_turn's
   order). The epoch functions pass what they hoisted out of the loop. */
FBP_SAMPLE_INLINE double FBP_SUFFIX(fbp_sample_forward)(const fbp_network *net,
                                                        const fbp_layer *layers, int n_layers,
                                                        const FBP_REAL *params, FBP_REAL *work,
                                                        const FBP_REAL *x, const FBP_REAL *t,
                                                        FBP_REAL *a_out, FBP_REAL *delta,
                                                        ptrdiff_t n_out, const int in_turn,
                                                        ptrdiff_t position, const int dropout,
                                                        const int a0_ready) {
    const FBP_REAL *z_prev = x;
    for (int l = 0; l < n_layers; l++) {
        const fbp_layer *layer = &layers[l];
        FBP_REAL *z = work + layer->z;
        FBP_REAL *a = work + layer->a;  /* z, unless kept (the output's: a_out) */
        if (l == 0 && a0_ready)
            ;
        else if (in_turn)
            FBP_SUFFIX(fbp_dense_in_turn)(a, params + layer->b, z_prev, params + layer->W,
                                          layer->n_in, layer->n_out, in_turn == 2, 0,
                                          layer->n_out);
        else
            FBP_SUFFIX(fbp_dense_cols)(a, params + layer->b, z_prev, params + layer->W,
                                       layer->n_in, layer->n_out, 0, layer->n_out);
        FBP_SUFFIX(fbp_activate_rows)(a, z, 1, layer->n_out, layer->activation);
        if (dropout && layer->train_op == FBP_OP_DROPOUT)
            FBP_SUFFIX(fbp_sample_dropout)(net, l, position, z, a);
        z_prev = z;
    }
    return FBP_SUFFIX(fbp_output_delta_row)(a_out, work + layers[n_layers - 1].z, t, delta,
                                            n_out, net->loss, layers[n_layers - 1].activation,
                                            1.0, net->loss_param);
}

/* One pass over a weight row: return row . delta (old weights), then
   row -= lr * (l2 * row + z_i * delta). */
FBP_SAMPLE_INLINE FBP_REAL FBP_SUFFIX(fbp_row_dot_update)(FBP_REAL *row, const FBP_REAL *delta,
                                                          ptrdiff_t n, FBP_REAL lr, FBP_REAL z_i,
                                                          FBP_REAL l2) {
    FBP_REAL acc[FBP_LANES] = {0};
    FBP_REAL tail = 0;
    ptrdiff_t j = 0, k;
    for (; j + FBP_LANES <= n; j += FBP_LANES) {
        for (k = 0; k < FBP_LANES; k++) {
            FBP_REAL w = row[j + k];
            acc[k] += w * delta[j + k];
            row[j + k] = w - lr * (l2 * w + z_i * delta[j + k]);
        }
    }
    for (; j < n; j++) {
        FBP_REAL w = row[j];
        tail += w * delta[j];
        row[j] = w - lr * (l2 * w + z_i * delta[j]);
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

/* Without L2: row -= z_i * step, where step = lr * delta was taken once per
   layer; one multiply-add per weight instead of three. */
FBP_SAMPLE_INLINE FBP_REAL FBP_SUFFIX(fbp_row_dot_step)(FBP_REAL *row, const FBP_REAL *delta,
                                                        const FBP_REAL *step, ptrdiff_t n,
                                                        FBP_REAL z_i) {
    FBP_REAL acc[FBP_LANES] = {0};
    FBP_REAL tail = 0;
    ptrdiff_t j = 0, k;
    for (; j + FBP_LANES <= n; j += FBP_LANES) {
        for (k = 0; k < FBP_LANES; k++) {
            FBP_REAL w = row[j + k];
            acc[k] += w * delta[j + k];
            row[j + k] = w - z_i * step[j + k];
        }
    }
    for (; j < n; j++) {
        FBP_REAL w = row[j];
        tail += w * delta[j];
        row[j] = w - z_i * step[j];
    }
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
           ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;
}

/* The same update where no delta is needed below (the input layer). */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_row_update)(FBP_REAL *row, const FBP_REAL *delta, ptrdiff_t n,
                                                  FBP_REAL lr, FBP_REAL z_i, FBP_REAL l2) {
    for (ptrdiff_t j = 0; j < n; j++)
        row[j] = row[j] - lr * (l2 * row[j] + z_i * delta[j]);
}

FBP_SAMPLE_INLINE double FBP_SUFFIX(fbp_row_square)(const FBP_REAL *row, ptrdiff_t n) {
    double s = 0;
    for (ptrdiff_t j = 0; j < n; j++) s += (double)row[j] * row[j];
    return s;
}

/* A call's start, shared by the epoch functions: zero the totals and find
 * one row's buffers in the workspace. Layer l's z is at work + layers[l].z
 * and its a at work + layers[l].a (z's place, unless kept); a_out (the
 * output's a) is followed by two delta buffers as wide as the widest layer,
 * then the step buffer, which is returned. */
FBP_SAMPLE_INLINE FBP_REAL *FBP_SUFFIX(fbp_sample_setup)(const fbp_network *net,
                                                        fbp_totals *totals, FBP_REAL **a_out,
                                                        FBP_REAL **delta_a, FBP_REAL **delta_b) {
    const int n_layers = net->n_layers;
    ptrdiff_t max_w = 0;
    for (int l = 0; l <= n_layers; l++) if (net->sizes[l] > max_w) max_w = net->sizes[l];
    *a_out = (FBP_REAL *)net->work + net->layers[n_layers - 1].a;
    *delta_a = *a_out + net->sizes[n_layers];
    *delta_b = *delta_a + max_w;
    totals->loss_sum = 0;
    totals->penalty_sum = 0;
    totals->rows_done = 0;
    return *delta_b + max_w;
}

/* fbp_sample_epoch's body; dropout: whether the network has any, a constant
 * once inlined: each value has an epoch function of its own, so the one
 * without dropout compiles to the code it had before dropout came in. */
FBP_SAMPLE_INLINE int FBP_SUFFIX(fbp_sample_epoch_body)(const fbp_network *net,
                                                        const fbp_batches *data, double lr,
                                                        ptrdiff_t start, ptrdiff_t stop,
                                                        fbp_totals *totals, const int dropout) {
    const fbp_layer *layers = net->layers;
    const int n_layers = net->n_layers;
    const ptrdiff_t n_in0 = net->sizes[0], n_out = net->sizes[n_layers];
    const FBP_REAL *X = (const FBP_REAL *)data->X, *Tgt = (const FBP_REAL *)data->T;
    FBP_REAL *params = (FBP_REAL *)net->params, *work = (FBP_REAL *)net->work;
    const FBP_REAL lr_t = (FBP_REAL)lr, l2_t = (FBP_REAL)net->l2;
    ptrdiff_t r, i, j;
    int l;
    FBP_REAL *a_out, *delta_a, *delta_b;
    /* lr * delta of the layer being updated */
    FBP_REAL *step = FBP_SUFFIX(fbp_sample_setup)(net, totals, &a_out, &delta_a, &delta_b);
    for (r = start; r < stop; r++) {
        ptrdiff_t row_index = data->order ? data->order[r] : r;
        const FBP_REAL *x = X + row_index * n_in0;
        const FBP_REAL *t = Tgt + row_index * n_out;
        /* forward: a = b + sum_i z_i W[i, :], then z = f(a) */
        double J = FBP_SUFFIX(fbp_sample_forward)(net, layers, n_layers, params, work, x, t,
                                                  a_out, delta_a, n_out, 0, r, dropout, 0);
        if (!isfinite(J)) return 1;
        /* backward, updating each layer as soon as its delta is used */
        FBP_REAL *delta = delta_a, *delta_prev = delta_b;
        double penalty = 0;
        for (l = n_layers - 1; l >= 0; l--) {
            const fbp_layer *layer = &layers[l];
            const ptrdiff_t n_in = layer->n_in, n_next = layer->n_out;
            FBP_REAL *W = params + layer->W, *b = params + layer->b;
            const FBP_REAL *z_below = (l == 0) ? x : work + layers[l - 1].z;
            const FBP_REAL *a_below = (l == 0) ? x : work + layers[l - 1].a;
            const FBP_REAL *factor = FBP_SUFFIX(fbp_sample_factors)(net, l, dropout);
            if (net->l2 != 0)
                for (i = 0; i < n_in; i++)
                    penalty += FBP_SUFFIX(fbp_row_square)(W + i * n_next, n_next);
            if (net->l2 == 0) {
                for (j = 0; j < n_next; j++) step[j] = lr_t * delta[j];
                if (l == 0) {
                    for (i = 0; i < n_in; i++) {
                        FBP_REAL *row = W + i * n_next;
                        const FBP_REAL z_i = z_below[i];
                        for (j = 0; j < n_next; j++) row[j] -= z_i * step[j];
                    }
                } else {
                    for (i = 0; i < n_in; i++)
                        delta_prev[i] = FBP_SUFFIX(fbp_sample_below)(
                            FBP_SUFFIX(fbp_row_dot_step)(W + i * n_next, delta, step, n_next,
                                                         z_below[i]),
                            a_below[i], z_below[i], factor, i, layers[l - 1].activation);
                }
                for (j = 0; j < n_next; j++) b[j] -= step[j];
            } else if (l == 0) {
                for (i = 0; i < n_in; i++)
                    FBP_SUFFIX(fbp_row_update)(W + i * n_next, delta, n_next, lr_t,
                                               z_below[i], l2_t);
                for (j = 0; j < n_next; j++) b[j] -= lr_t * delta[j];
            } else {
                for (i = 0; i < n_in; i++)
                    delta_prev[i] = FBP_SUFFIX(fbp_sample_below)(
                        FBP_SUFFIX(fbp_row_dot_update)(W + i * n_next, delta, n_next, lr_t,
                                                       z_below[i], l2_t),
                        a_below[i], z_below[i], factor, i, layers[l - 1].activation);
                for (j = 0; j < n_next; j++) b[j] -= lr_t * delta[j];
            }
            FBP_REAL *swap = delta; delta = delta_prev; delta_prev = swap;
        }
        totals->loss_sum += J;
        fbp_sample_add_penalty(totals, net->l2, penalty);
        totals->rows_done += 1;
    }
    return 0;
}

FBP_CLONES
static int FBP_SUFFIX(fbp_sample_dropout_epoch)(const fbp_network *net, const fbp_batches *data,
                                                double lr, ptrdiff_t start, ptrdiff_t stop,
                                                fbp_totals *totals) {
    return FBP_SUFFIX(fbp_sample_epoch_body)(net, data, lr, start, stop, totals, 1);
}

/* ---------------------------------------------------------------------------
 * Plain SGD on a net of a few units: one hidden layer, sigmoid units, mse,
 * no L2 term, widths n0-n1-n2 constants (fbp_sample_tiny). Every row of
 * such a net (XOR's 2-2-1) waits on the one before, through the weights it
 * wrote: here they are locals for a whole call (registers at XOR's size;
 * a 4-4-1 net's partly spill), loaded once and written back at its end,
 * and every loop is unrolled at its width, so a row runs no loop test, no
 * store and reload of a, z or delta, and no call of the sigmoid's row
 * function (C harness, not quiet, ns a row, general loop -> these: XOR
 * float32 ~100 -> 52, float64 ~108 -> 61; 4-4-1 121 -> 81, 126 -> 94).
 * Each value is computed by the same inline code, in the same order, as
 * fbp_sample_epoch_body's (the forward sums of fbp_dense_cols,
 * fbp_sigmoid_rows' ternaries at the row's width, fbp_loss_mse,
 * fbp_row_dot_step), so the bits are those of the general loop
 * (tests/test_sample_tiny.py). Epoch e is positions
 * [start + e rows, ...) with an order, else [start, start + rows), as
 * fbp_sample_epochs takes them; with data_sums NULL (one epoch, for
 * fbp_sample_epoch) the totals are its sums, else data_sums[e] and
 * penalty_sums[e] (0) are, and an epoch that leaves a weight not finite
 * stops the call (status 2). Returns the epochs completed; status 1 where
 * a row's loss was not finite (its update not applied, the rows before it
 * in the totals). */

/* The widest layer the tiny epochs take. */
#define FBP_TINY_MAX 4

/* sigma(x), as fbp_sigmoid_rows gives it in a row of n units. */
FBP_SAMPLE_INLINE FBP_REAL FBP_SUFFIX(fbp_tiny_sigmoid)(FBP_REAL x, const int n) {
    const int branchy = n <= FBP_SIGMOID_BRANCHY_MAX;
    if (sizeof(FBP_REAL) == 8)
        return (FBP_REAL)fbp_sigmoid_select((double)x, branchy);
    return (FBP_REAL)fbp_sigmoidf_select((float)x, branchy);
}

/* The tiny epochs' weights in locals: W0 (n0 x n1), b0 (n1), W1 (n1 x n2),
   b1 (n2), at layers 0 and 1's offsets of base (params, or momentum's
   velocities, which share their layout). */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_tiny_load)(const fbp_network *net, const FBP_REAL *base,
                                                 FBP_REAL *W0, FBP_REAL *b0, FBP_REAL *W1,
                                                 FBP_REAL *b1, const int n0, const int n1,
                                                 const int n2) {
    const FBP_REAL *W0_at = base + net->layers[0].W, *b0_at = base + net->layers[0].b;
    const FBP_REAL *W1_at = base + net->layers[1].W, *b1_at = base + net->layers[1].b;
    int k;
    for (k = 0; k < n0 * n1; k++) W0[k] = W0_at[k];
    for (k = 0; k < n1; k++) b0[k] = b0_at[k];
    for (k = 0; k < n1 * n2; k++) W1[k] = W1_at[k];
    for (k = 0; k < n2; k++) b1[k] = b1_at[k];
}

/* The locals written back to base: fbp_tiny_load's other way. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_tiny_store)(const fbp_network *net, FBP_REAL *base,
                                                  const FBP_REAL *W0, const FBP_REAL *b0,
                                                  const FBP_REAL *W1, const FBP_REAL *b1,
                                                  const int n0, const int n1, const int n2) {
    FBP_REAL *W0_at = base + net->layers[0].W, *b0_at = base + net->layers[0].b;
    FBP_REAL *W1_at = base + net->layers[1].W, *b1_at = base + net->layers[1].b;
    int k;
    for (k = 0; k < n0 * n1; k++) W0_at[k] = W0[k];
    for (k = 0; k < n1; k++) b0_at[k] = b0[k];
    for (k = 0; k < n1 * n2; k++) W1_at[k] = W1[k];
    for (k = 0; k < n2; k++) b1_at[k] = b1[k];
}

/* Whether a local weight is not finite: fbp_first_nonfinite's test, w * 0
   is NaN for an infinite or NaN w, else +-0, so their sum is NaN (in any
   order) exactly when one is. */
FBP_SAMPLE_INLINE int FBP_SUFFIX(fbp_tiny_nonfinite)(const FBP_REAL *W0, const FBP_REAL *b0,
                                                     const FBP_REAL *W1, const FBP_REAL *b1,
                                                     const int n0, const int n1, const int n2) {
    FBP_REAL nonfinite = 0;
    int k;
    for (k = 0; k < n0 * n1; k++) nonfinite += W0[k] * 0;
    for (k = 0; k < n1; k++) nonfinite += b0[k] * 0;
    for (k = 0; k < n1 * n2; k++) nonfinite += W1[k] * 0;
    for (k = 0; k < n2; k++) nonfinite += b1[k] * 0;
    return nonfinite != nonfinite;
}

FBP_SAMPLE_INLINE ptrdiff_t FBP_SUFFIX(fbp_sample_tiny_body)(
    const fbp_network *net, const fbp_batches *data, double lr, ptrdiff_t start,
    ptrdiff_t rows, ptrdiff_t n_epochs, double *data_sums, double *penalty_sums,
    fbp_totals *totals, int *status, const int n0, const int n1, const int n2) {
    FBP_REAL *params = (FBP_REAL *)net->params;
    const FBP_REAL *X = (const FBP_REAL *)data->X, *Tgt = (const FBP_REAL *)data->T;
    const ptrdiff_t *order = data->order;
    const FBP_REAL lr_t = (FBP_REAL)lr;
    FBP_REAL W0[FBP_TINY_MAX * FBP_TINY_MAX], b0[FBP_TINY_MAX];
    FBP_REAL W1[FBP_TINY_MAX * FBP_TINY_MAX], b1[FBP_TINY_MAX];
    ptrdiff_t e, r, i, j;
    FBP_SUFFIX(fbp_tiny_load)(net, params, W0, b0, W1, b1, n0, n1, n2);
    *status = 0;
    totals->loss_sum = 0;
    totals->penalty_sum = 0;
    totals->rows_done = 0;
    FBP_TINY_COUNT_RUN();
    for (e = 0; e < n_epochs; e++) {
        const ptrdiff_t first = order != NULL ? start + e * rows : start;
        double loss_sum = 0;
        ptrdiff_t done = 0;
        for (r = first; r < first + rows; r++) {
            const ptrdiff_t row = order != NULL ? order[r] : r;
            const FBP_REAL *x = X + row * n0, *t = Tgt + row * n2;
            FBP_REAL a1[FBP_TINY_MAX], z1[FBP_TINY_MAX], a2[FBP_TINY_MAX], z2[FBP_TINY_MAX];
            FBP_REAL delta2[FBP_TINY_MAX], delta1[FBP_TINY_MAX], step[FBP_TINY_MAX];
            FBP_SUFFIX(fbp_dense_cols)(a1, b0, x, W0, n0, n1, 0, n1);
            for (j = 0; j < n1; j++) z1[j] = FBP_SUFFIX(fbp_tiny_sigmoid)(a1[j], n1);
            FBP_SUFFIX(fbp_dense_cols)(a2, b1, z1, W1, n1, n2, 0, n2);
            for (j = 0; j < n2; j++) z2[j] = FBP_SUFFIX(fbp_tiny_sigmoid)(a2[j], n2);
            const double J = FBP_SUFFIX(fbp_loss_mse)(a2, z2, t, delta2, n2, FBP_SIGMOID, 1.0,
                                                      net->loss_param);
            if (!isfinite(J)) {
                *status = 1;
                totals->loss_sum = loss_sum;
                totals->rows_done = done;
                goto stop;
            }
            /* the output layer: its rows' dots for delta1, then its step */
            for (j = 0; j < n2; j++) step[j] = lr_t * delta2[j];
            for (i = 0; i < n1; i++)
                delta1[i] = FBP_SUFFIX(fbp_times_derivative)(
                    FBP_SUFFIX(fbp_row_dot_step)(W1 + i * n2, delta2, step, n2, z1[i]), z1[i],
                    z1[i], FBP_SIGMOID);
            for (j = 0; j < n2; j++) b1[j] -= step[j];
            /* the hidden layer */
            for (j = 0; j < n1; j++) step[j] = lr_t * delta1[j];
            for (i = 0; i < n0; i++) {
                const FBP_REAL z_i = x[i];
                for (j = 0; j < n1; j++) W0[i * n1 + j] -= z_i * step[j];
            }
            for (j = 0; j < n1; j++) b0[j] -= step[j];
            loss_sum += J;
            done += 1;
        }
        if (data_sums == NULL) {
            totals->loss_sum = loss_sum;
            totals->rows_done = done;
            continue;
        }
        if (FBP_SUFFIX(fbp_tiny_nonfinite)(W0, b0, W1, b1, n0, n1, n2)) {
            *status = 2;
            break;
        }
        data_sums[e] = loss_sum;
        penalty_sums[e] = 0;
    }
stop:
    FBP_SUFFIX(fbp_tiny_store)(net, params, W0, b0, W1, b1, n0, n1, n2);
    return e;
}

/* The body at one shape, a function of its own: scalar code (the v3 clone
   on an AVX-512 CPU too, fastbp_sample.h's FBP_CLONES_NARROW), kept scalar:
   gcc's SLP vectoriser paired the output rows' updates into a vector
   multiply and subtract, where the general loop's scalar ones contract to
   one FMA each, so its weights came out other bits. */
#if defined(__GNUC__) && !defined(__clang__)
#define FBP_TINY_SCALAR __attribute__((optimize("no-tree-vectorize")))
#else
#define FBP_TINY_SCALAR
#endif
#define FBP_TINY_SHAPE(n0, n1, n2)                                                          \
    FBP_CLONES_NARROW FBP_TINY_SCALAR static ptrdiff_t FBP_SUFFIX(fbp_sample_tiny_##n0##_##n1##_##n2)(     \
        const fbp_network *net, const fbp_batches *data, double lr, ptrdiff_t start,       \
        ptrdiff_t rows, ptrdiff_t n_epochs, double *data_sums, double *penalty_sums,       \
        fbp_totals *totals, int *status) {                                                 \
        return FBP_SUFFIX(fbp_sample_tiny_body)(net, data, lr, start, rows, n_epochs,      \
                                                data_sums, penalty_sums, totals, status,   \
                                                n0, n1, n2);                               \
    }
/* n0 inputs and n1 hidden units (FBP_TINY_MAX each), one output */
#define FBP_TINY_ROW(n0) \
    FBP_TINY_SHAPE(n0, 1, 1) FBP_TINY_SHAPE(n0, 2, 1) FBP_TINY_SHAPE(n0, 3, 1) FBP_TINY_SHAPE(n0, 4, 1)
FBP_TINY_ROW(1)
FBP_TINY_ROW(2)
FBP_TINY_ROW(3)
FBP_TINY_ROW(4)
#undef FBP_TINY_ROW
#undef FBP_TINY_SHAPE
#undef FBP_TINY_SCALAR

typedef ptrdiff_t (*FBP_SUFFIX(fbp_tiny_epochs))(const fbp_network *, const fbp_batches *,
                                                  double, ptrdiff_t, ptrdiff_t, ptrdiff_t,
                                                  double *, double *, fbp_totals *, int *);

/* The tiny epochs of net's shape, or NULL: one hidden layer of sigmoid
   units (no dropout), a sigmoid output, mse, no L2 term, one of the shapes
   above, on one thread; and fbp_sample_tiny_on set (set_sample_tiny). */
static inline FBP_SUFFIX(fbp_tiny_epochs) FBP_SUFFIX(fbp_sample_tiny)(const fbp_network *net) {
    if (!fbp_sample_tiny_on || net->n_layers != 2 || net->loss != FBP_MSE || net->l2 != 0
        || net->drop_factors != NULL || fbp_sample_team_takes(net, 1))
        return NULL;
    for (int l = 0; l < 2; l++)
        if (net->layers[l].activation != FBP_SIGMOID || net->layers[l].train_op != FBP_OP_NONE)
            return NULL;
#define FBP_TINY_CASE(n0, n1) \
    case (n0 - 1) * FBP_TINY_MAX + n1 - 1: return FBP_SUFFIX(fbp_sample_tiny_##n0##_##n1##_1);
#define FBP_TINY_ROW(n0) \
    FBP_TINY_CASE(n0, 1) FBP_TINY_CASE(n0, 2) FBP_TINY_CASE(n0, 3) FBP_TINY_CASE(n0, 4)
    const int n0 = net->sizes[0], n1 = net->sizes[1];
    if (n0 < 1 || n0 > FBP_TINY_MAX || n1 < 1 || n1 > FBP_TINY_MAX || net->sizes[2] != 1)
        return NULL;
    switch ((n0 - 1) * FBP_TINY_MAX + n1 - 1) {
        FBP_TINY_ROW(1) FBP_TINY_ROW(2) FBP_TINY_ROW(3) FBP_TINY_ROW(4)
    }
#undef FBP_TINY_ROW
#undef FBP_TINY_CASE
    return NULL;
}

/* One call: plain SGD on positions [start, stop) of the batch source, one row
 * at a time (data->batch_size is 1, no sample weights), with the network's
 * dropout if it has any, on the team where it takes the network. Returns 0,
 * or 1 when a row's loss is not finite (its update is not applied). */
FBP_CLONES FBP_SAMPLE_NOINLINE
static int FBP_SUFFIX(fbp_sample_epoch)(const fbp_network *net, const fbp_batches *data,
                                        double lr, ptrdiff_t start, ptrdiff_t stop,
                                        fbp_totals *totals) {
    if (fbp_sample_team_takes(net, 1))
        return FBP_SUFFIX(fbp_sample_team_epoch)(net, data, 1, lr, 0, 0, NULL, start, stop,
                                                 totals);
    if (net->drop_factors != NULL)
        return FBP_SUFFIX(fbp_sample_dropout_epoch)(net, data, lr, start, stop, totals);
    FBP_SUFFIX(fbp_tiny_epochs) tiny = FBP_SUFFIX(fbp_sample_tiny)(net);
    if (tiny != NULL) {
        int status;
        tiny(net, data, lr, start, stop - start, 1, NULL, NULL, totals, &status);
        return status;
    }
    return FBP_SUFFIX(fbp_sample_epoch_body)(net, data, lr, start, stop, totals, 0);
}

/* Many epochs of plain SGD, one row at a time, in one call: epoch e is
 * positions [e rows, (e + 1) rows) with an order, else rows [0, rows), each
 * trained by fbp_sample_epoch; after each, its J sums go to data_sums[e] and
 * penalty_sums[e], as training.pxi's train_epochs_kernel writes them. XOR's
 * epoch is 4 rows of ~0.1 µs, and that loop's way to each epoch (the
 * minibatch loop's set-up, the load-time dispatch) cost a few percent of
 * it; from here each epoch is a direct call of this clone's own
 * fbp_sample_epoch. That one stays out of line: inlined, its rows compile
 * to other contractions into FMA, and an L2 term's sums came out in other
 * bits. Returns the epochs completed, with status 1 (a row's loss not
 * finite, its update not applied) or 2 (non-finite params after the
 * epoch), that epoch not counted; -1 (nothing trained) for a network with
 * dropout, whose epochs the caller takes one by one (each its masks). */
FBP_CLONES
static ptrdiff_t FBP_SUFFIX(fbp_sample_epochs)(const fbp_network *net, const fbp_batches *data,
                                               double lr, ptrdiff_t n_epochs, ptrdiff_t rows,
                                               double *data_sums, double *penalty_sums,
                                               int *status) {
    fbp_totals totals;
    ptrdiff_t e;
    const FBP_REAL *params = (const FBP_REAL *)net->params;
    *status = 0;
    if (net->drop_factors != NULL)
        return -1;
    FBP_SUFFIX(fbp_tiny_epochs) tiny = FBP_SUFFIX(fbp_sample_tiny)(net);
    if (tiny != NULL)
        return tiny(net, data, lr, 0, rows, n_epochs, data_sums, penalty_sums, &totals, status);
    for (e = 0; e < n_epochs; e++) {
        const ptrdiff_t start = data->order != NULL ? e * rows : 0;
        *status = FBP_SUFFIX(fbp_sample_epoch)(net, data, lr, start, start + rows, &totals);
        if (*status != 0)
            return e;
        if (FBP_SUFFIX(fbp_first_nonfinite)(params, net->n_params) >= 0) {
            *status = 2;
            return e;
        }
        data_sums[e] = totals.loss_sum;
        penalty_sums[e] = totals.penalty_sum;
    }
    return n_epochs;
}

/* ---------------------------------------------------------------------------
 * SGD with momentum (or Nesterov's), one row at a time: the same arithmetic,
 * in the same order, as the minibatch loop takes at batch 1 when its
 * products run as plain loops (below products.pxi's BLAS_MIN_FLOPS): a
 * forward sum over i in turn from the bias, the delta below in gemm_nt's
 * four strided sums, g = 0 + z_i delta_j (or the L2 term + z_i delta_j),
 * then _sgd_step's update. The epoch function is compiled with contraction
 * to FMA off, as that code is, so the weights come out bit for bit the same
 * (tests/test_per_sample_momentum.py); its speed comes from never leaving
 * the row: no gradient buffer written and read back, one pass per weight
 * row, and no call per batch. */

#if defined(__GNUC__)
/* GCC's vector extensions for the plain momentum step below: 32 bytes (an
   AVX2 register on x86-64-v3, a pair of SSE2 ones on the baseline), and 4
   lanes (gemm_nt's four sums of fbp_row_dot_momentum). A scalar operand is
   broadcast as it is (no arithmetic), and every lane does the scalar loop's
   operations in its order, so the bits are the scalar loop's. Written out
   because gcc's own vectorisation of the loop at a run-time n (8-32 on the
   small nets this path serves) spent about as many instructions on its
   alias and trip-count checks as on the arithmetic. */
typedef FBP_REAL FBP_SUFFIX(fbp_vec)
    __attribute__((vector_size(32)));
typedef FBP_REAL FBP_SUFFIX(fbp_vec4)
    __attribute__((vector_size(4 * sizeof(FBP_REAL))));
#define FBP_MOMENTUM_VECTORS 1
#endif

/* v = mu v - lr g; w += v (Nesterov: w += mu v - lr g), g = g0_j + z_i delta_j
   with g0 the row's L2 term or 0: _sgd_step on one weight row. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_row_momentum)(FBP_REAL *restrict row, FBP_REAL *restrict v,
                                                    const FBP_REAL *restrict g0,
                                                    const FBP_REAL *restrict delta, ptrdiff_t n,
                                                    FBP_REAL z_i, FBP_REAL lr, FBP_REAL mu,
                                                    int look_ahead) {
    ptrdiff_t j = 0;
    if (g0 == NULL && !look_ahead) {
#ifdef FBP_MOMENTUM_VECTORS
        typedef FBP_SUFFIX(fbp_vec) V;
        const ptrdiff_t lanes = (ptrdiff_t)(sizeof(V) / sizeof(FBP_REAL));
        const V zero = {0};
        for (; j + lanes <= n; j += lanes) {
            V d, v_j, w;
            memcpy(&d, delta + j, sizeof d);
            memcpy(&v_j, v + j, sizeof v_j);
            memcpy(&w, row + j, sizeof w);
            v_j = mu * v_j - lr * (zero + z_i * d);
            w = w + v_j;
            memcpy(v + j, &v_j, sizeof v_j);
            memcpy(row + j, &w, sizeof w);
        }
#endif
        for (; j < n; j++) {
            FBP_REAL g = (FBP_REAL)0 + z_i * delta[j];  /* + 0: -0 becomes +0, as there */
            FBP_REAL v_j = mu * v[j] - lr * g;
            v[j] = v_j;
            row[j] += v_j;
        }
    } else {
        for (j = 0; j < n; j++) {
            FBP_REAL g = (g0 != NULL ? g0[j] : (FBP_REAL)0) + z_i * delta[j];
            FBP_REAL step = lr * g, v_j = mu * v[j] - step;
            v[j] = v_j;
            row[j] += look_ahead ? mu * v_j - step : v_j;
        }
    }
}

#ifdef FBP_MOMENTUM_VECTORS
/* The plain step (fbp_row_momentum's vector loop) on outputs [j0, j0 + nv
   vectors) of all n_in rows of W: delta's nv vectors stay in registers
   over the rows (restrict lets gcc hoist their loads), instead of a loop's
   loads, set-up and tail per row. With next, also the next row's forward
   sums of these outputs, a_next = b + x_next . W from the new weights as
   they are stepped (b already stepped): each lane's sum over i in turn
   from the bias, fbp_dense_in_turn's. nv and next are constants once
   inlined. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_rows_momentum_block)(
    FBP_REAL *restrict W, FBP_REAL *restrict v, const FBP_REAL *restrict z,
    const FBP_REAL *restrict delta, ptrdiff_t n_in, ptrdiff_t n, ptrdiff_t j0, const int nv,
    FBP_REAL lr, FBP_REAL mu, const int next, const FBP_REAL *restrict b,
    const FBP_REAL *restrict x_next, FBP_REAL *restrict a_next) {
    typedef FBP_SUFFIX(fbp_vec) V;
    const ptrdiff_t lanes = (ptrdiff_t)(sizeof(V) / sizeof(FBP_REAL));
    const V zero = {0};
    V acc[4];
    int q;
    /* acc's loads and stores written out: as loops, gcc made them a block
       copy through the stack in 16-byte pieces, which stalls the 32-byte
       loads of the stores just made (store forwarding) */
    if (next) {
        memcpy(&acc[0], b + j0, sizeof(V));
        if (nv > 1) memcpy(&acc[1], b + j0 + lanes, sizeof(V));
        if (nv > 2) memcpy(&acc[2], b + j0 + 2 * lanes, sizeof(V));
        if (nv > 3) memcpy(&acc[3], b + j0 + 3 * lanes, sizeof(V));
    }
    for (ptrdiff_t i = 0; i < n_in; i++) {
        const FBP_REAL z_i = z[i], x_i = next ? x_next[i] : 0;
        FBP_REAL *row = W + i * n + j0, *v_row = v + i * n + j0;
        for (q = 0; q < nv; q++) {
            V d, v_j, w;  /* d: loop-invariant, kept in a register */
            memcpy(&d, delta + j0 + q * lanes, sizeof d);
            memcpy(&v_j, v_row + q * lanes, sizeof v_j);
            memcpy(&w, row + q * lanes, sizeof w);
            v_j = mu * v_j - lr * (zero + z_i * d);
            w = w + v_j;
            memcpy(v_row + q * lanes, &v_j, sizeof v_j);
            memcpy(row + q * lanes, &w, sizeof w);
            if (next) acc[q] += x_i * w;
        }
    }
    if (next) {
        memcpy(a_next + j0, &acc[0], sizeof(V));
        if (nv > 1) memcpy(a_next + j0 + lanes, &acc[1], sizeof(V));
        if (nv > 2) memcpy(a_next + j0 + 2 * lanes, &acc[2], sizeof(V));
        if (nv > 3) memcpy(a_next + j0 + 3 * lanes, &acc[3], sizeof(V));
    }
}
#endif

/* fbp_row_momentum's plain step (no L2 term, no look-ahead) on all n_in rows
   of W (n outputs each), where no dot is needed (the input layer): in
   blocks of up to four vectors of outputs over all rows, then the last
   outputs row by row. Each weight's operations are the row loop's. With
   next (a constant once inlined), also the next row's a_next = b + x_next
   . W, as fbp_dense_in_turn sums it, from the stepped b and W. */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_rows_momentum)(FBP_REAL *restrict W, FBP_REAL *restrict v,
                                                     const FBP_REAL *restrict z,
                                                     const FBP_REAL *restrict delta,
                                                     ptrdiff_t n_in, ptrdiff_t n, FBP_REAL lr,
                                                     FBP_REAL mu, const int next,
                                                     const FBP_REAL *restrict b,
                                                     const FBP_REAL *restrict x_next,
                                                     FBP_REAL *restrict a_next) {
    ptrdiff_t j0 = 0, i, j;
#ifdef FBP_MOMENTUM_VECTORS
#define FBP_ROWS_BLOCK(nv)                                                                  \
    FBP_SUFFIX(fbp_rows_momentum_block)(W, v, z, delta, n_in, n, j0, (nv), lr, mu, next, b, \
                                        x_next, a_next)
    const ptrdiff_t lanes = (ptrdiff_t)(sizeof(FBP_SUFFIX(fbp_vec)) / sizeof(FBP_REAL));
    for (; j0 + 4 * lanes <= n; j0 += 4 * lanes)
        FBP_ROWS_BLOCK(4);
    switch ((n - j0) / lanes) {
    case 3: FBP_ROWS_BLOCK(3); break;
    case 2: FBP_ROWS_BLOCK(2); break;
    case 1: FBP_ROWS_BLOCK(1); break;
    default: break;
    }
#undef FBP_ROWS_BLOCK
    j0 = n - (n - j0) % lanes;
    if (j0 == n) return;
#endif
    for (i = 0; i < n_in; i++)
        FBP_SUFFIX(fbp_row_momentum)(W + i * n + j0, v + i * n + j0, NULL, delta + j0, n - j0,
                                     z[i], lr, mu, 0);
    if (next)
        for (j = j0; j < n; j++) {
            FBP_REAL s = b[j];
            for (i = 0; i < n_in; i++) s += x_next[i] * W[i * n + j];
            a_next[j] = s;
        }
}

/* row . delta in gemm_nt's order (four sums, j strided by 4), from the old
   weights; then the row's momentum step. Without L2 or Nesterov, in one
   pass of 4-lane vectors: lane k is sum k, and each weight is read for the
   dot before its step writes it. */
FBP_SAMPLE_INLINE FBP_REAL FBP_SUFFIX(fbp_row_dot_momentum)(FBP_REAL *restrict row,
                                                            FBP_REAL *restrict v,
                                                            const FBP_REAL *restrict g0,
                                                            const FBP_REAL *restrict delta,
                                                            ptrdiff_t n,
                                                            FBP_REAL z_i, FBP_REAL lr,
                                                            FBP_REAL mu, int look_ahead) {
    FBP_REAL s[4] = {0, 0, 0, 0};
    ptrdiff_t j = 0, k;
#ifdef FBP_MOMENTUM_VECTORS
    if (g0 == NULL && !look_ahead) {
        typedef FBP_SUFFIX(fbp_vec4) V;
        const V zero = {0};
        V sum = zero;
        for (; j + 4 <= n; j += 4) {
            V d, v_j, w;
            memcpy(&d, delta + j, sizeof d);
            memcpy(&v_j, v + j, sizeof v_j);
            memcpy(&w, row + j, sizeof w);
            sum += d * w;
            v_j = mu * v_j - lr * (zero + z_i * d);
            w = w + v_j;
            memcpy(v + j, &v_j, sizeof v_j);
            memcpy(row + j, &w, sizeof w);
        }
        for (k = 0; k < 4; k++) s[k] = sum[k];
        const ptrdiff_t tail = j;
        for (; j < n; j++) s[0] += delta[j] * row[j];
        /* the tail's steps (the whole row's, from tail on) */
        FBP_SUFFIX(fbp_row_momentum)(row + tail, v + tail, NULL, delta + tail, n - tail, z_i, lr,
                                     mu, 0);
        return (FBP_REAL)0 + ((s[0] + s[1]) + (s[2] + s[3]));
    }
#endif
    for (; j + 4 <= n; j += 4)
        for (k = 0; k < 4; k++) s[k] += delta[j + k] * row[j + k];
    for (; j < n; j++) s[0] += delta[j] * row[j];
    FBP_SUFFIX(fbp_row_momentum)(row, v, g0, delta, n, z_i, lr, mu, look_ahead);
    return (FBP_REAL)0 + ((s[0] + s[1]) + (s[2] + s[3]));
}

/* A layer of one unit: weight i is row i, so the rows' dots (when dot is
   not NULL) and momentum steps above run as one loop over i, which
   vectorises, with each weight's operations as fbp_row_dot_momentum's at
   n = 1 (its three other sums are 0). */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_column_momentum)(FBP_REAL *restrict W, FBP_REAL *restrict v,
                                                       const FBP_REAL *restrict g0,
                                                       const FBP_REAL *restrict z,
                                                       FBP_REAL *restrict dot, ptrdiff_t n_in,
                                                       FBP_REAL delta, FBP_REAL lr, FBP_REAL mu,
                                                       int look_ahead) {
    const FBP_REAL zero = 0;
    for (ptrdiff_t i = 0; i < n_in; i++) {
        FBP_REAL w = W[i];
        /* fbp_row_dot_momentum's 0 + ((s + 0) + (0 + 0)) with s = 0 + delta w:
           s is never -0, so the three outer adds return it as it is */
        if (dot != NULL) dot[i] = zero + delta * w;
        FBP_REAL g = (g0 != NULL ? g0[i] : zero) + z[i] * delta;
        FBP_REAL step = lr * g, v_i = mu * v[i] - step;
        v[i] = v_i;
        W[i] = w + (look_ahead ? mu * v_i - step : v_i);
    }
}

/* delta *= f'(a), or the dropout factors (times_factors). */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_sample_multiply_below)(const FBP_REAL *a, const FBP_REAL *z,
                                                             const FBP_REAL *factor,
                                                             FBP_REAL *delta, ptrdiff_t n,
                                                             int kind) {
    if (factor == NULL) {
        FBP_SUFFIX(fbp_multiply_derivative)(a, z, delta, n, kind);
        return;
    }
    for (ptrdiff_t i = 0; i < n; i++) delta[i] *= factor[i];
}

/* fbp_sample_momentum_epoch's body; dropout as fbp_sample_epoch_body's, wide
   as fbp_dense_in_turn's; simple: no L2 term and no look-ahead, so only the
   plain step's code is compiled (each a constant: an epoch function of its
   own). */
FBP_SAMPLE_INLINE int FBP_SUFFIX(fbp_sample_momentum_body)(const fbp_network *net,
                                                           const fbp_batches *data, double lr,
                                                           double mu, int look_ahead,
                                                           void *v_all, ptrdiff_t start,
                                                           ptrdiff_t stop, fbp_totals *totals,
                                                           const int dropout, const int wide,
                                                           const int simple) {
    const fbp_layer *layers = net->layers;
    const int n_layers = net->n_layers;
    const ptrdiff_t n_in0 = net->sizes[0], n_out = net->sizes[n_layers];
    const FBP_REAL *X = (const FBP_REAL *)data->X, *Tgt = (const FBP_REAL *)data->T;
    FBP_REAL *params = (FBP_REAL *)net->params, *work = (FBP_REAL *)net->work;
    FBP_REAL *grad = (FBP_REAL *)net->grad, *vel = (FBP_REAL *)v_all;
    const FBP_REAL lr_t = (FBP_REAL)lr, mu_t = (FBP_REAL)mu;
    const double l2 = simple ? 0 : net->l2;
    ptrdiff_t r, i;
    int l;
    FBP_REAL *a_out, *delta_a, *delta_b;
    /* whether the row's layer 0 a was summed by the step before (simple only) */
    int a0_ready = 0;
    if (simple) look_ahead = 0;
    FBP_SUFFIX(fbp_sample_setup)(net, totals, &a_out, &delta_a, &delta_b);
    for (r = start; r < stop; r++) {
        ptrdiff_t row_index = data->order ? data->order[r] : r;
        const FBP_REAL *x = X + row_index * n_in0;
        const FBP_REAL *t = Tgt + row_index * n_out;
        double J = FBP_SUFFIX(fbp_sample_forward)(net, layers, n_layers, params, work, x, t,
                                                  a_out, delta_a, n_out, 1 + wide, r, dropout,
                                                  a0_ready);
        a0_ready = 0;
        if (!isfinite(J)) return 1;
        FBP_REAL *delta = delta_a, *delta_prev = delta_b;
        double penalty = 0;
        for (l = n_layers - 1; l >= 0; l--) {
            const fbp_layer *layer = &layers[l];
            const ptrdiff_t n_in = layer->n_in, n_next = layer->n_out;
            FBP_REAL *W = params + layer->W, *b = params + layer->b;
            FBP_REAL *v_W = vel + layer->W, *v_b = vel + layer->b;
            /* the L2 term of dJ/dW and sum W^2 as backward_pass takes them */
            FBP_REAL *g0 = NULL;
            if (l2 != 0) {
                g0 = grad + layer->W;
                penalty += FBP_SUFFIX(fbp_l2_gradient)(W, g0, n_in * n_next, l2);
            }
            const FBP_REAL *z_below = (l == 0) ? x : work + layers[l - 1].z;
            const FBP_REAL *a_below = (l == 0) ? x : work + layers[l - 1].a;
            const FBP_REAL *factor = FBP_SUFFIX(fbp_sample_factors)(net, l, dropout);
            if (n_next == 1) {
                FBP_SUFFIX(fbp_column_momentum)(W, v_W, g0, z_below, l == 0 ? NULL : delta_prev,
                                                n_in, delta[0], lr_t, mu_t, look_ahead);
                if (l > 0)
                    FBP_SUFFIX(fbp_sample_multiply_below)(a_below, z_below, factor, delta_prev,
                                                          n_in, layers[l - 1].activation);
            } else if (l == 0 && simple) {
                /* the bias first: the next row's sums start from it */
                FBP_SUFFIX(fbp_row_momentum)(b, v_b, NULL, delta, n_next, (FBP_REAL)1, lr_t,
                                             mu_t, 0);
                if (r + 1 < stop) {
                    const ptrdiff_t next_index = data->order ? data->order[r + 1] : r + 1;
                    FBP_SUFFIX(fbp_rows_momentum)(W, v_W, z_below, delta, n_in, n_next, lr_t,
                                                  mu_t, 1, b, X + next_index * n_in0,
                                                  work + layer->a);
                    a0_ready = 1;
                } else {
                    FBP_SUFFIX(fbp_rows_momentum)(W, v_W, z_below, delta, n_in, n_next, lr_t,
                                                  mu_t, 0, NULL, NULL, NULL);
                }
                break;  /* layer 0, the last */
            } else if (l == 0) {
                for (i = 0; i < n_in; i++)
                    FBP_SUFFIX(fbp_row_momentum)(W + i * n_next, v_W + i * n_next,
                                                 g0 ? g0 + i * n_next : NULL, delta, n_next,
                                                 z_below[i], lr_t, mu_t, look_ahead);
            } else {
                for (i = 0; i < n_in; i++)
                    delta_prev[i] = FBP_SUFFIX(fbp_row_dot_momentum)(
                        W + i * n_next, v_W + i * n_next, g0 ? g0 + i * n_next : NULL, delta,
                        n_next, z_below[i], lr_t, mu_t, look_ahead);
                FBP_SUFFIX(fbp_sample_multiply_below)(a_below, z_below, factor, delta_prev, n_in,
                                                      layers[l - 1].activation);
            }
            /* db = 0 + delta: the bias's step with z = 1 and no L2 term */
            FBP_SUFFIX(fbp_row_momentum)(b, v_b, NULL, delta, n_next, (FBP_REAL)1, lr_t, mu_t,
                                         look_ahead);
            FBP_REAL *swap = delta; delta = delta_prev; delta_prev = swap;
        }
        totals->loss_sum += J;
        totals->penalty_sum += 0.5 * l2 * penalty;  /* FBP_NO_CONTRACT: two roundings */
        totals->rows_done += 1;
    }
    return 0;
}

/* The body at constant dropout and wide, an epoch function each: with
   dropout; and without it, on a CPU that runs the x86-64-v4 clones, the
   forward sums in 32-byte vectors (double's only; the same bits); and a
   net of a few units in the v3 code (fastbp_sample.h's FBP_CLONES_NARROW). */
#define FBP_MOMENTUM_VARIANT(name, clones, dropout, wide, simple)                            \
    clones FBP_NO_CONTRACT static int FBP_SUFFIX(name)(                                      \
        const fbp_network *net, const fbp_batches *data, double lr, double mu, int look_ahead, \
        void *v_all, ptrdiff_t start, ptrdiff_t stop, fbp_totals *totals) {                   \
        return FBP_SUFFIX(fbp_sample_momentum_body)(net, data, lr, mu, look_ahead, v_all,    \
                                                    start, stop, totals, dropout, wide,      \
                                                    simple);                                 \
    }
FBP_MOMENTUM_VARIANT(fbp_sample_momentum_dropout_epoch, FBP_CLONES, 1, 0, 0)
FBP_MOMENTUM_VARIANT(fbp_sample_momentum_wide_epoch, FBP_CLONES, 0, 1, 0)
FBP_MOMENTUM_VARIANT(fbp_sample_momentum_wide_simple_epoch, FBP_CLONES, 0, 1, 1)
FBP_MOMENTUM_VARIANT(fbp_sample_momentum_simple_epoch, FBP_CLONES, 0, 0, 1)
FBP_MOMENTUM_VARIANT(fbp_sample_momentum_narrow_epoch, FBP_CLONES_NARROW, 0, 0, 0)
#undef FBP_MOMENTUM_VARIANT

/* ---------------------------------------------------------------------------
 * Momentum (no L2 term, no look-ahead) on the nets fbp_sample_tiny takes:
 * fbp_sample_tiny_body's design, the weights AND their velocities locals
 * for the whole call, written back at its end, every loop unrolled at the
 * shape. Each value comes from the same inline code, in the same order and
 * with the same contraction (none: FBP_NO_CONTRACT), as the narrow momentum
 * epoch these nets took before (fbp_sample_momentum_body at simple 0: the
 * forward sums of fbp_dense_in_turn, the output's fbp_column_momentum and
 * the hidden layer's fbp_row_momentum, rows in turn, then each bias's), so
 * the bits are that path's (tests/test_sample_tiny_momentum.py,
 * tools/sample_tiny_momentum_harness.c). Epochs as fbp_sample_tiny_body's:
 * epoch e is positions [start + e rows, ...) with an order, else [start,
 * start + rows); data_sums NULL: one epoch, its sums in totals; else
 * data_sums[e], penalty_sums[e] (0), and an epoch that leaves a weight not
 * finite stops the call (status 2). Returns the epochs completed; status 1
 * where a row's loss was not finite (its update not applied, the rows
 * before it in the totals). */

/* The rest of a row's forward pass, out of line: the momentum body is
   compiled with contraction off, and inlined there the sigmoid's exp would
   lose the FMAs that fbp_sigmoid_rows (which the general path calls) has,
   and with them its bits. z1 = sigma(a1) (n1 units), a2 = b1 + z1 . W1 (one
   output, fbp_dense_in_turn's sum in turn; each product held in a register
   by an empty asm, so that it is rounded before its add, as with
   contraction off), returns sigma(a2). One call a row (C harness, not
   quiet, 2-2-1 ns a row: two calls of the sigmoids alone, the sum inline,
   float64 80 -> 65, float32 71 -> 60). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FBP_TINY_ROUNDED(p) __asm__("" : "+x"(p))
#else
#define FBP_TINY_ROUNDED(p) do { volatile FBP_REAL p_ = (p); (p) = p_; } while (0)
#endif
FBP_CLONES_NARROW FBP_SAMPLE_NOINLINE static FBP_REAL FBP_SUFFIX(fbp_tiny_forward_out)(
    const FBP_REAL *a1, FBP_REAL *z1, const FBP_REAL *W1, FBP_REAL b1, int n1, FBP_REAL *a2) {
    FBP_REAL s = b1;
    for (int k = 0; k < n1; k++) z1[k] = FBP_SUFFIX(fbp_tiny_sigmoid)(a1[k], n1);
    for (int k = 0; k < n1; k++) {
        FBP_REAL p = z1[k] * W1[k];
        FBP_TINY_ROUNDED(p);
        s += p;
    }
    *a2 = s;
    return FBP_SUFFIX(fbp_tiny_sigmoid)(s, 1);
}
#undef FBP_TINY_ROUNDED

FBP_SAMPLE_INLINE ptrdiff_t FBP_SUFFIX(fbp_sample_momentum_tiny_body)(
    const fbp_network *net, const fbp_batches *data, double lr, double mu, void *v_all,
    ptrdiff_t start, ptrdiff_t rows, ptrdiff_t n_epochs, double *data_sums,
    double *penalty_sums, fbp_totals *totals, int *status, const int n0, const int n1) {
    FBP_REAL *params = (FBP_REAL *)net->params, *vel = (FBP_REAL *)v_all;
    const FBP_REAL *X = (const FBP_REAL *)data->X, *Tgt = (const FBP_REAL *)data->T;
    const ptrdiff_t *order = data->order;
    const FBP_REAL lr_t = (FBP_REAL)lr, mu_t = (FBP_REAL)mu;
    FBP_REAL W0[FBP_TINY_MAX * FBP_TINY_MAX], b0[FBP_TINY_MAX], W1[FBP_TINY_MAX], b1[1];
    FBP_REAL vW0[FBP_TINY_MAX * FBP_TINY_MAX], vb0[FBP_TINY_MAX], vW1[FBP_TINY_MAX], vb1[1];
    ptrdiff_t e, r, i;
    FBP_SUFFIX(fbp_tiny_load)(net, params, W0, b0, W1, b1, n0, n1, 1);
    FBP_SUFFIX(fbp_tiny_load)(net, vel, vW0, vb0, vW1, vb1, n0, n1, 1);
    *status = 0;
    totals->loss_sum = 0;
    totals->penalty_sum = 0;
    totals->rows_done = 0;
    FBP_TINY_COUNT_RUN();
    for (e = 0; e < n_epochs; e++) {
        const ptrdiff_t first = order != NULL ? start + e * rows : start;
        double loss_sum = 0;
        ptrdiff_t done = 0;
        for (r = first; r < first + rows; r++) {
            const ptrdiff_t row = order != NULL ? order[r] : r;
            const FBP_REAL *x = X + row * n0, *t = Tgt + row;
            FBP_REAL a1[FBP_TINY_MAX], z1[FBP_TINY_MAX], a2[1], z2[1];
            FBP_REAL delta2[1], delta1[FBP_TINY_MAX];
            FBP_SUFFIX(fbp_dense_in_turn)(a1, b0, x, W0, n0, n1, 0, 0, n1);
            z2[0] = FBP_SUFFIX(fbp_tiny_forward_out)(a1, z1, W1, b1[0], n1, a2);
            const double J = FBP_SUFFIX(fbp_loss_mse)(a2, z2, t, delta2, 1, FBP_SIGMOID, 1.0,
                                                      net->loss_param);
            if (!isfinite(J)) {
                *status = 1;
                totals->loss_sum = loss_sum;
                totals->rows_done = done;
                goto stop;
            }
            /* the output layer: its column's dots and steps, delta1, its bias */
            FBP_SUFFIX(fbp_column_momentum)(W1, vW1, NULL, z1, delta1, n1, delta2[0], lr_t, mu_t,
                                            0);
            FBP_SUFFIX(fbp_sample_multiply_below)(a1, z1, NULL, delta1, n1, FBP_SIGMOID);
            FBP_SUFFIX(fbp_row_momentum)(b1, vb1, NULL, delta2, 1, (FBP_REAL)1, lr_t, mu_t, 0);
            /* the hidden layer */
            if (n1 == 1)
                FBP_SUFFIX(fbp_column_momentum)(W0, vW0, NULL, x, NULL, n0, delta1[0], lr_t,
                                                mu_t, 0);
            else
                for (i = 0; i < n0; i++)
                    FBP_SUFFIX(fbp_row_momentum)(W0 + i * n1, vW0 + i * n1, NULL, delta1, n1,
                                                 x[i], lr_t, mu_t, 0);
            FBP_SUFFIX(fbp_row_momentum)(b0, vb0, NULL, delta1, n1, (FBP_REAL)1, lr_t, mu_t, 0);
            loss_sum += J;
            done += 1;
        }
        if (data_sums == NULL) {
            totals->loss_sum = loss_sum;
            totals->rows_done = done;
            continue;
        }
        if (FBP_SUFFIX(fbp_tiny_nonfinite)(W0, b0, W1, b1, n0, n1, 1)) {
            *status = 2;
            break;
        }
        data_sums[e] = loss_sum;
        penalty_sums[e] = 0;
    }
stop:
    FBP_SUFFIX(fbp_tiny_store)(net, params, W0, b0, W1, b1, n0, n1, 1);
    FBP_SUFFIX(fbp_tiny_store)(net, vel, vW0, vb0, vW1, vb1, n0, n1, 1);
    return e;
}

/* The body at one shape, a function of its own, in the narrow momentum
   epoch's clones and contraction. */
#define FBP_TINY_SHAPE(n0, n1)                                                              \
    FBP_CLONES_NARROW FBP_NO_CONTRACT static ptrdiff_t FBP_SUFFIX(                           \
        fbp_sample_momentum_tiny_##n0##_##n1)(                                              \
        const fbp_network *net, const fbp_batches *data, double lr, double mu, void *v_all,  \
        ptrdiff_t start, ptrdiff_t rows, ptrdiff_t n_epochs, double *data_sums,              \
        double *penalty_sums, fbp_totals *totals, int *status) {                             \
        return FBP_SUFFIX(fbp_sample_momentum_tiny_body)(net, data, lr, mu, v_all, start,    \
                                                         rows, n_epochs, data_sums,          \
                                                         penalty_sums, totals, status, n0,   \
                                                         n1);                                \
    }
#define FBP_TINY_ROW(n0) \
    FBP_TINY_SHAPE(n0, 1) FBP_TINY_SHAPE(n0, 2) FBP_TINY_SHAPE(n0, 3) FBP_TINY_SHAPE(n0, 4)
FBP_TINY_ROW(1)
FBP_TINY_ROW(2)
FBP_TINY_ROW(3)
FBP_TINY_ROW(4)
#undef FBP_TINY_ROW
#undef FBP_TINY_SHAPE

typedef ptrdiff_t (*FBP_SUFFIX(fbp_momentum_tiny_epochs))(
    const fbp_network *, const fbp_batches *, double, double, void *, ptrdiff_t, ptrdiff_t,
    ptrdiff_t, double *, double *, fbp_totals *, int *);

/* The tiny momentum epochs of net's shape, or NULL: the nets fbp_sample_tiny
   takes, without look-ahead. */
static inline FBP_SUFFIX(fbp_momentum_tiny_epochs) FBP_SUFFIX(fbp_sample_momentum_tiny)(
    const fbp_network *net, int look_ahead) {
#define FBP_TINY_CASE(n0, n1)                                                               \
    case (n0 - 1) * FBP_TINY_MAX + n1 - 1:                                                  \
        return FBP_SUFFIX(fbp_sample_momentum_tiny_##n0##_##n1);
#define FBP_TINY_ROW(n0) \
    FBP_TINY_CASE(n0, 1) FBP_TINY_CASE(n0, 2) FBP_TINY_CASE(n0, 3) FBP_TINY_CASE(n0, 4)
    if (look_ahead || FBP_SUFFIX(fbp_sample_tiny)(net) == NULL)
        return NULL;
    switch ((net->sizes[0] - 1) * FBP_TINY_MAX + net->sizes[1] - 1) {
        FBP_TINY_ROW(1) FBP_TINY_ROW(2) FBP_TINY_ROW(3) FBP_TINY_ROW(4)
    }
#undef FBP_TINY_ROW
#undef FBP_TINY_CASE
    return NULL;
}

/* Many epochs of per-sample momentum in one call, for a net the tiny
 * momentum epochs take (else -1, nothing trained: the caller takes the
 * epochs one by one): epoch e is positions [e rows, (e + 1) rows) with an
 * order, else rows [0, rows); its J sums to data_sums[e], penalty_sums[e],
 * as training.pxi's train_epochs_kernel writes them. Returns the epochs
 * completed, with status 1 (a row's loss not finite, its update not
 * applied) or 2 (non-finite params after the epoch), that epoch not
 * counted. XOR's epoch is 4 rows: the way to each epoch through
 * train_rows_kernel cost about as much as a row. */
static ptrdiff_t FBP_SUFFIX(fbp_sample_momentum_epochs)(const fbp_network *net,
                                                        const fbp_batches *data, double lr,
                                                        double mu, int look_ahead, void *v_all,
                                                        ptrdiff_t n_epochs, ptrdiff_t rows,
                                                        double *data_sums, double *penalty_sums,
                                                        int *status) {
    fbp_totals totals;
    *status = 0;
    if (fbp_sample_team_takes(net, 0) || net->drop_factors != NULL)
        return -1;
    FBP_SUFFIX(fbp_momentum_tiny_epochs) tiny = FBP_SUFFIX(fbp_sample_momentum_tiny)(net,
                                                                                   look_ahead);
    if (tiny == NULL)
        return -1;
    return tiny(net, data, lr, mu, v_all, 0, rows, n_epochs, data_sums, penalty_sums, &totals,
                status);
}

/* One call: SGD with momentum mu (Nesterov's if look_ahead) on positions
 * [start, stop) of the batch source, one row at a time (data->batch_size is
 * 1, no sample weights), with the network's dropout if it has any, on the
 * team where it takes the network; v_all is params-shaped. Returns 0, or 1
 * when a row's loss is not finite (its update is not applied). */
FBP_CLONES FBP_NO_CONTRACT
static int FBP_SUFFIX(fbp_sample_momentum_epoch)(const fbp_network *net, const fbp_batches *data,
                                                 double lr, double mu, int look_ahead,
                                                 void *v_all, ptrdiff_t start, ptrdiff_t stop,
                                                 fbp_totals *totals) {
    if (fbp_sample_team_takes(net, 0))
        return FBP_SUFFIX(fbp_sample_team_epoch)(net, data, 0, lr, mu, look_ahead, v_all, start,
                                                 stop, totals);
    if (net->drop_factors != NULL)
        return FBP_SUFFIX(fbp_sample_momentum_dropout_epoch)(net, data, lr, mu, look_ahead,
                                                             v_all, start, stop, totals);
    FBP_SUFFIX(fbp_momentum_tiny_epochs) tiny = FBP_SUFFIX(fbp_sample_momentum_tiny)(net,
                                                                                   look_ahead);
    if (tiny != NULL) {
        int status;
        tiny(net, data, lr, mu, v_all, start, stop - start, 1, NULL, NULL, totals, &status);
        return status;
    }
    if (fbp_sample_narrow(net))
        return FBP_SUFFIX(fbp_sample_momentum_narrow_epoch)(net, data, lr, mu, look_ahead, v_all,
                                                            start, stop, totals);
    const int simple = net->l2 == 0 && !look_ahead;
    if (sizeof(FBP_REAL) == 8 && fbp_sample_wide())
        return simple ? FBP_SUFFIX(fbp_sample_momentum_wide_simple_epoch)(
                            net, data, lr, mu, look_ahead, v_all, start, stop, totals)
                      : FBP_SUFFIX(fbp_sample_momentum_wide_epoch)(
                            net, data, lr, mu, look_ahead, v_all, start, stop, totals);
    if (simple)
        return FBP_SUFFIX(fbp_sample_momentum_simple_epoch)(net, data, lr, mu, look_ahead,
                                                            v_all, start, stop, totals);
    return FBP_SUFFIX(fbp_sample_momentum_body)(net, data, lr, mu, look_ahead, v_all, start,
                                                stop, totals, 0, 0, 0);
}
