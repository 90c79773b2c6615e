"""`payswitch serve` as a real process: signals, graceful stop, and state that survives a restart."""

import json
import secrets
import signal
import subprocess
import sys

import pytest
from live_switch import card
from processes import CommandProcess, logged, write_config

from payswitch.client import SyncSwitchClient
from payswitch.v1 import types_pb2

pytestmark = pytest.mark.slow


def test_state_survives_a_restart_and_sigterm_stops_cleanly(tmp_path):
    """The channel simulator runs in its own process and outlives both switch processes."""
    secret = secrets.token_bytes(32)
    channel = CommandProcess("channel-sim", "--listen", "127.0.0.1:0")
    config, database = write_config(tmp_path, secret, channel.address), tmp_path / "switch.db"
    serve = ("serve", "--config", str(config), "--db", str(database))

    server = CommandProcess(*serve)
    with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
        payment = client.authorize(12_345, "USD", card=card(), merchant_reference="order-p").payment
        client.capture(payment.payment_id, 10_000, "USD")
        before = client.get_payment(payment.payment_id).payment
    code, output = server.stop(signal.SIGTERM)
    assert code == 0 and output == ""  # stdout carries the ready line alone; the rest is logged
    assert [line["message"] for line in logged(server.stderr)][-2:] == [
        "stopping: finishing in-flight calls (grace 3 s)", "stopped"]

    server = CommandProcess(*serve)
    with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
        after = client.get_payment(payment.payment_id).payment
        assert after == before
        assert (after.status, after.captured_minor) == (types_pb2.PAYMENT_STATUS_CAPTURED, 10_000)
        assert client.refund(payment.payment_id).payment.status == types_pb2.PAYMENT_STATUS_REFUNDED
    code, _ = server.stop(signal.SIGINT)
    assert code == 0
    assert channel.stop()[0] == 0

    verify = subprocess.run([sys.executable, "-m", "payswitch", "ledger", "verify", "--db", str(database)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_serve_refuses_a_bad_config_naming_the_field(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[[merchants]]\nid = "m"\nchannel = "nowhere"\nkeys = []\n')
    result = subprocess.run([sys.executable, "-m", "payswitch", "serve", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "merchants[0].channel" in result.stderr


def test_info_reports_versions_and_backends():
    result = subprocess.run([sys.executable, "-m", "payswitch", "info"], capture_output=True, text=True, timeout=60)
    info = json.loads(result.stdout)
    assert set(info) >= {"payswitch", "python", "grpcio", "protobuf", "protobuf_backend", "extensions"}
    assert info["extensions"]["signing"] in ("compiled", "pure")


def test_demo_runs_every_path_and_the_ledger_verifies(tmp_path):
    database = tmp_path / "demo.db"
    result = subprocess.run([sys.executable, "-m", "payswitch", "demo", "--rounds", "4", "--db", str(database)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "UNEXPECTED" not in result.stdout
    assert "ledger verify: ok" in result.stdout
    verify = subprocess.run([sys.executable, "-m", "payswitch", "ledger", "verify", "--db", str(database)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0
