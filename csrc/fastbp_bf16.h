/* bfloat16 products with float32 accumulation (mixed precision).
 *
 * C (float32, m x n) = A.B, or C += A.B, where A(i, p) and B(p, j) are
 * float32 rounded to bfloat16 (nearest, ties to even; NaN stays NaN) and
 * every product is summed in float32. A and B are read through strides
 * (A(i, p) = A[i*a_rs + p*a_cs]), so one routine serves the forward
 * product z.W, the delta product delta.W^T and the weight gradient z^T.delta.
 *
 * The operands are rounded once into packed copies (pack A and B, then
 * multiply the packs), so a training step packs its weights once and uses
 * them in every product that reads them:
 *   A pack: up(m) rows of up(k) bfloat16 (fbp_bf16_lda(k) apart), zeros
 *           past m and k;
 *   B pack: up(k)/2 rows of up(n) pairs (B(2q, j), B(2q+1, j)), zeros past
 *           k and n: the "VNNI" layout vdpbf16ps and AMX's B tiles read;
 * up(x) rounds x up to a multiple of 32 (one AMX tile step along k, two
 * tiles along m and n). The zeros add nothing to a sum.
 *
 * Three paths, one picked at runtime (fbp_bf16_path) so the wheel runs
 * anywhere (no -m flags: each kernel carries its own target attribute):
 *   AMX        _tile_dpbf16ps on 2 x 2 tiles of 16 x 16 float32, when the
 *              CPU has AMX-TILE and AMX-BF16 and Linux grants the process
 *              the tile data state (arch_prctl(ARCH_REQ_XCOMP_PERM), asked
 *              once; refused or another OS: the next path);
 *   AVX512BF16 _mm512_dpbf16_ps on 6 x 4 register tiles, when the CPU has
 *              AVX-512F and AVX512-BF16 (and the OS saves zmm state);
 *   EMULATED   plain C: the bfloat16 values widened to float32 (exactly),
 *              each pair of products summed and added in float32, as the
 *              instructions pair them. Same rounding of the inputs, slower
 *              than float32 BLAS: it is there so results do not depend on
 *              having the instructions.
 * The hardware paths treat bfloat16 denormals as zero (the instructions
 * do); the rounding itself (fbp_bf16_round) keeps them.
 */
#ifndef FASTBP_BF16_H
#define FASTBP_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fastbp_math.h"  /* FBP_CLONES: the packing loops per instruction set */

#define FBP_BF16_EMULATED 0
#define FBP_BF16_AVX512 1
#define FBP_BF16_AMX 2
#define FBP_BF16_AUTO (-1)

/* float32 -> bfloat16, nearest with ties to even: add 0x7fff plus the
 * kept part's last bit, then truncate. A NaN would carry into the
 * exponent (or to infinity), so it keeps its top bits and is made quiet.
 * Branch-free on the bits, so the packing loops vectorise. */
static inline uint32_t fbp_bf16_round_bits(uint32_t u)
{
    uint32_t nearest = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    uint32_t quiet = (u >> 16) | 0x0040u;
    return (u & 0x7fffffffu) > 0x7f800000u ? quiet : nearest;
}

static inline uint16_t fbp_bf16_round(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return (uint16_t)fbp_bf16_round_bits(u);
}

static inline float fbp_bf16_widen(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* two values as the 32-bit pair the instructions read: lo first in memory */
static inline uint32_t fbp_bf16_pair(float lo, float hi)
{
    return (uint32_t)fbp_bf16_round(lo) | (uint32_t)fbp_bf16_round(hi) << 16;
}

/* The packing loops, written apart on restrict pointers so they vectorise. */
FBP_CLONES static void fbp_bf16_round_n(const float *restrict x, uint16_t *restrict out,
                                        ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fbp_bf16_round(x[i]);
}

/* n pairs (x0[i*in_step], x1[i*in_step]) to out + i*out_step */
FBP_CLONES static void fbp_bf16_pairs(const float *restrict x0, const float *restrict x1,
                                      ptrdiff_t in_step, uint16_t *restrict out,
                                      ptrdiff_t out_step, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++) {
        uint32_t w = fbp_bf16_pair(x0[i * in_step], x1[i * in_step]);
        memcpy(out + i * out_step, &w, sizeof w);
    }
}

static inline void fbp_bf16_widen_n(const uint16_t *h, float *out, ptrdiff_t n)
{
    for (ptrdiff_t i = 0; i < n; i++)
        out[i] = fbp_bf16_widen(h[i]);
}

static inline ptrdiff_t fbp_bf16_up(ptrdiff_t x) { return (x + 31) & ~(ptrdiff_t)31; }

