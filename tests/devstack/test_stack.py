"""Units of the `make run` supervisor: output prefixing, port checks, process groups and environment."""

from __future__ import annotations

import io
import os
import socket
import sys
import sysconfig
import threading
import time
from pathlib import Path

import pytest

from common import settings
from devstack.admin_token import AdminToken, TokenOrigin
from devstack.environment import child_environment, user_environment, uses_sandbox
from devstack.stack import (ADMIN_SOURCE, Child, Output, ProcessSpec, Stack, StackError, admin_defined,
                            check_ports_free, format_prefix, port_in_use, process_specs, pump_lines,
                            stop_children, summary_lines)


def pumped(data: bytes, prefix: str = "worker   | ") -> tuple[list[str], list[str]]:
    """Pump data through a pipe; return the written lines and the lines passed to on_line."""
    read_fd, write_fd = os.pipe()
    os.write(write_fd, data)
    os.close(write_fd)
    stream = io.StringIO()
    seen: list[str] = []

    with os.fdopen(read_fd, "rb") as source:
        pump_lines(source, prefix, Output(stream), seen.append)
    return stream.getvalue().splitlines(), seen


def wait_until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


# --- output --------------------------------------------------------------------------------------


def test_format_prefix_pads_name() -> None:
    assert format_prefix("sandbox") == "sandbox  | "
    assert format_prefix("devstack") == "devstack | "


def test_format_prefix_colours_only_when_asked() -> None:
    coloured = format_prefix("ingest", "36")

    assert coloured.startswith("\033[36mingest")
    assert "\033[0m" in coloured
    assert "\033[" not in format_prefix("ingest")


def test_pump_lines_prefixes_each_line() -> None:
    lines, _ = pumped(b"first\nsecond\r\nlast without newline")

    assert lines == ["worker   | first", "worker   | second", "worker   | last without newline"]


def test_pump_lines_passes_lines_to_callback() -> None:
    _, seen = pumped(b"Graph sandbox listening on https://127.0.0.1:8443\n")

    assert seen == ["Graph sandbox listening on https://127.0.0.1:8443"]


def test_pump_lines_replaces_invalid_utf8() -> None:
    lines, _ = pumped(b"caf\xe9\n")

    assert lines == ["worker   | caf\ufffd"]


