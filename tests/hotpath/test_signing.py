"""PAYSWITCH-HMAC-SHA256 signing and verification, pinned for both backends (docs/signing.md)."""

import hmac
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signing.json").read_text())
CASES = VECTORS["cases"]

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(100, 132))
METHOD = "/payswitch.v1.PaymentSwitch/Authorize"
MERCHANT = "m_acme"
KEY_ID = "k1"
NOW = 1_795_000_000
BODY = b"\x0a\x0corder-000001\x10\xe8\x07\x1a\x03USD"

MERCHANT_HEADER = "x-payswitch-merchant"
KEY_ID_HEADER = "x-payswitch-key-id"
TIMESTAMP_HEADER = "x-payswitch-timestamp"
NONCE_HEADER = "x-payswitch-nonce"
SIGNATURE_HEADER = "x-payswitch-signature"
HEADERS = (MERCHANT_HEADER, KEY_ID_HEADER, TIMESTAMP_HEADER, NONCE_HEADER, SIGNATURE_HEADER)


def signed_metadata(signing, nonce_value, *, merchant=MERCHANT, key_id=KEY_ID, timestamp=NOW, secret=SECRET,
                    method=METHOD, body=BODY):
    """Metadata of a correctly signed request, as gRPC hands it over (str values, an extra header)."""
    timestamp = str(timestamp)
    signature = signing.sign(secret, method, merchant, key_id, timestamp, nonce_value, body)
    return [("user-agent", "grpc-python/1.85.0"), (MERCHANT_HEADER, merchant), (KEY_ID_HEADER, key_id),
            (TIMESTAMP_HEADER, timestamp), (NONCE_HEADER, nonce_value), (SIGNATURE_HEADER, signature)]


def verdict(verifier, signing, method, metadata, body, now=None):
    try:
        verifier.verify(method, metadata, body, now)
    except signing.SigningError as error:
        return error.reason
    return "ok"


def nonce(number: int) -> str:
    return f"nonce-{number:016d}"


# ---- the shared vectors ------------------------------------------------------------------------


def case_inputs(case):
    return (case["method"], case["merchant"], case["key_id"], case["timestamp"], case["nonce"],
            bytes.fromhex(case["body_hex"]))


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_string_to_sign_matches_the_vector(backend, case):
    if case["string_to_sign_hex"] is None:
        pytest.skip("the vector gives no string to sign")
    assert backend.string_to_sign(*case_inputs(case)).hex() == case["string_to_sign_hex"]


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_sign_matches_the_vector(backend, case):
    secret = bytes.fromhex(case["secret_hex"])
    signature = backend.sign(secret, *case_inputs(case))
    if case["expect"] == "ok":
        assert signature == case["signature"]
    elif case["expect"] == "signature_mismatch":
        assert signature != case["signature"]
    if case["string_to_sign_hex"] is not None:
        message = bytes.fromhex(case["string_to_sign_hex"])
        assert signature == "v1=" + hmac.digest(secret, message, "sha256").hex()


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_verify_gives_the_vector_verdict(backend, case):
    verifier = backend.Verifier({(case["merchant"], case["key_id"]): bytes.fromhex(case["secret_hex"])})
    metadata = [(MERCHANT_HEADER, case["merchant"]), (KEY_ID_HEADER, case["key_id"]),
                (TIMESTAMP_HEADER, case["timestamp"]), (NONCE_HEADER, case["nonce"]),
                (SIGNATURE_HEADER, case["signature"])]
    assert verdict(verifier, backend, case["method"], metadata, bytes.fromhex(case["body_hex"]),
                   case["now"]) == case["expect"]


def test_vectors_use_the_spec_window(backend):
    assert VECTORS["window_seconds"] == backend.WINDOW_SECONDS == 300


# ---- verification ------------------------------------------------------------------------------


