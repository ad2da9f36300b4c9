#!/usr/bin/env bash
# Regenerate the README's figures under docs/ (needs fastbp[plot] installed,
# or PYTHONPATH=src with the extension built in place).
#
#   docs/loss_curve.png  `fastbp train digits ... --plot`: train and test loss per epoch
#   docs/bench.png       a copy of the plot bench/compare.py wrote to bench/results/
#                        (run `python bench/compare.py` first; skipped if there is none)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
mkdir -p docs

"$python" -m fastbp train digits --hidden 32 --epochs 30 --seed 0 --no-progress \
    --plot docs/loss_curve.png

# the 1-thread plot the README's caption describes, not whichever ran last
bench_plot=bench/results/compare_1thread.png
[ -f "$bench_plot" ] || bench_plot=
if [ -n "$bench_plot" ]; then
    cp "$bench_plot" docs/bench.png
    echo "copied $bench_plot to docs/bench.png"
else
    echo "no benchmark plot in bench/results/ yet: run python bench/compare.py first" >&2
fi
