"""Health endpoints of the HTTP functions, the worker's health server and the container probe."""

import asyncio
import threading

import flask
import pytest

from common import health
from common.errors import DatabaseUnavailable, QueueUnavailable

APP = flask.Flask("health-test")


def ok() -> None:
    pass


def database_down() -> None:
    raise DatabaseUnavailable("PostgreSQL is unreachable: connection refused", reason="refused")


def answer(path, checks, method="GET", **headers):
    with APP.test_request_context(path, method=method, headers=headers):
        return health.health_response(flask.request, checks)


def test_healthz_answers_ok_without_running_checks():
    response = answer("/healthz", {"postgres": database_down})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_is_200_when_every_check_passes():
    response = answer("/readyz", {"nats": ok, "postgres": ok})
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"nats": "ok", "postgres": "ok"}


def test_readyz_is_503_naming_the_failed_check():
    response = answer("/readyz", {"nats": ok, "postgres": database_down})
    assert response.status_code == 503
    assert response.get_json()["checks"]["postgres"] == "PostgreSQL is unreachable: connection refused"


def test_readyz_message_is_german_on_request():
    response = answer("/readyz", {"postgres": database_down}, **{"Accept-Language": "de"})
    assert response.get_json()["message"].startswith("Nicht bereit: postgres")


def test_readyz_rejects_post():
    response = answer("/readyz", {"nats": ok}, method="POST")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD"


def test_other_paths_are_left_to_the_function():
    assert answer("/send-email", {"nats": ok}, method="POST") is None


def test_publisher_check_raises_when_not_connected():
    class Disconnected:
        def connected(self, timeout: float) -> bool:
            return False

    with pytest.raises(QueueUnavailable, match="Not connected to NATS at nats://127.0.0.1:1"):
        health.publisher_check(Disconnected(), "nats://127.0.0.1:1", 0.1)()


def test_nats_check_raises_when_nothing_listens():
    with pytest.raises(QueueUnavailable, match="NATS at nats://127.0.0.1:1 is unreachable"):
        health.nats_check("nats://127.0.0.1:1", 0.5)()


@pytest.fixture
def worker_health_server():
    """The worker's health server on a loop of its own thread; yields a function that GETs a path."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    checks = {"nats": ok, "postgres": database_down}
    server = asyncio.run_coroutine_threadsafe(
        health.start_health_server("127.0.0.1", 0, checks, check_timeout=2.0), loop).result(5)
    port = server.sockets[0].getsockname()[1]
    yield lambda path: health.probe(f"http://127.0.0.1:{port}{path}", timeout=5)
    server.close()
    loop.call_soon_threadsafe(loop.stop)
    thread.join(5)


def test_worker_healthz_is_healthy(worker_health_server):
    assert worker_health_server("/healthz") == (True, "200 OK")


def test_worker_readyz_fails_with_failed_check(worker_health_server):
    healthy, detail = worker_health_server("/readyz")
    assert healthy is False
    assert detail.startswith("503")
    assert "PostgreSQL is unreachable" in detail


def test_worker_unknown_path_is_404(worker_health_server):
    healthy, detail = worker_health_server("/metrics")
    assert healthy is False
    assert detail.startswith("404")


def test_probe_of_closed_port_fails():
    healthy, _ = health.probe("http://127.0.0.1:1/healthz", timeout=2)
    assert healthy is False


def test_probe_cli_exits_1_when_unhealthy(capsys):
    assert health.main(["http://127.0.0.1:1/readyz", "--timeout", "2"]) == 1
