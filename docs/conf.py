"""Sphinx configuration of fastbp's documentation.

Built by ``tools/build_docs.sh`` (warnings are errors) against the installed
package: ``pip install ".[docs]"`` first. The API reference is read from the
docstrings (autodoc, autosummary, numpydoc); the gallery's examples in
``docs/examples/`` run during the build (sphinx-gallery); when the build
starts, ``write_generated_pages`` writes what the command-line pages show
(help texts, a ``fastbp train digits`` run and its plot) and the speed figures
(``tools/figures.py``) into
``docs/_generated/``. Importing this file runs nothing.
"""
from __future__ import annotations

import ast
import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import fastbp

HERE = Path(__file__).resolve().parent
#: what the build writes from the code (git-ignored): CLI help and runs, their figures
GENERATED = HERE / "_generated"

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
    # MathJax 3 copied into _static/mathjax from the package: formulas render offline
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "*.inc.rst",
                    "**/*.inc.rst", "examples/*", "_generated/*"]
source_suffix = {".rst": "restructuredtext"}
root_doc = "index"

# api/index.rst's tables, and the optimisers' one that the build writes from
# fastbp.optim (its toctree path resolves to api/generated/ from either file)
autosummary_generate = ["api/index.rst", "_generated/optimizers.inc.rst"]
# inherited members only where a template asks (Network's mixins, see
# _templates/autosummary/class_with_mixins.rst): a default of False here would
# override the template's flag
autodoc_default_options = {"members": True}
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

# the site loads nothing from another host (tools/check_docs_offline.py checks
# it): MathJax from _static, where sphinx-mathjax-offline puts it
mathjax_path = "mathjax/tex-chtml.js"


def _skip_member(app, what, name, obj, skip, options):
    """Leave out scikit-learn's metadata-routing setters (``set_fit_request``
    and friends): scikit-learn writes them, their docstrings point into its
    own glossary, and its documentation explains them."""
    if name.startswith("set_") and name.endswith("_request"):
        return True
    return skip


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
    app.connect("config-inited", _skip_examples_that_cannot_run)
    app.connect("source-read", note_examples_not_run)
    # before autosummary's own builder-inited handler (priority 500), which
    # reads the optimiser list written here
    app.connect("builder-inited", write_generated_pages, priority=400)


# -- gallery -------------------------------------------------------------------


