"""
Speed against the peers, from the saved benchmark results
=========================================================

This example does not time anything: it plots the JSON reports that
``bench/compare.py`` and ``bench/predict.py`` wrote to ``bench/results/`` of
the source tree (see :doc:`/user_guide/benchmarks` for how they were measured
and on which machine). Every contender first passed the same-work check: the
same data, initial weights and updates, and the loss after one epoch equal
to a NumPy run of its rule (1e-9 in float64, 1e-4 in float32).

Training: one epoch of plain SGD (sigmoid layers, mse), µs per training
sample, median of interleaved runs, with every library on one thread and at
each library's own thread defaults.
"""

import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np


def results_folder() -> Path:
    """bench/results of the source tree this example sits in."""
    start = Path(globals().get("__file__", Path.cwd() / "plot_speed.py")).resolve().parent
    for folder in [start, *start.parents, Path.cwd(), *Path.cwd().parents]:
        if (folder / "bench" / "results" / "compare_1thread.json").exists():
            return folder / "bench" / "results"
    raise FileNotFoundError("run this example inside a fastbp source checkout")


RESULTS = results_folder()
reports = {name: json.loads((RESULTS / f"compare_{name}.json").read_text())
           for name in ("1thread", "defaults")}
PEERS = ("numpy", "torch", "sklearn", "fann")
COLOURS = {"fastbp": "k", "numpy": "tab:blue", "torch": "tab:orange", "sklearn": "tab:green",
           "fann": "tab:purple"}

report = reports["1thread"]
print("machine:", report["machine"]["cpu"], f"({report['machine']['usable_cores']} cores),",
      "fastbp at", report["fastbp_revision"], "on", report["generated"])

# %%
# Time per sample against the batch size, for each network, float32, on
# one thread. fastbp is the black line. Per sample (batch 1) a framework's
# per-call overhead dominates: on the nets up to 784-256-128-10, NumPy,
# PyTorch and scikit-learn take 12 to 600 times fastbp's time (1.4 to 7
# times on 1024-2048-2048-10), and only FANN, a C library, comes close. With
# growing batches every library approaches the speed of the matrix products.

nets = list(dict.fromkeys(case["net"] for case in report["cases"]))
fig, axes = plt.subplots(1, len(nets), figsize=(14, 3.6), layout="constrained")
for ax, net in zip(axes, nets):
    cases = [c for c in report["cases"] if c["net"] == net and c["dtype"] == "float32"]
    batches = [c["batch_size"] for c in cases]
    for name in ("fastbp",) + PEERS:
        times = [c["contenders"].get(name, {}).get("us_per_sample") for c in cases]
        points = [(b, t) for b, t in zip(batches, times) if t]
        if points:
            ax.plot(*zip(*points), marker="o", color=COLOURS[name], label=name,
                    linewidth=2.5 if name == "fastbp" else 1.2)
    ax.set(xscale="log", yscale="log", title=net, xlabel="batch size")
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.minorticks_off()
axes[0].set_ylabel("µs per training sample")
axes[-1].legend(fontsize="small")
fig.suptitle("one epoch of SGD, float32, 1 thread (bench/results/compare_1thread.json)")
plt.show()

# %%
# Each peer's time as a multiple of fastbp's (above 1: fastbp is faster),
# for every case of both runs: one thread, and each library at its defaults
# (fastbp and PyTorch then use both cores, NumPy and scikit-learn OpenBLAS's
# threads). The cases where fastbp loses sit below the dashed line: the tiny
# 2-2-1 net against FANN and NumPy at large batches, and the largest net
# against PyTorch in float32.

fig, axes = plt.subplots(2, 1, figsize=(14, 7), layout="constrained", sharex=True)
for ax, (mode, report) in zip(axes, reports.items()):
    labels = [f"{c['net']} b{c['batch_size']} f{c['dtype'][5:]}" for c in report["cases"]]
    positions = np.arange(len(labels))
    for k, name in enumerate(PEERS):
        ratios = [c["contenders"].get(name, {}).get("ratio_to_fastbp") for c in report["cases"]]
        shown = [(p + (k - 1.5) * 0.15, r) for p, r in zip(positions, ratios) if r]
        ax.scatter(*zip(*shown), s=14, color=COLOURS[name], label=name)
    ax.axhline(1, color="k", linestyle="--", linewidth=1)
    ax.set(yscale="log", ylabel="peer time / fastbp time",
           title="1 thread for every library" if mode == "1thread" else "each library's defaults")
    ax.grid(True, axis="y", alpha=0.3)
axes[0].legend(ncols=4, fontsize="small")
axes[1].set_xticks(positions, labels, rotation=90, fontsize=7)
plt.show()

# %%
# Prediction: ``bench/predict.py``, 784-128-10, 10 000 rows, float32 and
# float64, µs per row at 2 threads for every library and at each one's
# defaults.

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained", sharey=True)
for ax, dtype in zip(axes, ("float32", "float64")):
    runs = json.loads((RESULTS / f"predict_{dtype}.json").read_text())
    names = list(runs[0]["contenders"])
    width = 0.38
    for k, run in enumerate(runs):
        times = [run["contenders"][n].get("us_per_row", np.nan) for n in names]
        label = (f"{run['threads']} threads each" if run["mode"] == "equal"
                 else "each library's defaults")
        ax.bar(np.arange(len(names)) + (k - 0.5) * width, times, width, label=label)
    ax.set_xticks(np.arange(len(names)), names)
    ax.set(title=f"predict, {dtype}", ylabel="µs per row")
axes[0].legend(fontsize="small")
plt.show()
