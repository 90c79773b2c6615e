"""Batch and Stream against a live switch: per-item results, idempotency, whole-message refusals."""

import asyncio

import grpc
import pytest
from live_switch import DO_NOT_HONOR, card, rpc_error

from payswitch.client import (Batcher, BatchItemError, BatchRefused, authorize_request, batch_item, capture_request,
                              refund_request, void_request)
from payswitch.store.sqlite import SqliteStore
from payswitch.v1 import switch_pb2, types_pb2


def authorize(n: int, number: str = "4242424242424242", amount: int = 1_000, currency: str = "USD", **fields):
    return authorize_request(amount, currency, card=card(number), merchant_reference=f"order-{n}", **fields)


def kinds(response: switch_pb2.BatchResponse) -> list[str]:
    return [result.WhichOneof("result") for result in response.results]


def test_mixed_batch_answers_each_item_as_its_unary_call_would(live):
    client = live.client()
    captured = client.authorize(5_000, "USD", card=card(), merchant_reference="earlier").payment
    client.capture(captured.payment_id, 5_000, "USD")
    voided = client.authorize(700, "USD", card=card(), merchant_reference="voided").payment
    client.void(voided.payment_id)

    response = client.batch([
        authorize(1),
        authorize(2, DO_NOT_HONOR),
        authorize(3, currency="XYZ"),
        refund_request(captured.payment_id, 2_000, "USD"),
        refund_request(captured.payment_id, 9_000, "USD"),
        capture_request(voided.payment_id),
        switch_pb2.BatchItem(),
    ])

    assert kinds(response) == ["authorize", "authorize", "error", "refund", "error", "error", "error"]
    approved, declined, bad_currency, refund, over_refund, after_void, empty = response.results
    assert approved.authorize.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert (declined.authorize.payment.status, declined.authorize.payment.decline_code) == (
        types_pb2.PAYMENT_STATUS_DECLINED, "do_not_honor")
    assert bad_currency.error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in bad_currency.error.field_violations] == ["amount.currency"]
    assert refund.refund.payment.refunded_minor == 2_000
    assert (over_refund.error.code, over_refund.error.reason) == (grpc.StatusCode.OUT_OF_RANGE.value[0],
                                                                  "amount_exceeds_refundable")
    assert (after_void.error.reason, after_void.error.metadata["status"]) == ("illegal_transition", "VOIDED")
    assert [v.field for v in empty.error.field_violations] == ["operation"]
    # What was refused changed nothing: two payments before, two new ones from the batch.
    assert len(client.list_payments().payments) == 4
    assert client.get_payment(captured.payment_id).payment.refunded_minor == 2_000


def test_a_repeated_batch_replays_every_answer_without_acting_again(live):
    client = live.client()
    items = [authorize(n, amount=100 + n, idempotency_key=f"key-{n}") for n in range(20)]
    first = client.batch(items)
    calls = live.channel_calls("Authorize")
    second = client.batch(items)
    assert second == first
    assert live.channel_calls("Authorize") == calls == 20
    assert len({r.authorize.payment.payment_id for r in first.results}) == 20


def test_one_key_twice_in_a_batch_is_one_payment_and_a_changed_request_is_refused(live):
    client = live.client()
    same = authorize(1, idempotency_key="dup")
    changed = authorize(1, amount=999, idempotency_key="dup")
    response = client.batch([same, same, changed])
    first, repeat, refused = response.results
    assert repeat.authorize == first.authorize
    assert (refused.error.code, refused.error.reason) == (grpc.StatusCode.ALREADY_EXISTS.value[0],
                                                          "idempotency_key_reused")
    assert live.channel_calls("Authorize") == 1


def test_a_unary_call_with_a_batch_items_key_gets_the_same_payment(live):
    client = live.client()
    request = authorize(1, idempotency_key="shared-key")
    in_batch = client.batch([request]).results[0].authorize
    unary = client.authorize(1_000, "USD", card=request.card, merchant_reference="order-1",
                             idempotency_key="shared-key")
    assert unary == in_batch


