# Compiled backpropagation kernels for fastbp.
#
# Conventions:
# - float32/float64 through the fused type ``floating``;
# - every cdef kernel is ``noexcept nogil`` and works on raw, already
#   validated, C-contiguous buffers; the ``def`` entry points (Trainer,
#   Predictor, objective) check shapes first, and the tests reach the inner
#   kernels through the def twins of twins.pxi;
# - a file uses only what the C headers and the files included before it
#   declare (no include circles).
#
# Parameters of a network live in one flat vector, layer after layer:
#   [W_0 (n_0 x n_1, row-major), b_0 (n_1), W_1 (n_1 x n_2), b_1, ...]
# so that one update loop serves every optimiser step; the layer specs
# (fbp_layer, fastbp_state.h) hold each layer's offsets, computed once.
#
# Notation follows the notes: a = z_prev . W + b (pre-activation),
# z = f(a) (output), delta = dJ/da.

cimport cython
from cython cimport floating
from libc.math cimport exp, log, log1p, fabs, tanh, isfinite, sqrt, pow
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm
cimport numpy as cnp
import numpy as np

cnp.import_array()

# Contents, in include order; each part uses only the ones above it
# (tools/csrc_includes.py prints who uses what; tests/test_csrc_layout.py).
#
# C headers (plain C, compiled per instruction set where it pays):
#   fastbp_codes.h          activation, loss and optimiser codes, declared once
#                           (csrc/fastbp/_kernels.pxd makes them cpdef enums)
#   fastbp_state.h          a fit's state: fbp_network and its fbp_layer specs,
#                           fbp_batches, fbp_input, fbp_optimizer_state,
#                           fbp_totals
#   fastbp_gemm.h           AVX-512 register tiles for the products
#   fastbp_math.h           vectorised exp and sigmoid, FBP_CLONES
#   fastbp_activations.h    f(a), f'(a) through z, the output delta and J's data
#                           term (template: fastbp_activations_impl.h)
#   fastbp_optim.h          the optimisers' element loops: Adam, the L2 term
#   fastbp_sample.h         the fused per-sample SGD path (fastbp_sample_impl.h)
#   fastbp_threads.h, fastbp_finite.h, fastbp_denormals.h   threads and
#                           barriers, NaN scans, denormals flushed to zero
include "runtime.pxi"      # what every part takes from the runtime headers
include "products.pxi"     # C += op(A) op(B): loops, register tiles, BLAS
include "inputs.pxi"       # the first layer's input: dense rows or CSR rows
include "activations.pxi"  # f(a), f'(a), the output delta and J's data term
include "optimizers.pxi"   # the optimiser steps, the L2 term, Adam's rates
include "passes.pxi"       # forward and backward passes, workspace layout
include "batches.pxi"      # a minibatch's rows from the batch source
include "threads.pxi"      # one minibatch split over threads of its own
include "training.pxi"     # the nogil training loop over a fit's state
include "trainer.pxi"      # Trainer, the Python object owning that state
include "predict.pxi"      # Predictor: predict, on one thread or threads of its own
include "objective.pxi"    # J and dJ/dparams in one pass (loss, lbfgs)
include "twins.pxi"        # test twins of the kernels and tuning knobs
#
# Where to add
# - an optimiser: its element loop in fastbp_optim.h (contraction off, as
#   Adam's); its code in fastbp_codes.h and _kernels.pxd; its state in
#   fbp_optimizer_state (fastbp_state.h and _kernels.pxd); its branch in
#   each of optimizers.pxi's dispatch functions (optimizer_step,
#   optimizer_rates, optimizer_step_count, optimizer_is_plain,
#   optimizer_steps_marked_rows); a set_<name> setter on Trainer
#   (trainer.pxi). The training loops (training.pxi, threads.pxi) call only
#   those functions and never branch on the kind.
# - an activation: its code (fastbp_codes.h, _kernels.pxd); f and f' through
#   z in fastbp_activations_impl.h; the Trainer checks codes as a range, so
#   keep the list contiguous.
# - a loss: its code (fastbp_codes.h, _kernels.pxd); its output delta and
#   data term in fbp_output_delta_row (fastbp_activations_impl.h); the range
#   check in Trainer._setup.
# - a layer op acting during training only (dropout): the network is a list
#   of layer specs (fbp_layer, fastbp_state.h), laid out once by
#   fbp_layers_init and walked as net.layers[l] by every path. The op gets
#   its code in enum fbp_train_op and its parameters (a rate, a mask buffer)
#   in fbp_layer (fastbp_state.h, _kernels.pxd); a Trainer setter puts it on
#   a layer's spec (trainer.pxi; Predictor's and the objective's specs keep
#   FBP_OP_NONE, so predict and J never see it); its forward after the
#   layer's activation in forward_layer_rows and _forward_layer_columns, its
#   backward after multiply_derivative in backward_pass, backward_sgd and
#   _backward_block (passes.pxi, threads.pxi); train_rows_kernel
#   (training.pxi) keeps a network with an op off the per-sample path
#   (fastbp_sample_impl.h), which then needs no change.
