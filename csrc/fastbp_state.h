/* A fit's native state, owned by fastbp._kernels.Trainer and handed by
 * pointer to the training loop, its threads and the per-sample path; the
 * optimiser's part is csrc/optimizers.pxi's fbp_optimizer_state.
 *
 * Scalars (params, grad, work, X, T, ...) are float or double, as the
 * Trainer's dtype says; the pointers are void so one struct serves both.
 * Codes are those of fastbp_codes.h.
 */
#ifndef FASTBP_STATE_H
#define FASTBP_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "fastbp_codes.h"  /* which activations need a kept (fbp_activation_needs_a) */

/* At most this many layers (the Python layer's cap): the kernels keep
 * per-layer arrays of this size on the stack. */
#define FBP_MAX_LAYERS 63

/* A layer's op that acts during training only, after its activation.
 * Predict and the objective build their specs with FBP_OP_NONE, so an op
 * never reaches them. */
enum fbp_train_op {
    FBP_OP_NONE = 0,
    FBP_OP_DROPOUT = 1     /* inverted dropout on z (fastbp_dropout.h) */
};

/* One layer: z = f(z_in . W + b), z_in being the input rows (layer 0) or
 * the layer below's z. Offsets count scalars; fbp_layers_init computes
 * them once and every path reads them from here. */
typedef struct {
    int n_in, n_out;
    ptrdiff_t W;           /* W (n_in x n_out, row-major) at params + W */
    ptrdiff_t b;           /* b (n_out) at params + b, right after W */
    ptrdiff_t z;           /* z of m rows at work + m * z (z_1..z_L back to back) */
    ptrdiff_t a;           /* a = z_in . W + b of m rows at work + m * a: z's own
                            * place (f is taken in place), but right after z where
                            * a is kept: the output layer's (a_out), and with
                            * keep_a that of an f whose f' needs a */
    int activation;        /* f's code */
    int train_op;          /* FBP_OP_NONE or FBP_OP_DROPOUT */
    uint32_t drop_threshold;  /* dropout: a unit whose draw is below this drops */
    double drop_scale;     /* dropout: a kept unit's factor, 1 / P(kept) */
} fbp_layer;

/* The layers of widths sizes[0..n_layers] and activations acts, laid out
 * layer after layer in the parameters ([W_0, b_0, W_1, b_1, ...]) and in
 * the workspace (z_1..z_L, then a_out); returns the number of parameters.
 * With keep_a, a layer whose f' is written through a (fbp_activation_needs_a)
 * keeps its a right after its z, so the layers after it move up; the
 * training passes and the objective keep it, predict (which never takes f')
 * does not. With no such layer, keep_a changes nothing. */
static inline ptrdiff_t fbp_layers_init(fbp_layer *layers, const int *sizes, const int *acts,
                                        int n_layers, int keep_a) {
    ptrdiff_t params = 0, z = 0;
    for (int l = 0; l < n_layers; l++) {
        fbp_layer *layer = &layers[l];
        int code = acts[l];
        layer->n_in = sizes[l];
        layer->n_out = sizes[l + 1];
        layer->W = params;
        layer->b = params + (ptrdiff_t)layer->n_in * layer->n_out;
        layer->z = z;
        layer->a = z;
        layer->activation = code;
        layer->train_op = FBP_OP_NONE;
        layer->drop_threshold = 0;
        layer->drop_scale = 1;
        params = layer->b + layer->n_out;
        z += layer->n_out;
        if (l == n_layers - 1 ||
            (keep_a && code >= 0 && code < FBP_N_ACTIVATIONS && fbp_activation_needs_a[code])) {
            layer->a = z;
            if (l < n_layers - 1) z += layer->n_out;
        }
    }
    return params;
}

/* Scalars a row of the workspace's z_1..z_L take (with the a's kept between
 * them); a_out follows. */
static inline ptrdiff_t fbp_layers_z_width(const fbp_layer *layers, int n_layers) {
    return layers[n_layers - 1].z + layers[n_layers - 1].n_out;
}

