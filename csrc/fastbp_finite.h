/* The first NaN or infinity of an array, without allocating.
 *
 * A float is not finite exactly when its exponent bits are all ones. The
 * largest exponent field of a block is an integer max, which vectorises
 * (a float sum or an isfinite() test with an early exit does not), so a
 * block of 1024 costs one pass at memory speed and only a block holding a
 * bad value is searched element by element.
 *
 * Arrays of fewer than FBP_FINITE_SMALL elements (a tiny net's params,
 * checked after every epoch) are tested one by one inline, not in the
 * clones: the x86-64-v4 clone's block loop runs 512-bit instructions even
 * at 9 elements, which slowed XOR's per-sample epochs (2-2-1, float64) by
 * ~10% on AVX-512 CPUs, more than the test itself costs.
 */
#ifndef FASTBP_FINITE_H
#define FASTBP_FINITE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastbp_math.h"  /* FBP_CLONES */

#define FBP_FINITE_BLOCK 1024
#define FBP_FINITE_SMALL 32

#define FBP_DEFINE_FIRST_NONFINITE(NAME, FLOAT, UINT, EXPONENT)                   \
    FBP_CLONES static ptrdiff_t NAME(const FLOAT *x, ptrdiff_t n)                 \
    {                                                                             \
        ptrdiff_t start, stop, i;                                                 \
        for (start = 0; start < n; start = stop) {                                \
            UINT worst = 0, bits;                                                 \
            stop = n - start > FBP_FINITE_BLOCK ? start + FBP_FINITE_BLOCK : n;   \
            for (i = start; i < stop; i++) {                                      \
                memcpy(&bits, x + i, sizeof bits);                                \
                bits &= EXPONENT;                                                 \
                worst = bits > worst ? bits : worst;                              \
            }                                                                     \
            if (worst == EXPONENT)                                                \
                for (i = start; i < stop; i++)                                    \
                    if (!isfinite(x[i]))                                          \
                        return i;                                                 \
        }                                                                         \
        return -1;                                                                \
    }

FBP_DEFINE_FIRST_NONFINITE(fbp_first_nonfinite_blocks_f, float, uint32_t, UINT32_C(0x7f800000))
FBP_DEFINE_FIRST_NONFINITE(fbp_first_nonfinite_blocks_d, double, uint64_t,
                           UINT64_C(0x7ff0000000000000))

/* The index of x's first NaN or infinity, or -1. */
#define FBP_DEFINE_FIRST_NONFINITE_ANY(NAME, BLOCKS, FLOAT)                    \
    static inline ptrdiff_t NAME(const FLOAT *x, ptrdiff_t n)                  \
    {                                                                          \
        if (n >= FBP_FINITE_SMALL)                                             \
            return BLOCKS(x, n);                                               \
        for (ptrdiff_t i = 0; i < n; i++)                                      \
            if (!isfinite(x[i]))                                               \
                return i;                                                      \
        return -1;                                                             \
    }

FBP_DEFINE_FIRST_NONFINITE_ANY(fbp_first_nonfinite_f, fbp_first_nonfinite_blocks_f, float)
FBP_DEFINE_FIRST_NONFINITE_ANY(fbp_first_nonfinite_d, fbp_first_nonfinite_blocks_d, double)

#endif
