"""``fastbp train``'s training-toolbox options (issue #28): each one run through
the command line and compared with the library call it stands for.

The reference fits below rebuild what ``fastbp train`` does with
``--test-fraction 0 --no-early-stopping --no-standardize --threads 1``: the
rows in the order of ``default_rng(seed).permutation(n)``, the features as
given, the classes one-hot in sorted order, the network and the fit seeded
with ``--seed``.
"""
import csv
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import fastbp
from fastbp.callbacks import ModelCheckpoint
from fastbp.optim import (CosineWarmRestarts, ExponentialDecay, LinearWarmup, OneCycle,
                          ReduceLROnPlateau, StepDecay)

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "user_guide" / "cli.rst"
N_ROWS = 150
#: the options that make the command line's fit the plain reference fit below
PLAIN = ("--test-fraction", 0, "--no-early-stopping", "--no-standardize", "--threads", 1)


def cli(capsys, *args):
    """``fastbp ARGS`` in this process; (exit code, stdout, stderr)."""
    from fastbp.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def ok(outcome):
    code, out, err = outcome
    assert code == 0, err
    return out


def assert_cli_error(outcome, *phrases):
    code, out, err = outcome
    lines = err.splitlines()
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and re.match(r"fastbp( \w+)?: error: ", lines[0]), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])


def _features(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N_ROWS, 4))


@pytest.fixture
def classes_npz(tmp_path):
    """Four features and a three-class integer target (codes 0..2)."""
    X = _features()
    y = (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int) + (X[:, 2] > 0.7)
    path = tmp_path / "classes.npz"
    np.savez(path, a=X[:, 0], b=X[:, 1], c=X[:, 2], d=X[:, 3], y=y)
    return path


@pytest.fixture
def numbers_npz(tmp_path):
    """Four features and a real-valued target."""
    X = _features(1)
    t = 2 * X[:, 0] - X[:, 3] + np.sin(3 * X[:, 1]) + 0.1 * np.random.default_rng(2).normal(
        size=N_ROWS)
    path = tmp_path / "numbers.npz"
    np.savez(path, a=X[:, 0], b=X[:, 1], c=X[:, 2], d=X[:, 3], t=t)
    return path


def file_rows(path):
    """(X, Y) of a fixture's file, in its order: classes one-hot."""
    with np.load(path) as data:
        X = np.column_stack([data[k] for k in "abcd"])
        if "y" in data:
            return X, np.eye(int(data["y"].max()) + 1)[data["y"]]
        return X, data["t"][:, None]


def reference_rows(path, seed=0):
    """(X, Y) as ``fastbp train PATH PLAIN`` trains on them."""
    X, Y = file_rows(path)
    order = np.random.default_rng(seed).permutation(len(X))
    return X[order], Y[order]


def reference_fit(path, optimizer, *, hidden=(8,), activation="tanh", output="softmax",
                  loss="cross_entropy", epochs=4, batch_size=32, seed=0, dropout=None,
                  dtype="float64", **fit):
    """The network ``fastbp train PATH PLAIN ...`` ends with, by Network.fit."""
    X, Y = reference_rows(path, seed)
    net = fastbp.Network([4, *hidden, Y.shape[1]], activation=activation,
                         output_activation=output, seed=seed, dropout=dropout, dtype=dtype)
    history = net.fit(X, Y, loss=loss, optimizer=optimizer, epochs=epochs,
                      batch_size=batch_size, shuffle=True, seed=seed, n_threads=1, **fit)
    return net, history


def trained(capsys, tmp_path, path, *args, target="y", name="m.npz"):
    """Train with the command line (PLAIN, 4 epochs, --hidden 8 unless ``args`` say);
    the saved network and the standard output."""
    out = ok(cli(capsys, "train", path, "--target", target, "--hidden", 8, "--epochs", 4,
                 *PLAIN, *args, "--save", tmp_path / name))
    return fastbp.load(tmp_path / name), out


def assert_same_bits(a, b):
    assert a.params.dtype == b.params.dtype
    np.testing.assert_array_equal(a.params, b.params)


