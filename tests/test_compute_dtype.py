"""Network(compute_dtype="bfloat16"): mixed-precision training.

Every training product (forward z_prev . W, delta . W^T, z_prev^T . delta)
takes its operands rounded to bfloat16 and sums in float32; the master
weights, biases, optimiser, activations and loss stay float32. A step is
checked against a NumPy emulation (operands rounded by an independent
reference, products in float64) to float32 rounding of the sums, on each
product path the machine runs and on both of a layer's ways (packed, and
small: a width or the batch at most 16)."""
import numpy as np
import pytest

import fastbp
from fastbp import Network, _kernels
from fastbp.optim import SGD, Adam

# the independent rounding reference, and the fixture running a test on each
# product path the machine has
from test_bfloat16 import bf16_path, rounded  # noqa: F401 (bf16_path: a fixture)


def data(rng, m, n_in, n_out):
    X = rng.normal(size=(m, n_in)).astype(np.float32)
    Y = rng.normal(size=(m, n_out)).astype(np.float32)
    return X, Y


# ---- the parameter -------------------------------------------------------------

def test_default_is_the_dtype_and_repr_unchanged():
    net = Network([3, 4, 2], dtype="float32")
    assert net.compute_dtype == "float32"
    assert "compute_dtype" not in repr(net)
    assert Network([3, 2]).compute_dtype == "float64"
    assert "compute_dtype" not in repr(Network([3, 2]))
    for dtype in ("float32", "float64"):  # its own name, spelled out, is the default
        assert Network([3, 2], dtype=dtype, compute_dtype=dtype).compute_dtype == dtype
    bf = Network([3, 4, 2], dtype="float32", compute_dtype="bfloat16")
    assert repr(bf).endswith("dtype='float32', compute_dtype='bfloat16')")


@pytest.mark.parametrize("dtype", ["float64", np.float64])
def test_bfloat16_needs_float32_params(dtype):
    with pytest.raises(ValueError, match="compute_dtype='bfloat16' needs dtype='float32'"):
        Network([3, 2], dtype=dtype, compute_dtype="bfloat16")


@pytest.mark.parametrize("bad", ["float16", "bf16", "", "Float32"])
def test_unknown_compute_dtype(bad):
    with pytest.raises(ValueError, match="unknown compute_dtype"):
        Network([3, 2], dtype="float32", compute_dtype=bad)


@pytest.mark.parametrize("bad", [16, np.float32, b"bfloat16"])
def test_compute_dtype_must_be_a_str(bad):
    with pytest.raises(TypeError, match="compute_dtype must be None or a str"):
        Network([3, 2], dtype="float32", compute_dtype=bad)


@pytest.mark.parametrize("dtype,compute", [("float64", "float32"), ("float32", "float64")])
def test_another_float_than_the_dtype_is_refused(dtype, compute):
    with pytest.raises(ValueError, match=f"compute_dtype='{compute}' does not go with "
                                         f"dtype='{dtype}'"):
        Network([3, 2], dtype=dtype, compute_dtype=compute)


def test_save_load_copy_pickle_keep_it(tmp_path):
    import pickle
    net = Network([5, 7, 3], dtype="float32", compute_dtype="bfloat16", seed=1)
    net.save(tmp_path / "m.npz")
    back = fastbp.load(tmp_path / "m.npz")
    assert back.compute_dtype == "bfloat16"
    np.testing.assert_array_equal(back.params, net.params)
    assert net.copy().compute_dtype == "bfloat16"
    assert pickle.loads(pickle.dumps(net)).compute_dtype == "bfloat16"
    assert net.astype("float32").compute_dtype == "bfloat16"
    assert net.astype("float64").compute_dtype == "float64"  # float64 products
    assert Network([3, 2]).astype("float32").compute_dtype == "float32"


def test_files_without_it_load_as_float32(tmp_path):
    plain = Network([5, 3], dtype="float32", seed=1)
    plain.save(tmp_path / "p.npz")
    with np.load(tmp_path / "p.npz") as archive:
        assert "compute_dtype" not in archive.files  # files stay as they were
    assert fastbp.load(tmp_path / "p.npz").compute_dtype == "float32"
    Network([5, 3], seed=1).save(tmp_path / "d.npz")
    assert fastbp.load(tmp_path / "d.npz").compute_dtype == "float64"


