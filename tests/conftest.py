"""Fixtures shared by the tests."""
import numpy as np
import pytest

from fastbp import _kernels


@pytest.fixture(params=["loops", "blas", "tiled"])
def gemm_path(request):
    """Run a test with plain loops, with BLAS, and with the AVX-512 tiles (where
    the CPU has them; BLAS still takes the columns left over) for every product."""
    old = _kernels.set_blas_min_flops(0 if request.param != "loops" else 2**62)
    tiled = _kernels.set_tiled_gemm(request.param == "tiled")
    try:
        if request.param == "tiled" and not tiled:
            pytest.skip("the CPU has no AVX-512")
        yield request.param
    finally:
        _kernels.set_blas_min_flops(old)
        _kernels.set_tiled_gemm(True)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def scaled_digits():
    """scikit-learn's digits, pixels scaled to [0, 1], and their labels."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return X / 16, y
