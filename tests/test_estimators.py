"""fastbp.MLPClassifier / MLPRegressor: scikit-learn's contract and its numbers."""
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastbp  # noqa: E402
from fastbp import MLPClassifier, MLPRegressor  # noqa: E402


# the checks fit small data sets for max_iter=100 epochs, scikit-learn's own setting for
# its MLPs: they test the contract, and many stop before converging, as scikit-learn's do
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _digits(n=600):
    from fastbp import load_digits
    X, labels = load_digits(one_hot=False)
    return X[:n], labels[:n]


def _fit_both(ours_cls, theirs_cls, X, y, sample_weight=None, **params):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours_cls(**params).fit(X, y, sample_weight=sample_weight)
        theirs = theirs_cls(**params).fit(X, y, sample_weight=sample_weight)
    return ours, theirs


def _assert_same_model(ours, theirs, rtol=1e-9):
    if hasattr(theirs, "loss_curve_"):
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=rtol)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=rtol)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_


# Same random_state -> same initial weights (the estimators draw them as
# scikit-learn does) -> the same training, step for step.
@pytest.mark.parametrize("solver,extra", [
    ("sgd", dict(momentum=0.0, learning_rate_init=0.1)),
    ("sgd", dict(momentum=0.9, nesterovs_momentum=True, learning_rate_init=0.05)),
    ("sgd", dict(momentum=0.9, nesterovs_momentum=False, learning_rate="invscaling",
                 learning_rate_init=0.1)),
    ("adam", dict(learning_rate_init=0.01)),
])
@pytest.mark.parametrize("activation", ["logistic", "tanh", "relu"])
def test_classifier_trains_like_sklearn(solver, extra, activation):
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits()
    ours, theirs = _fit_both(MLPClassifier, SkClassifier, X, y, hidden_layer_sizes=(16,),
                             activation=activation, solver=solver, shuffle=False, batch_size=32,
                             alpha=1e-3, tol=0, random_state=0, max_iter=5, **extra)
    _assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-7,
                               atol=1e-12)


@pytest.mark.parametrize("target", ["binary", "multilabel"])
def test_logistic_outputs_train_like_sklearn(target):
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, labels = _digits(300)
    y = (labels % 2) if target == "binary" else np.column_stack([labels % 2, labels > 4])
    ours, theirs = _fit_both(MLPClassifier, SkClassifier, X, y, hidden_layer_sizes=(8, 6),
                             solver="sgd", learning_rate_init=0.2, shuffle=False, batch_size=50,
                             random_state=1, max_iter=4, tol=0)
    _assert_same_model(ours, theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("n_outputs", [1, 3])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_regressor_trains_like_sklearn(n_outputs, solver):
    from sklearn.neural_network import MLPRegressor as SkRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5))
    y = np.tanh(X @ rng.normal(size=(5, n_outputs)))
    y = y.ravel() if n_outputs == 1 else y
    weights = rng.uniform(0.5, 2.0, size=120)
    ours, theirs = _fit_both(MLPRegressor, SkRegressor, X, y, sample_weight=weights,
                             hidden_layer_sizes=(10,), solver=solver, learning_rate_init=0.01,
                             shuffle=False, batch_size=16, alpha=0.01, random_state=3,
                             max_iter=6, tol=0)
    _assert_same_model(ours, theirs)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_shuffled_training_is_reproducible_and_learns():
    X, y = _digits(1200)
    a = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, max_iter=60).fit(X[:900], y[:900])
    b = MLPClassifier(hidden_layer_sizes=(32,), random_state=0, max_iter=60).fit(X[:900], y[:900])
    np.testing.assert_array_equal(a.loss_curve_, b.loss_curve_)
    assert a.score(X[900:], y[900:]) > 0.9


def test_lbfgs_matches_sklearn_on_single_output():
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(300)
    ours, theirs = _fit_both(MLPClassifier, SkClassifier, X, y % 2, hidden_layer_sizes=(8,),
                             solver="lbfgs", random_state=0, max_iter=30)
    # same start, same objective and gradient: L-BFGS-B takes the same path
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    assert ours.n_iter_ == theirs.n_iter_


