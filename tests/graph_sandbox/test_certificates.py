"""The sandbox's CA and server certificate: creation, reuse, renewal and verification by clients."""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
from cryptography import x509

from graph_sandbox.certificates import ensure_certificates
from graph_sandbox.server import SandboxServer
from tests.graph_sandbox.helpers import https_session


def server_names(cert_path: Path) -> set[str]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name) for name in san.get_values_for_type(x509.DNSName)} | {
        str(address) for address in san.get_values_for_type(x509.IPAddress)
    }


def test_certificates_created_with_loopback_names(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)

    assert files.ca_cert == tmp_path / "ca.pem"
    assert server_names(files.server_cert) == {"localhost", "127.0.0.1", "::1"}
    assert files.server_key.stat().st_mode & 0o077 == 0


def test_certificates_reused_on_second_start(tmp_path: Path) -> None:
    first = ensure_certificates(tmp_path)
    ca, cert = first.ca_cert.read_bytes(), first.server_cert.read_bytes()

    second = ensure_certificates(tmp_path)

    assert second.ca_cert.read_bytes() == ca
    assert second.server_cert.read_bytes() == cert


def test_expiring_server_certificate_renewed_with_same_ca(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    ca, cert = files.ca_cert.read_bytes(), files.server_cert.read_bytes()

    ensure_certificates(tmp_path, now=datetime.now(timezone.utc) + timedelta(days=397))

    assert files.ca_cert.read_bytes() == ca
    assert files.server_cert.read_bytes() != cert


def test_expired_ca_renewed_with_server_certificate(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    ca, cert = files.ca_cert.read_bytes(), files.server_cert.read_bytes()
    later = datetime.now(timezone.utc) + timedelta(days=3650)

    ensure_certificates(tmp_path, now=later)

    assert files.ca_cert.read_bytes() != ca
    assert files.server_cert.read_bytes() != cert
    new_cert = x509.load_pem_x509_certificate(files.server_cert.read_bytes())
    new_cert.verify_directly_issued_by(x509.load_pem_x509_certificate(files.ca_cert.read_bytes()))


def test_missing_server_key_regenerated(tmp_path: Path) -> None:
    files = ensure_certificates(tmp_path)
    cert = files.server_cert.read_bytes()
    files.server_key.unlink()

    ensure_certificates(tmp_path)

    assert files.server_key.exists()
    assert files.server_cert.read_bytes() != cert


def test_other_listening_host_added_to_names(tmp_path: Path) -> None:
    ensure_certificates(tmp_path)

    files = ensure_certificates(tmp_path, host="127.0.0.2")

    assert "127.0.0.2" in server_names(files.server_cert)


def test_https_verifies_with_ca_bundle(sandbox: SandboxServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        response = session.get(f"{sandbox.url}/_sandbox/health", verify=str(sandbox.ca_path))

    assert response.status_code == 200


def test_https_fails_without_ca_bundle(sandbox: SandboxServer) -> None:
    with requests.Session() as session:
        session.trust_env = False
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{sandbox.url}/_sandbox/health", verify=True)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_strict_x509_verification_accepts_certificate(sandbox: SandboxServer, host: str) -> None:
    context = ssl.create_default_context(cafile=str(sandbox.ca_path))
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    connection = http.client.HTTPSConnection(host, sandbox.port, context=context, timeout=10)
    try:
        connection.request("GET", "/_sandbox/health")
        status = connection.getresponse().status
    finally:
        connection.close()

    assert status == 200


def test_server_certificate_does_not_name_other_hosts(sandbox: SandboxServer) -> None:
    names = server_names(sandbox.tls.server_cert)

    assert all(name == "localhost" or ipaddress.ip_address(name).is_loopback for name in names)


def test_silent_client_does_not_block_handshakes(sandbox: SandboxServer) -> None:
    with (
        socket.create_connection(("127.0.0.1", sandbox.port)) as silent,
        https_session(sandbox.ca_path) as fresh,
    ):
        response = fresh.get(f"{sandbox.url}/_sandbox/health", timeout=5)
        silent.sendall(b"")

    assert response.status_code == 200


def test_plain_http_client_does_not_stop_server(sandbox: SandboxServer, http: requests.Session) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port)) as plain:
        plain.sendall(b"GET /_sandbox/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        plain.settimeout(5)
        try:
            plain.recv(1024)
        except (ConnectionResetError, TimeoutError):
            pass

    assert http.get(f"{sandbox.url}/_sandbox/health").status_code == 200
