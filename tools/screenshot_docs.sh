#!/usr/bin/env bash
# Open the built site in headless Chromium with the network off and check that
# the math renders: every page with a formula is loaded from file://, its DOM
# after the scripts ran is checked by tools/check_docs_math.py (each formula
# typeset by MathJax, no raw TeX left), and a screenshot of the backpropagation
# page is written for a person to look at.
#
#   tools/build_docs.sh && tools/screenshot_docs.sh     # exit 1: a formula left as TeX
#
# Needs Chromium (Debian: apt-get install chromium); without it the check is
# skipped (exit 0, with a note). The network is cut with `unshare -n` (a network
# namespace without interfaces) where the kernel allows it, else every host
# name resolves to nothing. About 3 s a page.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
site=${1:-docs/_build/html}
shots=docs/_build/screenshots

chromium=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
if [ -z "$chromium" ]; then
    echo "screenshot_docs.sh: no Chromium here (apt-get install chromium): skipped" >&2
    exit 0
fi
if [ ! -f "$site/index.html" ]; then
    echo "screenshot_docs.sh: no built site in $site: run tools/build_docs.sh first" >&2
    exit 2
fi

offline=(unshare -n)
no_dns=()
if ! unshare -n true 2>/dev/null; then
    offline=()
    no_dns=(--host-resolver-rules="MAP * ~NOTFOUND")
    echo "screenshot_docs.sh: unshare -n is not allowed here; host names resolve to nothing instead"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
browse() {  # browse OUTPUT-OPTION URL: run the page's scripts for up to 10 s of virtual time
    "${offline[@]}" "$chromium" --headless --no-sandbox --disable-gpu --no-first-run \
        --user-data-dir="$work/profile" "${no_dns[@]}" --virtual-time-budget=10000 \
        --window-size=1200,2000 "$1" "$2" 2>>"$work/chromium.log"
}

started=$SECONDS
mapfile -t pages < <(grep -rl --include='*.html' 'class="math' "$site" | sort)
if [ "${#pages[@]}" -eq 0 ]; then
    echo "screenshot_docs.sh: no page of $site has a formula" >&2
    exit 1
fi
doms=()  # each page's DOM after its scripts ran, under the page's own path
for page in "${pages[@]}"; do
    dom=${page#"$site"/}
    mkdir -p "$work/dom/$(dirname "$dom")"
    browse --dump-dom "file://$(realpath "$page")" > "$work/dom/$dom"
    doms+=("$dom")
done
status=0
checker=$(realpath tools/check_docs_math.py)
(cd "$work/dom" && "$python" "$checker" "${doms[@]}") || status=$?

mkdir -p "$shots"
browse --screenshot="$shots/backprop.png" "file://$(realpath "$site/user_guide/backprop.html")" \
    > /dev/null
echo "screenshot_docs.sh: ${#pages[@]} page(s) with formulas checked offline in" \
     "$((SECONDS - started)) s; screenshot: $shots/backprop.png"
exit "$status"
