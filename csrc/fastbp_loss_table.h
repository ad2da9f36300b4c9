/* The losses: one row each, the only list of them.
 *
 *   X(CODE, name, OUTPUT, PARAM)
 *     CODE    the enum's FBP_<CODE>; its place in the list is its code (from 0)
 *     name    as Python spells it (fastbp.LOSSES)
 *     OUTPUT  the output activation its delta is written for (an fbp_activation code),
 *             or FBP_ANY_OUTPUT: the loss gives dJ/dz and the chain rule goes
 *             through the output's f (fbp_times_output_derivative)
 *     PARAM   the default of the loss's one parameter, fbp_network's loss_param
 *             (huber's delta, cross_entropy's label smoothing; 0 for a loss that
 *             ignores it); fastbp/losses.py checks a user's value
 *
 * From the list, fastbp_codes.h makes enum fbp_loss and the names and pairings Python
 * reads (_kernels.loss_table(): the only statement of which loss needs which output),
 * and fastbp_activations_impl.h the switch of fbp_output_delta_row.
 *
 * A row's function follows, per scalar type (FBP_REAL, FBP_SUFFIX): this part is
 * compiled when fastbp_activations_impl.h includes the file with FBP_TABLE_ROWS set.
 *   FBP_LOSS_ROW(name): double fbp_loss_<name>(a, z, t, delta, n, kind, scale, param)
 *     one row of n: a the output layer's pre-activation, z = f(a) its output (f's
 *     code is kind), t the target, param the loss's parameter; writes delta =
 *     dJ/da times scale and returns the row's loss, unscaled.
 */
#ifndef FASTBP_LOSS_TABLE_H
#define FASTBP_LOSS_TABLE_H

#define FBP_ANY_OUTPUT (-1)

#define FBP_LOSS_TABLE(X)                               \
    X(MSE, mse, FBP_ANY_OUTPUT, 0.0)                    \
    X(BCE, bce, FBP_SIGMOID, 0.0)                       \
    X(CROSS_ENTROPY, cross_entropy, FBP_SOFTMAX, 0.0)   \
    X(POISSON, poisson, FBP_IDENTITY, 0.0)              \
    X(HUBER, huber, FBP_IDENTITY, 1.0)                  \
    X(ABSOLUTE_ERROR, absolute_error, FBP_IDENTITY, 0.0)

#endif

#ifdef FBP_TABLE_ROWS

#define FBP_LOSS_ROW(name)                                                               \
    FBP_ROW_INLINE double FBP_SUFFIX(fbp_loss_##name)(const FBP_REAL *a, const FBP_REAL *z, \
                                                     const FBP_REAL *t, FBP_REAL *delta,    \
                                                     ptrdiff_t n, int kind, double scale,   \
                                                     double param)

/* 1/2 ||z - t||^2; dJ/dz = (z - t), then through f */
FBP_LOSS_ROW(mse) {
    ptrdiff_t k;
    double total = 0;
    for (k = 0; k < n; k++) {
        double diff = (double)z[k] - (double)t[k];
        total += diff * diff;
        delta[k] = (FBP_REAL)(diff * scale);
    }
    FBP_SUFFIX(fbp_times_output_derivative)(a, z, delta, n, kind);
    return 0.5 * total;
}

/* -[t log s(a) + (1-t) log(1-s(a))] = softplus(a) - t a, stable in a; with sigmoid
 * outputs dJ/da = z - t */
FBP_LOSS_ROW(bce) {
    ptrdiff_t k;
    double total = 0;
    for (k = 0; k < n; k++) {
        total += fbp_softplus((double)a[k]) - (double)t[k] * a[k];
        delta[k] = (FBP_REAL)(((double)z[k] - (double)t[k]) * scale);
    }
    return total;
}

/* -sum t' log softmax(a), through log-sum-exp, with the targets smoothed by
 * param = eps: t' = (1 - eps) t + eps/n (eps = 0: t' = t exactly, the same
 * bits); with softmax outputs dJ/da = z - t' */
FBP_LOSS_ROW(cross_entropy) {
    ptrdiff_t k;
    double total = 0, top = a[0], lse = 0, keep = 1 - param, spread = param / n;
    for (k = 1; k < n; k++) if (a[k] > top) top = a[k];
    for (k = 0; k < n; k++) lse += exp((double)a[k] - top);
    lse = top + log(lse);
    for (k = 0; k < n; k++) {
        double target = keep * (double)t[k] + spread;
        if (target != 0) total += target * (lse - a[k]);
        delta[k] = (FBP_REAL)(((double)z[k] - target) * scale);
    }
    return total;
}

/* half Poisson deviance of the mean exp(a), a the identity output:
 * t log(t / exp(a)) - t + exp(a), with 0 log 0 = 0 (scikit-learn's poisson_loss);
 * dJ/da = exp(a) - t */
FBP_LOSS_ROW(poisson) {
    ptrdiff_t k;
    double total = 0;
    for (k = 0; k < n; k++) {
        double mean = exp((double)a[k]), target = (double)t[k];
        total += (target > 0 ? target * (log(target) - (double)a[k]) : 0) - target + mean;
        delta[k] = (FBP_REAL)((mean - target) * scale);
    }
    return total;
}

/* Huber's loss of r = z - t, delta = param > 0, z the identity output:
 * r^2/2 where |r| < delta, else delta (|r| - delta/2); dJ/da = r clipped to
 * [-delta, delta] (torch.nn.HuberLoss's terms, summed over the row) */
FBP_LOSS_ROW(huber) {
    ptrdiff_t k;
    double total = 0;
    for (k = 0; k < n; k++) {
        double r = (double)z[k] - (double)t[k], size = fabs(r);
        if (size < param) {
            total += 0.5 * r * r;
        } else {
            total += param * (size - 0.5 * param);
            r = r > 0 ? param : -param;
        }
        delta[k] = (FBP_REAL)(r * scale);
    }
    return total;
}

/* |z - t|, z the identity output; dJ/da = sign(z - t), 0 where z = t (as
 * torch.nn.L1Loss's subgradient) */
FBP_LOSS_ROW(absolute_error) {
    ptrdiff_t k;
    double total = 0;
    for (k = 0; k < n; k++) {
        double r = (double)z[k] - (double)t[k];
        total += fabs(r);
        delta[k] = (FBP_REAL)((r > 0 ? scale : r < 0 ? -scale : 0.0));
    }
    return total;
}

#undef FBP_LOSS_ROW
#endif
