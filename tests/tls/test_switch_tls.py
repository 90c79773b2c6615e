"""The whole switch behind mutual TLS: a client certificate acts only for the merchants it is bound
to, whatever key signs the request; a caller without a certificate from the right CA never gets in."""

import grpc
import pytest
from live_switch import LiveSwitch, card

from payswitch.client import RequestSigner, authorize_request
from payswitch.client.errors import error_details
from payswitch.tls import ClientTls, IdentityBinding, ServerTls, sync_channel
from payswitch.v1 import switch_pb2, types_pb2

from .certificates import CertificateAuthority

CHECKOUT = "spiffe://corp/checkout"


@pytest.fixture
def mtls_switch(tmp_path):
    authority = CertificateAuthority(tmp_path / "ca")
    server = authority.issue_server()
    tls = ServerTls.load(server.cert, server.key, authority.cert,
                         binding=IdentityBinding({CHECKOUT: frozenset({"m_alpha"})}))
    live = LiveSwitch(tmp_path, tls=tls).start()
    checkout = authority.issue_client("checkout", uris=(CHECKOUT,))
    yield live, authority, ClientTls.load(authority.cert, checkout.cert, checkout.key)
    live.close()


def authorize(client, reference: str):
    return client.authorize(100, "USD", card=card(), merchant_reference=reference)


def test_a_bound_certificate_acts_for_its_merchant_only(mtls_switch):
    live, _, checkout = mtls_switch
    alpha = live.client("m_alpha", tls=checkout, max_attempts=1)
    assert authorize(alpha, "tls-1").payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED

    beta = live.client("m_beta", tls=checkout, max_attempts=1)
    with pytest.raises(grpc.RpcError) as caught:
        authorize(beta, "tls-2")
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_details(caught.value).reason == "merchant_not_permitted"
    assert [p.merchant_id for p in live.call(live.app.store.all_payments())] == ["m_alpha"]


def test_the_stream_refuses_a_merchant_the_certificate_is_not_bound_to(mtls_switch):
    live, _, checkout = mtls_switch
    batch = switch_pb2.BatchRequest(items=[switch_pb2.BatchItem(
        authorize=authorize_request(100, "USD", card=card(), merchant_reference="s-1"))]).SerializeToString()
    replies = []
    with sync_channel(live.address, checkout) as channel:
        stream = channel.stream_stream("/payswitch.v1.PaymentSwitch/Stream")
        for sequence, merchant in enumerate(("m_alpha", "m_beta")):
            values = RequestSigner(merchant, "k1", live.secrets[merchant]).values(
                "/payswitch.v1.PaymentSwitch/Stream", batch)
            message = switch_pb2.StreamRequest(sequence=sequence, batch=batch, merchant=values[0], key_id=values[1],
                                               timestamp=values[2], nonce=values[3], signature=values[4])
            replies += [switch_pb2.StreamResponse.FromString(reply)
                        for reply in stream(iter([message.SerializeToString()]), timeout=10)]
    assert replies[0].HasField("response") and not replies[0].HasField("error")
    assert replies[1].error.reason == "merchant_not_permitted"


@pytest.mark.parametrize("caller", ["no certificate", "another CA", "plaintext"])
def test_callers_without_a_certificate_from_the_right_ca_never_get_in(mtls_switch, tmp_path, caller):
    live, authority, _ = mtls_switch
    if caller == "no certificate":
        tls = ClientTls.load(authority.cert)
    elif caller == "another CA":
        stranger = CertificateAuthority(tmp_path / "other").issue_client("stranger", uris=(CHECKOUT,))
        tls = ClientTls.load(authority.cert, stranger.cert, stranger.key)
    else:
        tls = None
    client = live.client("m_alpha", tls=tls, max_attempts=1, timeout=3)
    with pytest.raises(grpc.RpcError) as caught:
        authorize(client, f"refused-{caller}")
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert live.call(live.app.store.all_payments()) == []
