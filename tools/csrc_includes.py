"""Print which csrc/*.pxi part uses names from which other, in include order.

    python tools/csrc_includes.py          # the graph; exit status 1 on a circle

_kernels.pyx includes its parts in one module, so Cython resolves a name
from any of them; the rule (see _kernels.pyx's contents) is that a part uses
only what the parts above it define. An edge to a part included later is
printed as LATER and fails: with it, two parts depend on each other.

A name belongs to the first part that defines it at module level (a def,
cdef or cpdef function, struct or class, a module variable, or a function
or constant declared from a C header); comments and docstrings are skipped.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

CSRC = Path(__file__).resolve().parent.parent / "csrc"

_FUNCTION = re.compile(r"^c?p?def\s+(?:(?:inline|public|class|struct)\s+)*"
                       r"(?:[\w.\[\]]+\s+\**)*?(\w+)\s*[(:]", re.M)
_VARIABLE = re.compile(r"^(?:cdef\s+[\w ]+?\s)?(\w+)\s*=", re.M)
_EXTERN_BLOCK = re.compile(r"^cdef extern from[^\n]*\n((?:[ \t]+[^\n]*\n|\n)+)", re.M)
_EXTERN_FUNCTION = re.compile(r"(\w+)\s*\(")
_EXTERN_CONSTANT = re.compile(r"^\s+(?:const\s+)?\w+\s+(\w+)\s*$", re.M)
_EXTERN_TYPE = re.compile(r"ctypedef\s[^\n]*?(\w+)(?:\)\(|:|\s*$)", re.M)
_C_TYPES = {"void", "int", "double", "float", "char"}


def include_order(pyx: Path) -> list[str]:
    return re.findall(r'^include "(\S+)"', pyx.read_text(), re.M)


def defined_names(text: str) -> set[str]:
    names = set(_FUNCTION.findall(text)) | set(_VARIABLE.findall(text))
    for block in _EXTERN_BLOCK.findall(text):
        names |= set(_EXTERN_FUNCTION.findall(block)) - _C_TYPES
        names |= set(_EXTERN_CONSTANT.findall(block))
        names |= set(_EXTERN_TYPE.findall(block))
    return names


def code_words(text: str) -> set[str]:
    text = re.sub(r'"""[\s\S]*?"""', "", text)
    text = re.sub(r"#[^\n]*", "", text)
    return set(re.findall(r"\b\w+\b", text))


def edges(csrc: Path = CSRC) -> list[tuple[str, str, list[str]]]:
    """(user, owner, names) for every part using names another part defines."""
    order = include_order(csrc / "_kernels.pyx")
    texts = {part: (csrc / part).read_text() for part in order}
    defined = {part: defined_names(texts[part]) for part in order}
    owner: dict[str, str] = {}
    for part in order:
        for name in defined[part]:
            owner.setdefault(name, part)
    found = []
    for part in order:
        uses: dict[str, list[str]] = {}
        for word in code_words(texts[part]) - defined[part]:
            if word in owner:
                uses.setdefault(owner[word], []).append(word)
        for other in sorted(uses, key=order.index):
            found.append((part, other, sorted(uses[other])))
    return found


def later_edges(csrc: Path = CSRC) -> list[tuple[str, str, list[str]]]:
    """The edges from a part to one included after it."""
    order = include_order(csrc / "_kernels.pyx")
    return [e for e in edges(csrc) if order.index(e[1]) > order.index(e[0])]


def main() -> int:
    order = include_order(CSRC / "_kernels.pyx")
    for user, owner, names in edges():
        later = order.index(owner) > order.index(user)
        shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
        print(f"{user:16s} -> {owner:16s} {'LATER ' if later else ''}{shown}")
    bad = later_edges()
    print(f"{len(bad)} edge(s) to a part included later")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