@pytest.mark.parametrize("items, field", [([], "items"), ([switch_pb2.BatchItem()] * 1_001, "items")])
def test_batch_size_limits_refuse_the_whole_call(live, items, field):
    error = rpc_error(lambda: live.client().batch(switch_pb2.BatchRequest(items=items)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in error.details()


def test_bytes_that_are_not_a_batch_and_bad_signatures_are_refused_whole(live):
    async def scenario():
        async with live.async_client() as client:
            batch = client._channel.unary_unary("/payswitch.v1.PaymentSwitch/Batch")
            body = b"\x0a\x05\x0a\x03\xff\xff\xff"  # an item whose authorize holds an invalid string
            signer = live.signer()
            malformed = await _code(batch(body, metadata=signer.metadata("/payswitch.v1.PaymentSwitch/Batch", body)))
            good = batch_item(authorize(1)).SerializeToString()
            body = b"\x0a" + bytes([len(good)]) + good
            wrong_method = await _code(batch(body, metadata=signer.metadata("/payswitch.v1.PaymentSwitch/Authorize",
                                                                            body)))
            return malformed, wrong_method

    assert asyncio.run(scenario()) == (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.UNAUTHENTICATED)
    assert live.channel_calls("Authorize") == 0


async def _code(call):
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_a_batch_of_authorizations_shares_commits_and_channel_calls(live):
    client = live.client()
    commits_before = live.app.store.commit_count
    response = client.batch([authorize(n) for n in range(300)])
    assert all(r.authorize.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED for r in response.results)
    assert live.app.store.commit_count - commits_before <= 4  # two per batch, a little slack for timing
    assert live.channel_calls("Authorize") == 300
    assert live.channel_calls("Batch") <= 2


def test_stream_answers_batches_in_order_and_survives_a_refused_message(live):
    async def scenario():
        async with live.async_client() as client:
            stream = client.open_stream()
            first = stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize(n)) for n in range(50)]))
            second = stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize(n)) for n in range(50, 60)]))
            empty = stream.submit(switch_pb2.BatchRequest())
            results = await asyncio.gather(first, second, empty, return_exceptions=True)
            later = await stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize(99))]))
            await stream.close()
            return results, later

    (first, second, empty), later = asyncio.run(scenario())
    assert [len(first.results), len(second.results), len(later.results)] == [50, 10, 1]
    assert all(r.authorize.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED for r in [*first.results, *second.results])
    assert isinstance(empty, BatchRefused) and empty.error.reason == "invalid_argument"
    assert live.channel_calls("Authorize") == 61


def test_submitting_to_a_stream_the_switch_ended_raises_its_grpc_error(live):
    async def scenario():
        async with live.async_client() as client:
            stream = client.open_stream()
            await stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize(1))]))
            await asyncio.to_thread(live.stop)  # the switch goes away under the open stream
            errors = []
            for n in range(2, 6):
                try:
                    await stream.submit(switch_pb2.BatchRequest(items=[batch_item(authorize(n))]))
                except Exception as error:  # noqa: BLE001 - the test records what the caller meets
                    errors.append(error)
            return errors

    errors = asyncio.run(scenario())
    assert errors and all(isinstance(error, grpc.aio.AioRpcError) for error in errors), errors
    assert errors[-1].code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED)


def test_stream_message_with_a_bad_signature_is_refused_and_changes_nothing(live):
    async def scenario():
        async with live.async_client() as client:
            call = client._channel.stream_stream("/payswitch.v1.PaymentSwitch/Stream")()
            batch = switch_pb2.BatchRequest(items=[batch_item(authorize(1))]).SerializeToString()
            values = live.signer().values("/payswitch.v1.PaymentSwitch/Stream", batch)
            merchant, key_id, timestamp, nonce, signature = values
            tampered = switch_pb2.StreamRequest(sequence=7, batch=batch + b"\x0a\x00", merchant=merchant, key_id=key_id,
                                                timestamp=timestamp, nonce=nonce, signature=signature)
            honest = switch_pb2.StreamRequest(sequence=8, batch=batch, merchant=merchant, key_id=key_id,
                                              timestamp=timestamp, nonce=nonce, signature=signature)
            replies = []
            for message in (tampered, honest, honest):
                await call.write(message.SerializeToString())
                replies.append(switch_pb2.StreamResponse.FromString(await call.read()))
            await call.done_writing()
            return replies

    tampered, honest, replayed = asyncio.run(scenario())
    assert (tampered.sequence, tampered.error.reason) == (7, "signature_mismatch")
    assert honest.sequence == 8 and len(honest.response.results) == 1
    assert replayed.error.reason == "replayed_nonce"
    assert live.channel_calls("Authorize") == 1


def test_batcher_gathers_concurrent_calls_into_few_batches(live):
    async def scenario():
        async with live.async_client() as client:
            batcher = Batcher(client, max_items=100, max_delay_s=0.05)
            results = await asyncio.gather(*(batcher.submit(authorize(n)) for n in range(250)),
                                           batcher.submit(authorize(999, currency="XYZ")), return_exceptions=True)
            await batcher.close()
            return results

    results = asyncio.run(scenario())
    assert all(r.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED for r in results[:250])
    assert isinstance(results[250], BatchItemError) and results[250].code == grpc.StatusCode.INVALID_ARGUMENT
    assert live.channel_calls("Batch") <= 4


def test_ledger_balances_after_a_mixed_batch_run(live):
    client = live.client()
    payments = [r.authorize.payment for r in client.batch([authorize(n, amount=1_000 + n) for n in range(40)]).results]
    client.batch([capture_request(p.payment_id) for p in payments[:20]] + [void_request(p.payment_id)
                                                                         for p in payments[20:30]])
    client.batch([refund_request(p.payment_id, 500, "USD") for p in payments[:10]])
    live.stop()

    async def verify():
        from payswitch.ledger.verify import verify_ledger

        store = SqliteStore(live.database)
        await store.open()
        try:
            return await verify_ledger(store)
        finally:
            await store.close()

    report = asyncio.run(verify())
    assert report.ok, report.summary()
