"""The signature check at the live edge: every vector, replays, and refusals that touch no state."""

import json
from pathlib import Path

import grpc
import pytest
from live_switch import LiveSwitch, card

from payswitch.client import error_details
from payswitch.hotpath import signing
from payswitch.v1 import switch_pb2, types_pb2

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "signing.json").read_text())["cases"]


def metadata_of(case) -> tuple:
    return ((signing.MERCHANT_HEADER, case["merchant"]), (signing.KEY_ID_HEADER, case["key_id"]),
            (signing.TIMESTAMP_HEADER, case["timestamp"]), (signing.NONCE_HEADER, case["nonce"]),
            (signing.SIGNATURE_HEADER, case["signature"]))


def raw_call(address: str, method: str, body: bytes, metadata) -> grpc.RpcError | bytes:
    with grpc.insecure_channel(address) as channel:
        try:
            return channel.unary_unary(method)(body, metadata=metadata, timeout=5)
        except grpc.RpcError as error:
            return error


@pytest.fixture(scope="module")
def vector_switch(tmp_path_factory):
    """A switch whose clock stands at the vectors' `now`, knowing every vector's key."""
    clock = {"now": 0}
    switch = LiveSwitch(tmp_path_factory.mktemp("vectors"), clock=lambda: clock["now"]).start()
    switch.app.verifier.set_keys({(c["merchant"], c["key_id"]): bytes.fromhex(c["secret_hex"]) for c in VECTORS})
    yield switch, clock
    switch.close()


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_every_vector_gets_its_verdict_from_the_live_switch(vector_switch, case):
    switch, clock = vector_switch
    clock["now"] = case["now"]
    result = raw_call(switch.address, case["method"], bytes.fromhex(case["body_hex"]), metadata_of(case))
    if case["expect"] == "ok":
        # Past the signature check: the vectors' bodies are not valid requests of those methods, or
        # name no payment, so the answer is a validation or lookup status, never UNAUTHENTICATED.
        assert not isinstance(result, grpc.RpcError) or result.code() != grpc.StatusCode.UNAUTHENTICATED
    else:
        assert isinstance(result, grpc.RpcError)
        assert result.code() == grpc.StatusCode.UNAUTHENTICATED
        assert error_details(result).reason == case["expect"]


def _signed(live, method: str, body: bytes, **overrides):
    values = dict(live.signer().metadata(method, body))
    values.update(overrides)
    return tuple((k, v) for k, v in values.items() if v is not None)


AUTHORIZE = "/payswitch.v1.PaymentSwitch/Authorize"


def _authorize_body() -> bytes:
    return switch_pb2.AuthorizeRequest(idempotency_key="k-1", merchant_reference="o-1",
                                       amount=types_pb2.Money(amount_minor=100, currency="USD"),
                                       card=card()).SerializeToString()


@pytest.mark.parametrize("override, reason", [
    ({signing.SIGNATURE_HEADER: None}, "missing_metadata"),
    ({signing.MERCHANT_HEADER: "m/alpha"}, "malformed_merchant"),
    ({signing.MERCHANT_HEADER: ""}, "malformed_merchant"),
    ({signing.KEY_ID_HEADER: "k" * 65}, "malformed_key_id"),
    ({signing.NONCE_HEADER: "short"}, "malformed_nonce"),
    ({signing.TIMESTAMP_HEADER: "12x"}, "malformed_timestamp"),
    ({signing.SIGNATURE_HEADER: "v1=" + "A" * 64}, "malformed_signature"),
    ({signing.KEY_ID_HEADER: "k9"}, "unknown_key"),
    ({signing.MERCHANT_HEADER: "m_nobody"}, "unknown_key"),
    ({signing.TIMESTAMP_HEADER: "1000000000"}, "timestamp_out_of_window"),
    ({signing.SIGNATURE_HEADER: "v1=" + "0" * 64}, "signature_mismatch"),
])
def test_refused_signatures_change_nothing(live, override, reason):
    body = _authorize_body()
    result = raw_call(live.address, AUTHORIZE, body, _signed(live, AUTHORIZE, body, **override))
    assert isinstance(result, grpc.RpcError) and result.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(result).reason == reason
    assert live.channel_calls("Authorize") == 0
    assert len(live.client().list_payments().payments) == 0


@pytest.mark.parametrize("header", signing.SIGNING_HEADERS)
def test_a_header_sent_twice_is_refused_and_changes_nothing(live, header):
    body = _authorize_body()
    metadata = _signed(live, AUTHORIZE, body)
    repeated = metadata + ((header, dict(metadata)[header]),)  # even the same value twice is ambiguous
    result = raw_call(live.address, AUTHORIZE, body, repeated)
    assert isinstance(result, grpc.RpcError) and result.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(result).reason == "duplicate_metadata"
    assert live.channel_calls("Authorize") == 0
    assert len(live.client().list_payments().payments) == 0


def test_a_replayed_nonce_is_refused(live):
    body = _authorize_body()
    metadata = _signed(live, AUTHORIZE, body)
    first = raw_call(live.address, AUTHORIZE, body, metadata)
    assert switch_pb2.AuthorizeResponse.FromString(first).payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
    second = raw_call(live.address, AUTHORIZE, body, metadata)
    assert second.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(second).reason == "replayed_nonce"


def test_a_signature_for_one_method_is_refused_on_another(live):
    body = switch_pb2.GetPaymentRequest(payment_id="pay_" + "0" * 26).SerializeToString()
    metadata = _signed(live, "/payswitch.v1.PaymentSwitch/GetPayment", body)
    result = raw_call(live.address, "/payswitch.v1.PaymentSwitch/Void", body, metadata)
    assert result.code() == grpc.StatusCode.UNAUTHENTICATED
    assert error_details(result).reason == "signature_mismatch"


def test_a_compressed_call_is_signed_over_its_uncompressed_bytes(live):
    body = _authorize_body()
    with grpc.insecure_channel(live.address) as channel:
        reply = channel.unary_unary(AUTHORIZE)(body, metadata=_signed(live, AUTHORIZE, body), timeout=5,
                                               compression=grpc.Compression.Gzip)
    assert switch_pb2.AuthorizeResponse.FromString(reply).payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED


def _map_fields(message_type, seen: set) -> list[str]:
    if message_type.full_name in seen:
        return []
    seen.add(message_type.full_name)
    found = []
    for field in message_type.fields:
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            found.append(f"{message_type.full_name}.{field.name}")
        else:
            found.extend(_map_fields(field.message_type, seen))
    return found


def test_requests_hold_no_map_field_so_reserializing_them_keeps_their_bytes():
    """docs/signing.md lets a stub serialize the message it signs: map entries are the one part of a
    message whose order a library may choose, so no request may contain one."""
    service = switch_pb2.DESCRIPTOR.services_by_name["PaymentSwitch"]
    seen: set = set()
    requests = [method.input_type for method in service.methods]
    requests.append(switch_pb2.BatchRequest.DESCRIPTOR)  # the signed body of a Stream message
    assert [path for request in requests for path in _map_fields(request, seen)] == []
    assert _map_fields(switch_pb2.BatchResponse.DESCRIPTOR, set()) == ["payswitch.v1.ItemError.metadata"]
