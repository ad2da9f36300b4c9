/* Per-sample SGD (batch size 1) for fastbp, one epoch per call: plain
 * SGD (fbp_sample_epoch) and SGD with momentum or Nesterov's
 * (fbp_sample_momentum_epoch, optim_sgd.pxi's per-sample epoch), on one
 * thread or, for a wide network, on a team of threads (below).
 *
 * At batch 1 a BLAS call costs more than the arithmetic, so this is plain C:
 * - forward: a = b + sum_i z_i W[i,:]  (axpy over contiguous rows);
 * - backward: one pass over each W row computes the row's dot with delta
 *   (for the layer below) and applies the SGD update to the row; then f'
 *   of the layer below over those dots, in one vectorised loop.
 * The loops are written so gcc vectorises them without -ffast-math (several
 * independent accumulators), and the epoch function is compiled for x86-64
 * v4 (AVX-512), v3 (AVX2+FMA) and the baseline, picked at load time, so the
 * wheel stays portable.
 *
 * fastbp_sample_impl.h holds the code, included once per scalar type; the
 * activations and the output delta are the batch kernels' (fastbp_activations.h).
 * Layout: the layer specs of fastbp_state.h (params = [W_0, b_0, W_1, b_1, ...]),
 * workspace = [z_1 .. z_L (a kept beside z where f' needs it) | a_out | delta |
 * delta_prev | step | ...].
 */
#ifndef FASTBP_SAMPLE_H
#define FASTBP_SAMPLE_H

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fastbp_activations.h"  /* f(a), f'(a) and the output delta */
#include "fastbp_dropout.h"      /* dropout's draws and mask loop */
#include "fastbp_finite.h"       /* the check for non-finite params after an epoch */
#include "fastbp_math.h"         /* FBP_CLONES */
#include "fastbp_optim.h"        /* the L2 term's loop, FBP_NO_CONTRACT */
#include "fastbp_state.h"
#include "fastbp_threads.h"      /* the team's threads and barrier */

#define FBP_LANES 8
#define FBP_BLOCK 32

/* The helpers must inline into each clone of the epoch function: one left
 * out of line is compiled for the baseline only (no FMA, no AVX-512), which
 * changes both its speed and its bits. The inliner's own call flipped with
 * the epoch function's size, so it is not left to it. */
#if defined(__GNUC__)
#define FBP_SAMPLE_INLINE static inline __attribute__((always_inline))
#define FBP_SAMPLE_NOINLINE __attribute__((noinline))
#else
#define FBP_SAMPLE_INLINE static inline
#define FBP_SAMPLE_NOINLINE
#endif

/* Whether x86-64-v4's clones run: double's forward sums take 32-byte
   vectors there (fastbp_sample_impl.h's fbp_dense_in_turn). */
static inline int fbp_sample_wide(void) {
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
    return __builtin_cpu_supports("x86-64-v4");
#else
    return 0;
#endif
}

/* ---------------------------------------------------------------------------
 * The team (fastbp_sample_team_impl.h): a wide network's rows trained one at
 * a time as above, each row's work split over threads started once a call,
 * with a barrier between layers. Each thread computes whole outputs, deltas
 * and weight rows with the single-thread code's own loops, so the weights
 * come out bit for bit those of one thread (tests/test_sample_team.py). */

/* Least weights (sum of n_in n_out over the layers) for a per-sample epoch
 * to run on the team when the network has threads (fbp_network.n_threads):
 * below, a layer's W fits in a core's cache, and the rows one thread steps
 * in the backward pass move to the other for the next forward pass (each
 * row's dot with delta sums along the row, each output along a column, so
 * neither split can keep W's parts apart), which costs more than the split
 * saves; the barriers (2 L + 1 a row) add ~0.5 µs each. set_sample_team
 * (twins.pxi) moves it. 2 threads against one, µs a row, quiet machine
 * (tools/sample_team.py, 64-h-h-10, tanh, softmax), float32 / float64:
 * h = 256 (8.4e4 weights): SGD 52 -> 42 / 30 -> 56, momentum 49 -> 83 /
 * 62 -> 134; h = 512 (3.0e5): SGD 186 -> 163 / 149 -> 182, momentum 189 ->
 * 239 / 340 -> 308; h = 1024 (1.1e6): SGD 900 -> 518 / 750 -> 746, momentum
 * 935 -> 810 / 2988 -> 1423. */
static ptrdiff_t fbp_sample_team_min_weights = (ptrdiff_t)1 << 20;
/* Team epochs run on threads so far, for the tests (sample_team_runs). */
static ptrdiff_t fbp_sample_team_runs = 0;
/* Whether a per-sample plain-SGD epoch of a net of a few units takes its
 * unrolled code (fastbp_sample_impl.h's fbp_sample_tiny); set_sample_tiny
 * (twins.pxi) turns it off, for the tests to compare it with the general
 * loop. */
