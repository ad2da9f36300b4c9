/* Register-tiled matrix products that read the operands in place.
 *
 * C[i, j] += alpha * sum_p A(i, p) * B[p, j], with A(i, p) = A[i*a_rs + p*a_cs],
 * so one routine serves both C += A.B (a_rs = lda, a_cs = 1) and the weight
 * update C += alpha A^T.B (a_rs = 1, a_cs = lda). B and C are row-major.
 *
 * Why not only BLAS: for the batch shapes of training (a few hundred rows or
 * fewer), a BLAS call repacks the whole weight matrix every time, and each
 * training thread packs it again. Here a tile of C (6 rows x 4 vectors, or
 * 12 x 2 at the right edge) lives in registers while p runs over the inner
 * dimension, and B's
 * rows (the weights in the forward pass, delta in the update) are read where
 * they are, from the L2 cache.
 *
 * It is compiled for AVX-512 through GCC's target attribute and used only
 * when the CPU has it, so the wheel stays portable. An AVX2 build of the
 * same tile (6 x 2 vectors) ran at 0.75-1.04x OpenBLAS's one-thread rate
 * on the training shapes (forced on this project's Zen 4 machine), so
 * without AVX-512 BLAS does everything.
 * fbp_gemm_* returns how many leading columns of C it computed (a multiple
 * of the tile width, possibly 0); the caller hands the rest to BLAS.
 */
#ifndef FASTBP_GEMM_H
#define FASTBP_GEMM_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The most bytes of B a column panel may span: the tiles still beat
 * OpenBLAS with 784 x 256 float64 weights (1.6 MB, over this machine's
 * 1 MiB L2); far beyond, B's panel keeps coming back from L3. */
#ifndef FBP_GEMM_MAX_B_BYTES
#define FBP_GEMM_MAX_B_BYTES (2 * 1024 * 1024)
#endif

/* The inner dimension runs in blocks of KC: a tile then reads 6 x KC of A
 * and KC x 4 vectors of B (32 KiB), which stay in L1 while C's tile is
 * added to once a block. Unblocked, a 784-long float64 product streamed
 * both from L2: on an Intel Xeon (48 KiB L1d, 2 MiB L2) float64 fits were
 * 1.22-1.45x slower than with KC = 128, and 1.14-1.40x slower than
 * OpenBLAS; float32 was unchanged (tools/tiles_vs_blas.py). With KC and MC
 * the tiles run 0.90-1.01x OpenBLAS's time in float64, 0.72-0.98x in
 * float32 (not counting 2-thread batches of 32, where BLAS's two threads
 * meet one tile thread). */
#ifndef FBP_GEMM_KC
#define FBP_GEMM_KC 128
#endif
/* Rows run in blocks of MC (16 tiles) too: a block's MC x KC of A (192 KiB
 * in float64) stays in L2 while every column panel passes over it. A
 * predict of 4096 rows otherwise streamed all of A from L3 once per panel. */
#ifndef FBP_GEMM_MC
#define FBP_GEMM_MC 192
#endif
/* float32's: 256 rows (128 KiB of A), a whole 256-row block of predict's
 * threads: 192 left a 64-row block copying every panel of W for few rows
 * (784-256-128-10's products on 256 rows 3% faster, tools/gemm_harness.c;
 * the training shapes within 2%). */
#ifndef FBP_GEMM_MC_F32
#define FBP_GEMM_MC_F32 256
#endif
/* A transposed A (the weight update, A^T.delta, k the batch's rows) that
 * spans more than this is prefetched (FBP_DEFINE_GEMM). Whether the batch
 * is still in L2 by the update depends on W and L2 (784-128-10 float64:
 * 128 rows and W fit a 2 MiB L2, 256 do not; 784-256-128-10: 128 do not),
 * and prefetching lines that are there cost nothing measurable (784-128-10
 * b128 6.45 against 6.60 us/row), so the gate is low: 1 MiB left 784-256-
 * 128-10 b128 at 16.85, 256 KiB 15.65 (median of 3, quiet, 1 thread). */
