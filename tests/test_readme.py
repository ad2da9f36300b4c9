"""The README's API example runs verbatim and trains a good digits model."""
import os
import re
from pathlib import Path

import numpy as np
import pytest

import fastbp

README = Path(__file__).resolve().parents[1] / "README.md"


def _api_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## The API in 20 lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_api_example_runs_verbatim_and_reaches_95_percent(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")  # the example draws its history
    code = _api_example()
    assert len(code.strip().splitlines()) <= 21  # the section's title promises about 20 lines
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, str(README), "exec"), namespace)
    net = namespace["net"]
    assert os.path.exists("model.npz") and os.path.exists("loss.png")
    # accuracy computed here, not by Network.score
    X, labels = fastbp.load_digits(one_hot=False)
    accuracy = np.mean(net.predict(X).argmax(axis=1) == labels)
    assert accuracy >= 0.95, f"the README's model reaches {accuracy:.3f} on the digits"
    np.testing.assert_array_equal(namespace["net2"].predict(X[:20]), net.predict(X[:20]))
