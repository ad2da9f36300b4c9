"""The shortcuts that cut a small fit's fixed cost take only what the general
checks take as it is, and leave every refusal to them: ``ready_rows`` (fit's
X and Y check in one C call), ``aligned_copy``, the Trainer setters' checks by
C macros, the network's one training lease and the SIGINT deferral's
main-thread test."""
import signal
import threading

import numpy as np
import pytest

import fastbp
from fastbp import _inputs, _kernels, _runtime
from fastbp._validation import as_matrix, check_rows_match, is_ready_matrix

RNG = np.random.default_rng(0)
X4 = RNG.normal(size=(6, 3))
Y2 = RNG.uniform(size=(6, 2))


class Sub(np.ndarray):
    """A subclass: the general checks decide (np.asarray drops it)."""


def misaligned(array):
    raw = np.zeros(array.nbytes + 1, np.uint8)
    copy = raw[1:].view(array.dtype).reshape(array.shape)
    copy[...] = array
    assert not copy.flags.aligned
    return copy


def with_value(array, index, value):
    array = array.copy()
    array[index] = value
    return array


def readonly(array):
    array = array.copy()
    array.flags.writeable = False
    return array


# (name, X, Y): variants of a float64 network's fit input
CASES = [
    ("ready", X4, Y2),
    ("read-only", readonly(X4), readonly(Y2)),
    ("NaN in X", with_value(X4, (5, 2), np.nan), Y2),
    ("inf in X", with_value(X4, (0, 0), -np.inf), Y2),
    ("NaN in Y", X4, with_value(Y2, (3, 1), np.nan)),
    ("float32 X", X4.astype(np.float32), Y2),
    ("float32 Y", X4, Y2.astype(np.float32)),
    ("int X", np.arange(18).reshape(6, 3), Y2),
    ("big-endian X", X4.astype(">f8"), Y2),
    ("big-endian Y", X4, Y2.astype(">f8")),
    ("fortran X", np.asfortranarray(X4), Y2),
    ("strided Y", X4, np.repeat(Y2, 2, axis=1)[:, ::2]),
    ("misaligned X", misaligned(X4), Y2),
    ("subclass X", X4.view(Sub), Y2),
    ("subclass Y", X4, Y2.view(Sub)),
    ("list X", X4.tolist(), Y2),
    ("1-D Y", X4, Y2[:, 0]),
    ("3 columns of Y", X4, np.hstack([Y2, Y2[:, :1]])),
    ("2 columns of X", X4[:, :2].copy(), Y2),
    ("rows differ", X4, Y2[:5].copy()),
    ("no rows", X4[:0].copy(), Y2[:0].copy()),
]


def net_of(dtype="float64"):
    return fastbp.Network([3, 4, 2], output_activation="identity", dtype=dtype, seed=0)


@pytest.mark.parametrize("name, X, Y", CASES, ids=[c[0] for c in CASES])
def test_ready_rows_is_true_only_where_the_general_checks_keep_the_arrays(name, X, Y):
    net = net_of()
    ready = _kernels.ready_rows(X, Y, 3, 2, net.dtype)
    assert ready == (name in ("ready", "read-only"))
    if ready:  # what the Python checks say of them, one by one
        assert is_ready_matrix(X, 3, (net.dtype,)) and is_ready_matrix(Y, 2, (net.dtype,))
        assert X.shape[0] == Y.shape[0]


def general_checks(net, X, Y):
    """check_XY's general path, step by step."""
    X = as_matrix(X, net.dtype, "X", n_columns=3, accept_sparse=True)
    Y = _inputs.network_targets(net, Y, True)
    check_rows_match(X, Y)
    return X, Y


