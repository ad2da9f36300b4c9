"""Print the README's speed table from bench/compare.py's JSON reports.

    python tools/readme_speed_table.py bench/results/compare_1thread.json \
        bench/results/compare_defaults.json

One row per case; for each report, fastbp's µs per sample and each peer's
time as a multiple of fastbp's (above 1: fastbp is faster). A run of
``bench/compare.py --threads 1,defaults`` writes both reports.
"""
from __future__ import annotations

import json
import sys

PEERS = ("numpy", "torch", "sklearn", "fann")


def label(report: dict) -> str:
    threads = report["threads"]
    return "defaults" if threads == "defaults" else f"{threads} thread"


def cells(case: dict) -> list:
    results = case["contenders"]
    fastbp = results.get("fastbp", {}).get("us_per_sample")
    row = [f"{fastbp:.3g}" if fastbp else "–"]
    for peer in PEERS:
        time = results.get(peer, {}).get("us_per_sample")
        row.append(f"{time / fastbp:.2f}" if time and fastbp else "–")
    return row


def main(paths: list) -> None:
    reports = [json.load(open(path)) for path in paths]
    header = ["net", "batch", "dtype"]
    for report in reports:
        header += [f"fastbp µs ({label(report)})"] + [f"{p} ×" for p in PEERS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    keyed = [{(c["net"], c["batch_size"], c["dtype"]): c for c in r["cases"]} for r in reports]
    for key in keyed[0]:
        row = [key[0], str(key[1]), key[2]]
        for cases in keyed:
            row += cells(cases[key]) if key in cases else ["–"] * (1 + len(PEERS))
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
