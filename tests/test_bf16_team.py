"""bfloat16 training's minibatch loop on a team of threads
(csrc/training_bf16.pxi): every setting a bfloat16 fit takes gives the same
params and the same history on 1, 2 and 3 threads, on every product path."""

import numpy as np
import pytest

from fastbp import Network
from fastbp.optim import SGD, Adam

# fixtures: every path in turn; the team started for any batch, every product shared
from test_bf16_threads import every_product_threaded  # noqa: F401
from test_bfloat16 import bf16_path  # noqa: F401

SIZES = [70, 200, 97, 40, 5]

SETTINGS = {
    "l2": dict(fit=dict(l2=0.05)),
    "sample_weight": dict(fit=dict(sample_weight=True)),
    "clip_and_average": dict(fit=dict(clip_norm=0.1, ema=0.9)),
    "dropout": dict(net=dict(dropout=0.3)),
}


def _fit(threads, setting, batch_size, optimizer):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(150, SIZES[0])).astype(np.float32)
    Y = rng.normal(size=(150, SIZES[-1])).astype(np.float32)
    fit = dict(SETTINGS[setting].get("fit", {}))
    if fit.pop("sample_weight", False):
        fit["sample_weight"] = rng.uniform(0.5, 2.0, size=150).astype(np.float32)
    net = Network(SIZES, activation="tanh", output_activation="identity", dtype="float32",
                  compute_dtype="bfloat16", seed=5, **SETTINGS[setting].get("net", {}))
    history = net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=2,
                      batch_size=batch_size, n_threads=threads, seed=4, **fit)
    return net.params.copy(), history["loss"]


@pytest.mark.parametrize("setting", sorted(SETTINGS))
@pytest.mark.parametrize("batch_size", [1, 45, 150])
def test_team_gives_the_same_bits_on_any_thread_count(bf16_path, every_product_threaded,
                                                       setting, batch_size):
    make = (lambda: SGD(lr=0.002, momentum=0.9)) if batch_size > 1 else (lambda: Adam(lr=1e-4))
    params, losses = _fit(1, setting, batch_size, make())
    start = Network(SIZES, dtype="float32", seed=5).params
    assert np.isfinite(params).all() and np.isfinite(losses).all()
    assert not np.array_equal(params, start)
    for threads in (2, 3):
        other, other_losses = _fit(threads, setting, batch_size, make())
        np.testing.assert_array_equal(other, params)
        np.testing.assert_array_equal(other_losses, losses)
