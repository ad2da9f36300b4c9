"""Hash the weights after bfloat16 fits (compute_dtype="bfloat16"), to prove a change kept the bits.

    python tools/hash_bf16.py > before.txt   # with the base commit installed
    python tools/hash_bf16.py > after.txt    # with the change installed
    diff before.txt after.txt                # must print nothing

tools/hash_fits.py does not cover bfloat16 training; this does, through public API only
(Network, optimisers), so it runs on both sides. Each line is a case and the first 20 hex
digits of the SHA-256 of the weights and biases after a seeded fit: nets whose output layer
(width 10) takes the small way and whose hidden layers take the packs, batch sizes 1, 7, 128
and 512, 1 and 2 threads (the second big enough for bfloat16's team), SGD, momentum and Adam,
softmax + cross-entropy and sigmoid + mse, and the L2, clipping and dropout variants (dW
written whole rather than stepped from panels). Digests depend on the bfloat16 path that runs
(AMX, AVX512-BF16 or emulated) and the CPU's clones: compare two builds on one machine.
"""
import warnings

import numpy as np

import fastbp
from digests import net_digest as digest

warnings.simplefilter("ignore")


rng = np.random.default_rng(0)
X, y = fastbp.load_digits(one_hot=False)
X = X.astype(np.float32)
big_X = rng.normal(size=(1024, 200)).astype(np.float32)
big_y = rng.integers(0, 10, size=1024)
optimizers = {
    "sgd": lambda: fastbp.SGD(lr=0.05),
    "momentum": lambda: fastbp.SGD(lr=0.02, momentum=0.9),
    "adam": lambda: fastbp.Adam(lr=0.001),
}
heads = {  # output activation, loss
    "softmax+ce": ("softmax", "cross_entropy"),
    "sigmoid+mse": ("sigmoid", "mse"),
}


def fit(sizes, data, optimizer, head, batch_size, n_threads, epochs=1, dropout=None, **kw):
    out, loss = heads[head]
    net = fastbp.Network(list(sizes), activation="tanh", output_activation=out,
                         dtype="float32", seed=1, dropout=dropout, compute_dtype="bfloat16")
    Xd, yd = data
    net.fit(Xd, np.eye(10, dtype=np.float32)[yd], loss=loss, optimizer=optimizers[optimizer](),
            epochs=epochs, batch_size=batch_size, seed=2, n_threads=n_threads, **kw)
    return digest(net)


cases = []
for opt in optimizers:
    for head in heads:
        for batch_size in (1, 7, 128, 512):
            # digits: 64 inputs, a packed hidden layer (48 > 16) unless the batch is small
            cases.append((f"64-48-10 {opt} {head} b{batch_size}",
                          dict(sizes=(64, 48, 10), data=(X, y), optimizer=opt, head=head,
                               batch_size=batch_size, n_threads=1)))
        for batch_size in (128, 512):
            for n_threads in (1, 2):
                cases.append((f"200-384-256-10 {opt} {head} b{batch_size} t{n_threads}",
                              dict(sizes=(200, 384, 256, 10), data=(big_X, big_y),
                                   optimizer=opt, head=head, batch_size=batch_size,
                                   n_threads=n_threads)))
for n_threads in (1, 2):
    for name, kw in (("l2", {"l2": 0.01}), ("clip", {"clip_norm": 0.5}),
                     ("dropout", {"dropout": 0.2})):
        cases.append((f"200-384-256-10 momentum softmax+ce b128 t{n_threads} {name}",
                      dict(sizes=(200, 384, 256, 10), data=(big_X, big_y),
                           optimizer="momentum", head="softmax+ce", batch_size=128,
                           n_threads=n_threads, **kw)))

for name, kw in cases:
    try:
        value = fit(**kw)
    except Exception as exc:  # a case that fails on one side still shows
        value = f"ERROR {type(exc).__name__}: {exc}"[:120]
    print(f"{name:55s} {value}", flush=True)
