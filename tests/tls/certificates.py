"""Test certificates made with `cryptography`: a CA, server and client certificates it signs, and
unrelated CAs, all written as PEM files for the TLS tests (nothing is checked in, nothing expires in
the repository)."""

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ONE_DAY = datetime.timedelta(days=1)


@dataclass(frozen=True)
class Issued:
    """One certificate and its key on disk; `pem`/`key_pem` are the same bytes."""

    cert: Path
    key: Path
    certificate: x509.Certificate

    @property
    def pem(self) -> bytes:
        return self.cert.read_bytes()

    @property
    def key_pem(self) -> bytes:
        return self.key.read_bytes()


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(folder: Path, name: str, certificate: x509.Certificate, key) -> Issued:
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return Issued(cert_path, key_path, certificate)


class CertificateAuthority:
    """A self-signed CA written to `folder/<name>.pem`; `issue_server` and `issue_client` sign leaf
    certificates with it."""

    def __init__(self, folder: Path, name: str = "test-ca"):
        self.folder = folder
        self.name = name
        self._key = _new_key()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payswitch tests"),
                             x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = _now()
        self.certificate = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - ONE_DAY).not_valid_after(now + 365 * ONE_DAY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        self.issued = _write(folder, name, self.certificate, self._key)

    @property
    def cert(self) -> Path:
        return self.issued.cert

    @property
    def pem(self) -> bytes:
        return self.issued.pem

    def _leaf(self, name: str, common_name: str | None, names: list[x509.GeneralName], usage,
              not_valid_before: datetime.datetime | None, not_valid_after: datetime.datetime | None) -> Issued:
        key = _new_key()
        now = _now()
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "payswitch tests")]
                            + ([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []))
        builder = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.certificate.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_valid_before or now - ONE_DAY)
            .not_valid_after(not_valid_after or now + 60 * ONE_DAY)  # past the switch's expiry warning
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                           critical=False))
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return _write(self.folder, name, builder.sign(self._key, hashes.SHA256()), key)

    def issue_server(self, name: str = "server", *, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
                     **validity) -> Issued:
        """A server certificate whose SAN holds each of `hosts` (IP addresses as iPAddress entries)."""
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        return self._leaf(name, hosts[0], names, ExtendedKeyUsageOID.SERVER_AUTH, **_validity(validity))

    def issue_client(self, name: str = "client", *, common_name: str | None = "checkout",
                     uris: tuple[str, ...] = (), dns: tuple[str, ...] = (), **validity) -> Issued:
        """A client certificate with subject CN `common_name` (None: no CN) and SAN URI/DNS entries."""
        names = [x509.UniformResourceIdentifier(uri) for uri in uris] + [x509.DNSName(host) for host in dns]
        return self._leaf(name, common_name, names, ExtendedKeyUsageOID.CLIENT_AUTH, **_validity(validity))


def _validity(options: dict) -> dict:
    unknown = set(options) - {"not_valid_before", "not_valid_after"}
    if unknown:
        raise TypeError(f"unknown options {sorted(unknown)}")
    return {"not_valid_before": options.get("not_valid_before"), "not_valid_after": options.get("not_valid_after")}


def expired(days_ago: int = 1) -> dict:
    """Validity options for a certificate that expired `days_ago` days ago."""
    now = _now()
    return {"not_valid_before": now - (days_ago + 30) * ONE_DAY, "not_valid_after": now - days_ago * ONE_DAY}
