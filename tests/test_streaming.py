"""Network.fit on chunks (Y=None): data larger than memory, read chunk by chunk."""
import threading
import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp

import fastbp


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 5))
    Y = np.stack([X[:, 0] > 0, X[:, 1] > X[:, 2]], axis=1).astype(float)
    return X, Y


def chunks_of(X, Y, rows):
    return [(X[i:i + rows], Y[i:i + rows]) for i in range(0, len(X), rows)]


def net():
    return fastbp.Network([5, 7, 2], activation="tanh", seed=3)


@pytest.mark.parametrize("make_opt", [lambda: fastbp.SGD(lr=0.2, momentum=0.9),
                                      lambda: fastbp.Adam(lr=0.01)])
def test_chunks_in_order_train_as_the_whole_array(data, make_opt):
    # chunks of whole batches, no shuffling: the very same steps
    X, Y = data
    chunked, whole = net(), net()
    h_chunks = chunked.fit(chunks_of(X, Y, 150), None, optimizer=make_opt(), epochs=3,
                           batch_size=50, shuffle=False)
    h_whole = whole.fit(X, Y, optimizer=make_opt(), epochs=3, batch_size=50, shuffle=False)
    np.testing.assert_array_equal(chunked._params, whole._params)
    np.testing.assert_allclose(h_chunks["loss"], h_whole["loss"], rtol=1e-14)


def test_a_buffer_of_all_rows_shuffles_as_the_whole_array(data):
    X, Y = data
    chunked, whole = net(), net()
    chunked.fit(chunks_of(X, Y, 100), None, epochs=2, batch_size=40, seed=5,
                shuffle_buffer=len(X))
    whole.fit(X, Y, epochs=2, batch_size=40, seed=5)
    np.testing.assert_array_equal(chunked._params, whole._params)


def test_sources_a_list_a_function_and_a_one_shot_generator(data):
    X, Y = data
    results = []
    for source in (chunks_of(X, Y, 200), lambda: iter(chunks_of(X, Y, 200)),
                   fastbp.array_chunks(X, Y, 200)):
        network = net()
        network.fit(source, None, epochs=2, batch_size=20, seed=1)
        results.append(network._params)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    generator = (chunk for chunk in chunks_of(X, Y, 200))
    with pytest.raises(ValueError, match="a generator of chunks can be read once, but epochs=2"):
        net().fit(generator, None, epochs=2)
    net().fit((chunk for chunk in chunks_of(X, Y, 200)), None, epochs=1)


def test_array_chunks_reads_memmaps_and_dask_arrays(tmp_path, data):
    X, Y = data
    path = tmp_path / "X.npy"
    np.save(path, X)
    memmapped = np.load(path, mmap_mode="r")
    assert [x.shape[0] for x, _ in fastbp.array_chunks(memmapped, Y, 250)] == [250, 250, 100]
    reference, from_memmap = net(), net()
    reference.fit(chunks_of(X, Y, 250), None, epochs=1, seed=2)
    from_memmap.fit(fastbp.array_chunks(memmapped, Y, 250), None, epochs=1, seed=2)
    np.testing.assert_array_equal(reference._params, from_memmap._params)
    da = pytest.importorskip("dask.array")
    from_dask = net()
    from_dask.fit(fastbp.array_chunks(da.from_array(X, chunks=100), Y, 250), None, epochs=1,
                  seed=2)
    np.testing.assert_array_equal(reference._params, from_dask._params)


def test_malformed_chunks_are_named(data):
    X, Y = data
    good = chunks_of(X, Y, 100)
    cases = [
        (good[:2] + [(X[:10, :4], Y[:10])], ValueError,
         "chunk 3 of epoch 1: X has 4 columns, the network expects 5"),
        (good[:1] + [(np.where(np.eye(10, 5) > 0, np.nan, 0.0), Y[:10])], ValueError,
         r"chunk 2 of epoch 1: X contains 5 NaN or infinite value\(s\), first at \[0, 0\]"),
        (good[:1] + [(X[:10], Y[:9])], ValueError, "chunk 2 of epoch 1: X has 10 rows but Y has 9"),
        (good[:1] + [(np.full((3, 5), "a"), Y[:3])], TypeError, "chunk 2 of epoch 1: X"),
        (good[:1] + [X[:3]], TypeError, "chunk 2 of epoch 1: a chunk must be an"),
    ]
    for chunks, error, message in cases:
        with pytest.raises(error, match=message):
            net().fit(chunks, None)
    with pytest.raises(TypeError, match="with Y=None, X must be the chunks"):
        net().fit(42, None)
    with pytest.raises(TypeError, match=r"Y is None but X is an array of shape \(600, 5\)"):
        net().fit(X, None)
    with pytest.raises(ValueError, match="give the weights in each chunk"):
        net().fit(good, None, sample_weight=np.ones(600))
    with pytest.raises(ValueError, match="shuffle_buffer applies to chunks"):
        net().fit(X, Y, shuffle_buffer=10)


