"""``python -m graph_sandbox``: options, the listening line, request logs and SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from common import settings
from graph_sandbox.__main__ import parse_args
from tests.graph_sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    GRAPH_SCOPE,
    https_session,
    token_url,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"^Graph sandbox listening on (https://127\.0\.0\.1:(\d+)) \(CA: (.+)\)$")


def test_defaults_come_from_settings() -> None:
    args = parse_args([], environ={})

    assert args.host == settings.DEFAULT_SANDBOX_HOST
    assert args.port == settings.DEFAULT_SANDBOX_PORT
    assert args.data_dir == settings.DEFAULT_SANDBOX_DATA_DIR


def test_environment_overrides_defaults() -> None:
    environ = {"SANDBOX_HOST": "::1", "SANDBOX_PORT": "9443", "SANDBOX_DATA_DIR": "/tmp/sandbox-env"}

    args = parse_args([], environ=environ)

    assert (args.host, args.port, args.data_dir) == ("::1", 9443, Path("/tmp/sandbox-env"))


def test_flags_override_environment() -> None:
    environ = {"SANDBOX_HOST": "::1", "SANDBOX_PORT": "9443", "SANDBOX_DATA_DIR": "/tmp/sandbox-env"}

    args = parse_args(
        ["--host", "127.0.0.1", "--port", "0", "--data-dir", "/tmp/sandbox-flag"], environ=environ
    )

    assert (args.host, args.port, args.data_dir) == ("127.0.0.1", 0, Path("/tmp/sandbox-flag"))


def test_cli_serves_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "LOG_LEVEL": "INFO"}
    process = subprocess.Popen(
        [sys.executable, "-m", "graph_sandbox", "--port", "0", "--data-dir", str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline().strip()
        match = LISTENING.match(line)
        assert match, line
        base_url, ca_path = match.group(1), Path(match.group(3))
        with https_session(ca_path) as session:
            token = session.post(
                token_url(base_url),
                data={
                    "grant_type": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "scope": GRAPH_SCOPE,
                },
            ).json()["access_token"]
            health = session.get(f"{base_url}/_sandbox/health?secret=query-value")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)

    assert ca_path == tmp_path / "ca.pem"
    assert health.status_code == 200
    assert process.returncode == 0
    assert f"POST /{settings.SANDBOX_TENANT_ID}/oauth2/v2.0/token 200" in stderr
    assert "GET /_sandbox/health 200" in stderr
    assert token not in stderr
    assert "query-value" not in stderr
    assert "Graph sandbox stopped" in stderr
