"""Fault tests: private NATS and PostgreSQL that the tests kill and restart, a sandbox, own processes."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from common import settings as settings_module
from common.db import Database, migrate
from common.settings import sandbox_environment
from devstack.servers import ensure_database, postgres_url, start_nats, start_postgres
from tests.conftest import Sandbox, free_port, spawn, wait_for_port
from tests.faults.stack import FaultServers, FaultStack

FAULT_DATABASE = "mailservice_faults"
# Exchange files sent mail in Sent Items a moment after the 202; the sandbox models half a second.
SANDBOX_SENT_ITEMS_DELAY = "0.5"

# Settings that make retries and redeliveries take seconds instead of minutes.
FAST_RETRIES = {
    settings_module.ENV_RETRY_BASE_SECONDS: "0.2",
    settings_module.ENV_RETRY_MAX_SECONDS: "1",
    settings_module.ENV_ACK_WAIT_SECONDS: "3",
    settings_module.ENV_SENT_ITEMS_LAG_SECONDS: "2",
    # The worker trusts a miss in Sent Items only this plus the lag after an attempt started.
    settings_module.ENV_GRAPH_TIMEOUT_SECONDS: "4",
    settings_module.ENV_PUBLISH_TIMEOUT_SECONDS: "2",
    settings_module.ENV_SENDER_CACHE_TTL_SECONDS: "300",
    settings_module.ENV_LOG_LEVEL: "INFO",
}


@pytest.fixture(scope="package")
def fault_servers() -> Iterator[FaultServers]:
    # Not under pytest's tmp_path: PostgreSQL runs as another user when the tests run as root, and each
    # pytest session resets /tmp/pytest-of-<user> to mode 0700 (see the NOTE in devstack/processes.py).
    data_dir = Path(tempfile.mkdtemp(prefix="mailservice-faults-"))
    nats_server = start_nats(free_port(), data_dir / "nats-server")
    postgres_server = start_postgres(free_port(), data_dir / "postgres-server")
    dsn = postgres_url("127.0.0.1", postgres_server.port, database=FAULT_DATABASE)
    ensure_database(dsn)
    database = Database(dsn)
    migrate(database)
    database.close()

    yield FaultServers(nats_server, postgres_server, dsn)
    postgres_server.stop()
    nats_server.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture(scope="package")
def fault_sandbox(log_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    port = free_port()
    data_dir = tmp_path_factory.mktemp("fault-sandbox")
    env = {**os.environ, **sandbox_environment(data_dir, port),
           "SANDBOX_SENT_ITEMS_DELAY_SECONDS": SANDBOX_SENT_ITEMS_DELAY}
    process = spawn("fault-sandbox", [sys.executable, "-m", "graph_sandbox", "--port", str(port),
                                      "--data-dir", str(data_dir)], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield Sandbox(f"https://127.0.0.1:{port}", data_dir / settings_module.SANDBOX_CA_FILENAME, port, data_dir,
                  process)
    process.stop()


@pytest.fixture
def stack(fault_servers: FaultServers, fault_sandbox: Sandbox, log_dir: Path) -> Iterator[FaultStack]:
    """A fresh stream, subject and consumer on the private servers; the test starts the processes."""
    suffix = uuid.uuid4().hex[:8]
    env = {
        settings_module.ENV_NATS_URL: fault_servers.nats.url,
        settings_module.ENV_DB_DSN: fault_servers.dsn,
        **sandbox_environment(fault_sandbox.data_dir, fault_sandbox.port),
        settings_module.ENV_NATS_STREAM: f"FAULT_{suffix}",
        settings_module.ENV_NATS_SUBJECT_PREFIX: f"fault-{suffix}",
        settings_module.ENV_NATS_CONSUMER: f"fault-workers-{suffix}",
        **FAST_RETRIES,
    }
    stack = FaultStack(fault_servers, fault_sandbox, log_dir, env)
    yield stack
    fault_sandbox.clear_faults()
    stack.stop()
    # A test that failed while a server was down must not take the next tests with it.
    for server in (fault_servers.nats, fault_servers.postgres):
        if not server.running():
            server.start()
