"""The shared classification table on texts no loopback test can provoke (DNS, proxies, resets)."""

import pytest

from payswitch.channels.base import Outcome
from payswitch.channels.status_mapping import (
    DID_NOT_ACT_CODES,
    OUTCOME_UNKNOWN_CODES,
    classify_status,
    connection_not_established,
    safe_message,
)

REFUSED = ("failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:9: "
           "Failed to connect to remote host: Connection refused")
UNRESOLVABLE = ("errors resolving bank.invalid:443: [field:hostname lookup error:address lookup failed for "
                "bank.invalid:443: Domain name not found]")


def test_every_status_code_has_a_meaning():
    import grpc

    named = DID_NOT_ACT_CODES | OUTCOME_UNKNOWN_CODES | {"UNAVAILABLE", "OK"}
    assert named == {code.name for code in grpc.StatusCode}
    assert not DID_NOT_ACT_CODES & OUTCOME_UNKNOWN_CODES


@pytest.mark.parametrize("details", [REFUSED, UNRESOLVABLE, "DNS resolution failed for bank.invalid"])
def test_unavailable_before_connecting_is_failed(details):
    assert connection_not_established(details)
    response = classify_status("UNAVAILABLE", details)
    assert (response.outcome, response.decline_code) == (Outcome.FAILED, "channel_unavailable")


@pytest.mark.parametrize("details", [
    "Cancelling all calls",
    "Socket closed",
    "Connection reset by peer",
    "upstream connect error or disconnect/reset before headers",
    "Received http2 header with status: 502",
    "",
])
def test_other_unavailable_is_unknown(details):
    assert classify_status("UNAVAILABLE", details).outcome is Outcome.UNKNOWN


def test_connection_text_in_the_debug_string_counts():
    response = classify_status("UNAVAILABLE", "", debug_text="UNAVAILABLE:" + REFUSED)
    assert response.outcome is Outcome.FAILED
    assert response.message == "channel returned UNAVAILABLE"


@pytest.mark.parametrize("code, details", [
    ("INTERNAL", "Received RST_STREAM with error code 2"),
    ("RESOURCE_EXHAUSTED", "Stream removed (CLIENT: Received message larger than max (5006 vs. 100))"),
    ("UNAVAILABLE", "Stream removed"),
])
def test_transport_cut_after_sending_is_unknown(code, details):
    assert classify_status(code, details).outcome is Outcome.UNKNOWN


def test_unrecognised_code_is_unknown():
    assert classify_status("SOMETHING_NEW", "").outcome is Outcome.UNKNOWN


def test_inquire_is_conclusive_only_on_not_found():
    assert classify_status("NOT_FOUND", "", inquire=True).decline_code == "channel_not_found"
    for code in DID_NOT_ACT_CODES - {"NOT_FOUND"} | {"UNAVAILABLE"}:
        assert classify_status(code, REFUSED, inquire=True).outcome is Outcome.UNKNOWN


def test_safe_message_redacts_digit_runs_and_bounds_length():
    assert safe_message("card 4000000000000002 declined") == "card [redacted] declined"
    assert safe_message("order 12345678901 ok") == "order 12345678901 ok"
    long = safe_message("x" * 1000)
    assert len(long) == 256 and long.endswith("...")
    assert safe_message(None) == ""
