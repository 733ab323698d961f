"""Trace propagation through NATS headers and the helpers' behaviour with tracing off.

The in-process tests use ddtrace's global tracer with sending turned off (``enabled = False``): it
still creates spans and ids, so propagation can be checked without an agent.
"""

import pytest
from ddtrace.propagation.http import HTTPPropagator
from ddtrace.trace import tracer

from common import tracing


@pytest.fixture
def active_tracer(monkeypatch):
    monkeypatch.setattr(tracer, "enabled", False)
    monkeypatch.setattr(tracing, "_tracer", tracer)
    return tracer


@pytest.fixture
def tracing_off(monkeypatch):
    monkeypatch.setattr(tracing, "_tracer", None)


def test_publish_span_injects_datadog_headers(active_tracer):
    headers = {}
    with tracing.publish_span("mail.jobs", headers, "job-1"):
        pass
    assert "x-datadog-trace-id" in headers


def test_publish_span_injects_w3c_traceparent(active_tracer):
    headers = {}
    with tracing.publish_span("mail.jobs", headers, "job-1"):
        pass
    assert "traceparent" in headers


def test_publish_span_is_child_of_active_span(active_tracer):
    headers = {}
    with active_tracer.trace("flask.request") as request_span:
        with tracing.publish_span("mail.jobs", headers):
            publish_span_id = active_tracer.current_span().span_id
    assert int(headers["x-datadog-trace-id"]) == request_span.trace_id & (2**64 - 1)
    assert int(headers["x-datadog-parent-id"]) == publish_span_id


def test_process_span_continues_the_published_trace(active_tracer):
    headers = {}
    with active_tracer.trace("nats.publish") as publish:
        HTTPPropagator.inject(publish.context, headers)

    def handler():
        span = active_tracer.current_span()
        return span.trace_id, span.parent_id, span.name

    assert tracing.run_in_process_span("mail.jobs", headers, handler) == (
        publish.trace_id, publish.span_id, tracing.PROCESS_SPAN_NAME)


def test_process_span_without_headers_starts_a_trace(active_tracer):
    parent_id = tracing.run_in_process_span("mail.jobs", None, lambda: active_tracer.current_span().parent_id)
    assert parent_id is None


def test_process_span_leaves_no_active_span(active_tracer):
    tracing.run_in_process_span("mail.jobs", None, lambda: None)
    assert active_tracer.current_span() is None


def test_process_span_passes_handler_arguments(active_tracer):
    assert tracing.run_in_process_span("mail.jobs", None, lambda data, attempt: (data, attempt), b"x", 2) == (
        b"x", 2)


def test_tags_land_on_the_current_span(active_tracer):
    with active_tracer.trace("nats.process") as span:
        tracing.tag_current_span(**{"mail.job_id": "job-1", "mail.attempt": 3})
    assert span.get_tag("mail.job_id") == "job-1"
    assert span.get_metric("mail.attempt") == 3


def test_publish_span_off_leaves_headers_alone(tracing_off):
    headers = {"Nats-Msg-Id": "job-1"}
    with tracing.publish_span("mail.jobs", headers, "job-1"):
        pass
    assert headers == {"Nats-Msg-Id": "job-1"}


def test_process_span_off_only_calls_the_handler(tracing_off):
    assert tracing.run_in_process_span("mail.jobs", {"x-datadog-trace-id": "1"}, lambda: "done") == "done"


def test_connection_tags_name_host_port_and_database():
    tags = tracing.connection_tags({"host": "db.local", "port": 5433, "database": "mail", "user": "svc",
                                    "password": "secret"})
    assert tags == {"out.host": "db.local", "network.destination.port": 5433, "db.name": "mail",
                    "db.user": "svc"}


def test_connection_tags_default_database_is_the_user():
    assert tracing.connection_tags({"host": "h", "port": 5432, "database": None, "user": "svc"})["db.name"] == "svc"