def test_a_well_signed_request_returns_its_merchant(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    assert verifier.verify(METHOD, signed_metadata(backend, nonce(1)), BODY, NOW) == MERCHANT


def test_bytes_are_accepted_wherever_text_is(backend):
    verifier = backend.Verifier({(MERCHANT.encode(), KEY_ID.encode()): SECRET})
    metadata = [(key, value.encode()) for key, value in signed_metadata(backend, nonce(1))]
    assert verifier.verify(METHOD.encode(), metadata, bytearray(BODY), NOW) == MERCHANT
    signature = dict(metadata)[SIGNATURE_HEADER].decode()
    assert backend.sign(SECRET, METHOD.encode(), MERCHANT.encode(), KEY_ID.encode(), str(NOW).encode(),
                        nonce(1).encode(), memoryview(BODY)) == signature


def test_a_nonce_is_refused_the_second_time_but_not_for_another_merchant(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET, ("m_other", KEY_ID): OTHER_SECRET})
    metadata = signed_metadata(backend, nonce(1))
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "ok"
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "replayed_nonce"
    other = signed_metadata(backend, nonce(1), merchant="m_other", secret=OTHER_SECRET)
    assert verdict(verifier, backend, METHOD, other, BODY, NOW) == "ok"


def test_a_nonce_is_recorded_only_for_a_correct_signature(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    forged = signed_metadata(backend, nonce(1), secret=OTHER_SECRET)
    assert verdict(verifier, backend, METHOD, forged, BODY, NOW) == "signature_mismatch"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1)), BODY, NOW) == "ok"


@pytest.mark.parametrize("keys", [{(MERCHANT, "k2"): SECRET}, {("m_other", KEY_ID): SECRET}, {}],
                         ids=["other-key-id", "other-merchant", "no-keys"])
def test_an_unknown_key_is_refused(backend, keys):
    verifier = backend.Verifier(keys)
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1)), BODY, NOW) == "unknown_key"


@pytest.mark.parametrize("header", HEADERS)
def test_a_repeated_header_is_duplicate_metadata(backend, header):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1))
    metadata.append((header, dict(metadata)[header]))  # even the same value twice is ambiguous
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "duplicate_metadata"


def test_a_repeated_header_is_named_before_a_missing_one(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = [(key, value) for key, value in signed_metadata(backend, nonce(1)) if key != SIGNATURE_HEADER]
    metadata.append((NONCE_HEADER, nonce(2)))
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "duplicate_metadata"


@pytest.mark.parametrize("header", HEADERS)
def test_each_missing_header_is_missing_metadata(backend, header):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = [(key, value) for key, value in signed_metadata(backend, nonce(1)) if key != header]
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "missing_metadata"


def test_header_names_match_exactly(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = [(key.upper() if key == NONCE_HEADER else key, value)
                for key, value in signed_metadata(backend, nonce(1))]
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "missing_metadata"
    metadata = [(key.encode() if key == NONCE_HEADER else key, value)
                for key, value in signed_metadata(backend, nonce(1))]
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "missing_metadata"


@pytest.mark.parametrize(("header", "value", "expected"), [
    (MERCHANT_HEADER, "", "malformed_merchant"),
    (MERCHANT_HEADER, "m" * 65, "malformed_merchant"),
    (MERCHANT_HEADER, "m acme", "malformed_merchant"),
    (MERCHANT_HEADER, "m_acmé", "malformed_merchant"),
    (KEY_ID_HEADER, "", "malformed_key_id"),
    (KEY_ID_HEADER, "k" * 65, "malformed_key_id"),
    (KEY_ID_HEADER, "k/1", "malformed_key_id"),
    (TIMESTAMP_HEADER, "", "malformed_timestamp"),
    (TIMESTAMP_HEADER, "-1795000000", "malformed_timestamp"),
    (TIMESTAMP_HEADER, "1795000000 ", "malformed_timestamp"),
    (TIMESTAMP_HEADER, "١٧٩٥٠٠٠٠٠٠", "malformed_timestamp"),  # digits, but not ASCII ones
    (TIMESTAMP_HEADER, "1" * 33, "malformed_timestamp"),
    (NONCE_HEADER, "n" * 15, "malformed_nonce"),
    (NONCE_HEADER, "n" * 65, "malformed_nonce"),
    (NONCE_HEADER, "nonce.0000000000000001", "malformed_nonce"),
    (SIGNATURE_HEADER, "v1=" + "0" * 63, "malformed_signature"),
    (SIGNATURE_HEADER, "v1=" + "0" * 65, "malformed_signature"),
    (SIGNATURE_HEADER, "v2=" + "0" * 64, "malformed_signature"),
    (SIGNATURE_HEADER, "v1=" + "g" * 64, "malformed_signature"),
    (SIGNATURE_HEADER, "v1=" + "0" * 63 + "\n", "malformed_signature"),
])
def test_malformed_values_get_their_failure_name(backend, header, value, expected):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = [(key, value if key == header else original) for key, original in signed_metadata(backend, nonce(1))]
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == expected


def test_checks_run_in_the_spec_order(backend):
    verifier = backend.Verifier({})
    metadata = [(MERCHANT_HEADER, "bad merchant"), (KEY_ID_HEADER, "bad key"), (TIMESTAMP_HEADER, "x"),
                (NONCE_HEADER, "short"), (SIGNATURE_HEADER, "nope")]
    expected = ["malformed_merchant", "malformed_key_id", "malformed_timestamp", "malformed_nonce",
                "malformed_signature", "unknown_key"]
    fixes = [(MERCHANT_HEADER, MERCHANT), (KEY_ID_HEADER, KEY_ID), (TIMESTAMP_HEADER, "1"),
             (NONCE_HEADER, nonce(1)), (SIGNATURE_HEADER, "v1=" + "0" * 64)]
    for index, expectation in enumerate(expected):
        assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == expectation
        if index < len(fixes):
            header, value = fixes[index]
            metadata = [(key, value if key == header else original) for key, original in metadata]
    verifier.set_keys({(MERCHANT, KEY_ID): SECRET})
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "timestamp_out_of_window"
    metadata = [(key, str(NOW) if key == TIMESTAMP_HEADER else value) for key, value in metadata]
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "signature_mismatch"


def test_set_keys_replaces_the_whole_table(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1)), BODY, NOW) == "ok"
    verifier.set_keys({(MERCHANT, "k2"): OTHER_SECRET})
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(2)), BODY, NOW) == "unknown_key"
    rotated = signed_metadata(backend, nonce(3), key_id="k2", secret=OTHER_SECRET)
    assert verdict(verifier, backend, METHOD, rotated, BODY, NOW) == "ok"
    verifier.set_keys({(MERCHANT, "k2"): SECRET})  # same key id, new secret
    stale = signed_metadata(backend, nonce(4), key_id="k2", secret=OTHER_SECRET)
    assert verdict(verifier, backend, METHOD, stale, BODY, NOW) == "signature_mismatch"