def test_a_file_with_a_bad_compute_dtype_is_refused(tmp_path):
    net = Network([5, 3], dtype="float32", compute_dtype="bfloat16", seed=1)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz") as archive:
        entries = dict(archive)
    entries["compute_dtype"] = np.array("float8")
    np.savez(tmp_path / "bad.npz", **entries)
    with pytest.raises(ValueError, match="bad.npz.*unknown compute_dtype|unknown compute_dtype"):
        fastbp.load(tmp_path / "bad.npz")


def test_sparse_x_is_refused():
    sparse = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(0)
    X = sparse.random(20, 6, density=0.3, format="csr", dtype=np.float32, random_state=0)
    Y = rng.normal(size=(20, 2)).astype(np.float32)
    net = Network([6, 4, 2], dtype="float32", compute_dtype="bfloat16", seed=0)
    before = net.params.copy()
    with pytest.raises(ValueError, match="bfloat16.*dense X only"):
        net.fit(X, Y, loss="mse", epochs=1)
    np.testing.assert_array_equal(net.params, before)


def test_trainer_refuses_float64_params():
    net = Network([3, 2], dtype="float64", seed=0)
    trainer = _kernels.Trainer(*net.kernel_layout, fastbp.LOSSES["mse"], 0.0, 4)
    trainer.set_compute_dtype("bfloat16")
    assert trainer.compute_dtype == "bfloat16"
    trainer.set_params(net.params.copy())
    X = np.zeros((4, 3))
    trainer.set_data(X, np.zeros((4, 2)))
    trainer.set_optimizer("sgd", 0.1)
    with pytest.raises(ValueError, match="float32 params on dense X only, got float64"):
        trainer.run(0, 4)
    with pytest.raises(ValueError, match="compute_dtype must be"):
        trainer.set_compute_dtype("float16")


# ---- a training step against the emulation ---------------------------------------

def emulated_step_gradient(net, X, Y):
    """dJ/dparams of one batch (mse, hidden tanh, identity output) with every
    product's operands rounded to bfloat16, in float64; and per entry the sum
    of the products' absolute values, for the float32 rounding bound."""
    layers = [(W.astype(np.float64), b.astype(np.float64))
              for W, b in zip(net.weights, net.biases)]
    m = X.shape[0]
    zs, z = [X.astype(np.float64)], X.astype(np.float64)
    bounds_a = []
    for l, (W, b) in enumerate(layers):
        a = rounded(z) @ rounded(W) + b
        bounds_a.append(np.abs(rounded(z)) @ np.abs(rounded(W)) + np.abs(b))
        # float32 as the kernel holds them
        z = np.tanh(a).astype(np.float32).astype(np.float64) if l < len(layers) - 1 \
            else a.astype(np.float32).astype(np.float64)
        zs.append(z)
    delta = ((zs[-1] - Y) / m).astype(np.float32).astype(np.float64)
    grads, bounds = [], []
    for l in range(len(layers) - 1, -1, -1):
        W, _ = layers[l]
        z_prev = zs[l]
        grads.append((rounded(z_prev).T @ rounded(delta), delta.sum(axis=0)))
        bounds.append((np.abs(rounded(z_prev)).T @ np.abs(rounded(delta)),
                       np.abs(delta).sum(axis=0)))
        if l > 0:
            back = rounded(delta) @ rounded(W).T
            delta = (back * (1 - z_prev ** 2)).astype(np.float32).astype(np.float64)
    return grads[::-1], bounds[::-1]


def one_step(net, X, Y, lr, **fit):
    before = net.params.copy()
    net.fit(X, Y, loss="mse", optimizer=SGD(lr=lr), epochs=1, batch_size=X.shape[0],
            shuffle=False, **fit)
    return before, net.params.copy()