def test_output_keeps_lines_whole_across_threads() -> None:
    stream = io.StringIO()
    output = Output(stream)

    def write(name: str) -> None:
        for number in range(200):
            output.write_line(f"{name} | ", f"line {number}")

    threads = [threading.Thread(target=write, args=(name,)) for name in ("a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lines = stream.getvalue().splitlines()
    assert len(lines) == 600
    assert all(line.split(" | ")[1].startswith("line ") for line in lines)


# --- port checks ---------------------------------------------------------------------------------


def test_check_ports_free_names_taken_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        with pytest.raises(StackError, match=f"Port {port} for ingest is already in use"):
            check_ports_free([("ingest", port)])


def test_check_ports_free_accepts_free_ports(free_port) -> None:
    check_ports_free([("ingest", free_port()), ("admin", free_port())])


def test_port_in_use_false_after_listener_closes() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)

    assert not port_in_use(port)


# --- which processes -----------------------------------------------------------------------------


def test_admin_defined_finds_function(tmp_path: Path) -> None:
    source = tmp_path / "main.py"
    source.write_text("import functions_framework\n\n@functions_framework.http\ndef admin(request):\n    ...\n")

    assert admin_defined(source)


@pytest.mark.parametrize("text", ["", "def admin_helper():\n    ...\n", "    def admin(self):\n        ...\n"])
def test_admin_defined_ignores_other_code(tmp_path: Path, text: str) -> None:
    source = tmp_path / "main.py"
    source.write_text(text)

    assert not admin_defined(source)


def test_admin_defined_false_without_file(tmp_path: Path) -> None:
    assert not admin_defined(tmp_path / "missing.py")


def test_admin_function_of_repo_is_detected() -> None:
    assert admin_defined(ADMIN_SOURCE)


def test_process_specs_full_stack(tmp_path: Path) -> None:
    specs = process_specs(use_sandbox=True, with_admin=True, sandbox_dir=tmp_path)

    assert [spec.name for spec in specs] == ["sandbox", "ingest", "admin", "worker"]
    assert [spec.port for spec in specs] == [8443, 8080, 8081, None]


def test_process_specs_without_sandbox_and_admin(tmp_path: Path) -> None:
    specs = process_specs(use_sandbox=False, with_admin=False, sandbox_dir=tmp_path)

    assert [spec.name for spec in specs] == ["ingest", "worker"]


# --- environment ---------------------------------------------------------------------------------


def test_user_environment_environment_wins_over_dotenv(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("LOG_LEVEL=DEBUG\nTENANT_ID=from-file\n")

    merged = user_environment({"LOG_LEVEL": "WARNING"}, dotenv)

    assert merged["LOG_LEVEL"] == "WARNING"
    assert merged["TENANT_ID"] == "from-file"


def test_user_environment_defaults_servers(tmp_path: Path) -> None:
    merged = user_environment({}, tmp_path / "missing.env")

    assert merged["NATS_URL"] == settings.DEFAULT_NATS_URL
    assert merged["DB_DSN"] == settings.DEFAULT_DB_DSN


def test_child_environment_points_graph_at_sandbox(tmp_path: Path) -> None:
    env = child_environment({"PATH": "/usr/bin"}, tmp_path, 9443)

    assert env["AUTHORITY_HOST"] == "https://127.0.0.1:9443"
    assert env["GRAPH_BASE_URL"] == "https://127.0.0.1:9443/v1.0"
    assert env["GRAPH_CA_BUNDLE"] == str(tmp_path / "ca.pem")


def test_child_environment_keeps_user_authority(tmp_path: Path) -> None:
    user = {"PATH": "/usr/bin", "AUTHORITY_HOST": "https://login.microsoftonline.com", "TENANT_ID": "t"}

    env = child_environment(user, tmp_path, 9443)

    assert not uses_sandbox(user)
    assert env["AUTHORITY_HOST"] == "https://login.microsoftonline.com"
    assert env["TENANT_ID"] == "t"
    assert "GRAPH_CA_BUNDLE" not in env


def test_child_environment_defaults_workers_to_cpus(tmp_path: Path) -> None:
    assert child_environment({}, tmp_path, 9443)["WORKERS"] == str(os.cpu_count())


def test_child_environment_keeps_user_workers(tmp_path: Path) -> None:
    assert child_environment({"WORKERS": "3"}, tmp_path, 9443)["WORKERS"] == "3"


def test_child_environment_puts_venv_first_on_path(tmp_path: Path) -> None:
    env = child_environment({"PATH": "/usr/bin"}, tmp_path, 9443)

    assert env["PATH"].split(os.pathsep) == [sysconfig.get_path("scripts"), "/usr/bin"]


def test_child_environment_listens_on_loopback(tmp_path: Path) -> None:
    assert child_environment({}, tmp_path, 9443)["HOST"] == "127.0.0.1"


# --- children ------------------------------------------------------------------------------------

# Starts a grandchild in the same process group, reports its pid, then ignores SIGTERM like a hung server.
STUBBORN_PARENT = """
import signal, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("grandchild", grandchild.pid, flush=True)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
time.sleep(60)
"""


def start_child(code: str, ready_text: str | None = None) -> tuple[Child, io.StringIO]:
    stream = io.StringIO()
    spec = ProcessSpec("stub", [sys.executable, "-c", code], ready_text=ready_text)
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Child(spec, environment, Output(stream), format_prefix("stub")), stream


def test_child_ready_after_ready_text() -> None:
    child, _ = start_child("print('Graph sandbox listening on https://127.0.0.1:1'); import time; time.sleep(60)",
                           ready_text="Graph sandbox listening on")
    try:
        wait_until(child.ready)
        assert child.exit_code() is None
    finally:
        stop_children([child], timeout=5)


def test_stop_children_kills_process_group() -> None:
    child, stream = start_child(STUBBORN_PARENT)
    wait_until(lambda: "grandchild" in stream.getvalue())
    grandchild_pid = int(stream.getvalue().split()[-1])

    stop_children([child], timeout=1)

    assert child.exit_code() is not None
    assert not process_alive(grandchild_pid)


def test_stop_children_prefixes_child_output() -> None:
    child, stream = start_child("print('hello')")
    child.process.wait(10)

    stop_children([child], timeout=1)

    assert stream.getvalue() == "stub     | hello\n"


def test_child_unknown_command_names_process() -> None:
    spec = ProcessSpec("ingest", ["no-such-command-here"])

    with pytest.raises(StackError, match="ingest: command 'no-such-command-here' not found"):
        Child(spec, {"PATH": "/nonexistent"}, Output(io.StringIO()), "")


# --- admin token and summary ---------------------------------------------------------------------

SUMMARY_ENV = {"NATS_URL": "nats://127.0.0.1:4222", "DB_DSN": "postgresql://postgres@127.0.0.1:5432/mailservice"}


def test_only_admin_child_gets_admin_token(tmp_path: Path) -> None:
    stack = Stack(Output(io.StringIO()), environ={"PATH": "/usr/bin"}, data_dir=tmp_path)
    stack._provide_admin_token()
    admin, ingest = ProcessSpec("admin", ["x"]), ProcessSpec("ingest", ["x"])

    assert stack._child_environment(admin)["ADMIN_TOKEN"] == (tmp_path / "admin-token").read_text().strip()
    assert "ADMIN_TOKEN" not in stack._child_environment(ingest)


def test_generated_admin_token_is_printed_once(tmp_path: Path) -> None:
    stream = io.StringIO()
    Stack(Output(stream), environ={"PATH": "/usr/bin"}, data_dir=tmp_path)._provide_admin_token()
    Stack(Output(stream), environ={"PATH": "/usr/bin"}, data_dir=tmp_path)._provide_admin_token()
    token = (tmp_path / "admin-token").read_text().strip()

    assert stream.getvalue().count(token) == 1


def test_summary_shows_admin_url_and_curl_without_token(tmp_path: Path) -> None:
    token = AdminToken("secret-admin-token-0123456789", TokenOrigin.FILE, tmp_path / "admin-token")

    text = "\n".join(summary_lines(SUMMARY_ENV, True, True, tmp_path, [], token))

    assert "http://127.0.0.1:8081/senders" in text
    assert 'curl -H "Authorization: Bearer $ADMIN_TOKEN" http://127.0.0.1:8081/senders' in text
    assert f"ADMIN_TOKEN=$(cat {tmp_path / 'admin-token'})" in text
    assert token.value not in text


def test_summary_without_admin_omits_admin_lines(tmp_path: Path) -> None:
    text = "\n".join(summary_lines(SUMMARY_ENV, True, False, tmp_path, []))

    assert "8081" not in text
