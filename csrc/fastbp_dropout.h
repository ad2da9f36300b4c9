/* Dropout's draws, counter-based: unit j of layer l in the row at position p
 * of epoch e keeps or drops by a hash of (seed, e, p, l, j) alone, so the
 * masks are the same whichever thread, row share or column share computes
 * them, and whichever kernel call a batch falls in.
 *
 * A row's key mixes (seed, e, p, l) through splitmix64's finaliser (a
 * bijection of 64-bit words); unit j's draw is a 32-bit integer hash
 * (Wellons' lowbias32) of the key's low word plus j times the golden ratio,
 * straight-line code that vectorises. A unit is dropped when its draw is
 * below ``threshold`` (about rate * 2^32), kept with probability
 * q = 1 - threshold / 2^32 and scaled by 1/q then, so E[mask] = 1 exactly.
 */
#ifndef FASTBP_DROPOUT_H
#define FASTBP_DROPOUT_H

#include <stddef.h>
#include <stdint.h>

#include "fastbp_math.h"  /* FBP_CLONES */

static inline uint64_t fbp_mix64(uint64_t x) {
    x += 0x9e3779b97f4a7c15ULL;  /* splitmix64's step: 0 does not map to 0 */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* The key of the draws of layer l's units in the row at ``position`` of
 * ``epoch``. */
static inline uint64_t fbp_dropout_row_key(uint64_t seed, int64_t epoch, int64_t position,
                                           int layer) {
    uint64_t key = fbp_mix64(fbp_mix64(seed) ^ (uint64_t)epoch);
    return fbp_mix64(fbp_mix64(key ^ (uint64_t)position) ^ (uint64_t)layer);
}

static inline uint32_t fbp_dropout_draw(uint64_t row_key, uint32_t unit) {
    uint32_t x = (uint32_t)row_key + unit * 0x9e3779b9u;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    return x ^ (x >> 16);
}

/* Units [first, first + n) of one row: s = scale if the unit's draw is at
 * least ``threshold`` else 0; z *= s and factor *= s. INLINE is the
 * loop for callers that inline it into clones of their own (the per-sample
 * path, fastbp_sample.h). */
#if defined(__GNUC__)
#define FBP_DROPOUT_INLINE static inline __attribute__((always_inline))
#else
#define FBP_DROPOUT_INLINE static inline
#endif
#define FBP_DROPOUT_ROW(NAME, INLINE, FLOAT)                                           \
    FBP_DROPOUT_INLINE void INLINE(FLOAT *z, FLOAT *factor, ptrdiff_t n, uint32_t first, \
                                   uint64_t row_key, uint32_t threshold, FLOAT scale) { \
        ptrdiff_t i;                                                                   \
        for (i = 0; i < n; i++) {                                                      \
            FLOAT s = fbp_dropout_draw(row_key, first + (uint32_t)i) >= threshold      \
                          ? scale : (FLOAT)0;                                          \
            z[i] *= s;                                                                 \
            factor[i] *= s;                                                            \
        }                                                                              \
    }                                                                                  \
    FBP_CLONES static void NAME(FLOAT *z, FLOAT *factor, ptrdiff_t n, uint32_t first,  \
                                uint64_t row_key, uint32_t threshold, FLOAT scale) {   \
        INLINE(z, factor, n, first, row_key, threshold, scale);                        \
    }
FBP_DROPOUT_ROW(fbp_dropout_row_d, fbp_dropout_row_inline_d, double)
FBP_DROPOUT_ROW(fbp_dropout_row_f, fbp_dropout_row_inline_f, float)
#undef FBP_DROPOUT_ROW
#undef FBP_DROPOUT_INLINE

#endif
