"""The workload tools/valgrind_fit.sh runs under valgrind memcheck.

Small on purpose (valgrind runs code 20-50x slower), but it walks every kernel
path fit and the evaluation calls take: both dtypes, per-sample SGD, minibatch
with momentum and Nesterov through the plain loops and through BLAS, shuffled
and in order, a last batch shorter than the others, predict and loss in
several chunks, gradients with L2, a divergence and its rollback, two threads
training at once, and a save/load round trip.
"""
import os
import tempfile
import threading

import numpy as np

import fastbp
from fastbp import _kernels, network


def main():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(67, 9))
    T = np.eye(4)[rng.integers(0, 4, 67)]
    network.CHUNK_ROWS = 16  # predict and loss in several kernel calls
    network.FIT_CALL_FLOPS = 1e4  # several fit calls per epoch
    for dtype in ("float64", "float32"):
        for blas_from in (2**62, 0):  # loops only, then BLAS for every product
            _kernels.set_blas_min_flops(blas_from)
            for activation, output, loss in (("tanh", "softmax", "cross_entropy"),
                                             (["relu", "sigmoid"], "sigmoid", "bce"),
                                             ("identity", "tanh", "mse")):
                hidden = [11, 7] if isinstance(activation, list) else [13]
                net = fastbp.Network([9, *hidden, 4], activation=activation,
                                     output_activation=output, dtype=dtype, seed=1)
                for batch, opt in ((1, fastbp.SGD(lr=0.05)),
                                   (8, fastbp.SGD(lr=0.05, momentum=0.9)),
                                   (10, fastbp.SGD(lr=0.05, momentum=0.9, nesterov=True)),
                                   (200, fastbp.SGD(lr=0.05))):
                    for shuffle in (True, False):
                        net.fit(X, T, loss=loss, optimizer=opt, epochs=2, batch_size=batch,
                                shuffle=shuffle, seed=2, l2=0.01)
                out = net.predict(X)
                assert np.isfinite(out).all()
                assert np.isfinite(net.loss(X, T, loss=loss, l2=0.1))
                dW, db = net.gradients(X[:5], T[:5], loss=loss, l2=0.1)
                assert all(np.isfinite(g).all() for g in dW + db)
    _kernels.set_blas_min_flops(128)

    # divergence and rollback
    wild = fastbp.Network([9, 5, 4], activation="identity", output_activation="identity", seed=0)
    try:
        wild.fit(X * 1e3, T, optimizer=fastbp.SGD(lr=1e10), epochs=3, batch_size=4)
    except fastbp.TrainingDiverged:
        pass
    assert np.isfinite(wild.predict(X)).all()

    # two networks training in two threads
    nets = [fastbp.Network([9, 16, 4], seed=s) for s in (3, 4)]
    threads = [threading.Thread(target=n.fit, args=(X, T),
                                kwargs=dict(epochs=3, batch_size=b, n_threads=1))
               for n, b in zip(nets, (1, 8))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.npz")
        nets[0].astype("float32").save(path)
        assert fastbp.load(path).dtype == np.float32
    print("workload done:", _kernels.__file__)


if __name__ == "__main__":
    main()
