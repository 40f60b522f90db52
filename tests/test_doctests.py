"""The examples in the docstrings run and print what they say (examples marked ``+SKIP`` need data or time)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from tests.test_architecture import module_files

MODULES = sorted(name for name in module_files() if not name.endswith("__main__") and name != "spikedet.service.main")


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples in {name} failed (run doctest -v)"
