"""The `make run` supervisor: the whole service on one machine, with its output in one terminal.

It ensures NATS and PostgreSQL, applies the schema, and starts the Graph sandbox, the ingest function,
the admin function (once it exists) and one worker. Each output line starts with the process name.
On Ctrl-C, on SIGTERM, or when one of the processes exits, it stops everything it started.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TextIO

from common import settings
from devstack import servers
from devstack.admin_token import AdminToken, TokenOrigin, ensure_admin_token
from devstack.environment import child_environment, user_environment, uses_sandbox

log = logging.getLogger(__name__)

INGEST_PORT = 8080
ADMIN_PORT = 8081
SANDBOX_PORT = settings.DEFAULT_SANDBOX_PORT
LOOPBACK = "127.0.0.1"

READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 10.0
POLL_INTERVAL_SECONDS = 0.2
SANDBOX_READY_TEXT = "Graph sandbox listening on"

ADMIN_SOURCE = settings.REPO_ROOT / "functions" / "admin" / "main.py"
# A top-level `def admin(` or `admin = ...` in the admin module is the function that functions-framework serves.
ADMIN_TARGET_PATTERN = re.compile(r"^(?:async\s+)?def\s+admin\s*\(|^admin\s*[:=]", re.MULTILINE)

# The supervisor's own lines carry this name; it also sets the width of the name column.
SUPERVISOR_NAME = "devstack"
NAME_WIDTH = len(SUPERVISOR_NAME)
ANSI_COLOURS = ("36", "33", "32", "35", "34", "31")
ANSI_RESET = "\033[0m"


class StackError(RuntimeError):
    """The stack cannot start or a process of it failed; the message names the process or port."""


@dataclass
class ProcessSpec:
    """A process of the stack: its name, command and how to tell that it is ready."""

    name: str
    command: list[str]
    port: int | None = None  # the TCP port it listens on; once it accepts connections, the process is ready
    ready_text: str | None = None  # an output line containing this text means ready (checked before port)


# --- output --------------------------------------------------------------------------------------


def format_prefix(name: str, colour: str | None = None, width: int = NAME_WIDTH) -> str:
    """Return the `name     | ` column that starts each line of a process, in colour if one is given."""
    padded = name.ljust(width)
    if colour is None:
        return f"{padded} | "
    return f"\033[{colour}m{padded} |{ANSI_RESET} "


def colour_for(index: int, enabled: bool) -> str | None:
    return ANSI_COLOURS[index % len(ANSI_COLOURS)] if enabled else None


def colours_enabled(stream: TextIO) -> bool:
    """Colour only a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    return stream.isatty() and "NO_COLOR" not in os.environ


class Output:
    """Writes whole lines from several threads to one stream without interleaving them."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lock = threading.Lock()

    def write_line(self, prefix: str, line: str) -> None:
        with self.lock:
            self.stream.write(f"{prefix}{line}\n")
            self.stream.flush()


def pump_lines(source: IO[bytes], prefix: str, output: Output,
               on_line: Callable[[str], None] | None = None) -> None:
    """Copy each line of source to output behind prefix until EOF; pass each line to on_line too."""
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        output.write_line(prefix, line)
        if on_line is not None:
            on_line(line)
    source.close()


# --- checks --------------------------------------------------------------------------------------


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """Return True if a socket on this machine is bound to host:port, found by trying to bind it."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # With SO_REUSEADDR, TIME_WAIT connections of the previous run do not count, but a listener does.
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind((host, port))
    except OSError:
        return True
    finally:
        probe.close()
    return False


def check_ports_free(ports: Iterable[tuple[str, int]]) -> None:
    """Raise StackError naming the first (process, port) whose port is already in use."""
    for name, port in ports:
        if not port_in_use(port):
            continue
        raise StackError(f"Port {port} for {name} is already in use. Stop the program that listens there "
                         f"(`ss -ltnp 'sport = :{port}'` shows it), then run again.")


def admin_defined(source: Path = ADMIN_SOURCE) -> bool:
    """Return True if the admin module defines the `admin` function that functions-framework serves."""
    if not source.is_file():
        return False
    return ADMIN_TARGET_PATTERN.search(source.read_text(encoding="utf-8")) is not None


