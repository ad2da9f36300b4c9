"""fit's generator: default_rng(seed), one per process for seed=None."""
import os
import sys
import warnings

import numpy as np
import pytest

import fastbp
from fastbp._runtime import fit_generator
from fastbp.callbacks import ModelCheckpoint


def xor_rows(rows=64):
    rng = np.random.default_rng(1)
    X = rng.uniform(size=(rows, 2))
    return X, (X.sum(1, keepdims=True) > 1).astype(float)


def test_an_int_seed_draws_as_default_rng_and_none_shares_one_generator():
    assert np.array_equal(fit_generator(7).permutation(50),
                          np.random.default_rng(7).permutation(50))
    given = np.random.default_rng(3)
    assert fit_generator(given) is given
    assert fit_generator(None) is fit_generator(None)
    assert fit_generator(None, private=True) is not fit_generator(None)


def test_unseeded_fits_shuffle_differently_and_seeded_ones_alike():
    X, Y = xor_rows()

    def fitted(seed):
        net = fastbp.Network([2, 3, 1], seed=0)
        net.fit(X, Y, epochs=2, batch_size=4, seed=seed)
        return net.params.tobytes()

    assert fitted(None) != fitted(None)
    assert fitted(11) == fitted(11)


def test_resuming_an_unseeded_fit_leaves_the_process_generator_alone(tmp_path):
    X, Y = xor_rows()
    path = tmp_path / "run.npz"
    net = fastbp.Network([2, 3, 1], seed=0)
    net.fit(X, Y, epochs=2, batch_size=4, callbacks=[ModelCheckpoint(path, save_best_only=False)])
    shared = fit_generator(None)
    state = shared.bit_generator.state
    resumed = fastbp.load(path)
    resumed.fit(X, Y, epochs=4, batch_size=4, resume=path)
    assert shared.bit_generator.state == state  # restored into a private generator


@pytest.mark.skipif(not hasattr(os, "fork") or sys.platform == "darwin",
                    reason="needs os.fork")
def test_a_forked_child_draws_its_own_orders():
    parent = fit_generator(None)
    read, write = os.pipe()
    with warnings.catch_warnings():  # Python 3.12+ warns of forks beside threads
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: report its first draws, then leave at once
        try:
            os.write(write, fit_generator(None).permutation(64).astype(np.int64).tobytes())
        finally:
            os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = np.frombuffer(data, dtype=np.int64)
    assert child.size == 64
    assert not np.array_equal(child, parent.permutation(64))
