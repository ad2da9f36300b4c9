"""fastbp.MLPClassifier against scikit-learn's, side by side in one run.

Digits scaled to [0, 1], 75/25 split, hidden_layer_sizes=(64,), logistic,
random_state=0, 60 epochs (tol=0, n_iter_no_change large). Two settings:
sgd (batch 32, lr 0.1, momentum 0.9) and adam (batch 200, lr 1e-3).
Reports the median fit time of interleaved runs, the speed-up, the test
accuracies and n_iter_. Then the cost of one call where the per-call
checks dominate: partial_fit on a batch of 32 rows (sgd), predict on 32
rows and predict_proba on one row, after both models took the same
partial_fit batches (their weights are compared: the same work).

    python bench/estimators.py [--repeats 5] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from threadpoolctl import threadpool_limits

import fastbp
from fastbp import MLPClassifier

SETTINGS = {
    "sgd": dict(solver="sgd", batch_size=32, learning_rate_init=0.1, momentum=0.9),
    "adam": dict(solver="adam", batch_size=200, learning_rate_init=1e-3),
}
COMMON = dict(hidden_layer_sizes=(64,), activation="logistic", random_state=0, max_iter=60,
              tol=0.0, n_iter_no_change=10_000)


def timed_fit(cls, params, X, y):
    model = cls(**params)
    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - started, model


def seconds_per_call(call, n_calls: int) -> float:
    started = time.perf_counter()
    for _ in range(n_calls):
        call()
    return (time.perf_counter() - started) / n_calls


def call_costs(X, y, repeats: int) -> dict:
    """Median µs of partial_fit (32 rows), predict (32 rows) and predict_proba
    (1 row), interleaved, and the largest relative difference of the two
    models' weights after the same partial_fit calls."""
    params = {**COMMON, **SETTINGS["sgd"]}
    batches = [(X[i:i + 32], y[i:i + 32]) for i in range(0, 32 * 40, 32)]
    models = {"fastbp": MLPClassifier(**params), "sklearn": SkMLPClassifier(**params)}
    for model in models.values():
        model.partial_fit(*batches[0], classes=np.unique(y))
    calls = {
        "partial_fit": lambda m: [m.partial_fit(*batch) for batch in batches],
        "predict_32": lambda m: m.predict(X[:32]),
        "predict_proba_1": lambda m: m.predict_proba(X[:1]),
    }
    per_call = {"partial_fit": len(batches), "predict_32": 1, "predict_proba_1": 1}
    times = {label: {name: [] for name in calls} for label in models}
    for _ in range(repeats):
        for label, model in models.items():
            for name, call in calls.items():
                n = 5 if name == "partial_fit" else 500
                seconds = seconds_per_call(lambda: call(model), n)
                times[label][name].append(seconds / per_call[name] * 1e6)
    ours, theirs = models["fastbp"], models["sklearn"]
    weights_diff = max(float(np.max(np.abs(a - b)) / np.max(np.abs(b)))
                       for a, b in zip(ours.coefs_ + ours.intercepts_,
                                       theirs.coefs_ + theirs.intercepts_))
    rows = {name: {label: float(np.median(times[label][name])) for label in models}
            for name in calls}
    for row in rows.values():
        row["speedup"] = row["sklearn"] / row["fastbp"]
    return {"us_per_call": rows, "max_weight_rel_diff": weights_diff}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    X, labels = fastbp.load_digits(one_hot=False)
    X_train, X_test, y_train, y_test = train_test_split(X, labels, test_size=0.25, random_state=0)
    results = {}
    with threadpool_limits(args.threads):
        for name, setting in SETTINGS.items():
            params = {**COMMON, **setting}
            times = {"fastbp": [], "sklearn": []}
            models = {}
            for _ in range(args.repeats):  # interleaved: A B A B ...
                for label, cls in (("fastbp", MLPClassifier), ("sklearn", SkMLPClassifier)):
                    seconds, models[label] = timed_fit(cls, params, X_train, y_train)
                    times[label].append(seconds)
            ours, theirs = models["fastbp"], models["sklearn"]
            row = {
                "fastbp_s": float(np.median(times["fastbp"])),
                "sklearn_s": float(np.median(times["sklearn"])),
                "fastbp_accuracy": float(ours.score(X_test, y_test)),
                "sklearn_accuracy": float(theirs.score(X_test, y_test)),
                "fastbp_n_iter": int(ours.n_iter_), "sklearn_n_iter": int(theirs.n_iter_),
                # same start and same math: the loss curves agree step for step
                "max_loss_curve_rel_diff": float(np.max(np.abs(
                    np.subtract(ours.loss_curve_, theirs.loss_curve_)) / np.abs(theirs.loss_curve_))),
            }
            row["speedup"] = row["sklearn_s"] / row["fastbp_s"]
            results[name] = row
    with threadpool_limits(args.threads):
        calls = call_costs(X_train, y_train, args.repeats)
    lines = ["| solver | fastbp fit (s) | sklearn fit (s) | speed-up | accuracy fastbp | "
             "accuracy sklearn | n_iter_ | loss curves max rel. diff |",
             "|---|---|---|---|---|---|---|---|"]
    for name, row in results.items():
        lines.append(f"| {name} | {row['fastbp_s']:.3f} | {row['sklearn_s']:.3f} | "
                     f"{row['speedup']:.1f}x | {row['fastbp_accuracy']:.4f} | "
                     f"{row['sklearn_accuracy']:.4f} | {row['fastbp_n_iter']}/{row['sklearn_n_iter']} "
                     f"| {row['max_loss_curve_rel_diff']:.1e} |")
    lines += ["", "| call | fastbp (µs) | sklearn (µs) | speed-up |", "|---|---|---|---|"]
    for name, row in calls["us_per_call"].items():
        lines.append(f"| {name} | {row['fastbp']:.1f} | {row['sklearn']:.1f} | "
                     f"{row['speedup']:.1f}x |")
    lines.append(f"\nWeights after the same partial_fit calls: max relative difference "
                 f"{calls['max_weight_rel_diff']:.1e}.")
    machine = f"{platform.processor() or platform.machine()}, {args.threads} BLAS thread(s)"
    table = "\n".join(lines)
    print(f"MLPClassifier on digits (1347 train / 450 test), 60 epochs, median of "
          f"{args.repeats} interleaved fits; {machine}\n{table}")
    out = pathlib.Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "estimators.json").write_text(json.dumps(
        {"machine": machine, "repeats": args.repeats, "results": results, "calls": calls},
        indent=2))
    (out / "estimators.md").write_text(table + "\n")
    return results


if __name__ == "__main__":
    main()
