"""The asv suite (benchmarks/, asv.conf.json) is well formed.

Running it is tools/asv_quick.sh (every benchmark once, ~25 s); these checks
are the cheap part: the configuration points at the suite and keeps asv's
output out of git, each module imports, each benchmark's signature matches
its parameters, and the suite reaches fastbp through its public names only,
so that it runs against any commit that has them.
"""
import ast
import importlib
import inspect
import json
from pathlib import Path

import pytest

import fastbp

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "asv.conf.json"
#: asv's prefixes of benchmark methods
BENCHMARK_PREFIXES = ("time_", "timeraw_", "track_", "mem_", "peakmem_")

pytestmark = pytest.mark.skipif(not CONFIG.exists(),
                                reason="no asv.conf.json beside tests/ (an unpacked sdist)")


def _config() -> dict:
    return json.loads(CONFIG.read_text(encoding="utf-8"))


def _suite_dir() -> Path:
    return ROOT / _config()["benchmark_dir"]


def _module_paths() -> list:
    return sorted(p for p in _suite_dir().glob("*.py") if p.name != "__init__.py")


def _import_suite(monkeypatch) -> list:
    """The suite's modules, imported as asv does: a package named for its folder."""
    suite = _suite_dir()
    monkeypatch.syspath_prepend(str(suite.parent))
    return [importlib.import_module(f"{suite.name}.{p.stem}") for p in _module_paths()]


def _benchmark_classes(modules) -> list:
    return [cls for module in modules for cls in vars(module).values()
            if inspect.isclass(cls) and cls.__module__ == module.__name__
            and any(name.startswith(BENCHMARK_PREFIXES) for name in vars(cls))]


def test_config_names_the_suite_and_keeps_asv_output_out_of_git():
    conf = _config()
    assert conf["project"] == "fastbp"
    assert conf["repo"] == "."
    assert (_suite_dir() / "__init__.py").is_file(), "asv imports benchmark_dir as a package"
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    for key in ("env_dir", "results_dir", "html_dir"):
        top = Path(conf[key]).parts[0]
        assert f"{top}/" in ignored, f"{key} {conf[key]!r} is not ignored by .gitignore"


def test_every_module_imports_and_every_benchmark_takes_its_parameters(monkeypatch):
    classes = _benchmark_classes(_import_suite(monkeypatch))
    assert len(classes) >= 5, [cls.__name__ for cls in classes]
    for cls in classes:
        params = getattr(cls, "params", [])
        names = getattr(cls, "param_names", [])
        # asv takes a single list as one parameter
        if params and not isinstance(params[0], (list, tuple)):
            params = [params]
        assert len(names) == len(params), f"{cls.__name__}: param_names vs params"
        methods = [name for name in vars(cls)
                   if name.startswith(BENCHMARK_PREFIXES) or name in ("setup", "teardown")]
        for name in methods:
            arguments = list(inspect.signature(getattr(cls, name)).parameters)[1:]
            assert arguments == names, f"{cls.__name__}.{name} takes {arguments}, not {names}"


@pytest.mark.parametrize("path", _module_paths() if CONFIG.exists() else [],
                         ids=lambda p: p.name)
def test_the_suite_uses_fastbp_public_names_only(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fastbp"):
            assert node.module == "fastbp", f"{path.name}:{node.lineno} imports {node.module}"
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names if alias.name.startswith("fastbp")]
            assert modules in ([], ["fastbp"]), f"{path.name}:{node.lineno} imports {modules}"
            continue
        elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
              and node.value.id == "fastbp"):
            names = [node.attr]
        else:
            continue
        for name in names:
            assert not name.startswith("_"), f"{path.name}:{node.lineno} uses fastbp.{name}"
            assert hasattr(fastbp, name), f"{path.name}:{node.lineno}: fastbp has no {name}"
