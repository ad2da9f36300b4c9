"""Before/after: bench/compare.py's fastbp cells for two builds, interleaved.

Two fastbp builds cannot share a process, so each round runs compare.py
once with every Python (one virtual environment per build), alternating
A B A B ..., and each cell keeps the median over rounds of its median time
per sample. Usage::

    python bench/ab.py --before /tmp/venv-old/bin/python --rounds 3 [compare.py options]

``--after`` defaults to this Python. Prints one row per cell with the
after/before ratio, flags cells slower than ``--slower`` (default 3 %), and
gives each build's spread over the rounds (slowest over fastest): a ratio
inside that spread is not a measured difference. compare.py's
``--repeats 9`` gives each round's median more runs.
Exits 1 if a run fails its same-work checks.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def _cell(case: dict) -> tuple:
    return case["net"], case["batch_size"], case["dtype"]


def run_compare(python: str, out: str, extra: list) -> dict:
    """One compare.py run of fastbp alone; {cell: µs per sample}."""
    command = [python, os.path.join(HERE, "compare.py"), "--contenders", "fastbp",
               "--no-plot", "--out", out, *extra]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    report = next(f for f in os.listdir(out) if f.endswith(".json"))
    with open(os.path.join(out, report)) as handle:
        cases = json.load(handle)["cases"]
    times = {}
    for case in cases:
        result = case["contenders"]["fastbp"]
        if result.get("status") == "ok":
            if not result["check"]["passed"]:
                raise SystemExit(f"{python}: same-work check failed in {_cell(case)}")
            times[_cell(case)] = result["us_per_sample"]
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="Python of the build to compare with")
    parser.add_argument("--after", default=sys.executable, help="Python of the new build")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3)")
    parser.add_argument("--slower", type=float, default=0.03,
                        help="flag cells slower than this fraction")
    args, extra = parser.parse_known_args(argv)
    if args.rounds < 3:
        parser.error("--rounds must be at least 3")
    runs = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds):
            for label in ("before", "after") if round_ % 2 == 0 else ("after", "before"):
                out = os.path.join(folder, f"{label}{round_}")
                runs[label].append(run_compare(getattr(args, label), out, extra))
                print(f"round {round_ + 1} {label} done", file=sys.stderr)
    cells = sorted(set.intersection(*(set(r) for r in runs["before"] + runs["after"])))
    print("| net | batch | dtype | before µs | after µs | after/before | rounds' spread before, after |")
    print("|---|---|---|---|---|---|---|")
    slower = 0
    for cell in cells:
        before = statistics.median(r[cell] for r in runs["before"])
        after = statistics.median(r[cell] for r in runs["after"])
        # slowest over fastest round of each build: how far one round's cell moves
        spread = [max(r[cell] for r in runs[label]) / min(r[cell] for r in runs[label])
                  for label in ("before", "after")]
        ratio = after / before
        flag = " **slower**" if ratio > 1 + args.slower else ""
        slower += bool(flag)
        print(f"| {cell[0]} | {cell[1]} | {cell[2]} | {before:.3f} | {after:.3f} | "
              f"{ratio:.3f}{flag} | {spread[0]:.2f}, {spread[1]:.2f} |")
    print(f"{len(cells)} cells, {slower} slower by more than {args.slower:.0%} "
          f"(median of {args.rounds} interleaved rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
