"""The client takes a key's secret as the configuration presents it (hex) or as bytes, and refuses a
wrong one when it is made, without quoting it, instead of failing on the first call."""

import asyncio
import threading

import pytest
from live_switch import card

from payswitch.client import RequestSigner, SwitchClient, SyncSwitchClient
from payswitch.v1 import types_pb2


def test_a_hex_string_secret_signs_like_its_bytes(live):
    secret = live.secrets["m_alpha"]
    for given in (secret.hex(), secret.hex().upper(), bytearray(secret)):
        with SyncSwitchClient(live.address, "m_alpha", "k1", given) as client:
            payment = client.authorize(500, "USD", card=card(), merchant_reference=f"hex-{type(given).__name__}")
            assert payment.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED


@pytest.mark.parametrize("secret, error, words", [
    ("not hex at all, but long enough to pass for a secret", ValueError, "hex of at least 16 bytes"),
    ("abcd" * 7, ValueError, "hex of at least 16 bytes"),       # 14 bytes
    ("abc" * 11, ValueError, "hex of at least 16 bytes"),       # an odd number of digits
    (b"short", ValueError, "at least 16 bytes, got 5"),
    (12345, TypeError, "bytes or a hex string, not int"),
])
def test_a_wrong_secret_is_refused_when_the_client_is_made(secret, error, words):
    threads = threading.active_count()
    with pytest.raises(error, match=words) as refused:
        SyncSwitchClient("127.0.0.1:1", "m_alpha", "k1", secret)
    assert str(secret) not in str(refused.value)
    assert threading.active_count() == threads  # no event loop thread left behind
    with pytest.raises(error, match=words):
        RequestSigner("m_alpha", "k1", secret)


def test_the_asyncio_client_refuses_before_opening_a_channel():
    async def make():
        SwitchClient("127.0.0.1:1", "m_alpha", "k1", "zz" * 16)

    with pytest.raises(ValueError, match="secret: a string secret must be hex"):
        asyncio.run(make())
