"""The sandbox's own certificate authority and server certificate, made once and reused.

Clients trust ``ca.pem`` (setting GRAPH_CA_BUNDLE). The server certificate it signs names
localhost, 127.0.0.1 and ::1, plus the listening host when that is another specific name.
Both carry the extensions that OpenSSL's strict verification wants (X509_STRICT, which urllib3 2
and Python 3.13 turn on): key usages, subject and authority key identifiers, and a SAN.
"""

from __future__ import annotations

import fcntl
import ipaddress
import logging
import os
import ssl
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from common.settings import ENV_SANDBOX_CERT_HOSTS, SANDBOX_CA_FILENAME

logger = logging.getLogger(__name__)

CA_KEY_FILENAME = "ca-key.pem"
SERVER_CERT_FILENAME = "server.pem"
SERVER_KEY_FILENAME = "server-key.pem"
_LOCK_FILENAME = ".certificates.lock"

DEFAULT_NAMES = ("localhost", "127.0.0.1", "::1")
CA_VALIDITY = timedelta(days=3650)
# Browsers reject server certificates that are valid for more than 398 days.
SERVER_VALIDITY = timedelta(days=397)
# Certificates are replaced this long before they expire, so none expires during a long test run.
RENEWAL_MARGIN = timedelta(days=1)
_WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    server_cert: Path
    server_key: Path


def ensure_certificates(data_dir: Path, host: str | None = None, now: datetime | None = None) -> TlsFiles:
    """Return the CA and server certificate in `data_dir`, creating or renewing what is missing or stale.

    A server certificate is renewed when it expires within RENEWAL_MARGIN, is not signed by the
    current CA, or lacks a name the host needs. The CA is renewed under the same expiry rule.
    """
    now = now or datetime.now(timezone.utc)
    data_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        data_dir / SANDBOX_CA_FILENAME, data_dir / SERVER_CERT_FILENAME, data_dir / SERVER_KEY_FILENAME
    )
    names = _certificate_names(host)

    # The lock keeps two sandboxes that start at once from writing different CAs into one directory.
    with open(data_dir / _LOCK_FILENAME, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ca_cert, ca_key = _load_valid_ca(data_dir, now)
        if ca_cert is None or ca_key is None:
            ca_cert, ca_key = _create_ca(data_dir, now)
        if not _server_certificate_is_valid(files, ca_cert, names, now):
            _create_server_certificate(files, ca_cert, ca_key, names, now)
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.server_cert, files.server_key)
    return context


def _certificate_names(host: str | None) -> tuple[str, ...]:
    # Containers reach the sandbox by a service name (docker compose: "sandbox"), which the
    # certificate must name too; SANDBOX_CERT_HOSTS lists such names, comma-separated.
    extra = [name.strip() for name in os.environ.get(ENV_SANDBOX_CERT_HOSTS, "").split(",") if name.strip()]
    if host is not None and host not in _WILDCARD_HOSTS:
        extra.append(host)
    return (*DEFAULT_NAMES, *(name for name in dict.fromkeys(extra) if name not in DEFAULT_NAMES))


def _load_valid_ca(
    data_dir: Path, now: datetime
) -> tuple[x509.Certificate | None, ec.EllipticCurvePrivateKey | None]:
    try:
        cert = x509.load_pem_x509_certificate((data_dir / SANDBOX_CA_FILENAME).read_bytes())
        key = serialization.load_pem_private_key((data_dir / CA_KEY_FILENAME).read_bytes(), password=None)
    except (OSError, ValueError):
        return None, None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or cert.public_key() != key.public_key():
        return None, None
    if cert.not_valid_after_utc - RENEWAL_MARGIN <= now:
        logger.info(
            "Sandbox CA in %s expires at %s, so a new one is created", data_dir, cert.not_valid_after_utc
        )
        return None, None
    return cert, key


def _server_certificate_is_valid(
    files: TlsFiles, ca_cert: x509.Certificate, names: tuple[str, ...], now: datetime
) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
        key = serialization.load_pem_private_key(files.server_key.read_bytes(), password=None)
        cert.verify_directly_issued_by(ca_cert)
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (OSError, ValueError, TypeError, InvalidSignature, x509.ExtensionNotFound):
        return False
    if cert.public_key() != key.public_key():
        return False
    if cert.not_valid_after_utc - RENEWAL_MARGIN <= now:
        return False
    present = {str(value) for value in san.get_values_for_type(x509.DNSName)}
    present |= {str(value) for value in san.get_values_for_type(x509.IPAddress)}
    return all(_normalized_name(name) in present for name in names)


def _create_ca(data_dir: Path, now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Mailservice O365"),
            x509.NameAttribute(NameOID.COMMON_NAME, "Mailservice O365 Graph sandbox CA"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private_key(data_dir / CA_KEY_FILENAME, key)
    _write_atomically(
        data_dir / SANDBOX_CA_FILENAME, cert.public_bytes(serialization.Encoding.PEM), mode=0o644
    )
    logger.info("Created the sandbox CA %s", data_dir / SANDBOX_CA_FILENAME)
    return cert, key


def _create_server_certificate(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    names: tuple[str, ...],
    now: datetime,
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(min(now + SERVER_VALIDITY, ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_general_name(name) for name in names]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private_key(files.server_key, key)
    _write_atomically(files.server_cert, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    logger.info("Created the sandbox server certificate %s for %s", files.server_cert, ", ".join(names))


def _key_usage(digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def _normalized_name(name: str) -> str:
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_atomically(path, data, mode=0o600)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.chmod(temporary, mode)
    os.replace(temporary, path)
