"""TLS and mutual TLS with real grpc.aio servers on loopback and certificates made for the run: who
connects, what identity the server sees, the merchant binding at a signing edge, the channel side
against the PaymentChannel simulator, and the configuration's errors."""

import asyncio
import datetime
import json
import logging
import socket
import ssl
import warnings
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from payswitch import tls
from payswitch.channels.simulator import ChannelSimulator
from payswitch.channels.simulator_service import SimulatorServicer
from payswitch.channels.base import Outcome
from payswitch.channels.status_mapping import classify_status
from payswitch.client import RequestSigner, error_details
from payswitch.hotpath import signing
from payswitch.v1 import channel_pb2, channel_pb2_grpc, types_pb2

from .certificates import CertificateAuthority, Issued, expired

SECRETS = {"m_a": b"a" * 32, "m_b": b"b" * 32}
PAYMENT_METHOD = "/payswitch.v1.PaymentSwitch/GetPayment"
ADMIN_METHOD = "/payswitch.v1.SwitchAdmin/GetRouting"
PEER_METHOD = "/payswitch.test.Peer/Describe"
CHECKOUT_URI = "spiffe://corp/checkout"


@dataclass(frozen=True)
class Pki:
    ca: CertificateAuthority
    other_ca: CertificateAuthority
    server: Issued
    bank: Issued             # a server certificate for bank.example only
    checkout: Issued         # CN checkout, SAN URI spiffe://corp/checkout and DNS checkout.corp
    cashier: Issued          # CN cashier, no SAN
    operator: Issued         # CN ops-admin, no SAN
    stranger: Issued         # CN stranger: from the right CA, bound to nothing
    expired_client: Issued
    future_client: Issued    # not valid yet
    foreign: Issued          # CN checkout, from the other CA


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(folder, "ca")
    other_ca = CertificateAuthority(folder / "other", "other-ca")
    soon = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=2)
    return Pki(
        ca=ca, other_ca=other_ca,
        server=ca.issue_server("server"),
        bank=ca.issue_server("bank", hosts=("bank.example",)),
        checkout=ca.issue_client("checkout", common_name="checkout", uris=(CHECKOUT_URI,), dns=("checkout.corp",)),
        cashier=ca.issue_client("cashier", common_name="cashier"),
        operator=ca.issue_client("operator", common_name="ops-admin"),
        stranger=ca.issue_client("stranger", common_name="stranger"),
        expired_client=ca.issue_client("expired", common_name="cashier", **expired()),
        future_client=ca.issue_client("future", common_name="cashier", not_valid_before=soon,
                                      not_valid_after=soon + datetime.timedelta(days=5)),
        foreign=other_ca.issue_client("foreign", common_name="checkout", uris=(CHECKOUT_URI,)),
    )


BINDING = tls.IdentityBinding({CHECKOUT_URI: {"m_a"}, "cashier": {"*"}, "ops-admin": set()}, admin={"ops-admin"})


def server_tls(pki: Pki, *, mutual: bool = True, binding: tls.IdentityBinding | None = None) -> tls.ServerTls:
    return tls.ServerTls.load(pki.server.cert, pki.server.key, pki.ca.cert if mutual else None, binding=binding)


def client_tls(pki: Pki, client: Issued | None = None, *, ca: CertificateAuthority | None = None,
               server_name: str | None = None) -> tls.ClientTls:
    return tls.ClientTls.load((ca or pki.ca).cert, client and client.cert, client and client.key, server_name)


