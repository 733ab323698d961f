"""Test session set-up: real NATS, real PostgreSQL, the Graph sandbox over HTTPS, and the processes.

NATS and PostgreSQL are the ones at NATS_URL / DB_DSN when they accept connections, otherwise servers
started from the wheels (devstack.servers). Each session gets its own database, stream, subject and consumer, so a
test run does not disturb a running ``make run`` and vice versa.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from common import settings as settings_module
from common.apikeys import ApiKeyStore
from common.db import Database, migrate
from common.settings import LOCAL_DATA_DIR, REPO_ROOT, sandbox_environment
from devstack.servers import ensure_nats, ensure_postgres

# TEST_DATABASE lets two checkouts run their suites at once without sharing a schema.
TEST_DATABASE = os.environ.get("TEST_DATABASE", "mailservice_test")
READY_TIMEOUT_SECONDS = 30.0
MESSAGE_TIMEOUT_SECONDS = 20.0
# The test ingest caches senders and keys this briefly, so tests of revocation wait about a second.
INGEST_CACHE_TTL_SECONDS = "1"
ADMIN_TOKEN = "test-admin-token-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Process exited with {process.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"Port {port} did not open within {READY_TIMEOUT_SECONDS} s:\n{log_path.read_text()[-3000:]}")


def wait_for_log(process: "Process", text: str, timeout: float = READY_TIMEOUT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log():
        if process.popen.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{process.name} did not log {text!r}:\n{process.log()[-3000:]}")
        time.sleep(0.1)


@dataclass
class Process:
    """A child process of the test session, its output in a log file."""

    name: str
    popen: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def spawn(name: str, command: list[str], env: dict[str, str], log_dir: Path) -> Process:
    log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
    output = log_path.open("wb")
    popen = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT,
                             start_new_session=True)
    return Process(name, popen, log_path)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session")
def servers() -> Iterator[dict[str, str]]:
    """Find or start NATS and PostgreSQL; return NATS_URL and DB_DSN of the test database."""
    nats_url = os.environ.get(settings_module.ENV_NATS_URL, settings_module.DEFAULT_NATS_URL)
    base_dsn = os.environ.get(settings_module.ENV_DB_DSN, settings_module.DEFAULT_DB_DSN)
    test_dsn = base_dsn.rsplit("/", 1)[0] + "/" + TEST_DATABASE
    data_dir = LOCAL_DATA_DIR / "test-servers"
    data_dir.mkdir(parents=True, exist_ok=True)

    nats_server = ensure_nats(nats_url, data_dir)
    postgres_server = ensure_postgres(test_dsn, data_dir)
    yield {settings_module.ENV_NATS_URL: nats_url, settings_module.ENV_DB_DSN: test_dsn}
    postgres_server.stop()
    nats_server.stop()


@pytest.fixture(scope="session")
def sandbox(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator["Sandbox"]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("sandbox")
    env = {**os.environ, **sandbox_environment(data_dir, port)}
    process = spawn("sandbox", [sys.executable, "-m", "graph_sandbox", "--port", str(port),
                                "--data-dir", str(data_dir)], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield Sandbox(f"https://127.0.0.1:{port}", data_dir / settings_module.SANDBOX_CA_FILENAME, port, data_dir,
                  process)
    process.stop()


@dataclass
class Sandbox:
    url: str
    ca_path: Path
    port: int
    data_dir: Path
    process: Process

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(f"{self.url}{path}", params=params, verify=self.ca_path, timeout=10)
        response.raise_for_status()
        return response.json()

    def messages(self, mailbox: str | None = None) -> list[dict[str, Any]]:
        params = {"mailbox": mailbox} if mailbox else {}
        return self.get("/_sandbox/messages", **params)["messages"]

    def wait_for_messages(self, mailbox: str, count: int = 1,
                          timeout: float = MESSAGE_TIMEOUT_SECONDS) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        found = self.messages(mailbox)
        while len(found) < count and time.monotonic() < deadline:
            time.sleep(0.1)
            found = self.messages(mailbox)
        return found

    def add_fault(self, **fault: Any) -> None:
        requests.post(f"{self.url}/_sandbox/faults", json=fault, verify=self.ca_path, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        requests.delete(f"{self.url}/_sandbox/faults", verify=self.ca_path, timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def service_env(servers: dict[str, str], sandbox: Sandbox) -> Iterator[dict[str, str]]:
    """The environment of every process under test, and of this test process's settings."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        **servers,
        **sandbox_environment(sandbox.data_dir, sandbox.port),
        settings_module.ENV_NATS_STREAM: f"TEST_{suffix}",
        settings_module.ENV_NATS_SUBJECT_PREFIX: f"test-{suffix}",
        settings_module.ENV_NATS_CONSUMER: f"test-workers-{suffix}",
        settings_module.ENV_NATS_OBJECT_STORE: f"TEST_ATTACHMENTS_{suffix}",
        settings_module.ENV_RETRY_BASE_SECONDS: "0.2",
        settings_module.ENV_RETRY_MAX_SECONDS: "2",
        settings_module.ENV_PUBLISH_TIMEOUT_SECONDS: "2",
        settings_module.ENV_LOG_LEVEL: "DEBUG",
    }
    saved = dict(os.environ)
    os.environ.update(env)
    settings_module.get_settings.cache_clear()
    yield env
    asyncio.run(_delete_stream(env))
    os.environ.clear()
    os.environ.update(saved)
    settings_module.get_settings.cache_clear()


