"""Hash the weights after fit on every training path, to prove a refactor kept the bits.

    python tools/hash_fits.py > before.txt   # with the base commit installed
    python tools/hash_fits.py > after.txt    # with the change installed
    diff before.txt after.txt                # must print nothing (Dask lbfgs aside)

Uses only public API (Network, optimisers, losses, callbacks, estimators, fastbp.dask) so
it runs on both sides; a path an older build lacks prints ERROR on its line. Each line is
a path and the first 20 hex digits of the SHA-256 of its weights and biases.

Network.fit, in float64 and float32 (each fit a few epochs of load_digits or smaller):
- optimisers: SGD (plain, momentum, Nesterov, weight_decay), Adam and AdamW (both
  flavours), RMSprop (plain, momentum, centered, both), Adagrad (also lr_decay and an
  initial accumulator), NAdam, Rprop (full batch; minibatch with l2), LBFGS (also l2);
  there is no Adamax;
- per-sample SGD and momentum (also dropout, clip_norm, elu, huber; Adam with l2);
- regularisers and averages: l2, dropout (one rate, per-layer rates), clip_norm, ema;
- losses: cross_entropy (also label smoothing), mse, bce, huber (two deltas),
  absolute_error; every hidden activation, one per layer, a softplus output;
- schedules: StepDecay, warm-up then cosine, OneCycle (cos; linear three-phase),
  cosine warm restarts, exponential, InvScaling, ReduceLROnPlateau, Adaptive with early
  stopping; validation with early stopping; sample weights; sparse and chunked input;
- threads: fastbp's own threads (row and column splits; a mid net with momentum; Adam
  with dropout), the lean path (batches of 1, 4, 16 on 1 and 2 threads), per-sample fits
  of a 1024-1024-4 net (>= 2**20 weights, so on 2 threads the per-sample team runs;
  plain, l2, momentum), which must give the bits of 1 thread;
- XOR 2-2-1 per-sample for 2000 epochs (SGD, momentum; shuffle on, off) and a 300-epoch
  minibatch fit: whole fits in one run_epochs call (epoch blocks in C);
- a fit resumed from a ModelCheckpoint written after its first epoch, and the
  uninterrupted fit, which must have its digest;
- small fits take the lean path (one kernel call); a few again with a callback that does
  nothing (the full path, epoch by epoch: each must match its lean line), a lean refit
  that reuses the network's kept trainer, and fit's default optimiser.
compute_dtype="bfloat16" (float32 weights): SGD and Adam, batches of 1 and 128, on 1 and
2 threads (its pieces do not depend on the thread count: 1 and 2 give one digest).
Estimators: sgd, adam, lbfgs (float64, float32), adamw, rmsprop, adagrad, nadam, rprop,
dropout, weight_decay, adamw with ema and clip_norm, bfloat16, partial_fit, sparse lbfgs,
an MLPRegressor with early stopping and one with rmsprop; DaskMLPClassifier's lbfgs
where scikit-learn and dask are installed.

Digests depend on the CPU's kernels (AVX-512 or not): compare two builds on one machine.
Lines whose fit leaves n_threads at None (the first estimator lines: lbfgs) use the
process's cores: OMP_NUM_THREADS=1 changes their digests, so run both sides in the same
environment. DaskMLPClassifier lbfgs takes one of two digests from run to run (the order
of its tree sum); Dask adam/sgd average local epochs in the order workers finish and are
not hashed. Everything else is the same from run to run (checked: 4 runs, 2 of them at
once, on 2 cores). About 10 s of CPU.
"""
import os
import sys
import tempfile
import warnings

import numpy as np
import scipy.sparse as sp

import fastbp
from digests import digest, net_digest

