#!/usr/bin/env bash
# Regenerate the README's figures under docs/ (needs fastbp[plot] installed,
# or PYTHONPATH=src with the extension built in place).
#
#   docs/loss_curve.png  the plot of `fastbp train digits --plot`, made the way the
#                        documentation build makes it (docs/conf.py,
#                        write_generated_pages: the run, its transcript and its
#                        plot in docs/_generated/), so the README and the docs
#                        show one run
#   docs/bench.png       a copy of the plot bench/compare.py wrote to bench/results/
#                        (run `python bench/compare.py` first; skipped if there is none)
#
# The documentation itself needs neither: tools/build_docs.sh draws its own
# figures into docs/_generated/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mkdir -p docs

# importing conf.py runs nothing; write_generated_pages runs fastbp train digits
"$python" - <<'PY'
import runpy
runpy.run_path("docs/conf.py")["write_generated_pages"]()
PY
cp docs/_generated/train_digits.png docs/loss_curve.png
echo "copied the plot of fastbp train digits --plot (docs/_generated/train_digits.png) to docs/loss_curve.png"

# the 1-thread plot the README's caption describes, not whichever ran last
bench_plot=bench/results/compare_1thread.png
[ -f "$bench_plot" ] || bench_plot=
if [ -n "$bench_plot" ]; then
    cp "$bench_plot" docs/bench.png
    echo "copied $bench_plot to docs/bench.png"
else
    echo "no benchmark plot in bench/results/ yet: run python bench/compare.py first" >&2
fi
