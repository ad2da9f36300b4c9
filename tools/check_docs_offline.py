#!/usr/bin/env python3
"""Check that the built documentation loads nothing from another host.

    python tools/check_docs_offline.py [docs/_build/html]

Scans every ``.html`` and ``.css`` file of the built site for resources a
browser fetches when it shows the page: ``<script src>``, ``<link href>``
(but the links that load nothing: ``rel="canonical"``, ``"next"``, ...),
``<img src>``, ``<iframe src>`` and the like, and ``@import`` / ``url(...)`` in
stylesheets, ``<style>`` blocks and ``style=`` attributes. One that points to
``http://``, ``https://`` or a protocol-relative ``//host`` is reported with
its file and line, and the exit code is 1. Ordinary ``<a href>`` links are
fine: a reader follows them, the page does not load them.

JavaScript files are not read (their text names URLs that they never load);
``tools/screenshot_docs.sh`` opens a page with the network off instead.
"""
from __future__ import annotations

import argparse
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

#: a URL on another host
EXTERNAL = re.compile(r"^\s*(?:https?:)?//", re.I)
#: CSS that fetches: url(...) and @import "..." (the latter without url())
CSS_FETCHES = re.compile(
    r"""url\(\s*(['"]?)(?P<url>[^'")\s]+)\1\s*\)|@import\s+(['"])(?P<imported>[^'"]+)\3""",
    re.I)
#: the attribute of each tag that makes the browser fetch something
FETCHING_ATTRIBUTES = {
    "script": ("src",), "link": ("href",), "img": ("src", "srcset"), "iframe": ("src",),
    "frame": ("src",), "embed": ("src",), "object": ("data",), "source": ("src", "srcset"),
    "audio": ("src",), "video": ("src", "poster"), "track": ("src",), "input": ("src",),
}
#: <link rel=...> values that only name a page and load nothing
NON_LOADING_RELS = {"canonical", "alternate", "next", "prev", "index", "search", "help",
                    "license", "author", "bookmark", "me"}


def css_urls(text: str) -> list:
    """The URLs a stylesheet's text fetches (``url(...)``, ``@import``), in order."""
    return [match.group("url") or match.group("imported") for match in CSS_FETCHES.finditer(text)]


class _Page(HTMLParser):
    """Collects (line, what, url) for every external resource of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.found = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        line = self.getpos()[0]
        rels = set((attributes.get("rel") or "").lower().split())
        if not (tag == "link" and rels and rels <= NON_LOADING_RELS):
            for name in FETCHING_ATTRIBUTES.get(tag, ()):
                value = attributes.get(name) or ""
                # srcset: "url 1x, url 2x"
                urls = [part.split()[0] for part in value.split(",") if part.split()] \
                    if name == "srcset" else [value]
                self.found += [(line, f"<{tag} {name}=>", url) for url in urls
                               if EXTERNAL.match(url)]
        if attributes.get("style"):
            self.found += [(line, f"<{tag} style=>", url)
                           for url in css_urls(attributes["style"]) if EXTERNAL.match(url)]
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            line = self.getpos()[0]
            self.found += [(line, "<style>", url) for url in css_urls(data) if EXTERNAL.match(url)]


def external_loads(site: Path) -> list:
    """Every external resource the pages and stylesheets under ``site`` load,
    as ``"relative/path:line: what url"`` strings, sorted."""
    problems = []
    for path in sorted(site.rglob("*")):
        if path.suffix not in (".html", ".css") or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        where = path.relative_to(site).as_posix()
        if path.suffix == ".html":
            page = _Page()
            page.feed(text)
            page.close()
            problems += [f"{where}:{line}: {what} {url}" for line, what, url in page.found]
        else:
            for number, line in enumerate(text.splitlines(), 1):
                problems += [f"{where}:{number}: url()/@import {url}"
                             for url in css_urls(line) if EXTERNAL.match(url)]
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("site", nargs="?", type=Path,
                        default=Path(__file__).resolve().parents[1] / "docs" / "_build" / "html",
                        help="the built site (default: docs/_build/html)")
    args = parser.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"check_docs_offline: no built site in {args.site} (run tools/build_docs.sh)",
              file=sys.stderr)
        return 2
    problems = external_loads(args.site)
    for problem in problems:
        print(f"loads from another host: {problem}", file=sys.stderr)
    if problems:
        print(f"check_docs_offline: {len(problems)} external load(s) in {args.site}",
              file=sys.stderr)
        return 1
    pages = sum(1 for _ in args.site.rglob("*.html"))
    print(f"check_docs_offline: {pages} pages and their stylesheets load nothing from "
          "another host")
    return 0


if __name__ == "__main__":
    sys.exit(main())