class EdgeProbe:
    """The edge's order of checks, as the switch will run them: signature first (it names the
    merchant), then the certificate binding; replies describe what the server saw."""

    def __init__(self, binding: tls.IdentityBinding | None):
        self.binding = binding
        self.verifier = signing.Verifier({(merchant, "k1"): secret for merchant, secret in SECRETS.items()})

    def handler(self) -> grpc.GenericRpcHandler:
        class Handler(grpc.GenericRpcHandler):
            def service(inner, details):
                method = {PAYMENT_METHOD: self.payment, ADMIN_METHOD: self.admin, PEER_METHOD: self.describe}
                found = method.get(details.method)
                return None if found is None else grpc.unary_unary_rpc_method_handler(found)

        return Handler()

    async def payment(self, body: bytes, context) -> bytes:
        try:
            merchant = self.verifier.verify(PAYMENT_METHOD, context.invocation_metadata() or (), body)
        except signing.SigningError as failure:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, failure.reason)
        if self.binding is not None:
            refusal = self.binding.merchant_refusal(tls.peer_identities(context), merchant)
            if refusal is not None:
                await context.abort_with_status(refusal)
        return json.dumps({"merchant": merchant}).encode()

    async def admin(self, body: bytes, context) -> bytes:
        if self.binding is not None:
            refusal = self.binding.admin_refusal(tls.peer_identities(context))
            if refusal is not None:
                await context.abort_with_status(refusal)
        return b"admin"

    async def describe(self, body: bytes, context) -> bytes:
        auth = context.auth_context()
        return json.dumps({
            "identities": sorted(tls.peer_identities(context)),
            "transport": auth["transport_security_type"][0].decode(),
            "tls_version": auth.get("ssl_tls_version", [b""])[0].decode(),
            "common_name": auth.get("x509_common_name", [b""])[0].decode(),
        }).encode()


@asynccontextmanager
async def serving(server_side: tls.ServerTls | None, binding: tls.IdentityBinding | None = None):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((EdgeProbe(binding).handler(),))
    port = tls.add_listener(server, "127.0.0.1:0", server_side and tls.ListenerCertificates(server_side))
    assert port
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def call(target: str, client_side: tls.ClientTls | None, method: str = PEER_METHOD, body: bytes = b"",
               metadata=()) -> dict | bytes:
    async with tls.aio_channel(target, client_side) as channel:
        reply = await channel.unary_unary(method)(body, metadata=metadata, timeout=5)
    return json.loads(reply) if reply.startswith(b"{") else reply


def refused(coroutine) -> grpc.aio.AioRpcError:
    async def run():
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await coroutine
        return caught.value

    return asyncio.run(run())


async def served_call(server_side, client_side, **options):
    async with serving(server_side, options.pop("binding", None)) as target:
        return await call(target, client_side, **options)


def signed(merchant: str, body: bytes = b"\x0a\x03pay") -> dict:
    return {"method": PAYMENT_METHOD, "body": body,
            "metadata": RequestSigner(merchant, "k1", SECRETS[merchant]).metadata(PAYMENT_METHOD, body)}


# --- server-only TLS -----------------------------------------------------------------------------------


def test_a_client_trusting_the_ca_connects_over_tls_1_2_or_1_3(pki):
    seen = asyncio.run(served_call(server_tls(pki, mutual=False), client_tls(pki)))
    assert (seen["transport"], seen["identities"], seen["common_name"]) == ("ssl", [], "")
    assert seen["tls_version"] in ("TLSv1.2", "TLSv1.3")


def test_a_client_trusting_another_ca_fails_before_any_request_leaves(pki):
    error = refused(served_call(server_tls(pki, mutual=False), client_tls(pki, ca=pki.other_ca)))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    # The channel client's table reads this as "not sent": a payment can fail over, not go PENDING.
    verdict = classify_status(error.code().name, error.details(), debug_text=error.debug_error_string())
    assert (verdict.outcome, verdict.decline_code) == (Outcome.FAILED, "channel_unavailable")


