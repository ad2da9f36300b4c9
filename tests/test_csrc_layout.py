"""The compiled core's structure (csrc/): each part uses only the parts
included before it (tools/csrc_includes.py), and only the optimiser files
branch on the optimiser's kind."""
import importlib.util
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CSRC = ROOT / "csrc"
if not CSRC.is_dir():  # an installed copy of the tests, without the sources
    pytest.skip("needs the checkout's csrc/", allow_module_level=True)


def includes_module():
    spec = importlib.util.spec_from_file_location("csrc_includes",
                                                  ROOT / "tools" / "csrc_includes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_part_uses_only_the_parts_included_before_it():
    includes = includes_module()
    assert includes.later_edges(CSRC) == []
    # and the graph is not empty: the parts are seen using each other
    assert ("training.pxi", "threads.pxi", ["TrainJob", "_train_part_d", "_train_part_f"]) \
        in includes.edges(CSRC)


def test_the_check_sees_a_part_using_one_included_later(tmp_path):
    includes = includes_module()
    copy = tmp_path / "csrc"
    shutil.copytree(CSRC, copy, ignore=shutil.ignore_patterns("*.c", "*.so"))
    batches = copy / "batches.pxi"
    batches.write_text(batches.read_text() + "\n\ncdef void _uses_a_later_part() noexcept nogil:\n"
                       "    _train_part_d(NULL, 0)\n")
    assert includes.later_edges(copy) == [("batches.pxi", "threads.pxi", ["_train_part_d"])]


def test_every_pxi_is_included_once():
    includes = includes_module()
    order = includes.include_order(CSRC / "_kernels.pyx")
    assert sorted(order) == sorted(p.name for p in CSRC.glob("*.pxi"))


def test_only_the_optimiser_files_branch_on_the_optimisers_kind():
    branch = re.compile(r"\bkind\s*[!=]=\s*(SGD|ADAM|FBP_SGD|FBP_ADAM)\b"
                        r"|\b(SGD|ADAM|FBP_SGD|FBP_ADAM)\s*[!=]=\s*\w*\.?kind\b")
    found = {}
    for path in sorted(CSRC.glob("*.pxi")) + sorted(CSRC.glob("*.h")):
        hits = branch.findall(path.read_text())
        if hits:
            found[path.name] = len(hits)
    assert set(found) == {"optimizers.pxi"}, found
