"""bfloat16 training's products split over threads (csrc/layers_bf16.pxi):
the same bits on any thread count, on every product path."""

import numpy as np
import pytest

from fastbp import Network, _kernels
from fastbp.optim import SGD, Adam

from test_bfloat16 import bf16_path  # noqa: F401 (a fixture)


@pytest.fixture
def every_product_threaded():
    # one thread per multiply-add: every packed product takes the threaded way
    old = _kernels.set_bf16_train_threading(1)
    try:
        yield
    finally:
        _kernels.set_bf16_train_threading(old)


def _fit(threads, optimizer, batch_size):
    rng = np.random.default_rng(29)
    # widths off the packs' 32-blocks, so the last thread's share is partial
    sizes = [70, 200, 97, 40, 5]
    X = rng.normal(size=(300, sizes[0])).astype(np.float32)
    Y = rng.normal(size=(300, sizes[-1])).astype(np.float32)
    net = Network(sizes, activation="relu", output_activation="identity",
                  dtype="float32", compute_dtype="bfloat16", seed=3)
    net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=2, batch_size=batch_size,
            n_threads=threads, seed=1)
    return net.params.copy()


@pytest.mark.parametrize("optimizer", [SGD(lr=0.01), Adam(lr=1e-3)])
@pytest.mark.parametrize("batch_size", [80, 300])
def test_one_two_and_three_threads_identical(bf16_path, every_product_threaded,
                                             optimizer, batch_size):
    start = Network([70, 200, 97, 40, 5], dtype="float32", seed=3).params
    one = _fit(1, optimizer, batch_size)
    assert np.isfinite(one).all()
    assert not np.array_equal(one, start)
    for threads in (2, 3):
        np.testing.assert_array_equal(_fit(threads, optimizer, batch_size), one)


def test_threading_knob_checks_its_value():
    with pytest.raises(ValueError, match="thread_macs"):
        _kernels.set_bf16_train_threading(0)
    old = _kernels.set_bf16_train_threading(-1)
    assert _kernels.set_bf16_train_threading(-1) == old
