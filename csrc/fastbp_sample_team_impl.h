/* Template of fastbp_sample.h's team for one scalar type; no include guard:
 * included once per FBP_REAL / FBP_SUFFIX, after fastbp_sample_impl.h, whose
 * loops it runs on shares of each row's work:
 * - forward: each layer's outputs, in whole blocks of the single-thread
 *   loop's (fbp_dense_cols' FBP_BLOCK, fbp_dense_in_turn's 256 bytes), the
 *   rest to the last thread; z = f(a) on the same outputs (the output
 *   layer's f, row-wise for softmax, with the output delta on thread 0);
 * - backward: each W's rows, which are the units of the layer below: the
 *   row's dot with delta, delta below through f', and the row's step in one
 *   pass, as on one thread; the bias's step by its units.
 * Every output, delta and weight is computed by one thread with the loop
 * one thread runs, so the bits do not depend on the split. A barrier ends
 * each layer (its z or delta is the next one's input; the next delta
 * overwrites the one before last). */

/* Thread ``index``'s part of a team's epoch; plain and wide are constants
   (a part function of their own each). */
FBP_SAMPLE_INLINE void FBP_SUFFIX(fbp_sample_team_body)(fbp_sample_team *team, const int index,
                                                        const int plain, const int wide) {
    const fbp_network *net = team->net;
    const fbp_batches *data = team->data;
    const fbp_layer *layers = net->layers;
    const int n_layers = net->n_layers, n = team->n_threads;
    const ptrdiff_t n_in0 = net->sizes[0], n_out = net->sizes[n_layers];
    const FBP_REAL *X = (const FBP_REAL *)data->X, *Tgt = (const FBP_REAL *)data->T;
    FBP_REAL *params = (FBP_REAL *)net->params, *work = (FBP_REAL *)net->work;
    FBP_REAL *vel = (FBP_REAL *)team->v_all;
    const FBP_REAL lr_t = (FBP_REAL)team->lr, mu_t = (FBP_REAL)team->mu;
    const FBP_REAL l2_t = (FBP_REAL)net->l2;
    const int look_ahead = team->look_ahead;
    /* the forward's shares: whole blocks of the loop one thread runs */
    const ptrdiff_t block = plain ? FBP_BLOCK : (ptrdiff_t)(256 / sizeof(FBP_REAL));
    const fbp_layer *last = &layers[n_layers - 1];
    FBP_REAL *a_out, *delta_a, *delta_b;
    fbp_totals unused;  /* thread 0 counts in team->totals */
    FBP_REAL *step = FBP_SUFFIX(fbp_sample_setup)(net, &unused, &a_out, &delta_a, &delta_b);
    ptrdiff_t r, i, j;
    int l;
    if (index > 0)
        step = (FBP_REAL *)team->steps + (index - 1) * team->max_w;
    for (r = team->start; r < team->stop; r++) {
        const ptrdiff_t row_index = data->order ? data->order[r] : r;
        const FBP_REAL *x = X + row_index * n_in0, *t = Tgt + row_index * n_out;
        const FBP_REAL *z_prev = x;
        for (l = 0; l < n_layers; l++) {
            const fbp_layer *layer = &layers[l];
            const ptrdiff_t width = layer->n_out;
            const ptrdiff_t c0 = fbp_sample_share(width, block, index, n);
            const ptrdiff_t c1 = fbp_sample_share(width, block, index + 1, n);
            FBP_REAL *a = work + layer->a;
            if (c0 < c1) {
                if (plain)
                    FBP_SUFFIX(fbp_dense_cols)(a, params + layer->b, z_prev, params + layer->W,
                                               layer->n_in, width, c0, c1);
                else
                    FBP_SUFFIX(fbp_dense_in_turn)(a, params + layer->b, z_prev,
                                                  params + layer->W, layer->n_in, width, wide,
                                                  c0, c1);
                if (layer != last)
                    FBP_SUFFIX(fbp_activate_rows)(a + c0, work + layer->z + c0, 1, c1 - c0,
                                                  layer->activation);
            }
            fbp_barrier_wait(&team->barrier);
            z_prev = work + layer->z;
        }
        if (index == 0) {
            FBP_SUFFIX(fbp_activate_rows)(a_out, work + last->z, 1, n_out, last->activation);
            team->J = FBP_SUFFIX(fbp_output_delta_row)(a_out, work + last->z, t, delta_a, n_out,
                                                       net->loss, last->activation, 1.0,
                                                       net->loss_param);
        }
        fbp_barrier_wait(&team->barrier);
        if (!isfinite(team->J)) {
            if (index == 0)
                team->status = 1;
            return;
        }
        FBP_REAL *delta = delta_a, *delta_prev = delta_b;
        double penalty = 0;
        ptrdiff_t squared = 0;  /* rows of the layers above, in team->squares */
        for (l = n_layers - 1; l >= 0; l--) {
            const fbp_layer *layer = &layers[l];
            const ptrdiff_t n_in = layer->n_in, n_next = layer->n_out;
            const ptrdiff_t i0 = fbp_sample_share(n_in, 1, index, n);
            const ptrdiff_t i1 = fbp_sample_share(n_in, 1, index + 1, n);
            const ptrdiff_t j0 = fbp_sample_share(n_next, 1, index, n);
            const ptrdiff_t j1 = fbp_sample_share(n_next, 1, index + 1, n);
            FBP_REAL *W = params + layer->W, *b = params + layer->b;
            const FBP_REAL *z_below = (l == 0) ? x : work + layers[l - 1].z;
            const FBP_REAL *a_below = (l == 0) ? x : work + layers[l - 1].a;
            const int below = (l == 0) ? 0 : layers[l - 1].activation;
            if (plain) {
                if (net->l2 != 0) {
                    for (i = i0; i < i1; i++) {
                        double square = FBP_SUFFIX(fbp_row_square)(W + i * n_next, n_next);
                        if (team->squares != NULL)
                            team->squares[squared + i] = square;
                        else
                            penalty += square;
                    }
                    squared += n_in;
                }
                if (net->l2 == 0) {
                    for (j = 0; j < n_next; j++) step[j] = lr_t * delta[j];
                    if (l == 0) {
                        for (i = i0; i < i1; i++) {
                            FBP_REAL *row = W + i * n_next;
                            const FBP_REAL z_i = z_below[i];
                            for (j = 0; j < n_next; j++) row[j] -= z_i * step[j];
                        }
                    } else {
                        for (i = i0; i < i1; i++)
                            delta_prev[i] = FBP_SUFFIX(fbp_sample_below)(
                                FBP_SUFFIX(fbp_row_dot_step)(W + i * n_next, delta, step, n_next,
                                                             z_below[i]),
                                a_below[i], z_below[i], NULL, i, below);
                    }
                    for (j = j0; j < j1; j++) b[j] -= step[j];
                } else {
                    for (i = i0; i < i1; i++) {
                        if (l == 0)
                            FBP_SUFFIX(fbp_row_update)(W + i * n_next, delta, n_next, lr_t,
                                                       z_below[i], l2_t);
                        else
                            delta_prev[i] = FBP_SUFFIX(fbp_sample_below)(
                                FBP_SUFFIX(fbp_row_dot_update)(W + i * n_next, delta, n_next,
                                                               lr_t, z_below[i], l2_t),
                                a_below[i], z_below[i], NULL, i, below);
                    }
                    for (j = j0; j < j1; j++) b[j] -= lr_t * delta[j];
                }
            } else {
                FBP_REAL *v_W = vel + layer->W, *v_b = vel + layer->b;
                if (n_next == 1) {
                    FBP_SUFFIX(fbp_column_momentum)(W + i0, v_W + i0, NULL, z_below + i0,
                                                    l == 0 ? NULL : delta_prev + i0, i1 - i0,
                                                    delta[0], lr_t, mu_t, look_ahead);
                } else {
                    for (i = i0; i < i1; i++) {
                        if (l == 0)
                            FBP_SUFFIX(fbp_row_momentum)(W + i * n_next, v_W + i * n_next, NULL,
                                                         delta, n_next, z_below[i], lr_t, mu_t,
                                                         look_ahead);
                        else
                            delta_prev[i] = FBP_SUFFIX(fbp_row_dot_momentum)(
                                W + i * n_next, v_W + i * n_next, NULL, delta, n_next,
                                z_below[i], lr_t, mu_t, look_ahead);
                    }
                }
                if (l > 0)
                    FBP_SUFFIX(fbp_sample_multiply_below)(a_below + i0, z_below + i0, NULL,
                                                          delta_prev + i0, i1 - i0, below);
                FBP_SUFFIX(fbp_row_momentum)(b + j0, v_b + j0, NULL, delta + j0, j1 - j0,
                                             (FBP_REAL)1, lr_t, mu_t, look_ahead);
            }
            fbp_barrier_wait(&team->barrier);
            FBP_REAL *swap = delta; delta = delta_prev; delta_prev = swap;
        }
        if (index == 0) {
            if (team->squares != NULL)
                for (i = 0; i < squared; i++) penalty += team->squares[i];
            team->totals.loss_sum += team->J;
            fbp_sample_add_penalty(&team->totals, net->l2, penalty);
            team->totals.rows_done += 1;
        }
    }
}

