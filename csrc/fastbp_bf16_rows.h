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
/* A run of NV 16-column vectors of a row of C (columns j0 + 16 v), over
 * pairs [q0, q1) of k: two rows of B at a time rounded by vcvtne2ps2bf16
 * (nearest even, NaN kept), interleaved into the pairs vdpbf16ps reads,
 * which adds the two products of each pair to the float32 sums, as the
 * packed paths do. ``pairs`` holds A's row rounded and paired once; an odd
 * k's last row pairs with zeros. C holds the sums between runs:
 * a float32 stored and loaded back is the same value, so splitting k or
 * the columns leaves every sum's order, and its bits, as they were. */
#define FBP_BF16_ROUNDING_RUN(NV)                                             \
    do {                                                                      \
        __mmask16 mask[NV];                                                   \
        __m512 s[NV];                                                         \
        for (int v = 0; v < NV; v++) {                                        \
            ptrdiff_t left = n - j0 - 16 * v;                                 \
            mask[v] = left >= 16 ? (__mmask16)0xffff                          \
                : (__mmask16)((1u << left) - 1);                              \
            s[v] = _mm512_maskz_loadu_ps(mask[v], c + j0 + 16 * v);           \
        }                                                                     \
        for (ptrdiff_t q = q0; q < q1; q++) {                                 \
            __m512i ap = _mm512_set1_epi32((int32_t)pairs[q - q0]);           \
            const float *b0 = B + 2 * q * ldb + j0, *b1 = b0 + ldb;           \
            for (int v = 0; v < NV; v++) {                                    \
                __m512 w0 = _mm512_maskz_loadu_ps(mask[v], b0 + 16 * v);      \
                __m512 w1 = 2 * q + 1 == k ? _mm512_setzero_ps()              \
                    : _mm512_maskz_loadu_ps(mask[v], b1 + 16 * v);            \
                __m512i w = _mm512_permutexvar_epi16(                         \
                    order, (__m512i)_mm512_cvtne2ps_pbh(w1, w0));             \
                s[v] = _mm512_dpbf16_ps(s[v], (__m512bh)ap, (__m512bh)w);     \
            }                                                                 \
        }                                                                     \
        for (int v = 0; v < NV; v++)                                          \
            _mm512_mask_storeu_ps(c + j0 + 16 * v, mask[v], s[v]);            \
    } while (0)

/* Pairs of A's row rounded at a time: a 1 KiB buffer on the stack. */
#define FBP_BF16_ROUNDING_PAIRS 256

/* For each row of A (a) and of C (c), and each block [q0, q1) of the
 * row's pairs, held rounded and paired in ``pairs`` (an odd k's last
 * value pairs with 0): BODY. */
#define FBP_BF16_EACH_PAIR_BLOCK(BODY)                                        \
    for (ptrdiff_t i = 0; i < m; i++) {                                       \
        const float *a = A + i * lda;                                         \
        float *c = C + i * ldc;                                               \
        for (ptrdiff_t q0 = 0; q0 < n_pairs; q0 += FBP_BF16_ROUNDING_PAIRS) { \
            ptrdiff_t q1 = q0 + FBP_BF16_ROUNDING_PAIRS < n_pairs             \
                ? q0 + FBP_BF16_ROUNDING_PAIRS : n_pairs;                     \
            for (ptrdiff_t q = q0; q < q1; q++)                               \
                pairs[q - q0] = fbp_bf16_pair(a[2 * q],                       \
                                              2 * q + 1 < k ? a[2 * q + 1] : 0.0f); \
            BODY                                                              \
        }                                                                     \
    }

/* C += round(A) . round(B) on AVX512-BF16: per row of A, its pairs rounded
 * once a block of FBP_BF16_ROUNDING_PAIRS, then 128 columns of C at a time
 * in 8 registers (64 at a time left a one-row call waiting on its sums'
 * dependency chains, and rounded A's pair again for every 64 columns). */
__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static void
fbp_bf16_gemm_rounding_avx512(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *A,
                              ptrdiff_t lda, const float *B, ptrdiff_t ldb, float *C,
                              ptrdiff_t ldc)
{
    static const short interleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22,
                                         7, 23, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13,
                                         29, 14, 30, 15, 31};
    __m512i order = _mm512_loadu_si512(interleave);
    uint32_t pairs[FBP_BF16_ROUNDING_PAIRS];
    ptrdiff_t n_pairs = (k + 1) / 2;
    FBP_BF16_EACH_PAIR_BLOCK({
        ptrdiff_t j0 = 0;
        for (; j0 + 128 <= n; j0 += 128)
            FBP_BF16_ROUNDING_RUN(8);
        switch ((n - j0 + 15) / 16) {  /* 1-127 columns left */
        case 8: FBP_BF16_ROUNDING_RUN(8); break;
        case 7: FBP_BF16_ROUNDING_RUN(7); break;
        case 6: FBP_BF16_ROUNDING_RUN(6); break;
        case 5: FBP_BF16_ROUNDING_RUN(5); break;
        case 4: FBP_BF16_ROUNDING_RUN(4); break;
        case 3: FBP_BF16_ROUNDING_RUN(3); break;
        case 2: FBP_BF16_ROUNDING_RUN(2); break;
        case 1: FBP_BF16_ROUNDING_RUN(1); break;
        default: break;
        }
    })
}
#endif

