"""`payswitch serve` with a routing file: SIGHUP reloads it, and a switch killed mid-call resolves the
payment it left PENDING through Inquire after the restart."""

import itertools
import secrets
import signal
import threading
import time

import grpc
import pytest
from live_switch import TIMEOUT, card
from processes import CommandProcess

from payswitch.client import SyncSwitchClient

pytestmark = pytest.mark.slow

_ORDERS = itertools.count()
ROUTES = 'version = "{version}"\n[[rules]]\nname = "only"\nchannels = ["{channel}"]\n'


def write_config(folder, secret: bytes, channels: dict[str, str], routing: str | None = None) -> str:
    lines = ['[switch]', 'listen = "127.0.0.1:0"', 'grace_seconds = 2']
    if routing is not None:
        (folder / "routes.toml").write_text(routing)
        lines.append('routing = "routes.toml"')
    lines += ['[resolver]', 'interval_seconds = 0.1', 'min_age_seconds = 0']
    for name, target in channels.items():
        lines += ['[[channels]]', f'name = "{name}"', f'target = "{target}"', 'timeout_ms = 3000']
    lines += ['[[merchants]]', 'id = "m_shop"', f'channel = "{next(iter(channels))}"', '[[merchants.keys]]',
              'id = "k1"', f'secret_hex = "{secret.hex()}"']
    path = folder / "switch.toml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def channel_of_next_payment(client) -> tuple[str, str]:
    payment = client.authorize(100, "USD", card=card(), merchant_reference=f"o-{next(_ORDERS)}").payment
    return payment.routing_version, payment.channel


def test_sighup_reloads_the_routing_file_and_a_bad_file_changes_nothing(tmp_path):
    secret = secrets.token_bytes(32)
    config = write_config(tmp_path, secret, {"a": "in-process", "b": "in-process"},
                          ROUTES.format(version="v1", channel="a"))
    server = CommandProcess("serve", "--config", config, "--db", str(tmp_path / "s.db"))
    try:
        with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
            assert channel_of_next_payment(client) == ("v1", "a")
            (tmp_path / "routes.toml").write_text(ROUTES.format(version="v2", channel="b"))
            server.process.send_signal(signal.SIGHUP)
            assert wait_until(lambda: channel_of_next_payment(client) == ("v2", "b"))

            (tmp_path / "routes.toml").write_text(ROUTES.format(version="v3", channel="nowhere"))
            server.process.send_signal(signal.SIGHUP)
            time.sleep(0.5)
            assert channel_of_next_payment(client) == ("v2", "b")
    finally:
        server.process.send_signal(signal.SIGTERM)
        _, errors = server.process.communicate(timeout=20)
    assert server.process.returncode == 0
    assert "routing reload refused" in errors and "routes.toml:4" in errors and "nowhere" in errors


def test_a_payment_left_pending_by_a_killed_switch_is_resolved_after_restart(tmp_path):
    secret = secrets.token_bytes(32)
    channel = CommandProcess("channel-sim", "--listen", "127.0.0.1:0", "--timeout-delay", "4")
    config = write_config(tmp_path, secret, {"sim": channel.address})
    serve = ("serve", "--config", config, "--db", str(tmp_path / "s.db"), "--log-level", "WARNING")
    try:
        server = CommandProcess(*serve)
        request = dict(card=card(TIMEOUT), merchant_reference="order-k", idempotency_key="key-k")
        with SyncSwitchClient(server.address, "m_shop", "k1", secret, max_attempts=1) as client:
            caller = threading.Thread(target=lambda: _swallow(lambda: client.authorize(4_200, "USD", **request)))
            caller.start()
            time.sleep(1.0)  # the intent is committed and the channel is holding its (approving) reply
            server.process.kill()
            server.process.wait(10)
            caller.join(10)

        server = CommandProcess(*serve)
        with SyncSwitchClient(server.address, "m_shop", "k1", secret) as client:
            payment = wait_until(lambda: _replay(client, request), timeout=15)
            assert payment is not None and payment.status == 2  # AUTHORIZED, learnt through Inquire
            assert client.capture(payment.payment_id).payment.status == 4  # CAPTURED
        server.stop()
    finally:
        channel.stop()


def _replay(client, request):
    """The stored answer for the key once the resolver has settled it (ABORTED while in progress)."""
    try:
        return client.authorize(4_200, "USD", **request).payment
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.ABORTED, error
        return None


def _swallow(call):
    try:
        call()
    except grpc.RpcError:
        pass


def wait_until(condition, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    return condition()
