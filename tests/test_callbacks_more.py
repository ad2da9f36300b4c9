"""ModelCheckpoint and resumed fits, CSVLogger, and accuracy in the history
(issue #28)."""
import csv
import os

import numpy as np
import pytest

import fastbp
from fastbp import optim
from fastbp.callbacks import CSVLogger, ModelCheckpoint

OPTIMIZERS = {
    "momentum": lambda: fastbp.SGD(lr=0.05, momentum=0.9),
    "adam": lambda: fastbp.Adam(lr=0.01),
    "nesterov plateau": lambda: fastbp.SGD(lr=0.1, momentum=0.5, nesterov=True,
                                           schedule=optim.ReduceLROnPlateau(
                                               factor=0.5, patience=0, threshold=0.3,
                                               cooldown=1)),
    "adam one cycle": lambda: fastbp.Adam(lr=0.02, flavor="torch",
                                          schedule=optim.LinearWarmup(2, then=optim.OneCycle(4))),
}


def digits(n=300):
    X, y = fastbp.load_digits(one_hot=False)
    return X[:n], y[:n], X[n:n + 100], y[n:n + 100]


def network(dtype="float64"):
    return fastbp.Network([64, 12, 10], activation="tanh", output_activation="softmax",
                          dtype=dtype, seed=1)


def fit(net, optimizer, epochs, chunked=False, **args):
    X, y, X_val, y_val = digits()
    data = (fastbp.array_chunks(X, y, chunk_rows=128), None) if chunked else (X, y)
    args.setdefault("validation_data", (X_val, y_val))
    return net.fit(*data, optimizer=optimizer, epochs=epochs, batch_size=16, seed=7, **args)


def bits(net):
    return net.params.tobytes()


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("dtype,n_threads,chunked", [
    ("float64", 1, False), ("float32", 2, False), ("float64", 2, True), ("float32", 1, True)])
def test_a_resumed_fit_ends_with_the_weights_of_the_fit_it_continues(tmp_path, name, dtype,
                                                                      n_threads, chunked):
    make = OPTIMIZERS[name]
    whole = network(dtype)
    expected = fit(whole, make(), 6, chunked, n_threads=n_threads)

    path = tmp_path / "run.npz"
    first = network(dtype)
    fit(first, make(), 3, chunked, n_threads=n_threads,
        callbacks=[ModelCheckpoint(path, save_best_only=False)])
    resumed = fastbp.load(path)  # a checkpoint is a model file
    assert bits(resumed) == bits(first)
    history = fit(resumed, make(), 6, chunked, n_threads=n_threads, resume=path)
    assert bits(resumed) == bits(whole)
    assert history["lr"] == expected["lr"][3:]
    assert history["val_loss"] == expected["val_loss"][3:]

    # without the saved state (moments, rate, shuffles) the same weights go elsewhere
    again = fastbp.load(path)
    fit(again, make(), 3, chunked, n_threads=n_threads)
    assert bits(again) != bits(whole)


def test_resuming_restores_the_split_and_shuffles_of_validation_split(tmp_path):
    X, y, _, _ = digits()
    args = dict(batch_size=16, seed=5, validation_split=0.25)
    whole = network()
    whole.fit(X, y, optimizer=fastbp.Adam(lr=0.01), epochs=5, **args)
    path = tmp_path / "run.npz"
    first = network()
    first.fit(X, y, optimizer=fastbp.Adam(lr=0.01), epochs=2, **args,
              callbacks=[ModelCheckpoint(path, monitor="loss", save_best_only=False)])
    resumed = fastbp.load(path)
    resumed.fit(X, y, optimizer=fastbp.Adam(lr=0.01), epochs=5, resume=path, **args)
    assert bits(resumed) == bits(whole)


def test_save_best_only_keeps_the_best_epochs_weights(tmp_path):
    path = tmp_path / "best.npz"
    seen = []
    checkpoint = ModelCheckpoint(path)
    history = fit(network(), fastbp.SGD(lr=0.3, momentum=0.9), 12, callbacks=[
        checkpoint, lambda epoch, history, net: seen.append(net.params.copy())])
    best = int(np.argmin(history["val_loss"]))
    assert best < 11  # a later epoch was worse: the file kept the best one
    assert checkpoint.best_epoch == best and checkpoint.best == min(history["val_loss"])
    assert fastbp.load(path).params.tobytes() == seen[best].tobytes()
    assert os.listdir(tmp_path) == ["best.npz"]  # no temporary file left behind


