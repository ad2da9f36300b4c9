# Compiled backpropagation kernels for fastbp.
#
# Conventions (see shared GUIDE):
# - float32/float64 through the fused type ``floating``;
# - every cdef kernel is ``noexcept nogil`` and works on raw, already
#   validated, C-contiguous buffers; the Python layer checks shapes first;
# - each kernel has a ``def`` twin taking typed memoryviews, for the tests.
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

# The kernels, by responsibility, in one extension module so the C compiler
# inlines across them. C headers: fastbp_codes.h (the codes), fastbp_state.h
# (a fit's state), fastbp_activations.h, fastbp_math.h, fastbp_gemm.h,
# fastbp_sample.h (the per-sample path), fastbp_threads.h, fastbp_finite.h,
# fastbp_optim.h (Adam and the L2 term over whole weight matrices),
# fastbp_denormals.h (denormals flushed to zero inside kernel calls).
include "products.pxi"     # C += op(A) op(B): loops, register tiles, BLAS
include "inputs.pxi"       # the first layer's input: dense rows or CSR rows
include "activations.pxi"  # f(a), f'(a), the output delta and J's data term
include "passes.pxi"       # forward and backward passes, workspace layout
include "optimizers.pxi"   # sgd_step, adam_step and Adam's per-step rate
include "threads.pxi"      # one minibatch split over threads of its own
include "training.pxi"     # the nogil training loop over a fit's state
include "trainer.pxi"      # Trainer, the Python object owning that state
include "twins.pxi"        # Python-callable twins of the kernels