/* What the training loops do around every optimiser step, whatever the
 * optimiser (csrc/step_rules.pxi): Network.fit's clip_norm and ema. The
 * Trainer points fbp_network.rules at one only when a rule is on. */
typedef struct {
    double clip_norm;      /* > 0: the gradient's L2 norm is clipped to it
                            * before the step; 0: off */
    void *ema;             /* NULL, or params-shaped: their moving average after
                            * each step (the first step copies them) */
    double ema_decay;      /* ema = decay ema + (1 - decay) params */
    ptrdiff_t ema_steps;   /* steps averaged so far */
} fbp_step_rules;

/* The network: its layers, its loss and the buffers trained in place. */
typedef struct {
    const int *sizes;      /* n_layers + 1 widths: the input's, then each layer's */
    const fbp_layer *layers;  /* n_layers specs (fbp_layers_init) */
    int n_layers;
    int loss;
    double loss_param;     /* the loss's parameter (fastbp_loss_table.h), or 0 */
    double l2;             /* J's penalty l2/(2 sum of weights) sum ||W||^2 */
    void *params;          /* [W_0, b_0, W_1, b_1, ...], W row-major */
    void *grad;            /* dJ/dparams, params-shaped */
    void *work;            /* workspace_size(sizes, batch_size, n_threads) */
    ptrdiff_t n_params;
    /* NULL, or with a sparse X one byte per input, all 0 between batches:
     * the rows of W_0 a batch's non-zeros reach (an optimiser's marked-rows
     * step skips the gradient of the others, which is only the L2 term) */
    unsigned char *row_marks;
    /* Dropout, on the layers whose train_op says so (else unused): for each
     * of them, m rows of its mask times f'(z) at drop_factors + m * z (the
     * workspace's layout), the factor the backward pass takes delta back
     * through; the draws' seed and epoch; and the position in the epoch of
     * the rows' first (the source's position 0 on a Trainer, the batch's
     * first row in the passes). */
    void *drop_factors;
    uint64_t drop_seed;
    int64_t drop_epoch;
    ptrdiff_t drop_first;
    fbp_step_rules *rules;  /* NULL: no rule around the steps (and never in predict
                             * or the objective) */
    void *bf16;            /* NULL, or a float32 network's bfloat16 products
                            * (csrc/layers_bf16.pxi's Bf16Work; training only) */
    int n_threads;         /* the Trainer's threads, which a wide network's
                            * per-sample epochs take (fastbp_sample.h's team); 1
                            * everywhere else */
} fbp_network;

/* Where the batches come from. */
typedef struct {
    const void *X;              /* n_rows x sizes[0], or NULL: X is the CSR below */
    /* X in scipy's CSR layout when X is NULL: row i's values are
     * X_values[X_indptr[i]:X_indptr[i + 1]], in the columns X_indices */
    const void *X_values;
    const int32_t *X_indices;
    const int64_t *X_indptr;
    const void *T;              /* n_rows x sizes[n_layers] */
    const void *sample_weight;  /* n_rows, or NULL: every row weighs 1 */
    const ptrdiff_t *order;     /* positions -> rows, or NULL: positions are rows */
    ptrdiff_t n_positions;      /* length of order, or n_rows */
    ptrdiff_t batch_size;
} fbp_batches;

/* The input rows of one batch (or a thread's part of it), as the first
 * layer's products read them: dense rows (row r at dense + r * sizes[0]), or
 * rows of a CSR matrix, row r being CSR row order[first + r] (order NULL:
 * first + r). Sparse rows are never densified. */
typedef struct {
    const void *dense;          /* NULL: the CSR rows */
    const void *values;
    const int32_t *indices;
    const int64_t *indptr;
    const ptrdiff_t *order;
    ptrdiff_t first;
} fbp_input;

/* What a run adds up: J's data and L2 terms times each batch's rows. */
typedef struct {
    double loss_sum, penalty_sum;
    ptrdiff_t rows_done;
} fbp_totals;

#endif
