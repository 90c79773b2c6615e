"""Idempotent retries and serialized operations: the money-safety guarantees of the switch."""

import asyncio

import grpc
from live_switch import card, rpc_error

from payswitch.client import error_details
from payswitch.v1 import switch_pb2, types_pb2


def test_replay_returns_the_stored_response_without_a_second_channel_call(live):
    client = live.client()
    first = client.authorize(1_000, "USD", card=card(), merchant_reference="order-1", idempotency_key="key-1")
    second = client.authorize(1_000, "USD", card=card(), merchant_reference="order-1", idempotency_key="key-1")
    assert second.SerializeToString() == first.SerializeToString()
    assert live.channel_calls("Authorize") == 1
    client.capture(first.payment.payment_id, idempotency_key="cap-1")
    again = client.capture(first.payment.payment_id, idempotency_key="cap-1")
    assert again.payment.status == types_pb2.PAYMENT_STATUS_CAPTURED
    assert live.channel_calls("Capture") == 1


def test_replay_answers_as_the_first_time_even_after_later_changes(live):
    client = live.client()
    payment = client.authorize(1_000, "USD", card=card(), merchant_reference="o", idempotency_key="auth-a").payment
    client.capture(payment.payment_id)
    replay = client.authorize(1_000, "USD", card=card(), merchant_reference="o", idempotency_key="auth-a")
    assert replay.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED


def test_fifty_identical_concurrent_requests_make_one_channel_call(live):
    request = switch_pb2.AuthorizeRequest(
        idempotency_key="same-key", merchant_reference="order-50",
        amount=types_pb2.Money(amount_minor=5_000, currency="USD"), card=card())

    async def storm():
        async with live.async_client() as client:
            return await asyncio.gather(*(client.call("Authorize", request) for _ in range(50)))

    responses = asyncio.run(storm())
    assert len({r.SerializeToString() for r in responses}) == 1
    assert responses[0].payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    assert live.channel_calls("Authorize") == 1
    assert len(live.client().list_payments().payments) == 1


def test_same_key_with_a_different_request_is_already_exists_and_changes_nothing(live):
    client = live.client()
    first = client.authorize(1_000, "USD", card=card(), merchant_reference="order-1", idempotency_key="key-x")
    error = rpc_error(lambda: client.authorize(1_001, "USD", card=card(), merchant_reference="order-1",
                                               idempotency_key="key-x"))
    assert error.code() == grpc.StatusCode.ALREADY_EXISTS
    assert error_details(error).reason == "idempotency_key_reused"
    assert live.channel_calls("Authorize") == 1
    assert [p.payment_id for p in client.list_payments().payments] == [first.payment.payment_id]


def test_keys_are_scoped_to_the_merchant(live):
    a = live.client("m_alpha").authorize(1_000, "USD", card=card(), merchant_reference="o", idempotency_key="shared")
    b = live.client("m_beta").authorize(1_000, "USD", card=card(), merchant_reference="o", idempotency_key="shared")
    assert a.payment.payment_id != b.payment.payment_id
    assert live.channel_calls("Authorize") == 2


def refunds_at_once(live, payment_id, amount_minor, count):
    """`count` refunds of `amount_minor` USD sent concurrently; each result is a response or an AioRpcError."""
    async def send():
        async with live.async_client() as concurrent:
            return await asyncio.gather(*(concurrent.refund(payment_id, amount_minor, "USD") for _ in range(count)),
                                        return_exceptions=True)
    return asyncio.run(send())


def test_concurrent_refunds_never_exceed_the_capture(live):
    """Two refunds of 60 on a capture of 100: exactly one succeeds (an incumbent let both through)."""
    client = live.client()
    payment = client.authorize(100, "USD", card=card(), merchant_reference="order-r").payment
    client.capture(payment.payment_id)

    results = refunds_at_once(live, payment.payment_id, 60, count=2)
    succeeded = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(succeeded) == 1 and len(refused) == 1
    assert refused[0].code() == grpc.StatusCode.OUT_OF_RANGE
    final = client.get_payment(payment.payment_id).payment
    assert (final.refunded_minor, final.status) == (60, types_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED)
    assert live.channel_calls("Refund") == 1


def test_many_concurrent_small_refunds_add_up_exactly(live):
    client = live.client()
    payment = client.authorize(1_000, "USD", card=card(), merchant_reference="order-m").payment
    client.capture(payment.payment_id)

    results = refunds_at_once(live, payment.payment_id, 70, count=20)
    succeeded = [r for r in results if not isinstance(r, Exception)]
    assert len(succeeded) == 14  # 14 x 70 = 980 <= 1000 < 15 x 70
    assert all(r.code() == grpc.StatusCode.OUT_OF_RANGE for r in results if isinstance(r, Exception))
    assert client.get_payment(payment.payment_id).payment.refunded_minor == 980


