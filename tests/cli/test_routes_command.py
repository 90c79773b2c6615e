"""`payswitch routes check|explain` on real files: exit codes, line-numbered problems, masked cards."""

import subprocess
import sys
from pathlib import Path

import pytest

from payswitch.cli.main import main

ROUTING = """\
version = "2026-11-24.1"

[[bins]]
low = "400000"
high = "499999"
scheme = "visa"
country = "DE"
card_type = "debit"

[[rules]]
name = "eu-debit"
currencies = ["EUR"]
countries = ["DE"]
split = { acquirer_a = 70, acquirer_b = 30 }

[[rules]]
name = "wallets"
methods = ["wallet"]
channels = ["acquirer_b"]
"""

BROKEN = """\
version = "2026-11-24.2"

[[rules]]
name = "eu-debit"
currencies = ["EUR", "EURO"]
min_amount_minor = 10.50
channels = ["acquirer_a"]
"""

SWITCH = """\
[[channels]]
name = "acquirer_a"
target = "in-process"
"""


@pytest.fixture
def routing_file(tmp_path):
    path = tmp_path / "routing.toml"
    path.write_text(ROUTING)
    return path


def test_check_a_good_file(routing_file, capsys):
    assert main(["routes", "check", str(routing_file)]) == 0
    assert capsys.readouterr().out == f"{routing_file}: ok: version 2026-11-24.1, 1 bins, 2 rules\n"


def test_check_a_broken_file_lists_every_problem_with_its_line(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    assert main(["routes", "check", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{path}:5: rules[0].currencies: 'EURO'")
    assert lines[1].startswith(f"{path}:6: rules[0].min_amount_minor: must be an integer")


def test_check_against_known_channel_names(routing_file, tmp_path, capsys):
    assert main(["routes", "check", str(routing_file), "--channels", "acquirer_a,acquirer_b"]) == 0
    capsys.readouterr()
    assert main(["routes", "check", str(routing_file), "--channels", "acquirer_a"]) == 1
    assert [line.split(": ", 2)[:2] for line in capsys.readouterr().err.splitlines()] == [
        [f"{routing_file}:14", "rules[0].split"], [f"{routing_file}:19", "rules[1].channels"]]
    switch = tmp_path / "switch.toml"
    switch.write_text(SWITCH)
    assert main(["routes", "check", str(routing_file), "--config", str(switch)]) == 1
    assert "names no configured channel: acquirer_b" in capsys.readouterr().err


def test_check_with_an_unusable_switch_config(routing_file, tmp_path, capsys):
    assert main(["routes", "check", str(routing_file), "--config", str(tmp_path / "absent.toml")]) == 1
    assert "absent.toml" in capsys.readouterr().err


def test_check_a_missing_file(tmp_path, capsys):
    assert main(["routes", "check", str(tmp_path / "absent.toml")]) == 1
    assert capsys.readouterr().err.startswith(f"{tmp_path / 'absent.toml'}: ")


def test_explain_a_card_payment_prints_only_bin_and_last_four(routing_file, capsys):
    card = "4000056655665556"
    code = main(["routes", "explain", str(routing_file), "--merchant", "m_acme", "--card", card,
                 "--amount", "1050", "--currency", "EUR"])
    out = capsys.readouterr().out
    assert code == 0
    assert card not in out and "400005******5556" in out
    assert "1. eu-debit (line 10): matched" in out
    assert "split acquirer_a 70 (70.0%), acquirer_b 30 (30.0%)" in out


def test_explain_a_bin_and_a_wallet(routing_file, capsys):
    assert main(["routes", "explain", str(routing_file), "--merchant", "m", "--bin", "400005",
                 "--amount", "1", "--currency", "EUR"]) == 0
    assert "[[bins]] entry at line 3: 400000-499999" in capsys.readouterr().out
    assert main(["routes", "explain", str(routing_file), "--merchant", "m", "--wallet", "applepay",
                 "--amount", "1", "--currency", "USD"]) == 0
    out = capsys.readouterr().out
    assert "2. wallets (line 16): matched" in out and "try acquirer_b" in out


def test_explain_exits_2_when_no_rule_matches(routing_file, capsys):
    assert main(["routes", "explain", str(routing_file), "--merchant", "m", "--bin", "510000",
                 "--amount", "1", "--currency", "EUR"]) == 2
    out = capsys.readouterr().out
    assert "no rule matches" in out and "scheme mastercard" in out


def test_explain_a_broken_file_exits_1(tmp_path, capsys):
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN)
    assert main(["routes", "explain", str(path), "--merchant", "m", "--bin", "400000", "--amount", "1",
                 "--currency", "EUR"]) == 1
    assert ":5: rules[0].currencies" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, words", [
    ("--amount", "10.50", "whole number of minor units"),
    ("--amount", "-5", "whole number of minor units"),
    ("--currency", "eur", "ISO 4217"),
    ("--bin", "4000", "6 to 11 digits"),
])
def test_explain_refuses_bad_arguments(routing_file, capsys, option, value, words):
    arguments = {"--merchant": "m", "--bin": "400000", "--amount": "100", "--currency": "EUR", option: value}
    with pytest.raises(SystemExit) as exit_:
        main(["routes", "explain", str(routing_file), *(item for pair in arguments.items() for item in pair)])
    assert exit_.value.code == 2
    assert words in capsys.readouterr().err


