/* Per-sample SGD (batch size 1, no momentum) for fastbp, one epoch per call.
 *
 * At batch 1 a BLAS call costs more than the arithmetic, so this is plain C:
 * - forward: a = b + sum_i z_i W[i,:]  (axpy over contiguous rows);
 * - backward: one pass over each W row computes the row's dot with delta
 *   (for the layer below) and applies the SGD update to the row.
 * The loops are written so gcc vectorises them without -ffast-math (several
 * independent accumulators), and the epoch function is compiled for x86-64
 * v4 (AVX-512), v3 (AVX2+FMA) and the baseline, picked at load time, so the
 * wheel stays portable.
 *
 * Layout and codes match csrc/_kernels.pyx: params = [W_0, b_0, W_1, b_1, ...],
 * workspace = [z_1 .. z_L | a_out | delta | delta_prev | step | ...].
 */
#ifndef FASTBP_SAMPLE_H
#define FASTBP_SAMPLE_H

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "fastbp_codes.h"
#include "fastbp_math.h"  /* FBP_CLONES, the vectorisable exp and sigmoid */

#define FBP_LANES 8
#define FBP_BLOCK 32

static inline double fbp_softplus(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* FBP_DEFINE(T, SUFFIX) defines fbp_sample_epoch_SUFFIX for scalar type T. */
#define FBP_DEFINE(T, SUFFIX)                                                       \
static inline void fbp_activate_##SUFFIX(T *z, ptrdiff_t n, int kind) {             \
    ptrdiff_t j;                                                                    \
    if (kind == FBP_SIGMOID) {                                                      \
        for (j = 0; j < n; j++) z[j] = (T)fbp_sigmoid((double)z[j]);                  \
    } else if (kind == FBP_TANH) {                                                  \
        for (j = 0; j < n; j++) z[j] = (T)tanh((double)z[j]);                       \
    } else if (kind == FBP_RELU) {                                                  \
        for (j = 0; j < n; j++) z[j] = z[j] > 0 ? z[j] : 0;                         \
    } else if (kind == FBP_SOFTMAX) {                                               \
        T top = z[0];                                                               \
        double total = 0;                                                           \
        for (j = 1; j < n; j++) if (z[j] > top) top = z[j];                         \
        for (j = 0; j < n; j++) { z[j] = (T)fbp_exp_nonpositive((double)z[j] - top); total += z[j]; } \
        for (j = 0; j < n; j++) z[j] = (T)(z[j] / total);                           \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* f'(a) through z = f(a) */                                                        \
static inline T fbp_derivative_##SUFFIX(T z, int kind) {                            \
    if (kind == FBP_SIGMOID) return z * (1 - z);                                    \
    if (kind == FBP_TANH) return 1 - z * z;                                         \
    if (kind == FBP_RELU) return z > 0 ? (T)1 : (T)0;                               \
    return 1;                                                                       \
}                                                                                   \
                                                                                    \
/* Output delta of one sample; returns its loss. */                                 \
static inline double fbp_output_delta_##SUFFIX(const T *a, const T *z, const T *t,  \
                                                T *delta, ptrdiff_t n, int loss,    \
                                                int kind) {                         \
    ptrdiff_t k;                                                                    \
    double total = 0;                                                               \
    if (loss == FBP_MSE) {                                                          \
        for (k = 0; k < n; k++) {                                                   \
            double diff = (double)z[k] - (double)t[k];                              \
            total += diff * diff;                                                   \
            delta[k] = (T)diff;                                                     \
        }                                                                           \
        if (kind == FBP_SOFTMAX) {                                                  \
            double weighted = 0;                                                    \
            for (k = 0; k < n; k++) weighted += (double)z[k] * delta[k];            \
            for (k = 0; k < n; k++) delta[k] = (T)(z[k] * (delta[k] - weighted));   \
        } else {                                                                    \
            for (k = 0; k < n; k++) delta[k] *= fbp_derivative_##SUFFIX(z[k], kind); \
        }                                                                           \
        return 0.5 * total;                                                         \
    }                                                                               \
    if (loss == FBP_BCE) {                                                          \
        for (k = 0; k < n; k++) {                                                   \
            total += fbp_softplus(a[k]) - (double)t[k] * a[k];                      \
            delta[k] = (T)((double)z[k] - (double)t[k]);                            \
        }                                                                           \
        return total;                                                               \
    }                                                                               \
    {                                                                               \
        double top = a[0], lse = 0;                                                 \
        for (k = 1; k < n; k++) if (a[k] > top) top = a[k];                         \
        for (k = 0; k < n; k++) lse += exp((double)a[k] - top);                     \
        lse = top + log(lse);                                                       \
        for (k = 0; k < n; k++) {                                                   \
            if (t[k] != 0) total += (double)t[k] * (lse - a[k]);                    \
            delta[k] = (T)((double)z[k] - (double)t[k]);                            \
        }                                                                           \
        return total;                                                               \
    }                                                                               \
}                                                                                   \
                                                                                    \
/* a = b + z . W for one sample. Blocks of FBP_BLOCK outputs are summed in   \
   local arrays the compiler keeps in registers (two interleaved partial sums  \
   over i); summing straight into a[] would chain every i through a store.    \
   The tail block sums four rows at a time for the same reason. */            \
static inline void fbp_dense_##SUFFIX(T *a, const T *b, const T *z, const T *W,     \
                                      ptrdiff_t n_in, ptrdiff_t n_out) {            \
    ptrdiff_t i, j, j0, k;                                                          \
    for (j0 = 0; j0 + FBP_BLOCK <= n_out; j0 += FBP_BLOCK) {                        \
        T even[FBP_BLOCK], odd[FBP_BLOCK];                                          \
        for (k = 0; k < FBP_BLOCK; k++) { even[k] = b[j0 + k]; odd[k] = 0; }        \
        for (i = 0; i + 2 <= n_in; i += 2) {                                        \
            const T z0 = z[i], z1 = z[i + 1];                                       \
            const T *w0 = W + i * n_out + j0, *w1 = w0 + n_out;                     \
            for (k = 0; k < FBP_BLOCK; k++) {                                       \
                even[k] += z0 * w0[k];                                              \
                odd[k] += z1 * w1[k];                                               \
            }                                                                       \
        }                                                                           \
        if (i < n_in)                                                               \
            for (k = 0; k < FBP_BLOCK; k++) even[k] += z[i] * W[i * n_out + j0 + k]; \
        for (k = 0; k < FBP_BLOCK; k++) a[j0 + k] = even[k] + odd[k];               \
    }                                                                               \
    if (j0 == n_out) return;                                                        \
    for (j = j0; j < n_out; j++) a[j] = b[j];                                       \
    for (i = 0; i + 4 <= n_in; i += 4) {                                            \
        const T z0 = z[i], z1 = z[i + 1], z2 = z[i + 2], z3 = z[i + 3];             \
        const T *w0 = W + i * n_out, *w1 = w0 + n_out, *w2 = w1 + n_out, *w3 = w2 + n_out; \
        for (j = j0; j < n_out; j++)                                                \
            a[j] += (z0 * w0[j] + z1 * w1[j]) + (z2 * w2[j] + z3 * w3[j]);          \
    }                                                                               \
    for (; i < n_in; i++)                                                           \
        for (j = j0; j < n_out; j++) a[j] += z[i] * W[i * n_out + j];               \
}                                                                                   \
                                                                                    \
/* One pass over a weight row: return row . delta (old weights), then            \
   row -= lr * (l2 * row + z_i * delta). */                                         \
static inline T fbp_row_dot_update_##SUFFIX(T *row, const T *delta, ptrdiff_t n,    \
                                            T lr, T z_i, T l2) {                    \
    T acc[FBP_LANES] = {0};                                                         \
    T tail = 0;                                                                     \
    ptrdiff_t j = 0, k;                                                             \
    for (; j + FBP_LANES <= n; j += FBP_LANES) {                                    \
        for (k = 0; k < FBP_LANES; k++) {                                           \
            T w = row[j + k];                                                       \
            acc[k] += w * delta[j + k];                                             \
            row[j + k] = w - lr * (l2 * w + z_i * delta[j + k]);                    \
        }                                                                           \
    }                                                                               \
    for (; j < n; j++) {                                                            \
        T w = row[j];                                                               \
        tail += w * delta[j];                                                       \
        row[j] = w - lr * (l2 * w + z_i * delta[j]);                                \
    }                                                                               \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +                                \
           ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;                          \
}                                                                                   \
                                                                                    \
/* Without L2: row -= z_i * step, where step = lr * delta was taken once per   \
   layer; one multiply-add per weight instead of three. */                     \
static inline T fbp_row_dot_step_##SUFFIX(T *row, const T *delta, const T *step,    \
                                          ptrdiff_t n, T z_i) {                     \
    T acc[FBP_LANES] = {0};                                                         \
    T tail = 0;                                                                     \
    ptrdiff_t j = 0, k;                                                             \
    for (; j + FBP_LANES <= n; j += FBP_LANES) {                                    \
        for (k = 0; k < FBP_LANES; k++) {                                           \
            T w = row[j + k];                                                       \
            acc[k] += w * delta[j + k];                                             \
            row[j + k] = w - z_i * step[j + k];                                     \
        }                                                                           \
    }                                                                               \
    for (; j < n; j++) {                                                            \
        T w = row[j];                                                               \
        tail += w * delta[j];                                                       \
        row[j] = w - z_i * step[j];                                                 \
    }                                                                               \
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +                                \
           ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail;                          \
}                                                                                   \
                                                                                    \
/* The same update where no delta is needed below (the input layer). */            \
static inline void fbp_row_update_##SUFFIX(T *row, const T *delta, ptrdiff_t n,     \
                                           T lr, T z_i, T l2) {                     \
    for (ptrdiff_t j = 0; j < n; j++)                                               \
        row[j] = row[j] - lr * (l2 * row[j] + z_i * delta[j]);                      \
}                                                                                   \
                                                                                    \
static inline double fbp_row_square_##SUFFIX(const T *row, ptrdiff_t n) {           \
    double s = 0;                                                                   \
    for (ptrdiff_t j = 0; j < n; j++) s += (double)row[j] * row[j];                 \
    return s;                                                                       \
}                                                                                   \
                                                                                    \
FBP_CLONES                                                                          \
static int fbp_sample_epoch_##SUFFIX(                                               \
        const T *X, const T *Tgt, ptrdiff_t n_rows, const ptrdiff_t *order,         \
        T *params, const int *sizes, const int *acts, int n_layers, int loss,       \
        double l2, double lr, T *work, double *loss_sum, double *penalty_sum,       \
        ptrdiff_t *rows_done) {                                                     \
    ptrdiff_t z_off[65], max_w = 0, total = 0, r, i, j;                             \
    int l;                                                                          \
    const ptrdiff_t n_in0 = sizes[0], n_out = sizes[n_layers];                      \
    const T lr_t = (T)lr, l2_t = (T)l2;                                             \
    for (l = 0; l <= n_layers; l++) if (sizes[l] > max_w) max_w = sizes[l];         \
    for (l = 1; l <= n_layers; l++) { z_off[l] = total; total += sizes[l]; }        \
    T *a_out = work + total;                                                        \
    T *delta_a = a_out + n_out;                                                     \
    T *delta_b = delta_a + max_w;                                                   \
    T *step = delta_b + max_w;  /* lr * delta of the layer being updated */         \
    *loss_sum = 0;                                                                  \
    *penalty_sum = 0;                                                               \
    *rows_done = 0;                                                                 \
    for (r = 0; r < n_rows; r++) {                                                  \
        ptrdiff_t row_index = order ? order[r] : r;                                 \
        const T *x = X + row_index * n_in0;                                         \
        const T *t = Tgt + row_index * n_out;                                       \
        /* forward: a = b + sum_i z_i W[i, :] */                                    \
        const T *z_prev = x;                                                        \
        T *W = params;                                                              \
        for (l = 0; l < n_layers; l++) {                                            \
            ptrdiff_t n_in = sizes[l], n_next = sizes[l + 1];                       \
            T *b = W + n_in * n_next;                                               \
            T *a = (l == n_layers - 1) ? a_out : work + z_off[l + 1];               \
            fbp_dense_##SUFFIX(a, b, z_prev, W, n_in, n_next);                      \
            if (l == n_layers - 1) {                                                \
                memcpy(work + z_off[n_layers], a_out, n_next * sizeof(T));          \
                fbp_activate_##SUFFIX(work + z_off[n_layers], n_next, acts[l]);     \
            } else {                                                                \
                fbp_activate_##SUFFIX(a, n_next, acts[l]);                          \
            }                                                                       \
            z_prev = work + z_off[l + 1];                                           \
            W = b + n_next;                                                         \
        }                                                                           \
        double J = fbp_output_delta_##SUFFIX(a_out, work + z_off[n_layers], t,      \
                                             delta_a, n_out, loss, acts[n_layers - 1]); \
        if (!isfinite(J)) return 1;                                                 \
        /* backward, updating each layer as soon as its delta is used */            \
        T *delta = delta_a, *delta_prev = delta_b;                                  \
        double penalty = 0;                                                         \
        for (l = n_layers - 1; l >= 0; l--) {                                       \
            ptrdiff_t n_in = sizes[l], n_next = sizes[l + 1];                       \
            W -= n_in * n_next + n_next;                                            \
            T *b = W + n_in * n_next;                                               \
            const T *z_below = (l == 0) ? x : work + z_off[l];                      \
            if (l2 != 0)                                                            \
                for (i = 0; i < n_in; i++)                                          \
                    penalty += fbp_row_square_##SUFFIX(W + i * n_next, n_next);     \
            if (l2 == 0) {                                                          \
                for (j = 0; j < n_next; j++) step[j] = lr_t * delta[j];             \
                if (l == 0) {                                                       \
                    for (i = 0; i < n_in; i++) {                                    \
                        T *row = W + i * n_next;                                    \
                        const T z_i = z_below[i];                                   \
                        for (j = 0; j < n_next; j++) row[j] -= z_i * step[j];       \
                    }                                                               \
                } else {                                                            \
                    for (i = 0; i < n_in; i++) {                                    \
                        T s = fbp_row_dot_step_##SUFFIX(W + i * n_next, delta, step, \
                                                        n_next, z_below[i]);        \
                        delta_prev[i] = s * fbp_derivative_##SUFFIX(z_below[i], acts[l - 1]); \
                    }                                                               \
                }                                                                   \
                for (j = 0; j < n_next; j++) b[j] -= step[j];                       \
            } else if (l == 0) {                                                    \
                for (i = 0; i < n_in; i++)                                          \
                    fbp_row_update_##SUFFIX(W + i * n_next, delta, n_next, lr_t,    \
                                            z_below[i], l2_t);                      \
                for (j = 0; j < n_next; j++) b[j] -= lr_t * delta[j];               \
            } else {                                                                \
                for (i = 0; i < n_in; i++) {                                        \
                    T s = fbp_row_dot_update_##SUFFIX(W + i * n_next, delta, n_next, \
                                                      lr_t, z_below[i], l2_t);      \
                    delta_prev[i] = s * fbp_derivative_##SUFFIX(z_below[i], acts[l - 1]); \
                }                                                                   \
                for (j = 0; j < n_next; j++) b[j] -= lr_t * delta[j];               \
            }                                                                       \
            T *swap = delta; delta = delta_prev; delta_prev = swap;                 \
        }                                                                           \
        *loss_sum += J;                                                             \
        *penalty_sum += 0.5 * l2 * penalty;                                         \
        *rows_done += 1;                                                            \
    }                                                                               \
    return 0;                                                                       \
}

FBP_DEFINE(double, d)
FBP_DEFINE(float, f)

#endif
