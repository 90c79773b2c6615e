"""Configuration: valid files load, invalid ones are refused naming the field."""

import pytest

from payswitch.config import ConfigError, load_config, parse_config

GOOD = {
    "switch": {"listen": "127.0.0.1:7000", "database": "x.db"},
    "channels": [{"name": "sim", "target": "in-process", "timeout_ms": 500}],
    "merchants": [{"id": "m_a", "channel": "sim", "keys": [{"id": "k1", "secret_hex": "ab" * 32}]}],
}


def test_a_valid_file_loads(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[switch]\nlisten = "127.0.0.1:7000"\n[[channels]]\nname = "sim"\ntarget = "in-process"\n'
                    '[[merchants]]\nid = "m_a"\nchannel = "sim"\n[[merchants.keys]]\nid = "k1"\n'
                    f'secret_hex = "{"ab" * 32}"\n')
    config = load_config(path)
    assert config.listen == "127.0.0.1:7000"
    assert config.signing_keys() == {("m_a", "k1"): bytes.fromhex("ab" * 32)}
    assert config.channel("sim").in_process and config.channel("sim").timeout_ms == 3000
    assert "ab" * 32 not in repr(config)


def test_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("PAYSWITCH_TEST_SECRET", "cd" * 32)
    data = {**GOOD, "merchants": [{"id": "m_a", "channel": "sim", "keys": [{"id": "k1", "secret_env": "PAYSWITCH_TEST_SECRET"}]}]}
    assert parse_config(data).signing_keys()[("m_a", "k1")] == bytes.fromhex("cd" * 32)


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["switch"].update(listen=7000), "switch.listen"),
    (lambda d: d["switch"].update(idempotency_retention_hours=12), "switch.idempotency_retention_hours"),
    (lambda d: d["switch"].update(colour="blue"), "switch.colour"),
    (lambda d: d["channels"][0].update(timeout_ms=0), "channels[0].timeout_ms"),
    (lambda d: d["channels"][0].pop("target"), "channels[0].target"),
    (lambda d: d["merchants"][0].update(channel="elsewhere"), "merchants[0].channel"),
    (lambda d: d["merchants"][0].update(id="bad id"), "merchants[0].id"),
    (lambda d: d["merchants"][0]["keys"][0].update(secret_hex="zz"), "merchants[0].keys[0].secret"),
    (lambda d: d["merchants"][0]["keys"][0].update(secret_env="X"), "merchants[0].keys[0]"),
    (lambda d: d["merchants"].append(dict(d["merchants"][0])), "merchants"),
    (lambda d: d["channels"][0].update(max_in_flight=0), "channels[0].max_in_flight"),
    (lambda d: d["channels"][0].update(breaker_failures=True), "channels[0].breaker_failures"),
    (lambda d: d.update(resolver={"late_authorization": "refund"}), "resolver.late_authorization"),
    (lambda d: d.update(resolver={"interval_seconds": 0}), "resolver.interval_seconds"),
    (lambda d: d.update(admin={"token_sha256": "ab" * 31}), "admin.token_sha256"),
    (lambda d: d.update(admin={}), "admin"),
    (lambda d: d["switch"].update(routing=1), "switch.routing"),
    (lambda d: d["switch"].update(limits={"max_concurrent_calls": 0}), "switch.limits.max_concurrent_calls"),
    (lambda d: d["switch"].update(limits={"max_calls": 5}), "switch.limits.max_calls"),
])
def test_errors_name_the_field(mutate, field):
    import copy

    data = copy.deepcopy(GOOD)
    mutate(data)
    with pytest.raises(ConfigError) as caught:
        parse_config(data, "switch.toml")
    assert f"switch.toml: {field}" in str(caught.value)


