"""bench/compare.py --optimizers: fastbp, NumPy and torch.optim run each
optimiser on the same work (same-work check first), and the check tells one
optimiser from another."""
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import bench_module

torch = pytest.importorskip("torch")

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"
OPTIMIZERS = ("adam", "adamw", "nadam", "rmsprop", "adagrad", "rprop")


@pytest.fixture(scope="module")
def compare():
    """bench/compare.py imported as a module (its main() does not run)."""
    yield from bench_module("compare")


def test_quick_run_of_every_optimiser_passes_its_same_work_checks(tmp_path, compare):
    from peers.optimizers import NAMES

    assert set(NAMES) == {"sgd", *OPTIMIZERS}  # a new one joins this test
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "compare.py"), "--quick", "--no-plot",
         "--optimizers", ",".join(NAMES), "--nets", "64-32-10", "--batch-sizes", "1,32",
         "--contenders", "fastbp,numpy,torch", "--scale", "0.3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "quick_optimizers_partial.json").read_text())
    assert report["failures"] == []
    cases = {(case.get("optimizer", "sgd"), case["batch_size"], case["dtype"]): case
             for case in report["cases"]}
    assert len(cases) == len(NAMES) * 2 * 2
    for (optimizer, batch_size, dtype), case in cases.items():
        for name in ("fastbp", "numpy", "torch"):
            outcome = case["contenders"][name]
            if optimizer == "rprop" and batch_size == 1:
                assert outcome["status"] == "skipped"
                continue
            check = outcome["check"]
            assert outcome["status"] == "ok" and check["passed"], (optimizer, name, check)
            assert max(check["loss_error"], check["parameter_error"]) <= check["tolerance"]
            # the epoch trained: the loss moved well beyond the tolerance
            assert abs(check["loss"] - check["initial_loss"]) > 100 * check["tolerance"] * \
                check["initial_loss"]
    # the table names the optimiser of every row; the plain-SGD rows keep their contenders
    markdown = (tmp_path / "quick_optimizers_partial.md").read_text()
    for optimizer in OPTIMIZERS:
        assert f"| 64-32-10 | 32 | float64 | {optimizer} | 90 | ✓" in markdown
    assert "| 64-32-10 | 32 | float64 | sgd | 90 | ✓" in markdown


def wrong_optimizer_peer(peer, optimizer):
    """``peer``, but its trainer runs ``optimizer`` whatever the case asks."""
    def trainer(*args, **options):
        return peer.Trainer(*args, **{**options, "optimizer": optimizer})

    return types.SimpleNamespace(NAME=peer.NAME, MATH=peer.MATH, max_rows=None,
                                 OPTIMIZERS=peer.OPTIMIZERS, limitation=peer.limitation,
                                 Trainer=trainer)


@pytest.mark.parametrize("peer_name", ["fastbp_peer", "torch_peer"])
@pytest.mark.parametrize("asked,run", list(zip(OPTIMIZERS, OPTIMIZERS[1:] + OPTIMIZERS[:1])))
def test_the_check_fails_a_contender_running_another_optimiser(compare, peer_name, asked, run):
    from peers import load_peer

    spec = next(s for s in compare.QUICK_NETWORKS if s.name == "64-32-10")
    [case] = compare.build_cases([spec], [32], ["float64"], 1.0, [asked])
    honest = load_peer(peer_name)
    passed = compare.run_case(case, [honest], repeats=3, check_only=True)
    assert passed["contenders"][honest.NAME]["status"] == "ok"
    failed = compare.run_case(case, [wrong_optimizer_peer(honest, run)], repeats=3,
                              check_only=True)
    assert failed["contenders"][honest.NAME]["status"] == "FAILED"