def imports(path: Path) -> list:
    """(module, names) of every absolute import in the Python file ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, ()) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module, tuple(alias.name for alias in node.names)))
    return found


def unimportable(path: Path) -> list:
    """The imports of the example ``path`` that fail in this environment, as
    ``"module (ErrorType: message)"``; empty when it can run."""
    failed = []
    for module_name, names in imports(path):
        try:
            module = importlib.import_module(module_name)
            for name in names:  # e.g. fastbp.MLPClassifier, which needs scikit-learn
                if not hasattr(module, name):
                    importlib.import_module(f"{module_name}.{name}")
        except Exception as exc:  # noqa: BLE001 - any failure: the example cannot run here
            failed.append(f"{module_name} ({type(exc).__name__}: {exc})")
    return failed


def run_pattern(not_run) -> str:
    """sphinx-gallery's ``filename_pattern``: every ``plot_*.py`` but the
    examples (file stems) in ``not_run``."""
    if not not_run:
        return r"/plot_"
    names = "|".join(re.escape(stem[len("plot_"):]) for stem in sorted(not_run))
    return r"/plot_(?!(?:" + names + r")\.py$)"


#: example stem -> why its imports fail here, filled when the build starts
EXAMPLES_NOT_RUN: dict = {}


def _skip_examples_that_cannot_run(app, config):
    """Run only the examples whose imports work here; the ``docs`` extra
    installs what every example needs, so this matters only without it."""
    EXAMPLES_NOT_RUN.clear()
    for path in sorted((HERE / "examples").glob("plot_*.py")):
        if failures := unimportable(path):
            EXAMPLES_NOT_RUN[path.stem] = failures
            print(f"conf.py: not running the example {path.name}: {'; '.join(failures)}",
                  file=sys.stderr)
    config.sphinx_gallery_conf["filename_pattern"] = run_pattern(EXAMPLES_NOT_RUN)


def note_examples_not_run(app, docname, source):
    """Put a note on the gallery page of an example this build could not run."""
    stem = docname.rpartition("/")[2]
    if docname.startswith("auto_examples/") and stem in EXAMPLES_NOT_RUN:
        modules = ", ".join(f"``{f.split(' ', 1)[0]}``" for f in EXAMPLES_NOT_RUN[stem])
        source[0] = (".. note::\n\n   This build did not run this example, so it shows no output: "
                     f"importing {modules} failed where it was built. "
                     '``pip install ".[docs]"`` installs what every example needs.\n\n'
                     + source[0])


sphinx_gallery_conf = {
    "examples_dirs": ["examples"],
    "gallery_dirs": ["auto_examples"],
    # files named plot_*.py run during the build (but those whose imports fail
    # here: _skip_examples_that_cannot_run); the others are shown only
    "filename_pattern": run_pattern(()),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    # the timing tables (sg_execution_times) load jQuery and DataTables from
    # CDNs: the site must read offline, and the timings are in the build log
    "write_computation_times": False,
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


def _train_parser():
    """The argparse parser of ``fastbp train``."""
    import argparse

    from fastbp.cli import build_parser

    commands = next(action for action in build_parser()._actions
                    if isinstance(action, argparse._SubParsersAction))
    return commands.choices["train"]


#: the run the command-line pages show, as typed (its plot is written beside the transcript)
TRAIN_DIGITS = ["fastbp", "train", "digits", "--plot", "train_digits.png"]


def _run_train_digits() -> str:
    """Run ``fastbp train digits`` (the defaults, plus --plot) in GENERATED and
    return what it printed; its plot lands in GENERATED/train_digits.png."""
    argv = [sys.executable, "-m", "fastbp"] + TRAIN_DIGITS[1:]
    done = subprocess.run(argv, cwd=GENERATED, capture_output=True, text=True,
                          env={**os.environ, "MPLBACKEND": "Agg", "COLUMNS": "88"})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(TRAIN_DIGITS)} exited {done.returncode}:\n"
                           f"{done.stdout}{done.stderr}")
    return done.stdout


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g} %"


def _train_digits_summary(transcript: str) -> str:
    """A paragraph saying what ``fastbp train digits`` does: the settings from
    ``fastbp train``'s defaults, the outcome from this build's run of it."""
    from fastbp.cli.fitting import DEFAULT_BATCH_SIZE
    from fastbp.cli.optimizers import CLI_DEFAULTS
    from fastbp.cli.train import DEFAULT_TEST_FRACTION

    sgd = CLI_DEFAULTS["sgd"]  # --lr, --momentum and --batch-size default to None: not given
    train = _train_parser()
    default = train.get_default
    hidden = "-".join(str(width) for width in default("hidden"))
    scaling = "standardized" if default("standardize") else "unscaled"
    if default("early_stopping"):
        stopping = (f"and {_percent(default('validation_fraction'))} of the rest as validation "
                    "rows for early stopping, which is on by default: training stops when the "
                    f"validation loss has not improved for {default('patience')} epochs (at "
                    f"most {default('epochs')}) and keeps the weights of the best epoch")
    else:
        stopping = f"and trains for {default('epochs')} epochs"
    text = (
        f"``fastbp train digits`` trains a 64-{hidden}-10 network (a **{default('activation')}** "
        "hidden layer, softmax output, cross-entropy) on the handwritten digits bundled "
        f"with the package, by SGD with learning rate {sgd['lr']:g}, momentum "
        f"{sgd['momentum']:g} and batches of {DEFAULT_BATCH_SIZE}, on {scaling} "
        f"features. It holds out {_percent(DEFAULT_TEST_FRACTION)} of the rows as test rows "
        f"(reported only), {stopping}. It prints the loss per epoch, the final loss and "
        "accuracy of each set and the time per training sample.")
    stopped = re.search(r"stopped after epoch (\d+).*?kept the weights of epoch (\d+)",
                        transcript)
    test = re.search(r"^test .*accuracy ([0-9.]+)", transcript, re.M)
    if stopped and test:
        text += (f" In the run this page was built with, it stopped after epoch "
                 f"{stopped.group(1)}, kept epoch {stopped.group(2)}, and reached a test "
                 f"accuracy of {test.group(1)}.")
    else:  # the transcript on the page still shows the run
        print("conf.py: the summary of fastbp train digits leaves out the run's outcome: "
              "its early-stopping or test line has a new wording", file=sys.stderr)
    return text + "\n"


def _literal(command: list, output: str) -> str:
    """A console block: the command, then what it printed."""
    return (".. code-block:: console\n\n   $ " + " ".join(command) + "\n"
            + "".join(f"   {line}\n" if line.strip() else "\n" for line in output.splitlines())
            + "\n")


def _optimizer_api() -> str:
    """The autosummary of the optimisers: the classes of ``fastbp.optim.__all__``
    that fastbp exports too (each Optimizer but the base), so that adding one
    needs no line here."""
    import fastbp

    names = [name for name in fastbp.optim.__all__ if name in fastbp.__all__]
    return ".. currentmodule:: fastbp.optim\n\n.. autosummary::\n   :toctree: ../api/generated/\n   :nosignatures:\n\n" + "".join(
        f"   {name}\n" for name in names)


def _activation_and_loss_names() -> str:
    """The activation and loss names, in the kernels' table order."""
    import fastbp
    from fastbp.losses import LOSS_FOR_OUTPUT

    hidden = fastbp.network.HIDDEN_ACTIVATIONS

    def listed(names):
        return ", ".join(f"``{name!r}``".replace("'", '"') for name in names)

    outputs_only = [name for name in fastbp.ACTIVATIONS if name not in hidden]
    pairs = ", ".join(f"``{loss}`` with ``{output}``"
                      for output, loss in LOSS_FOR_OUTPUT.items())
    return (f"``fastbp.ACTIVATIONS`` maps the activation names to the kernels' codes "
            f"({listed(fastbp.ACTIVATIONS)}; {listed(outputs_only)} for the output only) "
            f"and ``fastbp.LOSSES`` the loss names ({listed(fastbp.LOSSES)}); by default "
            f"each output activation trains with the loss it pairs with ({pairs}, "
            f"mean squared error otherwise).\n")