@pytest.mark.parametrize("sizes, m", [
    ([40, 48, 36, 24], 40),   # every layer packed
    ([40, 48, 36, 5], 64),    # the output layer small (5 units)
    ([24, 33, 7], 12),        # the batch small: every layer small
    ([70, 100, 10], 50),      # odd widths: the packs' edges
])
def test_a_step_equals_the_emulation(bf16_path, sizes, m):
    rng = np.random.default_rng(sum(sizes) + m)
    X, Y = data(rng, m, sizes[0], sizes[-1])
    net = Network(sizes, activation="tanh", output_activation="identity", dtype="float32",
                  compute_dtype="bfloat16", seed=3)
    grads, bounds = emulated_step_gradient(net, X, Y)
    lr = 1.0
    before, after = one_step(net, X, Y, lr)
    offset = 0
    eps32 = 2.0 ** -24
    for l, ((dW, db), (bW, bb)) in enumerate(zip(grads, bounds)):
        for g, bound in ((dW, bW), (db, bb)):
            n = g.size
            step = (before[offset:offset + n].astype(np.float64)
                    - after[offset:offset + n].astype(np.float64)) / lr
            # the sums' float32 rounding (k terms, the deltas' own rounding
            # carried along), and the params' rounding after the step
            k = X.shape[0] + max(sizes)
            tol = 4 * k * eps32 * bound.reshape(-1) \
                + 2 * eps32 * np.abs(before[offset:offset + n]).astype(np.float64) + 1e-30
            err = np.abs(step - g.reshape(-1))
            assert (err <= tol).all(), (l, float((err / tol).max()))
            offset += n
    assert offset == net.n_params


def test_a_step_with_l2_adds_its_term_in_float32(bf16_path):
    # dW = l2/m W (float32, unrounded) + the bfloat16 product
    rng = np.random.default_rng(31)
    sizes, m, l2 = [40, 48, 36, 5], 64, 0.3
    X, Y = data(rng, m, sizes[0], sizes[-1])
    net = Network(sizes, activation="tanh", output_activation="identity", dtype="float32",
                  compute_dtype="bfloat16", seed=3)
    grads, bounds = emulated_step_gradient(net, X, Y)
    Ws = [W.astype(np.float64) for W in net.weights]
    before, after = one_step(net, X, Y, 1.0, l2=l2)
    step = before.astype(np.float64) - after.astype(np.float64)
    flat = np.concatenate([g.reshape(-1) for (dW, db), W in zip(grads, Ws)
                           for g in (dW + l2 / m * W, db)])
    bound = np.concatenate([b.reshape(-1) for (bW, bb), W in zip(bounds, Ws)
                            for b in (bW + l2 / m * np.abs(W), bb)])
    tol = 4 * (m + max(sizes)) * 2.0 ** -24 * bound + 2 * 2.0 ** -24 * np.abs(before)
    assert (np.abs(step - flat) <= tol).all()


def test_rounding_makes_a_difference():
    # the emulation above would not tell bfloat16 from float32 products if the
    # rounding changed nothing: the two steps differ by about bfloat16's spacing
    rng = np.random.default_rng(5)
    X, Y = data(rng, 64, 40, 24)
    bf = Network([40, 48, 24], activation="tanh", output_activation="identity",
                 dtype="float32", compute_dtype="bfloat16", seed=3)
    f32 = Network([40, 48, 24], activation="tanh", output_activation="identity",
                  dtype="float32", seed=3)
    before, after_bf = one_step(bf, X, Y, 1.0)
    _, after_32 = one_step(f32, X, Y, 1.0)
    change = np.abs(after_32 - before).max()
    gap = np.abs(after_bf - after_32).max()
    assert 1e-4 * change < gap < 0.05 * change


def test_gradients_against_float32_master_within_bfloat16(bf16_path):
    # the bfloat16 step's gradient against the exact float64 gradient of the
    # same float32 master weights: within bfloat16's precision (2^-8
    # relative per operand, a few operands per product)
    rng = np.random.default_rng(8)
    sizes = [30, 64, 40, 8]
    X, Y = data(rng, 48, sizes[0], sizes[-1])
    net = Network(sizes, activation="tanh", output_activation="identity", dtype="float32",
                  compute_dtype="bfloat16", seed=4)
    dW, db = net.astype("float64").gradients(X.astype(np.float64), Y.astype(np.float64),
                                             loss="mse")
    exact = np.concatenate([g.reshape(-1) for pair in zip(dW, db) for g in pair])
    before, after = one_step(net, X, Y, 1.0)
    step = before.astype(np.float64) - after.astype(np.float64)
    scale = np.abs(exact).max()
    assert np.abs(step - exact).max() < 3e-2 * scale
    assert np.corrcoef(step, exact)[0, 1] > 0.999