@pytest.mark.parametrize("name, X, Y", CASES, ids=[c[0] for c in CASES])
def test_check_XY_takes_and_refuses_what_the_general_checks_do(name, X, Y):
    net = net_of()
    try:
        expected = general_checks(net, X, Y)
    except (ValueError, TypeError) as exc:
        with pytest.raises(type(exc)) as info:
            _inputs.check_XY(net, X, Y, "mse", encode_labels=True)
        assert str(info.value) == str(exc)
        return
    got = _inputs.check_XY(net, X, Y, "mse", encode_labels=True)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype and a.flags.c_contiguous
        np.testing.assert_array_equal(a, b)
    if name in ("ready", "read-only"):
        assert got[0] is X and got[1] is Y


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ready_rows_scans_big_arrays_too(dtype):
    net = net_of(np.dtype(dtype).name)
    X = np.ones((30000, 3), dtype)  # over the scan's no-GIL threshold
    Y = np.ones((30000, 2), dtype)
    assert _kernels.ready_rows(X, Y, 3, 2, net.dtype)
    assert not _kernels.ready_rows(with_value(X, (29999, 2), np.nan), Y, 3, 2, net.dtype)
    assert not _kernels.ready_rows(X, with_value(Y, (29999, 1), np.inf), 3, 2, net.dtype)
    assert not _kernels.ready_rows(X, Y, 3, 2, np.dtype(np.int64))
    other = np.float64 if dtype == np.float32 else np.float32
    assert not _kernels.ready_rows(X, Y, 3, 2, np.dtype(other))


def test_bce_targets_are_still_checked_on_ready_rows():
    net = fastbp.Network([3, 2], output_activation="sigmoid", seed=0)
    with pytest.raises(ValueError, match="bce targets must lie in"):
        net.fit(X4, Y2 * 3, loss="bce")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_copy_is_an_aligned_independent_copy(dtype):
    for size in (1, 9, 100):
        source = RNG.normal(size=size).astype(dtype)
        copy = _kernels.aligned_copy(source)
        assert copy.dtype == dtype and copy.shape == (size,)
        assert copy.ctypes.data % 64 == 0 and copy.flags.writeable
        np.testing.assert_array_equal(copy, source)
        copy[0] += 1
        assert copy[0] != source[0]
    readonly_source = readonly(RNG.normal(size=5).astype(dtype))
    np.testing.assert_array_equal(_kernels.aligned_copy(readonly_source), readonly_source)


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.arange(4), np.zeros(4, ">f8"),
                                 np.zeros(8)[::2]])
def test_aligned_copy_refuses_what_it_cannot_copy(bad):
    with pytest.raises(TypeError, match="1-D C-contiguous float32 or float64"):
        _kernels.aligned_copy(bad)


def trainer_with_params(params):
    net = net_of(params.dtype.name)
    sizes, acts = net.kernel_layout
    trainer = _kernels.Trainer(sizes, acts, 0, 0.0, 2)
    trainer.set_params(params)
    return trainer


def test_trainer_setters_refuse_as_before():
    params = _kernels.aligned_copy(net_of().params)
    trainer = trainer_with_params(params)
    with pytest.raises(TypeError, match="params must be float32 or float64"):
        trainer.set_params(params.astype(">f8"))
    with pytest.raises(ValueError, match="params must be C-contiguous, aligned and writeable"):
        trainer.set_params(readonly(params))
    with pytest.raises(ValueError, match="params must be C-contiguous, aligned and writeable"):
        trainer.set_params(misaligned(params))
    with pytest.raises(TypeError, match="X is >f8 but params are float64"):
        trainer.set_data(X4.astype(">f8"), Y2)
    with pytest.raises(TypeError, match="T is >f8 but params are float64"):
        trainer.set_data(X4, Y2.astype(">f8"))
    with pytest.raises(ValueError, match="X must be C-contiguous and aligned"):
        trainer.set_data(np.asfortranarray(X4), Y2)
    with pytest.raises(ValueError, match="X has 6 rows but T has 5"):
        trainer.set_data(X4, Y2[:5].copy())
    trainer.set_data(X4, Y2)
    with pytest.raises(TypeError, match="order must be None or a C-contiguous 1-D np.intp"):
        trainer.set_order(np.arange(6).astype(np.dtype(np.intp).newbyteorder()))
    with pytest.raises(ValueError, match=r"order holds row indices outside \[0, 6\)"):
        trainer.set_order(np.array([0, 6], np.intp))
    with pytest.raises(ValueError, match=r"order holds row indices outside \[0, 6\)"):
        trainer.set_order(np.array([-1], np.intp))


def test_trainer_setters_take_subclasses_and_other_spellings_as_before():
    params = _kernels.aligned_copy(net_of().params)
    trainer = trainer_with_params(params)
    trainer.set_data(X4.view(Sub), Y2.view(Sub))
    trainer.set_order(np.arange(6, dtype=np.intp).view(Sub))
    trainer.set_order(np.arange(6, dtype=np.longlong))  # the same type as np.intp here
    trainer.set_optimizer("sgd", 0.1)
    status, *_ = trainer.run(0, 6)
    assert status == 0
    # a kept order is checked against new rows, whichever path set_data takes
    trainer.set_order(np.array([5, 0], np.intp))
    with pytest.raises(ValueError, match=r"order holds row indices outside \[0, 4\)"):
        trainer.set_data(X4[:4].copy(), Y2[:4].copy())