# -- optimisers -------------------------------------------------------------------

OPTIMIZER_CASES = [
    (["--optimizer", "sgd", "--lr", 0.1, "--momentum", 0.5, "--nesterov", "--weight-decay", 0.01],
     lambda: fastbp.SGD(lr=0.1, momentum=0.5, nesterov=True, weight_decay=0.01), {}),
    (["--optimizer", "adam", "--lr", 0.01, "--beta1", 0.8, "--beta2", 0.99, "--flavor", "torch"],
     lambda: fastbp.Adam(lr=0.01, beta1=0.8, beta2=0.99, flavor="torch"), {}),
    (["--optimizer", "adamw", "--lr", 0.01, "--weight-decay", 0.05, "--epsilon", 1e-6],
     lambda: fastbp.AdamW(lr=0.01, weight_decay=0.05, epsilon=1e-6), {}),
    (["--optimizer", "adamw"], lambda: fastbp.AdamW(), {}),
    (["--optimizer", "nadam", "--momentum-decay", 0.01], lambda: fastbp.NAdam(momentum_decay=0.01),
     {}),
    (["--optimizer", "rmsprop", "--momentum", 0.3, "--alpha", 0.9, "--centered"],
     lambda: fastbp.RMSprop(momentum=0.3, alpha=0.9, centered=True), {}),
    (["--optimizer", "adagrad", "--lr", 0.05, "--lr-decay", 0.01,
      "--initial-accumulator-value", 0.1],
     lambda: fastbp.Adagrad(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1), {}),
    (["--optimizer", "rprop", "--etas", "0.4,1.3", "--step-sizes", "1e-5,10", "--batch-size", 500],
     lambda: fastbp.Rprop(etas=(0.4, 1.3), step_sizes=(1e-5, 10)), {"batch_size": 500}),
    (["--optimizer", "lbfgs", "--tol", 1e-8, "--max-fun", 50],
     lambda: fastbp.LBFGS(tol=1e-8, max_fun=50), {}),
]


@pytest.mark.parametrize("args,optimizer,fit", OPTIMIZER_CASES,
                         ids=[" ".join(map(str, case[0][1:])) for case in OPTIMIZER_CASES])
def test_optimizer_options_train_as_the_library_does(capsys, tmp_path, classes_npz, args,
                                                     optimizer, fit):
    net, out = trained(capsys, tmp_path, classes_npz, *args)
    expected, _ = reference_fit(classes_npz, optimizer(), **fit)
    assert_same_bits(net, expected)
    default, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9))
    assert not np.array_equal(net.params, default.params)  # the options changed the fit
    assert f"training with {optimizer()!r}" in out


def test_the_default_optimizer_is_sgd_with_the_command_lines_rate_and_momentum(
        capsys, tmp_path, classes_npz):
    net, out = trained(capsys, tmp_path, classes_npz)
    assert_same_bits(net, reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9))[0])
    assert "training with" not in out  # the defaults print nothing new


def test_every_optimiser_and_schedule_is_offered_with_its_parameters():
    from fastbp.cli.optimizers import (NO_OPTION, OPTIMIZER_OPTIONS, OPTIMIZERS,
                                       SCHEDULE_OPTIONS, SCHEDULES, _parameters)

    assert set(OPTIMIZERS) == {"sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop",
                               "lbfgs"}
    assert set(SCHEDULES) == {"constant", "inv_scaling", "adaptive", "step_decay",
                              "cosine_decay", "exponential_decay", "one_cycle",
                              "cosine_warm_restarts", "reduce_lr_on_plateau"}
    for kind in OPTIMIZERS.values():
        assert set(_parameters(kind)) <= set(OPTIMIZER_OPTIONS), kind
    for kind in SCHEDULES.values():
        assert set(_parameters(kind)) <= set(SCHEDULE_OPTIONS), kind
    assert "lr" in _parameters(fastbp.SGD) and not NO_OPTION & set(OPTIMIZER_OPTIONS)


