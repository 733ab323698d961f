"""Fixtures that run the Graph sandbox over real HTTPS on a free 127.0.0.1 port."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import requests

from graph_sandbox.config import SandboxConfig
from graph_sandbox.server import SandboxServer
from tests.graph_sandbox.helpers import fetch_token, https_session


@pytest.fixture(scope="session")
def sandbox_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("graph-sandbox")


@pytest.fixture(scope="session")
def shared_sandbox(sandbox_data_dir: Path) -> Iterator[SandboxServer]:
    # SandboxConfig() rather than from_env(), so a developer's SANDBOX_* variables cannot change the tests.
    with SandboxServer("127.0.0.1", 0, sandbox_data_dir, SandboxConfig()) as server:
        yield server


@pytest.fixture
def sandbox(shared_sandbox: SandboxServer, http: requests.Session) -> SandboxServer:
    """The shared sandbox with no messages, drafts, faults or counters left by an earlier test."""
    response = http.post(f"{shared_sandbox.url}/_sandbox/reset")
    assert response.status_code == 204
    return shared_sandbox


@pytest.fixture
def start_sandbox(sandbox_data_dir: Path) -> Iterator[Callable[..., SandboxServer]]:
    """Start a separate sandbox whose config differs from the defaults, e.g. a 1 s token lifetime."""
    started: list[SandboxServer] = []

    def start(**config: Any) -> SandboxServer:
        server = SandboxServer("127.0.0.1", 0, sandbox_data_dir, SandboxConfig(**config)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def http(shared_sandbox: SandboxServer) -> Iterator[requests.Session]:
    with https_session(shared_sandbox.ca_path) as session:
        yield session


@pytest.fixture
def token(sandbox: SandboxServer, http: requests.Session) -> str:
    return fetch_token(http, sandbox.url)
