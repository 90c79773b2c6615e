"""The PaymentChannel in Node.js (examples/channel-node) against the real conformance suite and a live
switch: the proof a channel team needs that the contract is met from protos/ alone, without Python."""

import re
import selectors
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from live_switch import APPROVE, DO_NOT_HONOR, LiveSwitch, card

from payswitch.channels.conformance import check_names
from payswitch.v1 import types_pb2

EXAMPLE = Path(__file__).parent.parent.parent / "examples" / "channel-node"
NPM_CI_TIMEOUT_S = 300
START_TIMEOUT_S = 20

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed (.ci/run installs it)")]


@pytest.fixture(scope="module")
def installed():
    """grpc-js and proto-loader as package-lock.json pins them, in the example's own node_modules."""
    npm = shutil.which("npm")
    assert npm is not None, "node is installed but npm is not"
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=EXAMPLE,
                   check=True, timeout=NPM_CI_TIMEOUT_S, stdout=subprocess.DEVNULL)


class NodeChannel:
    """`node channel.js` on a loopback port; `address` is where it listens."""

    def __init__(self, listen: str):
        self.process = subprocess.Popen(["node", "channel.js", "--listen", listen], cwd=EXAMPLE, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            first_line = self._first_line()
        except BaseException:
            self.stop()
            raise
        bound = re.fullmatch(r"channel-node listening on (127\.0\.0\.1:\d+)", first_line.strip())
        assert bound, f"unexpected first line from the Node channel: {first_line!r}"
        self.address = bound[1]

    def _first_line(self) -> str:
        """The line it prints once bound, waited for at most START_TIMEOUT_S."""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(START_TIMEOUT_S):
                raise AssertionError(f"the Node channel printed nothing within {START_TIMEOUT_S} s")
        line = self.process.stdout.readline()
        if not line:
            raise AssertionError(f"the Node channel exited {self.process.wait(5)}: {self.process.stderr.read()}")
        return line

    def stop(self) -> str:
        """Stops the process and returns what it wrote to stderr."""
        self.process.terminate()
        try:
            _, errors = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, errors = self.process.communicate()
        return errors


@pytest.fixture
def node_channel(installed):
    channel = NodeChannel("127.0.0.1:0")
    yield channel
    channel.stop()


def test_the_node_channel_passes_every_conformance_check(node_channel):
    run = subprocess.run([sys.executable, "-m", "payswitch", "channel-check", "--target", node_channel.address],
                         capture_output=True, text=True, timeout=120)
    rows = dict(re.findall(r"^(\w+) +(PASS|FAIL|SKIP) ", run.stdout, re.MULTILINE))
    assert rows == {name: "PASS" for name in check_names()}, run.stdout
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_switch_moves_money_through_the_node_channel(installed, tmp_path):
    live = LiveSwitch(tmp_path, unreachable=("node",),
                      routing='version = "node"\n[[rules]]\nname = "all-to-node"\nchannels = ["node"]\n').start()
    channel = NodeChannel(f"127.0.0.1:{live.unreachable_ports['node']}")
    try:
        client = live.client()
        payment = client.authorize(1999, "EUR", card=card(APPROVE), merchant_reference="order-1").payment
        assert (payment.status, payment.channel) == (types_pb2.PAYMENT_STATUS_AUTHORIZED, "node")
        captured = client.capture(payment.payment_id, 1500, "EUR").payment
        assert (captured.status, captured.captured_minor) == (types_pb2.PAYMENT_STATUS_CAPTURED, 1500)
        refunded = client.refund(payment.payment_id, 500, "EUR").payment
        assert (refunded.status, refunded.refunded_minor) == (types_pb2.PAYMENT_STATUS_PARTIALLY_REFUNDED, 500)

        held = client.authorize(700, "EUR", card=card(APPROVE), merchant_reference="order-2").payment
        assert client.void(held.payment_id).payment.status == types_pb2.PAYMENT_STATUS_VOIDED
        declined = client.authorize(700, "EUR", card=card(DO_NOT_HONOR), merchant_reference="order-3").payment
        assert (declined.status, declined.decline_code) == (types_pb2.PAYMENT_STATUS_DECLINED, "do_not_honor")
    finally:
        errors = channel.stop()
        live.close()
    assert errors == ""
