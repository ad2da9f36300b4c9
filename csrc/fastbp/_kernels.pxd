# Declarations only. The activation and loss codes come from their tables
# (_kernels.activation_table(), loss_table()); optimisers register by name.

# A fit's native state (csrc/fastbp_state.h), owned by Trainer: the network
# (its layer specs) and the batch source (the optimiser's is
# csrc/optimizers.pxi's); void* scalars are float or double.
from libc.stdint cimport int32_t, int64_t, uint32_t, uint64_t

cdef extern from "fastbp_state.h" nogil:
    enum: FBP_MAX_LAYERS
    enum: FBP_OP_NONE
    enum: FBP_OP_DROPOUT

    ctypedef struct fbp_layer:
        int n_in, n_out
        Py_ssize_t W, b, z, a
        int activation
        int train_op
        uint32_t drop_threshold
        double drop_scale

    Py_ssize_t fbp_layers_init(fbp_layer* layers, const int* sizes, const int* acts,
                               int n_layers, int keep_a)
    Py_ssize_t fbp_layers_z_width(const fbp_layer* layers, int n_layers)

    ctypedef struct fbp_step_rules:
        double clip_norm
        void* ema
        double ema_decay
        Py_ssize_t ema_steps

    ctypedef struct fbp_network:
        const int* sizes
        const fbp_layer* layers
        int n_layers
        int loss
        double loss_param
        double l2
        void* params
        void* grad
        void* work
        Py_ssize_t n_params
        unsigned char* row_marks
        void* drop_factors
        uint64_t drop_seed
        int64_t drop_epoch
        Py_ssize_t drop_first
        fbp_step_rules* rules
        void* bf16
        int n_threads

    ctypedef struct fbp_batches:
        const void* X
        const void* X_values
        const int32_t* X_indices
        const int64_t* X_indptr
        const void* T
        const void* sample_weight
        const Py_ssize_t* order
        Py_ssize_t n_positions
        Py_ssize_t batch_size

    ctypedef struct fbp_input:
        const void* dense
        const void* values
        const int32_t* indices
        const int64_t* indptr
        const Py_ssize_t* order
        Py_ssize_t first

    ctypedef struct fbp_totals:
        double loss_sum, penalty_sum
        Py_ssize_t rows_done
