"""What the port of scikit-learn's test_mlp.py (generated, see its header)
needs around it: scikit-learn's ``global_random_seed`` fixture and the
tests it skips, by test function name.

A name listed here that the port no longer defines is a collection error,
so a refresh from a newer scikit-learn cannot leave a stale entry behind.
"""
import os
import pathlib

import pytest

PORT = pathlib.Path(__file__).with_name("test_mlp.py")

#: tests that read scikit-learn's private attributes, which fastbp does not have
SKIP = {
    "test_gradient": "calls the private MLPClassifier._loss_grad_lbfgs",
    "test_learning_rate_warmstart": "reads the private _optimizer.learning_rate",
    "test_adaptive_learning_rate": "reads the private _optimizer.learning_rate",
    "test_n_iter_no_change": "reads the private _no_improvement_count",
    "test_n_iter_no_change_inf": "reads the private _no_improvement_count",
}


def pytest_generate_tests(metafunc):
    """scikit-learn's ``global_random_seed``: 42, or the seeds that
    SKLEARN_TESTS_GLOBAL_RANDOM_SEED names ("all", "7" or "0-9", within 0..99)."""
    if "global_random_seed" not in metafunc.fixturenames:
        return
    value = os.environ.get("SKLEARN_TESTS_GLOBAL_RANDOM_SEED")
    if value is None:
        seeds = [42]
    elif value == "all":
        seeds = list(range(100))
    else:
        start, _, stop = value.partition("-")
        try:
            seeds = list(range(int(start), int(stop or start) + 1))
        except ValueError:
            seeds = []
        if not seeds or seeds[0] < 0 or seeds[-1] > 99:
            raise ValueError("SKLEARN_TESTS_GLOBAL_RANDOM_SEED must be 'all', a seed or a "
                             f"range 'a-b' within 0..99, got {value!r}")
    metafunc.parametrize("global_random_seed", seeds)


def pytest_collection_modifyitems(config, items):
    port_items = [item for item in items if item.path == PORT]
    if not port_items:
        return
    module = port_items[0].module
    stale = sorted(name for name in SKIP if not hasattr(module, name))
    if stale:
        raise pytest.UsageError(f"tests/sklearn_port/conftest.py lists tests that {PORT.name} "
                                f"does not define: {stale}")
    for item in port_items:
        name = item.originalname
        if name in SKIP:
            item.add_marker(pytest.mark.skip(reason=SKIP[name]))