def test_emulated_path_within_float32_rounding_of_the_fastest():
    paths = _kernels.bf16_paths()
    fastest = paths[-1]
    if fastest == "emulated":
        pytest.skip("this machine runs only the emulated path")
    rng = np.random.default_rng(11)
    sizes = [64, 96, 80, 12]
    X, Y = data(rng, 256, sizes[0], sizes[-1])
    results = {}
    for path in ("emulated", fastest):
        _kernels.set_bf16_path(path)
        try:
            net = Network(sizes, activation="relu", output_activation="identity",
                          dtype="float32", compute_dtype="bfloat16", seed=2)
            net.fit(X, Y, loss="mse", optimizer=Adam(lr=1e-3), epochs=2, batch_size=64,
                    shuffle=False)
            results[path] = net.params.copy()
        finally:
            _kernels.set_bf16_path("auto")
    start = Network(sizes, dtype="float32", seed=2).params
    moved = np.abs(results[fastest] - start).max()
    # different float32 sums: a few float32 spacings, or (rarely) an operand
    # rounded to its other bfloat16 neighbour after them
    assert np.abs(results["emulated"] - results[fastest]).max() < 1e-2 * moved
    assert not np.array_equal(results["emulated"], start)


@pytest.mark.parametrize("optimizer", [SGD(lr=0.005), SGD(lr=0.005, momentum=0.5),
                                       Adam(lr=1e-3)])
@pytest.mark.parametrize("batch_size", [1, 16, 64])
def test_one_and_two_threads_identical(optimizer, batch_size):
    rng = np.random.default_rng(batch_size)
    X, Y = data(rng, 200, 50, 3)
    out = []
    for threads in (1, 2):
        net = Network([50, 80, 64, 3], activation="relu", output_activation="identity",
                      dtype="float32", compute_dtype="bfloat16", seed=6)
        net.fit(X, Y, loss="mse", optimizer=optimizer, epochs=2, batch_size=batch_size,
                n_threads=threads, seed=1)
        out.append(net.params.copy())
    np.testing.assert_array_equal(out[0], out[1])
    assert np.isfinite(out[0]).all()


def test_per_sample_is_the_minibatch_loop_at_one_row():
    # batch_size=1 takes no fused per-sample path: one row at a time through
    # the same rounding as any batch, which the emulation checks
    rng = np.random.default_rng(21)
    X, Y = data(rng, 1, 20, 4)
    net = Network([20, 24, 4], activation="tanh", output_activation="identity",
                  dtype="float32", compute_dtype="bfloat16", seed=9)
    grads, bounds = emulated_step_gradient(net, X, Y)
    before, after = one_step(net, X, Y, 1.0)
    flat = np.concatenate([g.reshape(-1) for pair in grads for g in pair])
    bound = np.concatenate([b.reshape(-1) for pair in bounds for b in pair])
    step = before.astype(np.float64) - after.astype(np.float64)
    tol = 200 * 2.0 ** -24 * bound + 2 * 2.0 ** -24 * np.abs(before) + 1e-30
    assert (np.abs(step - flat) <= tol).all()


def test_learns_like_float32():
    # same work, same loss after training, within bfloat16's tolerance
    rng = np.random.default_rng(0)
    X = rng.normal(size=(512, 16)).astype(np.float32)
    Y = np.tanh(X @ rng.normal(size=(16, 4))).astype(np.float32)
    losses = {}
    for compute in ("float32", "bfloat16"):
        net = Network([16, 64, 4], activation="tanh", output_activation="identity",
                      dtype="float32", compute_dtype=compute, seed=0)
        first = net.loss(X, Y, loss="mse")
        net.fit(X, Y, loss="mse", optimizer=Adam(lr=1e-2), epochs=20, batch_size=32, seed=0)
        losses[compute] = net.loss(X, Y, loss="mse")
    assert losses["float32"] < 0.2 * first
    assert abs(losses["bfloat16"] - losses["float32"]) < 0.1 * losses["float32"] + 1e-3
