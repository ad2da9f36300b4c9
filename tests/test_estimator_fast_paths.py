"""The estimators' shortcuts past scikit-learn's generic input checks
(MLPInputs._is_ready, MLPClassifier._encoded_labels and the direct
inverse of the label binarizer) change the time of a call, never its
result: each is compared here with the full path it skips."""
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.preprocessing import LabelBinarizer  # noqa: E402

from fastbp import MLPClassifier, MLPRegressor  # noqa: E402
from fastbp._mlp_inputs import MLPInputs  # noqa: E402


def _never_ready(monkeypatch):
    monkeypatch.setattr(MLPInputs, "_is_ready", lambda estimator, X: False)


def _partial_fits(make, X, y, batches, classes=None):
    model = make()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # neither path may warn on clean input
        for start in range(0, X.shape[0], X.shape[0] // batches):
            rows = slice(start, start + X.shape[0] // batches)
            if classes is not None:
                model.partial_fit(X[rows], y[rows], classes=classes)
            else:
                model.partial_fit(X[rows], y[rows])
    return model


@pytest.mark.parametrize("labels", [[0, 1], [3, 7, 9], [False, True], [-2, 0, 5, 11]])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_partial_fit_and_predict_equal_the_full_checks(monkeypatch, labels, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(96, 5)).astype(dtype)
    y = np.asarray(labels)[rng.integers(0, len(labels), 96)]
    classes = np.asarray(labels)

    def make():
        return MLPClassifier(hidden_layer_sizes=(7,), solver="sgd", random_state=0,
                             shuffle=False)

    fast = _partial_fits(make, X, y, 4, classes)
    fast_outputs = (fast.predict(X), fast.predict_proba(X))
    # the shortcut was taken, not silently declined
    assert fast._is_ready(X)
    assert fast._encoded_labels(X[:24], y[:24], True, False) is not None
    _never_ready(monkeypatch)
    full = _partial_fits(make, X, y, 4, classes)
    for ours, theirs in zip(fast.coefs_ + fast.intercepts_, full.coefs_ + full.intercepts_):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(fast_outputs[0], full.predict(X))
    assert fast_outputs[0].dtype == full.predict(X).dtype
    np.testing.assert_array_equal(fast_outputs[1], full.predict_proba(X))


@pytest.mark.parametrize("n_classes", [2, 4])
def test_predictions_equal_the_label_binarizers_inverse(n_classes):
    # the direct argmax / threshold against LabelBinarizer.inverse_transform,
    # on outputs with ties and values at the threshold itself
    classes = np.array([5, 6, 8, 9][:n_classes])
    binarizer = LabelBinarizer().fit(classes)
    model = MLPClassifier()
    model._label_binarizer, model.classes_ = binarizer, binarizer.classes_
    model.n_outputs_ = 1 if n_classes == 2 else n_classes
    rng = np.random.default_rng(1)
    outputs = rng.random((50, model.n_outputs_))
    outputs[:5] = 0.5
    np.testing.assert_array_equal(model._outputs_to_predictions(outputs.copy()),
                                  binarizer.inverse_transform(
                                      outputs.ravel() if n_classes == 2 else outputs))


def test_an_unknown_label_gets_scikit_learns_message():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 3))
    model = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
    model.partial_fit(X, np.arange(20) % 3, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
        model.partial_fit(X, np.full(20, 7))


# the fit only sets up the model: 30 rows of alternating labels do not converge
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_input_the_shortcut_does_not_take_is_still_checked():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 4))
    y = np.arange(30) % 2
    model = MLPClassifier(hidden_layer_sizes=(4,), random_state=0).fit(X, y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="features"):
        model.predict(X[:, :3])
    assert not model._is_ready(np.asfortranarray(X))
    assert not model._is_ready(X.astype(int))
    np.testing.assert_array_equal(model.predict(np.asfortranarray(X)), model.predict(X))


def test_a_model_fitted_on_feature_names_still_warns_for_an_array():
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(4)
    X = rng.normal(size=(30, 3))
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(pandas.DataFrame(X, columns=["a", "b", "c"]), np.arange(30) % 2)
    with pytest.warns(UserWarning, match="feature names"):
        model.predict(X)


def test_regressor_partial_fit_equals_the_full_checks(monkeypatch):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(64, 4))
    Y = rng.normal(size=(64, 2))

    def make():
        return MLPRegressor(hidden_layer_sizes=(5,), solver="sgd", random_state=0,
                            shuffle=False)

    fast = _partial_fits(make, X, Y, 4)
    _never_ready(monkeypatch)
    full = _partial_fits(make, X, Y, 4)
    for ours, theirs in zip(fast.coefs_, full.coefs_):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(fast.predict(X), full.predict(X))


def test_an_int_seed_restarts_the_stream_on_every_call_as_a_fresh_generator_would():
    # the rewound generator (MLPInputs._restarted_random_state) against a
    # RandomState built anew for every call, which is what scikit-learn does
    rng = np.random.default_rng(6)
    X = rng.normal(size=(40, 4))
    y = np.arange(40) % 3

    def run(model):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(3):
                model.partial_fit(X, y, classes=[0, 1, 2])
            model.set_params(random_state=5)
            model.partial_fit(X, y)
            model.set_params(random_state=3)
            model.fit(X, y)
        return model.coefs_ + model.intercepts_

    rewound = run(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(MLPInputs, "_restarted_random_state",
                      lambda model: np.random.RandomState(model.random_state))
        fresh = run(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=3))
    for ours, theirs in zip(rewound, fresh):
        np.testing.assert_array_equal(ours, theirs)


def test_a_generator_the_user_passed_is_never_rewound():
    X = np.random.default_rng(7).normal(size=(30, 3))
    y = np.arange(30) % 2
    generator = np.random.RandomState(11)
    model = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)  # an int seed first: the estimator builds a generator of its own
        model.set_params(random_state=generator)
        model.fit(X, y)
        drawn = generator.get_state()[2]
        model.set_params(random_state=5)
        model.fit(X, y)  # rewinds its own generator, not the user's
    assert model._random_state is not generator
    assert generator.get_state()[2] == drawn
    assert drawn != np.random.RandomState(11).get_state()[2]  # fit did draw from it