static int fbp_sample_tiny_on = 1;
/* Calls of those epochs so far, for the tests (sample_tiny_runs). Each
 * call counts itself relaxed-atomically: calls on several threads at once
 * (fits of separate networks, without the GIL) must not lose a count, and
 * the count orders nothing else. */
static ptrdiff_t fbp_sample_tiny_runs = 0;
#if defined(__GNUC__)
#define FBP_TINY_COUNT_RUN() __atomic_fetch_add(&fbp_sample_tiny_runs, 1, __ATOMIC_RELAXED)
#else
#define FBP_TINY_COUNT_RUN() (fbp_sample_tiny_runs += 1)
#endif

/* One epoch call on the team: what every thread reads, and thread 0's
 * results. Scalars are the network's type (void pointers). */
typedef struct {
    const fbp_network *net;
    const fbp_batches *data;
    double lr, mu;       /* mu, look_ahead, v_all: the epoch with momentum's */
    int look_ahead;
    void *v_all;
    int plain;           /* plain SGD's loops (fbp_sample_epoch), else momentum's */
    int wide;            /* fbp_dense_in_turn's 32-byte vectors (double only) */
    ptrdiff_t start, stop;
    int n_threads;
    fbp_barrier barrier;
    void *steps;         /* threads 1.. : lr * delta, max_w each (thread 0's is
                          * the workspace's) */
    ptrdiff_t max_w;
    double *squares;     /* the L2 term's row sums of W^2 in the order one thread
                          * adds them (NULL: thread 0 adds its own, on one thread) */
    ptrdiff_t n_rows;    /* rows of all the Ws: the squares' count */
    double J;            /* the row's loss, written by thread 0 */
    int status;
    fbp_totals totals;
} fbp_sample_team;

/* Whether a per-sample epoch of ``net`` runs on the team: threads, no
 * dropout (its masks stay on one thread), L2 only where ``with_l2`` (plain
 * SGD's row sums; momentum's L2 gradient sums all of W in lanes), and
 * enough weights. */
static inline int fbp_sample_team_takes(const fbp_network *net, int with_l2) {
    ptrdiff_t weights = 0;
    if (net->n_threads < 2 || net->drop_factors != NULL || (!with_l2 && net->l2 != 0))
        return 0;
    for (int l = 0; l < net->n_layers; l++)
        weights += (ptrdiff_t)net->layers[l].n_in * net->layers[l].n_out;
    return weights >= fbp_sample_team_min_weights;
}

/* Start of thread ``index``'s share of ``count`` outputs (or rows) of n
 * threads: whole blocks of ``block``, the rest to the last thread with the
 * last whole block (fbp_dense_in_turn's rest may reach back into it). */
static inline ptrdiff_t fbp_sample_share(ptrdiff_t count, ptrdiff_t block, int index, int n) {
    if (index >= n)
        return count;
    return count / block * index / n * block;
}

/* Clones for x86-64-v3 and the baseline only: the momentum epoch of a
   net of a few units runs its v3 code on an AVX-512 CPU too. The v4 clone
   hoists 512-bit broadcasts of its vector loops out of the loops' trip
   count tests, so every row ran zmm instructions that no loop needed; XOR
   2-2-1's momentum epochs measured ~15% faster in the v3 code (float32 and
   float64, same bits: the epoch contracts no FMA, and v3 and v4 compute
   the same lanes). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define FBP_CLONES_NARROW __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define FBP_CLONES_NARROW
#endif

/* A row's L2 term, 0.5 l2 sum(W^2), into the totals, fused (one rounding):
 * the same sum whatever gcc's contraction makes of the inlined epoch body,
 * in every clone and on the team's thread 0 as on one thread. (Left to the
 * compiler, the FMA clones contracted it in float32 and not in float64, and
 * stopped in float32 when the sigmoid lost its branches.) */
static inline void fbp_sample_add_penalty(fbp_totals *totals, double l2, double penalty) {
    if (l2 != 0)
        totals->penalty_sum = fma(0.5 * l2, penalty, totals->penalty_sum);
}

/* Whether every layer of the net is at most FBP_NARROW units wide. */
#define FBP_NARROW 4
static inline int fbp_sample_narrow(const fbp_network *net) {
    for (int l = 0; l <= net->n_layers; l++)
        if (net->sizes[l] > FBP_NARROW) return 0;
    return 1;
}

#define FBP_REAL double
#define FBP_SUFFIX(name) name##_d
#include "fastbp_sample_impl.h"
#include "fastbp_sample_team_impl.h"
#undef FBP_REAL
#undef FBP_SUFFIX

#define FBP_REAL float
#define FBP_SUFFIX(name) name##_f
#include "fastbp_sample_impl.h"
#include "fastbp_sample_team_impl.h"
#undef FBP_REAL
#undef FBP_SUFFIX

#undef FBP_SAMPLE_INLINE
#undef FBP_SAMPLE_NOINLINE
#undef FBP_CLONES_NARROW

#endif
