"""`payswitch config check FILE`: every problem serve would refuse, one a line, without starting
anything or needing the merchants' secrets; and the examples/ files, which must start as they are."""

import shutil
import signal
from pathlib import Path

import pytest
from live_switch import card
from processes import CommandProcess

from payswitch.cli.main import main
from payswitch.client import SyncSwitchClient
from payswitch.v1 import types_pb2

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def examples_in_use(tmp_path):
    """A copy of examples/ whose switch.toml uses the routing and risk files it has commented out."""
    folder = tmp_path / "examples"
    shutil.copytree(EXAMPLES, folder)
    config = folder / "switch.toml"
    text = config.read_text()
    for line in ('routing = "routes.toml"', 'risk = "risk.toml"'):
        assert f"# {line}" in text
        text = text.replace(f"# {line}", f"{line}  ")
    config.write_text(text)
    return config


def test_the_example_configuration_is_ok(capsys, monkeypatch):
    monkeypatch.delenv("PAYSWITCH_KEY_M_ACME", raising=False)
    assert main(["config", "check", str(EXAMPLES / "switch.toml")]) == 0
    captured = capsys.readouterr()
    assert captured.out == (f"{EXAMPLES / 'switch.toml'}: ok: 1 channels, 1 merchants, no routing file, no risk file, "
                            "no TLS, no admin service\n")
    assert captured.err == ""


def test_the_examples_with_routing_and_risk_are_ok_and_serve(examples_in_use, tmp_path, capsys):
    folder = examples_in_use.parent
    assert main(["config", "check", str(examples_in_use)]) == 0
    assert (f"routing {folder / 'routes.toml'} (version example-1), risk {folder / 'risk.toml'} (version "
            "example-risk-1)") in capsys.readouterr().out
    secret = "6578616d706c652d6f6e6c792d6e6f742d612d7265616c2d7365637265742121"
    assert secret in examples_in_use.read_text()
    server = CommandProcess("serve", "--config", str(examples_in_use), "--db", str(tmp_path / "s.db"),
                            "--listen", "127.0.0.1:0")
    try:
        with SyncSwitchClient(server.address, "m_acme", "k1", secret) as client:
            payment = client.authorize(1000, "USD", card=card(), merchant_reference="routed").payment
    finally:
        code, _ = server.stop(signal.SIGTERM)
    assert code == 0
    assert (payment.status, payment.routing_version, payment.routing_rule, payment.channel) == (
        types_pb2.PAYMENT_STATUS_AUTHORIZED, "example-1", "acme-cards", "sim")


def test_every_problem_is_listed_one_a_line_and_unset_secrets_are_notes(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("PAYSWITCH_TEST_UNSET_SECRET", raising=False)
    (tmp_path / "routes.toml").write_text('version = "v1"\n[[rules]]\nname = "a"\nmerchants = ["m_typo"]\n'
                                          'channels = ["sim", "nowhere"]\n')
    (tmp_path / "risk.toml").write_text('version = "r1"\n[[limits]]\nmerchant = "m_typo"\ncurrency = "USD"\n'
                                        'max_amount_minor = 5.5\n')
    config = tmp_path / "switch.toml"
    config.write_text(f"""[switch]
listen = "localhost"
database = "{tmp_path / 'missing' / 'switch.db'}"
grace_seconds = -5
routing = "routes.toml"
risk = "risk.toml"

[[channels]]
name = "sim"
target = "sim.example"

[[merchants]]
id = "m_acme"
channel = "simm"
[[merchants.keys]]
id = "k1"
secret_env = "PAYSWITCH_TEST_UNSET_SECRET"
""")
    assert main(["config", "check", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert lines[0] == (f"note: {config}: merchants[0].keys[0].secret_env: PAYSWITCH_TEST_UNSET_SECRET is not set "
                        "here; serve needs it set to hex of at least 16 bytes (32 or more hex digits)")
    assert [line.split(": ")[:2] for line in lines[1:]] == [
        [f"{config}:2", "switch.listen"],
        [f"{config}:4", "switch.grace_seconds"],
        [f"{config}:10", "channels[0].target"],
        [f"{config}:14", "merchants[0].channel"],
        [str(config), "switch.database"],
        [f"{tmp_path / 'routes.toml'}:4", "rules[0].merchants"],
        [f"{tmp_path / 'routes.toml'}:5", "rules[0].channels"],
        [f"{tmp_path / 'risk.toml'}:3", "limits[0].merchant"],
        [f"{tmp_path / 'risk.toml'}:5", "limits[0].max_amount_minor"],
    ]


def test_an_unreadable_file_is_one_problem(tmp_path, capsys):
    assert main(["config", "check", str(tmp_path / "absent.toml")]) == 2
    assert capsys.readouterr().err == f"{tmp_path / 'absent.toml'}: No such file or directory\n"
