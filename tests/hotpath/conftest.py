"""Hot-path tests take their implementation from a fixture, so every behaviour is pinned for both twins.

The compiled backend is skipped only when PAYSWITCH_NO_EXTENSIONS=1 asks for pure Python; otherwise a
missing extension fails the run, because a silent fallback would let a broken build pass as pure Python.
"""

import os
from types import ModuleType

import pytest

from payswitch import hotpath

NO_EXTENSIONS = os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1"
BACKEND_NAMES = ("compiled", "pure")


def load_backend(backend_name: str, module_name: str) -> ModuleType:
    """The named backend of one hot-path module, skipped or failed as the policy above says."""
    if backend_name == "pure":
        return hotpath.pure_module(module_name)
    if NO_EXTENSIONS:
        pytest.skip("PAYSWITCH_NO_EXTENSIONS=1: the compiled backend is not wanted")
    module = hotpath.compiled_module(module_name)
    if module is None:
        pytest.fail(f"payswitch._speedups.{module_name} is not importable: the extension was not built "
                    "(pip install -e . or python setup.py build_ext --inplace); set "
                    "PAYSWITCH_NO_EXTENSIONS=1 to test pure Python only")
    return module


@pytest.fixture(scope="session", params=BACKEND_NAMES)
def backend(request) -> ModuleType:
    """The signing module of one backend: tests get signing only from here."""
    return load_backend(request.param, "signing")


@pytest.fixture(scope="session")
def pure_signing() -> ModuleType:
    return load_backend("pure", "signing")


@pytest.fixture(scope="session")
def compiled_signing() -> ModuleType:
    return load_backend("compiled", "signing")