/* Entries from one row of A's pack to the next: up(k), and 32 more where
 * that makes the rows a multiple of 1 KiB apart: an AMX tile's 16 rows of
 * A then fell in a few L1 sets (2048^3 ran at ~440 GFLOP/s). */
static inline ptrdiff_t fbp_bf16_lda(ptrdiff_t k)
{ return fbp_bf16_up(k) + (fbp_bf16_up(k) % 512 == 0 && k > 0 ? 32 : 0); }

/* bfloat16 entries of A's pack (m x k) and of B's pack (k x n) */
static inline size_t fbp_bf16_a_size(ptrdiff_t m, ptrdiff_t k)
{ return (size_t)fbp_bf16_up(m) * (size_t)fbp_bf16_lda(k); }
static inline size_t fbp_bf16_b_size(ptrdiff_t k, ptrdiff_t n)
{ return (size_t)fbp_bf16_up(k) * (size_t)fbp_bf16_up(n); }

/* A's pack: row i, entries p and p + 1 at Ap[i * fbp_bf16_lda(k) + p]. */
static void fbp_bf16_pack_a(ptrdiff_t m, ptrdiff_t k, const float *A, ptrdiff_t a_rs,
                            ptrdiff_t a_cs, uint16_t *Ap)
{
    ptrdiff_t m_pad = fbp_bf16_up(m), k_pad = fbp_bf16_lda(k), k_even = k & ~(ptrdiff_t)1;
    if (a_cs == 1) {
        for (ptrdiff_t i = 0; i < m; i++)
            fbp_bf16_round_n(A + i * a_rs, Ap + i * k_pad, k);
    } else {  /* A = z^T: two rows of z give every row of the pack a pair, in
               * blocks of 64 rows of the pack, which stay in L1 meanwhile */
        for (ptrdiff_t i0 = 0; i0 < m; i0 += 64) {
            ptrdiff_t rows = m - i0 < 64 ? m - i0 : 64;
            for (ptrdiff_t p = 0; p < k_even; p += 2)
                fbp_bf16_pairs(A + i0 * a_rs + p * a_cs, A + i0 * a_rs + (p + 1) * a_cs, a_rs,
                               Ap + i0 * k_pad + p, k_pad, rows);
        }
        for (ptrdiff_t i = 0; i < m && k_even < k; i++)
            Ap[i * k_pad + k_even] = fbp_bf16_round(A[i * a_rs + k_even * a_cs]);
    }
    for (ptrdiff_t i = 0; i < m_pad; i++) {
        ptrdiff_t from = i < m ? k : 0;
        memset(Ap + i * k_pad + from, 0, (size_t)(k_pad - from) * sizeof *Ap);
    }
}

/* B read along its rows (b_cs = 1): two rows give a row of pairs in each
 * panel. The strides are fixed here so the pairs vectorise, and 16 rows of
 * B at a time fill 1 KiB of each panel, rather than every row 128 bytes of
 * each (as many write streams as panels) or 64 rows 4 KiB (as many read
 * streams): the weights' pack, made every training step. */
FBP_CLONES static void fbp_bf16_pack_b_rows(ptrdiff_t k_even, ptrdiff_t n, ptrdiff_t k_pad,
                                            const float *restrict B, ptrdiff_t b_rs,
                                            uint16_t *restrict Bp)
{
    for (ptrdiff_t p0 = 0; p0 < k_even; p0 += 16)
        for (ptrdiff_t j0 = 0; j0 < n; j0 += 32) {
            ptrdiff_t cols = n - j0 < 32 ? n - j0 : 32, p1 = k_even - p0 < 16 ? k_even : p0 + 16;
            for (ptrdiff_t p = p0; p < p1; p += 2) {
                const float *x0 = B + p * b_rs + j0, *x1 = x0 + b_rs;
                uint16_t *out = Bp + j0 * k_pad + p * 32;
                for (ptrdiff_t c = 0; c < cols; c++) {
                    uint32_t w = fbp_bf16_pair(x0[c], x1[c]);
                    memcpy(out + 2 * c, &w, sizeof w);
                }
            }
        }
}

/* B's pack: panels of 32 columns, each up(k)/2 rows of 32 pairs (64
 * entries, 128 bytes) one after the other, so a tile walks its panel
 * contiguously; the pair (B(2q, j), B(2q+1, j)) of column j = 32 P + c sits
 * at Bp[P * 32 up(k) + 64 q + 2 c]. Only the entries no value goes to are
 * zeroed: every panel's rows of pairs from k_even/2 on, and the last
 * panel's columns past n. */