def test_a_merchant_may_hold_several_keys(backend):
    verifier = backend.Verifier({(MERCHANT, "k1"): SECRET, (MERCHANT, "k2"): OTHER_SECRET})
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1)), BODY, NOW) == "ok"
    second = signed_metadata(backend, nonce(2), key_id="k2", secret=OTHER_SECRET)
    assert verdict(verifier, backend, METHOD, second, BODY, NOW) == "ok"


def test_the_injected_clock_is_used_when_now_is_not_given(backend):
    readings = []

    def clock():
        readings.append(1)
        return NOW + 0.9  # truncated to whole seconds

    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET}, clock=clock)
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1)), BODY) == "ok"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(2), timestamp=NOW - 300),
                   BODY) == "ok"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(3), timestamp=NOW - 301),
                   BODY) == "timestamp_out_of_window"
    assert len(readings) == 3
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(4)), BODY, NOW) == "ok"
    assert len(readings) == 3  # an explicit `now` wins


@pytest.mark.parametrize(("offset", "expected"), [(-300, "ok"), (300, "ok"), (-301, "timestamp_out_of_window"),
                                                   (301, "timestamp_out_of_window")])
def test_the_window_bound_itself_is_accepted(backend, offset, expected):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1), timestamp=NOW + offset)
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == expected


def test_a_configured_window_is_honoured(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET}, window_seconds=10)
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1), timestamp=NOW - 10), BODY,
                   NOW) == "ok"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(2), timestamp=NOW - 11), BODY,
                   NOW) == "timestamp_out_of_window"


@pytest.mark.parametrize("timestamp", ["1" * 25, "9" * 32, "18446744073709551616", "9223372036854775808"])
def test_huge_timestamps_are_out_of_the_window(backend, timestamp):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1), timestamp=timestamp)
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "timestamp_out_of_window"


def test_timestamps_beyond_64_bits_compare_exactly(backend):
    """10**19 does not fit an int64; with a window that reaches it, it is in the window like any other."""
    now = 2**63 - 1
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET}, window_seconds=10**19 - now)
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1), timestamp=10**19), BODY,
                   now) == "ok"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(2), timestamp=10**19 + 1), BODY,
                   now) == "timestamp_out_of_window"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(3), timestamp="0" * 22 + "1"),
                   BODY, now) == "timestamp_out_of_window"


