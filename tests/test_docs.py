"""The documentation's code runs and its facts match the package.

- every docstring example (``>>>``) of the installed package runs as a doctest;
- every ``>>>`` example of the user guide (docs/**/*.rst) runs as a doctest;
- the version lives in pyproject.toml only: ``fastbp.__version__`` and
  CITATION.cff agree with it;
- the README's figures exist and its plot command names a path;
- the speed figures the pages quote come from tools/figures.py (bench/results/).

The Sphinx build itself (warnings as errors, the gallery's examples) is
``tools/build_docs.sh``; CI runs it after the test suite.
"""
import doctest
import importlib
import importlib.metadata
import importlib.util
import json
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import fastbp
from helpers import figures_module

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

#: modules whose examples need more than fastbp's own dependencies
OPTIONAL = {
    "fastbp.estimators": ("sklearn",),
    "fastbp.onnx_export": ("onnx", "onnxruntime", "skl2onnx", "sklearn"),
    "fastbp.dask": ("dask", "distributed", "sklearn"),
    "fastbp.plotting": ("matplotlib",),
}
#: guide pages whose examples need more than fastbp's own dependencies
OPTIONAL_PAGES = {"sparse.rst": ("scipy",)}


def _modules() -> list:
    names = ["fastbp"]
    for info in pkgutil.walk_packages(fastbp.__path__, "fastbp."):
        names.append(info.name)
    return sorted(names)


def _run(tests: list, name: str) -> None:
    """Run doctests with numbers printed as NumPy 2 does; fail with the report."""
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{name}: {results.failed} doctest(s) failed\n" + "".join(report)


def _require(modules) -> None:
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"needs {module}")


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    _require(OPTIONAL.get(name, ()))
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    try:
        module = importlib.import_module(name)
    except ImportError as exc:  # an optional dependency the table above does not know
        pytest.skip(f"{name} cannot be imported here: {exc}")
    tests = [t for t in doctest.DocTestFinder().find(module, name, module=module) if t.examples]
    _run(tests, name)


def _pages_with_examples() -> list:
    """The hand-written .rst pages of docs/ that hold >>> examples (not the
    build's output nor the pages it generates)."""
    if not DOCS.is_dir():
        return []
    skip = {"_build", "auto_examples", "generated"}
    return [p.relative_to(DOCS).as_posix() for p in sorted(DOCS.glob("**/*.rst"))
            if not skip & set(p.parts) and ">>>" in p.read_text(encoding="utf-8")]


def test_the_guide_has_examples():
    if not DOCS.is_dir():
        pytest.skip("no docs/ beside tests/ (not a source checkout)")
    assert len(_pages_with_examples()) >= 5


@pytest.mark.parametrize("page", _pages_with_examples())
def test_user_guide_examples_run(page, tmp_path, monkeypatch):
    _require(OPTIONAL_PAGES.get(Path(page).name, ()))
    monkeypatch.chdir(tmp_path)
    text = (DOCS / page).read_text(encoding="utf-8")
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {"__name__": page}, page, str(DOCS / page), 0)
    np.random.seed(0)
    _run([test], page)


def _pyproject_version() -> str:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


@pytest.mark.skipif(not (ROOT / "pyproject.toml").exists(), reason="not a source checkout")
def test_the_version_has_one_source():
    version = _pyproject_version()
    assert fastbp.__version__ == importlib.metadata.version("fastbp") == version
    init = (ROOT / "src" / "fastbp" / "__init__.py").read_text(encoding="utf-8")
    assert not re.search(r'__version__ = "\d+\.\d+', init), "a second copy of the version"
    if not (ROOT / "CITATION.cff").exists():
        pytest.skip("no CITATION.cff (an unpacked sdist)")
    citation = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^version: (\S+)$", citation, re.M).group(1) == version
    assert re.search(r"^cff-version: 1\.2\.0$", citation, re.M)


@pytest.mark.skipif(not DOCS.is_dir(), reason="no docs/ beside tests/ (an unpacked sdist)")
def test_readme_figures_exist_and_plot_commands_name_a_path():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text):
        assert (ROOT / path).exists(), f"README shows {path}, which does not exist"
    for command in re.findall(r"fastbp train[^`\n]*", text):
        assert not re.search(r"--plot(\s*$|\s+--)", command), f"--plot without a path: {command}"
    # the speed summary links the full table, which holds the run's numbers
    assert "docs/user_guide/benchmarks.rst" in text


#: pages that quote the last runs' speed figures: through tools/figures.py only
FIGURE_PAGES = ("index.rst", "user_guide/performance.rst", "user_guide/when_not.rst",
                "user_guide/estimators.rst", "user_guide/distributed.rst")


@pytest.mark.skipif(not (ROOT / "tools" / "figures.py").exists() or not DOCS.is_dir(),
                    reason="not a source checkout")
def test_the_speed_table_is_generated_from_the_saved_reports():
    page = (DOCS / "user_guide" / "benchmarks.rst").read_text(encoding="utf-8")
    # the page includes the table the build writes, and holds no hand-typed copy of it
    assert ".. include:: /_generated/speed_table.inc.rst" in page
    assert '"2-2-1", "1", "float32"' not in page
    figures = figures_module()
    table = figures.docs_snippets(figures.load(ROOT / "bench" / "results"))["speed_table.inc.rst"]
    # every row: fastbp's µs and each peer's time over fastbp's, recomputed here from the JSON
    results = ROOT / "bench" / "results"
    reports = [json.loads((results / f"compare_{mode}.json").read_text(encoding="utf-8"))
               for mode in ("1thread", "defaults")]

    def cells(case):
        times = {name: r.get("us_per_sample") for name, r in case["contenders"].items()
                 if r.get("status") == "ok"}
        row = [f"{times['fastbp']:.3g}"]
        for peer in ("numpy", "torch", "sklearn", "fann"):
            row.append(f"{times[peer] / times['fastbp']:.2f}" if times.get(peer) else "–")
        return row

    defaults = {(c["net"], c["batch_size"], c["dtype"]): c for c in reports[1]["cases"]}
    assert len(reports[0]["cases"]) == 40
    for case in reports[0]["cases"]:
        key = (case["net"], case["batch_size"], case["dtype"])
        row = [case["net"], str(case["batch_size"]), case["dtype"]] + cells(case) + \
            cells(defaults[key])
        assert "   " + ", ".join(f'"{cell}"' for cell in row) + "\n" in table, row


@pytest.mark.skipif(not (ROOT / "tools" / "figures.py").exists() or not DOCS.is_dir(),
                    reason="not a source checkout")
@pytest.mark.parametrize("page", FIGURE_PAGES)
def test_pages_quote_speed_figures_only_through_the_generator(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    prose = re.sub(r"\.\. code-block::.*?(?=\n\S)", "", text, flags=re.S)
    typed = re.findall(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?(?:x|×)(?=[\s,;.)])", prose)
    assert not typed, f"{page} types speed ratios by hand: {typed}"
    used = set(re.findall(r"\|([\w.-]+)\|", prose))
    if used:
        assert ".. include:: /_generated/figures.inc.rst" in text
        figures = figures_module()
        defined = set(figures.figures(figures.load(ROOT / "bench" / "results")))
        assert used <= defined, f"{page} uses figures the generator lacks: {used - defined}"
