"""The weight gradient's tiles prefetch a transposed A (the batch) that
spans more than FBP_GEMM_TN_PREFETCH_BYTES (256 KiB): the prefetches must
not change a bit of dW, nor write outside it."""
import numpy as np
import pytest

from fastbp import _kernels

DTYPES = ["float32", "float64"]


@pytest.mark.parametrize("dtype", DTYPES)
def test_prefetched_weight_gradient_gives_the_bits_of_an_unprefetched_one(rng, dtype):
    if not _kernels.set_tiled_gemm(True):
        pytest.skip("the CPU has no AVX-512")
    # 700 rows (5 blocks of 128 and a rest) of 410 inputs (two 192-row
    # blocks of dW and a rest): 1.1-2.2 MiB of z_prev, so it is prefetched
    m, n_in, n_out, guard = 700, 410, 64, 64
    z_prev, delta = (rng.normal(size=(m, width)).astype(dtype) for width in (n_in, n_out))
    W, db = np.zeros((n_in, n_out), dtype), np.empty(n_out, dtype)
    # dW between two NaN bands: the tiles must leave them untouched
    band = np.full(2 * guard + n_in * n_out, np.nan, dtype)
    dW = band[guard:guard + n_in * n_out].reshape(n_in, n_out)
    _kernels.layer_gradients(z_prev, delta, W, 0.0, dW, db)
    assert np.isnan(band[:guard]).all() and np.isnan(band[-guard:]).all()
    rtol, atol = (1e-4, 1e-3) if dtype == "float32" else (1e-12, 1e-10)
    assert np.allclose(dW, z_prev.T.astype(np.float64) @ delta, rtol=rtol, atol=atol)
    # a row of dW sums its column of z_prev over the same 128-row blocks in
    # the same order whatever the tile; 13-30 columns span 168 KiB or less,
    # under the threshold: no prefetch
    for lo, hi in ((0, 13), (186, 200), (380, 410)):
        part = np.empty((hi - lo, n_out), dtype)
        _kernels.layer_gradients(z_prev[:, lo:hi].copy(), delta, W[lo:hi].copy(), 0.0, part,
                                 db)
        np.testing.assert_array_equal(dW[lo:hi], part)