warnings.simplefilter("ignore")  # short fits warn that they did not converge


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
    def network(sizes=(64, 32, 10), act="tanh", out="softmax", dropout=None):
        return fastbp.Network(list(sizes), activation=act, output_activation=out, dtype=dtype,
                              seed=1, **({} if dropout is None else {"dropout": dropout}))

    def fit(optimizer, batch_size=32, n_threads=1, epochs=3, data=(X, Y),
            loss="cross_entropy", **kw):
        net = network(**kw.pop("net", {}))
        net.fit(*data, loss=loss, optimizer=optimizer, epochs=epochs,
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

    # the other optimisers
    opt = fastbp.optim
    run(f"{dtype} sgd weight_decay", lambda: fit(fastbp.SGD(lr=0.1, weight_decay=0.01)))
    run(f"{dtype} momentum weight_decay",
        lambda: fit(fastbp.SGD(lr=0.05, momentum=0.9, weight_decay=0.01)))
    run(f"{dtype} adamw torch", lambda: fit(opt.AdamW(lr=0.01)))
    run(f"{dtype} adamw sklearn", lambda: fit(opt.AdamW(lr=0.01, flavor="sklearn")))
    run(f"{dtype} rmsprop", lambda: fit(opt.RMSprop(lr=0.001)))
    run(f"{dtype} rmsprop momentum", lambda: fit(opt.RMSprop(lr=0.001, momentum=0.9)))
    run(f"{dtype} rmsprop centered", lambda: fit(opt.RMSprop(lr=0.001, centered=True)))
    run(f"{dtype} rmsprop centered momentum",
        lambda: fit(opt.RMSprop(lr=0.001, momentum=0.5, centered=True)))
    run(f"{dtype} adagrad", lambda: fit(opt.Adagrad(lr=0.05)))
    run(f"{dtype} adagrad lr_decay",
        lambda: fit(opt.Adagrad(lr=0.05, lr_decay=0.01, initial_accumulator_value=0.1)))
    run(f"{dtype} nadam", lambda: fit(opt.NAdam(lr=0.005)))
    run(f"{dtype} rprop full batch", lambda: fit(opt.Rprop(lr=0.01), batch_size=len(X),
                                                  epochs=15))
    run(f"{dtype} rprop minibatch + l2", lambda: fit(opt.Rprop(lr=0.01), batch_size=256,
                                                      l2=0.01))
    run(f"{dtype} lbfgs", lambda: fit(opt.LBFGS(), epochs=15))
    run(f"{dtype} lbfgs l2", lambda: fit(opt.LBFGS(), epochs=15, l2=0.1))
    run(f"{dtype} adam l2 per-sample", lambda: fit(fastbp.Adam(lr=0.001), batch_size=1,
                                                    epochs=1, l2=0.01))

    # regularisers, averages, losses
    run(f"{dtype} dropout 0.2", lambda: fit(fastbp.SGD(lr=0.1), net={"dropout": 0.2}))
    run(f"{dtype} dropout per layer adam", lambda: fit(
        fastbp.Adam(lr=0.01), net={"sizes": (64, 48, 32, 10), "dropout": (0.1, 0.3)}))
    run(f"{dtype} dropout per-sample", lambda: fit(
        fastbp.SGD(lr=0.02), batch_size=1, epochs=1, net={"dropout": 0.1}))
    run(f"{dtype} clip_norm sgd", lambda: fit(fastbp.SGD(lr=0.5), clip_norm=0.5))
    run(f"{dtype} clip_norm per-sample", lambda: fit(fastbp.SGD(lr=0.05), batch_size=1,
                                                      epochs=1, clip_norm=0.5))
    run(f"{dtype} clip_norm adam", lambda: fit(fastbp.Adam(lr=0.01), clip_norm=1.0))
    run(f"{dtype} ema", lambda: fit(fastbp.SGD(lr=0.1), ema=0.9))
    run(f"{dtype} ema adam + validation", lambda: fit(
        fastbp.Adam(lr=0.01), ema=0.99, validation_split=0.2))
    run(f"{dtype} label smoothing", lambda: fit(
        fastbp.Adam(lr=0.01), loss=fastbp.CrossEntropyLoss(label_smoothing=0.1)))

    def fit_loss(loss, optimizer=None, act="tanh", out="identity", **kw):
        net = network(act=act, out=out)
        net.fit(X, Y, loss=loss, optimizer=optimizer or fastbp.SGD(lr=0.05), epochs=3,
                batch_size=32, seed=2, n_threads=1, **kw)
        return net_digest(net)

    run(f"{dtype} mse", lambda: fit_loss("mse"))
    run(f"{dtype} bce sigmoid", lambda: fit_loss("bce", out="sigmoid"))
    run(f"{dtype} huber", lambda: fit_loss("huber"))
    run(f"{dtype} huber delta 0.2", lambda: fit_loss(fastbp.HuberLoss(delta=0.2)))
    run(f"{dtype} absolute_error", lambda: fit_loss("absolute_error"))
    def _per_sample_loss(loss):
        net = network(out="identity")
        net.fit(X, Y, loss=loss, optimizer=fastbp.SGD(lr=0.01), epochs=1, batch_size=1,
                seed=2, n_threads=1)
        return net_digest(net)

    run(f"{dtype} huber per-sample", lambda: _per_sample_loss("huber"))
    for act in ("sigmoid", "relu", "identity", "leaky_relu", "elu", "gelu", "silu",
                "softplus", "softsign", "elliot"):
        run(f"{dtype} activation {act}", lambda: fit(fastbp.Adam(lr=0.01), net={"act": act}))
    run(f"{dtype} activation per layer", lambda: fit(
        fastbp.SGD(lr=0.1), net={"sizes": (64, 32, 16, 10), "act": ["gelu", "elliot"]}))
    run(f"{dtype} activation softplus output", lambda: fit_loss("mse", out="softplus"))
    run(f"{dtype} activation per-sample elu", lambda: fit(
        fastbp.SGD(lr=0.02), batch_size=1, epochs=1, net={"act": "elu"}))

    # schedules
    run(f"{dtype} warm-up + cosine", lambda: fit(fastbp.SGD(lr=0.1, schedule=opt.LinearWarmup(
        2, then=opt.CosineDecay(6))), epochs=6))
    run(f"{dtype} onecycle", lambda: fit(fastbp.SGD(lr=0.1, momentum=0.9,
                                                    schedule=opt.OneCycle(5)), epochs=5))
    run(f"{dtype} onecycle three-phase linear", lambda: fit(fastbp.Adam(
        lr=0.01, schedule=opt.OneCycle(5, anneal_strategy="linear", three_phase=True)),
        epochs=5))
    run(f"{dtype} cosine restarts", lambda: fit(fastbp.SGD(
        lr=0.1, schedule=opt.CosineWarmRestarts(2, T_mult=2)), epochs=6))
    run(f"{dtype} exponential", lambda: fit(fastbp.Adam(
        lr=0.01, schedule=opt.ExponentialDecay(0.7)), epochs=4))
    run(f"{dtype} invscaling", lambda: fit(fastbp.SGD(lr=0.1, schedule=opt.InvScaling())))
    run(f"{dtype} reduce on plateau", lambda: fit(fastbp.SGD(
        lr=0.5, schedule=opt.ReduceLROnPlateau(patience=0, threshold=0.5)), epochs=5,
        validation_split=0.2))
    run(f"{dtype} adaptive + early stopping", lambda: fit(fastbp.SGD(
        lr=0.5, schedule=opt.Adaptive()), epochs=6, early_stopping=fastbp.EarlyStopping(
        patience=1)))

    # threads and the lean path
    run(f"{dtype} threaded 2 mid net minibatch", lambda: fit(
        fastbp.SGD(lr=0.05, momentum=0.9), batch_size=128, n_threads=2, epochs=2,
        net={"sizes": (64, 256, 256, 10), "act": "relu"}))
    run(f"{dtype} threaded 2 mid net adam dropout", lambda: fit(
        fastbp.Adam(lr=0.001), batch_size=256, n_threads=2, epochs=1, data=(big_X, big_y),
        net={"sizes": (300, 256, 128, 5), "act": "relu", "dropout": 0.2}))
    for threads in (1, 2):
        for bs in (1, 4, 16):
            run(f"{dtype} lean batch {bs} threads {threads}", lambda: fit(
                fastbp.SGD(lr=0.05, momentum=0.5), batch_size=bs, n_threads=threads,
                epochs=1, data=(X[:400], Y[:400])))
    # small fits with nothing between epochs take the lean path (one kernel call); a
    # callback that does nothing sends the same fit down the full path, epoch by epoch
    for label, optimizer, bs in (
            ("sgd", lambda: fastbp.SGD(lr=0.1), 32),
            ("momentum", lambda: fastbp.SGD(lr=0.05, momentum=0.9), 32),
            ("adam sklearn", lambda: fastbp.Adam(lr=0.01), 32),
            ("rmsprop centered momentum",
             lambda: opt.RMSprop(lr=0.001, momentum=0.5, centered=True), 32),
            ("adagrad", lambda: opt.Adagrad(lr=0.05), 32),
            ("nadam", lambda: opt.NAdam(lr=0.005), 32),
            ("per-sample sgd", lambda: fastbp.SGD(lr=0.05), 1),
            ("per-sample momentum", lambda: fastbp.SGD(lr=0.02, momentum=0.5), 1)):
        run(f"{dtype} {label} full path", lambda: fit(
            optimizer(), batch_size=bs, callbacks=[lambda epoch, history, net: None]))
    run(f"{dtype} rprop full batch full path", lambda: fit(
        opt.Rprop(lr=0.01), batch_size=len(X), epochs=15,
        callbacks=[lambda epoch, history, net: None]))

    def refit(optimizer):
        # rows of <= 64 KiB: the network keeps its lean trainer for the next fit
        net = network()
        for seed in (2, 3):
            net.fit(X[:100], Y[:100], loss="cross_entropy", optimizer=optimizer, epochs=2,
                    batch_size=10, seed=seed, n_threads=1)
        return net_digest(net)
    run(f"{dtype} lean refit (kept trainer)", lambda: refit(fastbp.Adam(lr=0.01)))
    run(f"{dtype} lean default optimizer", lambda: refit(None))
    wide_X = rng.normal(size=(12, 1024)).astype(dtype)
    wide_Y = np.eye(4)[rng.integers(0, 4, size=12)]
    for label, optimizer in (("sgd", lambda: fastbp.SGD(lr=0.01)),
                             ("sgd l2", lambda: fastbp.SGD(lr=0.01)),
                             ("momentum", lambda: fastbp.SGD(lr=0.01, momentum=0.9))):
        for threads in (1, 2):
            # >= 2**20 weights: the per-sample team engages on 2 threads
            run(f"{dtype} per-sample wide {label} threads {threads}", lambda: fit(
                optimizer(), batch_size=1, n_threads=threads, epochs=1,
                data=(wide_X, wide_Y), l2=0.01 if "l2" in label else 0.0,
                net={"sizes": (1024, 1024, 4), "act": "relu"}))

    # narrow per-sample nets, many epochs (epoch blocks in C)
    xor_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    xor_Y = np.array([[0], [1], [1], [0]], dtype=dtype)
    for label, optimizer in (("sgd", lambda: fastbp.SGD(lr=0.5)),
                             ("momentum", lambda: fastbp.SGD(lr=0.3, momentum=0.9))):
        for shuffle in (True, False):
            def xor(optimizer=optimizer, shuffle=shuffle):
                net = fastbp.Network([2, 2, 1], activation="tanh",
                                     output_activation="sigmoid", dtype=dtype, seed=3)
                net.fit(xor_X, xor_Y, loss="mse", optimizer=optimizer(), epochs=2000,
                        batch_size=1, shuffle=shuffle, seed=4, n_threads=1)
                return net_digest(net)
            run(f"{dtype} xor {label} shuffle={shuffle}", xor)
    run(f"{dtype} many epochs minibatch", lambda: fit(
        fastbp.Adam(lr=0.01), batch_size=8, epochs=300, data=(X[:40], Y[:40]),
        net={"sizes": (64, 8, 10)}))

    # resume from a checkpoint
    def resumed():
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "ck-{epoch}.npz")
            first = network()
            first.fit(X, Y, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), epochs=2,
                      batch_size=32, seed=2, n_threads=1, callbacks=[fastbp.ModelCheckpoint(
                          path, monitor="loss", save_best_only=False)])
            net = network()
            net.fit(X, Y, loss="cross_entropy", optimizer=fastbp.Adam(lr=0.01), epochs=4,
                    batch_size=32, seed=2, n_threads=1, resume=path.format(epoch=1))
            return net_digest(net)
    run(f"{dtype} resume from checkpoint", resumed)
    # the checkpoint's promise: the uninterrupted fit's bits
    run(f"{dtype} resume: uninterrupted", lambda: fit(fastbp.Adam(lr=0.01), epochs=4))

