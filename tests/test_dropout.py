"""Dropout (``Network(dropout=...)``): inverted, its masks drawn in the kernels
from fit's seed, the same on any thread count and row or column split, and
absent from predict, loss and gradients."""
import numpy as np
import pytest
import scipy.sparse as sp
from helpers import (HIDDEN, assert_close, products_independent_of_splits, random_network,
                     spy_on_trainer_runs, targets)

import fastbp
from fastbp import _kernels, _runtime, _training

#: the losses with the output each is checked with
LOSSES = [("mse", "identity"), ("mse", "sigmoid"), ("bce", "sigmoid"),
          ("cross_entropy", "softmax")]


def keep_probability(rate):
    """The generator's exact probability of keeping a unit (csrc/dropout.pxi)."""
    return 1 - min(np.floor(rate * 2.0**32 + 0.5), 2.0**32 - 1) / 2.0**32


def codes(net):
    sizes, acts = net.kernel_layout
    return sizes, acts


# -- the parameter -----------------------------------------------------------

def test_one_rate_for_every_hidden_layer_or_one_each():
    assert fastbp.Network([3, 4, 5, 2], dropout=0.2).dropout == (0.2, 0.2)
    assert fastbp.Network([3, 4, 5, 2], dropout=[0.1, 0]).dropout == (0.1, 0.0)
    assert fastbp.Network([3, 4, 5, 2], dropout=np.array([0.1, 0.3])).dropout == (0.1, 0.3)
    for off in (None, 0, 0.0, [0, 0]):
        assert fastbp.Network([3, 4, 5, 2], dropout=off).dropout is None
    assert fastbp.Network([3, 2], dropout=0).dropout is None
    assert "dropout=0.2" in repr(fastbp.Network([3, 4, 5, 2], dropout=0.2))
    assert "dropout=[0.1, 0.0]" in repr(fastbp.Network([3, 4, 5, 2], dropout=[0.1, 0]))
    assert "dropout" not in repr(fastbp.Network([3, 4, 2]))


@pytest.mark.parametrize("dropout,error,words", [
    (1.0, ValueError, "dropout must be < 1"),
    (-0.1, ValueError, "dropout must be >= 0"),
    (float("nan"), ValueError, "dropout must be finite"),
    ("0.2", TypeError, "dropout must be a real number"),
    (True, TypeError, "dropout must be a real number"),
    ([0.1], ValueError, "lists 1 rates but the network has 2 hidden layers"),
    ([0.1, 1.5], ValueError, r"dropout\[1\] must be < 1"),
    ([0.1, None], TypeError, r"dropout\[1\] must be a real number"),
])
def test_bad_rates_are_refused_by_name(dropout, error, words):
    with pytest.raises(error, match=words):
        fastbp.Network([3, 4, 5, 2], dropout=dropout)


def test_a_network_without_hidden_layers_has_nothing_to_drop():
    with pytest.raises(ValueError, match="dropout acts on hidden layers"):
        fastbp.Network([3, 2], dropout=0.5)


def test_the_trainer_checks_its_rates_and_seed():
    sizes, acts = np.array([3, 4, 5, 2], np.intc), np.zeros(3, np.intc)
    trainer = _kernels.Trainer(sizes, acts, 0, 0.0, 4)
    with pytest.raises(ValueError, match="one rate per hidden layer"):
        trainer.set_dropout([0.5], 0)
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        trainer.set_dropout([0.5, 1.0], 0)
    with pytest.raises(ValueError, match="seed must be in"):
        trainer.set_dropout([0.5, 0.5], 2**64)
    with pytest.raises(ValueError, match="seed must be in"):
        trainer.set_dropout([0.5, 0.5], -1)
    with pytest.raises(ValueError, match="epoch >= 0"):
        trainer.set_dropout_epoch(-1)


def test_copies_pickles_and_files_keep_the_rates(tmp_path):
    import pickle
    net = fastbp.Network([3, 4, 5, 2], dropout=[0.25, 0.5], seed=0)
    assert net.copy().dropout == (0.25, 0.5)
    assert net.astype("float32").dropout == (0.25, 0.5)
    assert pickle.loads(pickle.dumps(net)).dropout == (0.25, 0.5)
    net.save(tmp_path / "net.npz")
    assert fastbp.load(tmp_path / "net.npz").dropout == (0.25, 0.5)
    plain = fastbp.Network([3, 4, 2], seed=0)
    plain.save(tmp_path / "plain.npz")
    assert fastbp.load(tmp_path / "plain.npz").dropout is None
    assert "dropout" not in np.load(tmp_path / "plain.npz").files


