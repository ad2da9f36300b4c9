/* The first NaN or infinity of an array, without allocating.
 *
 * A float is not finite exactly when its exponent bits are all ones. The
 * largest exponent field of a block is an integer max, which vectorises
 * (a float sum or an isfinite() test with an early exit does not), so a
 * block of 1024 costs one pass at memory speed and only a block holding a
 * bad value is searched element by element.
 */
#ifndef FASTBP_FINITE_H
#define FASTBP_FINITE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastbp_math.h"  /* FBP_CLONES */

#define FBP_FINITE_BLOCK 1024

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

FBP_DEFINE_FIRST_NONFINITE(fbp_first_nonfinite_f, float, uint32_t, UINT32_C(0x7f800000))
FBP_DEFINE_FIRST_NONFINITE(fbp_first_nonfinite_d, double, uint64_t,
                           UINT64_C(0x7ff0000000000000))

#endif