#ifndef FBP_GEMM_TN_PREFETCH_BYTES
#define FBP_GEMM_TN_PREFETCH_BYTES (256 * 1024)
#endif

#if defined(__GNUC__) && defined(__x86_64__) && !defined(FASTBP_NO_OWN_GEMM)
#define FBP_HAVE_GEMM 1

/* One MR x (NV * LANES) tile of C; MR and NV are constants, so the
 * accumulators stay in registers. */
#define FBP_TILE(V, LANES, MR, NV)                                            \
    do {                                                                      \
        V c[MR][NV];                                                          \
        for (int i = 0; i < MR; i++)                                          \
            for (int v = 0; v < NV; v++)                                      \
                c[i][v] = (V){0};                                             \
        for (ptrdiff_t p = 0; p < k; p++) {                                   \
            V b[NV];                                                          \
            for (int v = 0; v < NV; v++)                                      \
                __builtin_memcpy(&b[v], B + p * ldb + v * LANES, sizeof(V));  \
            for (int i = 0; i < MR; i++) {                                    \
                /* x - (+0) is x for every x, so this folds to a broadcast \
                 * (x + 0 would not: -0 + 0 is +0) */                       \
                V a = A[i * a_rs + p * a_cs] - (V){0};                        \
                for (int v = 0; v < NV; v++)                                  \
                    c[i][v] += a * b[v];                                      \
            }                                                                 \
        }                                                                     \
        for (int i = 0; i < MR; i++)                                          \
            for (int v = 0; v < NV; v++) {                                    \
                V x;                                                          \
                __builtin_memcpy(&x, C + i * ldc + v * LANES, sizeof(V));     \
                x += alpha * c[i][v];                                         \
                __builtin_memcpy(C + i * ldc + v * LANES, &x, sizeof(V));     \
            }                                                                 \
    } while (0)

/* The rows of one column panel of NV vectors: tiles of MR_MAIN rows, then
 * of 4, then the last 1-3 rows. B is read at B_PANEL, LDB_PANEL apart. */
#define FBP_PANEL(T, V, LANES, MR_MAIN, NV, B_PANEL, LDB_PANEL)               \
    do {                                                                      \
        const T *B = (B_PANEL);                                               \
        const ptrdiff_t ldb = (LDB_PANEL);                                    \
        const T *A;                                                           \
        T *C;                                                                 \
        ptrdiff_t r = 0;                                                      \
        for (; r + MR_MAIN <= m; r += MR_MAIN) {                              \
            A = A0 + r * a_rs;                                                \
            C = C0 + r * ldc + j;                                             \
            for (int i = 0; next_a != NULL && i < MR_MAIN && r + i < next_m; i++) \
                for (ptrdiff_t q = 0; q < next_bytes + 63; q += 64)           \
                    __builtin_prefetch((const char *)(next_a + (r + i) * a_rs) + q, 0, 2); \
            for (ptrdiff_t i = r + MR_MAIN; first_a != NULL && i < r + 2 * MR_MAIN && i < m; i++) \
                for (ptrdiff_t q = 0; q < first_bytes + 63; q += 64)          \
                    __builtin_prefetch((const char *)(first_a + i * a_rs) + q, 0, 2); \
            /* A^T, first block: the next tile's columns, one line a p  */  \
            /* (its last column's: the line it starts on, this one reads) */ \
            if (tn_a != NULL && r + MR_MAIN < m) {                            \
                const T *col = tn_a + (r + 2 * MR_MAIN <= m ? r + 2 * MR_MAIN - 1 : m - 1); \
                for (ptrdiff_t p = 0; p < k; p++)                             \
                    __builtin_prefetch(col + p * a_cs, 0, 2);                 \
            }                                                                 \
            if (tn_next != NULL) {  /* A^T: this tile's rows of the next block */ \
                ptrdiff_t per = (tn_next_k + m / MR_MAIN - 1) / (m / MR_MAIN); \
                for (ptrdiff_t p = r / MR_MAIN * per; p < (r / MR_MAIN + 1) * per && p < tn_next_k; p++) \
                    for (ptrdiff_t q = 0; q < tn_next_bytes + 63; q += 64)    \
                        __builtin_prefetch((const char *)(tn_next + p * a_cs) + q, 0, 2); \
            }                                                                 \
            FBP_TILE(V, LANES, MR_MAIN, NV);                                  \
        }                                                                     \
        for (; r + 4 <= m; r += 4) {                                          \
            A = A0 + r * a_rs;                                                \
            C = C0 + r * ldc + j;                                             \
            FBP_TILE(V, LANES, 4, NV);                                        \
        }                                                                     \
        A = A0 + r * a_rs;                                                    \
        C = C0 + r * ldc + j;                                                 \
        switch (m - r) {                                                      \
        case 3: FBP_TILE(V, LANES, 3, NV); break;                             \
        case 2: FBP_TILE(V, LANES, 2, NV); break;                             \
        case 1: FBP_TILE(V, LANES, 1, NV); break;                             \
        default: break;                                                       \
        }                                                                     \
    } while (0)

