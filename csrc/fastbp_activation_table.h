/* The activations: one row each, the only list of them.
 *
 *   X(CODE, name, SHAPE, F_PRIME)
 *     CODE     the enum's FBP_<CODE>; its place in the list is its code (from 0)
 *     name     as Python spells it (fastbp.ACTIVATIONS)
 *     SHAPE    ELEMENTWISE: z_k = f(a_k), so f' is diagonal and a hidden layer may use it;
 *              ROWWISE: z = f(a) of a whole row (softmax), an output only
 *     F_PRIME  Z: f' is written through the output z = f(a), which every pass keeps;
 *              A: through the pre-activation a, for an f whose z does not tell a
 *              (GELU and SiLU dip and come back, softplus with PyTorch's threshold
 *              steps down at 20: two a give one z); a layer with such an f keeps
 *              its a beside its z (fbp_layers_init)
 *
 * From the list, fastbp_codes.h makes enum fbp_activation and the names Python reads
 * (_kernels.activation_table()), and fastbp_activations_impl.h the switch of each
 * kernel, outside its loop over the elements.
 *
 * A row's functions follow, per scalar type (FBP_REAL, FBP_SUFFIX): this part is
 * compiled when fastbp_activations_impl.h includes the file with FBP_TABLE_ROWS set.
 *   FBP_ACTIVATE_ROW(name): fbp_activate_<name>(a, z, m, n)
 *       z = f(a) for m rows of n; z may alias a
 *   ELEMENTWISE and Z, FBP_DERIVATIVE_ROW(name): fbp_times_derivative_<name>(delta, z)
 *       delta * f'(a), with f' written through z = f(a)
 *   ELEMENTWISE and A, FBP_DERIVATIVE_OF_A_ROW(name): fbp_times_derivative_<name>(delta, a)
 *       delta * f'(a), from a
 *   ROWWISE, FBP_JACOBIAN_ROW(name): fbp_times_jacobian_<name>(z, delta, n)
 *       delta = J_f^T delta over one row of n
 */
#ifndef FASTBP_ACTIVATION_TABLE_H
#define FASTBP_ACTIVATION_TABLE_H

#define FBP_ACTIVATION_TABLE(X)                \
    X(IDENTITY, identity, ELEMENTWISE, Z)      \
    X(SIGMOID, sigmoid, ELEMENTWISE, Z)        \
    X(TANH, tanh, ELEMENTWISE, Z)              \
    X(RELU, relu, ELEMENTWISE, Z)              \
    X(SOFTMAX, softmax, ROWWISE, Z)            \
    X(LEAKY_RELU, leaky_relu, ELEMENTWISE, Z)  \
    X(ELU, elu, ELEMENTWISE, Z)                \
    X(GELU, gelu, ELEMENTWISE, A)              \
    X(SILU, silu, ELEMENTWISE, A)              \
    X(SOFTPLUS, softplus, ELEMENTWISE, A)      \
    X(SOFTSIGN, softsign, ELEMENTWISE, Z)      \
    X(ELLIOT, elliot, ELEMENTWISE, Z)

#endif

#ifdef FBP_TABLE_ROWS

#define FBP_ACTIVATE_ROW(name)                                                        \
    FBP_ROW_INLINE void FBP_SUFFIX(fbp_activate_##name)(const FBP_REAL *a, FBP_REAL *z, \
                                                       ptrdiff_t m, ptrdiff_t n)
#define FBP_DERIVATIVE_ROW(name) \
    FBP_ROW_INLINE FBP_REAL FBP_SUFFIX(fbp_times_derivative_##name)(FBP_REAL delta, FBP_REAL z)
#define FBP_DERIVATIVE_OF_A_ROW(name) \
    FBP_ROW_INLINE FBP_REAL FBP_SUFFIX(fbp_times_derivative_##name)(FBP_REAL delta, FBP_REAL a)
#define FBP_JACOBIAN_ROW(name)                                                           \
    FBP_ROW_INLINE void FBP_SUFFIX(fbp_times_jacobian_##name)(const FBP_REAL *z, FBP_REAL *delta, \
                                                             ptrdiff_t n)

FBP_ACTIVATE_ROW(identity) {
    if (z != a) memcpy(z, a, (size_t)(m * n) * sizeof(FBP_REAL));
}
FBP_DERIVATIVE_ROW(identity) {
    return delta;
}

FBP_ACTIVATE_ROW(sigmoid) {
    FBP_SUFFIX(fbp_sigmoid_rows)(a, z, m * n);  /* vectorised, fastbp_math.h */
}
FBP_DERIVATIVE_ROW(sigmoid) {
    return delta * (z * (1 - z));
}

FBP_ACTIVATE_ROW(tanh) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = (FBP_REAL)tanh((double)a[i]);
}
FBP_DERIVATIVE_ROW(tanh) {
    return delta * (1 - z * z);
}

FBP_ACTIVATE_ROW(relu) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] > 0 ? a[i] : 0;
}
FBP_DERIVATIVE_ROW(relu) {
    return z > 0 ? delta : 0;
}

