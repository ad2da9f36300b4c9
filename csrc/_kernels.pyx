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
#   fastbp_codes.h          activation, loss and optimiser codes, declared once;
#                           the first two generated from their tables:
#   fastbp_activation_table.h, fastbp_loss_table.h   an activation or a loss is
#                           one row (X-macro list + the row's functions)
#   fastbp_state.h          a fit's state: fbp_network, fbp_batches, fbp_input,
#                           fbp_optimizer_state, fbp_totals
#   fastbp_gemm.h           AVX-512 register tiles for the products
#   fastbp_math.h           vectorised exp and sigmoid, FBP_CLONES
#   fastbp_activations.h    f(a), f'(a) through z, the output delta and J's data
#                           term: the tables' switches (fastbp_activations_impl.h)
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
include "predict.pxi"      # predict, on one thread or threads of its own
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
# - an activation: one row in fastbp_activation_table.h (its line in the
#   list, and below it fbp_activate_<name> and fbp_times_derivative_<name>);
#   the enum, every kernel's switch, the Trainer's check and Python's
#   fastbp.ACTIVATIONS follow from the list. Beside it, written apart so they
#   stay independent oracles: its formula and f' in fastbp/reference/neuron.py
#   (ACTIVATIONS, DERIVATIVES), its op in fastbp/reference/graph.py
#   (GRAPH_ACTIVATIONS) and its ONNX nodes in fastbp/onnx_export.py
#   (ACTIVATION_NODES); tests/test_tables.py fails until all four name it.
# - a loss: one row in fastbp_loss_table.h (its line with the output it
#   needs, and fbp_loss_<name>: output delta and data term); the pairing
#   Python reads (fastbp.losses) follows from it. Beside it: its rows in
#   fastbp/reference/neuron.py (SAMPLE_LOSSES, LOSS_GRADIENTS, LOSS_OUTPUTS)
#   and fastbp/reference/graph.py (GRAPH_LOSSES); target checks, if any, in
#   fastbp/losses.py.
# - a layer op: the walk over the layers is written out per path today:
#   forward_layer_rows, backward_pass and backward_sgd (passes.pxi), the
#   threaded _own_deltas, _backward_block and _update_own_block (threads.pxi)
#   and the per-sample epoch (fastbp_sample_impl.h); predict and the
#   objective go through passes.pxi's forward and backward passes.
