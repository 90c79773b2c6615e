"""The switch's configuration: TOML read once into frozen dataclasses, every problem named by its line
and field. examples/switch.toml is a file that starts as it is.

    [switch]
    listen = "127.0.0.1:50051"         # HOST:PORT; 0.0.0.0:PORT or [::]:PORT for every interface
    database = "payswitch.db"          # SQLite file, relative to the working directory; --db overrides
    grace_seconds = 10                 # in-flight calls get this long on SIGTERM (0 to 3600)
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
    target = "127.0.0.1:50061"         # HOST:PORT, a gRPC URI (dns:///host:port, unix:path) or "in-process"
    tls_ca = "bank-ca.pem"             # optional: TLS to the channel; tls_cert/tls_key for mutual TLS
    timeout_ms = 3000                  # per call, and never past the caller's own deadline
    max_in_flight = 64                 # calls at once; beyond, a call waits for a slot, then fails over
    slot_wait_ms = 250                 # how long it waits (at most half its timeout); then RESOURCE_EXHAUSTED
    breaker_failures = 5               # consecutive technical failures that open the circuit
    breaker_open_seconds = 10          # how long it stays open before half-open probes

    [[merchants]]                      # the merchants the switch knows: nothing may name another
    id = "m_acme"
    channel = "sim"                    # optional: used when no routing rule matches
    [[merchants.keys]]                 # optional when every key is created through SwitchAdmin (docs/keys.md)
    id = "k1"
    secret_hex = "..."                 # hex of at least 16 bytes; or secret_env = "NAME", a variable holding it

    [resolver]                         # asks channels (Inquire) about operations of unknown outcome
    interval_seconds = 1               # how often it looks for work
    min_age_seconds = 5                # an operation younger than this is left to its own call
    max_backoff_seconds = 300          # between two inquiries about one operation
    report_after_seconds = 900         # a pending operation older than this is reported (logged, listed)
    late_authorization = "keep"        # or "void": void an authorization approved after the caller heard PENDING
    resend_window_seconds = 60         # an authorization cut off by a stop waits this long for its caller's retry

    [admin]                            # serves SwitchAdmin (docs/operations.md) when present
    token_sha256 = "..."               # hex SHA-256 of the bearer token; or token_env = "NAME" (the token)

Like the routing and risk files (payswitch.toml_lines), every mistake is reported at once.
check_config() reads a file for `payswitch config check`: a variable named by secret_env or token_env
that is not set is then a note, not a problem, since the check may run where the secrets are not.
"""

import dataclasses
import hashlib
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from . import toml_lines
from .server.limits import ServerLimits
from .tls import CHANNEL_TLS_KEYS, ClientTls, ServerTls, TlsConfigError, parse_channel_tls, parse_server_tls
from .toml_lines import Problem, SourceLines, TableChecker, array_of_tables, decode, kind, read_text
from .vocabulary import NAME_WANTED, SECRET_WANTED, is_name, secret_from_hex

IN_PROCESS = "in-process"
#: Channel targets gRPC resolves by its own scheme; anything else must be HOST:PORT.
_URI_SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:")
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                        r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?\Z")
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}\Z")
_MIN_TOKEN_CHARACTERS = 16

_TOP_KEYS = ("switch", "channels", "merchants", "resolver", "admin")
_SWITCH_KEYS = ("listen", "database", "grace_seconds", "idempotency_retention_hours", "routing", "risk", "limits",
                "tls")
_CHANNEL_KEYS = ("name", "target", "timeout_ms", "max_in_flight", "slot_wait_ms", "breaker_failures",
                 "breaker_open_seconds", *sorted(CHANNEL_TLS_KEYS))
_RESOLVER_KEYS = ("interval_seconds", "min_age_seconds", "max_backoff_seconds", "report_after_seconds",
                  "late_authorization", "resend_window_seconds")


class ConfigError(toml_lines.ConfigError):
    """The configuration is unusable; `problems` lists every mistake, str() one per line, each naming
    the file (and line) and the field."""


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
        return self.target == IN_PROCESS


