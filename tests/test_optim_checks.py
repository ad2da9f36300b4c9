"""RMSprop, Adagrad and Rprop refuse bad settings by name, in their classes
and in their kernels' own checks (which the trainer's door applies)."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels


@pytest.mark.parametrize("make,error,match", [
    (lambda: fastbp.RMSprop(lr=0.0), ValueError, "lr"),
    (lambda: fastbp.RMSprop(alpha=1.0), ValueError, "alpha"),
    (lambda: fastbp.RMSprop(alpha=-0.1), ValueError, "alpha"),
    (lambda: fastbp.RMSprop(epsilon=0.0), ValueError, "epsilon"),
    (lambda: fastbp.RMSprop(momentum=1.0), ValueError, "momentum"),
    (lambda: fastbp.RMSprop(momentum=float("nan")), ValueError, "momentum"),
    (lambda: fastbp.RMSprop(centered="yes"), TypeError, "centered"),
    (lambda: fastbp.Adagrad(lr=-1.0), ValueError, "lr"),
    (lambda: fastbp.Adagrad(lr_decay=-0.1), ValueError, "lr_decay"),
    (lambda: fastbp.Adagrad(epsilon=0.0), ValueError, "epsilon"),
    (lambda: fastbp.Adagrad(initial_accumulator_value=-1.0), ValueError,
     "initial_accumulator_value"),
    (lambda: fastbp.Adagrad(initial_accumulator_value=float("inf")), ValueError,
     "initial_accumulator_value"),
    (lambda: fastbp.Rprop(lr=0.0), ValueError, "lr"),
    (lambda: fastbp.Rprop(etas=(0.5, 1.0)), ValueError, "etas"),
    (lambda: fastbp.Rprop(etas=(0.0, 1.2)), ValueError, "etas"),
    (lambda: fastbp.Rprop(etas=(1.2, 0.5)), ValueError, "etas"),
    (lambda: fastbp.Rprop(etas=0.5), TypeError, "etas"),
    (lambda: fastbp.Rprop(etas=(0.5, 1.2, 2.0)), TypeError, "etas"),
    (lambda: fastbp.Rprop(etas=(0.5, "1.2")), TypeError, r"etas\[1\]"),
    (lambda: fastbp.Rprop(step_sizes=(1.0, 0.5)), ValueError, "step_sizes"),
    (lambda: fastbp.Rprop(step_sizes=(-1.0, 0.5)), ValueError, "step_sizes"),
    (lambda: fastbp.Rprop(step_sizes=(0.0, float("inf"))), ValueError, r"step_sizes\[1\]"),
])
def test_bad_settings_are_refused_by_name(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("name,hyper,buffers,match", [
    ("rmsprop", {"rho": 1.0}, ("square_avg",), "alpha"),
    ("rmsprop", {"momentum": 0.9}, ("square_avg",), "momentum_buffer"),
    ("rmsprop", {"centered": 1.0}, ("square_avg",), "grad_avg"),
    ("adagrad", {"lr_decay": -1.0}, ("accumulator",), "lr_decay"),
    ("adagrad", {"initial_accumulator_value": float("nan")}, ("accumulator",),
     "initial_accumulator_value"),
    ("adagrad", {}, (), "accumulator"),
    ("rprop", {"etaplus": 0.9}, ("prev", "step_size"), "etas"),
    ("rprop", {"step_size_min": 2.0, "step_size_max": 1.0}, ("prev", "step_size"), "step_sizes"),
    ("rprop", {}, ("prev",), "step_size"),
])
def test_the_kernels_check_their_settings(name, hyper, buffers, match):
    params = np.zeros(3)
    with pytest.raises(ValueError, match=match):
        _kernels.optimizer_update(name, params, params, 0.01, hyper,
                                  {key: np.zeros(3) for key in buffers})


def test_they_are_fastbps_and_say_their_settings():
    assert (fastbp.RMSprop, fastbp.Adagrad, fastbp.Rprop) == (
        fastbp.optim.RMSprop, fastbp.optim.Adagrad, fastbp.optim.Rprop)
    assert repr(fastbp.Rprop()) == "Rprop(lr=0.01, etas=(0.5, 1.2), step_sizes=(1e-06, 50.0))"
    assert repr(fastbp.Adagrad(lr_decay=0.1)) == ("Adagrad(lr=0.01, lr_decay=0.1, epsilon=1e-10, "
                                                  "initial_accumulator_value=0.0)")
    # only the buffers its step reads
    assert fastbp.RMSprop().buffer_names == ("square_avg",)
    assert fastbp.RMSprop(momentum=0.5, centered=True).buffer_names == (
        "square_avg", "momentum_buffer", "grad_avg")
    kinds = _kernels.optimizer_kinds()
    for optimizer in (fastbp.RMSprop(), fastbp.Adagrad(), fastbp.Rprop()):
        # the class's defaults are its kernel's
        kind = kinds[optimizer.kernel_name]
        assert optimizer.hyper() == dict(zip(kind.hyper_names, kind.hyper_defaults))