#: what docs/api/index.rst includes from _generated/, and what writes it
API_INCLUDES = {"optimizers.inc.rst": _optimizer_api,
                "activations.inc.rst": _activation_and_loss_names}


def write_generated_pages(app=None) -> None:
    """Write what the pages include from the code into GENERATED: every
    command's ``--help``, the :mod:`fastbp.dask` API, and a run of
    ``fastbp train digits`` (transcript, plot, summary)."""
    GENERATED.mkdir(exist_ok=True)
    _write_if_changed(GENERATED / "cli_help.inc.rst", _cli_help())
    _write_if_changed(GENERATED / "dask_api.inc.rst", _dask_api())
    for name, write in API_INCLUDES.items():
        _write_if_changed(GENERATED / name, write())
    run = _run_train_digits()
    _write_if_changed(GENERATED / "train_digits_run.inc.rst", _literal(TRAIN_DIGITS, run))
    _write_if_changed(GENERATED / "train_digits_summary.inc.rst", _train_digits_summary(run))
    _write_speed_figures()


def _write_speed_figures() -> None:
    """The speed figures the pages quote (``figures.inc.rst`` and the tables),
    rendered from ``bench/results/`` by ``tools/figures.py``: the one source of
    every figure."""
    sys.path.insert(0, str(HERE.parent / "tools"))
    try:
        import figures
    finally:
        sys.path.pop(0)
    for name, text in figures.docs_snippets().items():
        _write_if_changed(GENERATED / name, text)
    # the plot bench/compare.py drew of its last 1-thread run, shown as it lies
    plot = HERE.parent / "bench" / "results" / "compare_1thread.png"
    (GENERATED / "bench.png").write_bytes(plot.read_bytes())
