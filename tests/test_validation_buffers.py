"""A fit's validation loss each epoch: the same value as Network.loss, with
buffers made once and no NumPy BLAS call (its thread pool and scipy's, which
the kernels use, fought over 2 cores: 3x the time of the pass)."""
import numpy as np
import pytest

import fastbp
from fastbp import _fitting, _objective


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_validation_rows_equal_the_loss_and_keep_their_buffers(dtype, monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 5)).astype(dtype)
    Y = np.eye(3)[rng.integers(0, 3, 300)].astype(dtype)
    net = fastbp.Network([5, 7, 3], output_activation="softmax", dtype=dtype, seed=0)
    code = fastbp.losses.check_loss("cross_entropy", "softmax")
    validation = _fitting.ValidationRows(X, Y, code)
    expected = net.loss(X, Y)  # l2=0: its own buffers, the same passes
    made = []
    real = _objective.pass_buffers
    monkeypatch.setattr(_fitting, "pass_buffers", lambda *a: made.append(a) or real(*a))
    monkeypatch.setattr(_objective.np, "dot", lambda *a: pytest.fail("np.dot called"))
    assert validation(net) == expected
    assert validation(net) == expected
    assert len(made) == 1
    assert made[0][2] == 300 and made[0][3] == np.dtype(dtype)