/* The part functions, compiled per instruction set as the single-thread
   epochs are (and plain SGD's with contraction to FMA, momentum's without,
   as theirs), so each thread runs the clone one thread would. */
FBP_CLONES
static void FBP_SUFFIX(fbp_sample_team_plain)(fbp_sample_team *team, int index) {
    FBP_SUFFIX(fbp_sample_team_body)(team, index, 1, 0);
}

FBP_CLONES FBP_NO_CONTRACT
static void FBP_SUFFIX(fbp_sample_team_turn)(fbp_sample_team *team, int index) {
    FBP_SUFFIX(fbp_sample_team_body)(team, index, 0, 0);
}

FBP_CLONES FBP_NO_CONTRACT
static void FBP_SUFFIX(fbp_sample_team_turn_wide)(fbp_sample_team *team, int index) {
    FBP_SUFFIX(fbp_sample_team_body)(team, index, 0, 1);
}

static void FBP_SUFFIX(fbp_sample_team_part)(void *job, int index) {
    fbp_sample_team *team = (fbp_sample_team *)job;
    if (team->plain)
        FBP_SUFFIX(fbp_sample_team_plain)(team, index);
    else if (team->wide)
        FBP_SUFFIX(fbp_sample_team_turn_wide)(team, index);
    else
        FBP_SUFFIX(fbp_sample_team_turn)(team, index);
}