def test_a_resumed_checkpoint_keeps_its_best_value(tmp_path):
    path = tmp_path / "best.npz"
    fit(network(), fastbp.SGD(lr=0.05), 3, callbacks=[ModelCheckpoint(path)])
    saved = fastbp.load(path).params.tobytes()
    # scored on wrong labels, the resumed epochs are worse: a fresh callback takes the
    # checkpoint's best value and does not overwrite it
    _, _, X_val, y_val = digits()
    checkpoint = ModelCheckpoint(path)
    net = fastbp.load(path)
    history = fit(net, fastbp.SGD(lr=0.05), 4, resume=path, callbacks=[checkpoint],
                  validation_data=(X_val, (y_val + 1) % 10))
    assert checkpoint.best < history["val_loss"][0]
    assert fastbp.load(path).params.tobytes() == saved


def test_a_crash_while_writing_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "run.npz"
    net = network()
    optimizer = fastbp.Adam(lr=0.01)
    fit(net, optimizer, 1, callbacks=[ModelCheckpoint(path, save_best_only=False)])
    before = path.read_bytes()

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        fit(net, optimizer, 1, callbacks=[ModelCheckpoint(path, save_best_only=False)])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.npz"]


def test_checkpoint_paths_take_the_epoch_and_history(tmp_path):
    pattern = str(tmp_path / "net-{epoch:02d}-{val_loss:.3f}.npz")
    history = fit(network(), fastbp.SGD(lr=0.05), 3,
                  callbacks=[ModelCheckpoint(pattern, save_best_only=False)])
    names = sorted(os.listdir(tmp_path))
    assert names == [f"net-{e + 1:02d}-{v:.3f}.npz" for e, v in enumerate(history["val_loss"])]


@pytest.mark.parametrize("setup,error,match", [
    (lambda p, net: net.save(p), ValueError, "no training state"),
    (lambda p, net: None, FileNotFoundError, "no such checkpoint"),
])
def test_resume_refuses_what_is_no_checkpoint(tmp_path, setup, error, match):
    path = tmp_path / "x.npz"
    net = network()
    setup(path, net)
    with pytest.raises(error, match=match):
        fit(net, fastbp.Adam(), 2, resume=path)


def test_resume_refuses_another_network_or_optimizer_or_no_epochs_left(tmp_path):
    path = tmp_path / "run.npz"
    fit(network(), fastbp.Adam(lr=0.01), 2, callbacks=[ModelCheckpoint(path, monitor="loss")])
    with pytest.raises(ValueError, match="written by Adam, the fit's optimizer is SGD"):
        fit(network(), fastbp.SGD(), 4, resume=path)
    with pytest.raises(ValueError, match="written for dtype float64, the network has float32"):
        fit(network("float32"), fastbp.Adam(), 4, resume=path)
    other = fastbp.Network([64, 8, 10], activation="tanh", output_activation="softmax")
    with pytest.raises(ValueError, match=r"written for sizes \[64, 12, 10\]"):
        fit(other, fastbp.Adam(), 4, resume=path)
    with pytest.raises(ValueError, match="at epoch 2: epochs=2"):
        fit(network(), fastbp.Adam(), 2, resume=path)
    momentum = tmp_path / "momentum.npz"
    fit(network(), fastbp.SGD(momentum=0.9), 1,
        callbacks=[ModelCheckpoint(momentum, save_best_only=False)])
    with pytest.raises(ValueError, match="holds the buffers"):
        fit(network(), fastbp.SGD(), 2, resume=momentum)


def test_save_best_only_names_a_missing_monitor(tmp_path):
    with pytest.raises(ValueError, match="monitors 'val_loss'.*monitor='loss'"):
        fit(network(), fastbp.SGD(), 1, validation_data=None,
            callbacks=[ModelCheckpoint(tmp_path / "x.npz")])