static void fbp_bf16_pack_b(ptrdiff_t k, ptrdiff_t n, const float *B, ptrdiff_t b_rs,
                            ptrdiff_t b_cs, uint16_t *Bp)
{
    ptrdiff_t n_pad = fbp_bf16_up(n), k_pad = fbp_bf16_up(k), k_even = k & ~(ptrdiff_t)1;
    for (ptrdiff_t j0 = 0; j0 < n_pad; j0 += 32)
        memset(Bp + j0 * k_pad + k_even * 32, 0, (size_t)(k_pad - k_even) * 32 * sizeof *Bp);
    for (ptrdiff_t q = 0; (n & 31) != 0 && 2 * q < k_even; q++)
        memset(Bp + (n & ~(ptrdiff_t)31) * k_pad + 64 * q + 2 * (n & 31), 0,
               (size_t)(64 - 2 * (n & 31)) * sizeof *Bp);
    if (b_cs == 1)
        fbp_bf16_pack_b_rows(k_even, n, k_pad, B, b_rs, Bp);
    else  /* B = W^T: a pair is two neighbours in a row of W */
        for (ptrdiff_t j = 0; j < n; j++)
            fbp_bf16_pairs(B + j * b_cs, B + j * b_cs + b_rs, 2 * b_rs,
                           Bp + (j & ~(ptrdiff_t)31) * k_pad + 2 * (j & 31), 64, k_even / 2);
    for (ptrdiff_t j = 0; j < n && k_even < k; j++)
        Bp[(j & ~(ptrdiff_t)31) * k_pad + k_even * 32 + 2 * (j & 31)]
            = fbp_bf16_round(B[k_even * b_rs + j * b_cs]);
}

/* ---- EMULATED: any CPU ------------------------------------------------ */
/* Each entry of C sums its pairs in order, as the instructions do: per
 * pair q, t = A(i, 2q) B(2q, j) + A(i, 2q+1) B(2q+1, j), then s += t (the
 * two products of bfloat16 values are exact in float32; a clone with FMA
 * fuses one of them into the pair's add, the same way for every tile).
 * Tiles of FBP_BF16_EMU_ROWS rows x 16 columns of C stay in 16-wide vector
 * sums over all of k (its pack's zeros make every panel whole): B's pairs
 * are widened by a shift and a mask (the low half is B(2q, j)), once a
 * tile rather than once a row, with no shuffles. A row's 32 sums in a
 * local array, stored and loaded each pair, ran at ~15 % of float32's GEMM
 * rate on an AVX2 EPYC. */
#if defined(__GNUC__)
#define FBP_BF16_EMU_ROWS 4
typedef float fbp_bf16_v8f __attribute__((vector_size(32)));
typedef uint32_t fbp_bf16_v8u __attribute__((vector_size(32)));

/* R rows of C from row i, the 16 columns j0 + h on of B's panel, as two
 * vectors of 8 a row (the width GCC keeps in registers on AVX2) */
#define FBP_BF16_EMU_TILE(R)                                                  \
    do {                                                                      \
        fbp_bf16_v8f s0[R], s1[R];                                            \
        for (int r = 0; r < R; r++) {                                         \
            float init[16] = {0};                                             \
            if (accumulate)                                                   \
                memcpy(init, C + (i + r) * ldc + j0 + h, (size_t)w * sizeof *init); \
            memcpy(&s0[r], init, sizeof s0[r]);                               \
            memcpy(&s1[r], init + 8, sizeof s1[r]);                           \
        }                                                                     \
        for (ptrdiff_t q = 0; q < n_pairs; q++) {                             \
            fbp_bf16_v8u p0, p1;                                              \
            memcpy(&p0, panel + q * 64 + 2 * h, sizeof p0);                   \
            memcpy(&p1, panel + q * 64 + 2 * h + 16, sizeof p1);              \
            fbp_bf16_v8f b00 = (fbp_bf16_v8f)(p0 << 16);                      \
            fbp_bf16_v8f b01 = (fbp_bf16_v8f)(p0 & 0xffff0000u);              \
            fbp_bf16_v8f b10 = (fbp_bf16_v8f)(p1 << 16);                      \
            fbp_bf16_v8f b11 = (fbp_bf16_v8f)(p1 & 0xffff0000u);              \
            for (int r = 0; r < R; r++) {                                     \
                uint32_t ap, lo, hi;                                          \
                float a0, a1;                                                 \
                memcpy(&ap, Ap + (i + r) * lda + 2 * q, sizeof ap);           \
                lo = ap << 16;                                                \
                hi = ap & 0xffff0000u;                                        \
                memcpy(&a0, &lo, sizeof a0);                                  \
                memcpy(&a1, &hi, sizeof a1);                                  \
                s0[r] += a0 * b00 + a1 * b01;                                 \
                s1[r] += a0 * b10 + a1 * b11;                                 \
            }                                                                 \
        }                                                                     \
        for (int r = 0; r < R; r++) {                                         \
            float out[16];                                                    \
            memcpy(out, &s0[r], sizeof s0[r]);                                \
            memcpy(out + 8, &s1[r], sizeof s1[r]);                            \
            memcpy(C + (i + r) * ldc + j0 + h, out, (size_t)w * sizeof *out); \
        }                                                                     \
    } while (0)

