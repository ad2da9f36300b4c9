"""Count reads of another object's private attribute in src/fastbp.

    python tools/count_private_reads.py            # total and per file
    python tools/count_private_reads.py --list     # every occurrence, file:line

A "private read" is an attribute access ``obj._name`` (one leading
underscore or more, not a ``__dunder__``) whose object is not ``self`` or
``cls``: code reaching into state another object keeps to itself. Accesses
through a module (``_kernels.Trainer``, ``np._core``) count too when the
attribute is private. Issue #27 asks for at most 15.
"""
from __future__ import annotations

import argparse
import ast
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1] / "src" / "fastbp"
OWN = {"self", "cls"}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_reads(source: str):
    """(line, text) of every private attribute read on another object."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and is_private(node.attr):
            if isinstance(node.value, ast.Name) and node.value.id in OWN:
                continue
            found.append((node.lineno, ast.unparse(node)))
    return sorted(found)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print every occurrence")
    parser.add_argument("root", nargs="?", default=str(ROOT))
    args = parser.parse_args(argv)
    root = pathlib.Path(args.root)
    total = 0
    for path in sorted(root.rglob("*.py")):
        reads = private_reads(path.read_text())
        if not reads:
            continue
        total += len(reads)
        print(f"{len(reads):4d}  {path.relative_to(root)}")
        if args.list:
            for line, text in reads:
                print(f"        {line}: {text}")
    print(f"{total:4d}  total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