def test_refused_requests_are_not_stored_so_the_key_can_be_reused(live):
    client = live.client()
    payment = client.authorize(1_000, "USD", card=card(), merchant_reference="order-1").payment
    error = rpc_error(lambda: client.refund(payment.payment_id, idempotency_key="refund-key"))
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    client.capture(payment.payment_id)
    assert client.refund(payment.payment_id, idempotency_key="refund-key").payment.status == types_pb2.PAYMENT_STATUS_REFUNDED


def _authorize(amount: int, key: str) -> switch_pb2.AuthorizeRequest:
    return switch_pb2.AuthorizeRequest(idempotency_key=key, merchant_reference="race",
                                       amount=types_pb2.Money(amount_minor=amount, currency="USD"), card=card())


async def _outcomes(client, requests) -> list:
    """Each request's answer: its payment id, or the reason it was refused."""
    answers = await asyncio.gather(*(client.call("Authorize", request) for request in requests),
                                   return_exceptions=True)
    return [answer.payment.payment_id if isinstance(answer, switch_pb2.AuthorizeResponse)
            else error_details(answer).reason for answer in answers]


def test_identical_retries_of_a_finished_key_get_its_answer_whatever_races_them(live):
    """A request with another body under the key must not make the first body's own retries look
    reused: before the fix they were compared with whichever request held the key in the switch."""
    async def scenario():
        async with live.async_client(max_attempts=1) as client:
            first = await client.call("Authorize", _authorize(1_000, "raced-key"))
            rounds = []
            for _ in range(20):
                requests = [_authorize(2_000 if n % 3 == 0 else 1_000, "raced-key") for n in range(12)]
                rounds.append((requests, await _outcomes(client, requests)))
            return first.payment.payment_id, rounds

    payment_id, rounds = asyncio.run(scenario())
    for requests, outcomes in rounds:
        for request, outcome in zip(requests, outcomes):
            expected = payment_id if request.amount.amount_minor == 1_000 else "idempotency_key_reused"
            assert outcome == expected
    assert live.channel_calls("Authorize") == 1


def test_in_a_race_for_a_fresh_key_every_copy_of_the_winning_body_gets_its_answer(live):
    async def scenario():
        async with live.async_client(max_attempts=1) as client:
            rounds = []
            for number in range(20):
                requests = [_authorize(1_000 + n % 2, f"fresh-{number}") for n in range(10)]
                rounds.append((requests, await _outcomes(client, requests)))
            return rounds

    for requests, outcomes in asyncio.run(scenario()):
        paid = {outcome for outcome in outcomes if outcome.startswith("pay_")}
        assert len(paid) == 1, outcomes
        winner = next(request.amount.amount_minor for request, outcome in zip(requests, outcomes)
                      if outcome.startswith("pay_"))
        for request, outcome in zip(requests, outcomes):
            assert outcome == (paid.copy().pop() if request.amount.amount_minor == winner
                               else "idempotency_key_reused"), outcomes
    assert live.channel_calls("Authorize") == 20


def test_the_client_retries_a_payment_whose_other_operation_is_pending_but_not_a_refusal(tmp_path):
    from live_switch import LiveSwitch
    live = LiveSwitch(tmp_path, channel_timeout_ms=150).start()
    try:
        client = live.client()
        payment = client.authorize(1_500, "USD", card=card(), merchant_reference="slow").payment
        live.simulator.latency_ms = 1_000  # the capture outlives its 150 ms: its outcome is unknown
        captured = client.capture(payment.payment_id)
        assert captured.operation.status == types_pb2.OPERATION_STATUS_PENDING

        async def attempts_of(method: str, request) -> tuple[int, str]:
            async with live.async_client(max_attempts=3, backoff_s=0.001) as client:
                sent = client._calls[method]
                counted = []
                client._calls[method] = lambda *args, **kwargs: counted.append(1) or sent(*args, **kwargs)
                try:
                    await client.call(method, request)
                except grpc.aio.AioRpcError as error:
                    return len(counted), error_details(error).reason
                return len(counted), "ok"

        void = switch_pb2.VoidRequest(idempotency_key="void-while-pending", payment_id=payment.payment_id)
        assert asyncio.run(attempts_of("Void", void)) == (3, "operation_pending")
        missing = switch_pb2.CaptureRequest(idempotency_key="cap-missing", payment_id="pay_" + "0" * 26)
        assert asyncio.run(attempts_of("Capture", missing)) == (1, "payment_not_found")
    finally:
        live.close()
