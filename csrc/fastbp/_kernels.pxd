# Declarations only: the codes of csrc/fastbp_codes.h as cpdef enums, so
# Python reads the same numbers (fastbp._kernels.Activation etc.) and the
# kernels compare against the same names.

cdef extern from "fastbp_codes.h":
    cpdef enum Activation "fbp_activation":
        IDENTITY "FBP_IDENTITY"
        SIGMOID "FBP_SIGMOID"
        TANH "FBP_TANH"
        RELU "FBP_RELU"
        SOFTMAX "FBP_SOFTMAX"

    cpdef enum Loss "fbp_loss":
        MSE "FBP_MSE"
        BCE "FBP_BCE"
        CROSS_ENTROPY "FBP_CROSS_ENTROPY"
        POISSON "FBP_POISSON"

    cpdef enum Optimizer "fbp_optimizer":
        SGD "FBP_SGD"
        ADAM "FBP_ADAM"


# A fit's native state (csrc/fastbp_state.h), owned by Trainer: the network
# (its layer specs), the batch source and the optimiser; void* scalars are
# float or double.
from libc.stdint cimport int32_t, int64_t

cdef extern from "fastbp_state.h" nogil:
    enum: FBP_MAX_LAYERS
    enum: FBP_OP_NONE

    ctypedef struct fbp_layer:
        int n_in, n_out
        Py_ssize_t W, b, z
        int activation
        int train_op

    Py_ssize_t fbp_layers_init(fbp_layer* layers, const int* sizes, const int* acts,
                               int n_layers)

    ctypedef struct fbp_network:
        const int* sizes
        const fbp_layer* layers
        int n_layers
        int loss
        double l2
        void* params
        void* grad
        void* work
        Py_ssize_t n_params
        unsigned char* row_marks

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

    ctypedef struct fbp_optimizer_state:
        int kind
        double lr
        double momentum
        bint nesterov
        void* velocity
        double beta1, beta2, epsilon
        bint torch_epsilon
        void* first_moment
        void* second_moment
        Py_ssize_t step_count

    ctypedef struct fbp_totals:
        double loss_sum, penalty_sum
        Py_ssize_t rows_done
