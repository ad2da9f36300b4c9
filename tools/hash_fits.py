"""Hash the weights after fit on every training path, to prove a refactor kept the bits.

    python tools/hash_fits.py > before.txt   # with the base commit installed
    python tools/hash_fits.py > after.txt    # with the change installed
    diff before.txt after.txt                # must print nothing (Dask lbfgs aside)

Uses only public API (Network, optimisers, estimators, fastbp.dask) so it runs on both sides.
Each line is a path and the first 20 hex digits of the SHA-256 of its weights and biases:
SGD, momentum, Nesterov, both Adam flavours, per-sample SGD and momentum, l2 with a
schedule, fastbp's two training threads (row and column splits), sparse and chunked
input, validation with early stopping, sample weights (float64 and float32), and the
estimators (sgd, adam, lbfgs, partial_fit, sparse lbfgs) and DaskMLPClassifier's lbfgs
where scikit-learn and dask are installed. Digests depend on the CPU's kernels (AVX-512
or not): compare two builds on one machine. DaskMLPClassifier lbfgs takes one of two
digests from run to run (the order of its tree sum); Dask adam/sgd average local epochs
in the order workers finish and are not hashed.
"""
import hashlib
import sys
import warnings

import numpy as np
import scipy.sparse as sp

import fastbp

warnings.simplefilter("ignore")  # short fits warn that they did not converge


def digest(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:20]


def net_digest(net) -> str:
    return digest(list(net.weights) + list(net.biases))


def estimator_digest(est) -> str:
    return digest(list(est.coefs_) + list(est.intercepts_))


rng = np.random.default_rng(0)
X, y = fastbp.load_digits(one_hot=False)
X32 = X.astype(np.float32)
Y = np.eye(10)[y]
big_X = rng.normal(size=(3000, 300))
big_y = rng.integers(0, 5, size=3000)
rows = []


def run(name, make):
    try:
        rows.append((name, make()))
    except Exception as exc:  # a path that does not exist on one side still shows
        rows.append((name, f"ERROR {type(exc).__name__}: {exc}"[:120]))


for dtype in ("float64", "float32"):
    def network(sizes=(64, 32, 10), act="tanh", out="softmax"):
        return fastbp.Network(list(sizes), activation=act, output_activation=out, dtype=dtype,
                              seed=1)

    def fit(optimizer, batch_size=32, n_threads=1, epochs=3, data=(X, Y), **kw):
        net = network(**kw.pop("net", {}))
        net.fit(*data, loss="cross_entropy", optimizer=optimizer, epochs=epochs,
                batch_size=batch_size, seed=2, n_threads=n_threads, **kw)
        return net_digest(net)

    run(f"{dtype} sgd", lambda: fit(fastbp.SGD(lr=0.1)))
    run(f"{dtype} momentum", lambda: fit(fastbp.SGD(lr=0.05, momentum=0.9)))
    run(f"{dtype} nesterov", lambda: fit(fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True)))
    run(f"{dtype} adam sklearn", lambda: fit(fastbp.Adam(lr=0.01)))
    run(f"{dtype} adam torch", lambda: fit(fastbp.Adam(lr=0.01, flavor="torch")))
    run(f"{dtype} per-sample sgd", lambda: fit(fastbp.SGD(lr=0.05), batch_size=1))
    run(f"{dtype} per-sample momentum",
        lambda: fit(fastbp.SGD(lr=0.02, momentum=0.5), batch_size=1))
    run(f"{dtype} l2 + schedule", lambda: fit(
        fastbp.SGD(lr=0.1, schedule=fastbp.optim.StepDecay(1, 0.5)), l2=0.01))
    run(f"{dtype} threaded 2 big batch", lambda: fit(
        fastbp.Adam(lr=0.001), batch_size=512, n_threads=2, epochs=2,
        data=(big_X, big_y), net={"sizes": (300, 256, 128, 5), "act": "relu"}))
    run(f"{dtype} threaded 2 batch 32 (column split)", lambda: fit(
        fastbp.SGD(lr=0.01, momentum=0.9), batch_size=32, n_threads=2, epochs=1,
        data=(big_X, big_y), net={"sizes": (300, 256, 256, 5), "act": "relu"}))
    run(f"{dtype} sparse", lambda: fit(fastbp.Adam(lr=0.01), data=(sp.csr_matrix(X), Y)))
    run(f"{dtype} chunked", lambda: fit(
        fastbp.SGD(lr=0.1), data=(fastbp.array_chunks(X, Y, chunk_rows=320), None),
        shuffle=False))
    run(f"{dtype} validation + early stopping", lambda: fit(
        fastbp.Adam(lr=0.01), epochs=8, validation_split=0.2,
        early_stopping=fastbp.EarlyStopping(patience=2)))
    run(f"{dtype} sample_weight", lambda: fit(
        fastbp.SGD(lr=0.1), sample_weight=np.linspace(0.5, 2.0, len(X))))

try:
    from fastbp import MLPClassifier, MLPRegressor

    for solver in ("sgd", "adam", "lbfgs"):
        for data, tag in ((X, "float64"), (X32, "float32")):
            run(f"MLPClassifier {solver} {tag}", lambda: estimator_digest(MLPClassifier(
                hidden_layer_sizes=(32,), solver=solver, max_iter=15, random_state=0,
                tol=0).fit(data, y)))
    run("MLPRegressor adam early_stopping", lambda: estimator_digest(MLPRegressor(
        hidden_layer_sizes=(16,), max_iter=20, early_stopping=True, random_state=0).fit(
        X, y.astype(float))))
    run("MLPClassifier partial_fit", lambda: estimator_digest(MLPClassifier(
        hidden_layer_sizes=(16,), random_state=0).partial_fit(X[:500], y[:500],
                                                               classes=np.arange(10))))
    run("MLPClassifier sparse lbfgs", lambda: estimator_digest(MLPClassifier(
        hidden_layer_sizes=(16,), solver="lbfgs", max_iter=20, random_state=0).fit(
        sp.csr_matrix(X), y)))
except ImportError as exc:
    print("no estimators:", exc, file=sys.stderr)

try:
    import dask.array as da
    from distributed import Client, LocalCluster

    from fastbp.dask import DaskMLPClassifier

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster):
        Xd, yd = da.from_array(X, chunks=600), da.from_array(y, chunks=600)
        # adam's local epochs are averaged in the order workers finish: not reproducible run
        # to run, so only lbfgs (an exact tree sum) is hashed
        for solver in ("lbfgs",):
            run(f"DaskMLPClassifier {solver}", lambda: estimator_digest(DaskMLPClassifier(
                hidden_layer_sizes=(16,), solver=solver, max_iter=10, random_state=0).fit(
                Xd, yd)))
except ImportError as exc:
    print("no dask:", exc, file=sys.stderr)

for name, value in rows:
    print(f"{name:45s} {value}")