def test_lbfgs_gradient_is_that_of_the_reported_loss():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=(40, 2))
    reg = MLPRegressor(hidden_layer_sizes=(5,), solver="lbfgs", alpha=0.1, max_iter=200,
                       random_state=0).fit(X, y)
    # at the optimum the reported loss is at a minimum along random directions
    theta = reg._net._params.copy()
    base = reg.loss_
    for _ in range(5):
        direction = rng.normal(size=theta.size) * 1e-3
        for sign in (1, -1):
            reg._net._params[...] = theta + sign * direction
            pred = reg.predict(X)
            loss = 0.5 * np.mean((pred - y) ** 2) + 0.5 * 0.1 / 40 * sum(
                float(np.sum(W ** 2)) for W in reg.coefs_)
            assert loss >= base - 1e-7
    reg._net._params[...] = theta


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_pickle_clone_and_grid_search():
    import pickle

    from sklearn.base import clone
    from sklearn.model_selection import GridSearchCV
    X, y = _digits(400)
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=20, random_state=0).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    fresh = clone(clf)
    assert not hasattr(fresh, "coefs_") and fresh.get_params() == clf.get_params()
    search = GridSearchCV(MLPClassifier(solver="sgd", learning_rate_init=0.1, batch_size=32,
                                        max_iter=20, random_state=0),
                          {"hidden_layer_sizes": [(8,), (16,)], "alpha": [1e-4, 1e-2]},
                          cv=2, n_jobs=2).fit(X, y)
    assert search.best_score_ > 0.7
    assert set(search.cv_results_["params"][0]) == {"hidden_layer_sizes", "alpha"}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_float32_input_trains_in_float32():
    X, y = _digits(300)
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    clf.fit(X.astype(np.float32), y)
    assert all(W.dtype == np.float32 for W in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X).dtype == np.float32
    clf64 = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, y)
    assert clf64.coefs_[0].dtype == np.float64
    np.testing.assert_allclose(clf.loss_curve_, clf64.loss_curve_, rtol=1e-4)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_class_weight_equals_sample_weight():
    X, y = _digits(300)
    weights = {label: 1.0 + label / 3 for label in range(10)}
    a = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0, shuffle=False,
                      class_weight=weights).fit(X, y)
    b = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                      shuffle=False).fit(X, y, sample_weight=np.array([weights[v] for v in y]))
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)
    balanced = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0,
                             class_weight="balanced").fit(X, y)
    assert balanced.n_iter_ == 3
    with pytest.raises(ValueError):
        MLPClassifier(class_weight={0: -1.0}, max_iter=2).fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_activation_list_per_hidden_layer():
    X, y = _digits(300)
    clf = MLPClassifier(hidden_layer_sizes=(12, 8), activation=["relu", "tanh"], max_iter=3,
                        random_state=0).fit(X, y)
    assert clf._net.activations == ("relu", "tanh")
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(hidden_layer_sizes=(12, 8), activation=["relu"]).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="softmax").fit(X, y)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_warm_start_and_partial_fit_keep_the_optimiser_state(solver):
    X, y = _digits(300)
    params = dict(hidden_layer_sizes=(8,), solver=solver, shuffle=False, random_state=0, tol=0,
                  learning_rate_init=0.01)
    once = MLPClassifier(max_iter=6, **params).fit(X, y)
    twice = MLPClassifier(max_iter=3, warm_start=True, **params).fit(X, y).fit(X, y)
    np.testing.assert_allclose(twice.loss_curve_, once.loss_curve_, rtol=1e-12)
    stepwise = MLPClassifier(**params)
    for _ in range(6):
        stepwise.partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_allclose(stepwise.loss_curve_, once.loss_curve_, rtol=1e-12)
    assert stepwise.t_ == once.t_ == 6 * 300


