"""The README's code runs as pasted and its figures come from bench/results/.

- every ```python block runs verbatim, each in a fresh namespace in a temporary
  folder (a block whose first line is ``# fragment: ...`` is skipped; at most one);
- the API example trains a good digits model;
- the generated regions equal what tools/figures.py renders from the committed
  results, and its figures are the raw timings' ratios (recomputed here);
- no speed figure is typed outside those regions;
- the install lines name every install path.
"""
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

import fastbp
from helpers import figures_module

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results"

needs_checkout = pytest.mark.skipif(not (ROOT / "tools" / "figures.py").exists()
                                    or not RESULTS.is_dir(),
                                    reason="not a source checkout (no tools/ or bench/results/)")


def _text() -> str:
    return README.read_text(encoding="utf-8")


def _python_blocks() -> list:
    return re.findall(r"^```python\n(.*?)^```", _text(), re.S | re.M)


def _api_example() -> str:
    text = _text()
    section = text[text.index("## The API in 20 lines"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_has_its_examples_and_at_most_one_fragment():
    blocks = _python_blocks()
    assert len(blocks) >= 2, "the README shows an estimator and a Network example"
    fragments = [b for b in blocks if b.startswith("# fragment:")]
    assert len(fragments) <= 1, "more than one python block is only a fragment"


@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_every_python_block_runs_as_pasted(index, tmp_path, monkeypatch):
    code = _python_blocks()[index]
    if code.startswith("# fragment:"):
        pytest.skip(code.splitlines()[0])
    # the examples need the extras the README names for them: fastbp[sklearn,plot]
    pytest.importorskip("sklearn")
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{README} (python block {index + 1})", "exec"), {"__name__": "__main__"})


def test_the_estimator_example_loads_its_data_and_learns(tmp_path, monkeypatch):
    pytest.importorskip("sklearn")
    estimator_blocks = [b for b in _python_blocks() if "MLPClassifier" in b]
    assert estimator_blocks, "no estimator example in the README"
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(estimator_blocks[0], str(README), "exec"), namespace)
    clf, X_test, y_test = namespace["clf"], namespace["X_test"], namespace["y_test"]
    # accuracy computed here, not by clf.score
    assert np.mean(clf.predict(X_test) == y_test) >= 0.9


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


def test_the_quick_start_commands_are_verbatim():
    text = _text()
    quick_start = text[text.index("## Quick start"):]
    block = re.search(r"```bash\n(.*?)```", quick_start, re.S).group(1)
    assert block.splitlines() == ['pip install . && fastbp train digits',
                                  'pip install ".[test]" && python -m pytest']


def test_the_install_section_names_every_install_path():
    text = _text()
    install = text[text.index("## Install"):text.index("## Quick start")]
    items = [" ".join(item.split()) for item in re.findall(r"^- (.*?)(?=^- |^$)", install,
                                                           re.S | re.M)]
    for path, enables in [(".", "fastbp train digits"), (".[test]", "python -m pytest"),
                          (".[docs]", "tools/build_docs.sh"), (".[dask]", "import fastbp.dask"),
                          (".[onnx]", "fastbp.to_onnx"),
                          (".[sklearn,plot]", "fastbp.MLPClassifier")]:
        quoted = f"`pip install {path}`" if path == "." else f'`pip install "{path}"`'
        item = next((item for item in items if item.startswith(quoted)), None)
        assert item is not None, f"the README's install list lacks {quoted}"
        assert enables in item, f"{quoted}'s item does not name {enables}"


@needs_checkout
def test_the_generated_regions_are_what_the_generator_renders():
    figures = figures_module()
    text = _text()
    regions = figures.readme_text_regions(text)
    expected = figures.readme_regions(figures.load(RESULTS))
    assert set(regions) == set(expected) == {"claims", "speed-table", "bf16-table"}
    for name, body in expected.items():
        assert regions[name] == body, (
            f"README region {name} differs from bench/results/: run python tools/figures.py")
    assert figures.render_readme(text, expected) == text


@needs_checkout
def test_a_hand_edited_figure_fails_the_check(tmp_path, capsys):
    figures = figures_module()
    text = _text()
    row = next(line for line in text.splitlines() if line.startswith("| 64-32-10 | 1 |"))
    edited = tmp_path / "README.md"
    edited.write_text(text.replace(row, row.replace("| 1 |", "| 1 | 0.001 |", 1)), encoding="utf-8")
    assert figures.main(["--check", "--readme", str(edited)]) == 1
    assert "differ from bench/results/" in capsys.readouterr().err
    # and writing puts the generated table back
    assert figures.main(["--readme", str(edited)]) == 0
    assert edited.read_text(encoding="utf-8") == text


class _three_digits(float):
    """A printed figure, equal to a value that rounds to it at three significant digits."""

    def __eq__(self, value):
        return float(self) == float(f"{value:.3g}")

    __hash__ = float.__hash__


@needs_checkout
def test_the_figures_are_ratios_of_the_raw_timings():
    """One ratio of each kind, recomputed here from the JSON, as the README and docs print it."""
    figures = figures_module()
    text = _text()
    rendered = figures.figures(figures.load(RESULTS))
    # bench/compare.py at defaults: 784-256-128-10, batch 128, float32, PyTorch over fastbp
    report = json.loads((RESULTS / "compare_defaults.json").read_text(encoding="utf-8"))
    case = next(c for c in report["cases"] if (c["net"], c["batch_size"], c["dtype"])
                == ("784-256-128-10", 128, "float32"))
    times = {name: r["us_per_sample"] for name, r in case["contenders"].items()
             if "us_per_sample" in r}
    torch_ratio = times["torch"] / times["fastbp"]
    assert _three_digits(rendered["big-b128-f32-torch-defaults"].rstrip("x")) == torch_ratio
    row = next(line for line in text.splitlines() if line.startswith("| 784-256-128-10 | 128 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert _three_digits(cells[2]) == times["fastbp"]
    assert _three_digits(cells[4]) == torch_ratio
    # bench/estimators.py: scikit-learn's fit time over fastbp's, sgd and adam
    fits = json.loads((RESULTS / "estimators.json").read_text(encoding="utf-8"))["results"]
    speedups = sorted(fits[s]["sklearn_s"] / fits[s]["fastbp_s"] for s in ("sgd", "adam"))
    low, high = re.search(r"`MLPClassifier` fits digits ([0-9.]+)-([0-9.]+)x", text).groups()
    assert (_three_digits(low), _three_digits(high)) == tuple(speedups)


def test_no_speed_figure_is_typed_outside_the_generated_regions():
    text = re.sub(r"<!-- figures:([\w-]+) -->\n.*?<!-- /figures:\1 -->", "", _text(), flags=re.S)
    prose = re.sub(r"```.*?```", "", text, flags=re.S)  # the examples' code is not a claim
    typed = re.findall(r"\b\d+(?:\.\d+)?(?:-\d+(?:\.\d+)?)?\s?(?:x|×|µs|us)\b", prose)
    assert not typed, f"speed figures typed by hand in the README: {typed}"
