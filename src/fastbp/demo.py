"""The main job: train a network on the bundled digits and report.

Run with ``python -m fastbp.demo [--epochs N]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from .datasets import load_digits
from .network import Network
from .optim import SGD


def main(argv=None) -> float:
    """Train 64-32-10 (sigmoid, softmax, cross-entropy) on 75% of the digits.

    Prints the loss per epoch, the test accuracy and the training time per
    sample, and returns the test accuracy.
    """
    parser = argparse.ArgumentParser(prog="python -m fastbp.demo", description=main.__doc__)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    X, Y = load_digits(dtype=args.dtype)
    order = np.random.default_rng(0).permutation(len(X))
    n_train = int(0.75 * len(X))
    train, test = order[:n_train], order[n_train:]
    net = Network([64, 32, 10], activation="sigmoid", output_activation="softmax",
                  dtype=args.dtype, seed=0)
    print(f"fastbp demo: {net} on digits, {n_train} train / {len(test)} test rows")
    started = time.perf_counter()
    history = net.fit(X[train], Y[train], loss="cross_entropy",
                      optimizer=SGD(lr=0.2, momentum=0.9), epochs=args.epochs,
                      batch_size=16, shuffle=True, seed=0)
    seconds = time.perf_counter() - started
    for epoch, loss in enumerate(history["loss"], 1):
        print(f"epoch {epoch:3d}  train loss {loss:.5f}")
    accuracy = float(np.mean(net.predict(X[test]).argmax(1) == Y[test].argmax(1)))
    per_sample = seconds / (args.epochs * n_train) * 1e6
    print(f"test accuracy {accuracy:.4f}")
    print(f"time per training sample {per_sample:.2f} µs "
          f"({args.epochs} epochs, batch 16, {seconds:.3f} s in all)")
    return accuracy


if __name__ == "__main__":
    main()
