"""MLPClassifier/MLPRegressor.fit on chunks (y=None): data larger than memory."""
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

import fastbp

CLASSES = np.array(["cat", "dog", "eel"])


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(800, 6))
    labels = CLASSES[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)]
    target = X[:, :2] @ np.array([1.5, -2.0]) + 0.1 * rng.normal(size=800)
    return X, labels, target


def chunks_of(*arrays, rows):
    return [tuple(a[i:i + rows] for a in arrays) for i in range(0, len(arrays[0]), rows)]


def assert_same_fit(chunked, whole):
    assert chunked.n_iter_ == whole.n_iter_
    assert chunked.t_ == whole.t_
    # the epoch loss is a mean of the chunks' means: equal to rounding
    np.testing.assert_allclose(chunked.loss_curve_, whole.loss_curve_, rtol=1e-13)
    for a, b in zip(chunked.coefs_ + chunked.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_chunks_of_whole_batches_in_order_train_as_the_array(data, solver):
    X, labels, target = data
    kwargs = dict(hidden_layer_sizes=(9,), solver=solver, batch_size=50, shuffle=False,
                  random_state=0, max_iter=300, learning_rate_init=0.01)
    # max_iter=300 is not reached: tol and n_iter_no_change stop both fits at the same epoch
    chunked = fastbp.MLPClassifier(**kwargs).fit(chunks_of(X, labels, rows=200))
    whole = fastbp.MLPClassifier(**kwargs).fit(X, labels)
    assert whole.n_iter_ < 300
    assert_same_fit(chunked, whole)
    np.testing.assert_array_equal(chunked.classes_, CLASSES)
    chunked = fastbp.MLPRegressor(**kwargs).fit(chunks_of(X, target, rows=100))
    whole = fastbp.MLPRegressor(**kwargs).fit(X, target)
    assert_same_fit(chunked, whole)


def test_a_shuffle_buffer_joins_chunks_that_split_batches(data):
    X, labels, target = data
    kwargs = dict(hidden_layer_sizes=(6,), batch_size=50, shuffle=False, random_state=0,
                  max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # chunks of 130 rows cut batches of 50; a buffer of all rows trains as the array
        joined = fastbp.MLPRegressor(**kwargs).fit(chunks_of(X, target, rows=130),
                                                   shuffle_buffer=len(X))
        whole = fastbp.MLPRegressor(**kwargs).fit(X, target)
        apart = fastbp.MLPRegressor(**kwargs).fit(chunks_of(X, target, rows=130))
    assert_same_fit(joined, whole)
    assert not np.array_equal(apart.coefs_[0], whole.coefs_[0])
    for bad in (0, 2.5, "all"):
        with pytest.raises(ValueError, match="shuffle_buffer must be an integer >= 1"):
            fastbp.MLPClassifier(**kwargs).fit(chunks_of(X, labels, rows=130), shuffle_buffer=bad)
    with pytest.raises(ValueError, match="shuffle_buffer applies to chunks"):
        fastbp.MLPRegressor(**kwargs).fit(X, target, shuffle_buffer=100)


def test_weights_in_the_chunks_act_as_sample_weight(data):
    X, labels, _ = data
    weights = np.random.default_rng(2).uniform(0.5, 2, size=len(X))
    kwargs = dict(hidden_layer_sizes=(5,), batch_size=100, shuffle=False, random_state=0,
                  max_iter=4, class_weight={"cat": 2.0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chunked = fastbp.MLPClassifier(**kwargs).fit(chunks_of(X, labels, weights, rows=200))
        whole = fastbp.MLPClassifier(**kwargs).fit(X, labels, sample_weight=weights)
    assert_same_fit(chunked, whole)


def test_classes_come_from_a_pass_over_the_labels_or_from_classes(data):
    X, labels, _ = data
    order = np.argsort(labels, kind="stable")  # the first chunk holds only "cat"
    chunks = chunks_of(X[order], labels[order], rows=200)
    assert set(chunks[0][1]) == {"cat"}
    kwargs = dict(hidden_layer_sizes=(5,), random_state=0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        read = fastbp.MLPClassifier(**kwargs).fit(chunks)
        np.testing.assert_array_equal(read.classes_, CLASSES)
        assert read.predict_proba(X).shape == (len(X), 3)
        # a one-shot generator cannot be read twice: classes= saves the label pass
        given = fastbp.MLPClassifier(**{**kwargs, "max_iter": 1}).fit(
            (c for c in chunks), classes=CLASSES)
    np.testing.assert_array_equal(given.classes_, CLASSES)
    assert given.n_iter_ == 1 and given.t_ == len(X)
    with pytest.raises(ValueError, match=r"chunk 1 of epoch 1: `y` has classes not in"):
        fastbp.MLPClassifier(**kwargs).fit(chunks, classes=["dog", "eel"])
    for bad in ("cat", [], [["cat", "dog"]]):
        with pytest.raises(ValueError, match="classes must be a 1-D array of at least one"):
            fastbp.MLPClassifier(**kwargs).fit(chunks, classes=bad)
    with pytest.raises(ValueError, match="classes and shuffle_buffer apply to chunks"):
        fastbp.MLPClassifier(**kwargs).fit(X, labels, classes=CLASSES)


def test_multilabel_chunks(data):
    X, _, _ = data
    Y = np.stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 2] > 1], axis=1).astype(int)
    kwargs = dict(hidden_layer_sizes=(8,), random_state=0, max_iter=5, shuffle=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chunked = fastbp.MLPClassifier(**kwargs).fit(chunks_of(X, Y, rows=200))
        whole = fastbp.MLPClassifier(**kwargs).fit(X, Y)
    np.testing.assert_array_equal(chunked.classes_, [0, 1, 2])
    assert chunked.predict(X).shape == Y.shape
    assert_same_fit(chunked, whole)


def test_warm_start_continues_over_chunks_holding_some_classes(data):
    X, labels, _ = data
    clf = fastbp.MLPClassifier((5,), random_state=0, max_iter=1, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(chunks_of(X, labels, rows=200))
        first = [c.copy() for c in clf.coefs_]
        keep = labels != "eel"
        clf.fit(chunks_of(X[keep], labels[keep], rows=200))
    np.testing.assert_array_equal(clf.classes_, CLASSES)
    assert clf.t_ == len(X) + keep.sum()
    assert not np.array_equal(first[0], clf.coefs_[0])
    with pytest.raises(ValueError, match="classes applies to the first fit only"):
        clf.fit(chunks_of(X, labels, rows=200), classes=CLASSES)


def test_memmapped_data_through_array_chunks(tmp_path, data):
    X, _, target = data
    np.save(tmp_path / "X.npy", X.astype(np.float32))
    memmapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    kwargs = dict(hidden_layer_sizes=(7,), random_state=0, max_iter=3, batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        chunked = fastbp.MLPRegressor(**kwargs).fit(fastbp.array_chunks(memmapped, target, 256))
        whole = fastbp.MLPRegressor(**kwargs).fit(np.asarray(memmapped), target)
    assert chunked.coefs_[0].dtype == np.float32
    # the chunks are shuffled each on its own: not the same steps, the same quality
    assert chunked.score(X, target) == pytest.approx(whole.score(X, target), abs=0.1)


def test_dataframe_chunks_keep_feature_names(data):
    pd = pytest.importorskip("pandas")
    X, labels, _ = data
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = fastbp.MLPClassifier((5,), random_state=0, max_iter=2).fit(
            [(frame.iloc[i:i + 400], labels[i:i + 400]) for i in (0, 400)])
    np.testing.assert_array_equal(clf.feature_names_in_, frame.columns)
    bad = [(frame.iloc[:400], labels[:400]), (frame.iloc[400:, ::-1], labels[400:])]
    with pytest.raises(ValueError, match="chunk 2 of epoch 1: The feature names should match"):
        fastbp.MLPClassifier((5,), random_state=0, max_iter=2).fit(bad)


@pytest.mark.parametrize("params, fit_kwargs, message", [
    ({"early_stopping": True}, {}, "early_stopping holds out validation_fraction"),
    ({"solver": "lbfgs"}, {}, "solver='lbfgs' steps on all rows at once"),
    ({"class_weight": "balanced"}, {}, "class_weight='balanced' needs the class counts"),
    ({}, {"sample_weight": np.ones(800)}, "give the weights in each chunk"),
])
def test_settings_chunks_cannot_serve_are_refused(data, params, fit_kwargs, message):
    X, labels, _ = data
    clf = fastbp.MLPClassifier((5,), **params)
    with pytest.raises(ValueError, match=message):
        clf.fit(chunks_of(X, labels, rows=200), **fit_kwargs)
    assert not hasattr(clf, "coefs_")


def test_lbfgs_on_chunks_is_told_every_solver_that_takes_them(data):
    X, labels, _ = data
    with pytest.raises(ValueError) as caught:
        fastbp.MLPClassifier((5,), solver="lbfgs").fit(chunks_of(X, labels, rows=200))
    for solver in ("sgd", "adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop"):
        assert repr(solver) in str(caught.value)
    assert "'lbfgs'" not in str(caught.value).split(";")[1]


def test_malformed_chunks_are_named(data):
    X, _, target = data
    good = chunks_of(X, target, rows=200)
    cases = [
        (good[:2] + [(X[:10, :4], target[:10])], ValueError,
         "chunk 3 of epoch 1: X has 4 features, but MLPRegressor is expecting 6"),
        (good[:1] + [(np.where(X[:10] > 2, np.nan, X[:10]), target[:10])], ValueError,
         "chunk 2 of epoch 1: Input X contains NaN"),
        (good[:1] + [(X[:10], target[:9])], ValueError, "chunk 2 of epoch 1: Found input"),
        (good[:1] + [X[:3]], TypeError, "chunk 2 of epoch 1: a chunk must be an"),
        (lambda: iter([]), ValueError, "the chunks hold no rows"),
        (lambda: iter([X[:3]]), TypeError, "chunk 1 of epoch 1: a chunk must be an"),
    ]
    for chunks, error, message in cases:
        with pytest.raises(error, match=message):
            fastbp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(chunks)
    with pytest.raises(ValueError, match="a generator of chunks can be read once, but epochs=2"):
        fastbp.MLPRegressor(hidden_layer_sizes=(5,), max_iter=2).fit(c for c in good)


def test_an_array_without_y_is_still_an_error(data):
    X, _, _ = data
    for estimator in (fastbp.MLPClassifier(), fastbp.MLPRegressor()):
        with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
            estimator.fit(X)
        with pytest.raises(ValueError, match="requires y to be passed"):
            estimator.fit(X.tolist())  # a list of rows is an array, not chunks
