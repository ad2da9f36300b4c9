"""The estimators' ``ema``: a moving average of the weights, as
``Network.fit(ema=...)`` keeps it (fastbp's own parameter), against
``Network.fit`` bit for bit, a NumPy recurrence over the raw weights step
by step, and across partial_fit, warm starts, chunks and pickling."""
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import r2_score
from sklearn.utils._param_validation import InvalidParameterError

import fastbp
from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def params_of(estimator):
    return np.concatenate([W.ravel() for W in estimator.coefs_ + estimator.intercepts_])


def regression(rng, rows, dtype=np.float64):
    X = rng.normal(size=(rows, 5))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1], X[:, 2] * X[:, 3]])
    return X.astype(dtype), Y.astype(dtype)


#: each solver's fastbp optimiser at the estimator's settings below
OPTIMIZERS = {"adam": lambda: fastbp.Adam(lr=0.01),
              "sgd": lambda: fastbp.SGD(lr=0.01, momentum=0.9, nesterov=True),
              "rmsprop": lambda: fastbp.RMSprop(lr=0.01, epsilon=1e-8)}


def estimators_start(dtype):
    """A network holding the weights MLPRegressor(random_state=0) starts from:
    scikit-learn's Glorot draws for tanh."""
    net = fastbp.Network([5, 7, 2], activation="tanh", output_activation="identity",
                         dtype=np.dtype(dtype).name)
    net.init_weights(np.random.RandomState(0), factor=6.0, biases="uniform")
    return net


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("solver", OPTIMIZERS)
def test_the_estimator_trains_as_network_fit_with_ema(rng, dtype, solver):
    # the same rows, batches, optimiser and start: the same steps, the same
    # average, bit for bit; the validation scores are the average's at each
    # epoch, the loss curve the raw weights' running loss
    X, Y = regression(rng, 64, dtype)
    X_val, Y_val = regression(rng, 20, dtype)
    net = estimators_start(dtype)
    held = []
    history = net.fit(X, Y, loss="mse", optimizer=OPTIMIZERS[solver](), epochs=4, batch_size=8,
                      shuffle=False, l2=0.01, ema=0.8, n_threads=1,
                      callbacks=[lambda epoch, history, network: held.append(network.copy())])
    est = MLPRegressor(hidden_layer_sizes=(7,), activation="tanh", solver=solver, batch_size=8,
                       shuffle=False, max_iter=4, alpha=0.01, learning_rate_init=0.01,
                       n_iter_no_change=50, n_threads=1, random_state=0, ema=0.8)
    est.fit(X, Y, validation_data=(X_val, Y_val))
    assert est.network_.dtype == dtype
    np.testing.assert_array_equal(est.network_.params, net.params)
    expected_scores = [r2_score(Y_val, network.predict(X_val)) for network in held]
    np.testing.assert_allclose(est.validation_scores_, expected_scores, rtol=1e-12)
    # scikit-learn's squared error is averaged over the 2 outputs, Network's "mse" summed
    raw = np.asarray(history["data_loss"]) / 2 + np.asarray(history["penalty"])
    np.testing.assert_allclose(est.loss_curve_, raw, rtol=1e-12)


def test_early_stopping_watches_and_keeps_the_average(rng):
    # a rate large enough that the average's validation score peaks, then
    # falls: the fit stops and ends with the best epoch's average
    X, Y = regression(rng, 48)
    X_val, Y_val = regression(rng, 40)
    net = estimators_start(np.float64)
    held = []
    net.fit(X, Y, loss="mse", optimizer=fastbp.SGD(lr=0.3, momentum=0.9, nesterov=True),
            epochs=40, batch_size=8, shuffle=False, ema=0.7, n_threads=1,
            callbacks=[lambda epoch, history, network: held.append(network.copy())])
    est = MLPRegressor(hidden_layer_sizes=(7,), activation="tanh", solver="sgd", batch_size=8,
                       shuffle=False, max_iter=40, alpha=0.0, learning_rate_init=0.3,
                       early_stopping=True, n_iter_no_change=3, tol=0.0, n_threads=1,
                       random_state=0, ema=0.7)
    est.fit(X, Y, validation_data=(X_val, Y_val))
    scores = [r2_score(Y_val, network.predict(X_val)) for network in held[:est.n_iter_]]
    np.testing.assert_allclose(est.validation_scores_, scores, rtol=1e-12)
    best = int(np.argmax(scores))
    assert est.n_iter_ < 40 and best < est.n_iter_ - 1  # stopped, and not at its best
    np.testing.assert_array_equal(est.network_.params, held[best].params)


@pytest.mark.parametrize("decay", [0.9, 0.3])
@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_the_average_is_the_recurrence_over_the_steps_weights(scaled_digits, solver, decay):
    # one epoch of k minibatch steps with ema, against the weights of the same
    # steps taken one partial_fit at a time (no ema), averaged here:
    # e_1 = W_1, e_j = decay e_(j-1) + (1 - decay) W_j
    X, y = scaled_digits[0][:160], scaled_digits[1][:160]
    settings = dict(hidden_layer_sizes=(12,), solver=solver, batch_size=20, shuffle=False,
                    learning_rate_init=0.05, random_state=0)
    averaged = MLPClassifier(max_iter=1, ema=decay, **settings).fit(X, y)
    stepwise = MLPClassifier(**settings)
    steps = []
    for start in range(0, 160, 20):
        stepwise.partial_fit(X[start:start + 20], y[start:start + 20], classes=np.arange(10))
        steps.append(params_of(stepwise))
    expected = steps[0]
    for W in steps[1:]:
        expected = decay * expected + (1 - decay) * W
    np.testing.assert_allclose(params_of(averaged), expected, rtol=1e-12, atol=1e-15)
    # the raw weights trained on apart: the same steps as without the average
    plain = MLPClassifier(max_iter=1, **settings).fit(X, y)
    np.testing.assert_array_equal(params_of(plain), steps[-1])
    assert not np.allclose(params_of(averaged), steps[-1])


