"""src/fastbp's modules import one another without a circle (issue #27).

Every import counts, also one inside a function: a deferred import hides a
circle from Python, not from the reader.
"""
import ast
import pathlib

import pytest

SOURCE = pathlib.Path(__file__).resolve().parents[1] / "src" / "fastbp"


def module_name(path: pathlib.Path, root: pathlib.Path) -> str:
    parts = ("fastbp",) + path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(source: pathlib.Path = SOURCE) -> dict:
    """fastbp module -> the fastbp modules it imports (the package itself when
    a name comes from a package's ``__init__``)."""
    files = {module_name(path, source): path for path in source.rglob("*.py")}
    # compiled modules (fastbp._kernels) are known by their stubs
    modules = set(files) | {module_name(p, source) for p in source.rglob("*.pyi")}
    graph = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package.split(".")
                if node.level:
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # "from . import x" imports module x where there is one
                targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules
                           else target for alias in node.names]
            else:
                continue
            edges.update(t for t in targets if t in files and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict):
    """One import circle as a list of modules, or None."""
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_checker_finds_a_circle_and_follows_relative_imports(tmp_path):
    package = tmp_path / "fastbp"
    (package / "cli").mkdir(parents=True)
    (package / "__init__.py").write_text("from .a import x\n")
    (package / "a.py").write_text("def f():\n    from .b import y\n")
    (package / "b.py").write_text("from . import a\n")
    (package / "cli" / "__init__.py").write_text("")
    (package / "cli" / "c.py").write_text("from ..b import z\nimport fastbp.a\n")
    graph = import_graph(package)
    assert graph["fastbp.cli.c"] == {"fastbp.b", "fastbp.a"}
    assert graph["fastbp"] == {"fastbp.a"}
    assert find_cycle(graph) in (["fastbp.a", "fastbp.b", "fastbp.a"],
                                 ["fastbp.b", "fastbp.a", "fastbp.b"])
    del graph["fastbp.b"]
    assert find_cycle(graph) is None


def test_fastbp_modules_import_each_other_without_a_circle():
    graph = import_graph()
    assert {"fastbp.network", "fastbp.io", "fastbp._npz"} <= set(graph)
    assert "fastbp.network" in graph["fastbp.io"]  # the edge that remains
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle)


@pytest.mark.parametrize("module", ["fastbp._npz"])
def test_npz_plumbing_imports_no_other_fastbp_module(module):
    assert import_graph()[module] == set()


if __name__ == "__main__":  # python tests/test_import_graph.py: the figure for a closing note
    modules = import_graph()
    circle = find_cycle(modules)
    print(f"{len(modules)} modules, {sum(map(len, modules.values()))} imports: "
          + ("no import circle" if circle is None else "circle " + " -> ".join(circle)))