def test_leading_zeros_are_signed_as_sent(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1), timestamp="000" + str(NOW))
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "ok"


def test_a_signature_binds_the_method_and_the_body(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1))
    assert verdict(verifier, backend, "/payswitch.v1.PaymentSwitch/Refund", metadata, BODY, NOW) == "signature_mismatch"
    assert verdict(verifier, backend, METHOD, metadata, BODY + b"\x00", NOW) == "signature_mismatch"
    assert verdict(verifier, backend, METHOD, metadata, BODY, NOW) == "ok"


@pytest.mark.parametrize("size", [0, 1, 55, 56, 64, 65, 100_000])
def test_bodies_of_any_size_verify(backend, size):
    """Sizes around SHA-256's padding boundaries, and one large enough to hash without the GIL."""
    body = bytes(index % 251 for index in range(size))
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    metadata = signed_metadata(backend, nonce(1), body=body)
    assert verdict(verifier, backend, METHOD, metadata, body, NOW) == "ok"
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(2), body=body), body[:-1] or b"x",
                   NOW) == "signature_mismatch"


def test_concurrent_verification_accepts_each_nonce_once(backend):
    """Large bodies are hashed without the GIL; the nonce cache must still see every request once."""
    body = bytes(range(256)) * 400
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET})
    requests = [signed_metadata(backend, nonce(number), body=body) for number in range(64)]

    def verify_all(offset):
        return [verdict(verifier, backend, METHOD, requests[(offset + index) % len(requests)], body, NOW)
                for index in range(len(requests))]

    with ThreadPoolExecutor(max_workers=4) as pool:
        verdicts = [verdict for batch in pool.map(verify_all, (0, 16, 32, 48)) for verdict in batch]
    assert sorted(verdicts) == ["ok"] * 64 + ["replayed_nonce"] * 192


@pytest.mark.parametrize("secret_size", [0, 1, 32, 64, 65, 200])
def test_secrets_of_any_length_follow_hmac(backend, secret_size):
    secret = bytes(range(secret_size))
    message = backend.string_to_sign(METHOD, MERCHANT, KEY_ID, str(NOW), nonce(1), BODY)
    assert backend.sign(secret, METHOD, MERCHANT, KEY_ID, str(NOW), nonce(1), BODY) == \
        "v1=" + hmac.digest(secret, message, "sha256").hex()
    verifier = backend.Verifier({(MERCHANT, KEY_ID): secret})
    assert verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(1), secret=secret), BODY,
                   NOW) == "ok"


def test_non_ascii_text_is_refused(backend):
    with pytest.raises(UnicodeEncodeError):
        backend.string_to_sign("/payswitch.v1.PaymentSwitch/Authorizé", MERCHANT, KEY_ID, str(NOW), nonce(1), BODY)
    with pytest.raises(UnicodeEncodeError):
        backend.sign(SECRET, METHOD, "m_acmé", KEY_ID, str(NOW), nonce(1), BODY)
    with pytest.raises(TypeError):
        backend.sign("not bytes", METHOD, MERCHANT, KEY_ID, str(NOW), nonce(1), BODY)


# ---- the nonce cache ---------------------------------------------------------------------------


def test_a_full_nonce_cache_evicts_the_oldest_and_raises_its_floor(backend):
    verifier = backend.Verifier({(MERCHANT, KEY_ID): SECRET}, nonce_capacity=2)

    def check(number, timestamp):
        return verdict(verifier, backend, METHOD, signed_metadata(backend, nonce(number), timestamp=timestamp),
                       BODY, NOW)

    assert check(1, NOW) == "ok"
    assert check(2, NOW) == "ok"
    assert check(3, NOW + 1) == "ok"  # evicts nonce 1: the floor rises to NOW
    assert check(1, NOW) == "replayed_nonce"  # evicted, yet its replay is still refused ...
    assert check(4, NOW) == "replayed_nonce"  # ... at the price of refusing new nonces as old as it
    assert check(5, NOW + 1) == "ok"
    assert check(3, NOW + 1) == "replayed_nonce"


