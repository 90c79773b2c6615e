"""No card number or CVV escapes: a few thousand payments with test cards go through every path
(unary, Batch, Stream, Tokenize, token payments, captures, voids, refunds, declines, channel errors,
timeouts, refusals of bad input) with DEBUG logging on; then the logs, every error message the
callers saw, and the database with its WAL and shared-memory files are searched for each number and
CVV used. Only BIN and last four may appear."""

import asyncio
import io
import logging
import random
import re

import grpc
import pytest
from live_switch import LiveSwitch

from payswitch.cli.runtime import configure_logging
from payswitch.client import authorize_request, batch_request, capture_request, refund_request, void_request
from payswitch.payments.cards import luhn_valid
from payswitch.v1 import switch_pb2, types_pb2

pytestmark = pytest.mark.slow

# The simulator's cards that end in a decline, a channel error or a timeout, then generated numbers.
SPECIAL = ["4000000000000002", "4000000000009995", "4000000000000119", "4000000000000259"]
# CVVs chosen so that no amount, id or timestamp in this test contains them as a separate token.
CVVS = ["7391", "8264", "6157", "9043"]


def luhn_complete(prefix: str) -> str:
    for check in "0123456789":
        if luhn_valid(prefix + check):
            return prefix + check
    raise AssertionError(prefix)


def generated_cards(count: int, seed: int = 7) -> list[str]:
    chooser = random.Random(seed)
    numbers = {luhn_complete(chooser.choice(("4", "51", "52", "6011")) + "".join(
        chooser.choice("0123456789") for _ in range(14 - 1))) for _ in range(count)}
    return sorted(numbers)[:count]


def card(number: str, cvv: str, year: int) -> types_pb2.Card:
    return types_pb2.Card(number=number, exp_month=12, exp_year=year, cvv=cvv, holder_name="Leak Test")


@pytest.fixture
def captured_logs():
    stream = io.StringIO()
    handler = configure_logging("DEBUG", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)


def test_no_card_number_or_cvv_is_found_anywhere(tmp_path, captured_logs):
    live = LiveSwitch(tmp_path, channel_timeout_ms=150, timeout_delay_s=0.5).start()
    numbers = generated_cards(400) + SPECIAL
    year = 2031
    errors: list[str] = []

    def cvv_of(index: int) -> str:
        return CVVS[index % len(CVVS)]

    async def traffic():
        async with live.async_client(max_attempts=1) as client:
            # Unary authorizations of every kind, then capture, refund or void each approved one.
            for index, number in enumerate(numbers[:150] + SPECIAL):
                try:
                    payment = (await client.authorize(1_000 + index, "USD", card=card(number, cvv_of(index), year),
                                                      merchant_reference=f"u-{index}")).payment
                except grpc.RpcError as error:
                    errors.append(error.details() or "")
                    continue
                if payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED:
                    action = index % 3
                    try:
                        if action == 0:
                            await client.capture(payment.payment_id)
                            await client.refund(payment.payment_id, 500, "USD")
                        elif action == 1:
                            await client.void(payment.payment_id)
                        else:
                            await client.refund(payment.payment_id)  # refused: nothing captured
                    except grpc.RpcError as error:
                        errors.append(error.details() or "")
            # Refusals that quote fields: bad currency, an expired card, a broken number, a bad CVV.
            for index, (number, currency, exp_year, cvv) in enumerate([
                    (numbers[0], "XXX", year, cvv_of(0)), (numbers[1], "USD", 2001, cvv_of(1)),
                    (numbers[2][:-1] + str((int(numbers[2][-1]) + 1) % 10), "USD", year, cvv_of(2)),
                    (numbers[3], "USD", year, "73915")]):
                try:
                    await client.authorize(700, currency, card=card(number, cvv, exp_year),
                                           merchant_reference=f"bad-{index}")
                except grpc.RpcError as error:
                    errors.append(error.details() or "")
            # Batches of 200 with a few bad items among them, four rounds over every card.
            for round_ in range(4):
                for start in range(0, len(numbers), 200):
                    items = [authorize_request(2_000 + i, "USD" if i % 50 else "XYZ",
                                               card=card(numbers[i], cvv_of(i), year),
                                               merchant_reference=f"b{round_}-{i}")
                             for i in range(start, min(start + 200, len(numbers)))]
                    response = await client.batch(items, timeout=30)
                    errors.extend(r.error.message for r in response.results if r.WhichOneof("result") == "error")
                    approved = [r.authorize.payment.payment_id for r in response.results
                                if r.WhichOneof("result") == "authorize"
                                and r.authorize.payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED]
                    if not approved:
                        continue
                    follow_ups = [capture_request(p) if n % 2 else void_request(p) for n, p in enumerate(approved)]
                    follow_ups += [refund_request(approved[0], 10, "USD")]
                    response = await client.batch(follow_ups, timeout=30)
                    errors.extend(r.error.message for r in response.results if r.WhichOneof("result") == "error")
            # A stream, tokens and payments by token.
            stream = client.open_stream()
            for start in range(0, 200, 50):
                reply = await stream.submit(batch_request([
                    authorize_request(3_000 + i, "USD", card=card(numbers[i], cvv_of(i), year),
                                      merchant_reference=f"s-{i}") for i in range(start, start + 50)]))
                errors.extend([r.error.message for r in reply.results if r.WhichOneof("result") == "error"])
            await stream.close()
            for index, number in enumerate(numbers[:100]):
                token = (await client.tokenize(types_pb2.Card(number=number, exp_month=12, exp_year=year))).token
                await client.authorize(4_000 + index, "USD", card_token=switch_pb2.CardToken(
                    token=token, cvv=cvv_of(index)), merchant_reference=f"t-{index}")
            try:
                await client.tokenize(card(numbers[0], cvv_of(0), year))
            except grpc.RpcError as error:
                errors.append(error.details() or "")
            payments = (await client.list_payments(page_size=500)).payments
            return len(payments)

    try:
        listed = asyncio.run(traffic())
        assert listed == 500  # the first page: traffic went through
        stored_payments = len(live.call(live.app.store.all_payments()))
        assert stored_payments > 2_000
    finally:
        live.close()

    # A latency is the switch's own measurement, so any number at all (a CVV's digits too): left out.
    logs = re.sub(r'"latency_(?:us|ms)":[0-9]+', '"latency":0', captured_logs.getvalue())
    assert len(logs.splitlines()) > 100  # DEBUG logging was on and saw the traffic
    stored = b"".join(path.read_bytes() for path in sorted(tmp_path.glob("switch.db*")))
    assert len(stored) > 100_000
    error_text = "\n".join(errors)
    assert len(errors) > 20  # refusals happened and their messages are checked too

    for number in numbers:
        assert number not in logs, f"{number[:6]}...{number[-4:]} in the logs"
        assert number not in error_text, f"{number[:6]}...{number[-4:]} in an error message"
        assert number.encode() not in stored, f"{number[:6]}...{number[-4:]} in the database files"
    for cvv in CVVS + ["73915"]:
        alone = re.compile(rf"(?<![0-9A-Za-z]){cvv}(?![0-9A-Za-z])")
        assert not alone.search(logs), f"CVV {cvv} in the logs"
        assert not alone.search(error_text), f"CVV {cvv} in an error message"
        # As a leaked request would hold it (protobuf Card field 4), or as text after a quote, '=' or ':'.
        assert bytes([0x22, len(cvv)]) + cvv.encode() not in stored, f"CVV {cvv} in the database files"
        assert not re.search(rf"[\"'=: ]{cvv}(?![0-9A-Za-z])".encode(), stored), f"CVV {cvv} in the database files"
