#!/usr/bin/env python
"""XOR: many epochs over four rows, per-sample SGD, fastbp against FANN (and NumPy).

Usage (fastbp installed; FANN through Debian's libfann, ``apt-get install libfann-dev``)::

    python bench/xor.py                       # 10 000 epochs, float32 and float64, 5 repeats
    python bench/xor.py --epochs 2000 --repeats 3

The network is 2-2-1 with sigmoid layers (FANN's), mse, learning rate 0.25,
one update per row in order, from the same initial weights on every side.
Here fixed costs per epoch are the whole story: four rows of six weights are
a few hundred flops, so a library that goes back to its caller every epoch
pays that call 10 000 times. fastbp runs one ``fit(epochs=10000)`` call;
FANN its own loop, ``fann_train_on_data`` (one ctypes call); NumPy a Python
loop, for scale.

Same work: first every contender trains one epoch and its weights are
compared with NumPy running its update rule (compare.py's check; FANN's
rule clips z to [0.01, 0.99] inside σ'). Then each is timed over
``--epochs`` epochs, the contenders interleaved, median of ``--repeats``;
each run's final mse is printed too, so a contender that stopped early would
show. The ratio is FANN's time over fastbp's: above 1, fastbp is faster.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import (TOLERANCE, NetworkSpec, initial_parameters, make_data,  # noqa: E402
                     mse_objective, relative_parameter_error)
from peers import load_peer  # noqa: E402
from peers.numpy_peer import Trainer as NumpyTrainer  # noqa: E402

SPEC = NetworkSpec("2-2-1", (2, 2, 1), "xor", 4, 4, 0.25)
CONTENDERS = ("fastbp_peer", "fann_peer", "numpy_peer")


def same_work(peer, X, Y, weights, biases, dtype) -> dict:
    trainer = peer.Trainer(X, Y, SPEC.sizes, 1, SPEC.lr, dtype)
    trainer.load(weights, biases)
    trainer.epoch(1)
    got_w, got_b = trainer.parameters()
    reference = NumpyTrainer(X, Y, SPEC.sizes, 1, SPEC.lr, dtype, variant=peer.MATH)
    reference.load(weights, biases)
    reference.epoch(1)
    want_w, want_b = reference.parameters()
    error = relative_parameter_error(list(got_w) + list(got_b), want_w + want_b)
    return {"passed": bool(error <= TOLERANCE[dtype]), "parameter_error": error,
            "rule": peer.MATH}


def timed(peer, X, Y, weights, biases, dtype, epochs) -> tuple:
    trainer = peer.Trainer(X, Y, SPEC.sizes, 1, SPEC.lr, dtype)
    trainer.load(weights, biases)
    started = time.perf_counter()
    trainer.epoch(epochs)
    seconds = time.perf_counter() - started
    w, b = trainer.parameters()
    return seconds, float(mse_objective(w, b, X, Y))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtypes", default="float32,float64")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "xor"))
    args = parser.parse_args()

    X, Y = make_data(SPEC, 4)
    weights, biases = initial_parameters(SPEC.sizes)
    peers = []
    for name in CONTENDERS:
        peer = load_peer(name)
        why = peer.availability()
        if why:
            print(f"{peer.NAME}: skipped ({why})")
        else:
            peers.append(peer)
    report = {"epochs": args.epochs, "repeats": args.repeats, "results": {}}
    lines = [f"XOR 2-2-1 sigmoid, 4 rows, per-sample SGD, {args.epochs} epochs "
             f"(median of {args.repeats} interleaved runs); µs per sample"]
    for dtype in args.dtypes.split(","):
        checks = {peer.NAME: same_work(peer, X, Y, weights, biases, dtype) for peer in peers}
        for name, check in checks.items():
            print(f"{dtype} same work {name}: {'ok' if check['passed'] else 'FAILED'} "
                  f"(relative parameter error {check['parameter_error']:.1e} vs NumPy's "
                  f"{check['rule']} rule)")
        if not all(check["passed"] for check in checks.values()):
            sys.exit("a contender did not do the same work: stopping")
        runs = {peer.NAME: [] for peer in peers}
        for _ in range(args.repeats):
            for peer in peers:
                runs[peer.NAME].append(timed(peer, X, Y, weights, biases, dtype, args.epochs))
        samples = 4 * args.epochs
        per_sample = {name: statistics.median(s for s, _ in r) / samples * 1e6
                      for name, r in runs.items()}
        lines.append(f"{dtype}: " + ", ".join(
            f"{name} {us:.3f} (final mse {r[-1][1]:.4f})"
            for (name, us), r in zip(per_sample.items(), runs.values())))
        if "fann" in per_sample and "fastbp" in per_sample:
            ratios = [fann[0] / ours[0] for ours, fann in zip(runs["fastbp"], runs["fann"])]
            lines.append(f"{dtype}: FANN time / fastbp time, median of paired runs: "
                         f"{statistics.median(ratios):.2f}x")
        report["results"][dtype] = {"same_work": checks, "us_per_sample": per_sample,
                                    "runs": runs}
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text("\n".join(lines) + "\n")
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
