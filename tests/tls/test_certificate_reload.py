"""Renewing the listener's certificate while it serves: a reload re-reads the files, new connections get
the renewed certificate (and client CA), open connections keep working, and files that cannot serve
change nothing."""

import asyncio
import datetime
import logging
import shutil
import socket
import ssl
from contextlib import asynccontextmanager

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from payswitch import tls

from .certificates import CertificateAuthority, expired

METHOD = "/payswitch.test.Echo/Echo"
NOW = datetime.datetime.now(datetime.timezone.utc)


def echo_handler() -> grpc.GenericRpcHandler:
    async def echo(body: bytes, context) -> bytes:
        return body

    class Handler(grpc.GenericRpcHandler):
        def service(self, details):
            return grpc.unary_unary_rpc_method_handler(echo) if details.method == METHOD else None

    return Handler()


@asynccontextmanager
async def serving(certificates: tls.ListenerCertificates):
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((echo_handler(),))
    port = tls.add_listener(server, "127.0.0.1:0", certificates)
    await server.start()
    try:
        yield port
    finally:
        await server.stop(0)


def served_serial(port: int, ca: CertificateAuthority, client=None) -> int | None:
    """The serial number of the certificate a new connection is shown, or None when the handshake fails."""
    context = ssl.create_default_context(cadata=ca.certificate.public_bytes(serialization.Encoding.PEM).decode())
    context.set_alpn_protocols(["h2"])
    if client is not None:
        context.load_cert_chain(client.cert, client.key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
                context.wrap_socket(raw, server_hostname="localhost") as connection:
            serial = x509.load_der_x509_certificate(connection.getpeercert(binary_form=True)).serial_number
            # A TLS 1.3 server refuses a client certificate after the client's handshake is done: an
            # accepted connection answers the HTTP/2 preface with its SETTINGS, a refused one closes.
            connection.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            return serial if connection.read(1) else None
    except (ssl.SSLError, OSError, ValueError):
        return None


async def echo(channel: grpc.aio.Channel, body: bytes = b"ping") -> bytes:
    return await channel.unary_unary(METHOD)(body, timeout=5)


def listener(folder, *, mutual: bool = False) -> tuple[CertificateAuthority, tls.ListenerCertificates]:
    authority = CertificateAuthority(folder, "ca")
    server = authority.issue_server("server")
    client_ca = authority.cert if mutual else None
    return authority, tls.ListenerCertificates(tls.ServerTls.load(server.cert, server.key, client_ca))


def test_new_connections_get_the_renewed_certificate_and_open_ones_keep_working(tmp_path):
    authority, certificates = listener(tmp_path)
    first = certificates.tls

    async def scenario():
        async with serving(certificates) as port:
            served = await asyncio.to_thread(served_serial, port, authority)
            async with tls.aio_channel(f"127.0.0.1:{port}", tls.ClientTls.load(authority.cert)) as open_channel:
                assert await echo(open_channel) == b"ping"
                renewed = authority.issue_server("server")  # written over the same files
                summary = await asyncio.to_thread(certificates.reload)
                assert await echo(open_channel, b"still") == b"still"
                after = await asyncio.to_thread(served_serial, port, authority)
            async with tls.aio_channel(f"127.0.0.1:{port}", tls.ClientTls.load(authority.cert)) as new_channel:
                assert await echo(new_channel) == b"ping"
            return served, after, renewed, summary

    served, after, renewed, summary = asyncio.run(scenario())
    assert served != after == renewed.certificate.serial_number == summary.serial
    assert certificates.tls.cert_chain == first.cert_chain and certificates.tls.cert_chain_pem != first.cert_chain_pem


def _mismatched_key(authority, folder):
    authority.issue_server("other")
    shutil.copy(folder / "other.pem", folder / "server.pem")  # the new certificate, the old key


def _garbage(authority, folder):
    (folder / "server.pem").write_text("not a certificate\n")


def _missing_key(authority, folder):
    authority.issue_server("server")
    (folder / "server.key").unlink()


@pytest.mark.parametrize("break_files, field, text", [
    (_mismatched_key, "switch.tls.key", "is not the key of the certificate"),
    (lambda authority, _: authority.issue_server("server", **expired()), "switch.tls.cert", "is expired"),
    (lambda authority, _: authority.issue_server("server", not_valid_before=NOW + datetime.timedelta(days=1),
                                                 not_valid_after=NOW + datetime.timedelta(days=90)),
     "switch.tls.cert", "is not yet valid"),
    (_garbage, "switch.tls.cert", "is not a PEM certificate"),
    (_missing_key, "switch.tls.key", "no such file"),
], ids=["key of another certificate", "expired", "not yet valid", "not PEM", "key missing"])
def test_files_that_cannot_serve_are_refused_and_the_certificate_in_use_stays(tmp_path, break_files, field, text):
    authority, certificates = listener(tmp_path)
    in_use = certificates.tls

    async def scenario():
        async with serving(certificates) as port:
            before = await asyncio.to_thread(served_serial, port, authority)
            break_files(authority, tmp_path)
            with pytest.raises(tls.TlsConfigError) as refused:
                await asyncio.to_thread(certificates.reload)
            return before, await asyncio.to_thread(served_serial, port, authority), refused.value

    before, after, error = asyncio.run(scenario())
    assert before == after is not None
    assert certificates.tls is in_use
    assert error.field == field and text in error.problem, str(error)


def test_a_reloaded_client_ca_decides_which_client_certificates_get_in(tmp_path):
    authority, certificates = listener(tmp_path, mutual=True)
    successor = CertificateAuthority(tmp_path / "next", "next-ca")
    old_client = authority.issue_client("old-client")
    new_client = successor.issue_client("new-client")

    async def scenario():
        async with serving(certificates) as port:
            before = [await asyncio.to_thread(served_serial, port, authority, client)
                      for client in (old_client, new_client)]
            shutil.copy(successor.cert, authority.cert)  # the client_ca file now names the successor only
            await asyncio.to_thread(certificates.reload)
            after = [await asyncio.to_thread(served_serial, port, authority, client)
                     for client in (old_client, new_client)]
            return before, after

    (old_before, new_before), (old_after, new_after) = asyncio.run(scenario())
    assert old_before is not None and new_before is None
    assert old_after is None and new_after is not None


def test_a_certificate_near_its_expiry_is_warned_about_when_served_and_reloaded(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="payswitch.tls")
    authority = CertificateAuthority(tmp_path, "ca")
    server = authority.issue_server("server", not_valid_after=NOW + datetime.timedelta(days=60))
    certificates = tls.ListenerCertificates(tls.ServerTls.load(server.cert, server.key))
    certificates.credentials()
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "valid " in caplog.text and "CN=localhost" in caplog.text

    authority.issue_server("server", not_valid_after=NOW + datetime.timedelta(days=3))
    certificates.reload()
    [warning] = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "expires in 2.9 days" in warning or "expires in 3.0 days" in warning, warning
