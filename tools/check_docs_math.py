#!/usr/bin/env python3
"""Check that MathJax typeset every formula of a page, from the page's DOM.

    python tools/check_docs_math.py PAGE.dom.html [...]

Each argument is the DOM a browser holds after running the page's scripts
(``chromium --headless --dump-dom``; ``tools/screenshot_docs.sh`` makes them
with the network off). Sphinx writes a formula as ``<span class="math">\\(...\\)</span>``
or ``<div class="math">\\[...\\]</div>``; MathJax replaces the TeX with an
``<mjx-container>``. A math element without one, or with TeX left beside it,
is reported, and the exit code is 1. A page without any formula passes.
"""
from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path

#: elements without an end tag: they never enter the stack of open elements
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
#: what a formula MathJax has not typeset still shows
TEX_DELIMITERS = ("\\(", "\\)", "\\[", "\\]", "$$")


class _Formulas(HTMLParser):
    """Collects each math element's rendered flag and the text outside MathJax's output."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.formulas = []   # [rendered, text outside <mjx-container>]
        self._open = []      # tag names of the open elements
        self._math = []      # (depth, formula) of the open math elements
        self._mjx_depth = None

    def handle_starttag(self, tag, attrs):
        if tag in VOID:
            return
        self._open.append(tag)
        classes = (dict(attrs).get("class") or "").split()
        if tag in ("span", "div") and "math" in classes and self._mjx_depth is None:
            formula = [False, ""]
            self.formulas.append(formula)
            self._math.append((len(self._open), formula))
        elif tag == "mjx-container" and self._mjx_depth is None:
            self._mjx_depth = len(self._open)
            if self._math:
                self._math[-1][1][0] = True

    def handle_endtag(self, tag):
        if tag in VOID or tag not in self._open:
            return
        while self._open:  # close up to the matching open element
            depth = len(self._open)
            closed = self._open.pop()
            if self._mjx_depth == depth:
                self._mjx_depth = None
            if self._math and self._math[-1][0] == depth:
                self._math.pop()
            if closed == tag:
                break

    def handle_data(self, data):
        if self._math and self._mjx_depth is None:
            self._math[-1][1][1] += data


def unrendered_formulas(dom: str) -> list:
    """The TeX of every math element in ``dom`` that MathJax did not typeset
    (no ``<mjx-container>`` inside, or TeX delimiters left in its text)."""
    parser = _Formulas()
    parser.feed(dom)
    parser.close()
    return [" ".join(text.split()) or "(empty)" for rendered, text in parser.formulas
            if not rendered or any(mark in text for mark in TEX_DELIMITERS)]


def count_formulas(dom: str) -> int:
    """How many math elements ``dom`` holds."""
    parser = _Formulas()
    parser.feed(dom)
    parser.close()
    return len(parser.formulas)


def main(argv=None) -> int:
    paths = [Path(arg) for arg in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    failed = 0
    for path in paths:
        dom = path.read_text(encoding="utf-8", errors="replace")
        raw = unrendered_formulas(dom)
        for tex in raw:
            print(f"{path}: not typeset: {tex[:100]}", file=sys.stderr)
        failed += bool(raw)
        if not raw:
            print(f"{path}: {count_formulas(dom)} formulas typeset")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
