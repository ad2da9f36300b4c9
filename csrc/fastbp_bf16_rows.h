/* bfloat16 predict's float32 loops (csrc/predict_bf16.pxi): operands rounded
 * to bfloat16 but kept as float32 values, for the products that the packs
 * (fastbp_bf16.h) do not pay for.
 *
 * A product of two bfloat16 values (8-bit significands) is exact in float32
 * (24 bits), so a float32 product of rounded operands, summed in float32,
 * has the rounding semantics of the bfloat16 instructions: the paths differ
 * only in the order of the float32 sums.
 */
#ifndef FASTBP_BF16_ROWS_H
#define FASTBP_BF16_ROWS_H

#include "fastbp_bf16.h"

/* out = x rounded to bfloat16, as float32 values (out may be x) */
FBP_CLONES static void fbp_bf16_round_f32(const float *x, float *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        u = fbp_bf16_round_bits(u) << 16;
        memcpy(out + i, &u, sizeof u);
    }
}

static inline float fbp_bf16_rounded(float x)
{
    return fbp_bf16_widen(fbp_bf16_round(x));
}

/* C (m x n, rows ldc apart) += round(A) . round(B), A m x k (rows lda
 * apart), B k x n (rows ldb apart), both rounded as they are read: no pack
 * and no copy to keep current, for calls of a few rows (one-row latency).
 * A row's 32 columns at a time sum over k in order, in a local array. */
FBP_CLONES static void fbp_bf16_gemm_rounding(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                              const float *A, ptrdiff_t lda,
                                              const float *B, ptrdiff_t ldb,
                                              float *C, ptrdiff_t ldc)
{
    for (ptrdiff_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        ptrdiff_t j0 = 0;
        for (; j0 + 32 <= n; j0 += 32) {
            float s[32];
            memcpy(s, c + j0, sizeof s);
            for (ptrdiff_t p = 0; p < k; p++) {
                float ap = fbp_bf16_rounded(a[p]);
                const float *b = B + p * ldb + j0;
                for (int j = 0; j < 32; j++)
                    s[j] += ap * fbp_bf16_rounded(b[j]);
            }
            memcpy(c + j0, s, sizeof s);
        }
        if (j0 < n) {
            ptrdiff_t cols = n - j0;
            float s[32];
            memcpy(s, c + j0, (size_t)cols * sizeof *s);
            for (ptrdiff_t p = 0; p < k; p++) {
                float ap = fbp_bf16_rounded(a[p]);
                const float *b = B + p * ldb + j0;
                for (ptrdiff_t j = 0; j < cols; j++)
                    s[j] += ap * fbp_bf16_rounded(b[j]);
            }
            memcpy(c + j0, s, (size_t)cols * sizeof *s);
        }
    }
}

#endif