/* One row of C, 8 vectors wide: a product of 1-3 rows (a one-row predict)
 * is bound by reading B. Two-vector panels would walk B
 * four times, 128 bytes of each row at a time; this reads each row of B
 * once, whole, with 8 independent sums in flight. The sums run over p in
 * the same order as FBP_TILE's, so the results are the same bits. */
#define FBP_ROW_WIDE(V, LANES)                                                \
    do {                                                                      \
        V s[8];                                                               \
        for (int q = 0; q < 8; q++)                                           \
            s[q] = (V){0};                                                    \
        for (ptrdiff_t p = 0; p < k; p++) {                                   \
            V a = A[p * a_cs] - (V){0};                                       \
            for (int q = 0; q < 8; q++) {                                     \
                V b;                                                          \
                __builtin_memcpy(&b, B + p * ldb + q * LANES, sizeof(V));     \
                s[q] += a * b;                                                \
            }                                                                 \
        }                                                                     \
        for (int q = 0; q < 8; q++) {                                         \
            V x;                                                              \
            __builtin_memcpy(&x, C + q * LANES, sizeof(V));                   \
            x += alpha * s[q];                                                \
            __builtin_memcpy(C + q * LANES, &x, sizeof(V));                   \
        }                                                                     \
    } while (0)

/* Blocks of MC rows, and in each, blocks of KC along p: the block's MC rows
 * of C stay in cache while every KC block adds to them (KC blocks outside
 * swept all of C once per block: a 5000-row predict, 5000 x 128 x 784, ran
 * 10% slower in float32). In a block, column panels outside, row tiles
 * inside: a panel of B (KC x 4 or 2 vectors) is reused by every row tile of
 * the block. Every C entry still sums its KC blocks in order, whatever the tile
 * shape and MC, so the one-row path and all the tiles give the same bits.
 * Panels are 4 vectors wide (6 x 4 tiles) while 4 are left, then 2
 * (12 x 2): a 6 x 4 tile loads 4 rows of B and broadcasts 6 of A for 24
 * multiply-adds, against 2 and 12 for 12 x 2, so it reads more of B: a
 * 4-vector panel is copied to a contiguous buffer when two tiles or more
 * read it (in place, without the copy, one shape lost up to 27%). On every
 * product of a 784-256-128-10 batch on an Intel Xeon this ran 4-18% faster
 * than 12 x 2 (tools/gemm_harness.c; docs/user_guide/benchmarks.rst). */
