#!/usr/bin/env bash
# Memory safety, part 2: run a small fit (tools/valgrind_fit.py) under valgrind
# memcheck. Fails on any memcheck error whose stack passes through fastbp's
# kernels, and on any error kind the same interpreter does not already show
# when it merely imports numpy and scipy (the baseline run: CPython and ld.so
# give some noise of their own under memcheck).
#
#   tools/valgrind_fit.sh [LOG_DIR]      # logs default to $TMPDIR
#
# Tests the fastbp that the work tree's src/ provides (an in-place build), or
# else the installed one.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
# the interpreter itself, not a wrapper script (pyenv shims) valgrind would stop at
python=$("${PYTHON:-python3}" -c "import sys; print(sys.executable)")
logs=${1:-${TMPDIR:-/tmp}}
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 2; }
if compgen -G "$repo/src/fastbp/_kernels*.so" >/dev/null; then
    export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
fi

# PYTHONMALLOC=malloc: memcheck sees every allocation (pymalloc's arenas hide them)
# one BLAS thread: the workload's own threads are the ones of interest
memcheck() {
    PYTHONMALLOC=malloc OPENBLAS_NUM_THREADS=1 valgrind --tool=memcheck --num-callers=40 \
        --error-limit=no --leak-check=no --log-file="$1" "$python" "${@:2}"
}
memcheck "$logs/valgrind-baseline.log" -c "import numpy, scipy.linalg, threadpoolctl, threading"
memcheck "$logs/valgrind-fit.log" "$repo/tools/valgrind_fit.py"

"$python" - "$logs/valgrind-baseline.log" "$logs/valgrind-fit.log" <<'PY'
"""Compare the error records of the two memcheck logs."""
import re
import sys


def records(path):
    """(kind, top frames) of every error record, and the ERROR SUMMARY line."""
    found, current, summary = [], None, ""
    for line in open(path):
        body = re.sub(r"^==\d+== ?", "", line.rstrip("\n"))
        if body.startswith("ERROR SUMMARY"):
            summary = body
        elif re.match(r"(Invalid|Use of|Conditional|Syscall|Mismatched|Source and|Argument)",
                      body):
            current = [body]
        elif current is not None and re.match(r"\s+(at|by) ", body):
            current.append(re.sub(r"0x[0-9A-F]+: ", "", body.strip()))
        elif current is not None:
            found.append(current)
            current = None
    return found, summary


baseline, base_summary = records(sys.argv[1])
fit, fit_summary = records(sys.argv[2])
signature = lambda r: (r[0],) + tuple(r[1:4])
known = {signature(r) for r in baseline}
new = [r for r in fit if signature(r) not in known]
def through_kernels(record):
    """An error whose stack reaches fastbp's compiled code, other than its
    module initialisation (which imports scipy: that import's own noise
    shows the module's init frames deep in the stack)."""
    frames = [frame for frame in record[1:] if "_kernels" in frame]
    return bool(frames) and not any(init in frames[0] for init in ("__Pyx_modinit",
                                                                     "__pyx_pymod_exec"))


ours = [r for r in fit if through_kernels(r)]
invalid = sum(r[0].startswith("Invalid") for r in fit)
print(f"baseline (import numpy, scipy): {base_summary}")
print(f"fit workload:                   {fit_summary}")
print(f"invalid reads/writes in the workload: {invalid} "
      f"(baseline: {sum(r[0].startswith('Invalid') for r in baseline)})")
print(f"error records through fastbp._kernels: {len(ours)}; "
      f"error kinds the baseline does not have: {len(new)}")
for r in (ours + new)[:10]:
    print("\n  " + "\n  ".join(r[:8]))
sys.exit(1 if ours or new else 0)
PY
