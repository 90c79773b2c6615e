"""The switch's configuration: TOML read once into frozen dataclasses, with errors naming the field.

    [switch]
    listen = "127.0.0.1:50051"
    database = "payswitch.db"          # SQLite file; --db overrides
    grace_seconds = 10                 # in-flight calls get this long on SIGTERM
    idempotency_retention_hours = 48   # at least 24
    routing = "routes.toml"            # optional routing file (docs/routing.md), relative to this file
    risk = "risk.toml"                 # optional risk rules (docs/risk.md); SIGHUP reloads both files

    [switch.limits]                    # per-caller bounds (server/limits.py has every key and default)
    max_message_bytes = 4194304
    max_concurrent_calls = 2000        # beyond: RESOURCE_EXHAUSTED
    min_client_ping_interval_seconds = 10

    [switch.tls]                       # TLS, and with client_ca mutual TLS (docs/tls.md)
    cert = "server.pem"
    key = "server.key"
    client_ca = "clients-ca.pem"       # require a client certificate chaining to this CA
    [[switch.tls.clients]]             # which merchants a client certificate may act for
    identity = "spiffe://corp/checkout"
    merchants = ["m_acme"]             # or "*"; admin = true lets it call SwitchAdmin

    [[channels]]
    name = "sim"
    target = "127.0.0.1:50061"         # or "in-process" for the built-in simulator
    tls_ca = "bank-ca.pem"             # optional: TLS to the channel; tls_cert/tls_key for mutual TLS
    timeout_ms = 3000                  # per call, and never past the caller's own deadline
    max_in_flight = 64                 # calls at once; beyond, a call waits for a slot, then fails over
    slot_wait_ms = 250                 # how long it waits (at most half its timeout); then RESOURCE_EXHAUSTED
    breaker_failures = 5               # consecutive technical failures that open the circuit
    breaker_open_seconds = 10          # how long it stays open before half-open probes

    [[merchants]]
    id = "m_acme"
    channel = "sim"                    # optional: used when no routing rule matches
    [[merchants.keys]]
    id = "k1"
    secret_hex = "..."                 # or secret_env = "NAME" to read it from the environment

    [resolver]                         # asks channels (Inquire) about operations of unknown outcome
    interval_seconds = 1               # how often it looks for work
    min_age_seconds = 5                # an operation younger than this is left to its own call
    max_backoff_seconds = 300          # between two inquiries about one operation
    report_after_seconds = 900         # a pending operation older than this is reported (logged, listed)
    late_authorization = "keep"        # or "void": void an authorization approved after the caller heard PENDING
    resend_window_seconds = 60         # an authorization cut off by a stop waits this long for its caller's retry

    [admin]                            # serves SwitchAdmin (docs/operations.md) when present
    token_sha256 = "..."               # hex SHA-256 of the bearer token; or token_env = "NAME" (the token)
"""

import dataclasses
import hashlib
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .server.limits import ServerLimits
from .tls import CHANNEL_TLS_KEYS, ClientTls, ServerTls, TlsConfigError, parse_channel_tls, parse_server_tls
from .vocabulary import NAME_WANTED, is_name

