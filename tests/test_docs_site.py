"""What the documentation site needs and shows, checked without building it.

- the ``docs`` extra installs everything the gallery's examples import (and
  what the fastbp modules they import need), so ``pip install ".[docs]"`` is
  enough for ``tools/build_docs.sh``;
- ``docs/conf.py`` shows an example it cannot run with a note instead of
  failing, and takes MathJax from a package, not a CDN;
- the API reference documents public names only, and every public name;
- the command-line pages quote no hand-typed training settings: they include
  what the build generates from ``fastbp train``;
- the checkers the build and CI run (tools/check_docs_offline.py,
  tools/check_docs_math.py) catch what they are for.

``tools/build_docs.sh`` builds the site (and runs check_docs_offline.py);
``tools/screenshot_docs.sh`` opens it in headless Chromium with the network off.
"""
import ast
import importlib
import importlib.util
import inspect
import re
import sys
from pathlib import Path

import pytest

import fastbp

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SRC = ROOT / "src" / "fastbp"
EXAMPLES = DOCS / "examples"

pytestmark = pytest.mark.skipif(not (DOCS / "conf.py").exists() or not SRC.is_dir(),
                                reason="not a source checkout")

#: import names whose distribution on PyPI has another name
DISTRIBUTION = {"sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml"}
#: submodules that need an extra of their distribution
NEEDS_EXTRA = {"dask.array": ("dask", "array"), "dask.dataframe": ("dask", "dataframe")}


