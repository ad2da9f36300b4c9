"""bench/tabular.py: its same-work check of fastbp's losses can fail, its
inner splits read only the train halves, fastbp's run stops on its
budget with validation rows drawn from the train half, and the inputs'
standardisation takes its statistics from the training rows only and gives
both contenders the same arrays."""
import numpy as np
import pytest
from helpers import bench_module

import fastbp


@pytest.fixture(scope="module")
def tabular():
    """bench/tabular.py imported as a module (its main() does not run)."""
    yield from bench_module("tabular")


def needs_datasets(tabular):
    if not tabular.DATASETS.is_dir():
        pytest.skip("FANN's datasets (libfann-doc) are not installed")


@pytest.mark.parametrize("output,loss", [("sigmoid", "mse"), ("softmax", "cross_entropy"),
                                         ("sigmoid", "bce")])
def test_the_loss_check_agrees_on_predict_outputs_and_fails_on_others(tabular, output, loss):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 5))
    Y = np.eye(3)[rng.integers(0, 3, size=40)]
    network = fastbp.Network([5, 4, 3], activation="tanh", output_activation=output, seed=1)
    network.fit(X, Y, loss=loss, optimizer=fastbp.Adam(lr=1e-2), epochs=3, seed=2)
    outputs = network.predict(X)
    own, numpy_value = tabular.own_and_numpy_loss(network, loss, X, Y, outputs)
    assert own == pytest.approx(numpy_value, rel=1e-12)
    own, numpy_value = tabular.own_and_numpy_loss(network, loss, X, Y, outputs * 0.9)
    assert abs(own - numpy_value) > 1e-3 * abs(own)


def test_inner_split_halves_the_train_half_only(tabular, tmp_path):
    needs_datasets(tabular)
    tabular.split_train_halves(["diabetes"], 7, tmp_path)
    X, Y = tabular.read_fann_data(tabular.DATASETS / "diabetes.train")
    X_a, Y_a = tabular.read_fann_data(tmp_path / "diabetes.train")
    X_b, Y_b = tabular.read_fann_data(tmp_path / "diabetes.test")
    assert len(X_a) == len(X) // 2 and len(X_a) + len(X_b) == len(X)
    # the two halves hold exactly the train half's rows, each once
    rows = np.hstack([np.vstack([X_a, X_b]), np.vstack([Y_a, Y_b])])
    original = np.hstack([X, Y])
    assert np.array_equal(rows[np.lexsort(rows.T)], original[np.lexsort(original.T)])


def test_fastbp_run_stops_on_its_budget_and_validates_on_train_rows(tabular, monkeypatch):
    needs_datasets(tabular)
    fits = []
    fit = fastbp.Network.fit

    def recorded_fit(self, X, Y, **options):
        fits.append((len(X), options))
        return fit(self, X, Y, **options)

    monkeypatch.setattr(fastbp.Network, "fit", recorded_fit)
    contender = tabular.FastbpContender()
    X, Y = tabular.read_fann_data(tabular.DATASETS / "diabetes.train")
    result = contender.run("diabetes", [X.shape[1], 8, Y.shape[1]], seed=0, budget=0.2)
    [(rows, options)] = fits  # one fit over the whole budget
    assert rows == len(X)  # the train half; fit carves the validation rows from it
    assert options["validation_split"] == tabular.FASTBP_CONFIG["validation_split"] > 0
    assert 0.2 <= result["seconds"] < 2.0 and result["epochs"] > 1
    assert result["own_loss"] == pytest.approx(result["numpy_loss"], rel=1e-9)


def write_toy(tabular, folder, X_train, X_test, rng):
    folder.mkdir(parents=True, exist_ok=True)
    for part, X in (("train", X_train), ("test", X_test)):
        tabular.write_fann_data(folder / f"toy.{part}", X, rng.uniform(size=(len(X), 2)))


