"""A fit's passes over all its parameters on threads (fastbp._runtime.pass_threads):
the private copy of the weights (``aligned_copy(array, n_threads)``) and the check
for non-finite params after each kernel call (``Trainer.pass_threads``)."""
import numpy as np
import pytest

import fastbp
from fastbp import _kernels, _runtime

RNG = np.random.default_rng(29)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2, 3, 64])
def test_aligned_copy_on_threads_copies_every_element(dtype, threads):
    # sizes around the threads' cache-line shares, and fewer lines than threads
    for size in (1, 15, 16, 17, 100, 1001, 40_003):
        source = RNG.normal(size=size).astype(dtype)
        copy = _kernels.aligned_copy(source, threads)
        assert copy.dtype == dtype and copy.shape == (size,)
        assert copy.ctypes.data % 64 == 0
        np.testing.assert_array_equal(copy, source)
        assert copy.ctypes.data != source.ctypes.data


def test_aligned_copy_refuses_no_threads():
    with pytest.raises(ValueError, match="n_threads must be >= 1"):
        _kernels.aligned_copy(np.zeros(4), 0)


def test_pass_threads_takes_threads_from_its_size_on():
    small = _runtime.PASS_THREADS_MIN_BYTES - 1
    assert _runtime.pass_threads(small, 4) == 1
    assert _runtime.pass_threads(small, None) == 1
    big = _runtime.PASS_THREADS_MIN_BYTES
    if _kernels.HAVE_THREADS:
        assert _runtime.pass_threads(big, 3) == 3
        assert _runtime.pass_threads(big, 1) == 1
        assert _runtime.pass_threads(big, None) == _runtime.default_threads()
        assert _runtime.pass_threads(big, 10_000) == _kernels.MAX_THREADS
    else:
        assert _runtime.pass_threads(big, 3) == 1


def _trainer(dtype, lr, target=1.0):
    net = fastbp.Network([3, 40, 2], output_activation="identity", seed=1, dtype=dtype)
    sizes, acts = net.kernel_layout
    trainer = _kernels.Trainer(sizes, acts, 0, 0.0, 4)
    params = _kernels.aligned_copy(net.params)
    trainer.set_params(params)
    X = RNG.normal(size=(4, 3)).astype(dtype)
    T = (target * RNG.normal(size=(4, 2))).astype(dtype)
    trainer.set_data(X, T)
    trainer.set_optimizer("sgd", lr)
    return trainer, params


def test_trainer_pass_threads_defaults_to_its_threads_and_is_checked():
    trainer, _ = _trainer(np.float64, 0.1)
    assert trainer.pass_threads == trainer.n_threads == 1
    trainer.pass_threads = 2
    assert trainer.pass_threads == (2 if _kernels.HAVE_THREADS else 1)
    with pytest.raises(ValueError, match="pass_threads must be >= 1"):
        trainer.pass_threads = 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_params_are_found_on_any_pass_threads(dtype):
    # a finite batch loss (targets ~1e18 or 1e150, J ~ their square) whose
    # step overflows the weights: status 2
    big = 1e18 if dtype == np.float32 else 1e150
    statuses = []
    for threads in (1, 2, 3):
        trainer, params = _trainer(dtype, 1e25 if dtype == np.float32 else 1e200, big)
        trainer.pass_threads = threads
        status, data_sum, _, rows = trainer.run(0, 4)
        assert np.isfinite(data_sum) and rows == 4
        assert not np.isfinite(params).all()
        statuses.append(status)
    assert statuses == [2, 2, 2]
    for threads in (1, 2, 3):  # and a finite step: status 0
        trainer, params = _trainer(dtype, 0.1)
        trainer.pass_threads = threads
        assert trainer.run(0, 4)[0] == 0 and np.isfinite(params).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fits_over_the_pass_threshold_keep_their_bits_on_any_thread_count(dtype, monkeypatch):
    # the threshold at 0 bytes: every fit's copy and check take its threads
    X = RNG.normal(size=(64, 20)).astype(dtype)
    Y = (RNG.random((64, 3)) < 0.5).astype(dtype)
    results = []
    for low, threads in ((False, 1), (True, 1), (True, 2), (True, None)):
        if low:
            monkeypatch.setattr(_runtime, "PASS_THREADS_MIN_BYTES", 0)
        net = fastbp.Network([20, 30, 3], seed=3, dtype=dtype)
        net.fit(X, Y, loss="mse", batch_size=16, epochs=2, shuffle=False, n_threads=threads)
        net.fit(X, Y, loss="mse", batch_size=16, epochs=1, shuffle=False, n_threads=threads,
                callbacks=[lambda *args: None])  # the full path too
        results.append(net.params.copy())
    for other in results[1:]:
        np.testing.assert_array_equal(other, results[0])


