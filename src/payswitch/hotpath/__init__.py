"""The hot path, compiled or pure: the one place that decides which backend is exported.

PAYSWITCH_NO_EXTENSIONS=1 forces the pure-Python twins; PAYSWITCH_REQUIRE_EXTENSIONS=1 (CI,
production) turns a missing compiled module into an ImportError instead of a quiet fallback.
"""

import importlib
import os
from types import ModuleType

MODULES = ("signing", "wire", "routing_table", "risk_rules")


def _load(name: str) -> tuple[ModuleType, str]:
    pure = importlib.import_module(f"payswitch.hotpath.{name}")
    if os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1":
        return pure, "pure"
    try:
        return importlib.import_module(f"payswitch._speedups.{name}"), "compiled"
    except ImportError:
        if os.environ.get("PAYSWITCH_REQUIRE_EXTENSIONS") == "1":
            raise
        return pure, "pure"


def pure_module(name: str) -> ModuleType:
    return importlib.import_module(f"payswitch.hotpath.{name}")


def compiled_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"payswitch._speedups.{name}")
    except ImportError:
        return None


#: Which implementation each hot-path module uses in this process.
BACKENDS: dict[str, str] = {}
for _name in MODULES:
    globals()[_name], BACKENDS[_name] = _load(_name)
