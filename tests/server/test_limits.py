"""Per-caller limits, enforced before a request reaches the switch's code: message size, calls at once,
header size; and a ping-flooding client cannot starve the others."""

import asyncio

import grpc
from live_switch import TIMEOUT, LiveSwitch, card, rpc_error

from payswitch.client import authorize_request
from payswitch.server.limits import ServerLimits
from payswitch.v1 import switch_pb2


def test_a_message_over_the_limit_is_refused_and_changes_nothing(tmp_path):
    live = LiveSwitch(tmp_path, limits=ServerLimits(max_message_bytes=64 * 1024)).start()
    try:
        client = live.client(max_attempts=1)
        items = [authorize_request(100, "USD", card=card(), merchant_reference=f"o-{n}", description="x" * 200)
                 for n in range(400)]  # about 130 KB
        error = rpc_error(lambda: client.batch(items))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert client.list_payments().payments == []
        assert len(client.batch(items[:50]).results) == 50  # under the limit, served as usual
    finally:
        live.close()


def test_calls_beyond_the_concurrency_limit_are_resource_exhausted(tmp_path):
    live = LiveSwitch(tmp_path, limits=ServerLimits(max_concurrent_calls=3), channel_timeout_ms=800,
                      timeout_delay_s=2.0).start()
    try:
        async def flood():
            async with live.async_client(max_attempts=1) as client:
                calls = [client.authorize(100, "USD", card=card(TIMEOUT), merchant_reference=f"slow-{n}")
                         for n in range(8)]
                return await asyncio.gather(*calls, return_exceptions=True)

        results = asyncio.run(flood())
        refused = [r for r in results if isinstance(r, grpc.RpcError)]
        accepted = [r for r in results if isinstance(r, switch_pb2.AuthorizeResponse)]
        assert len(refused) + len(accepted) == 8 and 1 <= len(accepted) <= 3
        assert {error.code() for error in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
        # Only what was accepted was written; the refused calls left nothing behind.
        stored = live.client().list_payments().payments
        assert sorted(p.payment_id for p in stored) == sorted(r.payment.payment_id for r in accepted)
    finally:
        live.close()


def test_oversized_headers_are_refused(tmp_path):
    live = LiveSwitch(tmp_path, limits=ServerLimits(max_metadata_bytes=4096)).start()
    try:
        with grpc.insecure_channel(live.address) as channel:
            call = channel.unary_unary("/payswitch.v1.PaymentSwitch/GetPayment")
            error = rpc_error(lambda: call(b"", metadata=(("x-padding", "p" * 20_000),), timeout=5))
        assert error.code() in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.INTERNAL,
                                grpc.StatusCode.UNAVAILABLE)
        # The switch is unharmed.
        assert live.client().list_payments().payments == []
    finally:
        live.close()


def test_a_client_flooding_pings_does_not_starve_the_others(tmp_path):
    live = LiveSwitch(tmp_path, limits=ServerLimits(min_client_ping_interval_seconds=5, max_ping_strikes=1)).start()
    try:
        abusive = grpc.insecure_channel(live.address, options=[
            ("grpc.keepalive_time_ms", 10), ("grpc.keepalive_timeout_ms", 1000),
            ("grpc.keepalive_permit_without_calls", 1), ("grpc.http2.max_pings_without_data", 0)])
        grpc.channel_ready_future(abusive).result(timeout=5)
        client = live.client()
        for n in range(20):
            assert client.authorize(100, "USD", card=card(), merchant_reference=f"ok-{n}").payment.payment_id
        abusive.close()
        assert len(client.list_payments(page_size=50).payments) == 20
    finally:
        live.close()
