#!/usr/bin/env bash
# Install fastbp as a user would, one fresh virtual environment per install
# path the README names, and run there the thing the README says that path
# enables. CI calls it with the built wheel standing in for "." (the wheel is
# built from the sdist of this checkout):
#
#   tools/ci_install_paths.sh WHEEL WORKDIR [PATH ...]
#
# PATH is one of: plain sklearn,plot dask onnx bench docs (default: all). The test
# path (".[test]", the README's second Quick start command) is .ci/run's own
# venv and runs last there, so that its result ends the log.
set -euo pipefail
cd "$(dirname "$0")/.."
wheel=$(realpath "$1")
work=$(realpath "$2")
shift 2
paths=("$@")
[ ${#paths[@]} -gt 0 ] || paths=(plain sklearn,plot dask onnx bench docs)

# a fresh venv named after the path, with pip up to date; prints its python
fresh_venv() {
    local dir="$work/venv-${1//,/-}"
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
    echo "$dir/bin/python"
}

# the modules a path must not bring in: the plain install stays light
check_not_imported() {
    local python=$1
    shift
    "$python" - "$@" <<'PY'
import sys
import fastbp, fastbp.cli  # noqa: F401  (the package and its command line)
heavy = [m for m in sys.argv[1:] if m in sys.modules]
assert not heavy, f"import fastbp pulled in {heavy}"
PY
}

for path in "${paths[@]}"; do
    started=$SECONDS
    python=$(fresh_venv "$path")
    bin=$(dirname "$python")
    case $path in
    plain)
        # README: pip install . && fastbp train digits
        "$python" -m pip install -q "$wheel"
        check_not_imported "$python" sklearn matplotlib dask torch onnx
        (cd "$work" && "$bin/fastbp" train digits --no-progress | tail -n 3)
        ;;
    sklearn,plot)
        # the estimators (scikit-learn) and the plots (matplotlib)
        "$python" -m pip install -q "$wheel[sklearn,plot]"
        (cd "$work" && MPLBACKEND=Agg "$python" - <<'PY'
import fastbp
from fastbp import MLPClassifier
from sklearn.model_selection import train_test_split
X, y = fastbp.load_digits(one_hot=False)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0)
clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(X_train, y_train)
accuracy = clf.score(X_test, y_test)
assert accuracy > 0.9, accuracy
net = fastbp.Network([64, 16, 10], output_activation="softmax", seed=0)
history = net.fit(X_train, y_train, loss="cross_entropy", epochs=3)
fastbp.plot_history(history, "history.png", loss="cross_entropy")
print(f"sklearn,plot: MLPClassifier test accuracy {accuracy:.4f}; plot_history wrote history.png")
PY
        )
        ;;
    dask)
        # fastbp.dask on a local in-process cluster, bounded in time
        "$python" -m pip install -q "$wheel[dask]"
        (cd "$work" && timeout 300 "$python" - <<'PY'
import dask.array as da
from distributed import Client, LocalCluster
import fastbp
from fastbp.dask import DaskMLPClassifier
X, y = fastbp.load_digits(one_hot=False)
# threads talking in-process, not worker processes: those could not re-import
# a script read from stdin, and in-process workers open no port at all
with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                  dashboard_address=None) as cluster, Client(cluster, timeout=60):
    Xd, yd = da.from_array(X, chunks=500), da.from_array(y, chunks=500)
    clf = DaskMLPClassifier(hidden_layer_sizes=(32,), solver="lbfgs", max_iter=300,
                            random_state=0).fit(Xd, yd)
    accuracy = float(clf.score(Xd, yd))
assert accuracy > 0.9, accuracy
print(f"dask: DaskMLPClassifier on 2 local workers, training accuracy {accuracy:.4f}")
PY
        )
        ;;
    onnx)
        # to_onnx writes a model that onnx's checker accepts
        "$python" -m pip install -q "$wheel[onnx]"
        (cd "$work" && "$python" - <<'PY'
import onnx
import fastbp
net = fastbp.Network([64, 16, 10], output_activation="softmax", seed=0)
model = fastbp.to_onnx(net, "net.onnx")
onnx.checker.check_model(onnx.load("net.onnx"))
print(f"onnx: to_onnx wrote a valid model of {len(onnx.load('net.onnx').graph.node)} nodes")
PY
        )
        ;;
    bench)
        # the benchmarks' extra runs the asv suite once (benchmarks/, no build)
        "$python" -m pip install -q "$wheel[bench]"
        PYTHON="$python" tools/asv_quick.sh
        ;;
    docs)
        # README: pip install ".[docs]" && tools/build_docs.sh
        "$python" -m pip install -q "$wheel[docs]"
        PYTHON="$python" PATH="$bin:$PATH" tools/build_docs.sh
        # the math renders with the network off, in headless Chromium (Debian's,
        # installed here as libfann is in .ci/run; skipped with a note without it)
        if ! command -v chromium >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1 \
                || echo "chromium not installed: the offline math check is skipped"
        fi
        PYTHON="$python" tools/screenshot_docs.sh
        ;;
    *)
        echo "ci_install_paths.sh: unknown install path $path" >&2
        exit 2
        ;;
    esac
    label=".[$path]"
    [ "$path" = plain ] && label="."
    echo "install path $label: ok in $((SECONDS - started)) s"
done