def test_activation_choices_are_the_kernels_table():
    from fastbp.cli import build_parser
    from fastbp.network import HIDDEN_ACTIVATIONS

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = next(a.choices for a in train._actions if "--activation" in a.option_strings)
    assert tuple(choices) == tuple(HIDDEN_ACTIVATIONS)
    assert {"leaky_relu", "elu", "gelu", "silu", "softplus", "softsign", "elliot"} <= set(choices)


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "gelu", "silu", "softplus",
                                        "softsign", "elliot"])
def test_new_activations_train_as_the_library_does(capsys, tmp_path, classes_npz, activation):
    net, _ = trained(capsys, tmp_path, classes_npz, "--activation", activation)
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9),
                                activation=activation)
    assert net.activations[0] == activation
    assert_same_bits(net, expected)


# -- schedules --------------------------------------------------------------------

SCHEDULE_CASES = [
    (["--schedule", "step_decay", "--schedule-step-size", 2, "--schedule-gamma", 0.5],
     lambda: StepDecay(2, 0.5)),
    (["--schedule", "exponential_decay", "--schedule-gamma", 0.7], lambda: ExponentialDecay(0.7)),
    (["--schedule", "one_cycle"], lambda: OneCycle(6)),  # its length: --epochs
    (["--schedule", "one_cycle", "--schedule-epochs", 4, "--schedule-pct-start", 0.5,
      "--schedule-anneal-strategy", "linear", "--schedule-three-phase"],
     lambda: OneCycle(4, pct_start=0.5, anneal_strategy="linear", three_phase=True)),
    (["--schedule", "cosine_warm_restarts", "--schedule-t0", 2, "--schedule-t-mult", 2,
      "--schedule-min-lr", 0.001], lambda: CosineWarmRestarts(2, 2, min_lr=0.001)),
    (["--schedule", "reduce_lr_on_plateau", "--schedule-patience", 0, "--schedule-factor", 0.5,
      "--schedule-threshold", 0.5], lambda: ReduceLROnPlateau(patience=0, factor=0.5,
                                                              threshold=0.5)),
    (["--warmup", 2], lambda: LinearWarmup(2)),
    (["--warmup", 2, "--warmup-start-factor", 0.1, "--schedule", "cosine_decay"],
     lambda: LinearWarmup(2, then=fastbp.optim.CosineDecay(4), start_factor=0.1)),
]


@pytest.mark.parametrize("args,schedule", SCHEDULE_CASES,
                         ids=[" ".join(map(str, case[0])) for case in SCHEDULE_CASES])
def test_schedule_options_give_the_librarys_rates(capsys, tmp_path, classes_npz, args,
                                                  schedule):
    net, out = trained(capsys, tmp_path, classes_npz, "--epochs", 6, *args, "--csv-log",
                       tmp_path / "log.csv")
    expected, history = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9,
                                                              schedule=schedule()), epochs=6)
    assert_same_bits(net, expected)
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [float(row["lr"]) for row in rows] == history["lr"]
    assert len(set(history["lr"])) > 1  # the rate moved
    # the epoch lines show the rate when a schedule moves it
    shown = [float(v) for v in re.findall(r"^epoch .*  lr ([0-9.e-]+)", out, re.M)]
    np.testing.assert_allclose(shown, history["lr"], rtol=1e-3)


def test_adam_takes_a_schedule_too(capsys, tmp_path, classes_npz):
    net, _ = trained(capsys, tmp_path, classes_npz, "--optimizer", "adam", "--schedule",
                     "exponential_decay", "--schedule-gamma", 0.5)
    expected, _ = reference_fit(classes_npz, fastbp.Adam(schedule=ExponentialDecay(0.5)))
    assert_same_bits(net, expected)


# -- regularisation -----------------------------------------------------------------

