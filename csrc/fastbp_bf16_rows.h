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
 * Any CPU: a row's 32 columns at a time sum over k in order, in a local
 * array (rounding in C costs ~10 operations a weight, 2x float32's time). */
FBP_CLONES static void fbp_bf16_gemm_rounding_c(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
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

#if FBP_HAVE_BF16_ISA
/* AVX512-BF16: two rows of B at a time rounded by vcvtne2ps2bf16 (nearest
 * even, NaN kept), interleaved into the pairs vdpbf16ps reads, which adds
 * the two products of each pair to the float32 sums, as the packed paths
 * do; 64 columns a step, in 4 registers. */
__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static void
fbp_bf16_gemm_rounding_avx512(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *A,
                              ptrdiff_t lda, const float *B, ptrdiff_t ldb, float *C,
                              ptrdiff_t ldc)
{
    static const short pairs[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30,
                                    15, 31};
    __m512i order = _mm512_loadu_si512(pairs);
    for (ptrdiff_t i = 0; i < m; i++) {
        const float *a = A + i * lda;
        float *c = C + i * ldc;
        for (ptrdiff_t j0 = 0; j0 < n; j0 += 64) {
            __mmask16 mask[4];
            __m512 s[4];
            for (int v = 0; v < 4; v++) {
                ptrdiff_t left = n - j0 - 16 * v;
                mask[v] = left >= 16 ? (__mmask16)0xffff
                    : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);
                s[v] = _mm512_maskz_loadu_ps(mask[v], c + j0 + 16 * v);
            }
            for (ptrdiff_t p = 0; p < k; p += 2) {
                int last = p + 1 == k;  /* an odd k: the last row pairs with zeros */
                __m512i ap = _mm512_set1_epi32(
                    (int32_t)fbp_bf16_pair(a[p], last ? 0.0f : a[p + 1]));
                const float *b0 = B + p * ldb + j0, *b1 = b0 + ldb;
                for (int v = 0; v < 4; v++) {
                    __m512 w0 = _mm512_maskz_loadu_ps(mask[v], b0 + 16 * v);
                    __m512 w1 = last ? _mm512_setzero_ps()
                                     : _mm512_maskz_loadu_ps(mask[v], b1 + 16 * v);
                    __m512i w = _mm512_permutexvar_epi16(
                        order, (__m512i)_mm512_cvtne2ps_pbh(w1, w0));
                    s[v] = _mm512_dpbf16_ps(s[v], (__m512bh)ap, (__m512bh)w);
                }
            }
            for (int v = 0; v < 4; v++)
                _mm512_mask_storeu_ps(c + j0 + 16 * v, mask[v], s[v]);
        }
    }
}
#endif

/* fbp_bf16_gemm_rounding_c, or its AVX512-BF16 form unless the products
 * are forced onto the emulated path */
static inline void fbp_bf16_gemm_rounding(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                          const float *A, ptrdiff_t lda, const float *B,
                                          ptrdiff_t ldb, float *C, ptrdiff_t ldc)
{
#if FBP_HAVE_BF16_ISA
    if (fbp_bf16_path() != FBP_BF16_EMULATED && fbp_bf16_path_runs(FBP_BF16_AVX512)) {
        fbp_bf16_gemm_rounding_avx512(m, n, k, A, lda, B, ldb, C, ldc);
        return;
    }
#endif
    fbp_bf16_gemm_rounding_c(m, n, k, A, lda, B, ldb, C, ldc);
}

#endif
