#!/usr/bin/env bash
# Smoke run of the asv suite (benchmarks/): every benchmark once, against the
# fastbp installed in the current Python. Nothing is built and nothing is
# written into the tree: asv reads a copy of asv.conf.json whose results,
# html and environment folders lie in a scratch folder. Exits non-zero if a
# benchmark fails to import, set up or run. Needs no terminal (CI).
#
#   tools/asv_quick.sh                # the whole suite
#   tools/asv_quick.sh -b Minibatch   # extra options go to `asv run`
#
# asv must be installed beside fastbp (pip install ".[bench]"); PYTHON picks
# the interpreter (default: python).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
started=$SECONDS

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
"$python" - "$scratch" <<'PY'
import json
import os
import sys

scratch = sys.argv[1]
with open("asv.conf.json", encoding="utf-8") as f:
    conf = json.load(f)
# asv resolves paths from the folder of the config it reads
conf["repo"] = os.getcwd()
conf["benchmark_dir"] = os.path.abspath(conf["benchmark_dir"])
for key in ("env_dir", "results_dir", "html_dir"):
    conf[key] = os.path.join(scratch, key)
with open(os.path.join(scratch, "asv.conf.json"), "w", encoding="utf-8") as f:
    json.dump(conf, f)
PY

# asv asks about the machine on its first run unless ~/.asv-machine.json has
# an entry; a named entry of its own leaves the user's entry alone
"$python" -m asv machine --yes --machine asv-quick --config "$scratch/asv.conf.json" \
    </dev/null >/dev/null
# --python=same: the current interpreter and its fastbp, no build;
# --quick: one call per benchmark; --dry-run: no results saved;
# forkserver imports the suite once, not once per benchmark (50 s -> 15 s here)
"$python" -m asv run --config "$scratch/asv.conf.json" --machine asv-quick \
    --python=same --quick --dry-run --show-stderr --launch-method forkserver "$@" </dev/null
echo "asv quick run passed in $((SECONDS - started)) s"
