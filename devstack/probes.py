"""Addresses of the NATS and PostgreSQL servers, and probes that tell what listens at one.

parse_dsn and redact_dsn live in common.db, the service's one reading of DB_DSN, and are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import urlsplit

from common.db import parse_dsn, redact_dsn

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 2.0
DEFAULT_NATS_PORT = 4222
DEFAULT_POSTGRES_PORT = 5432
DEFAULT_POSTGRES_USER = "postgres"
POSTGRES_MAINTENANCE_DATABASE = "postgres"
# SQLSTATE codes: https://www.postgresql.org/docs/current/errcodes-appendix.html
SQLSTATE_CANNOT_CONNECT_NOW = "57P03"


# --- addresses -----------------------------------------------------------------------------------


def nats_address(url: str) -> tuple[str, int]:
    """Return (host, port) of a ``nats://host:port`` URL; the port defaults to 4222."""
    if "," in url:
        raise ValueError(f"Invalid NATS URL {url!r}: expected one server, not a list.")
    parts = urlsplit(url)
    if parts.scheme not in ("nats", "tls") or not parts.hostname:
        raise ValueError(f"Invalid NATS URL {url!r}: expected nats://HOST:PORT.")
    return parts.hostname, parts.port or DEFAULT_NATS_PORT


def postgres_url(host: str, port: int, database: str = POSTGRES_MAINTENANCE_DATABASE,
                 user: str = DEFAULT_POSTGRES_USER) -> str:
    return f"postgresql://{user}@{url_host(host)}:{port}/{database}"


def port_is_open(host: str, port: int, timeout: float = PROBE_TIMEOUT_SECONDS) -> bool:
    """Return True if something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


# --- probes --------------------------------------------------------------------------------------

NATS_JETSTREAM = "jetstream"
NATS_WITHOUT_JETSTREAM = "nats-without-jetstream"
NOT_NATS = "not-nats"
NOTHING_LISTENING = "nothing-listening"


def probe_nats(url: str) -> str:
    """Return which of NATS_JETSTREAM, NATS_WITHOUT_JETSTREAM, NOT_NATS or NOTHING_LISTENING is at url."""
    host, port = nats_address(url)
    if not port_is_open(host, port):
        return NOTHING_LISTENING
    return asyncio.run(_probe_nats_protocol(url))


async def _probe_nats_protocol(url: str) -> str:
    import nats
    import nats.errors

    async def ignore_error(error: Exception) -> None:
        # The caller turns a failed probe into one ServerError; nats-py would otherwise log each attempt.
        log.debug("NATS probe of %s: %s", url, error)

    try:
        connection = await nats.connect(url, connect_timeout=PROBE_TIMEOUT_SECONDS, allow_reconnect=False,
                                        max_reconnect_attempts=0, error_cb=ignore_error)
    except (nats.errors.Error, OSError, asyncio.TimeoutError) as error:
        log.debug("No NATS protocol at %s: %r", url, error)
        return NOT_NATS

    try:
        await connection.jetstream(timeout=PROBE_TIMEOUT_SECONDS).account_info()
        return NATS_JETSTREAM
    except nats.errors.Error as error:
        log.debug("No JetStream at %s: %r", url, error)
        return NATS_WITHOUT_JETSTREAM
    finally:
        await connection.close()


def probe_postgres(host: str, port: int, user: str, password: str | None = None) -> str | None:
    """Return None unless a PostgreSQL server responds at host:port, else "ok" or the server's error message.

    A server that rejects the user counts as responding, so that the caller can report the server's own
    message, which is more useful than a time-out.
    """
    import pg8000.native
    from pg8000.exceptions import DatabaseError

    try:
        connection = pg8000.native.Connection(user, host=host, port=port, password=password,
                                              database=POSTGRES_MAINTENANCE_DATABASE,
                                              timeout=PROBE_TIMEOUT_SECONDS)
    except DatabaseError as error:
        details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        if details.get("C") == SQLSTATE_CANNOT_CONNECT_NOW:
            return None
        return details.get("M", str(error))
    except Exception as error:  # noqa: BLE001
        # Besides InterfaceError and time-outs, pg8000 raises whatever its parser hits on the bytes of
        # a peer that is not PostgreSQL; each of them means "no PostgreSQL here".
        log.debug("No PostgreSQL at %s:%d: %r", host, port, error)
        return None

    try:
        connection.run("SELECT 1")
    finally:
        connection.close()
    return "ok"

