#!/usr/bin/env python
"""Sparse input: fastbp's MLPClassifier against scikit-learn's on TF-IDF-like data.

Usage (fastbp and scikit-learn installed)::

    python bench/sparse.py                     # the full case below, 3 interleaved repeats
    python bench/sparse.py --rows 20000 --repeats 1   # a quick look

Data: a synthetic TF-IDF-like CSR matrix, ``--rows`` x ``--columns``
(default 200 000 x 20 000), about ``--nnz`` (50) non-zeros a row, 20
classes. Words follow a Zipf law over the vocabulary, and each class draws
``--topic-share`` (5%) of its words from a topic of 200 words of its own,
so the classes can be learnt, but not perfectly;
values are counts times idf, each row scaled to unit length (as
``TfidfVectorizer``). 80% of the rows train, 20% test.

Model: one hidden layer of 64 relu units, softmax, Adam at batch 200, 3
epochs (``max_iter=3``), scikit-learn's defaults otherwise, same
``random_state`` on both sides.

Same work: first, both fit one epoch on the same data and draws; their
training losses must agree to 1e-9 relative in float64 (1e-4 in float32;
fastbp's estimators reproduce scikit-learn's random draws), else the script
stops.

Timing: fit time of the 3 epochs, median of ``--repeats`` runs, the
contenders interleaved, in two settings: each library at its defaults, and
both on one thread (``threadpool_limits(1)`` for scikit-learn's BLAS,
``n_threads=1`` for fastbp). Held-out accuracy of each fit is reported; the
target is fastbp >= 5x scikit-learn at the same accuracy (+-0.01).

Memory: the peak of the process's anonymous resident memory above its level
before the fit (sampled every millisecond from another thread), against the
bytes of X's CSR arrays; a dense copy of X would be rows x columns x 8 bytes.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from threadpoolctl import threadpool_limits

import fastbp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import peak_growth  # noqa: E402  (RssAnon sampled every millisecond)

MiB = 1 << 20


def tfidf_like(n_rows: int, n_columns: int, nnz: int, n_classes: int, seed: int,
               topic_share: float = 0.05):
    """(X as CSR float64, labels): Zipf words plus a topic a class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, n_rows)
    zipf = 1.0 / np.arange(1, n_columns + 1)
    background = rng.choice(n_columns, size=(n_rows, nnz), p=zipf / zipf.sum())
    topics = rng.permutation(n_columns)[: n_classes * 200].reshape(n_classes, 200)
    from_topic = rng.random((n_rows, nnz)) < topic_share
    topic_words = topics[labels[:, None], rng.integers(0, 200, (n_rows, nnz))]
    words = np.where(from_topic, topic_words, background)
    counts = sp.csr_matrix((np.ones(words.size), words.ravel(),
                            np.arange(0, words.size + 1, nnz)), shape=(n_rows, n_columns))
    counts.sum_duplicates()  # a word twice in a row: count 2
    document_frequency = np.bincount(counts.indices, minlength=n_columns)
    idf = np.log((1 + n_rows) / (1 + document_frequency)) + 1
    counts.data *= idf[counts.indices]
    norms = np.sqrt(np.asarray(counts.multiply(counts).sum(axis=1)).ravel())
    counts.data /= np.repeat(norms, np.diff(counts.indptr))
    return counts, labels


def timed_fit(model, X, y) -> tuple:
    """(seconds, peak RssAnon growth in bytes) of model.fit(X, y)."""
    started = time.perf_counter()
    growth, _ = peak_growth(lambda: model.fit(X, y))
    return time.perf_counter() - started, growth


def model(library: str, setting: str, max_iter: int):
    common = dict(hidden_layer_sizes=(64,), solver="adam", batch_size=200,
                  max_iter=max_iter, random_state=0)
    if library == "fastbp":
        return fastbp.MLPClassifier(**common, n_threads=1 if setting == "1 thread" else None)
    return SklearnMLP(**common)