def test_unreadable_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[switch\n")
    with pytest.raises(ConfigError, match=r"broken.toml:1: not valid TOML"):
        load_config(broken)


def test_routing_resilience_resolver_and_admin_settings(tmp_path, monkeypatch):
    import hashlib

    monkeypatch.setenv("PAYSWITCH_TEST_ADMIN", "a-long-operator-token")
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "c.toml"
    path.write_text('[switch]\nrouting = "routes.toml"\n[[channels]]\nname = "sim"\ntarget = "in-process"\n'
                    'max_in_flight = 8\nbreaker_failures = 3\nbreaker_open_seconds = 2.5\n'
                    '[[merchants]]\nid = "m_a"\n[[merchants.keys]]\nid = "k1"\n'
                    f'secret_hex = "{"ab" * 32}"\n[resolver]\nlate_authorization = "void"\nmin_age_seconds = 0\n'
                    '[admin]\ntoken_env = "PAYSWITCH_TEST_ADMIN"\n')
    config = load_config(path)
    assert config.routing == folder / "routes.toml"
    channel = config.channel("sim")
    assert (channel.max_in_flight, channel.breaker_failures, channel.breaker_open_seconds) == (8, 3, 2.5)
    assert config.default_channels() == {}  # no default channel: only routing rules route m_a
    assert (config.resolver.late_authorization, config.resolver.min_age_seconds) == ("void", 0.0)
    assert config.admin.token_sha256 == hashlib.sha256(b"a-long-operator-token").digest()
    assert "a-long-operator-token" not in repr(config)


@pytest.mark.parametrize("listen, words", [
    (":99999", "port must be a number from 0 to 65535"),
    ("127.0.0.1:65536", "port must be a number from 0 to 65535"),
    ("localhost", "must be HOST:PORT"),
    ("garbage", "must be HOST:PORT"),
    ("127.0.0.1:abc", "port must be a number"),
    (":50051", "needs a host before the port"),
    ("::1:50051", "an IPv6 address goes in brackets"),
    ("[nope]:50051", "is not an IPv6 address"),
    ("300.1.1.1:50051", "is not an IPv4 address"),
    ("bad_host!:50051", "is not a host name"),
])
def test_a_listen_address_must_be_host_and_port(listen, words):
    import copy

    data = copy.deepcopy(GOOD)
    data["switch"]["listen"] = listen
    with pytest.raises(ConfigError, match=f"switch.toml: switch.listen: .*{words}"):
        parse_config(data, "switch.toml")


@pytest.mark.parametrize("listen", ["127.0.0.1:0", "0.0.0.0:50051", "[::]:50051", "[::1]:7000", "switch.internal:50051"])
def test_good_listen_addresses(listen):
    assert parse_config({**GOOD, "switch": {"listen": listen}}).listen == listen


@pytest.mark.parametrize("target, good", [
    ("in-process", True), ("bank.example:443", True), ("dns:///bank.example:443", True), ("unix:/run/bank.sock", True),
    ("bank.example", False), ("bank.example:0", False), ("dns:", False),
])
def test_channel_targets(target, good):
    data = {**GOOD, "channels": [{"name": "sim", "target": target}]}
    if good:
        assert parse_config(data).channel("sim").target == target
    else:
        with pytest.raises(ConfigError, match="channels\\[0\\].target"):
            parse_config(data)


def test_every_problem_is_reported_at_once_each_on_its_line(tmp_path):
    path = tmp_path / "switch.toml"
    path.write_text('[switch]\nlisten = ":99999"\ngrace_seconds = -5\n\n[[channels]]\nname = "sim"\n'
                    'target = "in-process"\ntimeout_ms = 0\n\n[[merchants]]\nid = "m_a"\nchannel = "simm"\n'
                    '[[merchants.keys]]\nid = "k1"\nsecret_hex = "abcd"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [line.split(": ", 2)[:2] for line in str(caught.value).splitlines()] == [
        [f"{path}:2", "switch.listen"], [f"{path}:3", "switch.grace_seconds"], [f"{path}:8", "channels[0].timeout_ms"],
        [f"{path}:12", "merchants[0].channel"], [f"{path}:15", "merchants[0].keys[0].secret_hex"]]


def test_a_wrong_secret_is_never_quoted(monkeypatch):
    almost = "ab" * 15 + "zz"
    monkeypatch.setenv("PAYSWITCH_TEST_SECRET", almost)
    for key in ({"id": "k1", "secret_hex": almost}, {"id": "k1", "secret_env": "PAYSWITCH_TEST_SECRET"}):
        data = {**GOOD, "merchants": [{"id": "m_a", "keys": [key]}]}
        with pytest.raises(ConfigError, match="hex of at least 16 bytes") as caught:
            parse_config(data)
        assert almost not in str(caught.value) and almost[:20] not in str(caught.value)


def test_a_merchant_may_have_no_configured_key():
    """Its keys are then all created through SwitchAdmin (docs/keys.md)."""
    config = parse_config({**GOOD, "merchants": [{"id": "m_a", "channel": "sim"}]})
    assert config.merchant_ids() == {"m_a"} and config.signing_keys() == {}


def test_check_notes_unset_secrets_instead_of_refusing(tmp_path):
    from payswitch.config import check_config

    path = tmp_path / "switch.toml"
    path.write_text('[[channels]]\nname = "sim"\ntarget = "in-process"\n[[merchants]]\nid = "m_a"\n'
                    '[[merchants.keys]]\nid = "k1"\nsecret_env = "PAYSWITCH_TEST_UNSET"\n'
                    '[admin]\ntoken_env = "PAYSWITCH_TEST_UNSET_TOKEN"\n')
    report = check_config(path, environment={})
    assert report.problems == [] and report.config.merchant_ids() == {"m_a"}
    assert [note.split(": ")[1] for note in report.notes] == ["merchants[0].keys[0].secret_env", "admin.token_env"]
    with pytest.raises(ConfigError, match="PAYSWITCH_TEST_UNSET is not set"):
        load_config(path, environment={})