@dataclass(frozen=True)
class SigningKey:
    key_id: str
    #: None only in a file read for `config check` whose secret_env variable is not set there.
    secret: bytes | None = field(repr=False)


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
    #: None only in a file read for `config check` whose token_env variable is not set there.
    token_sha256: bytes | None = field(repr=False)


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

    def channel_names(self) -> frozenset[str]:
        return frozenset(channel.name for channel in self.channels)

    def merchant_ids(self) -> frozenset[str]:
        """The merchants the switch knows; routing rules, risk limits and keys may name no other."""
        return frozenset(merchant.merchant_id for merchant in self.merchants)

    def default_channels(self) -> dict[str, str]:
        return {m.merchant_id: m.channel for m in self.merchants if m.channel is not None}


@dataclass(frozen=True)
class ConfigCheck:
    """What `payswitch config check` learns from a file: the configuration as far as it could be read
    (None when the file is unreadable or not TOML), every problem, and notes that are not problems."""

    source: str
    config: SwitchConfig | None
    problems: list[Problem]
    notes: list[str]


def listen_address_problem(address: str) -> str | None:
    """What is wrong with a listen address, or None: HOST:PORT, port 0 meaning any free one."""
    return _address_problem(address, lowest_port=0)


def channel_target_problem(target: str) -> str | None:
    """What is wrong with a channel target, or None: "in-process", a gRPC URI, or HOST:PORT."""
    if target == IN_PROCESS:
        return None
    if target.startswith(_URI_SCHEMES):
        return None if target.partition(":")[2].strip("/") else "names no address after its scheme"
    problem = _address_problem(target, lowest_port=1)
    return None if problem is None else f'{problem}; or "{IN_PROCESS}", or a gRPC URI such as dns:///host:port'


