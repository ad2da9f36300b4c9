"""The estimators' solvers beyond scikit-learn's: fastbp's optimisers by name."""
import numpy as np
import pytest
from sklearn.datasets import load_digits

import fastbp
from fastbp import MLPClassifier, MLPRegressor
from fastbp._mlp_params import STOCHASTIC_SOLVERS

NEW_SOLVERS = {"adamw": fastbp.AdamW, "nadam": fastbp.NAdam, "rmsprop": fastbp.RMSprop,
               "adagrad": fastbp.Adagrad, "rprop": fastbp.Rprop}

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:500] / 16, y[:500]


#: the estimator settings each solver's optimiser takes: (its name, value)
TAKEN = {"adamw": {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
         "nadam": {"beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7},
         "rmsprop": {"epsilon": 1e-7}, "adagrad": {}, "rprop": {}}


@pytest.mark.parametrize("solver, optimizer_class", NEW_SOLVERS.items())
def test_each_solver_is_its_optimiser_at_the_estimators_settings(solver, optimizer_class):
    clf = MLPClassifier(solver=solver, learning_rate_init=0.004, beta_1=0.8, beta_2=0.99,
                        epsilon=1e-7)
    optimizer = STOCHASTIC_SOLVERS[solver](clf)
    assert type(optimizer) is optimizer_class and optimizer.lr == 0.004
    for name, value in TAKEN[solver].items():
        assert getattr(optimizer, name) == value


@pytest.mark.parametrize("solver", NEW_SOLVERS)
def test_each_solver_trains_the_classifier(digits, solver):
    X, y = digits
    batch_size = len(X) if solver == "rprop" else "auto"  # Rprop: full batches
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver=solver, max_iter=30, random_state=0,
                        batch_size=batch_size, learning_rate_init=0.01)
    clf.fit(X, y)
    assert clf.loss_curve_[-1] < 0.5 * clf.loss_curve_[0]
    assert clf.score(X, y) > 0.8
    # the same settings train the same weights (one optimiser per fit, seeded)
    again = MLPClassifier(**clf.get_params()).fit(X, y)
    np.testing.assert_array_equal(clf.coefs_[0], again.coefs_[0])


@pytest.mark.parametrize("solver", ["adamw", "rmsprop"])
def test_partial_fit_carries_the_optimiser_state(digits, solver):
    X, y = digits
    one = MLPClassifier(hidden_layer_sizes=(16,), solver=solver, random_state=0, shuffle=False)
    for _ in range(3):
        one.partial_fit(X, y, classes=np.arange(10))
    assert one.t_ == 3 * len(X) and len(one.loss_curve_) == 3
    assert one.loss_curve_[-1] < one.loss_curve_[0]


def test_regressor_takes_the_new_solvers(digits):
    X, _ = digits
    Y = X[:, 20:22]
    reg = MLPRegressor(hidden_layer_sizes=(16,), solver="nadam", max_iter=40, random_state=0)
    assert reg.fit(X, Y).loss_curve_[-1] < reg.loss_curve_[0]


def test_an_unknown_solver_names_the_choices():
    with pytest.raises(ValueError, match="rmsprop"):
        MLPClassifier(solver="adadelta").fit(np.zeros((4, 2)), [0, 1, 0, 1])