def test_dropout_trains_as_the_library_does_reproducibly(capsys, tmp_path, classes_npz):
    net, out = trained(capsys, tmp_path, classes_npz, "--dropout", 0.3)
    again, _ = trained(capsys, tmp_path, classes_npz, "--dropout", 0.3, name="again.npz")
    plain, _ = trained(capsys, tmp_path, classes_npz, name="plain.npz")
    assert net.dropout == (0.3,) and "dropout 0.3" in out
    assert_same_bits(net, again)
    assert not np.array_equal(net.params, plain.params)
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9), dropout=0.3)
    assert_same_bits(net, expected)


def test_float32_with_every_option_at_once(capsys, tmp_path, classes_npz):
    net, _ = trained(capsys, tmp_path, classes_npz, "--dtype", "float32", "--optimizer", "adamw",
                     "--lr", 0.01, "--dropout", 0.2, "--clip-norm", 0.5, "--ema", 0.7,
                     "--warmup", 1, "--schedule", "cosine_decay", "--label-smoothing", 0.1)
    schedule = LinearWarmup(1, then=fastbp.optim.CosineDecay(3))
    expected, _ = reference_fit(classes_npz, fastbp.AdamW(lr=0.01, schedule=schedule),
                                dtype="float32", dropout=0.2, clip_norm=0.5, ema=0.7,
                                loss=fastbp.CrossEntropyLoss(label_smoothing=0.1))
    assert net.dtype == np.float32
    assert_same_bits(net, expected)


def test_dropout_per_hidden_layer(capsys, tmp_path, classes_npz):
    net, _ = trained(capsys, tmp_path, classes_npz, "--hidden", "8,6", "--dropout", "0.2,0")
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9), hidden=(8, 6),
                                dropout=(0.2, 0.0))
    assert net.dropout == (0.2, 0.0)
    assert_same_bits(net, expected)


@pytest.mark.parametrize("args,fit", [(["--clip-norm", 0.05], {"clip_norm": 0.05}),
                                      (["--ema", 0.8], {"ema": 0.8})])
def test_clip_norm_and_ema_train_as_the_library_does(capsys, tmp_path, classes_npz, args, fit):
    net, _ = trained(capsys, tmp_path, classes_npz, *args)
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9), **fit)
    default, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9))
    assert_same_bits(net, expected)
    assert not np.array_equal(net.params, default.params)


# -- losses -------------------------------------------------------------------------

def test_huber_delta_trains_reports_and_evaluates_with_its_delta(capsys, tmp_path, numbers_npz):
    net, out = trained(capsys, tmp_path, numbers_npz, "--loss", "huber", "--huber-delta", 0.3,
                       target="t")
    assert "target 't': regression (--loss huber fits numbers)" in out
    expected, _ = reference_fit(numbers_npz, fastbp.SGD(lr=0.05, momentum=0.9),
                                output="identity", loss=fastbp.HuberLoss(delta=0.3))
    assert_same_bits(net, expected)
    X, Y = reference_rows(numbers_npz)
    loss = expected.loss(X, Y, loss=fastbp.HuberLoss(delta=0.3))
    assert loss != expected.loss(X, Y, loss="huber")
    assert re.search(rf"^train huber loss {loss:.5g} \(Huber loss a row \(delta 0.3\), targets "
                     r"as given\)", out, re.M)
    # evaluate reads the delta from the model
    X, Y = file_rows(numbers_npz)
    loss = expected.loss(X, Y, loss=fastbp.HuberLoss(delta=0.3))
    evaluated = ok(cli(capsys, "evaluate", tmp_path / "m.npz", numbers_npz))
    assert re.search(rf"^data huber loss {loss:.5g} ", evaluated, re.M)


def test_absolute_error_is_a_regression_loss(capsys, tmp_path, numbers_npz):
    net, out = trained(capsys, tmp_path, numbers_npz, "--loss", "absolute_error", target="t")
    expected, _ = reference_fit(numbers_npz, fastbp.SGD(lr=0.05, momentum=0.9),
                                output="identity", loss="absolute_error")
    assert net.output_activation == "identity" and "absolute error a row" in out
    assert_same_bits(net, expected)


