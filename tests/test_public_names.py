"""fastbp's top-level names: ``__all__`` complete, the estimators loaded lazily."""
import inspect
import subprocess
import sys
import textwrap

import pytest

import fastbp

ESTIMATORS = ["MLPClassifier", "MLPRegressor"]


def run_python(code: str) -> str:
    """stdout of ``code`` in a fresh interpreter; fails the test on an error."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_name_in_all_resolves():
    assert len(set(fastbp.__all__)) == len(fastbp.__all__)
    for name in fastbp.__all__:
        assert getattr(fastbp, name) is not None, name
        assert name in dir(fastbp)


def test_all_lists_every_public_function_class_and_constant():
    public = {name for name, value in vars(fastbp).items()
              if not name.startswith("_") and not inspect.ismodule(value)}
    assert public <= set(fastbp.__all__), sorted(public - set(fastbp.__all__))
    assert {"to_onnx", "register_skl2onnx"} <= set(fastbp.__all__)


def test_the_estimators_are_listed_and_load_when_asked_for():
    pytest.importorskip("sklearn")
    from fastbp import estimators
    assert set(ESTIMATORS) <= set(fastbp.__all__) and set(ESTIMATORS) <= set(dir(fastbp))
    for name in ESTIMATORS:
        assert getattr(fastbp, name) is getattr(estimators, name)
    namespace = {}
    exec("from fastbp import *", namespace)
    assert namespace["MLPClassifier"] is estimators.MLPClassifier


def test_import_fastbp_imports_neither_scikit_learn_nor_onnx():
    loaded = run_python("""
        import sys
        import fastbp
        print(sorted(name for name in sys.modules
                     if name.partition(".")[0] in ("sklearn", "onnx", "skl2onnx")
                     or name in ("fastbp.estimators", "fastbp.onnx_export")))
        """)
    assert loaded.strip() == "[]"


def test_without_scikit_learn_the_estimators_are_unlisted_and_say_what_to_install():
    out = run_python("""
        import sys
        sys.modules["sklearn"] = None  # as if scikit-learn were not installed
        import fastbp
        namespace = {}
        exec("from fastbp import *", namespace)
        print("MLPClassifier" in fastbp.__all__, "MLPClassifier" in dir(fastbp),
              "MLPClassifier" in namespace, "to_onnx" in namespace)
        try:
            fastbp.MLPRegressor
        except ModuleNotFoundError as exc:
            print(exc)
        """)
    listed, message = out.splitlines()
    assert listed == "False False False True"
    assert message == 'fastbp.MLPRegressor needs the sklearn package: pip install "fastbp[sklearn]"'


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'fastbp' has no attribute 'MLP'"):
        fastbp.MLP
    assert not hasattr(fastbp, "Estimator")
