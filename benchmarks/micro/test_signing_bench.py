"""Request signing, compiled vs pure vs the library call, one table per operation.

Run: pytest benchmarks/micro/test_signing_bench.py --benchmark-group-by=group

Every verify call checks a fresh, well-signed request with a new nonce, so the nonce cache's cost (a
growing set, as in production) is part of the figure; the library baseline is hmac.digest over the
same string to sign, the floor for any Python caller.
"""

import hmac

import pytest
from backends import backend_module

from payswitch import hotpath

SECRET = bytes(range(32))
METHOD = "/payswitch.v1.PaymentSwitch/Authorize"
MERCHANT = "m_acme"
KEY_ID = "k1"
TIMESTAMP = "1795000000"
NOW = 1795000000
NONCE = "n-0001-abcdefghijkl"
BODY = bytes((i * 7 + 3) % 256 for i in range(250))  # a typical AuthorizeRequest is a few hundred bytes

VERIFY_WARMUP_ROUNDS = 1
VERIFY_ROUNDS = 100
VERIFY_ITERATIONS = 1000  # calls per round; each needs its own request, so the pool holds them all
# pytest-benchmark makes one more call after the rounds, for the result.
VERIFY_REQUESTS = (VERIFY_WARMUP_ROUNDS + VERIFY_ROUNDS) * VERIFY_ITERATIONS + 1


def _backend_module(name):
    return backend_module("signing", name)


@pytest.fixture(params=["compiled", "pure"])
def backend(request):
    return _backend_module(request.param)


@pytest.fixture(scope="module")
def signed_requests():
    """Metadata of distinct well-signed requests, as gRPC hands them over (str values, extra headers)."""
    signer = hotpath.signing
    requests = []
    for index in range(VERIFY_REQUESTS):
        nonce = f"bench-nonce-{index:016d}"
        signature = signer.sign(SECRET, METHOD, MERCHANT, KEY_ID, TIMESTAMP, nonce, BODY)
        requests.append((
            ("user-agent", "grpc-python/1.85.0 grpc-c/50.0.0 (linux; chttp2)"),
            (signer.MERCHANT_HEADER, MERCHANT),
            (signer.KEY_ID_HEADER, KEY_ID),
            (signer.TIMESTAMP_HEADER, TIMESTAMP),
            (signer.NONCE_HEADER, nonce),
            (signer.SIGNATURE_HEADER, signature),
        ))
    return requests


def _string_to_sign():
    return hotpath.pure_module("signing").string_to_sign(METHOD, MERCHANT, KEY_ID, TIMESTAMP, NONCE, BODY)


@pytest.mark.benchmark(group="signing.verify")
def test_verify(benchmark, backend, signed_requests):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    pending = iter(signed_requests)
    verify = verifier.verify

    def verify_next():
        return verify(METHOD, next(pending), BODY, NOW)

    result = benchmark.pedantic(verify_next, rounds=VERIFY_ROUNDS, iterations=VERIFY_ITERATIONS,
                                warmup_rounds=VERIFY_WARMUP_ROUNDS)
    assert result == MERCHANT


@pytest.mark.benchmark(group="signing.verify")
def test_verify_library_hmac(benchmark):
    message = _string_to_sign()
    benchmark(hmac.digest, SECRET, message, "sha256")


@pytest.mark.benchmark(group="signing.sign")
def test_sign(benchmark, backend):
    signature = benchmark(backend.sign, SECRET, METHOD, MERCHANT, KEY_ID, TIMESTAMP, NONCE, BODY)
    assert signature == "v1=" + hmac.digest(SECRET, _string_to_sign(), "sha256").hex()


@pytest.mark.benchmark(group="signing.sign")
def test_sign_library_hmac(benchmark):
    message = _string_to_sign()
    benchmark(hmac.digest, SECRET, message, "sha256")


@pytest.mark.benchmark(group="signing.string_to_sign")
def test_string_to_sign(benchmark, backend):
    assert benchmark(backend.string_to_sign, METHOD, MERCHANT, KEY_ID, TIMESTAMP, NONCE, BODY) == _string_to_sign()


@pytest.mark.benchmark(group="signing.string_to_sign")
def test_string_to_sign_library_join(benchmark):
    parts = (b"PAYSWITCH-HMAC-SHA256", METHOD.encode(), MERCHANT.encode(), KEY_ID.encode(), TIMESTAMP.encode(),
             NONCE.encode(), BODY)
    assert benchmark(b"\n".join, parts) == _string_to_sign()