def test_label_smoothing_trains_as_the_library_does(capsys, tmp_path, classes_npz):
    net, out = trained(capsys, tmp_path, classes_npz, "--label-smoothing", 0.2)
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9),
                                loss=fastbp.CrossEntropyLoss(label_smoothing=0.2))
    plain, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9))
    assert_same_bits(net, expected)
    assert not np.array_equal(net.params, plain.params)
    assert "targets smoothed by 0.2" in out


def test_a_model_without_loss_parameter_is_written_as_version_2(tmp_path):
    from fastbp.cli.model import META_KEY, ModelMeta, load_model, save_model

    meta = ModelMeta(targets=["y"], task="regression", loss="huber",
                     features=[{"name": "a", "kind": "number", "width": 2, "fill": None}],
                     classes=None, x_mean=[0.0, 0.0], x_scale=[1.0, 1.0], y_mean=[0.0],
                     y_scale=[1.0])
    net = fastbp.Network([2, 1], output_activation="identity", seed=0)
    for param, version in ((None, 2), (0.5, 3)):
        meta.loss_param = param
        save_model(net, meta, str(tmp_path / "m.npz"))
        with np.load(tmp_path / "m.npz") as archive:
            entry = str(archive[META_KEY])
        assert f'"version": {version}' in entry and ("loss_param" in entry) == (param is not None)
        assert load_model(str(tmp_path / "m.npz"))[1].loss_function() == (
            "huber" if param is None else fastbp.HuberLoss(delta=param))


# -- checkpoints, resuming, the log, accuracy ------------------------------------------

def test_csv_log_writes_the_historys_rows(capsys, tmp_path, classes_npz):
    trained(capsys, tmp_path, classes_npz, "--csv-log", tmp_path / "log.csv", "--accuracy")
    _, history = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9),
                               metrics=["accuracy"])
    with open(tmp_path / "log.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["epoch", "loss", "data_loss", "penalty", "lr", "seconds",
                             "accuracy"]
    assert [int(row["epoch"]) for row in rows] == [0, 1, 2, 3]
    for key in ("loss", "accuracy"):
        assert [float(row[key]) for row in rows] == history[key]


def test_accuracy_is_reported_per_epoch(capsys, tmp_path, classes_npz):
    out = ok(cli(capsys, "train", classes_npz, "--target", "y", "--hidden", 8, "--epochs", 3,
                 "--threads", 1, "--accuracy"))
    lines = re.findall(r"^epoch +\d+/3  train loss [0-9.]+  val loss [0-9.]+  test loss "
                       r"[0-9.]+  train accuracy ([0-9.]+)  val accuracy ([0-9.]+)", out, re.M)
    assert len(lines) == 3 and all(0 <= float(a) <= 1 for pair in lines for a in pair)
    # the kept epoch's are the final metrics'
    kept = int(re.search(r"kept the weights of epoch (\d+)", out).group(1))
    for name, column in (("train", 0), ("val  ", 1)):
        final = re.search(rf"^{name} cross_entropy loss .* accuracy ([0-9.]+) ", out, re.M)
        assert final.group(1) == lines[kept - 1][column]