def test_a_plaintext_client_cannot_talk_to_a_tls_port(pki):
    error = refused(served_call(server_tls(pki, mutual=False), None))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_a_tls_client_cannot_talk_to_a_plaintext_port(pki):
    error = refused(served_call(None, client_tls(pki)))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_the_server_certificate_must_name_the_host_unless_a_server_name_is_configured(pki):
    bank = tls.ServerTls.load(pki.bank.cert, pki.bank.key)
    assert refused(served_call(bank, client_tls(pki))).code() is grpc.StatusCode.UNAVAILABLE
    assert refused(served_call(bank, client_tls(pki, server_name="other.example"))).code() \
        is grpc.StatusCode.UNAVAILABLE
    assert asyncio.run(served_call(bank, client_tls(pki, server_name="bank.example")))["transport"] == "ssl"


def _handshake(port: int, ca: Path, version: ssl.TLSVersion, ciphers: str | None = None) -> str | None:
    """The TLS version a bare handshake settles on, or None when the server refuses it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS 1.0 and 1.1 on purpose
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(ca)
        context.set_alpn_protocols(["h2"])
        context.minimum_version = context.maximum_version = version
        if ciphers:
            context.set_ciphers(ciphers)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as connection:
            return connection.version()
    except (ssl.SSLError, OSError):
        return None


async def _handshakes(server_side: tls.ServerTls, ca: Path, attempts) -> list[str | None]:
    async with serving(server_side) as target:
        port = int(target.rsplit(":", 1)[1])
        return [await asyncio.to_thread(_handshake, port, ca, *attempt) for attempt in attempts]


def test_only_tls_1_2_and_1_3_are_negotiated(pki):
    """PCI DSS 4.2.1: grpc's defaults refuse TLS 1.0 and 1.1 (the probe lowers its own security level
    so that it really offers them)."""
    results = asyncio.run(_handshakes(server_tls(pki, mutual=False), pki.ca.cert, [
        (ssl.TLSVersion.TLSv1, "DEFAULT:@SECLEVEL=0"), (ssl.TLSVersion.TLSv1_1, "DEFAULT:@SECLEVEL=0"),
        (ssl.TLSVersion.TLSv1_2,), (ssl.TLSVersion.TLSv1_3,)]))
    assert results == [None, None, "TLSv1.2", "TLSv1.3"]


def test_tls_1_2_offers_only_ecdhe_with_aes_gcm(pki):
    results = asyncio.run(_handshakes(server_tls(pki, mutual=False), pki.ca.cert, [
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-SHA"),        # CBC with SHA-1 MAC
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA384"),     # CBC
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256"),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-GCM-SHA384")]))
    assert results == [None, None, "TLSv1.2", "TLSv1.2"]


# --- mutual TLS ----------------------------------------------------------------------------------------


def test_a_client_certificate_from_the_ca_is_accepted_and_its_subject_alt_names_are_its_identity(pki):
    seen = asyncio.run(served_call(server_tls(pki), client_tls(pki, pki.checkout)))
    # With a subjectAltName, the CN is not an identity (RFC 6125); grpc still shows it in auth_context.
    assert seen["identities"] == ["checkout.corp", CHECKOUT_URI]
    assert seen["common_name"] == "checkout"


def test_without_subject_alt_names_the_common_name_is_the_identity(pki):
    seen = asyncio.run(served_call(server_tls(pki), client_tls(pki, pki.cashier)))
    assert seen["identities"] == ["cashier"]


@pytest.mark.parametrize("client", ["none", "foreign", "expired_client", "future_client"])
def test_mutual_tls_refuses_a_connection_without_a_valid_client_certificate(pki, client):
    """No certificate, one from another CA, one past its validity, one not valid yet: the handshake
    fails, so no handler runs."""
    issued = None if client == "none" else getattr(pki, client)
    error = refused(served_call(server_tls(pki), client_tls(pki, issued)))
    assert error.code() is grpc.StatusCode.UNAVAILABLE


def test_a_client_ca_file_may_hold_several_cas(pki, tmp_path):
    both = tmp_path / "both-cas.pem"
    both.write_bytes(pki.ca.pem + pki.other_ca.pem)
    server_side = tls.ServerTls.load(pki.server.cert, pki.server.key, both)
    seen = asyncio.run(served_call(server_side, client_tls(pki, pki.foreign)))
    assert seen["identities"] == [CHECKOUT_URI]


def test_a_server_that_does_not_require_client_certificates_sees_no_identity(pki):
    """grpc does not even ask for a client certificate then, so a presented one proves nothing and
    shows nothing; an identity is only ever seen on a mutual TLS listener."""
    seen = asyncio.run(served_call(server_tls(pki, mutual=False), client_tls(pki, pki.checkout)))
    assert seen["identities"] == []


def test_a_plaintext_call_has_no_identity():
    seen = asyncio.run(served_call(None, None))
    assert (seen["identities"], seen["transport"]) == ([], "insecure")


# --- the merchant binding ------------------------------------------------------------------------------


def test_an_identity_bound_to_a_merchant_is_permitted_that_merchant_only():
    assert BINDING.permits({CHECKOUT_URI}, "m_a")
    assert not BINDING.permits({CHECKOUT_URI}, "m_b")


def test_a_star_permits_every_merchant():
    assert BINDING.permits({"cashier"}, "m_a") and BINDING.permits({"cashier"}, "m_anything")


def test_an_identity_absent_from_the_binding_is_permitted_nothing():
    assert not BINDING.permits({"stranger"}, "m_a")
    assert not BINDING.permits(frozenset(), "m_a")
    assert not BINDING.may_administer({"stranger"})


def test_any_one_of_a_certificates_identities_is_enough():
    assert BINDING.permits({"checkout.corp", CHECKOUT_URI}, "m_a")


def test_admin_is_granted_to_marked_identities_only():
    assert BINDING.may_administer({"ops-admin"})
    assert not BINDING.may_administer({CHECKOUT_URI})
    assert not BINDING.permits({"ops-admin"}, "m_a")


def test_a_refusal_is_permission_denied_with_a_machine_readable_reason():
    assert BINDING.merchant_refusal({CHECKOUT_URI}, "m_a") is None
    status = BINDING.merchant_refusal({CHECKOUT_URI}, "m_b")
    assert status.code is grpc.StatusCode.PERMISSION_DENIED
    (detail,) = _error_infos(status)
    assert (detail.reason, dict(detail.metadata)) == ("merchant_not_permitted", {"merchant": "m_b"})


def _error_infos(status: grpc.Status) -> list[error_details_pb2.ErrorInfo]:
    (raw,) = [value for key, value in status.trailing_metadata if key == "grpc-status-details-bin"]
    infos = []
    for packed in status_pb2.Status.FromString(raw).details:
        info = error_details_pb2.ErrorInfo()
        if packed.Unpack(info):
            infos.append(info)
    return infos


def test_the_binding_copies_what_it_is_given():
    bound = {"x": {"m_a"}}
    binding = tls.IdentityBinding(bound)
    bound["x"].add("m_b")
    assert not binding.permits({"x"}, "m_b")
    with pytest.raises(TypeError):
        binding.merchants["y"] = frozenset({"m_a"})


def _live_binding(pki, client: Issued, merchant: str):
    return served_call(server_tls(pki, binding=BINDING), client_tls(pki, client), binding=BINDING, **signed(merchant))


def test_live_a_signed_call_for_a_bound_merchant_goes_through(pki):
    assert asyncio.run(_live_binding(pki, pki.checkout, "m_a")) == {"merchant": "m_a"}
    assert asyncio.run(_live_binding(pki, pki.cashier, "m_b")) == {"merchant": "m_b"}


@pytest.mark.parametrize("client, merchant", [("checkout", "m_b"), ("stranger", "m_a"), ("operator", "m_a")])
def test_live_a_signed_call_for_a_merchant_the_certificate_is_not_bound_to_is_refused(pki, client, merchant, caplog):
    caplog.set_level(logging.WARNING, logger="payswitch.tls")
    error = refused(_live_binding(pki, getattr(pki, client), merchant))
    assert error.code() is grpc.StatusCode.PERMISSION_DENIED
    details = error_details(error)
    assert (details.reason, details.metadata) == ("merchant_not_permitted", {"merchant": merchant})
    assert f"merchant {merchant}" in caplog.text


def test_live_the_signature_is_checked_before_the_binding(pki):
    """An unsigned call is UNAUTHENTICATED whatever the certificate: the binding needs the merchant
    the signature proves."""
    error = refused(served_call(server_tls(pki, binding=BINDING), client_tls(pki, pki.stranger), binding=BINDING,
                                method=PAYMENT_METHOD, body=b"x"))
    assert error.code() is grpc.StatusCode.UNAUTHENTICATED


def test_live_admin_calls_need_an_admin_identity(pki):
    server_side = server_tls(pki, binding=BINDING)
    operator = asyncio.run(served_call(server_side, client_tls(pki, pki.operator), binding=BINDING,
                                       method=ADMIN_METHOD))
    assert operator == b"admin"
    error = refused(served_call(server_side, client_tls(pki, pki.checkout), binding=BINDING, method=ADMIN_METHOD))
    assert (error.code(), error_details(error).reason) == (grpc.StatusCode.PERMISSION_DENIED, "admin_not_permitted")


# --- the channel side: the switch as a TLS client of a PaymentChannel ----------------------------------


async def _authorize_through_simulator(pki, switch_side: tls.ClientTls, *, bank_requires_client_cert=True):
    simulator = ChannelSimulator()
    bank_side = tls.ServerTls.load(pki.bank.cert, pki.bank.key, pki.ca.cert if bank_requires_client_cert else None)
    server = grpc.aio.server()
    channel_pb2_grpc.add_PaymentChannelServicer_to_server(SimulatorServicer(simulator), server)
    port = tls.add_listener(server, "127.0.0.1:0", tls.ListenerCertificates(bank_side))
    await server.start()
    try:
        async with tls.aio_channel(f"127.0.0.1:{port}", switch_side) as channel:
            stub = channel_pb2_grpc.PaymentChannelStub(channel)
            request = channel_pb2.ChannelAuthorizeRequest(
                reference="op_tls_1", merchant_id="m_a", amount=types_pb2.Money(amount_minor=1000, currency="USD"),
                card=types_pb2.Card(number="4242424242424242", exp_month=12, exp_year=2099, cvv="123"))
            result = await stub.Authorize(request, timeout=5, wait_for_ready=False)
        return result, simulator.calls.get("Authorize", 0)
    finally:
        await server.stop(0)


def test_the_switch_reaches_a_tls_channel_with_its_client_certificate(pki):
    switch_side = client_tls(pki, pki.checkout, server_name="bank.example")
    result, calls = asyncio.run(_authorize_through_simulator(pki, switch_side))
    assert (result.outcome, calls) == (channel_pb2.CHANNEL_OUTCOME_APPROVED, 1)


def test_a_channel_requiring_a_client_certificate_refuses_the_switch_without_one(pki):
    error = refused(_authorize_through_simulator(pki, client_tls(pki, server_name="bank.example")))
    assert error.code() is grpc.StatusCode.UNAVAILABLE
    verdict = classify_status(error.code().name, error.details(), debug_text=error.debug_error_string())
    assert verdict.outcome is Outcome.FAILED


def test_server_only_tls_to_a_channel(pki):
    result, calls = asyncio.run(_authorize_through_simulator(pki, client_tls(pki, server_name="bank.example"),
                                                             bank_requires_client_cert=False))
    assert (result.outcome, calls) == (channel_pb2.CHANNEL_OUTCOME_APPROVED, 1)


def test_channel_options_carry_the_server_name(pki):
    assert tls.channel_options(None) == ()
    assert tls.channel_options(client_tls(pki)) == ()
    assert tls.channel_options(client_tls(pki, server_name="bank.example")) == (
        ("grpc.default_authority", "bank.example"),)


# --- loading certificate files --------------------------------------------------------------------------


def test_loaded_material_is_read_once_and_keys_never_show_in_repr(pki, tmp_path):
    loaded = server_tls(pki)
    assert loaded.cert_chain_pem == pki.server.pem and loaded.private_key_pem == pki.server.key_pem
    assert loaded.require_client_cert and loaded.client_ca_pem == pki.ca.pem
    assert "PRIVATE KEY" not in repr(loaded) and "PRIVATE KEY" not in repr(client_tls(pki, pki.checkout))
    assert not server_tls(pki, mutual=False).require_client_cert


def _error(function, *args, **kwargs) -> tls.TlsConfigError:
    with pytest.raises(tls.TlsConfigError) as caught:
        function(*args, **kwargs)
    return caught.value


def test_a_missing_file_is_named(pki, tmp_path):
    error = _error(tls.ServerTls.load, tmp_path / "nope.pem", pki.server.key)
    assert error.field == "tls.cert" and str(tmp_path / "nope.pem") in str(error) and "no such file" in str(error)
    error = _error(tls.ServerTls.load, pki.server.cert, tmp_path / "nope.key")
    assert error.field == "tls.key" and "nope.key: no such file" in str(error)
    error = _error(tls.ClientTls.load, tmp_path)
    assert error.field == "tls.ca" and "is a directory" in str(error)


def test_a_file_that_is_not_pem_is_named(pki, tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    error = _error(tls.ServerTls.load, text, pki.server.key)
    assert str(text) in str(error) and "is not a PEM certificate" in str(error)
    der = tmp_path / "server.der"
    from cryptography.hazmat.primitives import serialization

    der.write_bytes(pki.server.certificate.public_bytes(serialization.Encoding.DER))
    assert "looks like DER" in str(_error(tls.ServerTls.load, der, pki.server.key))
    error = _error(tls.ServerTls.load, pki.server.cert, pki.server.cert)
    assert error.field == "tls.key" and "is not a PEM private key" in str(error)


def test_a_certificate_that_does_not_parse_is_named(pki, tmp_path):
    broken = tmp_path / "broken.pem"
    lines = pki.server.pem.decode().splitlines()
    lines[3] = lines[3][:10] + "!!!!" + lines[3][14:]
    broken.write_text("\n".join(lines) + "\n")
    error = _error(tls.ServerTls.load, broken, pki.server.key)
    assert str(broken) in str(error) and "does not parse" in str(error)


def test_a_key_that_does_not_parse_is_named(pki, tmp_path):
    broken = tmp_path / "broken.key"
    broken.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    error = _error(tls.ServerTls.load, pki.server.cert, broken)
    assert error.field == "tls.key" and str(broken) in str(error) and "does not parse" in str(error)


def test_a_key_of_another_certificate_is_named_with_both_paths(pki):
    error = _error(tls.ServerTls.load, pki.server.cert, pki.checkout.key)
    assert error.field == "tls.key"
    assert f"{pki.checkout.key}: is not the key of the certificate in {pki.server.cert}" in str(error)
    error = _error(tls.ClientTls.load, pki.ca.cert, pki.checkout.cert, pki.cashier.key)
    assert error.field == "tls.key" and "is not the key of the certificate" in str(error)


def test_an_encrypted_key_is_refused_with_the_way_out(pki, tmp_path):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.server.key_pem, None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    error = _error(tls.ServerTls.load, pki.server.cert, encrypted)
    assert "is encrypted" in str(error) and "openssl pkey" in str(error)


def test_a_ca_file_holding_only_a_leaf_certificate_is_refused(pki):
    error = _error(tls.ServerTls.load, pki.server.cert, pki.server.key, pki.checkout.cert)
    assert error.field == "tls.client_ca" and "holds no CA certificate" in str(error)
    assert "holds no CA certificate" in str(_error(tls.ClientTls.load, pki.server.cert))


def test_a_client_certificate_needs_its_key(pki):
    error = _error(tls.ClientTls.load, pki.ca.cert, pki.checkout.cert)
    assert error.field == "tls.key" and "needs both cert and key" in str(error)


def test_a_bad_server_name_is_refused(pki):
    assert _error(tls.ClientTls.load, pki.ca.cert, server_name="bank example").field == "tls.server_name"
    assert tls.ClientTls.load(pki.ca.cert, server_name="10.0.0.7").server_name == "10.0.0.7"


# --- configuration tables ---------------------------------------------------------------------------------


def _relative(path: Path, base: Path) -> str:
    return str(path.relative_to(base))


def test_parse_server_tls_reads_relative_paths_and_the_binding(pki):
    base = pki.ca.folder
    table = {"cert": _relative(pki.server.cert, base), "key": _relative(pki.server.key, base),
             "client_ca": _relative(pki.ca.cert, base), "require_client_cert": True,
             "clients": [{"identity": CHECKOUT_URI, "merchants": ["m_a"]},
                         {"identity": "cashier", "merchants": "*"},
                         {"identity": "ops-admin", "admin": True}]}
    parsed = tls.parse_server_tls(table, base, known_merchants={"m_a", "m_b"})
    assert parsed.cert_chain == pki.server.cert and parsed.require_client_cert
    assert parsed.binding == tls.IdentityBinding({CHECKOUT_URI: {"m_a"}, "cashier": {"*"}, "ops-admin": set()},
                                                 admin={"ops-admin"})


def test_parse_server_tls_without_client_ca_is_server_only_tls(pki):
    parsed = tls.parse_server_tls({"cert": str(pki.server.cert), "key": str(pki.server.key)})
    assert not parsed.require_client_cert and parsed.binding is None


@pytest.mark.parametrize("change, field, text", [
    ({"cert": None}, "switch.tls.cert", "is required"),
    ({"colour": "blue"}, "switch.tls.colour", "is not a known setting"),
    ({"cert": 7}, "switch.tls.cert", "must be a non-empty string"),
    ({"client_ca": None}, "switch.tls.require_client_cert", "needs client_ca"),
    ({"require_client_cert": False}, "switch.tls.client_ca", "only used with require_client_cert = true"),
    ({"require_client_cert": "yes"}, "switch.tls.require_client_cert", "must be true or false"),
    ({"clients": []}, "switch.tls.clients", "non-empty array"),
    ({"clients": [{"identity": "a", "merchants": ["m_zz"]}]}, "switch.tls.clients[0].merchants",
     "names no configured merchant ('m_zz')"),
    ({"clients": [{"identity": "a", "merchants": ["m_a"]}, {"identity": "a", "merchants": ["m_b"]}]},
     "switch.tls.clients[1].identity", "bound twice"),
    ({"clients": [{"identity": "*", "merchants": ["m_a"]}]}, "switch.tls.clients[0].identity", "not an identity"),
    ({"clients": [{"identity": " a", "merchants": ["m_a"]}]}, "switch.tls.clients[0].identity", "printable"),
    ({"clients": [{"identity": "a"}]}, "switch.tls.clients[0]", "grants nothing"),
    ({"clients": [{"identity": "a", "merchants": "m_a"}]}, "switch.tls.clients[0].merchants", "list of merchant"),
    ({"clients": [{"identity": "a", "merchants": ["m_a"], "admin": 1}]}, "switch.tls.clients[0].admin",
     "true or false"),
    ({"clients": [{"identity": "a", "merchant": ["m_a"]}]}, "switch.tls.clients[0].merchant", "not a known"),
])
def test_parse_server_tls_names_the_field_of_each_mistake(pki, change, field, text):
    table = {"cert": str(pki.server.cert), "key": str(pki.server.key), "client_ca": str(pki.ca.cert),
             "require_client_cert": True}
    table.update(change)
    table = {key: value for key, value in table.items() if value is not None}
    error = _error(tls.parse_server_tls, table, known_merchants={"m_a", "m_b"})
    assert (error.field, text in error.problem) == (field, True), str(error)


def test_a_binding_without_mutual_tls_is_refused(pki):
    error = _error(tls.ServerTls.load, pki.server.cert, pki.server.key, binding=BINDING, where="switch.tls")
    assert error.field == "switch.tls.clients" and "needs client_ca" in str(error)


def test_parse_server_tls_names_the_file_under_its_setting(pki, tmp_path):
    error = _error(tls.parse_server_tls, {"cert": "missing.pem", "key": str(pki.server.key)}, tmp_path)
    assert error.field == "switch.tls.cert" and str(tmp_path / "missing.pem") in error.problem


def test_parse_channel_tls(pki):
    base = pki.ca.folder
    assert tls.parse_channel_tls({"name": "sim", "target": "127.0.0.1:1"}, base, where="channels[0]") is None
    parsed = tls.parse_channel_tls({"name": "bank", "target": "10.0.0.7:443", "tls_ca": "ca.pem",
                                    "tls_cert": "checkout.pem", "tls_key": "checkout.key",
                                    "tls_server_name": "bank.example"}, base, where="channels[1]")
    assert (parsed.ca, parsed.cert_chain, parsed.server_name) == (pki.ca.cert, pki.checkout.cert, "bank.example")


@pytest.mark.parametrize("table, field, text", [
    ({"tls_cert": "checkout.pem", "tls_key": "checkout.key"}, "channels[0].tls_ca", "is required"),
    ({"tls_ca": "ca.pem", "tls_cert": "checkout.pem"}, "channels[0].tls_key", "needs both tls_cert and tls_key"),
    ({"tls_ca": "ca.pem", "target": "in-process"}, "channels[0].tls_ca", "in-process"),
    ({"tls_ca": "nope.pem"}, "channels[0].tls_ca", "no such file"),
    ({"tls_ca": "ca.pem", "tls_server_name": "not a name"}, "channels[0].tls_server_name", "not a host name"),
    ({"tls_ca": ""}, "channels[0].tls_ca", "non-empty string"),
])
def test_parse_channel_tls_names_the_field_of_each_mistake(pki, table, field, text):
    error = _error(tls.parse_channel_tls, {"name": "bank", "target": "127.0.0.1:1", **table}, pki.ca.folder,
                   where="channels[0]")
    assert (error.field, text in error.problem) == (field, True), str(error)


# --- warnings --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("address, warned", [("127.0.0.1:0", False), ("[::1]:0", False), ("localhost:0", False),
                                             ("0.0.0.0:0", True)])
def test_plaintext_off_loopback_is_warned_about(address, warned, caplog):
    caplog.set_level(logging.WARNING, logger="payswitch.tls")

    async def bind():
        server = grpc.aio.server()
        assert tls.add_listener(server, address, None)
        await server.stop(0)

    asyncio.run(bind())
    assert ("without TLS" in caplog.text) is warned


def test_replaced_cipher_suites_are_warned_about(pki, monkeypatch, caplog):
    caplog.set_level(logging.WARNING, logger="payswitch.tls")
    tls.ListenerCertificates(server_tls(pki)).credentials()
    assert "GRPC_SSL_CIPHER_SUITES" not in caplog.text
    monkeypatch.setenv("GRPC_SSL_CIPHER_SUITES", "HIGH")
    tls.channel_credentials(client_tls(pki))
    assert "GRPC_SSL_CIPHER_SUITES=HIGH" in caplog.text
