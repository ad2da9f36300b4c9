"""bench/tabular.py: its same-work check of fastbp's losses can fail, its
inner splits read only the train halves, and fastbp's run stops on its
budget with validation rows drawn from the train half."""
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
