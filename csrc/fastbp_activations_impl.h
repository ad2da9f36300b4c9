/* Template of fastbp_activations.h for one scalar type; no include guard:
 * included once per FBP_REAL / FBP_SUFFIX. The activations and losses are
 * the rows of fastbp_activation_table.h and fastbp_loss_table.h; this file
 * only dispatches on a code to a row's functions, with a switch generated
 * from each table, outside the loops over elements. */

/* The rows of the tables, for this scalar type. */
#define FBP_TABLE_ROWS
#include "fastbp_activation_table.h"

/* z = f(a) for m rows of n; z may alias a. */
FBP_ROW_INLINE void FBP_SUFFIX(fbp_activate_rows)(const FBP_REAL *a, FBP_REAL *z, ptrdiff_t m,
                                                  ptrdiff_t n, int kind) {
#define FBP_CASE(CODE, name, shape, f_prime) \
    case FBP_##CODE: FBP_SUFFIX(fbp_activate_##name)(a, z, m, n); break;
    switch (kind) { FBP_ACTIVATION_TABLE(FBP_CASE) }
#undef FBP_CASE
}

/* delta *= f'(a) over a block (element-wise activations only), with f'
 * written through the output z = f(a) as in the notes, or through a for a
 * row that says A (a is z's block where no row needs it; a row-wise f,
 * softmax, has no such f': delta stays as is); the switch is outside the
 * loops, so each one vectorises. */
#define FBP_CASE(CODE, name, shape, f_prime) FBP_CASE_##shape##_##f_prime(CODE, name)
#define FBP_CASE_ROWWISE_Z(CODE, name)
#define FBP_CASE_ELEMENTWISE_Z(CODE, name)                                          \
    case FBP_##CODE:                                                               \
        for (i = 0; i < size; i++)                                                 \
            delta[i] = FBP_SUFFIX(fbp_times_derivative_##name)(delta[i], z[i]);    \
        break;
#define FBP_CASE_ELEMENTWISE_A(CODE, name)                                          \
    case FBP_##CODE:                                                               \
        for (i = 0; i < size; i++)                                                 \
            delta[i] = FBP_SUFFIX(fbp_times_derivative_##name)(delta[i], a[i]);    \
        break;
FBP_ROW_INLINE void FBP_SUFFIX(fbp_multiply_derivative)(const FBP_REAL *a, const FBP_REAL *z,
                                                        FBP_REAL *delta, ptrdiff_t size,
                                                        int kind) {
    ptrdiff_t i;
    switch (kind) { FBP_ACTIVATION_TABLE(FBP_CASE) }
}
#undef FBP_CASE_ELEMENTWISE_Z
#undef FBP_CASE_ELEMENTWISE_A
#undef FBP_CASE_ROWWISE_Z

/* delta * f'(a) of one element (element-wise activations; a row-wise f
 * returns delta as is), for loops that finish an element at a time: the
 * per-sample path, where a separate pass over a few units costs more than
 * the switch. */
#define FBP_CASE_ROWWISE_Z(CODE, name)
#define FBP_CASE_ELEMENTWISE_Z(CODE, name) \
    case FBP_##CODE: return FBP_SUFFIX(fbp_times_derivative_##name)(delta, z);
#define FBP_CASE_ELEMENTWISE_A(CODE, name) \
    case FBP_##CODE: return FBP_SUFFIX(fbp_times_derivative_##name)(delta, a);
FBP_ROW_INLINE FBP_REAL FBP_SUFFIX(fbp_times_derivative)(FBP_REAL delta, FBP_REAL a, FBP_REAL z,
                                                         int kind) {
    switch (kind) { FBP_ACTIVATION_TABLE(FBP_CASE) }
    return delta;
}
#undef FBP_CASE_ELEMENTWISE_Z
#undef FBP_CASE_ELEMENTWISE_A
#undef FBP_CASE_ROWWISE_Z

/* delta = dJ/da of one output row of n from delta = dJ/dz: through f' for an
 * element-wise f, through f's Jacobian for a row-wise one; a is the row's
 * pre-activation. */
#define FBP_CASE_ELEMENTWISE_Z(CODE, name) \
    case FBP_##CODE: FBP_SUFFIX(fbp_multiply_derivative)(a, z, delta, n, kind); break;
#define FBP_CASE_ELEMENTWISE_A(CODE, name) FBP_CASE_ELEMENTWISE_Z(CODE, name)
#define FBP_CASE_ROWWISE_Z(CODE, name) \
    case FBP_##CODE: FBP_SUFFIX(fbp_times_jacobian_##name)(z, delta, n); break;
FBP_ROW_INLINE void FBP_SUFFIX(fbp_times_output_derivative)(const FBP_REAL *a, const FBP_REAL *z,
                                                            FBP_REAL *delta, ptrdiff_t n,
                                                            int kind) {
    switch (kind) { FBP_ACTIVATION_TABLE(FBP_CASE) }
}
#undef FBP_CASE_ELEMENTWISE_Z
#undef FBP_CASE_ELEMENTWISE_A
#undef FBP_CASE_ROWWISE_Z
#undef FBP_CASE

#include "fastbp_loss_table.h"
#undef FBP_TABLE_ROWS

/* The output delta dJ/da of one row, scaled by ``scale`` (the row's weight
 * over the batch's), and the row's loss, unscaled. a is the output layer's
 * pre-activation, z = f(a) its output, t the target; kind is f's code, param
 * the loss's parameter (fbp_network's loss_param). */
FBP_ROW_INLINE double FBP_SUFFIX(fbp_output_delta_row)(const FBP_REAL *a, const FBP_REAL *z,
                                                      const FBP_REAL *t, FBP_REAL *delta,
                                                      ptrdiff_t n, int loss, int kind,
                                                      double scale, double param) {
#define FBP_CASE(CODE, name, output, default_param) \
    case FBP_##CODE: return FBP_SUFFIX(fbp_loss_##name)(a, z, t, delta, n, kind, scale, param);
    switch (loss) { FBP_LOSS_TABLE(FBP_CASE) }
#undef FBP_CASE
    return 0;  /* unreachable: the Trainer checks the code */
}
