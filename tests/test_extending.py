"""The "Extending fastbp" page stays true to the tree.

Its diffs (docs/user_guide/extending/*.diff) must still apply to the source
tree, and the page must show every file of each. That they also build and
pass their tests is tools/check_extending.sh's job (CI), which needs a build.
"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "user_guide" / "extending.rst"
DIFFS = {"adamax.diff": ["csrc/optim_adamax.pxi", "csrc/_kernels.pyx", "src/fastbp/optim.py",
                         "tests/test_optim_adamax.py", "tests/test_trainer.py"],
         "mish.diff": ["csrc/fastbp_activation_table.h", "src/fastbp/reference/activations.py",
                       "src/fastbp/onnx_export.py", "tests/test_activation_mish.py",
                       "tests/test_trainer.py"]}


def git_checkout() -> bool:
    """Whether ROOT is the top of a git work tree and git is on PATH."""
    if shutil.which("git") is None:
        return False
    found = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=ROOT,
                           capture_output=True, text=True)
    return found.returncode == 0 and Path(found.stdout.strip()).resolve() == ROOT


pytestmark = pytest.mark.skipif(not PAGE.exists() or not git_checkout(),
                                reason="not a git checkout with git on PATH")


def files_of(diff: Path) -> list:
    return re.findall(r"^diff --git a/(\S+) b/", diff.read_text(encoding="utf-8"), re.M)


@pytest.mark.parametrize("name", sorted(DIFFS))
def test_each_diff_applies_to_the_tree(name):
    diff = PAGE.parent / "extending" / name
    assert files_of(diff) == DIFFS[name]
    checked = subprocess.run(["git", "apply", "--check", str(diff)], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, (
        f"{diff.relative_to(ROOT)} no longer applies: remake it as the page's last section "
        f"says\n{checked.stderr}")


def included_parts(page: str) -> dict:
    """Per diff the page includes: (:start-at:, :end-before:) of each of its literalincludes."""
    parts = {}
    for name, options in re.findall(r"^\.\. literalinclude:: extending/(\S+)\n((?:   :.*\n)*)",
                                    page, re.M):
        found = [re.search(rf"^   :{option}: (.+)$", options, re.M)
                 for option in ("start-at", "end-before")]
        parts.setdefault(name, []).append(tuple(m.group(1) if m else None for m in found))
    return parts


def test_the_page_shows_every_file_of_both_diffs():
    parts = included_parts(PAGE.read_text(encoding="utf-8"))
    assert sorted(parts) == sorted(DIFFS)
    for name, files in DIFFS.items():
        # one literalinclude a file, in the diff's order, each up to the next file
        starts = [f"diff --git a/{file}" for file in files]
        assert parts[name] == list(zip(starts, starts[1:] + [None]))


def test_a_stale_diff_fails_the_check(tmp_path):
    diff = (PAGE.parent / "extending" / "mish.diff").read_text(encoding="utf-8")
    stale = tmp_path / "stale.diff"
    row = '     "softsign": _softsign,\n'
    stale.write_text(diff.replace(row, row.replace("_softsign", '_node("Softsign")')),
                     encoding="utf-8")
    checked = subprocess.run(["git", "apply", "--check", str(stale)], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode != 0 and "onnx_export.py" in checked.stderr


def test_ci_runs_the_check_after_the_debug_build():
    lines = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert lines.index("bash tools/check_extending.sh") > lines.index(
        "bash tools/debug_kernel_tests.sh")