FBP_CLONES static void fbp_bf16_gemm_emulated(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                              const uint16_t *Ap, const uint16_t *Bp,
                                              float *C, ptrdiff_t ldc, int accumulate)
{
    ptrdiff_t k_pad = fbp_bf16_up(k), lda = fbp_bf16_lda(k), n_pairs = (k + 1) / 2;
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 32) {
        const uint16_t *panel = Bp + j0 * k_pad;
        ptrdiff_t cols = n - j0 < 32 ? n - j0 : 32;
        for (ptrdiff_t h = 0; h < cols; h += 16) {
            ptrdiff_t w = cols - h < 16 ? cols - h : 16, i = 0;
            for (; i + FBP_BF16_EMU_ROWS <= m; i += FBP_BF16_EMU_ROWS)
                FBP_BF16_EMU_TILE(FBP_BF16_EMU_ROWS);
            for (; i < m; i++)
                FBP_BF16_EMU_TILE(1);
        }
    }
}
#else
FBP_CLONES static void fbp_bf16_gemm_emulated(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                              const uint16_t *Ap, const uint16_t *Bp,
                                              float *C, ptrdiff_t ldc, int accumulate)
{
    ptrdiff_t k_pad = fbp_bf16_up(k), lda = fbp_bf16_lda(k);
    for (ptrdiff_t j0 = 0; j0 < n; j0 += 32) {
        const uint16_t *panel = Bp + j0 * k_pad;
        ptrdiff_t cols = n - j0 < 32 ? n - j0 : 32;
        for (ptrdiff_t i = 0; i < m; i++) {
            float s[32];
            float *c = C + i * ldc + j0;
            for (int j = 0; j < 32; j++)
                s[j] = accumulate && j < cols ? c[j] : 0.0f;
            for (ptrdiff_t q = 0; 2 * q < k; q++) {
                float a0 = fbp_bf16_widen(Ap[i * lda + 2 * q]);
                float a1 = fbp_bf16_widen(Ap[i * lda + 2 * q + 1]);
                const uint16_t *b = panel + q * 64;
                for (int j = 0; j < 32; j++)
                    s[j] += a0 * fbp_bf16_widen(b[2 * j]) + a1 * fbp_bf16_widen(b[2 * j + 1]);
            }
            memcpy(c, s, (size_t)cols * sizeof *c);
        }
    }
}
#endif

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FASTBP_NO_BF16_ISA) \
    && (defined(__clang__) ? __clang_major__ >= 12 : __GNUC__ >= 11)
#define FBP_HAVE_BF16_ISA 1
#include <immintrin.h>
#include <cpuid.h>

/* ---- AVX512BF16: register tiles ----------------------------------------
 * A tile of MR rows x NV vectors of 16 float32 lives in zmm registers while
 * q runs over a block of k pairs: each step loads NV vectors of B's pack
 * (16 columns x one pair each) and broadcasts one pair of A per row. */
#define FBP_BF16_KC 256  /* k per block: a panel of B's pack, 256 x 64, is 32 KiB */
#define FBP_BF16_MC 192