def test_nonce_cache_bounds_its_size_and_expires_entries(backend):
    cache = backend.NonceCache(window_seconds=300, capacity=3)
    for number in range(10):
        assert cache.check_and_add(b"m", nonce(number).encode(), 1000 + number, 1000 + number)
        assert len(cache) == min(number + 1, 3)
    assert not cache.check_and_add(b"m", nonce(9).encode(), 1009, 1009)
    assert not cache.check_and_add(b"m", nonce(100).encode(), 1006, 1009)  # not newer than the floor
    assert cache.check_and_add(b"m", nonce(9).encode(), 2000, 2000)  # the old entries expired
    assert len(cache) == 1


def test_nonce_cache_keys_on_the_merchant_too(backend):
    cache = backend.NonceCache(window_seconds=300, capacity=10)
    assert cache.check_and_add(b"a", b"n", 1000, 1000)
    assert cache.check_and_add(b"b", b"n", 1000, 1000)
    assert cache.check_and_add(b"ab", b"", 1000, 1000)  # not the same pair as ("a", "b")
    assert cache.check_and_add(b"a", b"b", 1000, 1000)
    assert not cache.check_and_add(b"a", b"n", 1000, 1000)
    assert len(cache) == 4


# ---- differential: the compiled twin against the pure one --------------------------------------

IDENTIFIERS = st.from_regex(r"[A-Za-z0-9_.\-]{1,64}", fullmatch=True)
NONCES = st.from_regex(r"[A-Za-z0-9_\-]{16,64}", fullmatch=True)
ANY_TEXT = st.text(max_size=70)
METHODS = st.one_of(st.sampled_from([METHOD, "/payswitch.v1.PaymentSwitch/Capture", ""]),
                    st.text(st.characters(max_codepoint=127), max_size=60), ANY_TEXT, st.binary(max_size=40))
SECRETS = st.binary(max_size=100)
BODIES = st.binary(max_size=400)


def outcome(signing, call):
    """What a call came to: its result, the failure name it was refused with, or the exception type."""
    try:
        return ("ok", call())
    except signing.SigningError as error:
        return ("refused", error.reason)
    except Exception as error:  # noqa: BLE001 - the two twins must fail alike, whatever the failure
        return ("raised", type(error))


FLAWS = ("merchant", "key_id", "timestamp", "nonce", "signature", "headers", "key", "tampered", "text")


def broken_text(draw, valid):
    """A value that breaks its field's format, or by chance does not."""
    return draw(st.one_of(ANY_TEXT, st.just(valid + "!"), st.just(valid * 70), st.just(valid + "é")))