def test_partial_fit_carries_one_average_on(scaled_digits):
    # three partial_fit calls train as three epochs of one fit: one average,
    # the raw weights carried from call to call
    X, y = scaled_digits[0][:300], scaled_digits[1][:300]
    settings = dict(hidden_layer_sizes=(16,), shuffle=False, random_state=0, tol=0.0,
                    learning_rate_init=0.01, ema=0.95)
    once = MLPClassifier(max_iter=3, **settings).fit(X, y)
    stepwise = MLPClassifier(**settings)
    for _ in range(3):
        stepwise.partial_fit(X, y, classes=np.arange(10))
    np.testing.assert_array_equal(params_of(stepwise), params_of(once))
    np.testing.assert_array_equal(stepwise.loss_curve_, once.loss_curve_)
    # a warm start carries it on too, as it carries the optimiser state
    twice = MLPClassifier(max_iter=1, warm_start=True, **settings).fit(X, y)
    twice.set_params(max_iter=2).fit(X, y)
    np.testing.assert_array_equal(params_of(twice), params_of(once))
    # a fit without warm start begins again
    again = MLPClassifier(max_iter=3, **settings).fit(X, y).fit(X, y)
    np.testing.assert_array_equal(params_of(again), params_of(once))


def test_weights_set_by_hand_start_a_new_average(scaled_digits):
    # after a write into coefs_ the raw weights of the calls before are not
    # the network's: the next step starts from the written weights, and a new
    # average from its result (one full batch: the average is that step's)
    X, y = scaled_digits[0][:200], scaled_digits[1][:200]
    est = MLPClassifier(hidden_layer_sizes=(8,), shuffle=False, random_state=0,
                        batch_size=200, learning_rate_init=0.01, ema=0.9)
    for _ in range(2):
        est.partial_fit(X, y, classes=np.arange(10))
    est.coefs_[0][...] *= 0.5
    plain = pickle.loads(pickle.dumps(est)).set_params(ema=None)  # same weights and Adam state
    est.partial_fit(X, y)
    plain.partial_fit(X, y)
    np.testing.assert_array_equal(params_of(est), params_of(plain))


def test_a_pickled_estimator_carries_the_average_on(scaled_digits):
    X, y = scaled_digits[0][:200], scaled_digits[1][:200]
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, ema=0.9, max_iter=2).fit(X, y)
    copied = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(params_of(copied.partial_fit(X, y)),
                                  params_of(est.partial_fit(X, y)))


def test_chunks_train_as_the_arrays(scaled_digits):
    # chunks of whole batches, unshuffled: the batches of the arrays, the raw
    # weights and the average carried from chunk to chunk and epoch to epoch
    X, y = scaled_digits[0][:240], scaled_digits[1][:240]
    settings = dict(hidden_layer_sizes=(12,), shuffle=False, batch_size=20, max_iter=3, tol=0.0,
                    random_state=0, learning_rate_init=0.01, ema=0.9)
    arrays = MLPClassifier(**settings).fit(X, y)
    chunks = [(X[i:i + 60], y[i:i + 60]) for i in range(0, 240, 60)]
    chunked = MLPClassifier(**settings).fit(chunks, classes=np.arange(10))
    np.testing.assert_array_equal(params_of(chunked), params_of(arrays))
    plain = MLPClassifier(**{**settings, "ema": None}).fit(chunks, classes=np.arange(10))
    assert not np.allclose(params_of(plain), params_of(chunked))


def test_sparse_x_trains_as_the_dense_x(scaled_digits):
    X, y = scaled_digits[0][:200], scaled_digits[1][:200]
    settings = dict(hidden_layer_sizes=(12,), max_iter=3, random_state=0, ema=0.9)
    dense = MLPClassifier(**settings).fit(X, y)
    sparse = MLPClassifier(**settings).fit(sp.csr_matrix(X), y)
    np.testing.assert_allclose(params_of(sparse), params_of(dense), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("settings, error, match", [
    (dict(solver="lbfgs", ema=0.9), InvalidParameterError, "solver='lbfgs' takes none"),
    (dict(ema=1.0), InvalidParameterError, "'ema' parameter"),
    (dict(ema=0.0), InvalidParameterError, "'ema' parameter"),
    (dict(ema="0.9"), InvalidParameterError, "'ema' parameter"),
])
def test_bad_settings_are_named(scaled_digits, settings, error, match):
    X, y = scaled_digits[0][:50], scaled_digits[1][:50]
    with pytest.raises(error, match=match):
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=1, **settings).fit(X, y)
    assert issubclass(error, ValueError)


def test_scikit_learn_gets_the_averaged_weights(scaled_digits):
    X, y = scaled_digits[0][:200], scaled_digits[1][:200]
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0, ema=0.9, max_iter=2).fit(X, y)
    theirs = est.to_sklearn()
    assert "ema" not in theirs.get_params()
    np.testing.assert_allclose(theirs.predict_proba(X), est.predict_proba(X), rtol=1e-12)
