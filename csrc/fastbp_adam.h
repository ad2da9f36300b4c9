/* Adam's element loops (csrc/optim_adam.pxi registers the optimiser), and
 * the macros its variants AdamW (optim_adamw.pxi) and NAdam (optim_nadam.pxi)
 * make theirs with:
 * the step on a block of parameters, and the step on rows of W_0 after a
 * sparse batch, fused with their L2 term. One loop written once serves the
 * three: its flags are constants, so each instance compiles to its own
 * loop and Adam's is the loop it always was. Compiled per instruction set
 * with contraction off, as fastbp_optim.h says why.
 */
#ifndef FASTBP_ADAM_H
#define FASTBP_ADAM_H

#include <math.h>
#include <stddef.h>

#include "fastbp_optim.h"  /* FBP_CLONES, FBP_NO_CONTRACT, FBP_LANES_L2 */

/* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr_t m / (sqrt(v) + eps),
 * in FLOAT throughout (as PyTorch's float32 Adam): a float32 sqrt and
 * division are 2-4x as fast as double ones, and they bound this loop.
 * DECAY (AdamW's W): p = keep p first, keep = 1 - lr weight_decay, as
 * PyTorch scales p before its step. G_TERM (NAdam's Nesterov term): the
 * numerator is lr_t m + lr_g g. Unused, keep and lr_g are ignored. */
#define FBP_DEFINE_ADAM_STEP(NAME, FLOAT, SQRT, DECAY, G_TERM)                     \
    FBP_CLONES FBP_NO_CONTRACT static void NAME(                                   \
        FLOAT *restrict p, const FLOAT *restrict g, FLOAT *restrict m,             \
        FLOAT *restrict v, ptrdiff_t n, FLOAT lr, FLOAT lr_g, FLOAT keep,          \
        FLOAT b1, FLOAT b2, FLOAT c1, FLOAT c2, FLOAT eps)                         \
    {                                                                              \
        ptrdiff_t i;                                                               \
        for (i = 0; i < n; i++) {                                                  \
            FLOAT gi = g[i];                                                       \
            FLOAT mi = b1 * m[i] + c1 * gi;                                        \
            FLOAT vi = b2 * v[i] + c2 * gi * gi;                                   \
            FLOAT pi = p[i], u = lr * mi;                                          \
            m[i] = mi;                                                             \
            v[i] = vi;                                                             \
            if (DECAY)                                                             \
                pi = keep * pi;                                                    \
            if (G_TERM)                                                            \
                u += lr_g * gi;                                                    \
            p[i] = pi - u / (SQRT(vi) + eps);                                      \
        }                                                                          \
    }

/* The step on rows [i0, i1) of W (n_out wide) whose gradient is (l2/m) W
 * plus, on the rows marked in marks, dW: one pass instead of writing the L2
 * term into every row of dW and reading it back. Unmarks the rows; returns
 * sum W^2 over them, before the step. DECAY and G_TERM as above. */
#define FBP_DEFINE_ADAM_ROWS(NAME, FLOAT, SQRT, DECAY, G_TERM)                     \
    FBP_CLONES FBP_NO_CONTRACT static double NAME(                                 \
        FLOAT *restrict W, const FLOAT *restrict dW, FLOAT *restrict m,            \
        FLOAT *restrict v, unsigned char *restrict marks, ptrdiff_t i0,            \
        ptrdiff_t i1, ptrdiff_t n_out, double l2_over_m, FLOAT lr, FLOAT lr_g,     \
        FLOAT keep, FLOAT b1, FLOAT b2, FLOAT c1, FLOAT c2, FLOAT eps)             \
    {                                                                              \
        double lanes[FBP_LANES_L2] = {0}, total = 0;                               \
        ptrdiff_t i, j, k;                                                         \
        for (i = i0; i < i1; i++) {                                                \
            FLOAT *w = W + i * n_out, *mi = m + i * n_out, *vi = v + i * n_out;    \
            const FLOAT *d = dW + i * n_out;                                       \
            int marked = marks[i];                                                 \
            for (j = 0; j + FBP_LANES_L2 <= n_out; j += FBP_LANES_L2)              \
                for (k = 0; k < FBP_LANES_L2; k++)                                 \
                    lanes[k] += (double)w[j + k] * w[j + k];                       \
            for (; j < n_out; j++)                                                 \
                total += (double)w[j] * w[j];                                      \
            for (j = 0; j < n_out; j++) {                                          \
                FLOAT g = (FLOAT)(l2_over_m * w[j]);                               \
                FLOAT mj, vj, wj = w[j], u;                                        \
                if (marked)                                                        \
                    g += d[j];                                                     \
                mj = b1 * mi[j] + c1 * g;                                          \
                vj = b2 * vi[j] + c2 * g * g;                                      \
                mi[j] = mj;                                                        \
                vi[j] = vj;                                                        \
                u = lr * mj;                                                       \
                if (DECAY)                                                         \
                    wj = keep * wj;                                                \
                if (G_TERM)                                                        \
                    u += lr_g * g;                                                 \
                w[j] = wj - u / (SQRT(vj) + eps);                                  \
            }                                                                      \
            marks[i] = 0;                                                          \
        }                                                                          \
        for (k = 0; k < FBP_LANES_L2; k++)                                         \
            total += lanes[k];                                                     \
        return total;                                                              \
    }

/* PREFIX##_step_f/_d and PREFIX##_rows_f/_d of each variant */
#define FBP_DEFINE_ADAM_LOOPS(PREFIX, DECAY, G_TERM)                               \
    FBP_DEFINE_ADAM_STEP(PREFIX##_step_f, float, sqrtf, DECAY, G_TERM)             \
    FBP_DEFINE_ADAM_STEP(PREFIX##_step_d, double, sqrt, DECAY, G_TERM)             \
    FBP_DEFINE_ADAM_ROWS(PREFIX##_rows_f, float, sqrtf, DECAY, G_TERM)             \
    FBP_DEFINE_ADAM_ROWS(PREFIX##_rows_d, double, sqrt, DECAY, G_TERM)

/* Adam's own; a variant instantiates its loops in its own file
 * (optim_adamw.pxi, optim_nadam.pxi), so a new one touches no line here */
FBP_DEFINE_ADAM_LOOPS(fbp_adam, 0, 0)

#endif
