"""Type information ships with the package, and the compiled module's stub matches it."""
import ast
import enum
import inspect
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import fastbp
from fastbp import _kernels

PACKAGE = Path(fastbp.__file__).parent


def test_py_typed_and_stub_are_installed():
    assert (PACKAGE / "py.typed").is_file()
    assert (PACKAGE / "_kernels.pyi").is_file()


def stubtest(cwd, mypy_path=None):
    """Run ``mypy.stubtest fastbp._kernels``; the CompletedProcess."""
    env = dict(os.environ)
    # an installed package is found through its py.typed; a source tree
    # (PYTHONPATH=src) needs MYPYPATH, which must not point at site-packages
    root = PACKAGE.parent
    if mypy_path is None and root.name not in ("site-packages", "dist-packages"):
        mypy_path = root
    if mypy_path is not None:
        env["MYPYPATH"] = str(mypy_path)
    return subprocess.run([sys.executable, "-m", "mypy.stubtest", "fastbp._kernels"], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=300)


def test_stub_matches_the_compiled_module(tmp_path):
    pytest.importorskip("mypy.stubtest")
    result = stubtest(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 module" in result.stdout


def test_stubtest_catches_a_wrong_stub(tmp_path):
    """The check above has teeth: a renamed parameter and a missing function fail it."""
    pytest.importorskip("mypy.stubtest")
    fake = tmp_path / "stubs" / "fastbp"
    fake.mkdir(parents=True)
    (fake / "__init__.pyi").write_text("")
    text = (PACKAGE / "_kernels.pyi").read_text()
    assert "def activate(a:" in text
    text = text.replace("def activate(a:", "def activate(x:")
    text = text.replace("def set_blas_min_flops(flops: int) -> int: ...\n", "")
    (fake / "_kernels.pyi").write_text(text)
    result = stubtest(tmp_path, mypy_path=tmp_path / "stubs")
    assert result.returncode == 1
    assert 'stub parameter "x" differs from runtime parameter "a"' in result.stdout
    assert "fastbp._kernels.set_blas_min_flops is not present in stub" in result.stdout


def test_stub_parameters_match_without_mypy():
    """The same names as the runtime signatures, checked with ast alone."""
    tree = ast.parse((PACKAGE / "_kernels.pyi").read_text())
    stubbed = {node.name: [a.arg for a in node.args.args]
               for node in tree.body if isinstance(node, ast.FunctionDef)}
    public = {name: list(inspect.signature(obj).parameters)
              for name, obj in vars(_kernels).items()
              if callable(obj) and not isinstance(obj, type) and not name.startswith("_")}
    assert len(public) >= 10
    assert {name: stubbed.get(name) for name in public} == public


def test_stub_classes_match_without_mypy():
    """Every public class (the code enums, Trainer) is in the stub, with the
    runtime's method parameters and enum members."""
    tree = ast.parse((PACKAGE / "_kernels.pyi").read_text())
    stubbed = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    classes = {name: obj for name, obj in vars(_kernels).items()
               if isinstance(obj, type) and not name.startswith("_")}
    assert {"OptimizerKind", "Trainer"} <= set(classes)
    assert set(classes) <= set(stubbed)
    for name, cls in classes.items():
        body = stubbed[name].body
        if issubclass(cls, enum.Enum):
            members = {node.targets[0].id: node.value.value for node in body
                       if isinstance(node, ast.Assign)}
            assert members == {m.name: m.value for m in cls}, name
            continue
        for node in body:
            if isinstance(node, ast.FunctionDef) and not node.decorator_list:
                if node.name == "__init__":
                    # a cdef class's __init__ has no runtime signature: its
                    # docstring's Parameters section names them instead
                    runtime = ["self"] + _documented_parameters(cls.__doc__)
                else:
                    runtime = list(inspect.signature(getattr(cls, node.name)).parameters)
                assert [a.arg for a in node.args.args] == runtime, f"{name}.{node.name}"


def _documented_parameters(doc):
    """The parameter names of a numpydoc Parameters section, in order."""
    section = doc.split("Parameters\n")[1].split("\n\n    ")[0]
    names = []
    for line in section.splitlines():
        match = re.match(r"^    (\w+(?:, \w+)*) :", line)
        if match:
            names += match.group(1).split(", ")
    return names
