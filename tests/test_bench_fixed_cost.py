"""bench/fit_fixed_cost.py: its same-work check tells builds apart, and a run
writes its table (a smoke run: few calls, this build against itself)."""
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "fit_fixed_cost.py"


def test_the_bench_runs_and_its_check_compares_the_weights(tmp_path):
    done = subprocess.run([sys.executable, str(BENCH), "--before", sys.executable,
                           "--rounds", "3", "--calls", "5", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "fit_fixed_cost.txt").read_text()
    assert "same weights after each seeded call" in table
    for form in ("`fit(X, Y)`", "`fit(X, Y, epochs=100)`"):
        row = next(line for line in table.splitlines() if line.startswith(f"| {form}"))
        before, after, ratio = (float(cell) for cell in row.strip("|").split("|")[1:])
        assert before > 0 and after > 0 and abs(ratio - after / before) < 0.01


def test_the_same_work_check_refuses_other_weights(tmp_path):
    # a "before" build whose seeded fits train other weights: every weight
    # drawn from another seed, the rest of fastbp as it is
    fake = tmp_path / "other_weights.py"
    fake.write_text(
        "import runpy, sys, fastbp\n"
        "class Shifted(fastbp.Network):\n"
        "    def __init__(self, *args, seed=None, **kwargs):\n"
        "        super().__init__(*args, seed=1 if seed == 0 else seed, **kwargs)\n"
        "fastbp.Network = Shifted\n"
        "sys.argv = sys.argv[1:]  # the bench's own path, then its options\n"
        f"runpy.run_path({str(BENCH)!r}, run_name='__main__')\n")
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} {fake} \"$@\"\n")
    wrapper.chmod(0o755)
    done = subprocess.run([sys.executable, str(BENCH), "--before", str(wrapper), "--rounds", "3",
                           "--calls", "5", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0
    assert "same-work check failed" in done.stderr