#if FBP_HAVE_BF16_ISA
/* NP 32-column panels of B's pack (fastbp_bf16.h: a pair of rows of a
 * panel is 128 bytes, pairs one after the other) into a row of C from
 * column j0, over pairs [q0, q1): the pair sums of
 * fbp_bf16_gemm_rounding_avx512 in the same order, on the same rounded
 * values, without rounding and interleaving B again (one load and one
 * vdpbf16ps for 32 products). */
#define FBP_BF16_PACKED_ROW_RUN(NP)                                           \
    do {                                                                      \
        __mmask16 mask[2 * NP];                                               \
        __m512 s[2 * NP];                                                     \
        for (int v = 0; v < 2 * NP; v++) {                                    \
            ptrdiff_t left = n - j0 - 16 * v;                                 \
            mask[v] = left >= 16 ? (__mmask16)0xffff                          \
                : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);   \
            s[v] = _mm512_maskz_loadu_ps(mask[v], c + j0 + 16 * v);           \
        }                                                                     \
        const uint16_t *panel = Bp + j0 * k_pad;                              \
        for (ptrdiff_t q = q0; q < q1; q++) {                                 \
            __m512i ap = _mm512_set1_epi32((int32_t)pairs[q - q0]);           \
            for (int v = 0; v < 2 * NP; v++) {                                \
                __m512i w = _mm512_loadu_si512(panel + (v / 2) * 32 * k_pad   \
                                               + 64 * q + 32 * (v % 2));      \
                s[v] = _mm512_dpbf16_ps(s[v], (__m512bh)ap, (__m512bh)w);     \
            }                                                                 \
        }                                                                     \
        for (int v = 0; v < 2 * NP; v++)                                      \
            _mm512_mask_storeu_ps(c + j0 + 16 * v, mask[v], s[v]);            \
    } while (0)

/* C (m x n, rows ldc apart) += round(A) . B, B already packed
 * (fbp_bf16_pack_b of a k x n matrix): the same bits as
 * fbp_bf16_gemm_rounding_avx512 on B, for a few rows of A (bfloat16's
 * one-row predict, where rounding B again on each call cost 2x float32's
 * time). 128 columns (4 panels, 8 sums) at a time. */
__attribute__((target("avx512f,avx512bw,avx512bf16"), noinline)) static void
fbp_bf16_gemm_packed_rows(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const float *A,
                          ptrdiff_t lda, const uint16_t *Bp, float *C, ptrdiff_t ldc)
{
    uint32_t pairs[FBP_BF16_ROUNDING_PAIRS];
    ptrdiff_t n_pairs = (k + 1) / 2, k_pad = fbp_bf16_up(k);
    FBP_BF16_EACH_PAIR_BLOCK({
        ptrdiff_t j0 = 0;
        for (; j0 + 128 <= n; j0 += 128)
            FBP_BF16_PACKED_ROW_RUN(4);
        switch ((n - j0 + 31) / 32) {  /* 1-127 columns left */
        case 4: FBP_BF16_PACKED_ROW_RUN(4); break;
        case 3: FBP_BF16_PACKED_ROW_RUN(3); break;
        case 2: FBP_BF16_PACKED_ROW_RUN(2); break;
        case 1: FBP_BF16_PACKED_ROW_RUN(1); break;
        default: break;
        }
    })
}
#endif

/* Whether fbp_bf16_gemm_packed_rows runs here (AVX512-BF16, and the
 * products not forced onto the emulated path). */
static inline int fbp_bf16_packed_rows_run(void)
{
#if FBP_HAVE_BF16_ISA
    return fbp_bf16_path() != FBP_BF16_EMULATED && fbp_bf16_path_runs(FBP_BF16_AVX512);
#else
    return 0;
#endif
}

/* fbp_bf16_gemm_packed_rows where it runs; never called elsewhere */
static inline void fbp_bf16_gemm_packed_rows_any(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                                 const float *A, ptrdiff_t lda,
                                                 const uint16_t *Bp, float *C, ptrdiff_t ldc)
{
#if FBP_HAVE_BF16_ISA
    fbp_bf16_gemm_packed_rows(m, n, k, A, lda, Bp, C, ldc);
#else
    (void)m; (void)n; (void)k; (void)A; (void)lda; (void)Bp; (void)C; (void)ldc;
#endif
}

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