FBP_ACTIVATE_ROW(leaky_relu) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] > 0 ? a[i] : (FBP_REAL)0.01 * a[i];
}
FBP_DERIVATIVE_ROW(leaky_relu) {
    return z > 0 ? delta : (FBP_REAL)0.01 * delta;  /* z > 0 exactly where a > 0 */
}

/* ELU, alpha 1: a for a > 0, else e^a - 1; f' = 1, else e^a = z + 1 (z > 0 exactly
 * where a > 0). Through z, f' is exact to an absolute 1e-16, as tanh's 1 - z^2. */
FBP_ACTIVATE_ROW(elu) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] > 0 ? a[i] : (FBP_REAL)expm1((double)a[i]);
}
FBP_DERIVATIVE_ROW(elu) {
    return z > 0 ? delta : delta * (z + 1);
}

/* GELU, PyTorch's default (erf) form: a Phi(a), Phi the normal CDF, written
 * 0.5 erfc(-a / sqrt 2) so it keeps its digits far below 0;
 * f' = Phi(a) + a phi(a), phi(a) = e^(-a^2/2) / sqrt(2 pi) */
FBP_ACTIVATE_ROW(gelu) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) {
        double x = (double)a[i];
        z[i] = (FBP_REAL)(x * 0.5 * erfc(-x / 1.41421356237309504880));
    }
}
FBP_DERIVATIVE_OF_A_ROW(gelu) {
    double x = (double)a;
    return (FBP_REAL)(delta * (0.5 * erfc(-x / 1.41421356237309504880)
                               + x * exp(-0.5 * x * x) * 0.39894228040143267794));
}

/* SiLU (swish): a s(a), s the sigmoid; f' = s(a) (1 + a (1 - s(a))) */
FBP_ACTIVATE_ROW(silu) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = (FBP_REAL)((double)a[i] * fbp_sigmoid((double)a[i]));
}
FBP_DERIVATIVE_OF_A_ROW(silu) {
    double x = (double)a, s = fbp_sigmoid(x);
    return (FBP_REAL)(delta * (s * (1 + x * (1 - s))));
}

/* softplus, beta 1 and PyTorch's threshold 20: log(1 + e^a), a itself above 20;
 * f' = s(a), and 1 above 20. Through a: z steps down from 20 + 2.1e-9 to 20 at
 * the threshold, so z in between comes from two a (one with s(a) = 1 - 2.1e-9) */
FBP_ACTIVATE_ROW(softplus) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] > 20 ? a[i] : (FBP_REAL)fbp_softplus((double)a[i]);
}
FBP_DERIVATIVE_OF_A_ROW(softplus) {
    return a > 20 ? delta : (FBP_REAL)(delta * fbp_sigmoid((double)a));
}

/* softsign: a / (1 + |a|); f' = 1 / (1 + |a|)^2 = (1 - |z|)^2 */
FBP_ACTIVATE_ROW(softsign) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] / (1 + (a[i] < 0 ? -a[i] : a[i]));
}
FBP_DERIVATIVE_ROW(softsign) {
    FBP_REAL gap = 1 - (z < 0 ? -z : z);
    return delta * (gap * gap);
}

/* FANN's FANN_ELLIOT at FANN's default steepness s = 1/2 (where FANN_SIGMOID is
 * this table's sigmoid): 0.5 s a / (1 + |s a|) + 0.5 = a / (2 (2 + |a|)) + 1/2,
 * in (0, 1), slope 1/4 at 0 as the sigmoid's; written 1 / (2 - a) below 0 and
 * 1 - 1 / (2 + a) above, so nothing cancels as z nears 0. FANN's f'
 * s / (2 (1 + |s a|)^2) = 1 / (2 + |a|)^2 = (1 - |2z - 1|)^2 / 4 */
FBP_ACTIVATE_ROW(elliot) {
    ptrdiff_t i, size = m * n;
    for (i = 0; i < size; i++) z[i] = a[i] < 0 ? 1 / (2 - a[i]) : 1 - 1 / (2 + a[i]);
}
FBP_DERIVATIVE_ROW(elliot) {
    FBP_REAL centred = 2 * z - 1, gap = 1 - (centred < 0 ? -centred : centred);
    return delta * (gap * gap) * (FBP_REAL)0.25;
}

FBP_ACTIVATE_ROW(softmax) {
    ptrdiff_t i, r;
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
}
/* softmax's Jacobian dz_j/da_k = z_j (1[j = k] - z_k): delta_k = z_k (g_k - sum_j z_j g_j) */
FBP_JACOBIAN_ROW(softmax) {
    ptrdiff_t k;
    double weighted = 0;
    for (k = 0; k < n; k++) weighted += (double)z[k] * delta[k];
    for (k = 0; k < n; k++) delta[k] = (FBP_REAL)(z[k] * (delta[k] - weighted));
}

#undef FBP_ACTIVATE_ROW
#undef FBP_DERIVATIVE_ROW
#undef FBP_DERIVATIVE_OF_A_ROW
#undef FBP_JACOBIAN_ROW
#endif
