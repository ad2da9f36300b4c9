"""compute_dtype="bfloat16" through the scikit-learn estimators, the Dask
estimators and ``fastbp train``: each builds the float32 network with
bfloat16 products that :class:`fastbp.Network` documents (its own products are
checked against a NumPy emulation in tests/test_compute_dtype.py), and refuses
what it cannot do with a clear error."""
import re

import numpy as np
import pytest
from sklearn.utils._param_validation import InvalidParameterError

import fastbp
from fastbp import MLPClassifier, MLPRegressor

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture
def digits(scaled_digits):
    return tuple(part[:400] for part in scaled_digits)


def params_of(estimator):
    return np.concatenate([W.ravel() for W in estimator.coefs_ + estimator.intercepts_])


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_classifier_trains_a_float32_network_with_bfloat16_products(digits, solver):
    X, y = digits
    options = dict(hidden_layer_sizes=(24,), solver=solver, max_iter=3, random_state=0)
    mixed = MLPClassifier(compute_dtype="bfloat16", **options).fit(X, y)  # float64 X
    assert mixed.network_.dtype == np.float32
    assert mixed.network_.compute_dtype == "bfloat16"
    assert all(W.dtype == np.float32 for W in mixed.coefs_)
    # the same fit in float32 products: same start and steps, other roundings
    plain = MLPClassifier(**options).fit(X.astype(np.float32), y)
    assert plain.network_.compute_dtype == "float32"
    difference = np.abs(params_of(mixed) - params_of(plain)).max()
    assert 0 < difference < 0.05 * np.abs(params_of(plain)).max()
    assert abs(mixed.score(X, y) - plain.score(X, y)) < 0.03


def test_regressor_and_clone_keep_the_parameter(digits):
    from sklearn.base import clone

    X, y = digits
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=2, random_state=0,
                       compute_dtype="bfloat16")
    assert clone(reg).get_params()["compute_dtype"] == "bfloat16"
    reg.fit(X, y.astype(float))
    assert reg.network_.compute_dtype == "bfloat16"
    assert reg.to_sklearn().predict(X[:5]).shape == (5,)


@pytest.mark.parametrize("estimator,match", [
    (MLPClassifier(compute_dtype="float16"), "compute_dtype"),
    (MLPClassifier(compute_dtype="bfloat16", solver="lbfgs"), "solver='lbfgs'"),
])
def test_estimators_refuse_what_they_cannot_do(digits, estimator, match):
    X, y = digits
    with pytest.raises(InvalidParameterError, match=re.escape(match)):
        estimator.fit(X, y)


def test_a_warm_start_cannot_switch_the_products(digits):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    clf.set_params(warm_start=True, compute_dtype="bfloat16")
    with pytest.raises(ValueError, match="use warm_start=False"):
        clf.fit(X, y)


def test_dask_classifier_trains_with_bfloat16_products(digits):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("distributed")
    from fastbp.dask import DaskMLPClassifier
    from helpers import local_dask_client

    X, y = digits
    fixture = local_dask_client(60)
    client = next(fixture)
    models = {}
    try:
        for compute, data in ((None, X.astype(np.float32)), ("bfloat16", X)):
            model = DaskMLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0,
                                      compute_dtype=compute, client=client)
            models[compute] = model.fit(da.from_array(data, chunks=(200, X.shape[1])),
                                        da.from_array(y, chunks=200)).to_local()
    finally:
        next(fixture, None)
    mixed, plain = models["bfloat16"], models[None]
    assert mixed.network_.compute_dtype == "bfloat16"
    assert all(W.dtype == np.float32 for W in mixed.coefs_)
    # the same rounds in float32 products: close, not equal
    difference = np.abs(params_of(mixed) - params_of(plain)).max()
    assert 0 < difference < 0.05 * np.abs(params_of(plain)).max()


# -- fastbp train --------------------------------------------------------------

PLAIN = ("--test-fraction", 0, "--no-early-stopping", "--no-standardize", "--threads", 1)


def cli(capsys, *args):
    """``fastbp ARGS`` in this process; (exit code, stdout, stderr)."""
    from fastbp.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def classes_npz(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 4))
    y = (X[:, 0] + X[:, 1] ** 2 > 0.8).astype(int) + (X[:, 2] > 0.7)
    path = tmp_path / "classes.npz"
    np.savez(path, a=X[:, 0], b=X[:, 1], c=X[:, 2], d=X[:, 3], y=y)
    return path, X, np.eye(3)[y]


def test_cli_trains_what_network_fit_trains(capsys, tmp_path, classes_npz):
    path, X, Y = classes_npz
    code, out, err = cli(capsys, "train", path, "--target", "y", "--hidden", 8, "--epochs", 4,
                         *PLAIN, "--dtype", "float32", "--compute-dtype", "bfloat16",
                         "--optimizer", "adam", "--lr", 0.01, "--save", tmp_path / "m.npz")
    assert code == 0, err
    saved = fastbp.load(tmp_path / "m.npz")
    assert saved.compute_dtype == "bfloat16"
    # the command line's fit, by Network.fit: rows in default_rng(seed)'s order
    order = np.random.default_rng(0).permutation(len(X))
    net = fastbp.Network([4, 8, 3], activation="tanh", output_activation="softmax", seed=0,
                         dtype="float32", compute_dtype="bfloat16")
    net.fit(X[order], Y[order], loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), epochs=4,
            batch_size=32, shuffle=True, seed=0, n_threads=1)
    np.testing.assert_array_equal(saved.params, net.params)


@pytest.mark.parametrize("args,phrase", [
    (("--compute-dtype", "bfloat16"), "needs --dtype float32"),
    (("--dtype", "float32", "--compute-dtype", "bfloat16", "--optimizer", "lbfgs"),
     "--optimizer lbfgs"),
])
def test_cli_refuses_what_it_cannot_do(capsys, classes_npz, args, phrase):
    path, _, _ = classes_npz
    code, out, err = cli(capsys, "train", path, "--target", "y", *PLAIN, *args)
    assert code == 2 and phrase in err, (code, err)
