"""Fixtures shared by the tests."""
import numpy as np
import pytest

from fastbp import _kernels


@pytest.fixture(params=["loops", "blas"])
def gemm_path(request):
    """Run a test once with plain loops and once with BLAS for every product."""
    old = _kernels.set_blas_min_flops(0 if request.param == "blas" else 2**62)
    yield request.param
    _kernels.set_blas_min_flops(old)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