# bfloat16 products (float32 weights)
for opt_name, make_opt in (("sgd", lambda: fastbp.SGD(lr=0.05)),
                           ("adam", lambda: fastbp.Adam(lr=0.005))):
    for bs in (1, 128):
        for threads in (1, 2):
            def bf16(make_opt=make_opt, bs=bs, threads=threads):
                # 6 x 110k weights x 128 rows > 2e7 FLOPs: batches of 128 split over
                # fastbp's own threads on 2
                net = fastbp.Network([300, 256, 128, 5], activation="relu",
                                     output_activation="softmax", dtype="float32", seed=1,
                                     compute_dtype="bfloat16")
                n = 200 if bs == 1 else 1024
                net.fit(big_X[:n], big_y[:n], loss="cross_entropy", optimizer=make_opt(),
                        epochs=1, batch_size=bs, seed=2, n_threads=threads)
                return net_digest(net)
            run(f"bfloat16 {opt_name} batch {bs} threads {threads}", bf16)

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
    for solver in ("adamw", "rmsprop", "adagrad", "nadam", "rprop"):
        for data, tag in ((X, "float64"), (X32, "float32")):
            run(f"MLPClassifier {solver} {tag}", lambda: estimator_digest(MLPClassifier(
                hidden_layer_sizes=(32,), solver=solver, max_iter=8, random_state=0,
                tol=0, n_threads=1, learning_rate_init=0.01 if solver != "rprop" else 0.001,
                batch_size=len(X) if solver == "rprop" else "auto").fit(data, y)))
    for data, tag in ((X, "float64"), (X32, "float32")):
        run(f"MLPClassifier adam dropout {tag}", lambda: estimator_digest(MLPClassifier(
            hidden_layer_sizes=(32, 16), dropout=0.2, max_iter=8, random_state=0, tol=0,
            n_threads=1).fit(
            data, y)))
        run(f"MLPClassifier sgd weight_decay {tag}", lambda: estimator_digest(MLPClassifier(
            hidden_layer_sizes=(32,), solver="sgd", weight_decay=0.01, max_iter=8,
            random_state=0, tol=0, n_threads=1).fit(data, y)))
        run(f"MLPClassifier adamw ema clip {tag}", lambda: estimator_digest(MLPClassifier(
            hidden_layer_sizes=(32,), solver="adamw", weight_decay=0.05, ema=0.9, clip_norm=1.0,
            max_iter=8, random_state=0, tol=0, n_threads=1).fit(data, y)))
        run(f"MLPRegressor rmsprop {tag}", lambda: estimator_digest(MLPRegressor(
            hidden_layer_sizes=(16,), solver="rmsprop", max_iter=8, random_state=0,
            tol=0, n_threads=1).fit(data, y.astype(float))))
    run("MLPClassifier bfloat16 adam", lambda: estimator_digest(MLPClassifier(
        hidden_layer_sizes=(32,), compute_dtype="bfloat16", max_iter=5, random_state=0,
        tol=0, n_threads=1).fit(X32, y)))
    # full batches of 1797 rows: fastbp's own threads on 2
    run("MLPClassifier rprop full batch threads 2", lambda: estimator_digest(MLPClassifier(
        hidden_layer_sizes=(32,), solver="rprop", learning_rate_init=0.001, batch_size=len(X),
        max_iter=8, random_state=0, tol=0, n_threads=2).fit(X, y)))
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
