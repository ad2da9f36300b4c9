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
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from cpython.ref cimport PyObject, Py_REFCNT
from libc.stdint cimport int64_t, uint32_t, uint64_t
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv
cimport numpy as cnp
import sys

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
#   fastbp_state.h          a fit's state: fbp_network and its fbp_layer specs,
#                           its fbp_step_rules, fbp_batches, fbp_input,
#                           fbp_totals (the optimiser's: optimizers.pxi)
#   fastbp_gemm.h           AVX-512 register tiles for the products
#   fastbp_bf16.h           bfloat16 products, float32 sums: AMX, AVX512-BF16, emulated
#   fastbp_bf16_rows.h      float32 products of bfloat16-rounded operands (predict)
#   fastbp_math.h           vectorised exp and sigmoid, FBP_CLONES
#   fastbp_activations.h    f(a), f'(a) through z or a, the output delta and J's data
#                           term: the tables' switches (fastbp_activations_impl.h)
#   fastbp_optim.h          the L2 term's loops, shared by every optimiser
#   fastbp_adam.h           Adam's element loops, and the macro its variants' make theirs
#   fastbp_dropout.h        dropout's counter-based draws and mask loop
#   fastbp_sample.h         the fused per-sample SGD paths, plain and with
#                           momentum (fastbp_sample_impl.h), a wide network's
#                           on a team of threads (fastbp_sample_team_impl.h)
#   fastbp_threads.h, fastbp_finite.h, fastbp_denormals.h   threads and
#                           barriers, NaN scans, denormals flushed to zero
include "runtime.pxi"      # what every part takes from the runtime headers
include "products.pxi"     # C += op(A) op(B): loops, register tiles, BLAS
include "products_bf16.pxi"  # C = A.B (or +=) in bfloat16 with float32 sums
include "layers_bf16.pxi"  # a layer's training products in bfloat16 (compute_dtype)
include "inputs.pxi"       # the first layer's input: dense rows or CSR rows
include "activations.pxi"  # f(a), f'(a), the output delta and J's data term
include "dropout.pxi"      # dropout: a training-only layer op, its mask and its f' step
include "step_rules.pxi"   # around any step: the gradient's norm clipped, the params averaged
include "optimizers.pxi"   # an optimiser's table and state, its registry, the L2 term
include "optim_sgd.pxi"    # SGD: plain, momentum, Nesterov
include "optim_adam.pxi"   # Adam, scikit-learn's and PyTorch's
include "optim_rmsprop.pxi"  # RMSprop, as PyTorch's
include "optim_adagrad.pxi"  # Adagrad, as PyTorch's
include "optim_rprop.pxi"    # Rprop (iRPROP-), as PyTorch's
include "optim_adamw.pxi"  # AdamW: Adam with decoupled weight decay, as PyTorch's
include "optim_nadam.pxi"  # NAdam, as PyTorch's
include "passes.pxi"       # forward and backward passes, workspace layout
include "batches.pxi"      # a minibatch's rows from the batch source
include "threads.pxi"      # one minibatch split over threads of its own
include "training_bf16.pxi"  # a bfloat16 fit's minibatch loop, on a team of threads
include "training.pxi"     # the nogil training loop over a fit's state
include "trainer.pxi"      # Trainer, the Python object owning that state
include "predict_bf16.pxi"  # predict in bfloat16 products, float32 sums
include "predict.pxi"      # Predictor: predict, on one thread or threads of its own
include "objective.pxi"    # J and dJ/dparams in one pass (loss, lbfgs)
include "twins.pxi"        # test twins of the kernels and tuning knobs
#
# Where to add
# - an optimiser: a file of its own, optim_<name>.pxi, included above after
#   optim_adam.pxi. It fills an OptimizerFunctions table (optimizers.pxi:
#   advance, the step per dtype, and optionally is_plain, the sparse
#   first layer's marked-rows step and a fused per-sample epoch, as SGD's
#   with momentum), keeps its hyper-parameters, buffers and
#   step count in fbp_optimizer_state's generic slots, and registers itself
#   with register_optimizer(name, table, hyper defaults, buffer names,
#   check). Element loops that pay for per-ISA clones go in a header of its
#   own (as fastbp_adam.h, contraction off). Trainer.set_optimizer and the
#   tests' optimizer_update then take it by name; the training loops call
#   only the table and never ask which optimiser it is. Its Python class
#   (src/fastbp/optim.py) names it in kernel_name.
# - an activation: one row in fastbp_activation_table.h (its line in the
#   list, and below it fbp_activate_<name> and fbp_times_derivative_<name>,
#   f' through z, or through a when the line says A: a layer with it then
#   keeps its a beside z, fbp_layers_init); the enum, every kernel's switch,
#   the Trainer's check and Python's fastbp.ACTIVATIONS follow from the
#   list. Beside it, written apart so they stay independent oracles: its
#   entry in fastbp/reference/activations.py (its formula, its f' with of_a=
#   for an A row, its graph op; the entry fills neuron.py's and graph.py's
#   tables) and its ONNX nodes in fastbp/onnx_export.py (ACTIVATION_NODES);
#   tests/test_tables.py fails until every table names it.
# - a loss: one row in fastbp_loss_table.h (its line with the output it
#   needs and its parameter's default, and fbp_loss_<name>: output delta
#   and data term); the pairing Python reads (fastbp.losses) follows from
#   it. Beside it: its rows in fastbp/reference/neuron.py (SAMPLE_LOSSES,
#   LOSS_GRADIENTS, LOSS_OUTPUTS) and fastbp/reference/graph.py
#   (GRAPH_LOSSES); target checks, and a Loss class if users set its
#   parameter (fbp_network.loss_param), in fastbp/losses.py.
# - a layer op acting during training only (as dropout, dropout.pxi): the
#   network is a list of layer specs (fbp_layer, fastbp_state.h), laid out
#   once by fbp_layers_init and walked as net.layers[l] by every path. The
#   op gets its code in enum fbp_train_op and its parameters in fbp_layer
#   (fastbp_state.h, _kernels.pxd), a buffer of its own in fbp_network if it
#   needs one; a Trainer setter puts it on a layer's spec (trainer.pxi;
#   Predictor's and the objective's specs keep FBP_OP_NONE, so predict and
#   J never see it); its forward after the layer's activation in
#   forward_layer_rows and _forward_layer_columns, its backward where
#   multiply_layer_derivative takes delta through the layer (passes.pxi,
#   threads.pxi), and on the per-sample path (fastbp_sample_impl.h: after f
#   in fbp_sample_forward, through its factors where delta goes below, as
#   dropout's), or train_rows_kernel (training.pxi) keeps a network with the
#   op off that path.