#define FBP_BF16_TILE(MR, NV)                                                 \
    do {                                                                      \
        __m512 c[MR][NV];                                                     \
        __mmask16 mask[NV];                                                   \
        for (int i = 0; i < MR; i++)                                          \
            for (int v = 0; v < NV; v++)                                      \
                c[i][v] = _mm512_setzero_ps();                                \
        for (ptrdiff_t q = 0; q < kq; q++) {                                  \
            __m512i b[NV];                                                    \
            for (int v = 0; v < NV; v++)                                      \
                b[v] = _mm512_loadu_si512(Bv[v] + q * 64);                    \
            for (int i = 0; i < MR; i++) {                                    \
                int32_t pair;                                                 \
                memcpy(&pair, Aq + i * lda + 2 * q, sizeof pair);           \
                __m512i a = _mm512_set1_epi32(pair);                          \
                for (int v = 0; v < NV; v++)                                  \
                    c[i][v] = _mm512_dpbf16_ps(c[i][v], (__m512bh)a,          \
                                               (__m512bh)b[v]);               \
            }                                                                 \
        }                                                                     \
        for (int v = 0; v < NV; v++) {                                        \
            ptrdiff_t left = n - j - v * 16;                                  \
            mask[v] = left >= 16 ? (__mmask16)0xffff                          \
                : left <= 0 ? (__mmask16)0 : (__mmask16)((1u << left) - 1);   \
        }                                                                     \
        for (int i = 0; i < MR; i++)                                          \
            for (int v = 0; v < NV; v++) {                                    \
                float *cp = Ci + i * ldc + v * 16;                            \
                __m512 x = add ? _mm512_maskz_loadu_ps(mask[v], cp)           \
                               : _mm512_setzero_ps();                         \
                _mm512_mask_storeu_ps(cp, mask[v], _mm512_add_ps(x, c[i][v])); \
            }                                                                 \
    } while (0)

/* the rows of one column panel: tiles of MR_MAIN, then of 4, then 1-3 */
#define FBP_BF16_PANEL(MR_MAIN, NV)                                           \
    do {                                                                      \
        const uint16_t *Bv[NV];  /* 16 columns of B's pack each, from p0 */   \
        for (int v = 0; v < NV; v++)                                          \
            Bv[v] = Bp + ((j + 16 * v) & ~(ptrdiff_t)31) * k_pad + p0 * 32    \
                    + ((j + 16 * v) & 31) * 2;                                \
        ptrdiff_t r = i0;                                                     \
        const uint16_t *Aq;                                                   \
        float *Ci;                                                            \
        for (; r + MR_MAIN <= i1; r += MR_MAIN) {                             \
            Aq = Ap + r * lda + p0;                                         \
            Ci = C + r * ldc + j;                                             \
            FBP_BF16_TILE(MR_MAIN, NV);                                       \
        }                                                                     \
        for (; r + 4 <= i1; r += 4) {                                         \
            Aq = Ap + r * lda + p0;                                         \
            Ci = C + r * ldc + j;                                             \
            FBP_BF16_TILE(4, NV);                                             \
        }                                                                     \
        Aq = Ap + r * lda + p0;                                             \
        Ci = C + r * ldc + j;                                                 \
        switch (i1 - r) {                                                     \
        case 3: FBP_BF16_TILE(3, NV); break;                                  \
        case 2: FBP_BF16_TILE(2, NV); break;                                  \
        case 1: FBP_BF16_TILE(1, NV); break;                                  \
        default: break;                                                       \
        }                                                                     \
    } while (0)

__attribute__((target("avx512f,avx512bf16"), noinline)) static void
fbp_bf16_gemm_avx512(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const uint16_t *Ap,
                     const uint16_t *Bp, float *C, ptrdiff_t ldc, int accumulate)
{
    ptrdiff_t k_pad = fbp_bf16_up(k), lda = fbp_bf16_lda(k);
    ptrdiff_t k_even = (k + 1) & ~(ptrdiff_t)1;  /* the pack's zeros past k pair up */
    for (ptrdiff_t i0 = 0; i0 < m; i0 += FBP_BF16_MC) {
        ptrdiff_t i1 = m - i0 < FBP_BF16_MC ? m : i0 + FBP_BF16_MC;
        for (ptrdiff_t p0 = 0; p0 < k_even || p0 == 0; p0 += FBP_BF16_KC) {
            ptrdiff_t kq = (k_even - p0 < FBP_BF16_KC ? k_even - p0 : FBP_BF16_KC) / 2;
            int add = accumulate || p0 > 0;
            ptrdiff_t j = 0;
            for (; n - j > 32; j += 64)  /* the pack has 64 columns from j */
                FBP_BF16_PANEL(6, 4);
            for (; j < n; j += 32)
                FBP_BF16_PANEL(12, 2);
        }
    }
}

/* ---- AMX: tiles of 16 x 16 float32 ---------------------------------------
 * A 32 x 32 block of C in tiles 0-3 (2 x 2), A's rows in tiles 4 and 5
 * (16 x 32 bfloat16), B's pairs in 6 and 7 (16 pairs x 16 columns), four
 * _tile_dpbf16ps a step of 32 along k. Blocks wholly inside C load and
 * store C in place; at the edges a 32 x 32 copy takes its place. */
