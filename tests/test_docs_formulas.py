"""The user guide's tables of formulas name exactly what the code has.

- docs/user_guide/backprop.rst: a row per activation, in the compiled
  table's order, with f′ written through the same variable (z or a) as the
  kernels' row (csrc/fastbp_activation_table.h); a row per loss of
  ``fastbp.LOSSES``, with the output it pairs with;
- docs/user_guide/outputs_losses.rst: a row per loss too;
- docs/user_guide/training.rst: a row per optimiser of ``fastbp.optim.__all__``,
  in that order, with every parameter but ``schedule`` and its default as the
  class declares them.

A new activation, loss or optimiser, or a changed default, fails here until
its row is written. The formulas themselves are read by people: each is
checked against the kernels' comments and PyTorch's documentation.
"""
import ast
import inspect
import re
from pathlib import Path

import pytest

import fastbp
from fastbp.losses import REQUIRED_OUTPUT

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "user_guide"
ACTIVATION_TABLE = ROOT / "csrc" / "fastbp_activation_table.h"

pytestmark = pytest.mark.skipif(not GUIDE.is_dir() or not ACTIVATION_TABLE.exists(),
                                reason="not a source checkout")


def list_table(text: str, after: str) -> list:
    """The body rows of the first ``list-table`` after the line ``after``: a
    list of rows, each a list of its cells' text on one line."""
    lines = text[text.index(after):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(".. list-table::"))
    rows = []
    for line in lines[start + 1:]:
        if line.strip() and not line.startswith("   "):
            break  # the first line back at the margin ends the table
        if line.startswith("   * - "):
            rows.append([line[len("   * - "):]])
        elif line.startswith("     - "):
            rows[-1].append(line[len("     - "):])
        elif rows and line.strip():
            rows[-1][-1] += " " + line.strip()
    return [[" ".join(cell.split()) for cell in row] for row in rows[1:]]  # no header


def first_literal(cell: str) -> str:
    """The text of the first ``literal`` of a cell, quotes taken off."""
    return re.search(r"``([^`]+)``", cell).group(1).strip('"')


def activation_rows(text: str) -> dict:
    """name -> (f, f′, through) of the activation table, in its order."""
    return {first_literal(row[0]): tuple(row[1:]) for row in list_table(text, ".. _activations:")}


def compiled_activations() -> dict:
    """name -> "z" or "a", what the kernels' row writes f′ through."""
    rows = re.findall(r"X\((\w+), (\w+), (ELEMENTWISE|ROWWISE), ([ZA])\)",
                      ACTIVATION_TABLE.read_text(encoding="utf-8"))
    return {name: through.lower() for _, name, _, through in rows}


def loss_rows(text: str, after: str) -> dict:
    """name -> cells of a loss table."""
    return {first_literal(row[0]): row for row in list_table(text, after)}


def optimizer_rows(text: str) -> dict:
    """class name -> (the defaults the row writes, its step cell)."""
    found = {}
    for row in list_table(text, ".. _optimizer_formulas:"):
        name = re.fullmatch(r":class:`~fastbp\.optim\.(\w+)`", row[0]).group(1)
        call = ast.parse(f"f({re.match(r'``([^`]+)``', row[1]).group(1)})", mode="eval").body
        found[name] = ({k.arg: ast.literal_eval(k.value) for k in call.keywords}, row[1])
    return found


def optimizer_defaults() -> dict:
    """class name -> {parameter: default} of every optimiser fastbp exports,
    in ``fastbp.optim.__all__``'s order (``schedule`` left out: every
    optimiser but Rprop and LBFGS takes one)."""
    found = {}
    for name in fastbp.optim.__all__:
        cls = getattr(fastbp.optim, name)
        if isinstance(cls, type) and issubclass(cls, fastbp.optim.Optimizer) \
                and cls is not fastbp.optim.Optimizer:
            found[name] = {p.name: p.default
                           for p in inspect.signature(cls).parameters.values()
                           if p.name != "schedule"}
    return found


def page(name: str) -> str:
    return (GUIDE / name).read_text(encoding="utf-8")


def test_every_activation_has_a_row_in_code_order_with_the_kernels_variable():
    rows = activation_rows(page("backprop.rst"))
    assert list(rows) == list(fastbp.ACTIVATIONS)
    assert {name: cells[2] for name, cells in rows.items()} == compiled_activations()
    for name, (f, f_prime, _) in rows.items():
        assert ":math:" in f and ":math:" in f_prime, f"{name}: a formula is not LaTeX"


@pytest.mark.parametrize("name,after", [("backprop.rst", "Losses\n======"),
                                        ("outputs_losses.rst", "The losses\n==========")])
def test_every_loss_has_a_row(name, after):
    rows = loss_rows(page(name), after)
    assert list(rows) == list(fastbp.LOSSES)


def test_each_loss_row_names_the_output_it_pairs_with():
    for name, row in loss_rows(page("backprop.rst"), "Losses\n======").items():
        output = REQUIRED_OUTPUT[name]
        assert f"({output or 'any'} output)" in row[0], name
        assert ":math:" in row[1] and ":math:" in row[2], name


def test_every_optimizer_has_a_row_with_its_defaults():
    rows = optimizer_rows(page("training.rst"))
    defaults = optimizer_defaults()
    assert len(defaults) >= 8 and "LBFGS" in defaults
    assert list(rows) == list(defaults)
    for name, (written, step) in rows.items():
        assert written == defaults[name], name
        assert "math::" in step, f"{name}: no formula"


def test_the_checks_catch_a_missing_row_and_a_stale_default():
    backprop = page("backprop.rst")
    without_elu = re.sub(r"   \* - ``elu``\n(     .*\n)+", "", backprop)
    assert without_elu != backprop
    assert "elu" not in activation_rows(without_elu)
    assert "elu" in activation_rows(backprop)
    training = page("training.rst")
    stale = training.replace("``lr=2e-3, beta1=0.9", "``lr=1e-3, beta1=0.9")
    assert stale != training
    assert optimizer_rows(stale)["NAdam"][0] != optimizer_defaults()["NAdam"]