# --- processes -----------------------------------------------------------------------------------


def process_specs(use_sandbox: bool, with_admin: bool, sandbox_dir: Path) -> list[ProcessSpec]:
    """Return the long-running processes of the stack in start order."""
    specs = []
    if use_sandbox:
        specs.append(ProcessSpec("sandbox", ["python", "-m", "graph_sandbox", "--port", str(SANDBOX_PORT),
                                             "--data-dir", str(sandbox_dir)],
                                 port=SANDBOX_PORT, ready_text=SANDBOX_READY_TEXT))
    specs.append(ProcessSpec("ingest", _function_command("send_email", "functions/send_email/main.py",
                                                         INGEST_PORT), port=INGEST_PORT))
    if with_admin:
        specs.append(ProcessSpec("admin", _function_command("admin", "functions/admin/main.py", ADMIN_PORT),
                                 port=ADMIN_PORT))
    specs.append(ProcessSpec("worker", ["python", "-m", "functions.process_job"]))
    return specs


def _function_command(target: str, source: str, port: int) -> list[str]:
    return ["functions-framework", "--target", target, "--source", source, "--port", str(port)]


class Child:
    """A running process of the stack, in its own process group so that its gunicorn workers stop with it."""

    def __init__(self, spec: ProcessSpec, environment: Mapping[str, str], output: Output, prefix: str) -> None:
        self.spec = spec
        self.ready_event = threading.Event()
        executable = shutil.which(spec.command[0], path=environment.get("PATH"))
        if executable is None:
            raise StackError(f"{spec.name}: command {spec.command[0]!r} not found on PATH; run `make venv`.")

        self.process = subprocess.Popen(
            [executable, *spec.command[1:]],
            cwd=settings.REPO_ROOT,
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.reader = threading.Thread(target=pump_lines, args=(self.process.stdout, prefix, output, self._saw),
                                       name=f"output-{spec.name}", daemon=True)
        self.reader.start()

    @property
    def name(self) -> str:
        return self.spec.name

    def _saw(self, line: str) -> None:
        if self.spec.ready_text and self.spec.ready_text in line:
            self.ready_event.set()

    def ready(self) -> bool:
        if self.spec.ready_text is not None:
            return self.ready_event.is_set()
        if self.spec.port is not None:
            return servers.port_is_open(LOOPBACK, self.spec.port, timeout=0.5)
        return True

    def exit_code(self) -> int | None:
        return self.process.poll()

    def signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass


def stop_children(children: list[Child], timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    """SIGTERM each child's process group, wait up to timeout for all of them, then SIGKILL the rest."""
    for child in reversed(children):
        child.signal_group(signal.SIGTERM)

    deadline = time.monotonic() + timeout
    for child in reversed(children):
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("%s did not stop within %.0f s; killing it", child.name, timeout)

    for child in children:
        # SIGKILL the group even after a clean exit of its leader: a gunicorn worker may outlive its arbiter.
        child.signal_group(signal.SIGKILL)
        child.process.wait()
        child.reader.join(timeout=1.0)


# --- the supervisor ------------------------------------------------------------------------------


class Stack:
    """Starts the stack, watches it and stops everything it started."""

    def __init__(self, output: Output, environ: Mapping[str, str] | None = None,
                 data_dir: Path = settings.LOCAL_DATA_DIR) -> None:
        self.output = output
        self.data_dir = data_dir
        self.sandbox_dir = data_dir / "sandbox"
        self.user_env = user_environment(environ)
        self.use_sandbox = uses_sandbox(self.user_env)
        self.env = child_environment(self.user_env, self.sandbox_dir, SANDBOX_PORT)
        self.colour = colours_enabled(output.stream)
        self.stop_requested = threading.Event()
        self.received_signal: str | None = None
        self.children: list[Child] = []
        self.servers: list[servers.Server] = []
        self.admin_token: AdminToken | None = None

    def run(self) -> int:
        """Run the stack until a signal or a process exit; return the exit code for the supervisor."""
        self._install_signal_handlers()
        try:
            self._start()
            if self.stop_requested.is_set():
                return 0
            self._print_summary()
            return self._watch()
        except (StackError, servers.ServerError, ValueError) as error:
            log.error("%s", error)
            return 1
        finally:
            self._shutdown()

    def _start(self) -> None:
        with_admin = admin_defined()
        specs = process_specs(self.use_sandbox, with_admin, self.sandbox_dir)
        check_ports_free((spec.name, spec.port) for spec in specs if spec.port is not None)
        if with_admin:
            self._provide_admin_token()

        self.servers.append(servers.ensure_nats(self.env[settings.ENV_NATS_URL], self.data_dir))
        self.servers.append(servers.ensure_postgres(self.env[settings.ENV_DB_DSN], self.data_dir))
        self._init_schema()

        for spec in specs:
            if self.stop_requested.is_set():
                return
            self.children.append(Child(spec, self._child_environment(spec), self.output, self._prefix(spec.name)))
            if spec.name == "sandbox":
                self._wait_ready([self.children[-1]])
        self._wait_ready(self.children)

    def _init_schema(self) -> None:
        command = [sys.executable, "-m", "functions.admin", "init"]
        log.info("Applying the schema: python -m functions.admin init")
        # Its own session, like the other children: a Ctrl-C now stops the stack after init, not init itself.
        process = subprocess.Popen(command, cwd=settings.REPO_ROOT, env=self.env, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        assert process.stdout is not None
        pump_lines(process.stdout, self._prefix("init"), self.output)
        if process.wait() != 0:
            raise StackError(f"init (python -m functions.admin init) exited with code {process.returncode}.")

    def _provide_admin_token(self) -> None:
        self.admin_token = ensure_admin_token(self.env, self.data_dir / settings.ADMIN_TOKEN_FILENAME)
        if self.admin_token.origin is TokenOrigin.GENERATED:
            # Terminal output, not a log record: the one time the token is shown. Later runs read the file.
            self.output.write_line(self._prefix(SUPERVISOR_NAME),
                                   f"Generated an admin token and stored it in {_relative(self.admin_token.path)} "
                                   f"(shown only now): {self.admin_token.value}")

    def _child_environment(self, spec: ProcessSpec) -> dict[str, str]:
        """Return spec's environment; only the admin function gets ADMIN_TOKEN."""
        if spec.name != "admin" or self.admin_token is None:
            return self.env
        return {**self.env, settings.ENV_ADMIN_TOKEN: self.admin_token.value}

    def _wait_ready(self, children: list[Child]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        waiting = [child for child in children if not child.ready()]
        while waiting and not self.stop_requested.is_set():
            self._raise_if_exited()
            if time.monotonic() > deadline:
                names = ", ".join(child.name for child in waiting)
                raise StackError(f"{names} did not become ready within {READY_TIMEOUT_SECONDS:.0f} s.")
            time.sleep(POLL_INTERVAL_SECONDS)
            waiting = [child for child in waiting if not child.ready()]

    def _watch(self) -> int:
        while not self.stop_requested.wait(POLL_INTERVAL_SECONDS):
            self._raise_if_exited()
        return 0

    def _raise_if_exited(self) -> None:
        for child in self.children:
            code = child.exit_code()
            if code is not None:
                raise StackError(f"{child.name} exited with code {code}; stopping the others.")

    def _shutdown(self) -> None:
        if self.received_signal is not None:
            log.info("Received %s; stopping", self.received_signal)
        stop_children(self.children)
        for server in reversed(self.servers):
            server.stop()
        log.info("Stopped everything that this run started")

    def _install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            # Ctrl-C reaches only this process because each child runs in its own process group.
            self.received_signal = signal.Signals(signum).name
            self.stop_requested.set()

        signal.signal(signal.SIGINT, request_stop)
        signal.signal(signal.SIGTERM, request_stop)

    def _prefix(self, name: str) -> str:
        names = [SUPERVISOR_NAME, "init", "sandbox", "ingest", "admin", "worker"]
        index = names.index(name) if name in names else len(names)
        return format_prefix(name, colour_for(index, self.colour))

    def _print_summary(self) -> None:
        with_admin = any(child.name == "admin" for child in self.children)
        lines = summary_lines(self.env, self.use_sandbox, with_admin, self.sandbox_dir, self.servers,
                              self.admin_token)
        for line in lines:
            self.output.write_line("", line)


def summary_lines(env: Mapping[str, str], use_sandbox: bool, with_admin: bool, sandbox_dir: Path,
                  running_servers: Iterable[servers.Server], admin_token: AdminToken | None = None) -> list[str]:
    """Return the block printed once every process is ready: addresses and first steps."""
    lines = ["", "The mail service is running. Press Ctrl-C to stop it.",
             f"  send e-mail     POST http://{LOOPBACK}:{INGEST_PORT}/send-email (needs an API key)"]
    if with_admin:
        lines.append(f"  admin API       http://{LOOPBACK}:{ADMIN_PORT}/senders ({_token_origin(admin_token)})")

    if use_sandbox:
        base = f"https://{LOOPBACK}:{SANDBOX_PORT}"
        ca_path = _relative(sandbox_dir / settings.SANDBOX_CA_FILENAME)
        lines.append(f"  Graph sandbox   {base} (CA certificate: {ca_path})")
        lines.append(f"  sent messages   GET {base}/_sandbox/messages")
    else:
        lines.append(f"  Entra ID        {env.get(settings.ENV_AUTHORITY_HOST)} (AUTHORITY_HOST is set)")

    addresses = {"nats": env[settings.ENV_NATS_URL], "postgres": servers.redact_dsn(env[settings.ENV_DB_DSN])}
    for server in running_servers:
        origin = "started by this run" if server.started else "already running"
        log_path = getattr(server, "log_path", None)
        if log_path is not None:
            origin += f", log: {_relative(log_path)}"
        lines.append(f"  {server.name:<15} {addresses.get(server.name, server.url)} ({origin})")

    lines += ["Add a sender (app tag -> mailbox that it sends from); it prints the app's API key once:",
              "  .venv/bin/python -m functions.admin add -tag APP_TAG -email MAILBOX@example.com"]
    if with_admin:
        lines += ["Or through the admin API, with ADMIN_TOKEN set to the admin token:",
                  f"  curl -H \"Authorization: Bearer $ADMIN_TOKEN\" http://{LOOPBACK}:{ADMIN_PORT}/senders"]
    lines += ["Send a mail with that key in API_KEY:",
              f"  curl -H \"Authorization: Bearer $API_KEY\" -H 'Content-Type: application/json' "
              f"-d '{{\"recipients\": [\"a@example.com\"], \"body_content\": \"Hallo\"}}' "
              f"http://{LOOPBACK}:{INGEST_PORT}/send-email",
              "Send one mail end to end: make smoke", ""]
    return lines


def _token_origin(admin_token: AdminToken | None) -> str:
    """Say where the admin token comes from, never the token itself."""
    if admin_token is None or admin_token.origin is TokenOrigin.ENVIRONMENT:
        return "token: ADMIN_TOKEN from the environment or .env"
    return f"token: ADMIN_TOKEN=$(cat {_relative(admin_token.path)})"


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(settings.REPO_ROOT))
    except ValueError:
        return str(path)


class OutputHandler(logging.Handler):
    """Writes the supervisor's log records through Output, behind the supervisor's name column."""

    def __init__(self, output: Output, prefix: str) -> None:
        super().__init__()
        self.output = output
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {message}"
        return message

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.output.write_line(self.prefix, self.format(record))
        except Exception:  # noqa: BLE001 - logging must not raise; Handler.handleError reports it
            self.handleError(record)


def main() -> int:
    output = Output(sys.stdout)
    prefix = format_prefix(SUPERVISOR_NAME, colour_for(0, colours_enabled(sys.stdout)))
    logging.basicConfig(level=logging.INFO, format="%(message)s", handlers=[OutputHandler(output, prefix)],
                        force=True)
    return Stack(output).run()