def test_standardisation_takes_its_statistics_from_the_training_rows_only(tabular, tmp_path):
    rng = np.random.default_rng(3)
    X_train = rng.normal(loc=[0.5, -3.0, 2.0], scale=[0.004, 2.0, 0.0], size=(50, 3))
    # the test rows are far off the training rows' mean and spread
    X_test = rng.normal(loc=[9.0, 40.0, 7.0], scale=[3.0, 0.1, 1.0], size=(30, 3))
    write_toy(tabular, tmp_path / "a", X_train, X_test, rng)
    tabular.standardise_files(["toy"], tmp_path / "a", tmp_path / "a_std")
    train, _ = tabular.read_fann_data(tmp_path / "a_std" / "toy.train")
    test, _ = tabular.read_fann_data(tmp_path / "a_std" / "toy.test")
    mean = X_train.sum(axis=0) / len(X_train)
    std = np.sqrt(((X_train - mean) ** 2).sum(axis=0) / len(X_train))
    std[2] = 1.0  # a column constant on the training rows is only centred
    np.testing.assert_allclose(train, (X_train - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(test, (X_test - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(train[:, :2].mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(train[:, :2].std(axis=0), 1, rtol=1e-12)
    # other test rows: the standardised training rows stay the same
    write_toy(tabular, tmp_path / "b", X_train, X_test[:5] * 10.0, rng)
    tabular.standardise_files(["toy"], tmp_path / "b", tmp_path / "b_std")
    train_b, _ = tabular.read_fann_data(tmp_path / "b_std" / "toy.train")
    assert np.array_equal(train_b, train)


def test_both_contenders_train_on_the_same_standardised_arrays(tabular, tmp_path, monkeypatch):
    from peers import fann_peer
    if fann_peer.availability() is not None:
        pytest.skip(fann_peer.availability())
    rng = np.random.default_rng(4)
    X_train = rng.uniform(size=(60, 3)) * [0.01, 1.0, 100.0]
    write_toy(tabular, tmp_path / "raw", X_train, rng.uniform(size=(20, 3)), rng)
    tabular.standardise_files(["toy"], tmp_path / "raw", tmp_path / "std")
    monkeypatch.setattr(tabular, "DATASETS", tmp_path / "std")
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    expected = (X_train - mean) / std
    seen = {}
    fit = fastbp.Network.fit

    def recorded_fit(self, X, Y, **options):
        seen["fastbp"] = np.array(X)
        return fit(self, X, Y, **options)

    monkeypatch.setattr(fastbp.Network, "fit", recorded_fit)
    tabular.FastbpContender().run("toy", [3, 4, 2], seed=0, budget=0.01)
    fann = tabular.FannContender("rprop")
    train_epoch = fann.fann.lib.fann_train_epoch

    def recorded_epoch(ann, data):
        d = data.contents
        seen["fann"] = np.array([[d.input[i][j] for j in range(d.num_input)]
                                 for i in range(d.num_data)])
        return train_epoch(ann, data)

    monkeypatch.setattr(fann.fann.lib, "fann_train_epoch", recorded_epoch)
    fann.run("toy", [3, 4, 2], seed=0, budget=0.01)
    assert np.array_equal(seen["fann"], seen["fastbp"])  # bit for bit
    np.testing.assert_allclose(seen["fastbp"], expected, rtol=1e-12, atol=1e-12)


def test_inner_splits_are_standardised_with_the_inner_training_rows(tabular, tmp_path):
    needs_datasets(tabular)
    folder = tabular.prepare_datasets(["diabetes"], tmp_path, inner=7, standardise=True)
    X_a, _ = tabular.read_fann_data(tmp_path / "inner" / "diabetes.train")
    X_b, _ = tabular.read_fann_data(tmp_path / "inner" / "diabetes.test")
    mean, std = X_a.mean(axis=0), X_a.std(axis=0)
    train, _ = tabular.read_fann_data(folder / "diabetes.train")
    test, _ = tabular.read_fann_data(folder / "diabetes.test")
    np.testing.assert_allclose(train, (X_a - mean) / std, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(test, (X_b - mean) / std, rtol=1e-12, atol=1e-12)
    assert tabular.prepare_datasets(["diabetes"], tmp_path / "x", standardise=False) \
        == tabular.DATASETS  # --no-standardise: FANN's files as shipped


def test_refit_trains_on_all_rows_for_the_last_share_of_the_budget(tabular, monkeypatch):
    needs_datasets(tabular)
    fits = []
    fit = fastbp.Network.fit

    def recorded_fit(self, X, Y, **options):
        started = tabular.CLOCK()
        weights = [W.copy() for W in self.weights]
        history = fit(self, X, Y, **options)
        fits.append({"rows": len(X), "options": options, "started": started,
                     "weights_in": weights, "weights_out": [W.copy() for W in self.weights],
                     "epochs": len(history["loss"])})
        return history

    monkeypatch.setattr(fastbp.Network, "fit", recorded_fit)
    budget, share = 0.4, 0.25
    contender = tabular.FastbpContender({**tabular.FASTBP_CONFIG, "refit": share})
    X, Y = tabular.read_fann_data(tabular.DATASETS / "diabetes.train")
    start = tabular.CLOCK()
    result = contender.run("diabetes", [X.shape[1], 8, Y.shape[1]], seed=0, budget=budget)
    validated, refit = fits
    assert validated["rows"] == refit["rows"] == len(X)
    assert validated["options"]["validation_split"] > 0
    assert validated["options"]["early_stopping"] is not None
    # the refit holds no rows out and stops on the budget alone
    assert "validation_split" not in refit["options"]
    assert "early_stopping" not in refit["options"]
    # it goes on from the validated fit's kept weights, with the same optimiser
    for W_out, W_in in zip(validated["weights_out"], refit["weights_in"]):
        assert np.array_equal(W_out, W_in)
    assert refit["options"]["optimizer"] is validated["options"]["optimizer"]
    assert refit["started"] - start >= (1 - share) * budget
    assert budget <= result["seconds"] < budget + 1.0
    assert result["epochs"] == validated["epochs"] + refit["epochs"] and refit["epochs"] >= 1
    with pytest.raises(ValueError, match="refit"):
        tabular.FastbpContender({**tabular.FASTBP_CONFIG, "refit": 1.0}).run(
            "diabetes", [X.shape[1], 8, Y.shape[1]], seed=0, budget=0.01)


@pytest.mark.parametrize("shape,expected", [("linear", (1.0, 0.55, 0.1, 0.1)),
                                            ("cosine", (1.0, 0.55, 0.1, 0.1))])
def test_budget_decay_lowers_the_rate_with_the_share_of_the_budget_spent(tabular, shape,
                                                                         expected):
    now = [10.0]
    schedule = tabular.BudgetDecay(lambda: now[0], start=10.0, seconds=2.0, shape=shape,
                                   final=0.1)
    rates = []
    for t in (10.0, 11.0, 12.0, 15.0):  # none, half, all and past the budget spent
        now[0] = t
        rates.append(schedule.next_lr(0.02, 0.02, 1, 8, {}, {}))
    # f(0) = 1, f(1/2) = 0.1 + 0.9/2 for both shapes (cos(π/2) = 0), f(1) = final after
    assert rates == pytest.approx([0.02 * f for f in expected], rel=1e-12)
    now[0] = 10.5  # a quarter: the two shapes differ there
    quarter = schedule.next_lr(0.02, 0.02, 1, 8, {}, {}) / 0.02
    assert quarter == pytest.approx(1 - 0.9 * 0.25 if shape == "linear"
                                    else 0.1 + 0.9 * (1 + np.sqrt(0.5)) / 2, rel=1e-12)
    warm = tabular.BudgetDecay(lambda: 10.5, start=10.0, seconds=2.0, warmup=0.5)
    assert warm.next_lr(0.02, 0.02, 1, 8, {}, {}) == pytest.approx(0.01, rel=1e-12)
    with pytest.raises(ValueError, match="shape"):
        tabular.BudgetDecay(lambda: 0.0, 0.0, 1.0, shape="step")


def test_budget_decay_config_sets_the_first_fits_schedule(tabular, monkeypatch):
    needs_datasets(tabular)
    rates = []
    fit = fastbp.Network.fit

    def recorded_fit(self, X, Y, **options):
        history = fit(self, X, Y, **options)
        rates.extend(history["lr"])
        return history

    monkeypatch.setattr(fastbp.Network, "fit", recorded_fit)
    config = {**tabular.FASTBP_CONFIG, "budget_decay": {"shape": "linear", "final": 0.0}}
    X, Y = tabular.read_fann_data(tabular.DATASETS / "diabetes.train")
    tabular.FastbpContender(config).run("diabetes", [X.shape[1], 8, Y.shape[1]], seed=0,
                                        budget=0.3)
    lr0 = config["optimizer_args"]["lr"]
    assert rates[0] == lr0 and len(rates) > 3
    assert all(later <= earlier for earlier, later in zip(rates, rates[1:]))
    assert rates[-1] < 0.2 * lr0  # the last epochs ran near the end of the budget


def test_a_polish_fit_of_another_optimiser_keeps_the_best_epoch_of_both_fits(tabular,
                                                                              monkeypatch):
    needs_datasets(tabular)
    fits = []
    fit = fastbp.Network.fit

    def recorded_fit(self, X, Y, **options):
        stopping = options.get("early_stopping")
        best_before = None if stopping is None else stopping.best
        history = fit(self, X, Y, **options)
        fits.append({"options": options, "dropout": self.dropout, "history": history,
                     "best_before": best_before, "best_after": stopping.best,
                     "weights_out": [W.copy() for W in self.weights]})
        return history

    monkeypatch.setattr(fastbp.Network, "fit", recorded_fit)
    config = {**tabular.FASTBP_CONFIG, "refit": 0.3, "refit_optimizer": "Rprop",
              "refit_optimizer_args": {"lr": 1e-3}, "refit_batch_size": "full",
              "refit_ema": None, "refit_dropout": None, "refit_validated": True,
              "refit_keeps_best": True}
    X, Y = tabular.read_fann_data(tabular.DATASETS / "diabetes.train")
    tabular.FastbpContender(config).run("diabetes", [X.shape[1], 8, Y.shape[1]], seed=0,
                                        budget=0.4)
    first, polish = fits
    assert isinstance(polish["options"]["optimizer"], fastbp.optim.Rprop)
    assert polish["options"]["optimizer"].lr == 1e-3
    assert polish["options"]["batch_size"] == len(X) and polish["options"]["ema"] is None
    assert first["dropout"] is not None and polish["dropout"] is None
    # the same validation rows, and the polish's best is measured against the first fit's
    assert polish["options"]["validation_split"] == first["options"]["validation_split"]
    assert polish["best_before"] == first["best_after"] == min(first["history"]["val_loss"])
    assert polish["best_after"] == min(first["history"]["val_loss"]
                                       + polish["history"]["val_loss"])
