/* What tools/sample_tiny_harness.c and tools/sample_tiny_momentum_harness.c
 * share: the scalar type's names (REAL, SFX: -DREAL=float -DSFX=_f for
 * float32), a seeded generator, this thread's CPU clock, and a net of
 * n0-n1-1 sigmoid units with mse on a few rows of data of its own. */
#ifndef SAMPLE_TINY_COMMON_H
#define SAMPLE_TINY_COMMON_H
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "fastbp_sample.h"

#ifndef REAL
#define REAL double
#define SFX _d
#endif
#define GLUE2(a, b) a##b
#define GLUE(a, b) GLUE2(a, b)

static unsigned long long seed = 99;
static double rnd(void) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(seed >> 11) / 9007199254740992.0;
}

/* this thread's CPU time: on a shared machine, wall time counts other processes' turns */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

typedef struct {
    int sizes[3];
    fbp_layer layers[2];
    fbp_network net;
    fbp_batches data;
    REAL work[256], grad[64], X[64], T[16];
    ptrdiff_t order[1024];
} setup;

/* s's net n0-n1-1 (params not set) on rows of s->X, s->T (batch 1, in turn) */
static void make(setup *s, int n0, int n1, int rows) {
    int acts[2] = {FBP_SIGMOID, FBP_SIGMOID};
    s->sizes[0] = n0; s->sizes[1] = n1; s->sizes[2] = 1;
    memset(&s->net, 0, sizeof s->net);
    s->net.n_params = fbp_layers_init(s->layers, s->sizes, acts, 2, 1);
    s->net.sizes = s->sizes; s->net.layers = s->layers; s->net.n_layers = 2;
    s->net.loss = FBP_MSE; s->net.work = s->work; s->net.grad = s->grad; s->net.n_threads = 1;
    memset(&s->data, 0, sizeof s->data);
    s->data.X = s->X; s->data.T = s->T; s->data.n_positions = rows; s->data.batch_size = 1;
}

/* A check's draws: inputs in [-2, 2), targets in [0, 1) but, in every 11th
   trial, a last one whose loss overflows, and an order of each epoch's rows
   (used in odd trials). */
static void draw_rows(setup *s, int trial, int n0, int rows, int epochs) {
    for (int k = 0; k < rows * n0; k++) s->X[k] = (REAL)((rnd() - 0.5) * 4);
    for (int k = 0; k < rows; k++)
        s->T[k] = (REAL)(trial % 11 == 0 && k == rows - 1 ? (sizeof(REAL) == 4 ? 1e30 : 1e200)
                                                          : rnd());
    for (int e = 0; e < epochs; e++)
        for (int r = 0; r < rows; r++) s->order[e * rows + r] = (r * 5 + e) % rows;
    if (trial % 2) s->data.order = s->order;
}

/* A timing's rows: inputs in [-1, 1), targets in [0, 1) */
static void draw_timing_rows(setup *s, int n0, int rows) {
    for (int k = 0; k < rows * n0; k++) s->X[k] = (REAL)(rnd() * 2 - 1);
    for (int k = 0; k < rows; k++) s->T[k] = (REAL)rnd();
}

static const char *real_name(void) { return sizeof(REAL) == 8 ? "float64" : "float32"; }
#endif
