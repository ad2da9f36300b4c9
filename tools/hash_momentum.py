"""Hash the weights and history of per-sample SGD with momentum fits (sigmoid and tanh nets).

    python tools/hash_momentum.py > before.txt   # base build installed
    python tools/hash_momentum.py > after.txt    # changed build installed
    diff before.txt after.txt                    # must print nothing

bench/per_sample_momentum.py's nets (8-16-1 parity, 64-32-10 digits) and widths that leave
ragged tails in every vector width (1-13 units), momentum and Nesterov, L2 on and off,
float32 and float64, shuffle on and off: tools/hash_fits.py covers one per-sample net only.
"""
import warnings

import numpy as np

import fastbp
from digests import digest

warnings.simplefilter("ignore")


rng = np.random.default_rng(7)
X_digits, Y_digits = fastbp.load_digits()
cases = [((8, 16, 1), "sigmoid"), ((64, 32, 10), "sigmoid"), ((5, 7, 3), "sigmoid"),
         ((3, 10, 13), "tanh"), ((12, 9, 6, 2), "sigmoid"), ((2, 2, 1), "sigmoid"),
         ((6, 5, 11), "sigmoid")]
for sizes, act in cases:
    if sizes == (64, 32, 10):
        X, Y = X_digits[:300], Y_digits[:300]
    else:
        X = rng.normal(size=(40, sizes[0]))
        Y = 1 / (1 + np.exp(-rng.normal(size=(40, sizes[-1]))))
    for dtype in ("float32", "float64"):
        for nesterov in (False, True):
            for l2 in (0.0, 1e-3):
                for shuffle in (False, True):
                    net = fastbp.Network(list(sizes), activation=act, output_activation="sigmoid",
                                         dtype=dtype, seed=1)
                    history = net.fit(X.astype(dtype), Y.astype(dtype), loss="mse",
                                      optimizer=fastbp.SGD(lr=0.25, momentum=0.4,
                                                           nesterov=nesterov),
                                      epochs=3, batch_size=1, shuffle=shuffle, l2=l2,
                                      n_threads=1, seed=2)
                    losses = [np.asarray(history[key], dtype=np.float64)
                              for key in ("loss", "data_loss", "penalty")]
                    name = f"{'-'.join(map(str, sizes))} {act} {dtype} nesterov={nesterov} " \
                           f"l2={l2} shuffle={shuffle}"
                    print(f"{name:60s} {digest(list(net.weights) + list(net.biases) + losses)}")