def test_the_next_chunk_is_read_in_another_thread(data):
    X, Y = data
    readers = []

    def source():
        for chunk in chunks_of(X, Y, 200):
            readers.append(threading.current_thread().name)
            yield chunk

    net().fit(source, None, epochs=2)
    assert len(readers) == 6 and all(name.startswith("fastbp-chunks") for name in readers)


def test_memory_holds_a_chunk_not_the_data():
    # 40 chunks of 4 MB: 160 MB in all, never held at once
    rows, width = 10_000, 50

    def source():
        rng = np.random.default_rng(0)
        for _ in range(40):
            X = rng.normal(size=(rows, width))
            yield X, (X[:, :1] > 0).astype(float)

    network = fastbp.Network([width, 8, 1], seed=0)
    tracemalloc.start()
    try:
        network.fit(source, None, epochs=1, batch_size=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 6 * rows * width * 8  # a few chunks' worth (one training, one read ahead)


def test_validation_callbacks_early_stopping_and_weights_with_chunks(data):
    X, Y = data
    seen = []
    network = net()
    history = network.fit(
        [(x, y, np.ones(len(x))) for x, y in chunks_of(X[:500], Y[:500], 100)], None,
        epochs=30, optimizer=fastbp.SGD(lr=0.5), validation_data=(X[500:], Y[500:]),
        early_stopping=fastbp.EarlyStopping(patience=2),
        callbacks=[lambda epoch, h, n: seen.append(epoch)])
    assert len(history["val_loss"]) == len(history["loss"]) == len(seen) <= 30
    assert network.loss(X[500:], Y[500:]) == pytest.approx(min(history["val_loss"]), rel=1e-12)


def test_sparse_chunks_join_in_a_buffer(data):
    X, Y = data
    X = np.where(np.abs(X) > 1, X, 0.0)
    dense, sparse = net(), net()
    dense.fit(chunks_of(X, Y, 150), None, epochs=2, seed=4, shuffle_buffer=300)
    sparse.fit([(sp.csr_matrix(x), y) for x, y in chunks_of(X, Y, 150)], None, epochs=2,
               seed=4, shuffle_buffer=300)
    np.testing.assert_allclose(sparse._params, dense._params, rtol=0, atol=1e-12)


def test_class_labels_in_chunks(data):
    X, _ = data
    labels = np.where(X[:, 0] > 0, "up", "down")
    network = fastbp.Network([5, 4, 2], output_activation="softmax", seed=0)
    network.fit([(X[:300], labels[:300]), (X[300:], labels[300:])], None,
                loss="cross_entropy", epochs=5)
    assert list(network.classes_) == ["down", "up"]
    assert network.score(X, labels) > 0.8


def test_a_plateau_lowers_an_adaptive_rate_as_for_arrays(data):
    # the epoch's end is the arrays' one (fastbp._session.Session)
    X, Y = data
    histories = []
    for source, targets in ((chunks_of(X, Y, 150), None), (X, Y)):
        histories.append(net().fit(
            source, targets, optimizer=fastbp.SGD(lr=2.0, schedule="adaptive"), epochs=25,
            batch_size=50, shuffle=False,
            early_stopping=fastbp.EarlyStopping(patience=1, min_delta=0.5)))
    assert histories[0]["lr"] == histories[1]["lr"]
    assert min(histories[0]["lr"]) < 2.0  # the plateau lowered it at least once
    np.testing.assert_allclose(histories[0]["loss"], histories[1]["loss"], rtol=1e-13)
