"""TLS and mutual TLS for the switch's listener and its channel connections, and the binding of client
certificate identities to the merchants (and the admin service) they may act for. See docs/tls.md.

Certificate files are read and checked when the configuration is loaded (the listener's again on each
reload, see ListenerCertificates): a missing file, a file that is not PEM, an encrypted key or a key
that does not belong to its certificate is a TlsConfigError naming the configuration field and the path. The checks use the standard library's `ssl` (OpenSSL),
so they add no dependency; grpc itself serves with its bundled BoringSSL.

What grpc 1.85 does, measured (tests/tls/test_tls.py pins each point):
- Servers made from `grpc.dynamic_ssl_server_credentials` and channels from
  `grpc.ssl_channel_credentials` negotiate TLS 1.2 or 1.3 only; TLS 1.0 and 1.1 are refused
  (UNSUPPORTED_PROTOCOL), and TLS 1.2 offers only ECDHE key exchange with AES-GCM. The environment
  variable GRPC_SSL_CIPHER_SUITES replaces that list; making credentials logs a warning when it is set.
- A server that does not require client authentication does not ask the client for a certificate
  at all, so an identity is only ever seen on a listener that requires and verifies one.
- The server's `context.peer_identities()` is the client certificate's subjectAltName entries (URI,
  DNS, email, IP) when it has any, and its subject CN only when it has none (RFC 6125's rule);
  `context.auth_context()` also holds x509_common_name, x509_subject, x509_pem_cert, peer_uri,
  peer_dns, peer_spiffe_id, ssl_tls_version and transport_security_type ("ssl" or "insecure"), but
  costs ten times as much per call (about 3 us against 0.3 us), so the edge reads only the former.
"""

import datetime
import ipaddress
import logging
import os
import re
import ssl
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import grpc
from cryptography import x509

from .server.errors import build_status

log = logging.getLogger(__name__)

ALL_MERCHANTS = "*"
MERCHANT_NOT_PERMITTED = "merchant_not_permitted"
ADMIN_NOT_PERMITTED = "admin_not_permitted"
# The keys a [[channels]] table may hold for TLS towards that channel.
CHANNEL_TLS_KEYS = frozenset({"tls_ca", "tls_cert", "tls_key", "tls_server_name"})
SERVER_TLS_KEYS = frozenset({"cert", "key", "client_ca", "require_client_cert", "clients"})
CLIENT_BINDING_KEYS = frozenset({"identity", "merchants", "admin"})
EXPIRY_WARNING_DAYS = 14

