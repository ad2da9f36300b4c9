"""A bfloat16 fit's fixed costs cut, with the same results:
- its scratch (gradient, workspace, packs) handed to the next fit of the
  same sizes (csrc/trainer.pxi: _scratch_empty): a fit on reused, dirty
  scratch has the bits of one on fresh memory;
- its params checked for non-finite values in the last step
  (csrc/training_bf16.pxi) instead of a pass after it: weights that
  overflow in a step whose loss was finite are still a divergence."""

import numpy as np
import pytest

import fastbp
from fastbp import Network, _kernels
from fastbp.optim import SGD

# fixtures: every product path in turn; the team started for any batch
from test_bf16_threads import every_product_threaded  # noqa: F401
from test_bfloat16 import bf16_path  # noqa: F401

SIZES = [70, 200, 97, 40, 5]


def _fit(threads, compute_dtype="bfloat16", batch_size=45):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, SIZES[0])).astype(np.float32)
    Y = rng.normal(size=(150, SIZES[-1])).astype(np.float32)
    net = Network(SIZES, activation="tanh", output_activation="identity", dtype="float32",
                  compute_dtype=compute_dtype, seed=5)
    # a callback keeps the fit on the full path, whose trainer ends with the
    # fit and hands its scratch on (a lean fit of small data keeps its
    # trainer for the next fit, scratch and all: fastbp._lean)
    history = net.fit(X, Y, loss="mse", optimizer=SGD(lr=0.002, momentum=0.9), epochs=2,
                      batch_size=batch_size, n_threads=threads, seed=4,
                      callbacks=[lambda *args: None])
    return net.params.copy(), history["loss"]


@pytest.mark.parametrize("threads", [1, 2])
def test_reused_scratch_gives_the_bits_of_fresh_scratch(bf16_path, every_product_threaded,
                                                        threads):
    _kernels.bf16_spare_scratch(clear=True)
    fresh, fresh_losses = _fit(threads)
    kept = _kernels.bf16_spare_scratch()
    assert len(kept) == 3  # the gradient, the workspace, the packs
    for array in kept:  # whatever a reused array holds must not reach the results
        array.fill(np.nan)
    del kept
    again, again_losses = _fit(threads)
    np.testing.assert_array_equal(again, fresh)
    np.testing.assert_array_equal(again_losses, fresh_losses)


def test_a_fit_takes_the_kept_scratch_and_gives_it_back():
    _kernels.bf16_spare_scratch(clear=True)
    _fit(1)
    kept = [id(array) for array in _kernels.bf16_spare_scratch()]
    _fit(1)
    assert sorted(id(array) for array in _kernels.bf16_spare_scratch()) == sorted(kept)
    # another batch size: only the gradient (its size the params') is taken again
    _fit(1, batch_size=30)
    now = {id(array) for array in _kernels.bf16_spare_scratch()}
    assert len(now) == 3 and len(now & set(kept)) == 1


def test_float32_fits_keep_no_scratch():
    _kernels.bf16_spare_scratch(clear=True)
    _fit(1, compute_dtype="float32")
    assert _kernels.bf16_spare_scratch() == []


@pytest.mark.parametrize("epochs", [1, 3])  # one run call, or a block of epochs
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("compute_dtype", ["float32", "bfloat16"])
def test_weights_overflowing_in_the_last_step_are_a_divergence(
        bf16_path, every_product_threaded, compute_dtype, threads, epochs):
    # relu layers (packed and small) into an identity output, huge inputs and
    # rate: the loss of the only batch is finite, the step overflows to inf
    rng = np.random.default_rng(0)
    X = (1e17 * rng.uniform(0.5, 1.0, size=(40, 40))).astype(np.float32)
    Y = np.zeros((40, 1), np.float32)
    net = Network([40, 48, 33, 1], activation="relu", output_activation="identity",
                  dtype="float32", compute_dtype=compute_dtype, seed=1)
    start = net.params.copy()
    with pytest.raises(fastbp.TrainingDiverged, match="non-finite in the weights"):
        net.fit(X, Y, loss="mse", optimizer=SGD(lr=1e10), epochs=epochs, batch_size=40,
                n_threads=threads, shuffle=False)
    np.testing.assert_array_equal(net.params, start)  # rolled back