#define FBP_DEFINE_GEMM(NAME, T, LANES, TARGET, MC)                           \
typedef T NAME##_vec __attribute__((vector_size(LANES * sizeof(T))));         \
__attribute__((target(TARGET), noinline)) static void                        \
NAME(ptrdiff_t m_all, ptrdiff_t n, ptrdiff_t k_all, T alpha, const T *A_all,  \
     ptrdiff_t a_rs, ptrdiff_t a_cs, const T *B_all, ptrdiff_t ldb, T *C_all, \
     ptrdiff_t ldc)                                                           \
{                                                                             \
  /* a 4-vector panel of B, contiguous: B's rows are often a multiple of   \
   * 1 KiB apart, and a panel read in place then maps to a few L1 sets. On \
   * the heap (32 KiB): the caller may be a thread with a small stack. */   \
  void *raw = m_all >= 12 && n >= 4 * LANES                                  \
      ? malloc(FBP_GEMM_KC * 4 * LANES * sizeof(T) + 64) : NULL;             \
  T *packed = raw == NULL ? NULL                                              \
      : (T *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);                        \
  const ptrdiff_t ldb_all = ldb;                                              \
  for (ptrdiff_t i0 = 0; i0 < m_all; i0 += (MC))                              \
  for (ptrdiff_t p0 = 0; p0 < k_all; p0 += FBP_GEMM_KC) {                     \
    ptrdiff_t k = k_all - p0 < FBP_GEMM_KC ? k_all - p0 : FBP_GEMM_KC;        \
    ptrdiff_t m = m_all - i0 < (MC) ? m_all - i0 : (MC);                      \
    const T *A0 = A_all + i0 * a_rs + p0 * a_cs, *B0 = B_all + p0 * ldb;      \
    T *C0 = C_all + i0 * ldc;                                                 \
    ptrdiff_t j = 0;                                                          \
    /* The first panel's tiles prefetch A to L2: a predict's rows come from \
     * memory, and the hardware's prefetcher barely starts on a row's KC *   \
     * 4 bytes. Each tile takes the rows of the next block (next_a), and in  \
     * the first block, which no block before fetched, the rows of the tile  \
     * after it (first_a). Blocks of 256 rows of a 10000 x 784 X ran 3-9%    \
     * faster; products on cached rows the same. */                         \
    const T *next_a = NULL, *first_a = NULL, *tn_a = NULL;                    \
    ptrdiff_t next_bytes = 0, next_m = m;                                     \
    ptrdiff_t first_bytes = k * (ptrdiff_t)sizeof(T);                         \
    if (a_cs == 1 && m >= 12 && i0 == 0 && p0 == 0)                           \
        first_a = A0;                                                         \
    /* A^T (the weight update: A's rows are the batch's, k of them): a    \
     * tile reads 48 or 96 bytes of each of k rows, lines a row apart that  \
     * the hardware's prefetcher does not follow, so with the batch out of  \
     * L2 each tile of a block's first panel waited on its k lines: 784-   \
     * 128-10 float64 fits on 1 thread ran 18% and 22% slower per row at    \
     * batch 256 and 512 than at 128. The first panel's tiles prefetch the  \
     * next block, row by row (tn_next), and in the first block the next    \
     * tile's lines (tn_a): batch 512 then 15% faster (float32 6%, 784-    \
     * 256-128-10 float64 8%), the same bits. */                            \
    const T *tn_next = NULL;                                                  \
    ptrdiff_t tn_next_k = 0, tn_next_bytes = 0;                               \
    const int tn_fetch = a_rs == 1 && a_cs != 1 && m >= 12                   \
        && (size_t)k_all * (size_t)a_cs * sizeof(T) > FBP_GEMM_TN_PREFETCH_BYTES; \
    if (tn_fetch && i0 == 0 && p0 == 0)                                       \
        tn_a = A0;                                                            \
    if (tn_fetch) {                                                           \
        if (p0 + FBP_GEMM_KC < k_all) {                                       \
            tn_next = A0 + FBP_GEMM_KC * a_cs;                                \
            tn_next_k = k_all - p0 - FBP_GEMM_KC;                             \
            tn_next_bytes = m * (ptrdiff_t)sizeof(T);                         \
        } else if (i0 + (MC) < m_all) {                                       \
            tn_next = A_all + (i0 + (MC));                                    \
            tn_next_k = k_all;                                                \
            tn_next_bytes = (m_all - i0 - (MC) < (MC) ? m_all - i0 - (MC) : (MC)) * (ptrdiff_t)sizeof(T); \
        }                                                                     \
        if (tn_next_k > FBP_GEMM_KC)                                          \
            tn_next_k = FBP_GEMM_KC;                                          \
    }                                                                         \
    if (a_cs == 1 && m >= 12) {                                               \
        ptrdiff_t next_k = p0 + FBP_GEMM_KC < k_all ? k_all - p0 - FBP_GEMM_KC : 0; \
        if (next_k > 0) {                                                     \
            next_a = A0 + FBP_GEMM_KC;                                        \
        } else if (i0 + (MC) < m_all) {                                       \
            next_a = A_all + (i0 + (MC)) * a_rs;                              \
            next_k = k_all;                                                   \
            next_m = m_all - i0 - (MC);                                       \
        }                                                                     \
        next_bytes = (next_k < FBP_GEMM_KC ? next_k : FBP_GEMM_KC) * (ptrdiff_t)sizeof(T); \
    }                                                                         \
    if (m <= 3) {  /* row by row: each row reads B once */                    \
        for (; j + 8 * LANES <= n; j += 8 * LANES)                            \
            for (ptrdiff_t r = 0; r < m; r++) {                               \
                const T *B = B0 + j, *A = A0 + r * a_rs;                      \
                T *C = C0 + r * ldc + j;                                      \
                FBP_ROW_WIDE(NAME##_vec, LANES);                              \
            }                                                                 \
    }                                                                         \
    for (; j + 4 * LANES <= n; j += 4 * LANES) {                              \
        if (m >= 12 && packed != NULL) {  /* two tiles or more share it */    \
            for (ptrdiff_t p = 0; p < k; p++)                                 \
                __builtin_memcpy(packed + p * 4 * LANES, B0 + p * ldb + j,    \
                                 4 * LANES * sizeof(T));                      \
            FBP_PANEL(T, NAME##_vec, LANES, 6, 4, packed, 4 * LANES);         \
        } else {                                                              \
            FBP_PANEL(T, NAME##_vec, LANES, 6, 4, B0 + j, ldb_all);           \
        }                                                                     \
        next_a = first_a = tn_a = tn_next = NULL;                             \
    }                                                                         \
    for (; j + 2 * LANES <= n; j += 2 * LANES) {                              \
        FBP_PANEL(T, NAME##_vec, LANES, 12, 2, B0 + j, ldb_all);              \
        next_a = first_a = tn_a = tn_next = NULL;                             \
    }                                                                         \
  }                                                                           \
  free(raw);                                                                  \
}

/* AVX-512 has 32 vector registers: 24 accumulators, the rows of B and
 * the broadcast. */
FBP_DEFINE_GEMM(fbp_gemm_f_avx512, float, 16, "avx512f", FBP_GEMM_MC_F32)
FBP_DEFINE_GEMM(fbp_gemm_d_avx512, double, 8, "avx512f", FBP_GEMM_MC)

/* 1 when the CPU (and the operating system) can run AVX-512 code, as
 * libgcc's check says; 0 when it cannot, or the kernel is switched off. */
static int fbp_gemm_enabled = -1;

static inline int fbp_gemm_available(void)
{
    int enabled = __atomic_load_n(&fbp_gemm_enabled, __ATOMIC_RELAXED);
    if (enabled < 0) {
        __builtin_cpu_init();
        enabled = __builtin_cpu_supports("avx512f") ? 1 : 0;
        __atomic_store_n(&fbp_gemm_enabled, enabled, __ATOMIC_RELAXED);
    }
    return enabled;
}

/* Tests run both paths on one machine: 0 leaves every product to BLAS, 1
 * uses the tiled kernel where the CPU allows. Returns whether it is on. */
static inline int fbp_gemm_enable(int on)
{
    __atomic_store_n(&fbp_gemm_enabled, -1, __ATOMIC_RELAXED);
    if (!on)
        __atomic_store_n(&fbp_gemm_enabled, 0, __ATOMIC_RELAXED);
    return fbp_gemm_available();
}
#else
#define FBP_HAVE_GEMM 0
static inline int fbp_gemm_available(void) { return 0; }
static inline int fbp_gemm_enable(int on) { (void)on; return 0; }
#endif

/* How many leading columns of C (m x n) = op(A) (m x k) . B the tiled
 * kernel covers: whole tiles of 2 vectors (128 bytes), or 0 when BLAS
 * should take the whole product. Measured against OpenBLAS, 1 thread: the
 * tiles that read B in place lose where a row stride is a multiple of 4 KiB
 * (every row of a panel lands in the same few cache sets: 128 x 1024 x 2048
 * float32 ran at 71 GFLOP/s, OpenBLAS 81) and where B's panel falls out of
 * L2. In float32 the 4-vector panels of two row tiles or more read a copy
 * of B and beat OpenBLAS there too (forward 128 x 2048 x 2048: 178 against
 * 138 GFLOP/s, tools/gemm_harness.c; 1024-2048-2048-10 fits on 1 thread
 * 6-25% faster), so such float32 products go to the tiles when those panels
 * cover all of C. Not in float64: 85 against 79 GFLOP/s alone, but fits at
 * batch 512 ran 7% slower. A column stride of A a multiple of 4 KiB (the
 * weight update of a 1024- or 2048-wide layer) stays with BLAS: the tiles
 * there ran 0.94-1.02x its rate. */
static inline ptrdiff_t fbp_gemm_columns(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                                         ptrdiff_t a_rs, ptrdiff_t a_cs, ptrdiff_t ldb,
                                         size_t item)
{
    ptrdiff_t width = (ptrdiff_t)(128 / item);
    size_t b_row = (size_t)ldb * item;
    if (!fbp_gemm_available() || n < width || ((size_t)a_cs * item) % 4096 == 0)
        return 0;
    if ((size_t)k * b_row > FBP_GEMM_MAX_B_BYTES || b_row % 4096 == 0
            || ((size_t)a_rs * item) % 4096 == 0)
        return item == 4 && m >= 12 && n % (2 * width) == 0 ? n : 0;
    return n - n % width;
}

#define FBP_DEFINE_DISPATCH(NAME, T, KERNEL)                                  \
static inline ptrdiff_t NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, T alpha,  \
                             const T *A, ptrdiff_t a_rs, ptrdiff_t a_cs,      \
                             const T *B, ptrdiff_t ldb, T *C, ptrdiff_t ldc)  \
{                                                                             \
    ptrdiff_t cols = fbp_gemm_columns(m, n, k, a_rs, a_cs, ldb, sizeof(T));  \
    if (cols > 0)                                                             \
        KERNEL(m, cols, k, alpha, A, a_rs, a_cs, B, ldb, C, ldc);             \
    return cols;                                                              \
}

#if FBP_HAVE_GEMM
FBP_DEFINE_DISPATCH(fbp_gemm_f, float, fbp_gemm_f_avx512)
FBP_DEFINE_DISPATCH(fbp_gemm_d, double, fbp_gemm_d_avx512)
#else
static inline ptrdiff_t fbp_gemm_f(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                                   const float *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                                   const float *B, ptrdiff_t ldb, float *C, ptrdiff_t ldc)
{ return 0; }
static inline ptrdiff_t fbp_gemm_d(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                                   const double *A, ptrdiff_t a_rs, ptrdiff_t a_cs,
                                   const double *B, ptrdiff_t ldb, double *C, ptrdiff_t ldc)
{ return 0; }
#endif

#endif