# -- the masks -----------------------------------------------------------------

def test_masks_are_zero_or_the_inverse_keep_probability_at_the_rate():
    # 4000 rows: the dropped fraction is within 5 binomial sigmas of the rate
    sizes = np.array([3, 50, 40, 2], np.intc)
    rates = [0.3, 0.75]
    masks = _kernels.dropout_masks(sizes, rates, 7, 0, 0, 4000)
    for mask, rate in zip(masks, rates):
        q = keep_probability(rate)
        assert set(np.unique(mask)) == {0.0, 1 / q}
        dropped = np.mean(mask == 0)
        assert abs(dropped - rate) < 5 * np.sqrt(rate * (1 - rate) / mask.size)
        # and the units are drawn independently: a column's rate is the rate too
        per_unit = np.mean(mask == 0, axis=0)
        assert np.all(np.abs(per_unit - rate) < 5 * np.sqrt(rate * (1 - rate) / 4000))


def test_a_zero_rate_layer_keeps_every_unit():
    masks = _kernels.dropout_masks(np.array([3, 6, 5, 2], np.intc), [0.0, 0.5], 1, 0, 0, 10)
    assert np.array_equal(masks[0], np.ones((10, 6)))
    assert (masks[1] == 0).any()


def test_masks_depend_on_seed_epoch_position_and_layer_alone():
    sizes = np.array([3, 64, 64, 2], np.intc)
    base = _kernels.dropout_masks(sizes, [0.5, 0.5], 3, 2, 10, 20)
    assert all(np.array_equal(a, b) for a, b in
               zip(base, _kernels.dropout_masks(sizes, [0.5, 0.5], 3, 2, 10, 20)))
    # a row's mask is its position's, whatever the batch it is drawn with
    later = _kernels.dropout_masks(sizes, [0.5, 0.5], 3, 2, 15, 5)
    assert np.array_equal(later[0], base[0][5:10]) and np.array_equal(later[1], base[1][5:10])
    for other in (_kernels.dropout_masks(sizes, [0.5, 0.5], 4, 2, 10, 20),
                  _kernels.dropout_masks(sizes, [0.5, 0.5], 3, 3, 10, 20)):
        assert not np.array_equal(other[0], base[0]) and not np.array_equal(other[1], base[1])
    assert not np.array_equal(base[0], base[1])  # same widths, other layer


# -- only in training ----------------------------------------------------------

def numpy_forward(net, X):
    z = X
    names = list(net.activations) + [net.output_activation]
    funcs = {"tanh": np.tanh, "identity": lambda a: a, "relu": lambda a: np.maximum(a, 0),
             "sigmoid": lambda a: 1 / (1 + np.exp(-a))}
    for (W, b), name in zip(zip(net.weights, net.biases), names):
        z = funcs[name](z @ W + b)
    return z


def test_predict_loss_and_gradients_never_drop(rng):
    X, Y = rng.normal(size=(30, 5)), rng.normal(size=(30, 3))
    with_dropout = fastbp.Network([5, 8, 6, 3], activation="tanh",
                                  output_activation="identity", seed=3, dropout=0.5)
    with_dropout.fit(X, Y, epochs=2, batch_size=8, seed=1)
    without = fastbp.Network([5, 8, 6, 3], activation="tanh", output_activation="identity")
    without.replace_params(with_dropout.params)
    # unscaled: the plain forward pass of the trained weights
    assert_close(with_dropout.predict(X), numpy_forward(with_dropout, X))
    assert np.array_equal(with_dropout.predict(X), without.predict(X))
    assert with_dropout.loss(X, Y) == without.loss(X, Y)
    for a, b in zip(with_dropout.gradients(X, Y), without.gradients(X, Y)):
        assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_the_history_reports_the_training_loss_with_dropout(rng):
    # the loss of each batch before its step, masks and all, as Keras reports it
    X, Y = rng.normal(size=(16, 4)), rng.normal(size=(16, 2))
    net = fastbp.Network([4, 32, 2], activation="identity", output_activation="identity",
                         seed=0, dropout=0.5)
    start = net.copy()
    history = net.fit(X, Y, epochs=1, batch_size=16, shuffle=False, seed=9)
    sizes, acts = codes(start)
    J = _kernels.dropout_loss_gradient(X, Y, start.params, sizes, acts, 0, 0.0, [0.5], 9, 0,
                                       0, np.empty(start.n_params))
    assert history["loss"][0] == pytest.approx(J, rel=1e-12)
    assert history["loss"][0] != pytest.approx(start.loss(X, Y), rel=1e-3)


