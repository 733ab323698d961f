"""DogStatsD metrics: the packets the client sends and the counts behind the worker's summary."""

import socket
from datetime import datetime, timedelta, timezone

import pytest

from common.jobs import JobStatus
from common.metrics import Metric, Metrics, build_client, create_metrics, seconds_since
from common.settings import ObservabilitySettings


@pytest.fixture
def listener():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(5)
    yield sock
    sock.close()


@pytest.fixture
def metrics(listener):
    return Metrics(build_client(f"udp://127.0.0.1:{listener.getsockname()[1]}"))


def receive(listener) -> str:
    return listener.recv(65535).decode()


def test_increment_sends_counter_with_app_tag_and_status(metrics, listener):
    metrics.increment(Metric.SENT, "rechnungssystem", 202)
    assert receive(listener).startswith("mailservice.mail.sent:1|c|#app_tag:rechnungssystem,graph_status:202")


def test_throttled_job_counts_as_retried_and_throttled(metrics, listener):
    metrics.record_job("rechnungssystem", JobStatus.RETRYING, 429)
    names = [receive(listener).split(":")[0] for _ in range(2)]
    assert names == ["mailservice.mail.retried", "mailservice.mail.throttled"]


def test_sent_job_records_send_latency(metrics, listener):
    accepted_at = (datetime.now(timezone.utc) - timedelta(seconds=3)).isoformat()
    metrics.record_job("rechnungssystem", JobStatus.SENT, 202, accepted_at)
    receive(listener)
    name, rest = receive(listener).split(":", 1)
    value, kind = rest.split("|")[:2]
    assert name == "mailservice.mail.send_latency"
    assert kind == "d"
    assert float(value) >= 3.0


def test_gauge_sends_queue_pending(metrics, listener):
    metrics.gauge(Metric.QUEUE_PENDING, 7)
    assert receive(listener).startswith("mailservice.queue.pending:7|g")


def test_dead_job_counts_as_failed():
    metrics = Metrics(None)
    metrics.record_job("app", JobStatus.DEAD, 503)
    assert metrics.take_counts() == {Metric.FAILED: 1}


def test_take_counts_starts_again_from_zero():
    metrics = Metrics(None)
    metrics.record_job("app", JobStatus.SENT, 202)
    metrics.take_counts()
    assert metrics.take_counts() == {}


def test_unreachable_dogstatsd_does_not_raise():
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    metrics = Metrics(build_client(f"udp://127.0.0.1:{port}"))
    for _ in range(3):
        metrics.increment(Metric.ACCEPTED, "app")
    assert metrics.take_counts() == {Metric.ACCEPTED: 3}


def test_unix_socket_url_builds_socket_client():
    assert build_client("unix:///var/run/datadog/dsd.socket").socket_path == "/var/run/datadog/dsd.socket"


def test_unknown_url_scheme_is_rejected():
    with pytest.raises(ValueError, match="expected udp://HOST:PORT"):
        build_client("http://127.0.0.1:8125")


def test_disabled_metrics_have_no_client():
    settings = ObservabilitySettings.from_env({"DD_TRACE_ENABLED": "false"})
    assert create_metrics(settings)._client is None


def test_seconds_since_unparsable_timestamp_is_none():
    assert seconds_since("yesterday") is None
