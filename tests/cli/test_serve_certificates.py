"""`payswitch serve` with [switch.tls]: SIGHUP re-reads the certificate files, new connections get the
renewed certificate, payments go on, and a renewal that cannot serve is logged and changes nothing."""

import secrets
import signal

import pytest
from live_switch import card
from processes import CommandProcess
from test_serve_routing import wait_until
from tls.certificates import CertificateAuthority
from tls.test_certificate_reload import served_serial

from payswitch.client import SyncSwitchClient
from payswitch.tls import ClientTls

pytestmark = pytest.mark.slow


def write_config(folder, secret: bytes) -> str:
    path = folder / "switch.toml"
    path.write_text("\n".join([
        '[switch]', 'listen = "127.0.0.1:0"', 'grace_seconds = 2',
        '[switch.tls]', 'cert = "pki/server.pem"', 'key = "pki/server.key"',
        '[[channels]]', 'name = "sim"', 'target = "in-process"',
        '[[merchants]]', 'id = "m_shop"', 'channel = "sim"', '[[merchants.keys]]', 'id = "k1"',
        f'secret_hex = "{secret.hex()}"']) + "\n")
    return str(path)


def test_sighup_serves_a_renewed_certificate_and_refuses_a_broken_one(tmp_path):
    authority = CertificateAuthority(tmp_path / "pki", "ca")
    first = authority.issue_server("server")
    secret = secrets.token_bytes(32)
    server = CommandProcess("serve", "--config", write_config(tmp_path, secret), "--db", str(tmp_path / "s.db"))
    port = int(server.address.rsplit(":", 1)[1])
    try:
        assert served_serial(port, authority) == first.certificate.serial_number
        renewed = authority.issue_server("server")
        server.process.send_signal(signal.SIGHUP)
        assert wait_until(lambda: served_serial(port, authority) == renewed.certificate.serial_number)
        with SyncSwitchClient(server.address, "m_shop", "k1", secret, tls=ClientTls.load(authority.cert)) as client:
            assert client.authorize(100, "USD", card=card(), merchant_reference="after-renewal").payment.payment_id

        (tmp_path / "pki" / "server.key").write_text("not a key\n")
        server.process.send_signal(signal.SIGHUP)
        assert not wait_until(lambda: served_serial(port, authority) != renewed.certificate.serial_number, 1.0)
    finally:
        server.process.send_signal(signal.SIGTERM)
        _, errors = server.process.communicate(timeout=20)
    assert server.process.returncode == 0
    assert "certificate reload refused" in errors and "switch.tls.key" in errors and "server.key" in errors