def _tool(name):
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.pop(0)


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _requirements(specs) -> dict:
    """{normalised distribution name: set of extras} of requirement strings."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    found = {}
    for spec in specs:
        requirement = Requirement(spec)
        found.setdefault(canonicalize_name(requirement.name), set()).update(requirement.extras)
    return found


def _module_level_imports(path: Path, package: str) -> list:
    """Absolute names of the modules ``path`` imports when it is imported (its
    top-level statements, not the imports inside functions); relative
    imports resolved within ``package``."""
    names = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            names.append(base)
            # `from . import callbacks`: a submodule
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _fastbp_source(module: str):
    """The .py file of a fastbp module in the source tree, or None."""
    if module == "fastbp":
        return SRC / "__init__.py"
    relative = Path(*module.split(".")[1:])
    for path in (SRC / relative.with_suffix(".py"), SRC / relative / "__init__.py"):
        if path.is_file():
            return path
    return None


def _defining_module(name: str):
    """The fastbp module whose top level defines ``name`` (for the names that
    ``fastbp`` imports lazily, e.g. MLPClassifier), or None."""
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
                parts = path.relative_to(SRC).with_suffix("").parts
                return ".".join(("fastbp",) + tuple(p for p in parts if p != "__init__"))
    return None


def gallery_needs() -> set:
    """Every module (dotted name) outside fastbp that importing the gallery's
    examples imports, following the fastbp modules they import."""
    pending, seen, outside = [], set(), set()
    for example in sorted(EXAMPLES.glob("*.py")):
        for node in ast.walk(ast.parse(example.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                pending += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                pending.append(node.module)
                if node.module == "fastbp":  # lazily imported names live elsewhere
                    pending += [m for alias in node.names
                                if (m := _defining_module(alias.name)) is not None]
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        if module.split(".")[0] != "fastbp":
            outside.add(module)
        elif (path := _fastbp_source(module)) is not None:
            package = module if path.name == "__init__.py" else module.rpartition(".")[0]
            pending += _module_level_imports(path, package)
    return {m for m in outside if m.split(".")[0] not in sys.stdlib_module_names}


def test_the_gallery_needs_are_found():
    needs = {module.split(".")[0] for module in gallery_needs()}
    # read from the examples (matplotlib), and through fastbp.dask's own imports (sklearn)
    assert {"matplotlib", "numpy", "sklearn", "dask", "distributed"} <= needs


def test_the_docs_extra_installs_what_the_gallery_imports():
    from packaging.utils import canonicalize_name

    project = _pyproject()["project"]
    provided = _requirements(project["dependencies"])
    for name, extras in _requirements(project["optional-dependencies"]["docs"]).items():
        provided.setdefault(name, set()).update(extras)
    needs = gallery_needs()
    missing = sorted({canonicalize_name(DISTRIBUTION.get(m.split(".")[0], m.split(".")[0]))
                      for m in needs} - set(provided))
    assert not missing, f'the gallery imports {missing}, which pip install ".[docs]" lacks'
    for module, (distribution, extra) in NEEDS_EXTRA.items():
        if module in needs:
            assert extra in provided[distribution], \
                f'the gallery imports {module}: the docs extra needs "{distribution}[{extra}]"'


def test_build_docs_checks_for_the_tools_it_needs():
    docs_extra = _pyproject()["project"]["optional-dependencies"]["docs"]
    assert any(spec.startswith("sphinx-mathjax-offline") for spec in docs_extra)
    script = (ROOT / "tools" / "build_docs.sh").read_text(encoding="utf-8")
    assert '"sphinx-mathjax-offline"' in script
    assert "tools/check_docs_offline.py" in script


@pytest.fixture(scope="module")
def conf():
    """docs/conf.py as a module (importing it runs nothing: the work is in its event handlers)."""
    spec = importlib.util.spec_from_file_location("fastbp_docs_conf", DOCS / "conf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_conf_takes_mathjax_from_the_site_itself(conf):
    assert "sphinx-mathjax-offline" in conf.extensions
    assert not re.match(r"(https?:)?//", conf.mathjax_path)
    # sphinx-gallery's timing tables load jQuery from a CDN
    assert conf.sphinx_gallery_conf["write_computation_times"] is False


def test_conf_finds_an_example_that_cannot_run(conf, tmp_path):
    example = tmp_path / "plot_needs_more.py"
    example.write_text("import numpy as np\nimport fastbp_no_such_module\n"
                       "from fastbp import no_such_name\n", encoding="utf-8")
    failures = conf.unimportable(example)
    assert [f.split(" ")[0] for f in failures] == ["fastbp_no_such_module", "fastbp"]
    assert "ModuleNotFoundError" in failures[0]
    ready = tmp_path / "plot_ready.py"
    ready.write_text("import numpy as np\nfrom fastbp import Network\n", encoding="utf-8")
    assert conf.unimportable(ready) == []


def test_an_example_that_cannot_run_is_shown_with_a_note(conf):
    pattern = re.compile(conf.run_pattern({"plot_dask_distributed"}))
    assert not pattern.search("/docs/examples/plot_dask_distributed.py")
    assert pattern.search("/docs/examples/plot_xor.py")
    assert pattern.search("/docs/examples/plot_dask_distributed_more.py")
    assert re.search(conf.run_pattern(()), "/docs/examples/plot_dask_distributed.py")

    conf.EXAMPLES_NOT_RUN["plot_dask_distributed"] = ["dask.array (ModuleNotFoundError: ...)"]
    try:
        source = ["Title\n=====\n"]
        conf.note_examples_not_run(None, "auto_examples/plot_dask_distributed", source)
        assert source[0].startswith(".. note::") and "``dask.array``" in source[0]
        assert source[0].endswith("Title\n=====\n")
        other = ["Title\n=====\n"]
        conf.note_examples_not_run(None, "auto_examples/plot_xor", other)
        assert other == ["Title\n=====\n"]
    finally:
        conf.EXAMPLES_NOT_RUN.clear()


# -- the API reference -----------------------------------------------------------------


def documented_names(text: str) -> list:
    """Full names of the objects an API page documents with ``autosummary``,
    ``autofunction``, ``autoclass`` (under the ``currentmodule`` in force)."""
    names, module, in_summary = [], "", False
    for line in text.splitlines():
        if match := re.match(r"\.\. (?:current)?module:: (\S+)", line):
            module, in_summary = match.group(1), False
        elif re.match(r"\.\. autosummary::", line):
            in_summary = True
        elif match := re.match(r"\.\. auto(?:function|class|data)::\s+(\S+)", line):
            name = match.group(1)
            names.append(name if name.startswith("fastbp.") else f"{module}.{name}")
            in_summary = False
        elif in_summary and (match := re.match(r"   ([A-Za-z_]\w*)\s*$", line)):
            names.append(f"{module}.{match.group(1)}")
        elif line and not line.startswith(" "):
            in_summary = False
    return names


def _api_pages() -> str:
    """The API pages' text, with what they include from ``_generated/``
    written in place by docs/conf.py's writers (as the build does)."""
    spec = importlib.util.spec_from_file_location("fastbp_docs_conf_api", DOCS / "conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)

    def expand(match):
        write = conf.API_INCLUDES.get(match.group(1))
        return write() if write else match.group(0)

    return "\n".join(re.sub(r"^\.\. include:: \.\./_generated/(\S+)$", expand,
                            path.read_text(encoding="utf-8"), flags=re.M)
                     for path in sorted((DOCS / "api").glob("*.rst")))


def public_submodules() -> set:
    """The submodules fastbp exports, plus fastbp.dask."""
    return {"fastbp.dask"} | {
        f"fastbp.{name}" for name in fastbp.__all__
        if inspect.ismodule(getattr(fastbp, name, None))}


def lazy_names() -> set:
    """The names ``fastbp.__getattr__`` imports on demand: the keys of the
    ``_LAZY = {...}`` table in ``fastbp/__init__.py``, read from the source
    (they are public whether or not their extra is installed here)."""
    tree = ast.parse((SRC / "__init__.py").read_text(encoding="utf-8"))
    table = next(node.value for node in tree.body if isinstance(node, ast.Assign)
                 and any(getattr(target, "id", None) == "_LAZY" for target in node.targets))
    return {key.value for key in table.keys if isinstance(key, ast.Constant)}


def _is_public(full_name: str) -> bool:
    module, _, name = full_name.rpartition(".")
    if name.startswith("_"):
        return False
    if module == "fastbp":  # the exported names and the lazily imported ones
        return name in fastbp.__all__ or name in lazy_names()
    scripts = _pyproject()["project"]["scripts"].values()
    if f"{module}:{name}" in scripts:  # the command's entry point
        return True
    top = next((m for m in public_submodules() if module == m or module.startswith(m + ".")), None)
    exported = getattr(importlib.import_module(module), "__all__", None) \
        if top is not None and importlib.util.find_spec(module) else None
    return top is not None and (exported is None or name in exported)


def test_api_names_are_parsed():
    assert {"MLPClassifier", "MLPRegressor", "to_onnx"} <= lazy_names()
    names = documented_names(_api_pages())
    assert {"fastbp.Network", "fastbp.optim.SGD", "fastbp.gradcheck",
            "fastbp.callbacks.EarlyStopping", "fastbp.cli.main"} <= set(names)
    assert documented_names(".. currentmodule:: fastbp.losses\n\n.. autosummary::\n"
                            "   :toctree: generated/\n\n   check_loss\n\nText\n") == \
        ["fastbp.losses.check_loss"]


def test_the_api_reference_documents_public_names_only():
    internal = [name for name in documented_names(_api_pages()) if not _is_public(name)]
    assert not internal, f"the API reference documents internals: {internal}"
    assert not _is_public("fastbp.losses.check_loss")
    assert not _is_public("fastbp.io.atomic_write")


def test_every_exported_name_is_in_the_api_reference():
    pages = _api_pages()
    documented = set(documented_names(pages))
    undocumented = []
    for name in fastbp.__all__:
        obj = getattr(fastbp, name)
        where = f"{getattr(obj, '__module__', None)}.{name}"
        if (f"fastbp.{name}" in documented or where in documented
                or f"``fastbp.{name}``" in pages
                or inspect.ismodule(obj) and f".. automodule:: {obj.__name__}" in pages):
            continue
        undocumented.append(name)
    assert not undocumented, f"fastbp.__all__ names missing from docs/api/: {undocumented}"


# -- the command-line pages --------------------------------------------------------------

CLI_PAGES = ["user_guide/cli.rst", "install.rst", "user_guide/quickstart.rst"]


@pytest.mark.parametrize("page", CLI_PAGES)
def test_cli_pages_include_the_generated_summary_of_train_digits(page):
    text = (DOCS / page).read_text(encoding="utf-8")
    assert re.search(r"^\.\. include:: (\.\./)?_generated/train_digits_summary\.inc\.rst$",
                     text, re.M)
    # an epoch count typed by hand goes stale ("20 epochs" did): the summary says it
    assert not re.findall(r"\b\d+ epochs\b", text), f"{page} types an epoch count by hand"


def test_cli_page_shows_the_generated_run_and_plot():
    text = (DOCS / "user_guide" / "cli.rst").read_text(encoding="utf-8")
    assert ".. include:: ../_generated/train_digits_run.inc.rst" in text
    assert ".. image:: ../_generated/train_digits.png" in text
    assert ".. include:: ../_generated/cli_help.inc.rst" in text
    ignored = (DOCS / ".gitignore").read_text(encoding="utf-8").split()
    assert "_generated/" in ignored


# -- the checkers -----------------------------------------------------------------------


def test_check_docs_offline_names_every_external_load(tmp_path):
    checker = _tool("check_docs_offline")
    (tmp_path / "_static").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><head>\n'
        '<script src="_static/local.js"></script>\n'
        '<script src="https://cdn.example.org/mathjax.js"></script>\n'
        '<link rel="stylesheet" href="//fonts.example.org/font.css">\n'
        '<link rel="canonical" href="https://example.org/index.html">\n'
        '<style>@import "https://example.org/more.css"; body {background: url(bg.png)}</style>\n'
        '</head><body>\n'
        '<a href="https://example.org/">a link to follow</a>\n'
        '<img src="http://example.org/plot.png"><img src="_images/plot.png">\n'
        '<div style="background: url(\'https://example.org/x.png\')"></div>\n'
        '</body></html>\n', encoding="utf-8")
    (tmp_path / "_static" / "theme.css").write_text(
        "@font-face { src: url(fonts/a.woff2) }\n"
        ".x { background: url(\"https://example.org/y.png\") }\n"
        "@import url(//example.org/z.css);\n", encoding="utf-8")
    problems = checker.external_loads(tmp_path)
    assert [p.split(": ", 1)[1] for p in problems] == [
        "url()/@import https://example.org/y.png",
        "url()/@import //example.org/z.css",
        "<script src=> https://cdn.example.org/mathjax.js",
        "<link href=> //fonts.example.org/font.css",
        "<style> https://example.org/more.css",
        "<img src=> http://example.org/plot.png",
        "<div style=> https://example.org/x.png",
    ]
    assert problems[2].startswith("index.html:3:")
    assert checker.main([str(tmp_path)]) == 1


