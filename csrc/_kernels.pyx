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

# The kernels, by responsibility; one extension module, so the C compiler
# inlines across them.
include "products.pxi"
include "activations.pxi"
include "passes.pxi"
include "optimizers.pxi"
include "threads.pxi"
include "training.pxi"
include "twins.pxi"
