"""Which implementation of a hot-path module a benchmark measures: compiled, or its pure twin."""

import os

import pytest

from payswitch import hotpath

NAMES = ("compiled", "pure")


def backend_module(module_name: str, backend_name: str):
    """The module, skipped when PAYSWITCH_NO_EXTENSIONS=1 leaves it unbuilt, failed when a build is missing."""
    if backend_name == "pure":
        return hotpath.pure_module(module_name)
    module = hotpath.compiled_module(module_name)
    if module is None:
        if os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1":
            pytest.skip("PAYSWITCH_NO_EXTENSIONS=1: compiled backend not wanted")
        pytest.fail(f"payswitch._speedups.{module_name} is not built (build_ext --inplace or pip install -e .)")
    return module
