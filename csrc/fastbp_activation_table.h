/* The activations: one row each, the only list of them.
 *
 *   X(CODE, name, SHAPE)
 *     CODE   the enum's FBP_<CODE>; its place in the list is its code (from 0)
 *     name   as Python spells it (fastbp.ACTIVATIONS)
 *     SHAPE  ELEMENTWISE: z_k = f(a_k), so f' is diagonal and a hidden layer may use it;
 *            ROWWISE: z = f(a) of a whole row (softmax), an output only
 *
 * From the list, fastbp_codes.h makes enum fbp_activation and the names Python reads
 * (_kernels.activation_table()), and fastbp_activations_impl.h the switch of each
 * kernel, outside its loop over the elements.
 *
 * A row's functions follow, per scalar type (FBP_REAL, FBP_SUFFIX): this part is
 * compiled when fastbp_activations_impl.h includes the file with FBP_TABLE_ROWS set.
 *   FBP_ACTIVATE_ROW(name): fbp_activate_<name>(a, z, m, n)
 *       z = f(a) for m rows of n; z may alias a
 *   ELEMENTWISE, FBP_DERIVATIVE_ROW(name): fbp_times_derivative_<name>(delta, z)
 *       delta * f'(a), with f' written through z = f(a)
 *   ROWWISE, FBP_JACOBIAN_ROW(name): fbp_times_jacobian_<name>(z, delta, n)
 *       delta = J_f^T delta over one row of n
 */
#ifndef FASTBP_ACTIVATION_TABLE_H
#define FASTBP_ACTIVATION_TABLE_H

#define FBP_ACTIVATION_TABLE(X)          \
    X(IDENTITY, identity, ELEMENTWISE)   \
    X(SIGMOID, sigmoid, ELEMENTWISE)     \
    X(TANH, tanh, ELEMENTWISE)           \
    X(RELU, relu, ELEMENTWISE)           \
    X(SOFTMAX, softmax, ROWWISE)         \
    X(LEAKY_RELU, leaky_relu, ELEMENTWISE)

#endif

#ifdef FBP_TABLE_ROWS

#define FBP_ACTIVATE_ROW(name)                                                        \
    static inline void FBP_SUFFIX(fbp_activate_##name)(const FBP_REAL *a, FBP_REAL *z, \
                                                       ptrdiff_t m, ptrdiff_t n)
#define FBP_DERIVATIVE_ROW(name) \
    static inline FBP_REAL FBP_SUFFIX(fbp_times_derivative_##name)(FBP_REAL delta, FBP_REAL z)
#define FBP_JACOBIAN_ROW(name)                                                           \
    static inline void FBP_SUFFIX(fbp_times_jacobian_##name)(const FBP_REAL *z, FBP_REAL *delta, \
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
#undef FBP_JACOBIAN_ROW
#endif