def test_a_checkpoint_saves_from_inside_fit_only(tmp_path):
    checkpoint = ModelCheckpoint(tmp_path / "x.npz", monitor="loss")
    net = network()
    checkpoint(0, {"loss": [1.0]}, net)
    with pytest.raises(RuntimeError, match="inside Network.fit"):
        checkpoint.after_epoch(0, {"loss": [1.0]}, net)


# -- CSVLogger ------------------------------------------------------------------

def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_csv_logger_writes_the_history_a_row_an_epoch(tmp_path):
    path = tmp_path / "log.csv"
    history = fit(network("float32"), fastbp.SGD(lr=0.05, schedule=optim.ExponentialDecay(0.5)),
                  4, callbacks=[CSVLogger(path)], metrics=["accuracy"])
    header, *rows = read_rows(path)
    assert header == ["epoch", "loss", "data_loss", "penalty", "lr", "seconds", "val_loss",
                      "accuracy", "val_accuracy"]
    assert [int(row[0]) for row in rows] == [0, 1, 2, 3]
    for column, key in enumerate(header[1:], start=1):
        assert [float(row[column]) for row in rows] == history[key]  # exactly
    assert [float(row[4]) for row in rows] == [0.05, 0.025, 0.0125, 0.00625]


def test_csv_logger_starts_afresh_or_appends(tmp_path):
    path = tmp_path / "log.csv"
    net = network()
    sgd = fastbp.SGD(lr=0.05)
    fit(net, sgd, 2, callbacks=[CSVLogger(path)])
    fit(net, sgd, 3, callbacks=[CSVLogger(path)])
    assert len(read_rows(path)) == 1 + 3
    fit(net, sgd, 2, callbacks=[CSVLogger(path, append=True)])
    rows = read_rows(path)
    assert len(rows) == 1 + 5 and rows.count(rows[0]) == 1
    with pytest.raises(ValueError, match="has the columns"):
        fit(net, sgd, 1, validation_data=None, callbacks=[CSVLogger(path, append=True)])


def test_csv_logger_goes_on_with_a_resumed_fit(tmp_path):
    log, path = tmp_path / "log.csv", tmp_path / "run.npz"
    fit(network(), fastbp.Adam(lr=0.01), 2,
        callbacks=[CSVLogger(log), ModelCheckpoint(path, save_best_only=False)])
    fit(fastbp.load(path), fastbp.Adam(lr=0.01), 5, resume=path,
        callbacks=[CSVLogger(log, separator=";", append=False)])
    assert [row[0].split(";")[0] for row in read_rows(log)[1:]] == ["2", "3", "4"]


def test_csv_logger_checks_its_settings(tmp_path):
    with pytest.raises(ValueError, match="separator must be one character"):
        CSVLogger(tmp_path / "x.csv", separator=", ")
    with pytest.raises(TypeError, match="append must be True or False"):
        CSVLogger(tmp_path / "x.csv", append="yes")


# -- accuracy -------------------------------------------------------------------

def numpy_accuracy(params, X, y, weights=None):
    """Accuracy of the 64-12-10 tanh/softmax network from its flat parameters."""
    W1 = params[:64 * 12].reshape(64, 12)
    b1 = params[64 * 12:64 * 12 + 12]
    rest = params[64 * 12 + 12:]
    W2, b2 = rest[:120].reshape(12, 10), rest[120:]
    a2 = np.tanh(X @ W1 + b1) @ W2 + b2
    return np.average(a2.argmax(axis=1) == y, weights=weights)


@pytest.mark.parametrize("dtype,n_threads", [("float64", 1), ("float32", 2)])
def test_accuracy_is_measured_after_each_epoch_and_changes_no_weight(dtype, n_threads):
    X, y, X_val, y_val = digits()
    weights = np.random.default_rng(0).uniform(0.5, 2, size=len(y))
    seen = []
    net = network(dtype)
    history = fit(net, fastbp.SGD(lr=0.05, momentum=0.9), 4, n_threads=n_threads,
                  sample_weight=weights, metrics="accuracy",
                  callbacks=[lambda epoch, history, net: seen.append(net.params.astype(float))])
    tol = 1e-12 if dtype == "float64" else 1e-6  # float32 weights sum in float32
    for epoch, params in enumerate(seen):
        assert history["accuracy"][epoch] == pytest.approx(numpy_accuracy(params, X, y, weights),
                                                           abs=tol)
        assert history["val_accuracy"][epoch] == pytest.approx(
            numpy_accuracy(params, X_val, y_val), abs=tol)
    assert history["accuracy"][-1] > 0.5
    plain = network(dtype)
    fit(plain, fastbp.SGD(lr=0.05, momentum=0.9), 4, n_threads=n_threads, sample_weight=weights)
    assert bits(plain) == bits(net)