def same_work(X, y) -> dict:
    """Both libraries' training loss after one epoch, same data and draws."""
    losses = {library: model(library, "defaults", 1).fit(X, y).loss_
              for library in ("fastbp", "scikit-learn")}
    gap = abs(losses["fastbp"] - losses["scikit-learn"]) / abs(losses["scikit-learn"])
    print(f"same work: loss after one epoch fastbp {losses['fastbp']:.12f}, "
          f"scikit-learn {losses['scikit-learn']:.12f} (relative gap {gap:.1e})")
    if not gap <= (1e-9 if X.dtype == np.float64 else 1e-4):
        sys.exit("the contenders did not do the same work: stopping")
    return {**losses, "relative_gap": gap}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--columns", type=int, default=20_000)
    parser.add_argument("--nnz", type=int, default=50)
    parser.add_argument("--topic-share", type=float, default=0.05)
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"],
                        help="X's dtype; both libraries train in it")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default="defaults,1 thread")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sparse"))
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)  # 3 epochs on purpose

    X, labels = tfidf_like(args.rows, args.columns, args.nnz, 20, seed=0,
                           topic_share=args.topic_share)
    X = X.astype(args.dtype)
    n_train = int(0.8 * args.rows)
    X_train, y_train, X_test, y_test = X[:n_train], labels[:n_train], X[n_train:], labels[n_train:]
    csr_bytes = X_train.data.nbytes + X_train.indices.nbytes + X_train.indptr.nbytes
    print(f"X: {args.rows} x {args.columns} CSR, {X.nnz / args.rows:.1f} non-zeros a row, "
          f"{X.nnz} in all; train {n_train} rows ({csr_bytes / MiB:.0f} MiB of CSR arrays; "
          f"dense it would be {n_train * args.columns * 8 / 2**30:.0f} GiB)")
    print(f"fastbp {fastbp.__version__}, scikit-learn {sys.modules['sklearn'].__version__}, "
          f"{platform.processor() or platform.machine()}")
    check = same_work(X_train, y_train)

    settings = args.settings.split(",")
    runs = {(setting, library): [] for setting in settings for library in ("fastbp", "scikit-learn")}
    for repeat in range(args.repeats):
        for setting in settings:
            for library in ("fastbp", "scikit-learn"):  # interleaved
                estimator = model(library, setting, 3)
                with threadpool_limits(1) if (setting == "1 thread" and library != "fastbp") \
                        else _nothing():
                    seconds, growth = timed_fit(estimator, X_train, y_train)
                accuracy = float(estimator.score(X_test, y_test))
                runs[setting, library].append({"seconds": seconds, "rss_growth": growth,
                                               "accuracy": accuracy})
                print(f"  repeat {repeat + 1} {setting:9s} {library:12s} {seconds:7.2f} s  "
                      f"accuracy {accuracy:.4f}  peak RSS growth {growth / MiB:7.1f} MiB",
                      flush=True)

    lines = ["", f"3 epochs of Adam, batch 200, {args.columns}-64-20 relu/softmax, {args.dtype}, "
             f"on {n_train} rows of {X.nnz / args.rows:.1f} non-zeros "
             f"(median of {args.repeats} interleaved runs)",
             "setting     fastbp s  sklearn s   speed-up  acc fastbp  acc sklearn  "
             "fastbp RSS growth"]
    summary = {}
    for setting in settings:
        ours, theirs = runs[setting, "fastbp"], runs[setting, "scikit-learn"]
        median = lambda rs, key: statistics.median(r[key] for r in rs)
        ratio = statistics.median(t["seconds"] / o["seconds"] for o, t in zip(ours, theirs))
        summary[setting] = {
            "fastbp_seconds": median(ours, "seconds"),
            "sklearn_seconds": median(theirs, "seconds"),
            "speedup_median_of_paired_ratios": ratio,
            "fastbp_accuracy": median(ours, "accuracy"),
            "sklearn_accuracy": median(theirs, "accuracy"),
            "fastbp_peak_rss_growth_mib": max(r["rss_growth"] for r in ours) / MiB,
            "sklearn_peak_rss_growth_mib": max(r["rss_growth"] for r in theirs) / MiB,
        }
        s = summary[setting]
        lines.append(f"{setting:10s} {s['fastbp_seconds']:9.2f} {s['sklearn_seconds']:10.2f} "
                     f"{ratio:9.2f}x {s['fastbp_accuracy']:11.4f} {s['sklearn_accuracy']:12.4f} "
                     f"{s['fastbp_peak_rss_growth_mib']:10.1f} MiB")
    lines.append(f"X's CSR arrays: {csr_bytes / MiB:.0f} MiB (dense: "
                 f"{n_train * args.columns * X.dtype.itemsize / MiB:.0f} MiB); "
                 f"weights {(args.columns + 1) * 64 * X.dtype.itemsize / MiB:.1f} MiB")
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".txt").write_text("\n".join(lines[1:]) + "\n")
    out.with_suffix(".json").write_text(json.dumps(
        {"args": vars(args), "nnz": int(X.nnz), "csr_bytes": csr_bytes, "same_work": check,
         "runs": {f"{s}|{l}": r for (s, l), r in runs.items()}, "summary": summary}, indent=1))
    print(f"wrote {out.with_suffix('.txt')} and {out.with_suffix('.json')}")


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
