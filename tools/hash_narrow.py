"""Hash the weights AND the history of per-sample fits of narrow nets (XOR and friends).

    python tools/hash_narrow.py > before.txt   # base build installed
    python tools/hash_narrow.py > after.txt    # changed build installed
    diff before.txt after.txt                  # must print nothing

tools/hash_fits.py covers one per-sample net; this adds the narrow (<= 4 units) per-sample
paths: XOR 2-2-1 and 2-4-1, 3-3-2 with tanh, plain SGD and momentum/Nesterov, float32 and
float64, shuffle on and off, l2 on and off, 1 to 10 000 epochs (the lean fit's one-call
run_epochs path for epochs > 1 and its run for 1), and the history's loss, data_loss and
penalty lists bit for bit.
"""
import warnings

import numpy as np

import fastbp
from digests import digest, net_digest

warnings.simplefilter("ignore")


XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([[0], [1], [1], [0]], dtype=float)
rng = np.random.default_rng(3)
X3 = rng.normal(size=(13, 3))
Y3 = np.stack([np.sin(X3[:, 0]), np.tanh(X3[:, 1] * X3[:, 2])], axis=1) * 0.5

for sizes, act, X, Y in (((2, 2, 1), "sigmoid", XOR_X, XOR_Y), ((2, 4, 1), "sigmoid", XOR_X, XOR_Y),
                         ((3, 3, 2), "tanh", X3, Y3)):
    for dtype in ("float32", "float64"):
        for opt_name, make_opt in (("sgd", lambda: fastbp.SGD(lr=0.25)),
                                   ("momentum", lambda: fastbp.SGD(lr=0.25, momentum=0.4)),
                                   ("nesterov", lambda: fastbp.SGD(lr=0.1, momentum=0.9,
                                                                   nesterov=True))):
            for shuffle in (False, True):
                for l2 in (0.0, 1e-3):
                    for epochs in (1, 7, 10000):
                        net = fastbp.Network(list(sizes), activation=act,
                                             output_activation="sigmoid", dtype=dtype, seed=1)
                        h = net.fit(X.astype(dtype), Y.astype(dtype), loss="mse",
                                    optimizer=make_opt(), epochs=epochs, batch_size=1,
                                    shuffle=shuffle, seed=5, l2=l2)
                        hist = [np.array(h[k], dtype=np.float64)
                                for k in ("loss", "data_loss", "penalty")]
                        types = {type(v).__name__ for k in ("loss", "data_loss", "penalty")
                                 for v in h[k]}
                        print(f"{'-'.join(map(str, sizes))} {act} {dtype} {opt_name} "
                              f"shuffle={shuffle} l2={l2} epochs={epochs}: weights "
                              f"{net_digest(net)} history "
                              f"{digest(hist)} {len(h['loss'])} {sorted(types)}")