async def _delete_stream(env: dict[str, str]) -> None:
    import nats

    nc = await nats.connect(env[settings_module.ENV_NATS_URL])
    stream = env[settings_module.ENV_NATS_STREAM]
    # The workers also create the dead-letter stream <stream>_DEAD, and the object store is a stream too.
    for name in (stream, f"{stream}_DEAD", f"OBJ_{env[settings_module.ENV_NATS_OBJECT_STORE]}"):
        try:
            await nc.jetstream().delete_stream(name)
        except Exception:  # noqa: BLE001 - a test may have deleted it already, or never created it
            pass
    await nc.close()


@pytest.fixture(scope="session")
def database(service_env: dict[str, str]) -> Iterator[Database]:
    db = Database(service_env[settings_module.ENV_DB_DSN])
    migrate(db)
    yield db
    db.close()


@pytest.fixture(scope="session")
def ingest_server(service_env: dict[str, str], database: Database, log_dir: Path) -> Iterator[tuple[Process, str]]:
    """The send_email function under functions-framework, with keys required: its process and base URL."""
    process, url = start_ingest(service_env, log_dir)
    yield process, url
    process.stop()


@pytest.fixture(scope="session")
def ingest(ingest_server: tuple[Process, str]) -> str:
    """The base URL of the session's send_email function."""
    return ingest_server[1]


def start_ingest(service_env: dict[str, str], log_dir: Path, name: str = "ingest",
                 **settings: str) -> tuple[Process, str]:
    """Start the send_email function; keys are required unless settings override ALLOW_KEYLESS_SEND."""
    port = free_port()
    env = {**os.environ, **service_env, "WORKERS": "1", "THREADS": "4",
           settings_module.ENV_SENDER_CACHE_TTL_SECONDS: INGEST_CACHE_TTL_SECONDS,
           settings_module.ENV_ALLOW_KEYLESS_SEND: "false", **settings}
    process = spawn(name, [sys.executable, "-m", "functions_framework", "--target", "send_email",
                           "--source", "functions/send_email/main.py", "--port", str(port),
                           "--host", "127.0.0.1"], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    return process, f"http://127.0.0.1:{port}"


@dataclass
class AdminApi:
    """The admin function under test: its base URL, token and process."""

    url: str
    token: str
    process: Process

    def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=10, **kwargs)


@pytest.fixture(scope="session")
def admin_api(service_env: dict[str, str], database: Database, log_dir: Path) -> Iterator[AdminApi]:
    """The admin function under functions-framework, with ADMIN_TOKEN set."""
    port = free_port()
    env = {**os.environ, **service_env, "WORKERS": "1", "THREADS": "4",
           settings_module.ENV_ADMIN_TOKEN: ADMIN_TOKEN}
    process = spawn("admin", [sys.executable, "-m", "functions_framework", "--target", "admin",
                              "--source", "functions/admin/main.py", "--port", str(port),
                              "--host", "127.0.0.1"], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield AdminApi(f"http://127.0.0.1:{port}", ADMIN_TOKEN, process)
    process.stop()


@pytest.fixture(scope="session")
def worker(service_env: dict[str, str], database: Database, log_dir: Path) -> Iterator[Process]:
    env = {**os.environ, **service_env}
    process = spawn("worker", [sys.executable, "-m", "functions.process_job"], env, log_dir)
    wait_for_log(process, "Consuming")
    yield process
    process.stop()


class AddedSender(tuple):
    """A sender added by the ``sender`` fixture.

    It unpacks as ``(app_tag, mailbox)`` like before API keys existed; ``api_key`` is its key.
    """

    app_tag: str
    mailbox: str
    api_key: str

    def __new__(cls, app_tag: str, mailbox: str, api_key: str) -> "AddedSender":
        added = super().__new__(cls, (app_tag, mailbox))
        added.app_tag, added.mailbox, added.api_key = app_tag, mailbox, api_key
        return added

    @property
    def auth(self) -> dict[str, str]:
        """The request header that carries this sender's key."""
        return {"Authorization": f"Bearer {self.api_key}"}


# The API key of each sender that the sender fixture added, for helpers that only know the app_tag.
API_KEYS: dict[str, str] = {}


def auth_for(app_tag: str | None) -> dict[str, str]:
    """Return the Authorization header of a sender added by the sender fixture, or none."""
    key = API_KEYS.get(app_tag or "")
    return {"Authorization": f"Bearer {key}"} if key else {}


@pytest.fixture
def sender(database: Database) -> Iterator[Callable[..., AddedSender]]:
    """Add senders with unique app_tags and mailboxes and an API key each, removed after the test."""
    created: list[str] = []

    def add(app_tag: str | None = None, mailbox: str | None = None, enabled: bool = True) -> AddedSender:
        suffix = uuid.uuid4().hex[:8]
        app_tag = app_tag or f"app-{suffix}"
        mailbox = mailbox or f"sender-{suffix}@example.com"
        database.run("INSERT INTO senders (app_tag, mailbox, enabled) VALUES (:t, :m, :e)",
                     t=app_tag, m=mailbox, e=enabled)
        created.append(app_tag)
        added = AddedSender(app_tag, mailbox, ApiKeyStore(database).issue(app_tag).api_key)
        API_KEYS[app_tag] = added.api_key
        return added

    yield add
    for app_tag in created:
        database.run("DELETE FROM senders WHERE app_tag = :t", t=app_tag)