def test_check_docs_offline_passes_a_site_that_loads_only_its_own_files(tmp_path, capsys):
    checker = _tool("check_docs_offline")
    (tmp_path / "index.html").write_text(
        '<script src="_static/mathjax/tex-chtml.js" defer></script>'
        '<a href="https://example.org/">link</a>', encoding="utf-8")
    assert checker.external_loads(tmp_path) == []
    assert checker.main([str(tmp_path)]) == 0
    assert checker.main([str(tmp_path / "missing")]) == 2


TYPESET = ('<p>Inline <span class="math notranslate nohighlight"><mjx-container class="MathJax" '
           'jax="CHTML"><mjx-math><mjx-mi>a</mjx-mi></mjx-math></mjx-container></span> and</p>'
           '<div class="math notranslate nohighlight"><mjx-container jax="CHTML" display="true">'
           '<mjx-math>x</mjx-math></mjx-container></div>')


def test_check_docs_math_accepts_typeset_formulas():
    checker = _tool("check_docs_math")
    assert checker.unrendered_formulas(TYPESET) == []
    assert checker.count_formulas(TYPESET) == 2
    # a page without formulas passes; TeX outside math elements is the page's text
    assert checker.unrendered_formulas("<p>no math, a literal \\( here</p>") == []


def test_check_docs_math_names_raw_tex(tmp_path):
    checker = _tool("check_docs_math")
    raw = TYPESET + ('<span class="math notranslate nohighlight">\\(\\delta_j = z_i\\)</span>'
                     '<div class="math notranslate nohighlight">\n\\[a = b\\]</div>'
                     '<span class="math"><mjx-container></mjx-container>\\(left\\)</span>')
    assert checker.unrendered_formulas(raw) == ["\\(\\delta_j = z_i\\)", "\\[a = b\\]",
                                                "\\(left\\)"]
    dom = tmp_path / "page.dom.html"
    dom.write_text(raw, encoding="utf-8")
    assert checker.main([str(dom)]) == 1
    dom.write_text(TYPESET, encoding="utf-8")
    assert checker.main([str(dom)]) == 0