@st.composite
def client_requests(draw):
    """A request as a client might send it: well-formed half the time, else broken in one to three ways."""
    flaws = draw(st.one_of(st.just(frozenset()), st.sets(st.sampled_from(FLAWS), min_size=1, max_size=3)))
    window = draw(st.sampled_from([0, 300, 10**6]))
    now = draw(st.integers(min_value=0, max_value=2**40))
    merchant = draw(IDENTIFIERS)
    key_id = draw(IDENTIFIERS)
    timestamp = str(max(0, now + draw(st.integers(min_value=-window, max_value=window))))
    nonce_value = draw(NONCES)
    method = draw(METHODS)
    body = draw(BODIES)
    secret = draw(SECRETS)
    if "merchant" in flaws:
        merchant = broken_text(draw, merchant)
    if "key_id" in flaws:
        key_id = broken_text(draw, key_id)
    if "timestamp" in flaws:
        timestamp = draw(st.one_of(
            st.integers(min_value=window + 1, max_value=window + 10**6).map(lambda offset: str(now + offset)),
            st.just("000" + timestamp),  # still valid
            st.from_regex(r"[0-9]{17,34}", fullmatch=True),
            ANY_TEXT))
    if "nonce" in flaws:
        nonce_value = broken_text(draw, nonce_value)
    try:
        parts = [part if isinstance(part, bytes) else part.encode("ascii")
                 for part in (method, merchant, key_id, timestamp, nonce_value)]
        signed = hmac.digest(secret, b"\n".join([b"PAYSWITCH-HMAC-SHA256", *parts, body]), "sha256").hex()
    except UnicodeEncodeError:
        signed = "0" * 64
    signature = "v1=" + signed
    if "signature" in flaws:
        signature = draw(st.one_of(st.just(signature.upper()), st.just(signed),
                                   st.just(signature[:-1] + ("0" if signature[-1] != "0" else "1")), ANY_TEXT))
    if "tampered" in flaws:
        if draw(st.booleans()):
            body = body + b"\x00"
        else:
            method = draw(METHODS)
    values = {MERCHANT_HEADER: merchant, KEY_ID_HEADER: key_id, TIMESTAMP_HEADER: timestamp,
              NONCE_HEADER: nonce_value, SIGNATURE_HEADER: signature}
    metadata = [("user-agent", "grpc-python/1.85.0")]
    for header, value in values.items():
        copies = draw(st.sampled_from([0, 1, 2])) if "headers" in flaws else 1
        for _ in range(copies):
            sent = value
            if "text" in flaws and draw(st.booleans()):
                sent = draw(st.one_of(ANY_TEXT, st.just(value + "\udcff"), st.binary(max_size=70)))
            if isinstance(sent, str) and sent.isascii() and draw(st.booleans()):
                sent = sent.encode("ascii")  # gRPC gives str, but bytes are accepted alike
            metadata.append((header, sent))
    if draw(st.booleans()):  # headers that only look like signing headers are ignored
        metadata.append((draw(st.sampled_from([b"x-payswitch-nonce", "X-Payswitch-Nonce", "x-payswitch"])),
                         "noise"))
    metadata = draw(st.permutations(metadata))
    key = (merchant, key_id)
    if "key" in flaws:
        key = draw(st.sampled_from([(merchant, key_id + "x"), ("m" + merchant, key_id)]))
    keys = {key: secret} if all(isinstance(part, bytes) or part.isascii() for part in key) else {}
    return keys, window, method, metadata, body, now


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(client_request=client_requests(), capacity=st.sampled_from([1, 2, 10**6]))
def test_both_twins_give_the_same_verdicts(pure_signing, compiled_signing, client_request, capacity):
    keys, window, method, metadata, body, now = client_request
    results = []
    for signing in (pure_signing, compiled_signing):
        verifier = signing.Verifier(keys, window_seconds=window, nonce_capacity=capacity,
                                    clock=lambda: now + 2.5)
        results.append([outcome(signing, lambda: verifier.verify(method, metadata, body, now)),
                        outcome(signing, lambda: verifier.verify(method, metadata, body, now + 1)),  # a replay
                        outcome(signing, lambda: verifier.verify(method, metadata, body))])  # the clock
    assert results[0] == results[1]


@settings(max_examples=300, deadline=None)
@given(secret=SECRETS, method=METHODS, merchant=st.one_of(IDENTIFIERS, ANY_TEXT, st.binary(max_size=20)),
       key_id=st.one_of(IDENTIFIERS, ANY_TEXT), timestamp=st.one_of(st.from_regex(r"[0-9]{1,32}", fullmatch=True),
                                                                    ANY_TEXT),
       nonce_value=st.one_of(NONCES, ANY_TEXT, st.binary(max_size=70)), body=BODIES)
def test_both_twins_sign_alike(pure_signing, compiled_signing, secret, method, merchant, key_id, timestamp,
                               nonce_value, body):
    arguments = (method, merchant, key_id, timestamp, nonce_value, body)
    assert outcome(compiled_signing, lambda: compiled_signing.sign(secret, *arguments)) == \
        outcome(pure_signing, lambda: pure_signing.sign(secret, *arguments))
    assert outcome(compiled_signing, lambda: compiled_signing.string_to_sign(*arguments)) == \
        outcome(pure_signing, lambda: pure_signing.string_to_sign(*arguments))


@settings(max_examples=300, deadline=None)
@given(capacity=st.integers(min_value=0, max_value=4), window=st.integers(min_value=0, max_value=20),
       operations=st.lists(st.tuples(st.sampled_from([b"a", b"b"]), st.sampled_from([b"n1", b"n2", b"n3", b"n4"]),
                                     st.integers(min_value=-30, max_value=30), st.integers(min_value=0, max_value=5)),
                           max_size=40))
def test_both_nonce_caches_behave_alike(pure_signing, compiled_signing, capacity, window, operations):
    caches = [signing.NonceCache(window, capacity) for signing in (pure_signing, compiled_signing)]
    now = 1000
    for merchant, nonce_value, timestamp_offset, tick in operations:
        now += tick
        results = [outcome(signing, lambda: cache.check_and_add(merchant, nonce_value, now + timestamp_offset, now))
                   for signing, cache in zip((pure_signing, compiled_signing), caches)]
        assert results[0] == results[1]
        assert len(caches[0]) == len(caches[1])