# -- reproducible, and the same on any threads or call split -------------------

def fit_params(X, Y, dtype="float64", dropout=0.3, seed=1, widths=None, **kwargs):
    widths = (X.shape[1], Y.shape[1]) if widths is None else widths
    net = fastbp.Network([widths[0], 64, 32, widths[1]], activation="tanh",
                         output_activation="identity", dtype=dtype, seed=0, dropout=dropout)
    settings = dict(epochs=2, batch_size=16, seed=seed, optimizer=fastbp.SGD(lr=0.05))
    settings.update(kwargs)
    history = net.fit(X, Y, **settings)
    return net.params.copy(), history["loss"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_seed_same_weights_another_seed_other_weights(rng, dtype):
    X, Y = rng.normal(size=(100, 6)).astype(dtype), rng.normal(size=(100, 3)).astype(dtype)
    first, again = fit_params(X, Y, dtype), fit_params(X, Y, dtype)
    assert np.array_equal(first[0], again[0]) and first[1] == again[1]
    assert not np.array_equal(first[0], fit_params(X, Y, dtype, seed=2)[0])
    assert not np.array_equal(first[0], fit_params(X, Y, dtype, dropout=None)[0])
    # unseeded fits draw fresh masks
    assert not np.array_equal(fit_params(X, Y, dtype, seed=None, shuffle=False)[0],
                              fit_params(X, Y, dtype, seed=None, shuffle=False)[0])


def test_a_second_fit_draws_new_masks(rng):
    # the masks follow the optimiser's epoch count, which goes on across fits
    X, Y = rng.normal(size=(32, 4)), rng.normal(size=(32, 2))
    net = fastbp.Network([4, 16, 2], activation="identity", output_activation="identity",
                         seed=0, dropout=0.5)
    optimizer = fastbp.SGD(lr=0.1)
    sizes, acts = codes(net)
    losses, expected = [], []
    for epoch in (0, 1):  # one batch an epoch: its loss is taken before its step
        expected.append(_kernels.dropout_loss_gradient(X, Y, net.params, sizes, acts, 0, 0.0,
                                                       [0.5], 3, epoch, 0,
                                                       np.empty(net.n_params)))
        losses += net.fit(X, Y, epochs=1, batch_size=32, shuffle=False, seed=3,
                          optimizer=optimizer)["loss"]
    assert losses == pytest.approx(expected, rel=1e-12)
    assert losses[0] != losses[1]


def own_threads(monkeypatch):
    """fit's own threads for small networks; the thread counts of its runs."""
    seen = []
    spy_on_trainer_runs(monkeypatch, before=lambda trainer, start, stop: seen.append(
        trainer.n_threads))
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS", 0)
    monkeypatch.setattr(_runtime, "OWN_THREADS_MIN_FLOPS_FLOAT32", 0)
    return seen


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("split", ["rows", "columns"])
@pytest.mark.parametrize("optimizer", [lambda: fastbp.SGD(lr=0.05),
                                       lambda: fastbp.SGD(lr=0.05, momentum=0.9),
                                       lambda: fastbp.Adam(lr=0.01)],
                         ids=["sgd", "momentum", "adam"])
def test_one_and_two_threads_give_the_same_bits(monkeypatch, rng, dtype, split, optimizer):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    X, Y = rng.normal(size=(150, 20)).astype(dtype), rng.normal(size=(150, 4)).astype(dtype)
    seen = own_threads(monkeypatch)
    sizes = np.array([20, 64, 32, 4], np.intc)
    # columns: shares of 16 columns, taken by every hidden layer at any batch
    knobs = (0, 16, 64) if split == "columns" else (2**62, 64, 0)
    old = _kernels.set_column_split(*knobs)
    try:
        forward, backward = _kernels.column_split_plan(sizes, 16, 2, np.dtype(dtype).itemsize)
        assert (forward[:2] == [True, True] and backward[1:] == [True, True]) \
            == (split == "columns")
        with products_independent_of_splits():
            one = fit_params(X, Y, dtype, n_threads=1, optimizer=optimizer())
            two = fit_params(X, Y, dtype, n_threads=2, optimizer=optimizer())
    finally:
        _kernels.set_column_split(*old)
    assert set(seen) == {1, 2}
    assert np.array_equal(one[0], two[0])
    # the threads add their parts of a batch's loss in another order
    assert two[1] == pytest.approx(one[1], rel=1e-12)


def test_sparse_x_on_threads_matches_one_thread_and_dense_x(monkeypatch, rng):
    if not _kernels.HAVE_THREADS:
        pytest.skip("no threads of fastbp's own on this platform")
    X = sp.random(120, 30, density=0.2, format="csr", random_state=4)
    Y = rng.normal(size=(120, 3))
    seen = own_threads(monkeypatch)
    settings = dict(optimizer=fastbp.Adam(lr=0.01))
    with products_independent_of_splits():
        one = fit_params(X, Y, n_threads=1, **settings)
        two = fit_params(X, Y, n_threads=2, **dict(settings, optimizer=fastbp.Adam(lr=0.01)))
    dense = fit_params(X.toarray(), Y, n_threads=1, **dict(settings,
                                                            optimizer=fastbp.Adam(lr=0.01)))
    assert set(seen) == {1, 2}
    assert np.array_equal(one[0], two[0])
    assert_close(one[0], dense[0])  # sparse products agree with dense ones to rounding


def test_kernel_calls_and_epoch_blocks_draw_the_same_masks(monkeypatch, rng):
    X, Y = rng.normal(size=(90, 6)), rng.normal(size=(90, 3))
    results = []
    for flops in (1e9, 3e4):  # whole epochs (in blocks), or several calls an epoch
        monkeypatch.setattr(_training, "FIT_CALL_FLOPS", flops)
        results.append(fit_params(X, Y, epochs=4, batch_size=10))
        # a callback makes the session run epochs one by one
        results.append(fit_params(X, Y, epochs=4, batch_size=10,
                                  callbacks=[lambda epoch, history, net: None]))
    for other in results[1:]:
        assert np.array_equal(other[0], results[0][0]) and other[1] == results[0][1]


def test_chunks_draw_the_masks_of_their_rows_positions(rng):
    # chunks of whole batches, in order: the same batches and masks as the arrays
    X, Y = rng.normal(size=(96, 6)), rng.normal(size=(96, 3))
    chunks = [(X[i:i + 32], Y[i:i + 32]) for i in range(0, 96, 32)]
    arrays = fit_params(X, Y, shuffle=False, epochs=3)
    chunked = fit_params(chunks, None, shuffle=False, epochs=3, widths=(6, 3))
    assert np.array_equal(arrays[0], chunked[0])
    assert_close(chunked[1], arrays[1])  # the epoch loss is summed chunk by chunk


def test_per_sample_training_takes_the_fused_kernel(monkeypatch, rng):
    # batch_size=1 with dropout stays in the fused per-sample kernel, which
    # draws the same masks (tests/test_per_sample_dropout.py checks its
    # steps); here, that fit keeps its per-sample call budget
    X, Y = rng.normal(size=(20, 4)), rng.normal(size=(20, 2))
    loops = []
    original = _training.TrainingLoop.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        loops.append(self.per_sample)

    monkeypatch.setattr(_training.TrainingLoop, "__init__", spy)
    fastbp.Network([4, 8, 2], dropout=0.5).fit(X, Y, batch_size=1, seed=0)
    fastbp.Network([4, 8, 2]).fit(X, Y, batch_size=1, seed=0)
    assert loops == [True, True]


# -- expectation: the average gradient over masks -----------------------------

def mean_gradient_over_masks(net, X, Y, rate, n_masks):
    """The mean and the standard error of ``n_masks`` dropout gradients of
    one batch, each with the masks of another seed."""
    sizes, acts = codes(net)
    draws = np.empty((n_masks, net.n_params))
    for seed in range(n_masks):
        _kernels.dropout_loss_gradient(X, Y, net.params, sizes, acts, 0, 0.0, [rate], seed, 0,
                                       0, draws[seed])
    return draws.mean(axis=0), draws.std(axis=0, ddof=1) / np.sqrt(n_masks)


def flat_gradient(net, X, Y):
    dW, db = net.gradients(X, Y)
    return np.concatenate([np.concatenate([W.ravel(), b]) for W, b in zip(dW, db)])


def assert_within_standard_errors(mean, expected, stderr, k=5.0):
    """|mean - expected| <= k standard errors (the sample's) for every
    parameter, plus 1e-12 of the gradient's scale for parameters whose draws
    do not vary (their gradient is the same under every mask)."""
    floor = 1e-12 * np.max(np.abs(expected))
    excess = np.abs(mean - expected) - (k * stderr + floor)
    assert np.all(excess <= 0), f"worst excess {excess.max():.3g} at {excess.argmax()}"


def test_expected_gradient_is_the_no_dropout_gradient_when_it_is_linear_in_the_mask(rng):
    """An identity hidden layer whose output weights are 0: the output does
    not depend on the mask, so the gradient is linear in it, and E[mask] = 1
    makes its expectation the no-dropout gradient exactly.

    Tolerance: 5 standard errors of the mean of N = 3000 draws, from their
    sample variance (each parameter's mean is asymptotically normal; 5
    sigma over 59 parameters fails by chance with probability < 4e-5)."""
    net = fastbp.Network([4, 9, 2], activation="identity", output_activation="identity",
                         seed=1, dropout=0.5)
    W, b = net.weights, [rng.normal(size=9), rng.normal(size=2)]
    W[1][...] = 0
    net.set_weights(W, b)
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    mean, stderr = mean_gradient_over_masks(net, X, Y, 0.5, 3000)
    expected = flat_gradient(net, X, Y)
    # layout [W_0 (36), b_0 (9), W_1 (18), b_1 (2)]: dW_1 is not trivially 0,
    # and it varies with the mask
    assert np.abs(expected[45:63]).min() > 0 and np.all(stderr[45:63] > 0)
    assert_within_standard_errors(mean, expected, stderr)


def test_expected_gradient_of_a_linear_layer_adds_only_the_masks_variance_term(rng):
    """Any weights: a linear hidden layer h with dropout (keep probability q)
    under the mse loss has E[J] = J + (1/q - 1)/(2m) sum_r sum_i h_ri^2
    ||W_1[i, :]||^2 (the mask's variance, 1/q - 1, is the only other
    moment that enters), so E[gradient] is the no-dropout gradient plus that
    term's. Tolerance as above (5 standard errors, N = 3000); the term
    itself is much larger than that, so a biased mask would fail."""
    rate = 0.5
    net = fastbp.Network([4, 9, 2], activation="identity", output_activation="identity",
                         seed=2, dropout=rate)
    net.set_weights(net.weights, [rng.normal(size=9), rng.normal(size=2)])
    X, Y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    (W0, W1), (b0, _) = net.weights, net.biases
    h, m, c = X @ W0 + b0, X.shape[0], 1 / keep_probability(rate) - 1
    row_norms = np.sum(W1 ** 2, axis=1)                       # ||W_1[i, :]||^2
    extra_W0 = c / m * X.T @ (h * row_norms)
    extra_b0 = c / m * np.sum(h * row_norms, axis=0)
    extra_W1 = c / m * np.sum(h ** 2, axis=0)[:, None] * W1
    extra = np.concatenate([extra_W0.ravel(), extra_b0, extra_W1.ravel(), np.zeros(2)])
    mean, stderr = mean_gradient_over_masks(net, X, Y, rate, 3000)
    expected = flat_gradient(net, X, Y) + extra
    assert np.linalg.norm(extra) > 20 * np.linalg.norm(stderr)
    assert_within_standard_errors(mean, expected, stderr)


# -- oracle: PyTorch autograd with the same masks ----------------------------

def torch_loss(torch, Ws, bs, X, Y, names, masks, loss, l2):
    """J of one batch through torch with the given masks on the hidden layers."""
    z = torch.tensor(X, dtype=torch.float64)
    T = torch.tensor(Y, dtype=torch.float64)
    for l, (W, b, name) in enumerate(zip(Ws, bs, names)):
        a = z @ W + b
        if name == "softmax":
            z = torch.softmax(a, dim=1)
        elif name in ("gelu", "silu", "softplus", "elu"):  # f' through a in the kernels
            z = getattr(torch.nn.functional, name)(a)
        else:
            z = a if name == "identity" else getattr(torch, name)(a)
        if l < len(masks):
            z = z * torch.tensor(masks[l])
    functional = torch.nn.functional
    data_term = {"mse": lambda: functional.mse_loss(z, T, reduction="sum") / 2,
                 "bce": lambda: functional.binary_cross_entropy_with_logits(a, T,
                                                                            reduction="sum"),
                 "cross_entropy": lambda: functional.cross_entropy(a, T, reduction="sum")}
    m = X.shape[0]
    J = data_term[loss]() / m
    return J + l2 / (2 * m) * sum((W ** 2).sum() for W in Ws)


@pytest.mark.parametrize("hidden", [*HIDDEN, "gelu", "silu", "softplus", "elu"])
@pytest.mark.parametrize("loss,output", LOSSES)
@pytest.mark.parametrize("l2", [0.0, 0.4])
def test_gradient_with_a_mask_matches_torch_autograd(rng, hidden, loss, output, l2):
    torch = pytest.importorskip("torch")
    rates = [0.3, 0.6]
    net = random_network(rng, [5, 7, 6, 4], hidden, output)
    X, Y = rng.normal(size=(8, 5)), targets(rng, loss, 8, 4)
    sizes, acts = codes(net)
    loss_code = fastbp.LOSSES[loss]
    masks = _kernels.dropout_masks(sizes, rates, 11, 2, 40, 8)
    assert all((mask == 0).any() for mask in masks)
    grad = np.empty(net.n_params)
    J = _kernels.dropout_loss_gradient(X, Y, net.params, sizes, acts, loss_code, l2, rates, 11,
                                       2, 40, grad)
    Ws = [torch.tensor(W, requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b, requires_grad=True) for b in net.biases]
    J_torch = torch_loss(torch, Ws, bs, X, Y, list(net.activations) + [output], masks, loss,
                         l2)
    J_torch.backward()
    expected = np.concatenate([np.concatenate([W.grad.numpy().ravel(), b.grad.numpy()])
                               for W, b in zip(Ws, bs)])
    assert J == pytest.approx(J_torch.item(), rel=1e-12)
    assert_close(grad, expected)
    # float32: the same masks, to float32's rounding
    grad32 = np.empty(net.n_params, np.float32)
    J32 = _kernels.dropout_loss_gradient(X.astype(np.float32), Y.astype(np.float32),
                                         net.params.astype(np.float32), sizes, acts, loss_code,
                                         l2, rates, 11, 2, 40, grad32)
    assert J32 == pytest.approx(J_torch.item(), rel=1e-4)
    assert_close(grad32, expected, rtol=2e-4)


@pytest.mark.parametrize("batch_size,momentum", [(8, 0.0), (8, 0.9), (1, 0.0), (7, 0.5)])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_takes_torchs_steps_with_the_masks_of_each_rows_position(rng, batch_size,
                                                                     momentum, dtype):
    # fit without shuffling, 2 epochs of 20 rows; torch steps the same batches
    # with the masks dropout_masks gives for (fit's seed, epoch, position)
    torch = pytest.importorskip("torch")
    rates, seed, lr = [0.4, 0.2], 5, 0.05
    net = random_network(rng, [5, 7, 6, 3], "tanh", "identity", dtype=dtype)
    X, Y = rng.normal(size=(20, 5)), rng.normal(size=(20, 3))
    Ws = [torch.tensor(W.astype(np.float64), requires_grad=True) for W in net.weights]
    bs = [torch.tensor(b.astype(np.float64), requires_grad=True) for b in net.biases]
    sizes, _ = codes(net)
    trained = fastbp.Network(net.sizes, activation="tanh", output_activation="identity",
                             dtype=dtype, dropout=rates)
    trained.replace_params(net.params)
    trained.fit(X.astype(dtype), Y.astype(dtype), epochs=2, batch_size=batch_size,
                shuffle=False, seed=seed, optimizer=fastbp.SGD(lr=lr, momentum=momentum))
    optimizer = torch.optim.SGD(Ws + bs, lr=lr, momentum=momentum)
    for epoch in range(2):
        for first in range(0, 20, batch_size):
            rows = slice(first, min(first + batch_size, 20))
            masks = _kernels.dropout_masks(sizes, rates, seed, epoch, first, len(X[rows]))
            optimizer.zero_grad()
            torch_loss(torch, Ws, bs, X[rows], Y[rows], ["tanh", "tanh", "identity"], masks,
                       "mse", 0.0).backward()
            optimizer.step()
    expected = np.concatenate([np.concatenate([W.detach().numpy().ravel(), b.detach().numpy()])
                               for W, b in zip(Ws, bs)])
    assert_close(trained.params, expected, dtype=dtype, rtol=1e-12 if dtype == "float64"
                 else 1e-4)
