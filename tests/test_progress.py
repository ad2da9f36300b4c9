"""Network.fit(verbose=True): a tqdm bar over the epochs, or lines without tqdm."""
import re
import sys

import numpy as np
import pytest

import fastbp


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 3)), rng.normal(size=(40, 2))


def test_quiet_by_default(capsys, data):
    fastbp.Network([3, 4, 2], output_activation="identity", seed=0).fit(*data, epochs=3)
    assert capsys.readouterr() == ("", "")


def test_verbose_shows_a_bar_with_the_loss(capsys, data):
    pytest.importorskip("tqdm")
    net = fastbp.Network([3, 4, 2], output_activation="identity", seed=0)
    history = net.fit(*data, epochs=5, verbose=True)
    out, err = capsys.readouterr()
    assert out == ""
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.search(r"fit: 100%.*5/5", final), err
    assert f"loss={history['loss'][-1]:.5g}" in final


def test_verbose_without_tqdm_prints_lines(capsys, monkeypatch, data):
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # `from tqdm.auto import ...` fails
    net = fastbp.Network([3, 4, 2], output_activation="identity", seed=0)
    history = net.fit(*data, epochs=3, verbose=True)
    out, err = capsys.readouterr()
    assert err == ""
    lines = out.splitlines()
    assert len(lines) == 3
    for k, (line, loss) in enumerate(zip(lines, history["loss"]), 1):
        assert line.startswith(f"epoch {k}/3  loss {loss:.6g}  (")


def test_bar_is_closed_when_training_diverges(capsys, data):
    pytest.importorskip("tqdm")
    X, Y = data
    net = fastbp.Network([3, 4, 2], activation="relu", output_activation="identity", seed=0)
    # the traceback (kept in `raised`) holds the fit's frame, so only an
    # explicit close ends the bar here, not garbage collection
    with pytest.raises(fastbp.TrainingDiverged) as raised:
        net.fit(X * 1e150, Y, epochs=4, verbose=True, optimizer=fastbp.SGD(lr=1e10))
    err = capsys.readouterr().err
    assert err.endswith("\n"), err  # the bar ended its line: later output starts clean
    assert "diverged in epoch 1" in str(raised.value)
