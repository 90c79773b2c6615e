"""The operator's commands pointed at a live switch: what they say when the switch has no admin
service, when channel-check is aimed at it instead of a channel, when a key is asked for a merchant
the configuration does not know, and how admin answers print (snake_case, numbers as numbers)."""

import json

import pytest
from live_switch import LiveSwitch, card

from payswitch.cli.main import main
from payswitch.keys.sealing import MasterKey

TOKEN = "operator-token-0123456789"


@pytest.fixture
def admin_switch(tmp_path, monkeypatch):
    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", TOKEN)
    switch = LiveSwitch(tmp_path, admin_token=TOKEN, master_key=MasterKey.generate("mk1")).start()
    yield switch
    switch.close()


def test_admin_against_a_switch_without_an_admin_service_says_so(live, monkeypatch, capsys):
    monkeypatch.setenv("PAYSWITCH_ADMIN_TOKEN", TOKEN)
    for command in (["admin", "health"], ["keys", "list"], ["vault", "rotate"]):
        assert main([*command, "--target", live.address]) == 1
        assert capsys.readouterr().err.splitlines() == [
            f"payswitch {' '.join(command)}: the switch at {live.address} has no admin service configured (it needs "
            "an [admin] section in its configuration: docs/operations.md)"]


def test_channel_check_aimed_at_a_switch_says_once_that_it_is_not_a_channel(live, capsys):
    assert main(["channel-check", "--target", live.address]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"channel-check: {live.address} is not a PaymentChannel: it answers Inquire with UNIMPLEMENTED (is it a "
        "switch? channel-check takes a channel's address)"]
    assert "FAIL" not in captured.out


def test_admin_answers_print_snake_case_names_and_numbers(admin_switch, capsys):
    client = admin_switch.client()
    client.authorize(100, "USD", card=card(), merchant_reference="for-the-statistics")
    assert main(["admin", "health", "--target", admin_switch.address]) == 0
    (channel,) = json.loads(capsys.readouterr().out)["channels"]
    assert {"breaker_state", "in_flight", "max_in_flight", "latency_p50_us", "latency_p99_us"} <= channel.keys()
    assert not any(any(letter.isupper() for letter in name) for name in channel)
    assert type(channel["latency_p50_us"]) is int and channel["latency_p50_us"] > 0  # uint64, not a string
    assert (channel["calls"], channel["approved"]) == (1, 1)


def test_a_key_for_a_merchant_the_configuration_does_not_know_is_refused(admin_switch, capsys):
    target = ["--target", admin_switch.address]
    assert main(["keys", "create", "--merchant", "m_unknown", *target]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "INVALID_ARGUMENT invalid_argument" in captured.err
    assert "merchant_id: names no configured merchant ('m_unknown')" in captured.err
    assert main(["keys", "list", "--merchant", "m_unknown", *target]) == 1
    assert "names no configured merchant ('m_unknown')" in capsys.readouterr().err
    assert main(["keys", "list", *target]) == 0
    assert [(key["merchant_id"], key["source"]) for key in json.loads(capsys.readouterr().out)["keys"]] == [
        ("m_alpha", "config"), ("m_beta", "config")]  # nothing was created
    assert main(["keys", "create", "--merchant", "m_beta", *target]) == 0  # a configured merchant gets one
    assert json.loads(capsys.readouterr().out)["key"]["merchant_id"] == "m_beta"