/* Blocks of MC rows x NC columns of C, and in each, blocks of KC along k:
 * a KC x NC block of B's pack (512 KiB) stays in L2 while every 32 rows of
 * A (a 32 x KC panel, 32 KiB) pass over it from L1; k up to 512 adds to C
 * once. Measured quiet on this project's Xeon (2048^3, one thread): KC
 * 256-1024 x NC 256-4096 x MC 256-512 all ran at 350-490 GFLOP/s, this one
 * at the top, and the training shapes (k <= 784) at 560-1000 in each. */
#ifndef FBP_BF16_AMX_KC
#define FBP_BF16_AMX_KC 512
#endif
#ifndef FBP_BF16_AMX_NC
#define FBP_BF16_AMX_NC 512
#endif
#ifndef FBP_BF16_AMX_MC
#define FBP_BF16_AMX_MC 256
#endif

#define FBP_ARCH_REQ_XCOMP_PERM 0x1023
#define FBP_XFEATURE_XTILEDATA 18

__attribute__((target("amx-tile,amx-bf16"), noinline)) static void
fbp_bf16_gemm_amx(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, const uint16_t *Ap,
                  const uint16_t *Bp, float *C, ptrdiff_t ldc, int accumulate)
{
    ptrdiff_t k_pad = fbp_bf16_up(k), lda = fbp_bf16_lda(k);
    unsigned char config[64] __attribute__((aligned(64)));
    float edge[32 * 32] __attribute__((aligned(64)));
    memset(config, 0, sizeof config);
    config[0] = 1;  /* palette 1: 8 tiles of up to 16 rows x 64 bytes */
    for (int t = 0; t < 8; t++) {
        config[16 + 2 * t] = 64;  /* bytes a row (little-endian uint16) */
        config[48 + t] = 16;      /* rows */
    }
    _tile_loadconfig(config);
    for (ptrdiff_t ib = 0; ib < m; ib += FBP_BF16_AMX_MC)
    for (ptrdiff_t jb = 0; jb < n; jb += FBP_BF16_AMX_NC)
    for (ptrdiff_t p0 = 0; p0 < k_pad || p0 == 0; p0 += FBP_BF16_AMX_KC) {
        ptrdiff_t p1 = k_pad - p0 < FBP_BF16_AMX_KC ? k_pad : p0 + FBP_BF16_AMX_KC;
        int add = accumulate || p0 > 0;
        for (ptrdiff_t i0 = ib; i0 < m && i0 < ib + FBP_BF16_AMX_MC; i0 += 32)
            for (ptrdiff_t j0 = jb; j0 < n && j0 < jb + FBP_BF16_AMX_NC; j0 += 32) {
                int inside = i0 + 32 <= m && j0 + 32 <= n;
                ptrdiff_t rows = m - i0 < 32 ? m - i0 : 32, cols = n - j0 < 32 ? n - j0 : 32;
                float *c = inside ? C + i0 * ldc + j0 : edge;
                ptrdiff_t ld = inside ? ldc : 32;
                if (!inside) {
                    memset(edge, 0, sizeof edge);
                    if (add)
                        for (ptrdiff_t r = 0; r < rows; r++)
                            memcpy(edge + r * 32, C + (i0 + r) * ldc + j0,
                                   (size_t)cols * sizeof *edge);
                }
                if (add || !inside) {
                    _tile_loadd(0, c, ld * 4);
                    _tile_loadd(1, c + 16, ld * 4);
                    _tile_loadd(2, c + 16 * ld, ld * 4);
                    _tile_loadd(3, c + 16 * ld + 16, ld * 4);
                } else {
                    _tile_zero(0);
                    _tile_zero(1);
                    _tile_zero(2);
                    _tile_zero(3);
                }
                for (ptrdiff_t p = p0; p < p1; p += 32) {
                    const uint16_t *a = Ap + i0 * lda + p, *b = Bp + j0 * k_pad + p * 32;
                    _tile_loadd(4, a, lda * 2);
                    _tile_loadd(5, a + 16 * lda, lda * 2);
                    _tile_loadd(6, b, 128);
                    _tile_loadd(7, b + 32, 128);
                    _tile_dpbf16ps(0, 4, 6);
                    _tile_dpbf16ps(1, 4, 7);
                    _tile_dpbf16ps(2, 5, 6);
                    _tile_dpbf16ps(3, 5, 7);
                }
                _tile_stored(0, c, ld * 4);
                _tile_stored(1, c + 16, ld * 4);
                _tile_stored(2, c + 16 * ld, ld * 4);
                _tile_stored(3, c + 16 * ld + 16, ld * 4);
                if (!inside)
                    for (ptrdiff_t r = 0; r < rows; r++)
                        memcpy(C + (i0 + r) * ldc + j0, edge + r * 32,
                               (size_t)cols * sizeof *edge);
            }
    }
    _tile_release();
}