/* fbp_sample_epoch's (plain) or fbp_sample_momentum_epoch's contract, on
   net->n_threads threads started for the call; on one where they cannot
   be started or their buffers allocated (the same bits). */
static int FBP_SUFFIX(fbp_sample_team_epoch)(const fbp_network *net, const fbp_batches *data,
                                             int plain, double lr, double mu, int look_ahead,
                                             void *v_all, ptrdiff_t start, ptrdiff_t stop,
                                             fbp_totals *totals) {
    fbp_sample_team team;
    int l, n = net->n_threads < FBP_MAX_THREADS ? net->n_threads : FBP_MAX_THREADS;
    memset(&team, 0, sizeof team);
    team.net = net;
    team.data = data;
    team.plain = plain;
    team.lr = lr;
    team.mu = mu;
    team.look_ahead = look_ahead;
    team.v_all = v_all;
    team.wide = sizeof(FBP_REAL) == 8 && !plain && fbp_sample_wide();
    team.start = start;
    team.stop = stop;
    for (l = 0; l <= net->n_layers; l++)
        if (net->sizes[l] > team.max_w) team.max_w = net->sizes[l];
    for (l = 0; l < net->n_layers; l++) team.n_rows += net->sizes[l];
    team.steps = malloc((size_t)(n - 1) * (size_t)team.max_w * sizeof(FBP_REAL));
    if (plain && net->l2 != 0)
        team.squares = (double *)malloc((size_t)team.n_rows * sizeof(double));
    if (team.steps == NULL || (plain && net->l2 != 0 && team.squares == NULL))
        n = 1;
    team.n_threads = n;
    fbp_barrier_init(&team.barrier, n);
    if (n > 1 && fbp_run_threads(n, FBP_SUFFIX(fbp_sample_team_part), &team) == 0) {
        __atomic_fetch_add(&fbp_sample_team_runs, 1, __ATOMIC_RELAXED);
    } else {
        free(team.squares);  /* one thread adds its row sums in turn */
        team.squares = NULL;
        team.n_threads = 1;
        fbp_barrier_init(&team.barrier, 1);
        FBP_SUFFIX(fbp_sample_team_part)(&team, 0);
    }
    free(team.steps);
    free(team.squares);
    *totals = team.totals;
    return team.status;
}