def _address_problem(address: str, lowest_port: int) -> str | None:
    host, colon, port = address.rpartition(":")
    shown = repr(address[:80])
    if not colon:
        return f"must be HOST:PORT, such as 127.0.0.1:50051, got {shown}"
    if not (port.isascii() and port.isdigit() and lowest_port <= int(port) <= 65535):
        return f"the port must be a number from {lowest_port} to 65535, got {shown}"
    if not host:
        return (f"needs a host before the port (127.0.0.1 for this machine only, 0.0.0.0 or [::] for every "
                f"interface), got {shown}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return f"{host} is not an IPv6 address in brackets, got {shown}"
        return None
    if ":" in host:
        return f"an IPv6 address goes in brackets, as [::1]:{port}, got {shown}"
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            return f"{host!r} is not an IPv4 address, got {shown}"
        return None
    if not _HOST_NAME.match(host):
        return f"{host[:80]!r} is not a host name, got {shown}"
    return None


class _Reader:
    """Reads one file's tables, collecting every problem with its line (payswitch.toml_lines)."""

    def __init__(self, source: str, lines: SourceLines, base_directory: Path, environment: Mapping[str, str],
                 notes: list[str] | None):
        self.source = source
        self.lines = lines
        self.base_directory = base_directory
        self.environment = environment
        self.notes = notes
        self.problems: list[Problem] = []

    def checker(self, header: int | None, path: str) -> TableChecker:
        return TableChecker(self.lines, self.problems, header, path)

    def fail_table(self, check: TableChecker, message: str) -> None:
        """A problem with a table as a whole (not one of its keys), on its header's line."""
        self.problems.append(Problem(check.line, check.path, message))

    def table(self, parent: dict, key: str, path: str) -> tuple[dict, TableChecker] | None:
        """The [path] table under `parent`, with a checker for its keys; None when absent or not a table."""
        if key not in parent:
            return None
        value = parent[key]
        if not isinstance(value, dict):
            line = self.lines.top_level_line(path) if "." not in path else None
            self.problems.append(Problem(line, path, f"must be a table ([{path}]), not {kind(value)}"))
            return None
        return value, self.checker(self.lines.table_header(path), path)

    def text(self, check: TableChecker, table: dict, key: str, wanted: str = "a non-empty string",
             valid=bool, required: bool = False) -> str | None:
        return check.string(table, key, valid, wanted, required=required)

    def address(self, check: TableChecker, table: dict, key: str, problem_of, required: bool = False):
        value = check.string(table, key, lambda _text: True, "", required=required)
        if value is not None and (problem := problem_of(value)) is not None:
            check.fail(key, problem)
            return None
        return value

    def number(self, check: TableChecker, table: dict, key: str, low: float, high: float, default: float) -> float:
        """A float setting; an integer is taken as one. A wrong value is a problem, and `default` is used."""
        if key not in table:
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            check.fail(key, f"must be a number, not {kind(value)}")
        elif not low <= value <= high:
            check.fail(key, f"must be {low:g} to {high:g}, got {value!r}")
        else:
            return float(value)
        return default

    def integer(self, check: TableChecker, table: dict, key: str, low: int, high: int, default: int) -> int:
        value = check.integer(table, key, low, high)
        return default if value is None else value

    def from_environment(self, check: TableChecker, table: dict, key: str, wanted: str) -> str | None:
        """The value of the variable that table[key] names; None (after a problem, or a note when notes
        are kept) when it is not set."""
        name = check.string(table, key, _ENVIRONMENT_NAME.match, "an environment variable name", required=True)
        if name is None:
            return None
        value = self.environment.get(name)
        if value is None:
            if self.notes is not None:
                self.notes.append(f"{self.source}: {check.path}.{key}: {name} is not set here; serve needs it set "
                                  f"to {wanted}")
            else:
                check.fail(key, f"environment variable {name} is not set; it must hold {wanted}")
        return value

    def tls(self, check: TableChecker, parse, *args, **kwargs):
        """Certificates are read and checked now, so a bad path or a key that does not match its
        certificate stops the start instead of the first handshake."""
        try:
            return parse(*args, **kwargs)
        except TlsConfigError as error:
            key = error.field.removeprefix(check.path).lstrip(".").split(".")[0].split("[")[0]
            line = self.lines.key_line(check.header, key) if key else check.line
            self.problems.append(Problem(line, error.field, error.problem))
            return None


def _read_secret(reader: _Reader, check: TableChecker, table: dict) -> bytes | None:
    if ("secret_hex" in table) == ("secret_env" in table):
        reader.fail_table(check, "needs exactly one of secret_hex or secret_env")
        return None
    if "secret_hex" in table:
        value = table["secret_hex"]
        if not isinstance(value, str):
            check.fail("secret_hex", f"must be a string, not {kind(value)}")
            return None
        secret = secret_from_hex(value)
        if secret is None:  # never quoted: a mistyped secret is still nearly the secret
            check.fail("secret_hex", f"must be {SECRET_WANTED}")
        return secret
    text = reader.from_environment(check, table, "secret_env", SECRET_WANTED)
    if text is None:
        return None
    secret = secret_from_hex(text.strip())
    if secret is None:
        check.fail("secret_env", f"environment variable {table['secret_env']} must hold {SECRET_WANTED}")
    return secret


def _read_channels(reader: _Reader, data: dict) -> list[ChannelConfig]:
    channels: list[ChannelConfig] = []
    seen: dict[str, str] = {}
    for index, (table, header) in enumerate(array_of_tables(data, "channels", reader.lines, reader.problems)):
        check = reader.checker(header, f"channels[{index}]")
        check.unknown_keys(table, _CHANNEL_KEYS)
        name = reader.text(check, table, "name", NAME_WANTED, valid=is_name, required=True)
        if name in seen:
            check.fail("name", f"{name!r} is already the name of {seen[name]}")
        elif name is not None:
            seen[name] = check.path
        target = reader.address(check, table, "target", channel_target_problem, required=True)
        settings = dict(
            timeout_ms=reader.integer(check, table, "timeout_ms", 1, 600_000, 3000),
            max_in_flight=reader.integer(check, table, "max_in_flight", 1, 100_000, 64),
            slot_wait_ms=reader.integer(check, table, "slot_wait_ms", 1, 60_000, 250),
            breaker_failures=reader.integer(check, table, "breaker_failures", 1, 10_000, 5),
            breaker_open_seconds=reader.number(check, table, "breaker_open_seconds", 0.01, 86_400.0, 10.0),
            tls=reader.tls(check, parse_channel_tls, table, reader.base_directory, where=check.path))
        if name is not None:  # a refused target is its own problem: rules may still name the channel
            channels.append(ChannelConfig(name, target or "", **settings))
    return channels


def _read_merchants(reader: _Reader, data: dict, channel_names: frozenset[str]) -> list[MerchantConfig]:
    entries = array_of_tables(data, "merchants", reader.lines, reader.problems)
    key_lists = [table.get("keys", []) for table, _header in entries]
    # [[merchants.keys]] headers run through the file in merchant order; matched up when they add up.
    key_headers = iter(reader.lines.array_headers("merchants.keys", sum(
        len(keys) for keys in key_lists if isinstance(keys, list))))
    merchants: list[MerchantConfig] = []
    seen: dict[str, str] = {}
    for index, ((table, header), key_tables) in enumerate(zip(entries, key_lists)):
        check = reader.checker(header, f"merchants[{index}]")
        check.unknown_keys(table, ("id", "channel", "keys"))
        merchant_id = reader.text(check, table, "id", NAME_WANTED, valid=is_name, required=True)
        if merchant_id in seen:
            check.fail("id", f"{merchant_id!r} is already the id of {seen[merchant_id]}")
        elif merchant_id is not None:
            seen[merchant_id] = check.path
        channel = reader.text(check, table, "channel", "a channel name", valid=is_name)
        if channel is not None and channel not in channel_names:
            check.fail("channel", f"names no configured channel ({channel!r})")
        if not isinstance(key_tables, list) or not all(isinstance(item, dict) for item in key_tables):
            check.fail("keys", "must be an array of tables ([[merchants.keys]])")
            key_tables = []
        keys: list[SigningKey] = []
        key_ids: set[str] = set()
        for key_index, key_table in enumerate(key_tables):
            key_check = reader.checker(next(key_headers, None), f"{check.path}.keys[{key_index}]")
            key_check.unknown_keys(key_table, ("id", "secret_hex", "secret_env"))
            key_id = reader.text(key_check, key_table, "id", NAME_WANTED, valid=is_name, required=True)
            if key_id in key_ids:
                key_check.fail("id", f"{key_id!r} is already a key of this merchant")
            secret = _read_secret(reader, key_check, key_table)
            if key_id is not None:
                key_ids.add(key_id)
                keys.append(SigningKey(key_id, secret))
        if merchant_id is not None:
            merchants.append(MerchantConfig(merchant_id, channel, tuple(keys)))
    return merchants


def _read_limits(reader: _Reader, switch: dict) -> ServerLimits:
    found = reader.table(switch, "limits", "switch.limits")
    if found is None:
        return ServerLimits()
    table, check = found
    limits = dataclasses.fields(ServerLimits)
    check.unknown_keys(table, [limit.name for limit in limits])
    values = {}
    for limit in limits:
        if limit.type in (int, "int"):
            values[limit.name] = reader.integer(check, table, limit.name, 1, 10**9, limit.default)
        else:
            values[limit.name] = reader.number(check, table, limit.name, 1, 10**9, limit.default)
    return ServerLimits(**values)


def _read_resolver(reader: _Reader, data: dict) -> ResolverConfig:
    found = reader.table(data, "resolver", "resolver")
    if found is None:
        return ResolverConfig()
    table, check = found
    check.unknown_keys(table, _RESOLVER_KEYS)
    policy = reader.text(check, table, "late_authorization", '"keep" or "void"', valid=("keep", "void").__contains__)
    return ResolverConfig(
        interval_seconds=reader.number(check, table, "interval_seconds", 0.01, 3600.0, 1.0),
        min_age_seconds=reader.number(check, table, "min_age_seconds", 0.0, 86_400.0, 5.0),
        max_backoff_seconds=reader.number(check, table, "max_backoff_seconds", 1.0, 86_400.0, 300.0),
        report_after_seconds=reader.number(check, table, "report_after_seconds", 1.0, 30 * 86_400.0, 900.0),
        late_authorization=policy or "keep",
        resend_window_seconds=reader.number(check, table, "resend_window_seconds", 0.0, 86_400.0, 60.0))


def _read_admin(reader: _Reader, data: dict) -> AdminConfig | None:
    found = reader.table(data, "admin", "admin")
    if found is None:
        return None
    table, check = found
    check.unknown_keys(table, ("token_sha256", "token_env"))
    if ("token_sha256" in table) == ("token_env" in table):
        reader.fail_table(check, "needs exactly one of token_sha256 or token_env")
        return AdminConfig(None)
    if "token_sha256" in table:
        digest = reader.text(check, table, "token_sha256", "a SHA-256 digest written as 64 hex digits",
                             valid=_SHA256_HEX.match, required=True)
        return AdminConfig(None if digest is None else bytes.fromhex(digest))
    wanted = f"a token of at least {_MIN_TOKEN_CHARACTERS} characters"
    token = reader.from_environment(check, table, "token_env", wanted)
    if token is None:
        return AdminConfig(None)
    if len(token) < _MIN_TOKEN_CHARACTERS:
        check.fail("token_env", f"environment variable {table['token_env']} must hold {wanted}")
    return AdminConfig(hashlib.sha256(token.encode()).digest())


def _read(reader: _Reader, data: dict) -> SwitchConfig:
    reader.checker(-1, "").unknown_keys(data, _TOP_KEYS)
    switch, check = reader.table(data, "switch", "switch") or ({}, reader.checker(None, "switch"))
    check.unknown_keys(switch, _SWITCH_KEYS)
    defaults = SwitchConfig()
    listen = reader.address(check, switch, "listen", listen_address_problem)
    database = reader.text(check, switch, "database")
    routing = reader.text(check, switch, "routing", "a file name")
    risk = reader.text(check, switch, "risk", "a file name")
    channels = _read_channels(reader, data)
    merchants = _read_merchants(reader, data, frozenset(channel.name for channel in channels))
    tls = None
    found = reader.table(switch, "tls", "switch.tls")
    if found is not None:
        tls = reader.tls(found[1], parse_server_tls, found[0], reader.base_directory,
                         known_merchants=[merchant.merchant_id for merchant in merchants])
    return SwitchConfig(
        listen=listen or defaults.listen,
        database=database or defaults.database,
        grace_seconds=reader.number(check, switch, "grace_seconds", 0.0, 3600.0, defaults.grace_seconds),
        idempotency_retention_hours=reader.integer(check, switch, "idempotency_retention_hours", 24, 24 * 366,
                                                   defaults.idempotency_retention_hours),
        channels=tuple(channels),
        merchants=tuple(merchants),
        routing=None if routing is None else reader.base_directory / routing,
        risk=None if risk is None else reader.base_directory / risk,
        limits=_read_limits(reader, switch),
        tls=tls,
        resolver=_read_resolver(reader, data),
        admin=_read_admin(reader, data),
    )


def parse_config(data: dict, source: str = "<config>", base_directory: Path = Path("."), *,
                 lines: SourceLines | None = None, environment: Mapping[str, str] = os.environ) -> SwitchConfig:
    """The configuration `data` (parsed TOML) describes; ConfigError lists every problem. `lines`, the
    file's text, puts a line number on each."""
    reader = _Reader(source, lines or SourceLines(""), base_directory, environment, None)
    config = _read(reader, data)
    toml_lines.finish(reader.problems, source, ConfigError)
    return config


def _decoded(path: str | Path) -> tuple[dict, SourceLines]:
    text = read_text(path, ConfigError)
    lines = SourceLines(text)
    return decode(text, str(path), lines, ConfigError), lines


def load_config(path: str | Path, *, environment: Mapping[str, str] = os.environ) -> SwitchConfig:
    """The configuration in `path`; relative routing, risk and certificate paths are taken from the
    file's own directory. ConfigError lists every problem, each on its line."""
    data, lines = _decoded(path)
    return parse_config(data, str(path), Path(path).parent, lines=lines, environment=environment)


def check_config(path: str | Path, *, environment: Mapping[str, str] = os.environ) -> ConfigCheck:
    """Reads `path` as load_config does, but keeps going: the configuration as far as it could be read
    (to check the routing and risk files it names), every problem, and a note for each secret_env or
    token_env variable not set in `environment`."""
    try:
        data, lines = _decoded(path)
    except ConfigError as error:
        return ConfigCheck(str(path), None, error.problems, [])
    reader = _Reader(str(path), lines, Path(path).parent, environment, [])
    config = _read(reader, data)
    reader.problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
    return ConfigCheck(str(path), config, reader.problems, reader.notes)
