/* Times the tiled products of csrc/fastbp_gemm.h alone, in C, on one core.
 *
 *   gcc -O3 -Icsrc tools/gemm_harness.c -o /tmp/gemm_harness
 *   taskset -c 0 /tmp/gemm_harness 64 256 784 0 f   # m n k tn dtype
 *
 * C (m x n) += A (m x k) . B (k x n) with tn = 0 (the forward pass: A's
 * rows k apart), or C += A^T . B with A stored k x m (tn = 1, the weight
 * gradient); dtype f or d. Prints the best GFLOP/s of 7 runs of about
 * 1e9 flops: best-of, because a shared machine only slows runs down. To
 * compare two versions of the header, build this against each (-I) and
 * run the binaries in turn.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "fastbp_gemm.h"
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }
#define RUN(T, FN) do { \
    T *A = aligned_alloc(64, sizeof(T) * m * k + 64), *B = aligned_alloc(64, sizeof(T) * k * n + 64), *C = aligned_alloc(64, sizeof(T) * m * n + 64); \
    for (long i = 0; i < (long)m * k; i++) A[i] = (i % 7) * 0.01; \
    for (long i = 0; i < (long)k * n; i++) B[i] = (i % 5) * 0.01; \
    memset(C, 0, sizeof(T) * m * n); \
    ptrdiff_t a_rs = tn ? 1 : k, a_cs = tn ? m : 1; \
    int reps = (int)(1e9 / (2.0 * m * n * k)) + 1; double best = 0; \
    for (int round = 0; round < 7; round++) { double t = now(); \
        for (int r = 0; r < reps; r++) FN(m, n, k, (T)1, A, a_rs, a_cs, B, n, C, n); \
        double g = 2.0 * m * n * k * reps / (now() - t) / 1e9; if (g > best) best = g; } \
    printf("%s %dx%dx%d tn=%d %.1f\n", #T, m, n, k, tn, best); free(A); free(B); free(C); } while (0)
int main(int argc, char **argv) {
    int m = atoi(argv[1]), n = atoi(argv[2]), k = atoi(argv[3]), tn = atoi(argv[4]);
    if (argv[5][0] == 'd') RUN(double, fbp_gemm_d_avx512); else RUN(float, fbp_gemm_f_avx512);
}