def test_accuracy_of_a_sigmoid_output_and_of_chunks():
    X, y, X_val, y_val = digits()
    odd, odd_val = y % 2, y_val % 2
    net = fastbp.Network([64, 8, 1], activation="relu", seed=0)
    history = net.fit(fastbp.array_chunks(X, odd, chunk_rows=100), None, loss="bce", epochs=3,
                      seed=0, validation_data=(X_val, odd_val), metrics=["accuracy"])
    assert "accuracy" not in history  # the training chunks are not kept
    assert history["val_accuracy"][-1] == net.score(X_val, odd_val)
    assert history["val_accuracy"][-1] == np.mean((net.predict(X_val)[:, 0] > 0.5) == odd_val)


@pytest.mark.parametrize("make,args,error,match", [
    (lambda: fastbp.Network([64, 1], output_activation="identity"), {}, ValueError,
     "needs a softmax or sigmoid output"),
    (network, dict(metrics=["f1"]), ValueError, "unknown metric 'f1'"),
    (network, dict(metrics=3), TypeError, "metrics must be a sequence"),
    (lambda: fastbp.Network([64, 2], output_activation="softmax"),
     dict(Y=np.full((300, 2), 0.5)), ValueError, "needs class targets"),
    (network, dict(chunked=True, validation_data=None), ValueError, "pass validation_data"),
])
def test_accuracy_where_it_has_no_meaning_is_refused(make, args, error, match):
    X, y, _, _ = digits()
    args = {"metrics": ["accuracy"], "validation_data": None, **args}
    Y = args.pop("Y", y if make().sizes[-1] > 1 else y.astype(float))
    data = (fastbp.array_chunks(X, Y, chunk_rows=100), None) if args.pop("chunked", False) \
        else (X, Y)
    with pytest.raises(error, match=match):
        make().fit(*data, epochs=1, **args)


def test_sparse_rows_resume_and_measure_accuracy(tmp_path):
    sparse = pytest.importorskip("scipy.sparse")
    X, y, X_val, y_val = digits()
    X_sparse = sparse.csr_matrix(X)
    args = dict(batch_size=16, seed=2, validation_data=(sparse.csr_matrix(X_val), y_val),
                metrics=["accuracy"])
    whole = network()
    expected = whole.fit(X_sparse, y, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), epochs=4,
                         **args)
    path = tmp_path / "sparse.npz"
    network().fit(X_sparse, y, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), epochs=2,
                  callbacks=[ModelCheckpoint(path)], **args)
    resumed = fastbp.load(path)
    history = resumed.fit(X_sparse, y, optimizer=fastbp.SGD(lr=0.05, momentum=0.9), epochs=4,
                          resume=path, **args)
    assert bits(resumed) == bits(whole)
    assert history["accuracy"] == expected["accuracy"][2:]
    assert history["accuracy"][-1] == pytest.approx(numpy_accuracy(whole.params, X, y),
                                                    abs=1e-12)
    assert history["val_accuracy"][-1] == pytest.approx(
        numpy_accuracy(whole.params, X_val, y_val), abs=1e-12)


def test_a_resumed_auto_monitor_takes_the_checkpoints_best(tmp_path):
    path = tmp_path / "best.npz"
    first = ModelCheckpoint(path, monitor="auto")
    fit(network(), fastbp.SGD(lr=0.05), 2, callbacks=[first])
    again = ModelCheckpoint(path, monitor="auto")
    _, _, X_val, y_val = digits()
    fit(fastbp.load(path), fastbp.SGD(lr=0.05), 3, resume=path, callbacks=[again],
        validation_data=(X_val, (y_val + 1) % 10))
    assert again.best == first.best and again.best_epoch is None
