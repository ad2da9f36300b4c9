"""The compiled core's structure (csrc/): each part uses only the parts
included before it (tools/csrc_includes.py), and only an optimiser's own
files name it (the rest reach it through its table)."""
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


def test_no_part_branches_on_the_optimisers_kind():
    # there is no kind left to branch on: the loops call the optimiser's table
    branch = re.compile(r"\bkind\s*[!=]=\s*(SGD|ADAM|FBP_SGD|FBP_ADAM)\b"
                        r"|\b(SGD|ADAM|FBP_SGD|FBP_ADAM)\s*[!=]=\s*\w*\.?kind\b")
    found = {}
    for path in sorted(CSRC.glob("*.pxi")) + sorted(CSRC.glob("*.h")):
        hits = branch.findall(path.read_text())
        if hits:
            found[path.name] = len(hits)
    assert found == {}


def optimiser_words():
    """word -> the optimisers it belongs to: each registered optimiser's
    name, hyper-parameter names and buffer names (fastbp._kernels)."""
    from fastbp import _kernels
    kinds = _kernels.optimizer_kinds()
    assert {"sgd", "adam"} <= set(kinds)
    words = {}
    for name, kind in kinds.items():
        for word in (name, *kind.hyper_names, *kind.buffer_names):
            words.setdefault(word.lower(), set()).add(name)
    return words


def code_of(path: Path) -> str:
    """A csrc file without its comments and docstrings."""
    text = path.read_text()
    if path.suffix == ".h":
        return re.sub(r"/\*[\s\S]*?\*/|//[^\n]*", "", text)
    return re.sub(r'"""[\s\S]*?"""|#[^\n]*', "", text)


def optimisers_named(csrc: Path, words: dict) -> dict:
    """file -> the optimiser words its code uses though it is not one of
    those optimisers' own files (optim_<name>.pxi, fastbp_<name>.h)."""
    found = {}
    for path in sorted(csrc.glob("*.pxi")) + sorted(csrc.glob("*.h")) + [csrc / "_kernels.pyx"]:
        code_words = set(re.findall(r"\b\w+\b", code_of(path).lower()))
        foreign = sorted(word for word in code_words & set(words)
                         if not any(path.name in (f"optim_{name}.pxi", f"fastbp_{name}.h")
                                    for name in words[word]))
        if foreign:
            found[path.name] = foreign
    return found


def test_only_an_optimisers_own_files_name_it():
    """Outside optim_<name>.pxi and fastbp_<name>.h, no csrc code names an
    optimiser, its hyper-parameters or its buffers: the loops, the Trainer,
    the twins and optimizers.pxi reach every optimiser through its table."""
    words = optimiser_words()
    assert optimisers_named(CSRC, words) == {}
    # the words are there to be found, in the optimisers' own files
    assert {"momentum", "velocity"} <= set(re.findall(r"\w+", code_of(CSRC / "optim_sgd.pxi")))


def test_the_check_sees_a_part_naming_an_optimiser(tmp_path):
    copy = tmp_path / "csrc"
    shutil.copytree(CSRC, copy, ignore=shutil.ignore_patterns("*.c", "*.so"))
    training = copy / "training.pxi"
    training.write_text(training.read_text() + "\n\ncdef bint _has_momentum(const fbp_optimizer_state* "
                        "opt) noexcept nogil:\n    return opt.hyper[0] != 0  # momentum\n"
                        "cdef double MOMENTUM = 0.9\n")
    assert optimisers_named(copy, optimiser_words()) == {"training.pxi": ["momentum"]}