def test_partial_fit_needs_classes_and_a_stochastic_solver():
    X, y = _digits(100)
    with pytest.raises(ValueError, match="classes"):
        MLPClassifier().partial_fit(X, y)
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_early_stopping_restores_the_best_weights():
    X, y = _digits(600)
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                        max_iter=200, learning_rate_init=0.05, random_state=0).fit(X, y)
    assert clf.n_iter_ < 200 and clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None and len(clf.validation_scores_) == clf.n_iter_


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_sklearn_round_trip_is_exact():
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(300)
    theirs = SkClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0).fit(X, y)
    ours = MLPClassifier.from_sklearn(theirs)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    back = ours.to_sklearn()
    for got, want in zip(back.coefs_ + back.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(back.predict_proba(X), theirs.predict_proba(X))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_torch_state_dict_round_trip_is_exact():
    torch = pytest.importorskip("torch")
    X, y = _digits(200)
    ours = MLPClassifier(hidden_layer_sizes=(12, 7), activation="tanh", max_iter=3,
                         random_state=0).fit(X, y)
    model = torch.nn.Sequential(torch.nn.Linear(64, 12), torch.nn.Tanh(), torch.nn.Linear(12, 7),
                                torch.nn.Tanh(), torch.nn.Linear(7, 10)).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in ours.to_torch_state_dict().items()})
    with torch.no_grad():
        logits = model(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(1, keepdims=True),
                               ours.predict_proba(X), rtol=1e-12)
    copy = MLPClassifier(hidden_layer_sizes=(12, 7), activation="tanh", max_iter=1,
                         random_state=5).fit(X, y)
    copy.load_torch_state_dict(model.state_dict())
    for got, want in zip(copy.coefs_ + copy.intercepts_, ours.coefs_ + ours.intercepts_):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("params,match", [
    (dict(solver="newton"), "solver"), (dict(hidden_layer_sizes=(0,)), "hidden_layer_sizes"),
    (dict(learning_rate_init=0.0), "learning_rate_init"), (dict(batch_size=0), "batch_size"),
    (dict(momentum=1.5), "momentum"), (dict(beta_2=1.0), "beta_2"),
    (dict(validation_fraction=1.0), "validation_fraction"), (dict(max_iter=0), "max_iter"),
    (dict(alpha=-1.0), "alpha"), (dict(learning_rate="fast"), "learning_rate"),
])
def test_bad_hyper_parameters_are_named(params, match):
    X, y = _digits(50)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_shuffling_and_early_stopping_follow_sklearn_draw_for_draw(early_stopping):
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(500)
    ours, theirs = _fit_both(MLPClassifier, SkClassifier, X, y, hidden_layer_sizes=(12,),
                             solver="sgd", learning_rate_init=0.1, batch_size=40,
                             early_stopping=early_stopping, n_iter_no_change=2,
                             random_state=7, max_iter=8)
    _assert_same_model(ours, theirs)
    if early_stopping:
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_)


