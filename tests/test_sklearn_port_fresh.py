"""tests/sklearn_port/test_mlp.py is scikit-learn's test_mlp.py with only the
estimator import changed: regenerating it from the same scikit-learn version
must give the committed file byte for byte."""
import importlib.util
import pathlib
import re

import pytest

sklearn = pytest.importorskip("sklearn")

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _tool():
    path = ROOT / "tools" / "port_sklearn_mlp_tests.py"
    if not path.exists():  # an unpacked sdist carries tests/ but not tools/
        pytest.skip(f"{path} is not here")
    spec = importlib.util.spec_from_file_location("port_sklearn_mlp_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_port_is_the_installed_sklearn_test_with_one_import_changed():
    tool = _tool()
    committed = tool.TARGET.read_text()
    made_from = re.match(r"# Ported from scikit-learn (\S+):", committed)
    assert made_from, "the port lost its header"
    if made_from.group(1) != sklearn.__version__:
        pytest.skip(f"the port comes from scikit-learn {made_from.group(1)}, "
                    f"{sklearn.__version__} is installed: rerun tools/port_sklearn_mlp_tests.py "
                    "to refresh it")
    text, _ = tool.ported_source()
    assert committed == text
    assert committed.count(tool.PORTED_IMPORT) == 1