def _overfitting_npz(path):
    """Noisy labels a wide net overfits within a few epochs at a high rate."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 2, 60)
    np.savez(path, a=X[:, 0], b=X[:, 1], c=X[:, 2], d=X[:, 3], y=y)
    return path


def test_checkpoint_then_resume_continues_bit_for_bit(capsys, tmp_path):
    """With early stopping: the resumed run keeps the checkpoint's best epoch when no
    later one beats it, as the uninterrupted run does."""
    data = _overfitting_npz(tmp_path / "noise.npz")
    common = ("train", data, "--target", "y", "--hidden", 32, "--threads", 1,
              "--validation-fraction", 0.3, "--optimizer", "adam", "--lr", 0.05)
    whole = ok(cli(capsys, *common, "--epochs", 10, "--save", tmp_path / "whole.npz"))
    kept = int(re.search(r"kept the weights of epoch (\d+)", whole).group(1))
    assert kept < 4  # the case where the resumed run needs the checkpoint's best
    first = ok(cli(capsys, *common, "--epochs", 4, "--checkpoint", tmp_path / "ck.npz"))
    assert f"kept the weights of epoch {kept}," in first
    resumed = ok(cli(capsys, *common, "--epochs", 10, "--resume", tmp_path / "ck.npz",
                     "--save", tmp_path / "resumed.npz"))
    assert f"resumed from {tmp_path / 'ck.npz'} after epoch {kept}" in resumed
    assert re.findall(r"^epoch +(\d+)/10", resumed, re.M) == [str(e) for e in range(kept + 1, 11)]
    assert f"kept the weights of epoch {kept}," in resumed
    assert_same_bits(fastbp.load(tmp_path / "resumed.npz"), fastbp.load(tmp_path / "whole.npz"))
    # the last lines of the report agree too
    assert whole.splitlines()[-6:-2] == resumed.splitlines()[-6:-2]


@pytest.mark.parametrize("extra", [(), ("--dropout", 0.2, "--schedule", "step_decay",
                                        "--schedule-step-size", 2)])
def test_resume_of_an_every_epoch_checkpoint(capsys, tmp_path, classes_npz, extra):
    whole, _ = trained(capsys, tmp_path, classes_npz, "--epochs", 6, *extra, name="whole.npz")
    trained(capsys, tmp_path, classes_npz, "--epochs", 3, *extra, "--checkpoint",
            tmp_path / "ck-{epoch}.npz", "--no-checkpoint-best-only")
    assert sorted(p.name for p in tmp_path.glob("ck-*.npz")) == ["ck-1.npz", "ck-2.npz",
                                                                 "ck-3.npz"]
    net, out = trained(capsys, tmp_path, classes_npz, "--epochs", 6, *extra, "--resume",
                       tmp_path / "ck-3.npz", name="resumed.npz")
    assert re.findall(r"^epoch +(\d+)/6", out, re.M) == ["4", "5", "6"]
    assert_same_bits(net, whole)
    # as the library resumes its own checkpoint
    schedule, dropout = (StepDecay(2), 0.2) if extra else (None, None)
    checkpoint = ModelCheckpoint(tmp_path / "lib.npz", monitor="loss", save_best_only=False)
    reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9, schedule=schedule), epochs=3,
                  dropout=dropout, callbacks=[checkpoint])
    expected, _ = reference_fit(classes_npz, fastbp.SGD(lr=0.05, momentum=0.9, schedule=schedule),
                                epochs=6, dropout=dropout, resume=tmp_path / "lib.npz")
    assert_same_bits(net, expected)


def test_resume_without_the_best_value_warns_that_early_stopping_starts_afresh(capsys, tmp_path,
                                                                                classes_npz):
    common = ("train", classes_npz, "--target", "y", "--hidden", 8, "--threads", 1)
    ok(cli(capsys, *common, "--epochs", 2, "--checkpoint", tmp_path / "ck.npz",
           "--no-checkpoint-best-only"))
    code, out, err = cli(capsys, *common, "--epochs", 4, "--resume", tmp_path / "ck.npz")
    assert code == 0 and "early stopping starts afresh at epoch 3" in err


def test_resume_in_a_subprocess(tmp_path, classes_npz):
    def run(*args):
        return subprocess.run([sys.executable, "-m", "fastbp", "train", str(classes_npz),
                               "--target", "y", "--threads", "1", *map(str, args)],
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)

    assert run("--epochs", 5, "--save", "whole.npz").returncode == 0
    assert run("--epochs", 2, "--checkpoint", "ck.npz").returncode == 0
    result = run("--epochs", 5, "--resume", "ck.npz", "--save", "resumed.npz")
    assert result.returncode == 0, result.stderr
    assert "resumed from ck.npz" in result.stdout
    assert_same_bits(fastbp.load(tmp_path / "resumed.npz"), fastbp.load(tmp_path / "whole.npz"))


# -- refused before training ---------------------------------------------------------

ERRORS = [
    (["--optimizer", "adam", "--momentum", 0.5],
     ["--momentum does not apply to --optimizer adam (it applies to sgd, rmsprop)"]),
    (["--beta1", 0.5], ["--beta1 does not apply to --optimizer sgd (it applies to adam, adamw, "
                        "nadam)"]),
    (["--optimizer", "adam", "--weight-decay", 0.1],
     ["--weight-decay does not apply to --optimizer adam (it applies to sgd, adamw)"]),
    (["--optimizer", "rprop", "--schedule", "cosine_decay"],
     ["--schedule does not apply to --optimizer rprop"]),
    (["--optimizer", "lbfgs", "--warmup", 2], ["--warmup does not apply to --optimizer lbfgs"]),
    (["--optimizer", "lbfgs", "--dropout", 0.2], ["--dropout does not apply to --optimizer lbfgs"]),
    (["--optimizer", "lbfgs", "--batch-size", 10],
     ["--batch-size does not apply to --optimizer lbfgs"]),
    (["--optimizer", "lbfgs", "--clip-norm", 1], ["--clip-norm does not apply to --optimizer lbfgs"]),
    (["--optimizer", "lbfgs", "--lr", 0.1], ["--lr does not apply to --optimizer lbfgs"]),
    (["--optimizer", "sgd", "--tol", 0.1], ["--tol does not apply to --optimizer sgd (it applies "
                                            "to lbfgs)"]),
    (["--momentum", 0, "--nesterov"], ["--optimizer sgd: nesterov=True needs momentum > 0"]),
    (["--optimizer", "rprop", "--etas", "1.5,1.2"], ["--optimizer rprop: etas must satisfy"]),
    (["--optimizer", "rprop", "--etas", "0.5"], ["--etas: expected two numbers"]),
    (["--beta2", 1], ["--beta2: must be < 1"]),
    (["--schedule-gamma", 0.5], ["--schedule-gamma needs --schedule (one of step_decay, "
                                 "exponential_decay)"]),
    (["--schedule", "cosine_decay", "--schedule-gamma", 0.5],
     ["--schedule-gamma does not apply to --schedule cosine_decay"]),
    (["--schedule", "step_decay"], ["--schedule step_decay needs --schedule-step-size"]),
    (["--schedule", "exponential_decay"], ["--schedule exponential_decay needs --schedule-gamma"]),
    (["--schedule", "cosine_warm_restarts"], ["needs --schedule-t0"]),
    (["--schedule", "reduce_lr_on_plateau", "--schedule-factor", 2],
     ["--schedule reduce_lr_on_plateau: factor must be < 1"]),
    (["--schedule", "adaptive", "--schedule-factor", 0.5], ["--schedule adaptive: factor must be > 1"]),
    (["--schedule", "warmup"], ["argument --schedule: invalid choice"]),
    (["--warmup-start-factor", 0.5], ["--warmup-start-factor needs --warmup"]),
    (["--warmup", 0], ["--warmup: must be at least 1"]),
    (["--dropout", 1], ["--dropout: must be < 1"]),
    (["--dropout", "0.1,x"], ["--dropout: expected a number, got 'x'"]),
    (["--dropout", "0.1,0.2"], ["--dropout: dropout lists 2 rates but the network has 1 hidden"]),
    (["--dropout", 0.2, "--hidden", "none"], ["--dropout: dropout acts on hidden layers"]),
    (["--clip-norm", 0], ["--clip-norm: must be > 0"]),
    (["--ema", 1], ["--ema: must be < 1"]),
    (["--huber-delta", 1], ["--huber-delta applies to --loss huber, not the default"]),
    (["--huber-delta", 0, "--loss", "huber"], ["--huber-delta: must be > 0"]),
    (["--label-smoothing", 0.1, "--loss", "bce"], ["--label-smoothing applies to --loss "
                                                   "cross_entropy, not bce"]),
    (["--label-smoothing", 2], ["--label-smoothing: must be <= 1"]),
    (["--resume", "missing.npz"], ["--resume missing.npz: no such file"]),
    (["--resume", "classes.npz", "--ema", 0.9], ["--resume cannot continue an --ema run"]),
    (["--checkpoint", "nowhere/ck.npz"], ["--checkpoint", "does not exist"]),
    (["--csv-log", "nowhere/log.csv"], ["--csv-log", "does not exist"]),
    (["--optimizer", "adamx"], ["argument --optimizer: invalid choice: 'adamx'"]),
]


@pytest.mark.parametrize("args,phrases", ERRORS, ids=[" ".join(map(str, e[0])) for e in ERRORS])
def test_bad_options_are_refused_before_the_data_is_read(capsys, tmp_path, monkeypatch, args,
                                                        phrases):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "classes.npz").write_bytes(b"not read")  # an error about it would mean it was
    code, out, err = cli(capsys, "train", "classes.npz", "--target", "y", *args)
    assert_cli_error((code, out, err), *phrases)
    assert out == ""


@pytest.mark.parametrize("args,phrases", [
    (["--label-smoothing", 0.1], ["--label-smoothing applies to --loss cross_entropy, the loss "
                                  "is mse (regression)"]),
    (["--accuracy"], ["--accuracy needs class targets"]),
])
def test_options_the_regression_target_does_not_allow(capsys, numbers_npz, args, phrases):
    assert_cli_error(cli(capsys, "train", numbers_npz, "--target", "t", *args), *phrases)


def test_a_regression_loss_on_classes_is_refused(capsys, tmp_path):
    path = tmp_path / "labels.csv"
    path.write_text("a,y\n1,cat\n2,dog\n3,cat\n4,dog\n")
    assert_cli_error(cli(capsys, "train", path, "--target", "y", "--loss", "huber"),
                     "target 'y' holds 'cat': a regression target must be numeric")
    assert_cli_error(cli(capsys, "train", path, "--target", "y", "--loss", "huber", "--task",
                         "classification"), "--loss huber fits numbers", "--task regression")


def test_resume_refuses_another_optimisers_or_a_finished_checkpoint(capsys, tmp_path,
                                                                     classes_npz):
    trained(capsys, tmp_path, classes_npz, "--epochs", 2, "--checkpoint", tmp_path / "ck.npz",
            "--no-checkpoint-best-only")
    assert_cli_error(cli(capsys, "train", classes_npz, "--target", "y", "--hidden", 8, *PLAIN,
                         "--optimizer", "adam", "--resume", tmp_path / "ck.npz"),
                     "is not a checkpoint this fit can resume from",
                     "written by SGD, the fit's optimizer is Adam")
    assert_cli_error(cli(capsys, "train", classes_npz, "--target", "y", "--hidden", 8, *PLAIN,
                         "--epochs", 2, "--resume", tmp_path / "ck.npz"),
                     "is at epoch 2: --epochs 2", "leaves none to train")


# -- documented ----------------------------------------------------------------------

def test_every_option_is_in_the_help_and_the_docs_page(capsys):
    from fastbp.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    docs = DOCS.read_text()
    options = [option for action in train._actions for option in action.option_strings
               if option.startswith("--") and not option.startswith("--no-")]
    new = [o for o in options if o in _TOOLBOX_OPTIONS or o.startswith("--schedule-")]
    assert len(new) >= 40
    for option in new:
        assert re.search(re.escape(option) + r"(?![\w-])", docs), option
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    for option in new:
        assert option in text, option


_TOOLBOX_OPTIONS = {
    "--optimizer", "--lr", "--momentum", "--nesterov", "--weight-decay", "--beta1", "--beta2",
    "--epsilon", "--flavor", "--momentum-decay", "--alpha", "--centered", "--lr-decay",
    "--initial-accumulator-value", "--etas", "--step-sizes", "--tol", "--max-fun", "--schedule",
    "--warmup", "--warmup-start-factor", "--dropout", "--clip-norm", "--ema", "--huber-delta",
    "--label-smoothing", "--checkpoint", "--checkpoint-best-only", "--resume", "--csv-log",
    "--accuracy", "--compute-dtype"}
