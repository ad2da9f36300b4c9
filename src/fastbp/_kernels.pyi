"""Type stub of the compiled kernels (csrc/_kernels.pyx).

Every array argument is a C-contiguous NumPy array of one float dtype,
float32 or float64 throughout a call (Cython's fused ``floating``), except
``sizes`` and ``acts`` (C int, ``np.intc``) and ``order`` (``np.intp``);
where X may be sparse it is dense rows or :class:`fastbp._sparse.CsrRows`.
The kernels trust their caller: :mod:`fastbp.network` validates first.
``mypy.stubtest fastbp._kernels`` checks this file against the module.
"""
from enum import IntEnum
from typing import TypeVar

from typing_extensions import disjoint_base

import numpy as np
import numpy.typing as npt

from fastbp._sparse import CsrRows

_F = TypeVar("_F", np.float32, np.float64)
_Floats = npt.NDArray[_F]
_Ints = npt.NDArray[np.intc]
_Rows = npt.NDArray[_F] | CsrRows  # dense rows, or CSR rows of the same dtype

#: Cython's doctest table (empty)
__test__: dict[str, str]
#: whether fastbp can start threads of its own on this platform
HAVE_THREADS: bool
MAX_THREADS: int

# The codes of csrc/fastbp_codes.h (cpdef enums of csrc/fastbp/_kernels.pxd)
class Activation(IntEnum):
    IDENTITY = 0
    SIGMOID = 1
    TANH = 2
    RELU = 3
    SOFTMAX = 4

class Loss(IntEnum):
    MSE = 0
    BCE = 1
    CROSS_ENTROPY = 2
    POISSON = 3

class Optimizer(IntEnum):
    SGD = 0
    ADAM = 1

def aligned_empty(size: int, dtype: npt.DTypeLike) -> npt.NDArray[np.generic]: ...
def set_blas_min_flops(flops: int) -> int: ...
def set_column_split(min_bytes: int, block: int, max_rows: int = -1) -> tuple[int, int, int]: ...
def column_split_plan(
    sizes: _Ints, batch_size: int, n_threads: int, itemsize: int, dense: bool = True,
) -> tuple[list[bool], list[bool]]: ...
def set_tiled_gemm(on: bool) -> bool: ...
def first_nonfinite(values: _Floats[_F]) -> int: ...
def tiled_gemm_in_use() -> bool: ...
def workspace_size(sizes: _Ints, rows: int, n_threads: int = 1) -> int: ...
def layer_specs(sizes: _Ints, acts: _Ints) -> tuple[list[dict[str, int]], int]: ...
def pass_workspace_size(sizes: _Ints, rows: int) -> int: ...
def dense_forward(z_prev: _Floats[_F], W: _Floats[_F], b: _Floats[_F], a: _Floats[_F]) -> None: ...
def activate(a: _Floats[_F], z: _Floats[_F], kind: int) -> None: ...
def activation_derivative(z: _Floats[_F], out: _Floats[_F], kind: int) -> None: ...
def loss_output_delta(
    a_out: _Floats[_F], z_out: _Floats[_F], T: _Floats[_F], delta: _Floats[_F],
    loss: int, kind: int,
) -> float: ...
def backprop_delta(
    delta_next: _Floats[_F], W_next: _Floats[_F], z: _Floats[_F], kind: int,
    delta: _Floats[_F],
) -> None: ...
def layer_gradients(
    z_prev: _Floats[_F], delta: _Floats[_F], W: _Floats[_F], l2_over_m: float,
    dW: _Floats[_F], db: _Floats[_F],
) -> None: ...
def sgd_update(
    params: _Floats[_F], grad: _Floats[_F], velocity: _Floats[_F], lr: float,
    momentum: float, nesterov: bool,
) -> None: ...
def predict_workspace_share(sizes: _Ints, rows: int, n_threads: int,
                            convert: bool = False) -> int: ...
def network_loss(
    X: _Rows[_F], T: _Floats[_F], params: _Floats[_F], sizes: _Ints, acts: _Ints,
    loss: int, l2: float, work: _Floats[_F], grad: _Floats[_F],
) -> float: ...
def weighted_loss_gradient(
    X: _Rows[_F], T: _Floats[_F], sample_weight: _Floats[_F], params: _Floats[_F],
    sizes: _Ints, acts: _Ints, loss: int, l2: float, work: _Floats[_F], grad: _Floats[_F],
) -> tuple[float, float]: ...

@disjoint_base
class Trainer:
    """The native state of one fit (network, batch source, optimiser) and its
    nogil training loop; see csrc/trainer.pxi."""
    def __init__(
        self, sizes: _Ints, acts: _Ints, loss: int, l2: float, batch_size: int,
        n_threads: int = 1,
    ) -> None: ...
    @property
    def n_threads(self) -> int: ...
    @property
    def lr(self) -> float: ...
    @lr.setter
    def lr(self, value: float) -> None: ...
    @property
    def step_count(self) -> int: ...
    def set_params(self, params: npt.NDArray[np.float32] | npt.NDArray[np.float64]) -> None: ...
    def set_data(
        self, X: _Rows[_F], T: _Floats[_F], sample_weight: _Floats[_F] | None = None,
    ) -> None: ...
    def set_order(self, order: npt.NDArray[np.intp] | None) -> None: ...
    def set_sgd(
        self, lr: float, momentum: float = 0.0, nesterov: bool = False,
        velocity: _Floats[_F] | None = None,
    ) -> None: ...
    def set_adam(
        self, lr: float, beta1: float, beta2: float, epsilon: float, first: _Floats[_F],
        second: _Floats[_F], step_count: int = 0, torch_epsilon: bool = False,
    ) -> None: ...
    def run(self, start: int, stop: int) -> tuple[int, float, float, int]: ...
    def run_epochs(
        self, n_epochs: int, epoch_rows: int, data_sums: npt.NDArray[np.float64],
        penalty_sums: npt.NDArray[np.float64],
    ) -> tuple[int, int]: ...

@disjoint_base
class Predictor:
    """A network's compiled description for prediction (layer specs and
    parameters, referenced); see csrc/predict.pxi."""
    @property
    def sizes(self) -> _Ints: ...
    @property
    def acts(self) -> _Ints: ...
    @property
    def params(self) -> npt.NDArray[np.float32] | npt.NDArray[np.float64]: ...
    def __init__(
        self, sizes: _Ints, acts: _Ints,
        params: npt.NDArray[np.float32] | npt.NDArray[np.float64],
    ) -> None: ...
    def predict(
        self, X: _Rows[_F] | npt.NDArray[np.floating], out: _Floats[_F],
        work: _Floats[_F] | None = None, n_threads: int = 1, check_finite: bool = False,
    ) -> int: ...
