"""Hash predict's outputs on every predict path, to prove a change kept the bits.

    python tools/hash_predict.py > before.txt   # with the base commit installed
    python tools/hash_predict.py > after.txt    # with the change installed
    diff before.txt after.txt                   # must print nothing

Public API only (Network.predict, set_weights, layer_params), so it runs on both
sides. Each line: a network, its dtype and compute dtype, the rows, the layout of X
and n_threads, then the first 20 hex digits of the SHA-256 of the outputs. Covers one
row to 10 000, 1 and 2 threads and the default, C and Fortran order, float64 X into a
float32 network, CSR rows, and bfloat16 predict after its weights were written in
place. Digests depend on the CPU's kernels: compare two builds on one machine.
"""
import numpy as np
import scipy.sparse as sp

import fastbp
from digests import digest as digest_all

NETS = [((784, 256, 128, 10), "relu", "softmax"), ((784, 128, 10), "relu", "softmax"),
        ((64, 32, 10), "sigmoid", "softmax"), ((20, 7, 3), "tanh", "identity"),
        ((100, 300, 300, 1), "relu", "sigmoid"), ((3, 5, 2), "relu", "identity")]
ROWS = (1, 2, 3, 7, 8, 9, 100, 257, 10000)


def digest(outputs) -> str:
    return digest_all([outputs])


def build(sizes, act, out_act, dtype, compute):
    net = fastbp.Network(list(sizes), activation=act, output_activation=out_act, dtype=dtype,
                         compute_dtype=compute)
    net.init_weights(rng=0, biases="uniform")
    return net


def main():
    rng = np.random.default_rng(1)
    for sizes, act, out_act in NETS:
        X_all = rng.normal(size=(max(ROWS), sizes[0]))
        for dtype, compute in (("float64", None), ("float32", None), ("float32", "bfloat16")):
            net = build(sizes, act, out_act, dtype, compute)
            name = f"{'-'.join(map(str, sizes))} {dtype} {compute or dtype}"
            for m in ROWS:
                X = X_all[:m].astype(dtype)
                for threads in (None, 1, 2):
                    print(name, m, "C", threads, digest(net.predict(X, n_threads=threads)))
                if m in (1, 8, 257, 10000):
                    print(name, m, "F", 2, digest(net.predict(np.asfortranarray(X), n_threads=2)))
                    print(name, m, "f64", None, digest(net.predict(X_all[:m])))
                    Xs = sp.csr_matrix(np.where(X > 0.5, X, 0))
                    print(name, m, "csr", 2, digest(net.predict(Xs, n_threads=2)))
            # weights written in place through layer_params, then predict again
            X = X_all[:100].astype(dtype)
            before = net.predict(X)
            W, _ = net.layer_params()[0]
            W[0, :] += 0.5
            for m in (1, 8, 100):
                print(name, m, "after in-place write", None, digest(net.predict(X[:m])))
            print(name, "in-place write seen", not np.array_equal(before, net.predict(X)))


if __name__ == "__main__":
    main()
