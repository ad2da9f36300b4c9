"""Digits test accuracy of bfloat16 products against float32 (issue #29: within 1 point).

    python bench/bf16_accuracy.py [--out bench/results/bf16_accuracy.txt]

A 64-256-128-10 relu/softmax network, Adam (lr 1e-3), 30 epochs of batch 128
on 1347 of scikit-learn's 1797 digits, tested on the other 450; five seeds,
each split and start shared by both precisions (same seed). The float32 run
is ``compute_dtype=None``; the other is ``compute_dtype="bfloat16"``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import fastbp


def accuracies(seed: int) -> dict:
    """{compute_dtype: test accuracy} of one seed's split and start."""
    X, labels = fastbp.load_digits(one_hot=False)
    X = X.astype(np.float32)
    Y = np.eye(10, dtype=np.float32)[labels]
    order = np.random.default_rng(seed).permutation(len(X))
    train, test = order[:1347], order[1347:]
    result = {}
    for compute in (None, "bfloat16"):
        net = fastbp.Network([64, 256, 128, 10], activation="relu", output_activation="softmax",
                             dtype="float32", compute_dtype=compute, seed=seed)
        net.fit(X[train], Y[train], loss="cross_entropy", optimizer=fastbp.Adam(lr=1e-3),
                epochs=30, batch_size=128, seed=seed)
        result[compute] = float(np.mean(net.predict(X[test]).argmax(1) == labels[test]))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the lines to this file")
    args = parser.parse_args(argv)
    lines = [f"bfloat16 path: {fastbp._kernels.bf16_path()}; 64-256-128-10, Adam 1e-3, "
             "30 epochs of batch 128, 1347 train / 450 test digits"]
    worst = 0.0
    for seed in range(args.seeds):
        acc = accuracies(seed)
        gap = acc["bfloat16"] - acc[None]
        worst = min(worst, gap)
        lines.append(f"seed {seed}: float32 {acc[None]:.4f}, bfloat16 {acc['bfloat16']:.4f}, "
                     f"difference {100 * gap:+.2f} points")
    lines.append(f"largest loss of accuracy: {abs(100 * worst):.2f} points (target: at most 1)")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
