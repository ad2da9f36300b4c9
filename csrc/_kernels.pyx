# Compiled backpropagation kernels for fastbp.
#
# Conventions:
# - float32/float64 through the fused type ``floating``;
# - every cdef kernel is ``noexcept nogil`` and works on raw, already
#   validated, C-contiguous buffers; the ``def`` entry points (Trainer,
#   predict, objective) check shapes first, and the tests reach the inner
#   kernels through the def twins of twins.pxi;
# - a file uses only what the C headers and the files included before it
#   declare (no include circles).
#
# Parameters of a network live in one flat vector, layer after layer:
#   [W_0 (n_0 x n_1, row-major), b_0 (n_1), W_1 (n_1 x n_2), b_1, ...]
# so that one update loop serves every optimiser step.
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
#   fastbp_codes.h          activation and loss codes, declared once,
#                           generated from their tables:
#   fastbp_activation_table.h, fastbp_loss_table.h   an activation or a loss is
#                           one row (X-macro list + the row's functions)
#   fastbp_state.h          a fit's state: fbp_network, fbp_batches, fbp_input,
#                           fbp_totals (the optimiser's: optimizers.pxi)
#   fastbp_gemm.h           AVX-512 register tiles for the products
#   fastbp_math.h           vectorised exp and sigmoid, FBP_CLONES
#   fastbp_activations.h    f(a), f'(a) through z, the output delta and J's data
#                           term: the tables' switches (fastbp_activations_impl.h)
#   fastbp_optim.h          the L2 term's loops, shared by every optimiser
#   fastbp_adam.h           Adam's element loops (optim_adam.pxi)
#   fastbp_sample.h         the fused per-sample SGD path (fastbp_sample_impl.h)
#   fastbp_threads.h, fastbp_finite.h, fastbp_denormals.h   threads and
#                           barriers, NaN scans, denormals flushed to zero
include "runtime.pxi"      # what every part takes from the runtime headers
include "products.pxi"     # C += op(A) op(B): loops, register tiles, BLAS
include "inputs.pxi"       # the first layer's input: dense rows or CSR rows
include "activations.pxi"  # f(a), f'(a), the output delta and J's data term
include "optimizers.pxi"   # an optimiser's table and state, its registry, the L2 term
include "optim_sgd.pxi"    # SGD: plain, momentum, Nesterov
include "optim_adam.pxi"   # Adam, scikit-learn's and PyTorch's
include "passes.pxi"       # forward and backward passes, workspace layout
include "batches.pxi"      # a minibatch's rows from the batch source
include "threads.pxi"      # one minibatch split over threads of its own
include "training.pxi"     # the nogil training loop over a fit's state
include "trainer.pxi"      # Trainer, the Python object owning that state
include "predict.pxi"      # predict, on one thread or threads of its own
include "objective.pxi"    # J and dJ/dparams in one pass (loss, lbfgs)
include "twins.pxi"        # test twins of the kernels and tuning knobs
#
# Where to add
#   fastbp_codes.h          activation and loss codes, declared once,
#                           generated from their tables:
#   fastbp_activation_table.h, fastbp_loss_table.h   an activation or a loss is
#                           one row (X-macro list + the row's functions)
# - a layer op: the walk over the layers is written out per path today:
#   forward_layer_rows, backward_pass and backward_sgd (passes.pxi), the
#   threaded _own_deltas, _backward_block and _update_own_block (threads.pxi)
#   and the per-sample epoch (fastbp_sample_impl.h); predict and the
#   objective go through passes.pxi's forward and backward passes.
