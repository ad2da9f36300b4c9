#!/usr/bin/env bash
# Build the documentation site into docs/_build/html with warnings as errors.
#
#   pip install ".[docs]"        # the package itself and the doc tools (this script installs nothing)
#   tools/build_docs.sh          # from anywhere in the checkout
#
# The build documents the *installed* fastbp (autodoc imports it), runs the
# gallery's plot_*.py examples (each well under 20 s; one whose imports fail
# here is shown with a note instead), runs `fastbp train digits` for the
# command-line pages (docs/_generated/) and reads bench/results/ for the speed
# plots. Extra arguments go to sphinx-build, e.g.
# `tools/build_docs.sh -D plot_gallery=0` to skip running the examples.
# Runs from a clean output folder, so a stale page cannot hide a warning.
# Then tools/check_docs_offline.py: no page may load anything from another host.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}

# the doc tools must come from the environment CI prepared
"$python" - <<'PY'
import importlib.util, sys
missing = [m for m in ("sphinx", "pydata_sphinx_theme", "numpydoc", "sphinx_gallery",
                       "sphinx-mathjax-offline", "matplotlib", "sklearn", "fastbp")
           if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"build_docs.sh: missing {', '.join(missing)}: pip install \".[docs]\" first")
PY

# a fresh build: the gallery's output and the generated API stubs included
rm -rf docs/_build docs/auto_examples docs/api/generated docs/_generated docs/sg_execution_times.rst
started=$SECONDS
# MPLBACKEND: the examples draw without a display; -j 1: the machine is shared
MPLBACKEND=Agg "$python" -m sphinx -W --keep-going -b html -j 1 "$@" docs docs/_build/html
echo "documentation built in $((SECONDS - started)) s: docs/_build/html/index.html"
"$python" tools/check_docs_offline.py docs/_build/html
