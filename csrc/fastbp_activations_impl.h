/* Template of fastbp_activations.h for one scalar type; no include guard:
 * included once per FBP_REAL / FBP_SUFFIX. Codes: fastbp_codes.h. */

/* z = f(a) for m rows of n; z may alias a. */
static inline void FBP_SUFFIX(fbp_activate_rows)(const FBP_REAL *a, FBP_REAL *z, ptrdiff_t m,
                                                 ptrdiff_t n, int kind) {
    ptrdiff_t i, r, size = m * n;
    if (kind == FBP_SIGMOID) {
        FBP_SUFFIX(fbp_sigmoid_rows)(a, z, size);  /* vectorised, fastbp_math.h */
    } else if (kind == FBP_TANH) {
        for (i = 0; i < size; i++) z[i] = (FBP_REAL)tanh((double)a[i]);
    } else if (kind == FBP_RELU) {
        for (i = 0; i < size; i++) z[i] = a[i] > 0 ? a[i] : 0;
    } else if (kind == FBP_SOFTMAX) {
        for (r = 0; r < m; r++) {
            /* subtract the row max so exp never overflows */
            const FBP_REAL *a_row = a + r * n;
            FBP_REAL *z_row = z + r * n;
            FBP_REAL top = a_row[0];
            double total;
            for (i = 1; i < n; i++) if (a_row[i] > top) top = a_row[i];
            total = FBP_SUFFIX(fbp_exp_shifted)(a_row, z_row, n, top);
            for (i = 0; i < n; i++) z_row[i] = (FBP_REAL)(z_row[i] / total);
        }
    } else if (z != a) {
        memcpy(z, a, (size_t)size * sizeof(FBP_REAL));
    }
}

/* delta * f'(a), with f' written through the output z = f(a) as in the notes
 * (not for softmax, whose Jacobian is not diagonal). */
static inline FBP_REAL FBP_SUFFIX(fbp_times_derivative)(FBP_REAL delta, FBP_REAL z, int kind) {
    if (kind == FBP_SIGMOID) return delta * (z * (1 - z));
    if (kind == FBP_TANH) return delta * (1 - z * z);
    if (kind == FBP_RELU) return z > 0 ? delta : 0;
    return delta;
}

/* delta *= f'(a) over a block; the kind is fixed per loop so each one
 * vectorises. */
static inline void FBP_SUFFIX(fbp_multiply_derivative)(const FBP_REAL *z, FBP_REAL *delta,
                                                       ptrdiff_t size, int kind) {
    ptrdiff_t i;
    if (kind == FBP_SIGMOID) {
        for (i = 0; i < size; i++)
            delta[i] = FBP_SUFFIX(fbp_times_derivative)(delta[i], z[i], FBP_SIGMOID);
    } else if (kind == FBP_TANH) {
        for (i = 0; i < size; i++)
            delta[i] = FBP_SUFFIX(fbp_times_derivative)(delta[i], z[i], FBP_TANH);
    } else if (kind == FBP_RELU) {
        for (i = 0; i < size; i++)
            delta[i] = FBP_SUFFIX(fbp_times_derivative)(delta[i], z[i], FBP_RELU);
    }
}

/* The output delta dJ/da of one row, scaled by ``scale`` (the row's weight
 * over the batch's), and the row's loss, unscaled. a is the output layer's
 * pre-activation, z = f(a) its output, t the target; kind is f's code. */
static inline double FBP_SUFFIX(fbp_output_delta_row)(const FBP_REAL *a, const FBP_REAL *z,
                                                      const FBP_REAL *t, FBP_REAL *delta,
                                                      ptrdiff_t n, int loss, int kind,
                                                      double scale) {
    ptrdiff_t k;
    double total = 0;
    if (loss == FBP_MSE) {
        /* 1/2 ||z - t||^2; dJ/dz = (z - t) */
        for (k = 0; k < n; k++) {
            double diff = (double)z[k] - (double)t[k];
            total += diff * diff;
            delta[k] = (FBP_REAL)(diff * scale);
        }
        if (kind == FBP_SOFTMAX) {
            /* softmax's Jacobian: delta_k = p_k (g_k - sum_j p_j g_j) */
            double weighted = 0;
            for (k = 0; k < n; k++) weighted += (double)z[k] * delta[k];
            for (k = 0; k < n; k++) delta[k] = (FBP_REAL)(z[k] * (delta[k] - weighted));
        } else {
            FBP_SUFFIX(fbp_multiply_derivative)(z, delta, n, kind);
        }
        return 0.5 * total;
    }
    if (loss == FBP_BCE) {
        /* -[t log s(a) + (1-t) log(1-s(a))] = softplus(a) - t a, stable in a */
        for (k = 0; k < n; k++) {
            total += fbp_softplus((double)a[k]) - (double)t[k] * a[k];
            delta[k] = (FBP_REAL)(((double)z[k] - (double)t[k]) * scale);
        }
        return total;
    }
    if (loss == FBP_POISSON) {
        /* half Poisson deviance of the mean exp(a), a the identity output:
         * t log(t / exp(a)) - t + exp(a), with 0 log 0 = 0 (scikit-learn's
         * poisson_loss); dJ/da = exp(a) - t */
        for (k = 0; k < n; k++) {
            double mean = exp((double)a[k]), target = (double)t[k];
            total += (target > 0 ? target * (log(target) - (double)a[k]) : 0) - target + mean;
            delta[k] = (FBP_REAL)((mean - target) * scale);
        }
        return total;
    }
    {
        /* FBP_CROSS_ENTROPY with softmax outputs: -sum t log softmax(a),
         * through log-sum-exp */
        double top = a[0], lse = 0;
        for (k = 1; k < n; k++) if (a[k] > top) top = a[k];
        for (k = 0; k < n; k++) lse += exp((double)a[k] - top);
        lse = top + log(lse);
        for (k = 0; k < n; k++) {
            if (t[k] != 0) total += (double)t[k] * (lse - a[k]);
            delta[k] = (FBP_REAL)(((double)z[k] - (double)t[k]) * scale);
        }
        return total;
    }
}
