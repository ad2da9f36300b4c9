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

    cpdef enum Optimizer "fbp_optimizer":
        SGD "FBP_SGD"
        ADAM "FBP_ADAM"