@pytest.mark.parametrize("learning_rate", ["adaptive", "constant", "invscaling"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_plateaus_stop_or_lower_the_rate_like_sklearn(learning_rate, early_stopping):
    # a large tol makes plateaus come early: "adaptive" divides the rate by 5
    # until 1e-6, the others stop; the epoch loop's stopping rule must agree
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(300)
    ours, theirs = _fit_both(MLPClassifier, SkClassifier, X, y, hidden_layer_sizes=(8,),
                             solver="sgd", learning_rate=learning_rate, learning_rate_init=0.3,
                             tol=0.02, n_iter_no_change=2, max_iter=80, batch_size=50,
                             early_stopping=early_stopping, random_state=0)
    _assert_same_model(ours, theirs)
    assert ours.n_iter_ < 80
    assert ours._optimizer_state.lr == pytest.approx(theirs._optimizer.learning_rate, rel=1e-12)
    if early_stopping:
        np.testing.assert_array_equal(ours.validation_scores_, theirs.validation_scores_)
    else:
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-9)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_on_data_of_another_dtype_keeps_the_network_dtype():
    X, y = _digits(200)
    weights = np.linspace(0.5, 2, 200)
    clf = MLPClassifier((8,), max_iter=2, warm_start=True, random_state=0)
    clf.fit(X.astype(np.float32), y, sample_weight=weights)
    clf.fit(X, y, sample_weight=weights)  # float64 rows and weights into a float32 net
    assert clf.coefs_[0].dtype == np.float32 and clf.n_iter_ == 2 and clf.t_ == 4 * 200


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_n_iter_counts_the_epochs_of_the_last_call_as_in_sklearn(solver):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(200)
    params = dict(hidden_layer_sizes=(8,), solver=solver, max_iter=3, warm_start=True,
                  n_iter_no_change=np.inf, random_state=0)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    for _ in range(2):  # the warm-started fit warns again and counts afresh
        for model in (ours, theirs):
            with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
                model.fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_ == 3
        assert ours.t_ == theirs.t_ and len(ours.loss_curve_) == len(theirs.loss_curve_)
    for _ in range(2):
        for model in (ours, theirs):
            model.partial_fit(X, y)
        assert ours.n_iter_ == theirs.n_iter_ == 1
        assert ours.t_ == theirs.t_ and len(ours.loss_curve_) == len(theirs.loss_curve_)


def _diverging_regression(**params):
    """Iris with a linear net, full batches and a rate just above stability:
    the validation score improves for two epochs, then the loss overflows
    within ten."""
    from sklearn.datasets import load_iris
    X, y = load_iris(return_X_y=True)
    params = dict(hidden_layer_sizes=10, activation="identity", solver="sgd",
                  learning_rate_init=0.017, momentum=0, max_iter=300,
                  n_iter_no_change=300, random_state=0, **params)
    return X, y, params


def test_diverging_fit_with_early_stopping_records_nan_and_keeps_the_best_weights():
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor as SkRegressor
    X, y, params = _diverging_regression(early_stopping=True)
    with pytest.warns(ConvergenceWarning, match="non-finite"):
        ours = MLPRegressor(**params).fit(X, y)
    scores = ours.validation_scores_
    assert len(scores) == len(ours.loss_curve_) == ours.n_iter_ < 300
    assert np.isnan(scores[-1]) and np.isnan(ours.loss_curve_[-1])
    # scikit-learn records the same scores, then goes on with NaN weights
    with pytest.warns(RuntimeWarning), pytest.warns(ConvergenceWarning):
        theirs = SkRegressor(**params).fit(X, y)
    np.testing.assert_allclose(scores, theirs.validation_scores_[:len(scores)], rtol=1e-9)
    assert np.isnan(theirs.validation_scores_[len(scores):]).all()
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)
    # the weights kept are those of the best epoch, as a fit that ends there
    best = int(np.nanargmax(scores))
    assert 0 < best < len(scores) - 1 and ours.best_validation_score_ == scores[best]
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        until_best = MLPRegressor(**{**params, "max_iter": best + 1}).fit(X, y)
    for got, want in zip(ours.coefs_ + ours.intercepts_,
                         until_best.coefs_ + until_best.intercepts_):
        np.testing.assert_array_equal(got, want)


def test_diverging_fit_raises_sklearns_error_and_keeps_finite_weights():
    from fastbp import TrainingDiverged
    X, y, params = _diverging_regression(early_stopping=False)
    reg = MLPRegressor(**params)
    with pytest.raises(TrainingDiverged, match="^Solver produced non-finite parameter weights. "
                       "The input data may contain large values and need to be preprocessed."):
        reg.fit(X, y)
    assert all(np.isfinite(W).all() for W in reg.coefs_ + reg.intercepts_)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_assigned_weights_take_effect_as_in_sklearn():
    import pickle

    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(200)
    # momentum=0: no optimiser state, which scikit-learn drops on warm start and fastbp keeps
    params = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.1, shuffle=False,
                  momentum=0, max_iter=2, warm_start=True, random_state=0)
    ours, theirs = MLPClassifier(**params).fit(X, y), SkClassifier(**params).fit(X, y)
    rng = np.random.default_rng(1)
    W1, b0 = rng.normal(size=(6, 10)), rng.normal(size=6)
    for model in (ours, theirs):
        model.coefs_[1] = W1.copy()                    # an item assigned
        model.intercepts_ = [b0.copy(), model.intercepts_[1]]  # a list assigned
        model.coefs_[0][0, :] = 0.5                    # a write into an array
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.coefs_[1], W1)
    restored = pickle.loads(pickle.dumps(ours))
    np.testing.assert_array_equal(restored.predict_proba(X), ours.predict_proba(X))
    # a warm start trains on from the assigned weights
    ours.fit(X, y)
    theirs.fit(X, y)
    for got, want in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    ours.coefs_[0][...] = 0  # the fitted lists are views again
    assert not ours._network()._params[:ours.coefs_[0].size].any()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_assigned_weights_of_the_wrong_shape_are_refused():
    X, y = _digits(100)
    clf = MLPClassifier(hidden_layer_sizes=(6,), max_iter=2, random_state=0).fit(X, y)
    clf.coefs_[1] = np.zeros((5, 10))
    with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(5, 10\)"):
        clf.predict(X)
    clf.coefs_[1] = np.full((6, 10), np.nan)
    with pytest.raises(ValueError, match=r"weights\[1\] contains 60 NaN or infinite"):
        clf.predict(X)


