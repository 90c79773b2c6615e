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
    with pytest.raises(ConfigError, match="line 1"):
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
