#!/usr/bin/env bash
# The "Extending fastbp" page's diffs (docs/user_guide/extending/*.diff) do what
# the page says: applied to a scratch copy of the repository, they build, and
# their tests pass against that build with PyTorch as the oracle, together with
# tests/test_tables.py (which runs the new activation's row against the
# reference and the graph), the pins they update and tests/test_csrc_layout.py.
# A skipped test fails the check: CI has torch.
#
#   tools/check_extending.sh            # uses the active python
#
# tests/test_extending.py (the suite) only checks that the diffs still apply.
# The work tree and the installed fastbp are never touched: the copy gets its
# own .so, and the tests check they import it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
started=$SECONDS
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fastbp-extending.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# shellcheck source=tools/scratch_copy.sh
. "$repo/tools/scratch_copy.sh"
scratch_copy "$repo" "$scratch/repo"

cd "$scratch/repo"
git init -q .  # a repository of its own, so git apply patches this copy only
diffs=(docs/user_guide/extending/adamax.diff docs/user_guide/extending/mish.diff)
git apply "${diffs[@]}" || {
    echo "the page's diffs no longer apply: remake them (docs/user_guide/extending.rst)" >&2
    exit 1
}

if "$python" -c "import Cython, setuptools, numpy, scipy" 2>/dev/null; then
    # build dependencies at hand (a dev machine): build in place, offline
    "$python" setup.py -q build_ext --inplace --force >"$scratch/build.log" 2>&1 ||
        { cat "$scratch/build.log"; exit 1; }
    site="$scratch/repo/src"
else
    # CI's venv has the runtime packages only: let pip build in isolation
    "$python" -m pip install -v --no-deps --no-cache-dir --target "$scratch/site" . \
        >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
    site="$scratch/site"
fi
built=$((SECONDS - started))

cd "$scratch"  # away from any work tree, so only $site provides fastbp
# pytest in the process that checked which fastbp it imports; a plugin counts
# the outcomes, skips at collection (importorskip) included
PYTHONPATH="$site" SITE="$site" SCRATCH="$scratch" "$python" - <<'PY'
import os
import sys

import pytest

import fastbp
from fastbp import _kernels

site, scratch = os.environ["SITE"], os.environ["SCRATCH"]
repo = os.path.join(scratch, "repo")
if not _kernels.__file__.startswith(site + os.sep):
    sys.exit(f"check_extending: the tests would import {_kernels.__file__}, not the build in {site}")
if "adamax" not in _kernels.optimizer_kinds() or "mish" not in fastbp.ACTIVATIONS:
    sys.exit("check_extending: the build lacks adamax or mish")


class Outcomes:
    def __init__(self):
        self.passed, self.failed, self.skipped = 0, 0, []

    def pytest_collectreport(self, report):
        if report.skipped:
            self.skipped.append(report.nodeid)
        elif report.failed:
            self.failed += 1

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped.append(report.nodeid)
        elif report.failed:
            self.failed += 1
        elif report.when == "call":
            self.passed += 1


outcomes = Outcomes()
# the diffs' own tests, the tables' (every row against the reference and the
# graph), the pins the diffs update, and the csrc layout's rules
files = ["tests/test_optim_adamax.py", "tests/test_activation_mish.py",
         "tests/test_tables.py", "tests/test_trainer.py::test_codes_are_the_python_tables",
         "tests/test_csrc_layout.py"]
status = pytest.main(["-q", "-p", "no:cacheprovider", "-c", f"{repo}/pyproject.toml"]
                     + [f"{repo}/{file}" for file in files], plugins=[outcomes])
summary = (f"{outcomes.passed} passed, {outcomes.failed} failed, "
           f"{len(outcomes.skipped)} skipped")
if outcomes.skipped:
    print("skipped (torch, onnxruntime and threads are required here):",
          *outcomes.skipped, sep="\n  ", file=sys.stderr)
    sys.exit(f"check_extending: {summary}")
if status != 0 or outcomes.failed or not outcomes.passed:
    sys.exit(f"check_extending: {summary} (pytest exit {int(status)})")
with open(os.path.join(scratch, "summary.txt"), "w") as out:
    out.write(summary)
PY
summary=$(cat "$scratch/summary.txt")
echo "check_extending: adamax.diff and mish.diff applied and built in ${built} s;" \
    "their tests, test_tables.py, test_csrc_layout.py: ${summary}; $((SECONDS - started)) s in all"
