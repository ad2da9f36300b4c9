#!/usr/bin/env bash
# Memory safety, part 1: build fastbp with Cython's bounds and initialisation
# checks on (FASTBP_DEBUG_KERNELS=1, read by setup.py) in a scratch copy of the
# repository, and run the kernel tests, the fit tests and the threaded predict
# tests against that build.
# With gcc's AddressSanitizer at hand the build is instrumented too: it sees
# reads and writes past a buffer in the C headers (the AVX-512 tiles among
# them), which valgrind cannot run and the bounds checks do not reach.
#
#   tools/debug_kernel_tests.sh            # uses the active python
#
# The release build in the work tree or in site-packages is never touched or
# imported: the copy gets its own .so and the tests check they run on it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
python=${PYTHON:-python3}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fastbp-debug.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# shellcheck source=tools/scratch_copy.sh
. "$repo/tools/scratch_copy.sh"
scratch_copy "$repo" "$scratch/repo"

# AddressSanitizer: instrument the build, preload the runtime into Python
asan_lib=$(gcc -print-file-name=libasan.so 2>/dev/null || true)
asan_env=()
if [ -n "$asan_lib" ] && [ -f "$asan_lib" ]; then
    export CFLAGS="${CFLAGS:+$CFLAGS }-fsanitize=address -fno-omit-frame-pointer"
    export LDFLAGS="${LDFLAGS:+$LDFLAGS }-fsanitize=address"
    # reports go to files: pytest holds stderr, and a report ends the process
    asan_env=(LD_PRELOAD="$asan_lib" ASAN_OPTIONS="detect_leaks=0:log_path=$scratch/asan")
    echo "AddressSanitizer: $asan_lib"
else
    echo "AddressSanitizer not available: bounds checks only"
fi

cd "$scratch/repo"
if "$python" -c "import Cython, setuptools, numpy, scipy" 2>/dev/null; then
    # build dependencies at hand (a dev machine): build in place, offline
    FASTBP_DEBUG_KERNELS=1 "$python" setup.py -q build_ext --inplace --force >"$scratch/build.log" 2>&1 ||
        { cat "$scratch/build.log"; exit 1; }
    site="$scratch/repo/src"
else
    # CI's venv has the runtime packages only: let pip build in isolation
    # (the variable reaches the isolated build through the environment)
    FASTBP_DEBUG_KERNELS=1 "$python" -m pip install -v --no-deps --no-cache-dir \
        --target "$scratch/site" . >"$scratch/build.log" 2>&1 || { cat "$scratch/build.log"; exit 1; }
    site="$scratch/site"
fi
echo "debug build: $(ls "$site"/fastbp/_kernels*.so)"
# the flags must have reached the build (pip's isolated one too). The
# dynamic section is read into a variable first: `ldd | grep -q` under
# pipefail fails whenever grep stops reading before ldd has written all.
if [ ${#asan_env[@]} -gt 0 ]; then
    needed=$(readelf -d "$site"/fastbp/_kernels*.so)
    if ! grep -q 'NEEDED.*libasan' <<<"$needed"; then
        echo "the debug build does not link AddressSanitizer; its libraries:" >&2
        grep NEEDED <<<"$needed" >&2 || true
        grep -E '^ *(gcc|cc|x86_64-linux-gnu-gcc) ' "$scratch/build.log" >&2 || true
        exit 1
    fi
fi

cd "$scratch"  # away from any work tree, so only $site provides fastbp
status=0
env "${asan_env[@]}" FASTBP_EXPECT_DEBUG_KERNELS=1 FASTBP_DEBUG_BUILD_DIR="$scratch" PYTHONPATH="$site" \
    "$python" -m pytest -q -p no:cacheprovider -c "$scratch/repo/pyproject.toml" \
    "$scratch/repo/tests/test_kernels.py" \
    "$scratch/repo/tests/test_training_loop.py" \
    "$scratch/repo/tests/test_trainer.py" \
    "$scratch/repo/tests/test_network.py" \
    "$scratch/repo/tests/test_sparse.py" \
    "$scratch/repo/tests/test_threads.py::test_predict_on_threads_matches_the_reference_and_one_thread" \
    "$scratch/repo/tests/test_threads.py::test_predict_threads_claim_blocks_of_rows_and_give_the_same_bits" \
    "$scratch/repo/tests/test_threads.py::test_threaded_predict_scans_its_blocks_and_names_the_first_bad_value" \
    "$scratch/repo/tests/test_threads.py::test_predict_threads_convert_other_layouts_to_the_bits_of_a_converted_x" \
    "$scratch/repo/tests/test_threads.py::test_predict_hands_other_float_layouts_to_the_threads_unconverted" \
    "$scratch/repo/tests/test_threads.py::test_predict_threads_check_x_through_the_first_layer" \
    "$scratch/repo/tests/test_threads.py::test_predict_threads_twin_checks_its_buffers" \
    "$scratch/repo/tests/test_predict_pool.py" \
    "$scratch/repo/tests/test_memory.py::test_the_debug_build_checks_bounds" \
    "$scratch/repo/tests/test_properties.py::test_bad_input_ends_in_an_error_or_the_clean_answer" \
    "$scratch/repo/tests/test_properties.py::test_every_layout_reaches_the_kernels_aligned_and_contiguous" || status=$?
if compgen -G "$scratch/asan*" >/dev/null; then
    cat "$scratch"/asan*
    echo "AddressSanitizer reported errors" >&2
    exit 1
fi
exit $status
