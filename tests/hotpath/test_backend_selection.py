"""The switch point exports the compiled backend unless told otherwise; a silent fallback fails here."""

import os
import subprocess
import sys

import pytest

from payswitch import hotpath

NO_EXTENSIONS = os.environ.get("PAYSWITCH_NO_EXTENSIONS") == "1"

REPORT_BACKEND = """
from payswitch import hotpath
assert hotpath.signing is (hotpath.pure_module("signing") if hotpath.BACKENDS["signing"] == "pure"
                           else hotpath.compiled_module("signing"))
print(hotpath.BACKENDS["signing"])
"""


def _backend_in_subprocess(**variables: str) -> str:
    env = {key: value for key, value in os.environ.items()
           if key not in ("PAYSWITCH_NO_EXTENSIONS", "PAYSWITCH_REQUIRE_EXTENSIONS")}
    env.update(variables)
    completed = subprocess.run([sys.executable, "-c", REPORT_BACKEND], env=env, capture_output=True, text=True,
                               timeout=60)
    assert completed.returncode == 0, completed.stderr
    return completed.stdout.strip()


def test_this_process_uses_the_compiled_backend_unless_told_not_to():
    expected = "pure" if NO_EXTENSIONS else "compiled"
    assert hotpath.BACKENDS["signing"] == expected
    assert hotpath.signing.__name__ == {"pure": "payswitch.hotpath.signing",
                                        "compiled": "payswitch._speedups.signing"}[expected]


@pytest.mark.slow
def test_no_extensions_forces_pure_python():
    assert _backend_in_subprocess(PAYSWITCH_NO_EXTENSIONS="1") == "pure"


@pytest.mark.slow
@pytest.mark.skipif(NO_EXTENSIONS, reason="PAYSWITCH_NO_EXTENSIONS=1: the extension may not be built")
def test_required_extensions_load_the_compiled_backend():
    assert _backend_in_subprocess(PAYSWITCH_REQUIRE_EXTENSIONS="1") == "compiled"


def test_both_backends_share_the_exception_and_the_header_names(backend, pure_signing):
    assert backend.SigningError is pure_signing.SigningError
    for name in ("SCHEME", "WINDOW_SECONDS", "DEFAULT_NONCE_CAPACITY", "MERCHANT_HEADER", "KEY_ID_HEADER",
                 "TIMESTAMP_HEADER", "NONCE_HEADER", "SIGNATURE_HEADER", "SIGNING_HEADERS"):
        assert getattr(backend, name) == getattr(pure_signing, name), name
    for name in ("string_to_sign", "sign", "NonceCache", "Verifier"):
        assert callable(getattr(backend, name)), name
