"""The suite runs with warnings as errors (pyproject.toml, filterwarnings)."""
import warnings

import pytest


def test_a_warning_no_test_expects_is_an_error():
    with pytest.raises(UserWarning, match="nobody expects this"):
        warnings.warn("nobody expects this", UserWarning)
    with pytest.raises(DeprecationWarning):
        warnings.warn("nor this", DeprecationWarning)

