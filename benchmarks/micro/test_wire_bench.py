"""Request decoding and field rules, compiled vs pure vs protobuf's own parser, one table per operation.

Run: pytest benchmarks/micro/test_wire_bench.py --benchmark-group-by=group

The request is a typical card authorization of about 250 bytes. The library baseline parses it with
`AuthorizeRequest.FromString` and reads every field the switch uses, which is what the edge did before
the wire module (and what the pure twin still does, plus building its field object).
"""


import pytest
from backends import backend_module

from payswitch.v1 import switch_pb2, types_pb2

YEAR, MONTH = 2026, 6
BATCH_ITEMS = 100
# A single call takes less than a microsecond, about what reading the clock twice costs: each round
# times many calls so that the figure is the call's, not the timer's.
ROUNDS = 200
ITERATIONS = 1000
BATCH_ITERATIONS = 10


def run(benchmark, function, *args, iterations=ITERATIONS):
    return benchmark.pedantic(function, args, rounds=ROUNDS, iterations=iterations, warmup_rounds=1)


def _backend_module(name):
    return backend_module("wire", name)


@pytest.fixture(params=["compiled", "pure"])
def backend(request):
    return _backend_module(request.param)


def authorize_request(index: int = 0) -> switch_pb2.AuthorizeRequest:
    return switch_pb2.AuthorizeRequest(
        idempotency_key=f"4f9c2a7e-1b3d-4e8f-9a6b-{index:012d}",
        merchant_reference=f"order-2026-{index:09d}",
        amount=types_pb2.Money(amount_minor=12_999, currency="EUR", exponent=2),
        card=types_pb2.Card(number="4242424242424242", exp_month=12, exp_year=2030, cvv="123",
                            holder_name="Ada Lovelace"),
        description=("Concert tickets, 2 x category A, Royal Albert Hall, 14 March 2026, doors 19:00; "
                     "booking ref RAH-77812-XK; seats K14-K15"),
    )


AUTHORIZE = authorize_request().SerializeToString()
BATCH = switch_pb2.BatchRequest(items=[
    switch_pb2.BatchItem(authorize=authorize_request(index)) for index in range(BATCH_ITEMS)]).SerializeToString()


def test_request_is_typical_in_size():
    assert 230 <= len(AUTHORIZE) <= 270, len(AUTHORIZE)


def _protobuf_authorize_fields(request) -> tuple:
    amount, card = request.amount, request.card
    return (request.idempotency_key, request.merchant_reference, request.HasField("amount"), amount.amount_minor,
            amount.currency, amount.HasField("exponent"), amount.exponent, request.WhichOneof("method"), card.number,
            card.exp_month, card.exp_year, card.cvv, card.holder_name, request.description)


def protobuf_decode_authorize(body: bytes) -> tuple:
    return _protobuf_authorize_fields(switch_pb2.AuthorizeRequest.FromString(body))


def protobuf_decode_batch(body: bytes) -> list:
    return [_protobuf_authorize_fields(item.authorize) for item in switch_pb2.BatchRequest.FromString(body).items]


@pytest.mark.benchmark(group="wire.decode_authorize")
def test_decode_authorize(benchmark, backend):
    fields = run(benchmark, backend.decode_authorize, AUTHORIZE)
    assert fields.card_number == "4242424242424242"


@pytest.mark.benchmark(group="wire.decode_authorize")
def test_decode_authorize_library_protobuf(benchmark):
    assert run(benchmark, protobuf_decode_authorize, AUTHORIZE)[8] == "4242424242424242"


@pytest.mark.benchmark(group="wire.validate_authorize")
def test_validate_authorize(benchmark, backend):
    fields = backend.decode_authorize(AUTHORIZE)
    assert run(benchmark, backend.validate_authorize, fields, YEAR, MONTH) == {}


@pytest.mark.benchmark(group="wire.decode_and_validate_authorize")
def test_decode_and_validate_authorize(benchmark, backend):
    decode, validate = backend.decode_authorize, backend.validate_authorize

    def decode_and_validate(body):
        return validate(decode(body), YEAR, MONTH)

    assert run(benchmark, decode_and_validate, AUTHORIZE) == {}


@pytest.mark.benchmark(group="wire.decode_and_validate_authorize")
def test_decode_and_validate_authorize_library_protobuf(benchmark):
    """The floor of the message-object approach: parse and read the fields, no rule checked at all."""
    assert run(benchmark, protobuf_decode_authorize, AUTHORIZE)[0].startswith("4f9c")


@pytest.mark.benchmark(group="wire.decode_batch_100")
def test_decode_batch(benchmark, backend):
    items = run(benchmark, backend.decode_batch, BATCH, iterations=BATCH_ITERATIONS)
    assert len(items) == BATCH_ITEMS and items[-1].kind == "authorize"


@pytest.mark.benchmark(group="wire.decode_batch_100")
def test_decode_batch_library_protobuf(benchmark):
    assert len(run(benchmark, protobuf_decode_batch, BATCH, iterations=BATCH_ITERATIONS)) == BATCH_ITEMS
