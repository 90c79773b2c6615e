"""The switch's configuration: TOML read once into frozen dataclasses, with errors naming the field.

    [switch]
    listen = "127.0.0.1:50051"
    database = "payswitch.db"          # SQLite file; --db overrides
    grace_seconds = 10                 # in-flight calls get this long on SIGTERM
    idempotency_retention_hours = 48   # at least 24

    [[channels]]
    name = "sim"
    target = "127.0.0.1:50061"         # or "in-process" for the built-in simulator
    timeout_ms = 3000

    [[merchants]]
    id = "m_acme"
    channel = "sim"                    # default channel (routing rules replace this later)
    [[merchants.keys]]
    id = "k1"
    secret_hex = "..."                 # or secret_env = "NAME" to read it from the environment
"""

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_IDENTIFIER = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    target: str
    timeout_ms: int = 3000

    @property
    def in_process(self) -> bool:
        return self.target == "in-process"


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    secret: bytes = field(repr=False)


@dataclass(frozen=True)
class MerchantConfig:
    merchant_id: str
    channel: str
    keys: tuple[SigningKey, ...]


@dataclass(frozen=True)
class SwitchConfig:
    listen: str = "127.0.0.1:50051"
    database: str = "payswitch.db"
    grace_seconds: float = 10.0
    idempotency_retention_hours: int = 48
    channels: tuple[ChannelConfig, ...] = ()
    merchants: tuple[MerchantConfig, ...] = ()

    def signing_keys(self) -> dict[tuple[str, str], bytes]:
        return {(m.merchant_id, k.key_id): k.secret for m in self.merchants for k in m.keys}

    def channel(self, name: str) -> ChannelConfig:
        return next(c for c in self.channels if c.name == name)


class _Reader:
    """Reads typed values out of parsed TOML, naming the path of anything wrong."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, path: str, message: str):
        raise ConfigError(f"{self.source}: {path}: {message}")

    def get(self, table: dict, key: str, path: str, kind: type, default=None, required=False):
        if key not in table:
            if required:
                self.fail(f"{path}.{key}" if path else key, "is required")
            return default
        value = table[key]
        if kind is float and type(value) is int:
            value = float(value)
        if type(value) is not kind:
            self.fail(f"{path}.{key}" if path else key, f"must be a {kind.__name__}, not {type(value).__name__}")
        return value

    def identifier(self, table, key, path):
        value = self.get(table, key, path, str, required=True)
        if not _IDENTIFIER.match(value):
            self.fail(f"{path}.{key}", "must be 1 to 64 of A-Z a-z 0-9 _ - .")
        return value

    def unknown_keys(self, table: dict, allowed: set[str], path: str):
        for key in table:
            if key not in allowed:
                self.fail(f"{path}.{key}" if path else key, "is not a known setting")


def _read_secret(reader: _Reader, table: dict, path: str) -> bytes:
    if ("secret_hex" in table) == ("secret_env" in table):
        reader.fail(path, "needs exactly one of secret_hex or secret_env")
    if "secret_env" in table:
        name = reader.get(table, "secret_env", path, str)
        text = os.environ.get(name)
        if text is None:
            reader.fail(f"{path}.secret_env", f"environment variable {name} is not set")
    else:
        text = reader.get(table, "secret_hex", path, str)
    if not _HEX.match(text) or len(text) < 32:
        reader.fail(f"{path}.secret", "must be at least 16 bytes written as hex")
    return bytes.fromhex(text)


def parse_config(data: dict, source: str = "<config>") -> SwitchConfig:
    reader = _Reader(source)
    reader.unknown_keys(data, {"switch", "channels", "merchants"}, "")
    switch = reader.get(data, "switch", "", dict, default={})
    reader.unknown_keys(switch, {"listen", "database", "grace_seconds", "idempotency_retention_hours"}, "switch")
    retention = reader.get(switch, "idempotency_retention_hours", "switch", int, default=48)
    if retention < 24:
        reader.fail("switch.idempotency_retention_hours", "must be at least 24")

    channels = []
    for index, table in enumerate(reader.get(data, "channels", "", list, default=[])):
        path = f"channels[{index}]"
        reader.unknown_keys(table, {"name", "target", "timeout_ms"}, path)
        timeout_ms = reader.get(table, "timeout_ms", path, int, default=3000)
        if not 1 <= timeout_ms <= 600_000:
            reader.fail(f"{path}.timeout_ms", "must be between 1 and 600000")
        channels.append(ChannelConfig(reader.identifier(table, "name", path),
                                      reader.get(table, "target", path, str, required=True), timeout_ms))
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        reader.fail("channels", "channel names must be unique")

    merchants = []
    for index, table in enumerate(reader.get(data, "merchants", "", list, default=[])):
        path = f"merchants[{index}]"
        reader.unknown_keys(table, {"id", "channel", "keys"}, path)
        channel = reader.get(table, "channel", path, str, required=True)
        if channel not in names:
            reader.fail(f"{path}.channel", f"names no configured channel ({channel!r})")
        keys = []
        for key_index, key_table in enumerate(reader.get(table, "keys", path, list, required=True)):
            key_path = f"{path}.keys[{key_index}]"
            reader.unknown_keys(key_table, {"id", "secret_hex", "secret_env"}, key_path)
            keys.append(SigningKey(reader.identifier(key_table, "id", key_path), _read_secret(reader, key_table, key_path)))
        if not keys:
            reader.fail(f"{path}.keys", "needs at least one key")
        merchants.append(MerchantConfig(reader.identifier(table, "id", path), channel, tuple(keys)))
    ids = [m.merchant_id for m in merchants]
    if len(set(ids)) != len(ids):
        reader.fail("merchants", "merchant ids must be unique")

    return SwitchConfig(
        listen=reader.get(switch, "listen", "switch", str, default="127.0.0.1:50051"),
        database=reader.get(switch, "database", "switch", str, default="payswitch.db"),
        grace_seconds=reader.get(switch, "grace_seconds", "switch", float, default=10.0),
        idempotency_retention_hours=retention,
        channels=tuple(channels),
        merchants=tuple(merchants),
    )


def load_config(path: str | Path) -> SwitchConfig:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    return parse_config(data, str(path))
