/* The activation and loss codes, declared once (optimisers have no code:
 * each registers itself by name, csrc/optimizers.pxi).
 *
 * The C headers use them directly; csrc/fastbp/_kernels.pxd turns them into the
 * cpdef enums fastbp._kernels.Activation and Loss, from which the Python
 * layer derives its name -> code tables. Each list runs from 0 without gaps:
 * the Trainer checks codes as ranges.
 */
#ifndef FASTBP_CODES_H
#define FASTBP_CODES_H

enum fbp_activation {
    FBP_IDENTITY = 0,
    FBP_SIGMOID = 1,
    FBP_TANH = 2,
    FBP_RELU = 3,
    FBP_SOFTMAX = 4
};

enum fbp_loss {
    FBP_MSE = 0,
    FBP_BCE = 1,
    FBP_CROSS_ENTROPY = 2, /* with softmax outputs */
    FBP_POISSON = 3        /* with identity outputs, the log of the mean */
};

#endif
