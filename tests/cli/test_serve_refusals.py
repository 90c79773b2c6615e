"""`payswitch serve` as a real process refusing to start: each problem is exit status 2 and one line
naming the file (or flag) and the field, never a traceback; and SIGHUP never kills it."""

import secrets
import signal
import socket
import subprocess
import sys

import pytest
from live_switch import card
import processes
from processes import CommandProcess, logged

from payswitch.client import SyncSwitchClient
from payswitch.v1 import types_pb2

pytestmark = pytest.mark.slow

SECRET = secrets.token_bytes(32)


def write_config(folder, **settings) -> str:
    """The refusal tests' switch: the built-in simulator, a merchant with SECRET; `settings` as
    processes.write_config takes them."""
    return str(processes.write_config(folder, SECRET, "in-process", **settings))


def refusal(*args: str) -> list[str]:
    """The stderr lines of a serve that must not start (exit status 2, no traceback)."""
    result = subprocess.run([sys.executable, "-m", "payswitch", "serve", *args], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return [line for line in result.stderr.splitlines() if not line.startswith("{")]  # log lines aside


@pytest.mark.parametrize("setting, expected", [
    ('listen = ":99999"', "switch.toml:2: switch.listen: the port must be a number from 0 to 65535, got ':99999'"),
    ('listen = "localhost"', "switch.toml:2: switch.listen: must be HOST:PORT, such as 127.0.0.1:50051, got "
                             "'localhost'"),
    ('listen = "garbage"', "switch.toml:2: switch.listen: must be HOST:PORT"),
    ("grace_seconds = -5", "switch.toml:4: switch.grace_seconds: must be 0 to 3600, got -5"),
])
def test_a_bad_setting_is_refused_naming_file_line_and_field(tmp_path, setting, expected):
    config = write_config(tmp_path)
    key = setting.split(" = ")[0]
    text = open(config).read()
    start = text.index(f"{key} = ")
    open(config, "w").write(text[:start] + setting + text[text.index("\n", start):])
    (line,) = refusal("--config", config)
    assert line.startswith(f"payswitch serve: {tmp_path / expected}")


def test_a_listen_address_in_use_is_refused_naming_the_field_and_the_flag(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        address = f"127.0.0.1:{taken.getsockname()[1]}"
        config = write_config(tmp_path)
        assert refusal("--config", config, "--listen", address) == [
            f"payswitch serve: --listen {address}: cannot listen on {address}: address already in use"]
        text = open(config).read().replace('listen = "127.0.0.1:0"', f'listen = "{address}"')
        open(config, "w").write(text)
        assert refusal("--config", config) == [
            f"payswitch serve: {config}: switch.listen: cannot listen on {address}: address already in use"]


def test_a_database_in_a_missing_folder_is_refused(tmp_path):
    missing = tmp_path / "no-such-folder" / "switch.db"
    config = write_config(tmp_path, database=str(missing))
    assert refusal("--config", config) == [
        f"payswitch serve: {config}: switch.database: the folder {missing.parent} does not exist (create it, or "
        "name another database)"]
    assert refusal("--config", write_config(tmp_path), "--db", str(missing)) == [
        f"payswitch serve: --db {missing}: the folder {missing.parent} does not exist (create it, or name another "
        "database)"]


@pytest.mark.parametrize("flag, value, words", [
    ("--listen", "127.0.0.1:abc", "argument --listen: the port must be a number from 0 to 65535"),
    ("--log-level", "verbose", "argument --log-level: invalid choice: 'VERBOSE'"),
])
def test_a_bad_flag_is_refused_naming_it(tmp_path, flag, value, words):
    lines = refusal("--config", write_config(tmp_path), flag, value)
    assert lines[0].startswith("usage: payswitch serve")
    assert words in lines[-1]


@pytest.mark.parametrize("file, text, expected", [
    ("routes.toml", 'version = "v1"\n[[rules]]\nname = "shop"\nmerchants = ["m_shopp"]\nchannels = ["sim"]\n',
     "routes.toml:4: rules[0].merchants: names no configured merchant ('m_shopp')"),
    ("risk.toml", 'version = "r1"\n[[limits]]\nmerchant = "m_shopp"\ncurrency = "USD"\nmax_amount_minor = 5\n',
     "risk.toml:3: limits[0].merchant: names no configured merchant ('m_shopp')"),
])
def test_a_rule_file_naming_an_unknown_merchant_is_refused(tmp_path, file, text, expected):
    (tmp_path / file).write_text(text)
    config = write_config(tmp_path, switch=f'{file.split(".")[0].replace("routes", "routing")} = "{file}"')
    assert refusal("--config", config) == [f"payswitch serve: {tmp_path / expected}"]


def test_sighup_with_nothing_to_reload_keeps_serving_and_a_channel_that_does_not_resolve_is_warned(tmp_path):
    """SIGHUP's default action ends a process: the switch must handle it even with no file to reload."""
    config = write_config(tmp_path, extra='\n[[channels]]\nname = "bank"\ntarget = "bank.invalid:443"\n')
    server = CommandProcess("serve", "--config", config)
    try:
        with SyncSwitchClient(server.address, "m_shop", "k1", SECRET) as client:
            server.process.send_signal(signal.SIGHUP)
            payment = client.authorize(1000, "USD", card=card(), merchant_reference="after-sighup").payment
            assert payment.status == types_pb2.PAYMENT_STATUS_AUTHORIZED
            server.process.send_signal(signal.SIGHUP)
            assert client.get_payment(payment.payment_id).payment == payment
    finally:
        code, _ = server.stop(signal.SIGTERM)
    assert code == 0
    lines = logged(server.stderr)
    messages = [line["message"] for line in lines]
    assert messages.count("SIGHUP: nothing to reload (no routing, risk or TLS file is configured); serving on") == 2
    assert messages[-1] == "stopped"
    (warning,) = [line for line in lines if line["message"].startswith("channel bank:")]
    assert warning["level"] == "WARNING" and "bank.invalid" in warning["message"]