static inline int fbp_bf16_cpu_has(int path)
{
    unsigned int a, b, c, d;
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f"))  /* also: the OS saves zmm state */
        return 0;
    if (path == FBP_BF16_AVX512)
        return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 5 & 1);
    if (path == FBP_BF16_AMX) {
        unsigned int xcr0_lo, xcr0_hi;
        if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !(d >> 24 & 1) || !(d >> 22 & 1))
            return 0;  /* AMX-TILE, AMX-BF16 */
        __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
        return (xcr0_lo >> 17 & 3) == 3;  /* the OS manages TILECFG and TILEDATA */
    }
    return 0;
}

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
/* Linux hands a process the 8 KiB of tile state only when asked (5.16 on);
 * asked once, the answer holds for the process's threads. */
static inline int fbp_bf16_amx_granted(void)
{
    return syscall(SYS_arch_prctl, FBP_ARCH_REQ_XCOMP_PERM, FBP_XFEATURE_XTILEDATA) == 0;
}
#else
static inline int fbp_bf16_amx_granted(void) { return 0; }
#endif
#else
#define FBP_HAVE_BF16_ISA 0
#endif

/* Rows [c0, c1) of out (cols x rows) = x (rows x cols)^T, float32: the
 * bfloat16 training's delta_prev from its transposed product, a thread's
 * rows of it. 8 x 8 blocks in AVX2 registers where it runs (the scalar
 * loop, one element a load and a store, took ~1.6 % of a 2-thread fit),
 * 32 rows of x at a time; the edges element by element. A copy: the same
 * values on any path. */
static void fbp_f32_transpose_scalar(const float *x, ptrdiff_t rows, ptrdiff_t cols,
                                     ptrdiff_t c0, ptrdiff_t c1, float *out)
{
    for (ptrdiff_t i0 = 0; i0 < rows; i0 += 32) {
        ptrdiff_t i1 = rows - i0 < 32 ? rows : i0 + 32;
        for (ptrdiff_t j = c0; j < c1; j++)
            for (ptrdiff_t i = i0; i < i1; i++)
                out[j * rows + i] = x[i * cols + j];
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>
#define FBP_HAVE_AVX2_TRANSPOSE 1
__attribute__((target("avx2"), noinline)) static void
fbp_f32_transpose_avx2(const float *x, ptrdiff_t rows, ptrdiff_t cols, ptrdiff_t c0,
                       ptrdiff_t c1, float *out)
{
    ptrdiff_t rows8 = rows & ~(ptrdiff_t)7, j8 = c0 + ((c1 - c0) & ~(ptrdiff_t)7);
    for (ptrdiff_t i0 = 0; i0 < rows8; i0 += 32) {
        ptrdiff_t i1 = rows8 - i0 < 32 ? rows8 : i0 + 32;
        for (ptrdiff_t j = c0; j < j8; j += 8)
            for (ptrdiff_t i = i0; i < i1; i += 8) {
                const float *p = x + i * cols + j;
                __m256 r0 = _mm256_loadu_ps(p), r1 = _mm256_loadu_ps(p + cols);
                __m256 r2 = _mm256_loadu_ps(p + 2 * cols), r3 = _mm256_loadu_ps(p + 3 * cols);
                __m256 r4 = _mm256_loadu_ps(p + 4 * cols), r5 = _mm256_loadu_ps(p + 5 * cols);
                __m256 r6 = _mm256_loadu_ps(p + 6 * cols), r7 = _mm256_loadu_ps(p + 7 * cols);
                __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
                __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
                __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
                __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
                __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xee);
                __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xee);
                __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xee);
                __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xee);
                float *o = out + j * rows + i;
                _mm256_storeu_ps(o, _mm256_permute2f128_ps(u0, u4, 0x20));
                _mm256_storeu_ps(o + rows, _mm256_permute2f128_ps(u1, u5, 0x20));
                _mm256_storeu_ps(o + 2 * rows, _mm256_permute2f128_ps(u2, u6, 0x20));
                _mm256_storeu_ps(o + 3 * rows, _mm256_permute2f128_ps(u3, u7, 0x20));
                _mm256_storeu_ps(o + 4 * rows, _mm256_permute2f128_ps(u0, u4, 0x31));
                _mm256_storeu_ps(o + 5 * rows, _mm256_permute2f128_ps(u1, u5, 0x31));
                _mm256_storeu_ps(o + 6 * rows, _mm256_permute2f128_ps(u2, u6, 0x31));
                _mm256_storeu_ps(o + 7 * rows, _mm256_permute2f128_ps(u3, u7, 0x31));
            }
        for (ptrdiff_t j = j8; j < c1; j++)  /* the last 1-7 rows of out */
            for (ptrdiff_t i = i0; i < i1; i++)
                out[j * rows + i] = x[i * cols + j];
    }
    for (ptrdiff_t j = c0; j < c1; j++)  /* the last 1-7 columns of out */
        for (ptrdiff_t i = rows8; i < rows; i++)
            out[j * rows + i] = x[i * cols + j];
}
#else
#define FBP_HAVE_AVX2_TRANSPOSE 0
#endif

