/* Per-sample SGD (batch size 1) for fastbp, one epoch per call: plain
 * SGD (fbp_sample_epoch) and SGD with momentum or Nesterov's
 * (fbp_sample_momentum_epoch, optim_sgd.pxi's per-sample epoch).
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
#include <string.h>

#include "fastbp_activations.h"  /* f(a), f'(a) and the output delta */
#include "fastbp_dropout.h"      /* dropout's draws and mask loop */
#include "fastbp_math.h"         /* FBP_CLONES */
#include "fastbp_optim.h"        /* the L2 term's loop, FBP_NO_CONTRACT */
#include "fastbp_state.h"

#define FBP_LANES 8
#define FBP_BLOCK 32

/* The helpers must inline into each clone of the epoch function: one left
 * out of line is compiled for the baseline only (no FMA, no AVX-512), which
 * changes both its speed and its bits. The inliner's own call flipped with
 * the epoch function's size, so it is not left to it. */
#if defined(__GNUC__)
#define FBP_SAMPLE_INLINE static inline __attribute__((always_inline))
#else
#define FBP_SAMPLE_INLINE static inline
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
#undef FBP_REAL
#undef FBP_SUFFIX

#define FBP_REAL float
#define FBP_SUFFIX(name) name##_f
#include "fastbp_sample_impl.h"
#undef FBP_REAL
#undef FBP_SUFFIX

#undef FBP_SAMPLE_INLINE
#undef FBP_CLONES_NARROW

#endif
