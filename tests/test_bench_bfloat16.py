"""bench/compare.py --compute bfloat16: fastbp's compute_dtype and PyTorch's
autocast are checked against NumPy rounding every product's operands to
bfloat16, the contenders without bfloat16 are skipped, and the check still
refuses a contender that skips the work."""
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from helpers import bench_module

torch = pytest.importorskip("torch")

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


@pytest.fixture(scope="module")
def compare():
    """bench/compare.py imported as a module (its main() does not run)."""
    yield from bench_module("compare")


def test_numpy_rounding_is_torch_bfloat16(compare):
    from peers.numpy_peer import round_to_bfloat16

    rng = np.random.default_rng(0)
    x = (rng.standard_normal(50_000) * 10.0 ** rng.integers(-30, 30, 50_000)).astype(np.float32)
    # ties: half a bfloat16 unit above 1 (to even: down), three halves (to even: up)
    x[:4] = [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), 0.0]
    expected = torch.from_numpy(x).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(round_to_bfloat16(x), expected)
    assert round_to_bfloat16(x[:2]).tolist() == [1.0, 1 + 2 ** -6]


def test_quick_run_checks_both_mixed_precision_contenders(tmp_path):
    result = subprocess.run(
        [sys.executable, str(BENCH_DIR / "compare.py"), "--quick", "--no-plot",
         "--compute", "bfloat16", "--dtypes", "float32", "--nets", "64-32-10,784-128-10",
         "--batch-sizes", "1,32", "--contenders", "fastbp,numpy,torch", "--scale", "0.3",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "quick_bfloat16_partial.json").read_text())
    assert report["failures"] == []
    cases = [case for case in report["cases"] if case["dtype"] == "bfloat16"]
    assert len(cases) == 4
    for case in cases:
        assert case["contenders"]["numpy"] == {"status": "skipped",
                                               "reason": "no bfloat16 products"}
        for name in ("fastbp", "torch"):
            check = case["contenders"][name]["check"]
            assert check["passed"] and check["compared_with"].startswith("numpy, mse, products")
            # the epoch trained: the loss moved well beyond the tolerance
            assert abs(check["loss"] - check["initial_loss"]) > 2 * check["tolerance"] * \
                check["initial_loss"]
        # fastbp rounds what the NumPy rule rounds: far inside autocast's tolerance
        fastbp_check = case["contenders"]["fastbp"]["check"]
        assert max(fastbp_check["loss_error"], fastbp_check["parameter_error"]) < 1e-3


def idle_peer(peer):
    """``peer``, but its epochs train nothing."""
    def trainer(*args, **options):
        honest = peer.Trainer(*args, **options)
        honest.epoch = lambda epochs=1: None
        return honest

    return types.SimpleNamespace(NAME=peer.NAME, MATH=peer.MATH, max_rows=None,
                                 COMPUTE=peer.COMPUTE, limitation=peer.limitation,
                                 Trainer=trainer)


@pytest.mark.parametrize("peer_name", ["fastbp_peer", "torch_peer"])
def test_the_bfloat16_check_fails_a_contender_that_skips_the_epoch(compare, peer_name):
    from peers import load_peer

    spec = next(s for s in compare.QUICK_NETWORKS if s.name == "64-32-10")
    [case] = compare.build_cases([spec], [32], ["bfloat16"], 1.0)
    assert case.X.dtype == np.float32
    honest = load_peer(peer_name)
    passed = compare.run_case(case, [honest], repeats=3, check_only=True)
    assert passed["contenders"][honest.NAME]["status"] == "ok"
    failed = compare.run_case(case, [idle_peer(honest)], repeats=3, check_only=True)
    assert failed["contenders"][honest.NAME]["status"] == "FAILED"