def test_a_network_has_one_lease_object_and_copies_get_their_own():
    import copy
    import pickle
    net = net_of()
    lease = net.training_lease()
    assert net.training_lease() is lease
    with lease:
        with pytest.raises(RuntimeError, match="already running"):
            net.fit(X4, Y2)
        with pytest.raises(RuntimeError, match="while fit runs"):
            net.set_weights(net.weights, net.biases)
    net.fit(X4, Y2)  # the lease was left
    for twin in (pickle.loads(pickle.dumps(net)), copy.copy(net), copy.deepcopy(net),
                 net.copy()):
        with twin.training_lease():
            net.fit(X4, Y2)  # the original is not held by its copies' lease
        twin.fit(X4, Y2)


@pytest.mark.skipif(signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
                    reason="the runner replaced Python's SIGINT handler")
def test_sigint_is_deferred_in_the_main_thread_only():
    seen = []
    with _runtime.sigint_deferred() as flag:
        seen.append(signal.getsignal(signal.SIGINT))
        assert not flag.is_set()
        signal.raise_signal(signal.SIGINT)
        assert flag.is_set()
    assert seen[0] is flag
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    def in_a_thread():
        with _runtime.sigint_deferred() as other:
            seen.append((signal.getsignal(signal.SIGINT), other.is_set()))
        net = net_of()
        net.fit(X4, Y2)  # fit in a thread: nothing to defer, nothing raised
        seen.append(net.params.copy())

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen[1] == (signal.default_int_handler, False)
    assert len(seen) == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_take_params_reuses_only_arrays_nothing_else_refers_to(dtype):
    net = net_of(dtype)
    sizes, acts = net.kernel_layout
    trainer = _kernels.Trainer(sizes, acts, 0, 0.0, 2)
    sources = [RNG.normal(size=net.n_params).astype(dtype) for _ in range(5)]
    first = trainer.take_params(sources[0])
    assert first.ctypes.data % 64 == 0 and first.flags.writeable and first is not sources[0]
    np.testing.assert_array_equal(first, sources[0])
    # this frame holds first: the next copy goes elsewhere
    second = trainer.take_params(sources[1])
    assert second.ctypes.data != first.ctypes.data
    np.testing.assert_array_equal(first, sources[0])
    np.testing.assert_array_equal(second, sources[1])
    # the trainer alone holds first now (its spare): the next copy reuses its memory
    address = first.ctypes.data
    del first
    third = trainer.take_params(sources[2])
    assert third.ctypes.data == address
    np.testing.assert_array_equal(third, sources[2])
    # a view of second (which refers to second's memory) keeps it from reuse
    view = second[:3]
    del second
    fourth = trainer.take_params(sources[3])
    assert fourth.ctypes.data not in (view.ctypes.data, third.ctypes.data)
    np.testing.assert_array_equal(view, sources[1][:3])
    np.testing.assert_array_equal(fourth, sources[3])
    # the copy trains: a run changes it, not the source
    trainer.set_data(RNG.normal(size=(4, sizes[0])).astype(dtype),
                     RNG.uniform(size=(4, sizes[-1])).astype(dtype))
    trainer.set_optimizer("sgd", 0.5)
    before = sources[3].copy()
    assert trainer.run(0, 4)[0] == 0
    assert not np.array_equal(fourth, before)
    np.testing.assert_array_equal(sources[3], before)


@pytest.mark.parametrize("between", ["fit", "set_weights"])
def test_lean_fits_never_write_into_parameters_someone_holds(between):
    net = fastbp.Network([2, 2, 1], seed=0)
    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    Y = np.array([[0.0], [1.0], [1.0], [0.0]])
    weights, biases = net.weights, net.biases
    held = []
    for _ in range(6):
        if between == "set_weights":
            net.set_weights(weights, biases)
        view = net.params
        held.append((view, view.copy()))
        net.fit(X, Y, optimizer=fastbp.SGD(lr=0.5), batch_size=1, shuffle=False)
        assert not np.array_equal(net.params, view)
    for view, values in held:
        np.testing.assert_array_equal(view, values)