def test_explain_needs_exactly_one_of_bin_card_and_wallet(routing_file, capsys):
    with pytest.raises(SystemExit):
        main(["routes", "explain", str(routing_file), "--merchant", "m", "--amount", "1", "--currency", "EUR"])
    with pytest.raises(SystemExit):
        main(["routes", "explain", str(routing_file), "--merchant", "m", "--bin", "400000", "--wallet", "x",
              "--amount", "1", "--currency", "EUR"])


def test_the_console_script_runs_routes_check(routing_file, tmp_path):
    script = Path(sys.executable).with_name("payswitch")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "payswitch.cli.main"]
    broken = tmp_path / "broken.toml"
    broken.write_text(BROKEN)
    good = subprocess.run([*command, "routes", "check", str(routing_file)], capture_output=True, text=True,
                          timeout=60)
    assert (good.returncode, good.stdout.strip()) == (0, f"{routing_file}: ok: version 2026-11-24.1, 1 bins, 2 rules")
    bad = subprocess.run([*command, "routes", "check", str(broken)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and f"{broken}:6: rules[0].min_amount_minor" in bad.stderr


SWITCH_WITH_MERCHANTS = """\
[[channels]]
name = "acquirer_a"
target = "in-process"
[[channels]]
name = "acquirer_b"
target = "in-process"
[[merchants]]
id = "m_acme"
channel = "acquirer_a"
[[merchants]]
id = "m_plain"
[[merchants.keys]]
id = "k1"
secret_env = "PAYSWITCH_TEST_NOT_SET_ANYWHERE"
"""


@pytest.fixture
def switch_file(tmp_path):
    path = tmp_path / "switch.toml"
    path.write_text(SWITCH_WITH_MERCHANTS)
    return path


def test_check_refuses_a_rule_naming_a_merchant_the_switch_does_not_know(tmp_path, switch_file, capsys):
    path = tmp_path / "routes.toml"
    path.write_text('version = "v1"\n[[rules]]\nname = "acme"\nmerchants = [\n  "m_acme",\n  "m_acmee",\n]\n'
                    'channels = ["acquirer_a"]\n')
    assert main(["routes", "check", str(path)]) == 0  # without the configuration any id is a merchant
    capsys.readouterr()
    assert main(["routes", "check", str(path), "--config", str(switch_file)]) == 1
    assert capsys.readouterr().err.splitlines() == [
        f"{path}:6: rules[0].merchants: names no configured merchant ('m_acmee')"]


def test_explain_with_the_configuration_names_the_default_channel(routing_file, switch_file, capsys):
    payment = ["--bin", "510000", "--amount", "1", "--currency", "EUR"]
    assert main(["routes", "explain", str(routing_file), "--config", str(switch_file), "--merchant", "m_acme",
                 *payment]) == 2
    assert capsys.readouterr().out.splitlines()[-1] == f"{switch_file}: merchant m_acme's default channel is acquirer_a"
    assert main(["routes", "explain", str(routing_file), "--config", str(switch_file), "--merchant", "m_plain",
                 *payment]) == 2
    assert "m_plain has no default channel: the switch answers FAILED_PRECONDITION no_route" in capsys.readouterr().out


def test_explain_with_the_configuration_refuses_an_unknown_merchant(routing_file, switch_file, capsys):
    assert main(["routes", "explain", str(routing_file), "--config", str(switch_file), "--merchant", "m_nobody",
                 "--bin", "400000", "--amount", "1", "--currency", "EUR"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.strip() == (f"--merchant m_nobody: {switch_file} configures no such merchant "
                                    "(it has m_acme, m_plain)")
