/* Times csrc/fastbp_sample.h's per-sample momentum epoch alone, in C, and
 * hashes the weights it leaves, so two versions of the headers can be
 * compared for speed and bits without a pip build (seconds, not minutes).
 *
 *   gcc -O3 -fno-math-errno -pthread -Icsrc tools/sample_momentum_harness.c -lm -o /tmp/h_d
 *   gcc -O3 -fno-math-errno -pthread -Icsrc tools/sample_momentum_harness.c -lm -o /tmp/h_f \
 *       -DREAL=float -DEPOCH=fbp_sample_momentum_epoch_f
 *   /tmp/h_d 0 8000     # 8-16-1 on 8-bit parity, 8000 epochs of 256 rows
 *   /tmp/h_d 1 80       # 64-32-10 on 1797 synthetic rows, 80 epochs
 *
 * Sigmoid layers, mse, lr 0.25, momentum 0.4 rounded to float32 (as
 * bench/per_sample_momentum.py), rows in order; prints microseconds per row
 * (this thread's CPU time) and an FNV hash of the parameters. Build one binary per version of the
 * headers (-I a copy of csrc) and run them interleaved under quiet.py.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fastbp_sample.h"

#ifndef REAL
#define REAL double
#define EPOCH fbp_sample_momentum_epoch_d
#endif

/* this thread's CPU time: on a shared machine, wall time counts other processes' turns */
static double now(void) { struct timespec t; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t); return t.tv_sec + 1e-9 * t.tv_nsec; }

int main(int argc, char **argv) {
    int which = argc > 1 ? atoi(argv[1]) : 0;   /* 0 parity, 1 64-32-10 */
    int epochs = argc > 2 ? atoi(argv[2]) : 2000;
    int sizes[3]; int acts[2] = {FBP_SIGMOID, FBP_SIGMOID};
    ptrdiff_t n_rows;
    if (which == 0) { sizes[0] = 8; sizes[1] = 16; sizes[2] = 1; n_rows = 256; }
    else { sizes[0] = 64; sizes[1] = 32; sizes[2] = 10; n_rows = 1797; }
    fbp_layer layers[2];
    ptrdiff_t n_params = fbp_layers_init(layers, sizes, acts, 2, 1);
    REAL *params = calloc(n_params, sizeof(REAL)), *vel = calloc(n_params, sizeof(REAL));
    REAL *work = calloc(4096, sizeof(REAL));
    REAL *X = malloc(n_rows * sizes[0] * sizeof(REAL)), *T = malloc(n_rows * sizes[2] * sizeof(REAL));
    unsigned long long s = 12345;
#define RND() ((s = s * 6364136223846793005ULL + 1442695040888963407ULL), ((double)(s >> 11) / 9007199254740992.0))
    for (ptrdiff_t k = 0; k < n_params; k++) params[k] = (REAL)(RND() - 0.5);
    for (ptrdiff_t r = 0; r < n_rows; r++) {
        int ones = 0;
        for (int c = 0; c < sizes[0]; c++) {
            REAL v = which == 0 ? (REAL)((r >> c) & 1) : (REAL)(int)(RND() * 17);
            X[r * sizes[0] + c] = v; ones += (int)v;
        }
        for (int c = 0; c < sizes[2]; c++) T[r * sizes[2] + c] = which == 0 ? (REAL)(ones % 2) : (REAL)(c == r % 10);
    }
    if (which) for (ptrdiff_t k = 0; k < n_rows * sizes[0]; k++) X[k] /= 16;
    fbp_network net; memset(&net, 0, sizeof net);
    net.sizes = sizes; net.layers = layers; net.n_layers = 2; net.loss = FBP_MSE;
    net.params = params; net.work = work; net.n_params = n_params;
    fbp_batches data; memset(&data, 0, sizeof data);
    data.X = X; data.T = T; data.n_positions = n_rows; data.batch_size = 1;
    fbp_totals tot;
    double mu = (double)0.4f, t0 = now(), loss = 0;
    for (int e = 0; e < epochs; e++) {
        if (EPOCH(&net, &data, 0.25, mu, 0, vel, 0, n_rows, &tot)) { printf("nonfinite\n"); return 1; }
        loss += tot.loss_sum;
    }
    double dt = now() - t0;
    unsigned long long h = 1469598103934665603ULL;
    const unsigned char *p = (const unsigned char *)params;
    for (size_t k = 0; k < n_params * sizeof(REAL); k++) { h ^= p[k]; h *= 1099511628211ULL; }
    printf("%s %s %.4f us/row hash %016llx loss %.17g\n", which ? "64-32-10" : "parity", sizeof(REAL) == 8 ? "f64" : "f32",
           dt / ((double)epochs * n_rows) * 1e6, h, loss);
    return 0;
}
