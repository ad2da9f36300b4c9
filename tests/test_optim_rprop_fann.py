"""Rprop against FANN's iRPROP- (``fann_update_weights_irpropm``, FANN's
default algorithm) on 4-bit parity, full batch, through bench/peers'
ctypes driver of libfann/libdoublefann.

What must agree, and why not beyond it. FANN's slope is
Σ_rows (t − y)·f′·z, i.e. −m times fastbp's gradient of ½Σ(y − t)²/m; Rprop
reads only signs, so that scale does not matter, and FANN's sign
convention (it adds Δ where the slope is positive) is fastbp's W − sign(g)Δ.
FANN clips y to [0.01, 0.99] inside y(1 − y): a positive factor, signs
unchanged. FANN's factors are C floats, so η+ is float32(1.2) here too.
Two rules differ, and an exact match through many epochs is impossible
without copying FANN's rule (fastbp follows PyTorch's):

- where g·g′ = 0, FANN grows Δ by η+, PyTorch keeps it. At the first step
  (g′ = 0) that is FANN's Δ₀·η+, so ``lr = Δ₀·η+`` makes the first steps
  equal; after a change of sign (g′ set to 0) the two part.
- at a change of sign PyTorch does not move the weight; FANN moves it by
  +Δ (its slope is then 0, and it takes the "slope >= 0" branch).

(FANN also floors Δ at 1e-4 before scaling it and clips weights to
±1500; neither is reached here.) So the test checks that the weights are
the same bits for every epoch before the first change of sign, and that in
the epoch with the first changes FANN's weights are fastbp's plus exactly
the new Δ on the weights that changed sign, and equal elsewhere.
"""
import ctypes
import importlib
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest

import fastbp

BENCH = Path(__file__).resolve().parents[1] / "bench"
if not (BENCH / "peers" / "fann_peer.py").is_file():
    pytest.skip("needs the checkout's bench/peers", allow_module_level=True)
sys.path.insert(0, str(BENCH))
try:
    fann_peer = importlib.import_module("peers.fann_peer")
finally:
    sys.path.remove(str(BENCH))
if fann_peer.availability() is not None:
    pytest.skip(fann_peer.availability(), allow_module_level=True)

FANN_TRAIN_RPROP = 2
# FANN 2.2's defaults (fann.c, fann_allocate_structure)
FANN_RPROP = {"increase_factor": 1.2, "decrease_factor": 0.5, "delta_min": 0.0,
              "delta_max": 50.0, "delta_zero": 0.1}


def fann_rprop(X, Y, sizes, net, dtype, delta_zero):
    """FANN set up for full-batch iRPROP- from ``net``'s weights (sigmoid
    layers, linear error function: bench/peers/fann_peer.py)."""
    trainer = fann_peer.Trainer(X, Y, sizes, 1, 0.5, dtype)
    lib, ann = trainer.fann.lib, trainer.ann
    for name, default in FANN_RPROP.items():
        getter = getattr(lib, f"fann_get_rprop_{name}")
        getter.restype, getter.argtypes = ctypes.c_float, [ctypes.c_void_p]
        assert getter(ann) == np.float32(default)
    lib.fann_set_rprop_delta_zero.argtypes = [ctypes.c_void_p, ctypes.c_float]
    lib.fann_set_rprop_delta_zero(ann, delta_zero)
    lib.fann_set_training_algorithm(ann, FANN_TRAIN_RPROP)
    trainer.load(net.weights, net.biases)
    return trainer


def as_float(value):
    """``value`` as FANN's C float settings hold it."""
    return float(np.float32(value))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("delta_zero", [0.1, 0.01])  # FANN's default Δ₀, and a smaller one
def test_rprop_takes_fanns_steps_until_a_gradient_changes_sign(dtype, delta_zero):
    X = np.array(list(itertools.product([0.0, 1.0], repeat=4)), dtype=dtype)
    Y = (X.sum(axis=1) % 2)[:, None]
    sizes = [4, 6, 1]
    net = fastbp.Network(sizes, activation="sigmoid", output_activation="sigmoid", dtype=dtype,
                         seed=3)
    fann = fann_rprop(X, Y, sizes, net, dtype, delta_zero)
    eta_plus = as_float(FANN_RPROP["increase_factor"])
    optimizer = fastbp.Rprop(lr=as_float(delta_zero) * eta_plus, etas=(0.5, eta_plus),
                             step_sizes=(0.0, 50.0))
    same_epochs = 0
    for epoch in range(1, 30):
        fann.epoch()
        before = optimizer.state(net).buffers["step_size"].copy()
        net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=1, batch_size=len(X),
                shuffle=False)
        weights, biases = fann.parameters()
        theirs = np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(weights,
                                                                                 biases)])
        step_size = optimizer.state(net).buffers["step_size"]
        turned = step_size < before if epoch > 1 else np.zeros(net.n_params, bool)
        if not turned.any():
            np.testing.assert_array_equal(theirs, net.params)
            same_epochs += 1
            continue
        # the first changes of sign: FANN moved those weights by +Δ, fastbp did not
        assert np.all(step_size[turned] == 0.5 * before[turned])
        np.testing.assert_array_equal(theirs, net.params + np.where(turned, step_size, 0))
        break
    else:
        pytest.fail("no gradient changed sign in 29 epochs")
    assert same_epochs >= (1 if delta_zero == 0.1 else 4)