_CERTIFICATE_BEGIN = b"-----BEGIN CERTIFICATE-----"
_PRIVATE_KEY_BEGIN = re.compile(rb"-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----")
_ENCRYPTED_KEY = re.compile(rb"-----BEGIN ENCRYPTED PRIVATE KEY-----|Proc-Type: *4,ENCRYPTED")
_HOST_NAME = re.compile(r"(?=.{1,253}\Z)(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)*"
                        r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\Z")


class TlsConfigError(ValueError):
    """A TLS setting is unusable. `field` names the setting (e.g. "switch.tls.cert"), `problem` says
    what is wrong, with the file's path when it is about a file."""

    def __init__(self, field_name: str, problem: str):
        super().__init__(f"{field_name}: {problem}")
        self.field = field_name
        self.problem = problem


# --- the certificate binding -------------------------------------------------------------------------


@dataclass(frozen=True)
class IdentityBinding:
    """Which merchants each client certificate identity may act for, and which identities may call
    SwitchAdmin. An identity absent from the binding may do nothing; "*" among an identity's merchants
    permits every merchant. A call's identities are its certificate's (see `peer_identities`); the call
    is permitted when any one of them is."""

    merchants: Mapping[str, frozenset[str]]
    admin: frozenset[str] = frozenset()

    def __post_init__(self):
        object.__setattr__(self, "merchants", MappingProxyType({identity: frozenset(names) for identity, names
                                                                in self.merchants.items()}))
        object.__setattr__(self, "admin", frozenset(self.admin))

    def permits(self, identities: Iterable[str], merchant: str) -> bool:
        for identity in identities:
            allowed = self.merchants.get(identity)
            if allowed is not None and (merchant in allowed or ALL_MERCHANTS in allowed):
                return True
        return False

    def may_administer(self, identities: Iterable[str]) -> bool:
        return not self.admin.isdisjoint(identities)

    def merchant_refusal(self, identities: Collection[str], merchant: str) -> grpc.Status | None:
        """None when the call may go on; otherwise the PERMISSION_DENIED status to abort it with."""
        if self.permits(identities, merchant):
            return None
        log.warning("refused a call for merchant %s from client certificate %s", merchant, _described(identities))
        return _permission_denied(f"this client certificate may not act for merchant {merchant!r}",
                                  MERCHANT_NOT_PERMITTED, {"merchant": merchant})

    def admin_refusal(self, identities: Collection[str]) -> grpc.Status | None:
        """None when the caller's certificate may call SwitchAdmin; otherwise the status to abort with."""
        if self.may_administer(identities):
            return None
        log.warning("refused an admin call from client certificate %s", _described(identities))
        return _permission_denied("this client certificate may not call SwitchAdmin", ADMIN_NOT_PERMITTED, {})


def _described(identities: Collection[str]) -> str:
    # repr: a certificate's names are the caller's text and must not forge log lines.
    return ", ".join(repr(identity) for identity in sorted(identities)) or "(none: no verified client certificate)"


def _permission_denied(message: str, reason: str, metadata: dict[str, str]) -> grpc.Status:
    return build_status(grpc.StatusCode.PERMISSION_DENIED, message, reason, metadata)


def peer_identities(context) -> frozenset[str]:
    """The identities of the call's verified client certificate: its subjectAltName entries, or its
    subject CN when it has none. Empty on a plaintext or server-only TLS connection. Works for
    grpc.aio and synchronous servicer contexts."""
    values = context.peer_identities()
    if not values:
        return frozenset()
    return frozenset(value.decode("utf-8", "replace") for value in values)


# --- certificate material --------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerTls:
    """The listener's certificate chain and key and, for mutual TLS, the CA that client certificates
    must chain to. Build it with `load` or `parse_server_tls`; the PEM bytes are read once."""

    cert_chain: Path
    private_key: Path
    client_ca: Path | None
    cert_chain_pem: bytes = field(repr=False)
    private_key_pem: bytes = field(repr=False)
    client_ca_pem: bytes | None = field(repr=False)
    binding: IdentityBinding | None = None

    @property
    def require_client_cert(self) -> bool:
        return self.client_ca is not None

    @classmethod
    def load(cls, cert_chain: Path | str, private_key: Path | str, client_ca: Path | str | None = None, *,
             binding: IdentityBinding | None = None, where: str = "tls") -> "ServerTls":
        """Reads and checks the files; `where` prefixes the field names in errors."""
        cert_chain, private_key = Path(cert_chain), Path(private_key)
        chain_pem, key_pem = _certificate_and_key(cert_chain, private_key, f"{where}.cert", f"{where}.key")
        ca_pem = None
        if client_ca is not None:
            client_ca = Path(client_ca)
            ca_pem = _ca_certificates(client_ca, f"{where}.client_ca")
        elif binding is not None:
            raise TlsConfigError(f"{where}.clients", "binding client certificates to merchants needs client_ca "
                                                     "(mutual TLS)")
        return cls(cert_chain, private_key, client_ca, chain_pem, key_pem, ca_pem, binding)


@dataclass(frozen=True)
class ClientTls:
    """TLS towards a server (a channel, or the switch for a caller): the CA its certificate must chain
    to, this side's certificate and key for mutual TLS, and the name to check the server's certificate
    against when it is not the target's host (also sent as SNI and :authority)."""

    ca: Path
    cert_chain: Path | None
    private_key: Path | None
    server_name: str | None
    ca_pem: bytes = field(repr=False)
    cert_chain_pem: bytes | None = field(repr=False)
    private_key_pem: bytes | None = field(repr=False)

    @classmethod
    def load(cls, ca: Path | str, cert_chain: Path | str | None = None, private_key: Path | str | None = None,
             server_name: str | None = None, *, where: str = "tls", keys: Mapping[str, str] | None = None
             ) -> "ClientTls":
        """Reads and checks the files; errors name `where` + the key (`keys` renames the keys
        "ca", "cert", "key", "server_name" for a configuration that spells them otherwise)."""
        keys = {"ca": "ca", "cert": "cert", "key": "key", "server_name": "server_name", **(keys or {})}
        name = {key: f"{where}.{spelled}" for key, spelled in keys.items()}
        ca = Path(ca)
        ca_pem = _ca_certificates(ca, name["ca"])
        if (cert_chain is None) != (private_key is None):
            raise TlsConfigError(name["cert"] if cert_chain is None else name["key"],
                                 f"a client certificate needs both {keys['cert']} and {keys['key']}")
        chain_pem = key_pem = None
        if cert_chain is not None:
            cert_chain, private_key = Path(cert_chain), Path(private_key)
            chain_pem, key_pem = _certificate_and_key(cert_chain, private_key, name["cert"], name["key"])
        if server_name is not None and not _valid_server_name(server_name):
            raise TlsConfigError(name["server_name"], f"{server_name!r} is not a host name or IP address")
        return cls(ca, cert_chain, private_key, server_name, ca_pem, chain_pem, key_pem)


def _valid_server_name(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return bool(_HOST_NAME.match(name))


def _read(path: Path, field_name: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        problem = "no such file"
    except IsADirectoryError:
        problem = "is a directory, not a file"
    except PermissionError:
        problem = "cannot be read (permission denied)"
    except OSError as error:
        problem = error.strerror or type(error).__name__
    raise TlsConfigError(field_name, f"{path}: {problem}")


def _not_pem(data: bytes, path: Path, field_name: str, what: str) -> TlsConfigError:
    hint = ""
    if data[:1] == b"\x30":
        hint = "; it looks like DER: convert it with `openssl x509 -inform der` (or `openssl pkey -inform der`)"
    return TlsConfigError(field_name, f"{path}: is not a PEM {what} (no '-----BEGIN ...' line){hint}")


def _parsed_certificates(path: Path, field_name: str) -> tuple[bytes, dict]:
    """The file's bytes and OpenSSL's count of the certificates in it (x509, x509_ca)."""
    data = _read(path, field_name)
    if _CERTIFICATE_BEGIN not in data:
        raise _not_pem(data, path, field_name, "certificate")
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        probe.load_verify_locations(cadata=data.decode("ascii"))
    except (ssl.SSLError, UnicodeDecodeError, ValueError) as error:
        raise TlsConfigError(field_name, f"{path}: holds a certificate that does not parse ({_reason(error)})") from None
    return data, probe.cert_store_stats()


def _ca_certificates(path: Path, field_name: str) -> bytes:
    data, counts = _parsed_certificates(path, field_name)
    if not counts["x509_ca"]:
        raise TlsConfigError(field_name, f"{path}: holds no CA certificate (basicConstraints CA:TRUE); "
                                         "give the certificate of the CA that signed the peer's certificate")
    return data


def _certificate_and_key(cert_path: Path, key_path: Path, cert_field: str, key_field: str) -> tuple[bytes, bytes]:
    chain, _ = _parsed_certificates(cert_path, cert_field)
    key = _read(key_path, key_field)
    if not _PRIVATE_KEY_BEGIN.search(key):
        raise _not_pem(key, key_path, key_field, "private key")
    if _ENCRYPTED_KEY.search(key):
        raise TlsConfigError(key_field, f"{key_path}: is encrypted, and grpc takes no passphrase: keep it "
                                        "unencrypted with tight file permissions (`openssl pkey -in KEY -out KEY.plain`)")

    def no_passphrase():
        raise TlsConfigError(key_field, f"{key_path}: is encrypted, and grpc takes no passphrase")

    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        probe.load_cert_chain(cert_path, key_path, password=no_passphrase)
    except ssl.SSLError as error:
        if error.reason == "KEY_VALUES_MISMATCH":
            raise TlsConfigError(key_field, f"{key_path}: is not the key of the certificate in {cert_path}") from None
        raise TlsConfigError(key_field, f"{key_path}: does not parse as a private key ({_reason(error)})") from None
    except OSError as error:  # the file changed between the two reads
        raise TlsConfigError(key_field, f"{key_path}: {error.strerror or error}") from None
    return chain, key


def _reason(error: Exception) -> str:
    return getattr(error, "reason", None) or str(error)


# --- configuration tables ----------------------------------------------------------------------------


def _string(table: dict, key: str, where: str, required: bool = False) -> str | None:
    if key not in table:
        if required:
            raise TlsConfigError(f"{where}.{key}", "is required")
        return None
    value = table[key]
    if type(value) is not str or not value:
        raise TlsConfigError(f"{where}.{key}", "must be a non-empty string")
    return value


def _unknown_keys(table: dict, allowed: Collection[str], where: str) -> None:
    for key in table:
        if key not in allowed:
            raise TlsConfigError(f"{where}.{key}", "is not a known setting")


def parse_server_tls(table: dict, base_directory: Path = Path("."), *, where: str = "switch.tls",
                     known_merchants: Collection[str] | None = None) -> ServerTls:
    """The [switch.tls] table: cert, key, client_ca, require_client_cert and [[switch.tls.clients]]
    entries {identity, merchants, admin}. Relative paths are taken from `base_directory`. Merchants
    named in a binding must be among `known_merchants` when it is given."""
    if type(table) is not dict:
        raise TlsConfigError(where, "must be a table")
    _unknown_keys(table, SERVER_TLS_KEYS, where)
    cert = _string(table, "cert", where, required=True)
    key = _string(table, "key", where, required=True)
    client_ca = _string(table, "client_ca", where)
    require = table.get("require_client_cert", client_ca is not None)
    if type(require) is not bool:
        raise TlsConfigError(f"{where}.require_client_cert", "must be true or false")
    if require and client_ca is None:
        raise TlsConfigError(f"{where}.require_client_cert", "needs client_ca, the CA client certificates must "
                                                             "chain to")
    if client_ca is not None and not require:
        # grpc asks for no client certificate unless it requires one, so the CA would be ignored.
        raise TlsConfigError(f"{where}.client_ca", "is only used with require_client_cert = true")
    binding = None
    if "clients" in table:
        binding = parse_identity_binding(table["clients"], f"{where}.clients", known_merchants)
    return ServerTls.load(base_directory / cert, base_directory / key,
                          None if client_ca is None else base_directory / client_ca, binding=binding, where=where)


def parse_identity_binding(entries, where: str = "switch.tls.clients",
                           known_merchants: Collection[str] | None = None) -> IdentityBinding:
    """[[switch.tls.clients]] entries: identity = "CN or subjectAltName value", merchants = [...] or
    "*", admin = true|false."""
    if type(entries) is not list or not entries:
        raise TlsConfigError(where, "must be a non-empty array of tables ([[...clients]])")
    merchants: dict[str, frozenset[str]] = {}
    admin: set[str] = set()
    for index, entry in enumerate(entries):
        path = f"{where}[{index}]"
        if type(entry) is not dict:
            raise TlsConfigError(path, "must be a table")
        _unknown_keys(entry, CLIENT_BINDING_KEYS, path)
        identity = _string(entry, "identity", path, required=True)
        if identity != identity.strip() or not identity.isprintable():
            raise TlsConfigError(f"{path}.identity", "must be printable, without leading or trailing spaces")
        if identity == ALL_MERCHANTS:
            raise TlsConfigError(f"{path}.identity", '"*" is not an identity; leave the binding out to let every '
                                                     "verified certificate act for every merchant")
        if identity in merchants:
            raise TlsConfigError(f"{path}.identity", f"{identity!r} is bound twice")
        names = entry.get("merchants", [])
        if names == ALL_MERCHANTS:
            names = [ALL_MERCHANTS]
        if type(names) is not list or any(type(name) is not str or not name for name in names):
            raise TlsConfigError(f"{path}.merchants", 'must be a list of merchant ids, or "*"')
        if known_merchants is not None:
            for name in names:
                if name != ALL_MERCHANTS and name not in known_merchants:
                    raise TlsConfigError(f"{path}.merchants", f"names no configured merchant ({name!r})")
        is_admin = entry.get("admin", False)
        if type(is_admin) is not bool:
            raise TlsConfigError(f"{path}.admin", "must be true or false")
        if not names and not is_admin:
            raise TlsConfigError(path, "grants nothing: give merchants, or admin = true")
        merchants[identity] = frozenset(names)
        if is_admin:
            admin.add(identity)
    return IdentityBinding(merchants, frozenset(admin))


def parse_channel_tls(table: dict, base_directory: Path = Path("."), *, where: str) -> ClientTls | None:
    """The tls_* keys of one [[channels]] table (see CHANNEL_TLS_KEYS); None when it has none, so the
    channel is plaintext."""
    present = CHANNEL_TLS_KEYS.intersection(table)
    if not present:
        return None
    values = {key: _string(table, key, where) for key in present}
    if "tls_ca" not in values:
        raise TlsConfigError(f"{where}.tls_ca", "is required with any other tls_ setting: the CA the channel's "
                                                "certificate must chain to")
    if table.get("target") == "in-process":
        raise TlsConfigError(f"{where}.tls_ca", "an in-process channel has no transport to secure")

    def path(key: str) -> Path | None:
        return None if values.get(key) is None else base_directory / values[key]

    return ClientTls.load(path("tls_ca"), path("tls_cert"), path("tls_key"), values.get("tls_server_name"),
                          where=where, keys={"ca": "tls_ca", "cert": "tls_cert", "key": "tls_key",
                                             "server_name": "tls_server_name"})


# --- grpc credentials --------------------------------------------------------------------------------


class ListenerCertificates:
    """The listener's certificate, key and client CA, renewable while the switch serves.

    grpc asks `_next_configuration` before each new connection's handshake, so after `reload` new
    connections get the renewed certificate while open ones keep theirs. A reload reads and checks the
    same paths as at start (the identity binding stays: it is configuration, changed by a restart) and
    never replaces a working certificate by one that does not load, does not match its key, or is
    outside its validity period.
    """

    def __init__(self, tls: ServerTls, clock: Callable[[], float] = time.time):
        self._tls = tls
        self._clock = clock
        self._pending: grpc.ServerCertificateConfiguration | None = None

    @property
    def tls(self) -> ServerTls:
        return self._tls

    def credentials(self) -> grpc.ServerCredentials:
        """With a client CA, every connection must present a client certificate that chains to it
        (and is within its validity period), or its handshake fails."""
        _warn_if_cipher_suites_replaced()
        _announce("serving", CertificateSummary.of(self._tls.cert_chain_pem), self._clock())
        return grpc.dynamic_ssl_server_credentials(_configuration(self._tls), self._next_configuration,
                                                   require_client_authentication=self._tls.require_client_cert)

    def reload(self) -> "CertificateSummary":
        """Reads the files again (blocking: call it off the event loop); raises TlsConfigError and
        changes nothing when they cannot serve."""
        current = self._tls
        renewed = ServerTls.load(current.cert_chain, current.private_key, current.client_ca,
                                 binding=current.binding, where="switch.tls")
        summary = CertificateSummary.of(renewed.cert_chain_pem)
        now = self._clock()
        if not summary.not_before <= now <= summary.not_after:
            state = "expired" if now > summary.not_after else "not yet valid"
            raise TlsConfigError("switch.tls.cert", f"{renewed.cert_chain}: is {state} (valid "
                                                    f"{summary.validity}); the certificate in use stays")
        self._tls = renewed
        self._pending = _configuration(renewed)
        _announce("reloaded", summary, now)
        return summary

    def _next_configuration(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by grpc on its own thread before each handshake: the renewed configuration once, then
        None (keep it). Taking it twice from two threads only hands grpc the same thing twice."""
        pending, self._pending = self._pending, None
        return pending


def _announce(what: str, summary: "CertificateSummary", now: float) -> None:
    """Logs the served certificate's expiry, as a warning once it is near: an expired certificate
    makes every client's handshake fail."""
    days = summary.days_left(now)
    if days < EXPIRY_WARNING_DAYS:
        log.warning("listener certificate %s (serial %x) expires in %.1f days (%s): renew the files and send "
                    "SIGHUP", summary.subject, summary.serial, days, _utc(summary.not_after))
    else:
        log.info("%s listener certificate %s (serial %x), valid %s", what, summary.subject, summary.serial,
                 summary.validity)


def _configuration(tls: ServerTls) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration([(tls.private_key_pem, tls.cert_chain_pem)],
                                                     root_certificates=tls.client_ca_pem)


@dataclass(frozen=True)
class CertificateSummary:
    """What an operator needs to know of a served certificate: who it names, and until when."""

    subject: str
    serial: int
    not_before: float  # Unix seconds
    not_after: float

    @classmethod
    def of(cls, chain_pem: bytes) -> "CertificateSummary":
        leaf = x509.load_pem_x509_certificates(chain_pem)[0]
        return cls(leaf.subject.rfc4514_string(), leaf.serial_number, leaf.not_valid_before_utc.timestamp(),
                   leaf.not_valid_after_utc.timestamp())

    @property
    def validity(self) -> str:
        return f"{_utc(self.not_before)} to {_utc(self.not_after)}"

    def days_left(self, now: float) -> float:
        return (self.not_after - now) / 86_400


def _utc(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def add_listener(server, address: str, certificates: ListenerCertificates | None) -> int:
    """Binds `address` on a grpc (or grpc.aio) server, with TLS when `certificates` are given; returns
    the port (0 when it could not bind). Plaintext on an address other than loopback is logged as a
    warning: card data would cross the network in the clear."""
    if certificates is None:
        if not _is_loopback(address):
            log.warning("listening on %s without TLS: requests, card data included, cross the network in "
                        "plaintext (PCI DSS 4.2.1 requires strong cryptography); configure [switch.tls]", address)
        return server.add_insecure_port(address)
    return server.add_secure_port(address, certificates.credentials())


def channel_credentials(tls: ClientTls) -> grpc.ChannelCredentials:
    """grpc credentials trusting `tls.ca`, presenting the client certificate when there is one."""
    _warn_if_cipher_suites_replaced()
    return grpc.ssl_channel_credentials(root_certificates=tls.ca_pem, private_key=tls.private_key_pem,
                                        certificate_chain=tls.cert_chain_pem)


def channel_options(tls: ClientTls | None) -> tuple[tuple[str, str], ...]:
    """The channel options `tls` needs: with a server name, grpc checks the server's certificate
    against it and sends it as SNI and :authority (grpc.default_authority)."""
    if tls is None or tls.server_name is None:
        return ()
    return (("grpc.default_authority", tls.server_name),)


def aio_channel(target: str, tls: ClientTls | None, options=()) -> grpc.aio.Channel:
    """A grpc.aio channel to `target`: over TLS when `tls` is given, plaintext otherwise."""
    if tls is None:
        _warn_if_plaintext(target)
        return grpc.aio.insecure_channel(target, options=tuple(options))
    return grpc.aio.secure_channel(target, channel_credentials(tls), options=(*options, *channel_options(tls)))


def sync_channel(target: str, tls: ClientTls | None, options=()) -> grpc.Channel:
    """The same as `aio_channel` for blocking callers (the admin command line)."""
    if tls is None:
        _warn_if_plaintext(target)
        return grpc.insecure_channel(target, options=tuple(options))
    return grpc.secure_channel(target, channel_credentials(tls), options=(*options, *channel_options(tls)))


def _warn_if_plaintext(target: str) -> None:
    if not _is_loopback(target):
        log.warning("connecting to %s without TLS: requests cross the network in plaintext", target)


def _is_loopback(address: str) -> bool:
    """Whether a listen address or channel target ("host:port", "[::1]:port", "dns:///host:port",
    "unix:path") stays on this machine."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.removeprefix("dns:///").removeprefix("ipv4:").removeprefix("ipv6:")
    if host.count(":") == 1 or host.startswith("["):
        host = host.rsplit(":", 1)[0]
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _warn_if_cipher_suites_replaced() -> None:
    suites = os.environ.get("GRPC_SSL_CIPHER_SUITES")
    if suites:
        log.warning("GRPC_SSL_CIPHER_SUITES=%s replaces grpc's TLS 1.2 suites (ECDHE with AES-GCM); make sure "
                    "each is strong cryptography (PCI DSS 4.2.1)", suites)
