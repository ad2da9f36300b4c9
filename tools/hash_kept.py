"""Hash the weights and history after each of many small fits on one network:
the lean path's kept trainer, whose private copy of the parameters goes into
an array it trained before once nothing else holds it (Trainer.take_params).

    python tools/hash_kept.py > before.txt   # base build installed
    python tools/hash_kept.py > after.txt    # changed build installed
    diff before.txt after.txt                # must print nothing

Each configuration (dtype, batch size, shuffle, n_threads, optimiser) runs 8
fits on one network, with set_weights, a predict, a held view of the
parameters or a full-path fit (validation rows) between some of them, as
bench/compare.py's fastbp peer (set_weights, then a fit with a fresh
optimiser) and bench/fit_fixed_cost.py (fit after fit) call it.
"""
import itertools
import warnings

import numpy as np

import fastbp
from digests import digest

warnings.simplefilter("ignore")


def optimizer(name):
    return {"sgd": lambda: fastbp.SGD(lr=0.25), "momentum": lambda: fastbp.SGD(lr=0.1, momentum=0.9),
            "adam": lambda: fastbp.Adam(lr=0.01), "none": lambda: None}[name]


def main():
    rng = np.random.default_rng(0)
    patterns = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    X = np.resize(patterns, (40, 2))
    Y = (X[:, :1] != X[:, 1:]).astype(np.float64)
    for dtype, batch, shuffle, threads, name, fresh in itertools.product(
            ("float32", "float64"), (1, 4, 32), (False, True), (None, 1), ("sgd", "momentum", "adam", "none"),
            (True, False)):
        Xd, Yd = X.astype(dtype), Y.astype(dtype)
        net = fastbp.Network([2, 3, 1], dtype=dtype, seed=1)
        weights, biases = net.weights, net.biases
        kept_opt = optimizer(name)()
        held = []
        line = []
        for step in range(8):
            if step % 3 == 2:
                net.set_weights(weights, biases)
            if step == 4:
                held.append(net.params)
            if step == 5:
                net.predict(Xd)
            opt = optimizer(name)() if fresh else kept_opt
            options = {} if threads is None else {"n_threads": threads}
            if step == 6:
                options["validation_split"] = 0.25  # the full path
            history = net.fit(Xd, Yd, optimizer=opt, batch_size=batch, shuffle=shuffle,
                              seed=step, epochs=1 + step % 2, **options)
            line.append(digest(net.weights + net.biases + [np.array(history["loss"])]))
        line.append(digest(held))
        print(dtype, batch, shuffle, threads, name, fresh, digest(line))


if __name__ == "__main__":
    main()