def _counts(n_outputs=1, n=120, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    y = rng.poisson(np.exp(0.5 * X[:, :n_outputs] + 0.3)).astype(float)
    return X, (y.ravel() if n_outputs == 1 else y), rng.uniform(0.5, 2.0, size=n)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_poisson_loss_and_gradient_are_sklearns(n_outputs):
    # scikit-learn's own loss and lbfgs gradient at the same weights, through
    # its private _loss_grad_lbfgs (as its test_gradient does)
    from sklearn.neural_network import MLPRegressor as SkRegressor

    from fastbp import _kernels
    X, y, weights = _counts(n_outputs)
    theirs = SkRegressor(loss="poisson", hidden_layer_sizes=(7, 5), activation="tanh",
                         alpha=0.01, solver="lbfgs", max_iter=3, random_state=0)
    theirs.fit(X, y, sample_weight=weights)
    ours = MLPRegressor.from_sklearn(theirs)
    assert ours.out_activation_ == "exp"
    Y = y.reshape(len(y), -1)
    units = [4, 7, 5, n_outputs]
    activations = [X] + [np.empty((len(X), u)) for u in units[1:]]
    deltas = [np.empty((len(X), u)) for u in units[1:]]
    coef_grads = [np.empty((a, b)) for a, b in zip(units, units[1:])]
    intercept_grads = [np.empty(b) for b in units[1:]]
    packed = np.hstack([a.ravel() for a in theirs.coefs_ + theirs.intercepts_])
    want_loss, want_grad = theirs._loss_grad_lbfgs(packed, X, Y, weights, activations, deltas,
                                                   coef_grads, intercept_grads)
    net = ours._network()
    grad = np.empty_like(net._params)
    work = np.empty(_kernels.workspace_size(net._sizes, len(X)))
    J, penalty = _kernels.weighted_loss_gradient(X, Y, weights, net._params, net._sizes,
                                                 net._acts, ours._loss_code(), ours.alpha,
                                                 work, grad)
    np.testing.assert_allclose(J + penalty, want_loss, rtol=1e-12)
    # fastbp packs layer by layer (W0, b0, W1, ...), scikit-learn all W then all b
    views = net._layer_views(grad)
    got_grad = np.hstack([W.ravel() for W, _ in views] + [b for _, b in views])
    np.testing.assert_allclose(got_grad, want_grad, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)


@pytest.mark.parametrize("solver,extra", [
    ("sgd", dict(momentum=0.9, learning_rate_init=0.01, batch_size=16)),
    ("sgd", dict(momentum=0, learning_rate_init=0.01, batch_size=1)),  # the per-sample kernels
    ("adam", dict(learning_rate_init=0.01, batch_size=16)),
])
@pytest.mark.parametrize("n_outputs", [1, 2])
def test_poisson_regressor_trains_like_sklearn(solver, extra, n_outputs):
    from sklearn.neural_network import MLPRegressor as SkRegressor
    X, y, weights = _counts(n_outputs)
    if extra["batch_size"] == 1:
        weights = None  # the fused per-sample path takes unweighted rows only
    ours, theirs = _fit_both(MLPRegressor, SkRegressor, X, y, sample_weight=weights,
                             loss="poisson", hidden_layer_sizes=(10,), solver=solver,
                             shuffle=False, alpha=0.01, random_state=3, max_iter=6, tol=0,
                             **extra)
    _assert_same_model(ours, theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-9)


def test_poisson_lbfgs_takes_sklearns_path():
    from sklearn.neural_network import MLPRegressor as SkRegressor
    X, y, _ = _counts(2)
    ours, theirs = _fit_both(MLPRegressor, SkRegressor, X, y, loss="poisson",
                             hidden_layer_sizes=(6,), solver="lbfgs", random_state=0,
                             max_iter=40)
    np.testing.assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    assert ours.n_iter_ == theirs.n_iter_


def test_regressor_signature_and_params_are_sklearns():
    import inspect

    from sklearn.neural_network import MLPRegressor as SkRegressor
    ours = list(inspect.signature(MLPRegressor).parameters.values())
    theirs = list(inspect.signature(SkRegressor).parameters.values())
    extras = ["n_threads", "dropout", "weight_decay", "clip_norm", "ema",  # fastbp's own, last
              "compute_dtype"]
    assert [(p.name, p.kind, p.default) for p in ours[:-len(extras)]] \
        == [(p.name, p.kind, p.default) for p in theirs]
    assert [p.name for p in ours[-len(extras):]] == extras
    assert MLPRegressor("poisson", (5,)).get_params()["loss"] == "poisson"
    with pytest.raises(ValueError, match="y >= 0; the smallest is -1.0"):
        MLPRegressor(loss="poisson").fit(np.ones((3, 2)), [1.0, -1.0, 2.0])
    with pytest.raises(sklearn.utils._param_validation.InvalidParameterError, match="loss"):
        MLPRegressor(loss="huber").fit(np.ones((3, 2)), [1.0, 0.0, 2.0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
def test_regressor_sklearn_round_trip_is_exact(loss):
    from sklearn.neural_network import MLPRegressor as SkRegressor
    X, y, _ = _counts()
    theirs = SkRegressor(loss=loss, hidden_layer_sizes=(6,), max_iter=5, random_state=0)
    theirs.fit(X, y)
    ours = MLPRegressor.from_sklearn(theirs)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)
    back = ours.to_sklearn()
    assert back.get_params() == theirs.get_params()
    np.testing.assert_array_equal(back.predict(X), theirs.predict(X))


@pytest.mark.parametrize("params,match", [
    (dict(activation=["relu", "softmax"]), "'activation' parameter of MLPClassifier must be a str"),
    (dict(activation=["relu", 3]), "'activation' parameter of MLPClassifier must be a str"),
    (dict(activation=["relu"]), "'activation' parameter of MLPClassifier lists 1 names for 2"),
    (dict(class_weight="even"), "'class_weight' parameter of MLPClassifier must be"),
])
def test_fastbps_own_parameters_raise_sklearns_invalid_parameter_error(params, match):
    from sklearn.utils._param_validation import InvalidParameterError
    X, y = _digits(50)
    with pytest.raises(InvalidParameterError, match=match):
        MLPClassifier(hidden_layer_sizes=(4, 3), max_iter=1, **params).fit(X, y)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_warm_start_takes_the_new_tol_and_n_iter_no_change_as_sklearn(early_stopping):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier as SkClassifier
    X, y = _digits(300)
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate_init=0.05, tol=0,
                  n_iter_no_change=50, max_iter=5, warm_start=True, random_state=0,
                  early_stopping=early_stopping)
    ours, theirs = MLPClassifier(**params), SkClassifier(**params)
    for model in (ours, theirs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(X, y)
        # no epoch improves by 10: the second fit stops after 1 + 1 epochs
        model.set_params(tol=10.0, n_iter_no_change=1, max_iter=50).fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_ == 2


def test_an_interrupted_lbfgs_fit_keeps_the_last_point_tried(monkeypatch):
    # Ctrl-C during lbfgs keeps the progress made: the weights of the last
    # evaluation, as before lbfgs had one driver for one machine and Dask
    import fastbp._mlp_solvers as solvers  # the lbfgs driver's module

    X, y = _digits()
    real, tried = solvers.weighted_sums, []

    def interrupt_on_the_sixth_evaluation(X, y, sample_weight, params, *rest):
        if len(tried) == 5:
            raise KeyboardInterrupt
        tried.append(np.array(params, copy=True))
        return real(X, y, sample_weight, params, *rest)

    monkeypatch.setattr(solvers, "weighted_sums", interrupt_on_the_sixth_evaluation)
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="lbfgs", max_iter=50, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert not np.array_equal(tried[0], tried[-1])
    # the last point tried, laid out as weights and biases by a network of the same sizes
    last = fastbp.Network([64, 8, 10], activation="relu", output_activation="softmax",
                          dtype="float64")
    last.replace_params(tried[-1])
    for fitted, expected in zip(clf.coefs_ + clf.intercepts_, last.weights + last.biases):
        np.testing.assert_array_equal(fitted, expected)
