"""Fixtures for the devstack tests: free ports and private servers with their data in a temporary directory."""

from __future__ import annotations

import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devstack.servers import NatsServer, PostgresServer, start_nats, start_postgres


def find_free_port() -> int:
    """Return a TCP port that nothing on 127.0.0.1 listens on at the moment of the call."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def free_port() -> Callable[[], int]:
    return find_free_port


@pytest.fixture
def server_dir() -> Iterator[Path]:
    """A data directory outside tmp_path, because PostgreSQL runs as another user when the tests run as root.

    Each pytest session resets /tmp/pytest-of-<user> to mode 0700, so a concurrent session would lock
    that user out of a data directory below tmp_path while its server runs.
    """
    path = Path(tempfile.mkdtemp(prefix="devstack-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def postgres(server_dir: Path) -> Iterator[PostgresServer]:
    server = start_postgres(find_free_port(), server_dir)
    yield server
    server.stop()


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[NatsServer]:
    server = start_nats(find_free_port(), tmp_path)
    yield server
    server.stop()
