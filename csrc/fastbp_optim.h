/* Element-wise loops over whole weight matrices that every optimiser's
 * fit shares: the L2 term (into the gradient, or as plain SGD's shrink) with
 * the penalty sum ||W||^2; and what an optimiser's own C loops (e.g.
 * fastbp_adam.h) build on: FBP_NO_CONTRACT and the penalty's lanes.
 *
 * At batch 200 on a 20000-input sparse layer these passes over W, not the
 * products, are the work. Written in C to be compiled per instruction set
 * (FBP_CLONES) with contraction to FMA off, so every clone rounds as the
 * baseline does; -fno-math-errno (setup.py) lets sqrt vectorise. The
 * penalty is summed in 8 fixed lanes, then lane by lane: vectorisable and
 * the same for a given length on every CPU.
 */
#ifndef FASTBP_OPTIM_H
#define FASTBP_OPTIM_H

#include <math.h>
#include <stddef.h>

#include "fastbp_math.h"  /* FBP_CLONES */

#if defined(__GNUC__) && !defined(__clang__)
#define FBP_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define FBP_NO_CONTRACT
#endif

#define FBP_LANES_L2 8

/* dW = (l2/m) W; returns sum W^2. */
#define FBP_DEFINE_L2_GRADIENT(NAME, FLOAT)                                        \
    FBP_CLONES FBP_NO_CONTRACT static double NAME(                                 \
        const FLOAT *restrict W, FLOAT *restrict dW, ptrdiff_t n, double l2_over_m) \
    {                                                                              \
        double lanes[FBP_LANES_L2] = {0}, total = 0;                               \
        ptrdiff_t i = 0, k;                                                        \
        for (; i + FBP_LANES_L2 <= n; i += FBP_LANES_L2)                           \
            for (k = 0; k < FBP_LANES_L2; k++) {                                   \
                double w = W[i + k];                                               \
                lanes[k] += w * w;                                                 \
                dW[i + k] = (FLOAT)(l2_over_m * w);                                \
            }                                                                      \
        for (; i < n; i++) {                                                       \
            double w = W[i];                                                       \
            total += w * w;                                                        \
            dW[i] = (FLOAT)(l2_over_m * w);                                        \
        }                                                                          \
        for (k = 0; k < FBP_LANES_L2; k++)                                         \
            total += lanes[k];                                                     \
        return total;                                                              \
    }

/* W *= shrink (plain SGD's L2 step, 1 - lr l2/m); returns sum W^2 before. */
#define FBP_DEFINE_L2_SHRINK(NAME, FLOAT)                                          \
    FBP_CLONES FBP_NO_CONTRACT static double NAME(FLOAT *restrict W, ptrdiff_t n,   \
                                                  FLOAT shrink)                    \
    {                                                                              \
        double lanes[FBP_LANES_L2] = {0}, total = 0;                               \
        ptrdiff_t i = 0, k;                                                        \
        for (; i + FBP_LANES_L2 <= n; i += FBP_LANES_L2)                           \
            for (k = 0; k < FBP_LANES_L2; k++) {                                   \
                FLOAT w = W[i + k];                                                \
                lanes[k] += (double)w * w;                                         \
                W[i + k] = shrink * w;                                             \
            }                                                                      \
        for (; i < n; i++) {                                                       \
            FLOAT w = W[i];                                                        \
            total += (double)w * w;                                                \
            W[i] = shrink * w;                                                     \
        }                                                                          \
        for (k = 0; k < FBP_LANES_L2; k++)                                         \
            total += lanes[k];                                                     \
        return total;                                                              \
    }

FBP_DEFINE_L2_GRADIENT(fbp_l2_gradient_f, float)
FBP_DEFINE_L2_GRADIENT(fbp_l2_gradient_d, double)
FBP_DEFINE_L2_SHRINK(fbp_l2_shrink_f, float)
FBP_DEFINE_L2_SHRINK(fbp_l2_shrink_d, double)

#endif
