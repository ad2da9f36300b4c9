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

/* The network: its shape, its loss and the buffers trained in place. */
typedef struct {
    const int *sizes;      /* n_layers + 1 layer widths */
    const int *acts;       /* n_layers activation codes */
    int n_layers;
    int loss;
    double l2;             /* J's penalty l2/(2 sum of weights) sum ||W||^2 */
    void *params;          /* [W_0, b_0, W_1, b_1, ...], W row-major */
    void *grad;            /* dJ/dparams, params-shaped */
    void *work;            /* workspace_size(sizes, batch_size, n_threads) */
    ptrdiff_t n_params;
    /* NULL, or with a sparse X one byte per input, all 0 between batches:
     * the rows of W_0 a batch's non-zeros reach (an optimiser's marked-rows
     * step skips the gradient of the others, which is only the L2 term) */
    unsigned char *row_marks;
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