_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+\Z")


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the field."""


@dataclass(frozen=True)
class ChannelConfig:
    name: str
    target: str
    timeout_ms: int = 3000
    max_in_flight: int = 64
    slot_wait_ms: int = 250
    breaker_failures: int = 5
    breaker_open_seconds: float = 10.0
    tls: ClientTls | None = None

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
    channel: str | None  # the default channel when no routing rule matches
    keys: tuple[SigningKey, ...]


@dataclass(frozen=True)
class ResolverConfig:
    interval_seconds: float = 1.0
    min_age_seconds: float = 5.0
    max_backoff_seconds: float = 300.0
    report_after_seconds: float = 900.0
    late_authorization: str = "keep"
    # How long an authorization interrupted by a stop waits for its caller's retry before Inquire.
    resend_window_seconds: float = 60.0


@dataclass(frozen=True)
class AdminConfig:
    token_sha256: bytes = field(repr=False)


@dataclass(frozen=True)
class SwitchConfig:
    listen: str = "127.0.0.1:50051"
    database: str = "payswitch.db"
    grace_seconds: float = 10.0
    idempotency_retention_hours: int = 48
    channels: tuple[ChannelConfig, ...] = ()
    merchants: tuple[MerchantConfig, ...] = ()
    routing: Path | None = None
    risk: Path | None = None
    limits: ServerLimits = ServerLimits()
    tls: ServerTls | None = None
    resolver: ResolverConfig = ResolverConfig()
    admin: AdminConfig | None = None

    def signing_keys(self) -> dict[tuple[str, str], bytes]:
        return {(m.merchant_id, k.key_id): k.secret for m in self.merchants for k in m.keys}

    def channel(self, name: str) -> ChannelConfig:
        return next(c for c in self.channels if c.name == name)

    def default_channels(self) -> dict[str, str]:
        return {m.merchant_id: m.channel for m in self.merchants if m.channel is not None}


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

    def number(self, table: dict, key: str, path: str, kind: type, low, high, default):
        value = self.get(table, key, path, kind, default=default)
        if not low <= value <= high:
            self.fail(f"{path}.{key}", f"must be between {low} and {high}")
        return value

    def identifier(self, table, key, path):
        value = self.get(table, key, path, str, required=True)
        if not is_name(value):
            self.fail(f"{path}.{key}", f"must be {NAME_WANTED}")
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


def _read_resolver(reader: _Reader, table: dict) -> ResolverConfig:
    reader.unknown_keys(table, {"interval_seconds", "min_age_seconds", "max_backoff_seconds",
                                "report_after_seconds", "late_authorization", "resend_window_seconds"}, "resolver")
    policy = reader.get(table, "late_authorization", "resolver", str, default="keep")
    if policy not in ("keep", "void"):
        reader.fail("resolver.late_authorization", 'must be "keep" or "void"')
    return ResolverConfig(
        interval_seconds=reader.number(table, "interval_seconds", "resolver", float, 0.01, 3600.0, 1.0),
        min_age_seconds=reader.number(table, "min_age_seconds", "resolver", float, 0.0, 86_400.0, 5.0),
        max_backoff_seconds=reader.number(table, "max_backoff_seconds", "resolver", float, 1.0, 86_400.0, 300.0),
        report_after_seconds=reader.number(table, "report_after_seconds", "resolver", float, 1.0, 30 * 86_400.0,
                                           900.0),
        late_authorization=policy,
        resend_window_seconds=reader.number(table, "resend_window_seconds", "resolver", float, 0.0, 86_400.0, 60.0))


def _read_limits(reader: _Reader, table: dict) -> ServerLimits:
    values = {}
    for limit in dataclasses.fields(ServerLimits):
        if limit.name in table:
            kind = int if limit.type in (int, "int") else float
            values[limit.name] = reader.number(table, limit.name, "switch.limits", kind, 1, 10**9, limit.default)
    reader.unknown_keys(table, {limit.name for limit in dataclasses.fields(ServerLimits)}, "switch.limits")
    return ServerLimits(**values)


def _tls(reader: _Reader, parse, *args, **kwargs):
    """Certificates are read and checked now, so a bad path or a key that does not match its
    certificate stops the start instead of the first handshake."""
    try:
        return parse(*args, **kwargs)
    except TlsConfigError as error:
        reader.fail(error.field, error.problem)


def _read_admin(reader: _Reader, table: dict) -> AdminConfig:
    reader.unknown_keys(table, {"token_sha256", "token_env"}, "admin")
    if ("token_sha256" in table) == ("token_env" in table):
        reader.fail("admin", "needs exactly one of token_sha256 or token_env")
    if "token_env" in table:
        name = reader.get(table, "token_env", "admin", str)
        token = os.environ.get(name)
        if not token or len(token) < 16:
            reader.fail("admin.token_env", f"environment variable {name} must hold a token of at least 16 characters")
        return AdminConfig(hashlib.sha256(token.encode()).digest())
    text = reader.get(table, "token_sha256", "admin", str)
    if not _HEX.match(text) or len(text) != 64:
        reader.fail("admin.token_sha256", "must be a SHA-256 digest written as 64 hex digits")
    return AdminConfig(bytes.fromhex(text))


def parse_config(data: dict, source: str = "<config>", base_directory: Path = Path(".")) -> SwitchConfig:
    reader = _Reader(source)
    reader.unknown_keys(data, {"switch", "channels", "merchants", "resolver", "admin"}, "")
    switch = reader.get(data, "switch", "", dict, default={})
    reader.unknown_keys(switch, {"listen", "database", "grace_seconds", "idempotency_retention_hours", "routing",
                                 "risk", "limits", "tls"}, "switch")
    routing = reader.get(switch, "routing", "switch", str)
    risk = reader.get(switch, "risk", "switch", str)
    retention = reader.get(switch, "idempotency_retention_hours", "switch", int, default=48)
    if retention < 24:
        reader.fail("switch.idempotency_retention_hours", "must be at least 24")

    channels = []
    for index, table in enumerate(reader.get(data, "channels", "", list, default=[])):
        path = f"channels[{index}]"
        reader.unknown_keys(table, {"name", "target", "timeout_ms", "max_in_flight", "slot_wait_ms",
                                    "breaker_failures", "breaker_open_seconds", *CHANNEL_TLS_KEYS}, path)
        channels.append(ChannelConfig(
            reader.identifier(table, "name", path), reader.get(table, "target", path, str, required=True),
            timeout_ms=reader.number(table, "timeout_ms", path, int, 1, 600_000, 3000),
            max_in_flight=reader.number(table, "max_in_flight", path, int, 1, 100_000, 64),
            slot_wait_ms=reader.number(table, "slot_wait_ms", path, int, 1, 60_000, 250),
            breaker_failures=reader.number(table, "breaker_failures", path, int, 1, 10_000, 5),
            breaker_open_seconds=reader.number(table, "breaker_open_seconds", path, float, 0.01, 86_400.0, 10.0),
            tls=_tls(reader, parse_channel_tls, table, base_directory, where=path)))
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        reader.fail("channels", "channel names must be unique")

    merchants = []
    for index, table in enumerate(reader.get(data, "merchants", "", list, default=[])):
        path = f"merchants[{index}]"
        reader.unknown_keys(table, {"id", "channel", "keys"}, path)
        channel = reader.get(table, "channel", path, str)
        if channel is not None and channel not in names:
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
        routing=None if routing is None else base_directory / routing,
        risk=None if risk is None else base_directory / risk,
        limits=_read_limits(reader, reader.get(switch, "limits", "switch", dict, default={})),
        tls=_tls(reader, parse_server_tls, switch["tls"], base_directory, known_merchants=ids) if "tls" in switch
        else None,
        resolver=_read_resolver(reader, reader.get(data, "resolver", "", dict, default={})),
        admin=_read_admin(reader, data["admin"]) if "admin" in data else None,
    )


def load_config(path: str | Path) -> SwitchConfig:
    """The configuration in `path`; a relative routing path is taken from the file's own directory."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: {error}") from None
    except OSError as error:
        raise ConfigError(f"{path}: {error.strerror}") from None
    return parse_config(data, str(path), Path(path).parent)