static inline void fbp_f32_transpose_rows(const float *x, ptrdiff_t rows, ptrdiff_t cols,
                                          ptrdiff_t c0, ptrdiff_t c1, float *out)
{
#if FBP_HAVE_AVX2_TRANSPOSE
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) {
        fbp_f32_transpose_avx2(x, rows, cols, c0, c1, out);
        return;
    }
#endif
    fbp_f32_transpose_scalar(x, rows, cols, c0, c1, out);
}

/* Whether a path can run here: 1 or 0, found once per path (AMX's
 * permission is asked then). */
static int fbp_bf16_can[3] = {1, -1, -1};

static inline int fbp_bf16_path_runs(int path)
{
    int can;
    if (path < 0 || path > 2)
        return 0;
    can = __atomic_load_n(&fbp_bf16_can[path], __ATOMIC_RELAXED);
    if (can < 0) {
#if FBP_HAVE_BF16_ISA
        can = fbp_bf16_cpu_has(path);
        if (can && path == FBP_BF16_AMX)
            can = fbp_bf16_amx_granted();
#else
        can = 0;
#endif
        __atomic_store_n(&fbp_bf16_can[path], can, __ATOMIC_RELAXED);
    }
    return can;
}

/* The path in use: the fastest that runs, unless fbp_bf16_force chose one. */
static int fbp_bf16_chosen = FBP_BF16_AUTO;

static inline int fbp_bf16_path(void)
{
    int path = __atomic_load_n(&fbp_bf16_chosen, __ATOMIC_RELAXED);
    if (path != FBP_BF16_AUTO)
        return path;
    path = fbp_bf16_path_runs(FBP_BF16_AMX) ? FBP_BF16_AMX
        : fbp_bf16_path_runs(FBP_BF16_AVX512) ? FBP_BF16_AVX512 : FBP_BF16_EMULATED;
    __atomic_store_n(&fbp_bf16_chosen, path, __ATOMIC_RELAXED);
    return path;
}

/* Tests force each path: FBP_BF16_AUTO, or a path that runs here. Returns
 * the path then in use, or -2 (nothing changed) for one that cannot run. */
static inline int fbp_bf16_force(int path)
{
    if (path != FBP_BF16_AUTO && !fbp_bf16_path_runs(path))
        return -2;
    __atomic_store_n(&fbp_bf16_chosen, path, __ATOMIC_RELAXED);
    return fbp_bf16_path();
}

/* C (m x n, rows ldc apart) = A.B, or += when accumulate, from the packs of
 * A (m x k) and B (k x n), on the path in use.
 * A block of the product is a product of blocks of the packs, so threads
 * can share one pack: rows r0 to r0 + m' of C (r0 a multiple of 32) and
 * columns j0 to j0 + n' (j0 a multiple of 32) are
 * fbp_bf16_gemm_packed(m', n', k, Ap + r0 * fbp_bf16_lda(k),
 *                      Bp + j0 * fbp_bf16_up(k), C + r0 * ldc + j0, ldc, ...);
 * every path reads only whole 32-row and 32-column blocks of the packs and
 * writes only C's m' x n' entries. */
static inline void fbp_bf16_gemm_packed(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                        const uint16_t *Ap, const uint16_t *Bp, float *C,
                                        ptrdiff_t ldc, int accumulate)
{
    if (m <= 0 || n <= 0)
        return;
#if FBP_HAVE_BF16_ISA
    switch (fbp_bf16_path()) {
    case FBP_BF16_AMX: fbp_bf16_gemm_amx(m, n, k, Ap, Bp, C, ldc, accumulate); return;
    case FBP_BF16_AVX512: fbp_bf16_gemm_avx512(m, n, k, Ap, Bp, C, ldc, accumulate); return;
    default: break;
    }
#endif
    fbp_bf16_gemm_emulated(m, n, k, Ap, Bp, C, ldc, accumulate);
}

#endif
