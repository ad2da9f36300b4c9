"""The README's main job runs and reports what it promises."""
import re
import subprocess
import sys


def test_demo_prints_losses_accuracy_and_time(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastbp.demo", "--epochs", "5"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^epoch +\d+ +train loss [0-9.]+$", result.stdout, re.M)) == 5
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", result.stdout).group(1))
    assert accuracy > 0.9
    assert re.search(r"time per training sample [0-9.]+ µs", result.stdout)


def test_demo_rejects_bad_epochs(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fastbp.demo", "--epochs", "0"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "epochs" in result.stderr
