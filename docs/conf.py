"""Sphinx configuration of fastbp's documentation.

Built by ``tools/build_docs.sh`` (warnings are errors) against the installed
package: ``pip install ".[docs]"`` first. The API reference is read from the
docstrings (autodoc, autosummary, numpydoc); the gallery's examples in
``docs/examples/`` run during the build (sphinx-gallery).
"""
from __future__ import annotations

import importlib.util
import io
import os
from contextlib import redirect_stdout
from pathlib import Path

import fastbp

HERE = Path(__file__).resolve().parent

# -- project -------------------------------------------------------------------

project = "fastbp"
author = "the fastbp developers"
copyright = "the fastbp developers, BSD-3-Clause"
# the one source of the version is pyproject.toml, read back from the installed metadata
release = fastbp.__version__
version = ".".join(release.split(".")[:2])

# -- extensions ----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "*.inc.rst",
                    "**/*.inc.rst", "examples/*"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it, once
# numpydoc writes the class member tables itself with autosummary: the class
# template lists the members instead, as scikit-learn's does
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = False
numpydoc_xref_param_type = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "scipy": ("https://docs.scipy.org/doc/scipy/", None),
    "sklearn": ("https://scikit-learn.org/stable/", None),
    "matplotlib": ("https://matplotlib.org/stable/", None),
}
# the build must not depend on the network: FASTBP_DOCS_INTERSPHINX=1 turns the
# cross-project links on where the sites are reachable
if os.environ.get("FASTBP_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}



def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing setters (``set_fit_request``
    and friends): scikit-learn writes them, their docstrings point into its
    own glossary, and its documentation explains them."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)


# -- gallery -------------------------------------------------------------------

sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    # files named plot_*.py run during the build; the others are shown only
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "min_reported_time": 1,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "abort_on_example_error": True,
    "plot_gallery": "True",
}

# -- HTML ----------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"fastbp {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_show_sourcelink = False

# -- pages written at build time -----------------------------------------------


def _write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless it holds it already (keeps rebuilds incremental)."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _cli_help() -> str:
    """``fastbp COMMAND --help`` of every command, as literal blocks."""
    from fastbp.cli import COMMANDS, build_parser

    os.environ["COLUMNS"] = "88"  # argparse wraps at the terminal's width
    parser = build_parser()
    parts = []
    for argv in [["--help"]] + [[module.__name__.rsplit(".", 1)[1], "--help"]
                                for module in COMMANDS]:
        out = io.StringIO()
        try:
            with redirect_stdout(out):
                parser.parse_args(argv)
        except SystemExit:
            pass
        title = "fastbp " + " ".join(argv)
        parts.append(f"``{title}``\n{'~' * (len(title) + 4)}\n\n.. code-block:: text\n\n"
                     + "".join(f"   {line}\n" if line.strip() else "\n"
                               for line in out.getvalue().splitlines()) + "\n")
    return "".join(parts)


def _dask_api() -> str:
    """The API of :mod:`fastbp.dask` when this install has it (and Dask), else a note.

    Only the public classes and functions are documented, each with its own
    directive: the module docstring is the user guide's to tell
    (``user_guide/distributed.rst``), and numpydoc would refuse its free-form
    sections.
    """
    if importlib.util.find_spec("fastbp.dask") is None:
        return (".. note::\n\n   This version of fastbp has no :mod:`fastbp.dask` module yet. "
                "Once it exists (with its ``dask`` extra installed), this page documents it "
                "from its docstrings.\n")
    try:
        module = importlib.import_module("fastbp.dask")
    except Exception as exc:  # noqa: BLE001 - any import failure: say so, do not break the build
        return (".. note::\n\n   :mod:`fastbp.dask` is installed but could not be imported "
                f"here ({type(exc).__name__}); install the ``dask`` extra to document it.\n")
    import inspect

    names = getattr(module, "__all__", None) or [
        name for name, obj in vars(module).items()
        if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
        and getattr(obj, "__module__", None) == "fastbp.dask"]
    lines = [".. module:: fastbp.dask", ""]
    for name in names:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            lines += [f".. autoclass:: {name}", "   :members:", "   :show-inheritance:", ""]
        elif callable(obj):
            lines += [f".. autofunction:: {name}", ""]
    return "\n".join(lines)


_write_if_changed(HERE / "cli_help.inc.rst", _cli_help())
_write_if_changed(HERE / "api" / "dask_api.inc.rst", _dask_api())


def _write_speed_figures() -> None:
    """The speed figures the pages quote (``figures.inc.rst`` and the tables), rendered from
    ``bench/results/`` by ``tools/figures.py``: the one source of every figure."""
    import sys

    sys.path.insert(0, str(HERE.parent / "tools"))
    try:
        import figures
    finally:
        sys.path.pop(0)
    for name, text in figures.docs_snippets().items():
        _write_if_changed(HERE / name, text)


_write_speed_figures()