# -- the spare parameter array (Network._retire_params) ------------------------

def _spare(net):
    return net.__dict__.get("_spare_params")


def _fit(net, X, Y, **options):
    net.fit(X, Y, loss="mse", batch_size=16, epochs=1, shuffle=False, **options)


@pytest.fixture
def every_size_spares(monkeypatch):
    from fastbp import _fitting
    if not _fitting.EXACT_REFCOUNTS:
        pytest.skip("no spare arrays where sys.getrefcount misses references")
    monkeypatch.setattr(_fitting, "SPARE_PARAMS_MIN_BYTES", 0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_spare_array_changes_no_bit_of_the_fits(dtype, every_size_spares, monkeypatch):
    X = RNG.normal(size=(64, 20)).astype(dtype)
    Y = (RNG.random((64, 3)) < 0.5).astype(dtype)
    runs = []
    for spares in (True, False):
        if not spares:
            from fastbp import _fitting
            monkeypatch.setattr(_fitting, "SPARE_PARAMS_MIN_BYTES", 1 << 62)
        net = fastbp.Network([20, 30, 3], seed=3, dtype=dtype)
        weights, biases = net.weights, net.biases
        for options in ({}, {"callbacks": [lambda *args: None]}, {}):  # lean, full, lean
            net.set_weights(weights, biases)
            _fit(net, X, Y, **options)
            if not options:  # the lean path's (the full path's snapshots hold theirs)
                assert (_spare(net) is not None) == spares
            runs.append(net.params.copy())
    for spare_run, fresh_run in zip(runs[:3], runs[3:]):
        np.testing.assert_array_equal(spare_run, fresh_run)


def test_the_spare_is_the_replaced_array_and_the_next_copy_fills_it(every_size_spares):
    X = RNG.normal(size=(32, 4))
    Y = RNG.random((32, 2))
    net = fastbp.Network([4, 5, 2], seed=0)
    first = net.params.ctypes.data
    _fit(net, X, Y)
    spare = _spare(net)
    assert spare is not None and spare.ctypes.data == first
    _fit(net, X, Y)  # trains in the spare's memory, now the parameters
    assert net.params.ctypes.data == first
    assert _spare(net) is not None and _spare(net).ctypes.data != first


@pytest.mark.parametrize("hold", ["params", "layer_params", "weights_after_predict"])
def test_arrays_someone_holds_are_never_spares(hold, every_size_spares):
    X = RNG.normal(size=(32, 4))
    Y = RNG.random((32, 2))
    net = fastbp.Network([4, 5, 2], seed=0)
    if hold == "params":
        held = net.params
    elif hold == "layer_params":
        held = net.layer_params()[0][0]
    else:
        net.predict(X)  # the compiled predictor refers to the array: dropped, not held
        held = None
    before = None if held is None else held.copy()
    for _ in range(3):
        _fit(net, X, Y)
        _fit(net, X, Y, callbacks=[lambda *args: None])
        net.set_weights(net.weights, net.biases)
    if held is not None:
        np.testing.assert_array_equal(held, before)  # no fit wrote into it
        spare = _spare(net)
        assert spare is None or not np.shares_memory(spare, held)
    else:
        assert _spare(net) is not None
        np.testing.assert_allclose(net.predict(X), net.copy().predict(X))


def test_a_spare_is_neither_pickled_nor_copied(every_size_spares):
    import pickle
    net = fastbp.Network([4, 5, 2], seed=0)
    _fit(net, RNG.normal(size=(32, 4)), RNG.random((32, 2)))
    assert _spare(net) is not None
    assert _spare(pickle.loads(pickle.dumps(net))) is None
    assert _spare(net.copy()) is None
