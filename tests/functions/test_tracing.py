"""One mail, one distributed trace: ingest and worker with tracing on, against Datadog's APM test agent.

The test agent (ddapm-test-agent from PyPI) runs as a real agent on a free port. The ingest and the
worker send their traces to it over HTTP as they would to a Datadog agent. Their DogStatsD metrics go
to a UDP socket of this test.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import requests

from common.apikeys import ApiKeyStore
from common.queue import delete_streams
from common.settings import (ENV_NATS_CONSUMER, ENV_NATS_STREAM, ENV_NATS_SUBJECT_PREFIX, ENV_NATS_URL,
                             SERVICE_API, SERVICE_WORKER, Settings)
from scripts.trace_table import markdown_table, table_rows
from tests.conftest import API_KEYS, Process, auth_for, free_port, spawn, wait_for_log, wait_for_port

pytestmark = pytest.mark.integration

TRACE_TIMEOUT_SECONDS = 20.0
BODY_TEXT = "Geheimer Inhalt 4711: bitte nicht im Trace"
RECIPIENT = "empfaenger-geheim@example.com"
CC_RECIPIENT = "kopie-geheim@example.com"
MAILS_WITHOUT_AGENT = 5


@dataclass
class ApmTestAgent:
    url: str
    process: Process

    def traces(self) -> list[list[dict[str, Any]]]:
        response = requests.get(f"{self.url}/test/traces", timeout=10)
        response.raise_for_status()
        return response.json()


@dataclass
class TracedStack:
    ingest_url: str
    ingest: Process
    worker: Process
    worker_health_url: str
    statsd: StatsdListener
    env: dict[str, str]


@pytest.fixture(scope="session")
def test_agent(log_dir: Path) -> Iterator[ApmTestAgent]:
    executable = shutil.which("ddapm-test-agent", path=os.path.dirname(sys.executable))
    assert executable, "ddapm-test-agent is missing; run make venv (requirements-dev.txt installs it)"
    port = free_port()
    # Its OTLP listeners default to ports 4317 and 4318, which another test session may hold, so they
    # get free ports too. Without DD_* variables it has no API key and forwards nothing.
    env = {name: value for name, value in os.environ.items() if not name.startswith("DD_")}
    process = spawn("test-agent", [executable, "--host", "127.0.0.1", "--port", str(port),
                                   "--otlp-http-port", str(free_port()), "--otlp-grpc-port", str(free_port()),
                                   "--disable-llmobs-data-forwarding"], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield ApmTestAgent(f"http://127.0.0.1:{port}", process)
    process.stop()


def traced_environment(service_env: dict[str, str], agent_url: str, statsd_port: int) -> dict[str, str]:
    """The environment of an ingest and a worker with tracing on, on a stream of their own."""
    suffix = uuid.uuid4().hex[:8]
    base = {name: value for name, value in os.environ.items() if name not in ("DD_SERVICE", "LOG_FORMAT")}
    return {
        **base,
        **service_env,
        ENV_NATS_STREAM: f"TRACE_{suffix}",
        ENV_NATS_SUBJECT_PREFIX: f"trace-{suffix}",
        ENV_NATS_CONSUMER: f"trace-workers-{suffix}",
        "DD_TRACE_ENABLED": "true",
        "DD_TRACE_AGENT_URL": agent_url,
        "DD_TRACE_WRITER_INTERVAL_SECONDS": "0.2",
        "DD_ENV": "test",
        "DD_VERSION": "0.1.0-test",
        "DD_DOGSTATSD_URL": f"udp://127.0.0.1:{statsd_port}",
        "WORKER_SUMMARY_INTERVAL_SECONDS": "1",
        "WORKERS": "1",
        "THREADS": "4",
    }


def start_stack(env: dict[str, str], log_dir: Path, name: str) -> tuple[str, Process, Process]:
    port = free_port()
    ingest = spawn(f"{name}-ingest", [sys.executable, "-m", "functions_framework", "--target", "send_email",
                                      "--source", "functions/send_email/main.py", "--port", str(port),
                                      "--host", "127.0.0.1"], env, log_dir)
    worker = spawn(f"{name}-worker", [sys.executable, "-m", "functions.process_job"], env, log_dir)
    wait_for_port(port, ingest.popen, ingest.log_path)
    wait_for_log(worker, "Consuming")
    return f"http://127.0.0.1:{port}", ingest, worker


async def delete_stream(env: dict[str, str]) -> None:
    nc = await nats.connect(env[ENV_NATS_URL])
    await delete_streams(nc.jetstream(), Settings.from_env(env))
    await nc.close()


@pytest.fixture(scope="module")
def traced(service_env: dict[str, str], database, sandbox, test_agent: ApmTestAgent,
           log_dir: Path) -> Iterator[TracedStack]:
    statsd = StatsdListener()
    env = traced_environment(service_env, test_agent.url, statsd.port)
    health_port = free_port()
    env["WORKER_HEALTH_PORT"] = str(health_port)

    ingest_url, ingest, worker = start_stack(env, log_dir, "traced")
    yield TracedStack(ingest_url, ingest, worker, f"http://127.0.0.1:{health_port}", statsd, env)
    ingest.stop()
    worker.stop()
    statsd.close()
    asyncio.run(delete_stream(env))


@pytest.fixture(scope="module")
def sent_mail(traced: TracedStack, sender, sandbox) -> dict[str, Any]:
    """Send one mail through the traced stack; return its app_tag, mailbox and job id once it arrived."""
    app_tag, mailbox = sender()
    response = requests.post(f"{traced.ingest_url}/send-email", timeout=10, headers=auth_for(app_tag), json={
        "recipients": [RECIPIENT], "cc_recipients": [CC_RECIPIENT], "subject": "Trace",
        "body_content": BODY_TEXT, "app_tag": app_tag})
    assert response.status_code == 202, response.text
    assert sandbox.wait_for_messages(mailbox), "the mail did not arrive in the sandbox"
    return {"app_tag": app_tag, "mailbox": mailbox, "job_id": response.json()["job_id"]}


@pytest.fixture(scope="module")
def sender(database):
    """A module-scoped sender, so one mail serves all tests of this module."""
    created = []

    def add() -> tuple[str, str]:
        suffix = uuid.uuid4().hex[:8]
        app_tag, mailbox = f"trace-{suffix}", f"absender-{suffix}@example.com"
        database.run("INSERT INTO senders (app_tag, mailbox) VALUES (:t, :m)", t=app_tag, m=mailbox)
        created.append(app_tag)
        API_KEYS[app_tag] = ApiKeyStore(database).issue(app_tag).api_key
        return app_tag, mailbox

    yield add
    for app_tag in created:
        database.run("DELETE FROM senders WHERE app_tag = :t", t=app_tag)


def find(spans: list[dict[str, Any]], **expected: str) -> list[dict[str, Any]]:
    return [span for span in spans if all(span.get(key) == value for key, value in expected.items())]


def is_send_mail(span: dict[str, Any]) -> bool:
    return span["name"] == "requests.request" and span["meta"].get("http.url", "").endswith("/sendMail")


def trace_is_complete(trace: list[dict[str, Any]]) -> bool:
    return (bool(find(trace, name="flask.request")) and bool(find(trace, name="nats.publish"))
            and bool(find(trace, name="nats.process")) and any(is_send_mail(span) for span in trace)
            and bool(find(trace, service="postgres")))


@pytest.fixture(scope="module")
def mail_trace(sent_mail: dict[str, Any], test_agent: ApmTestAgent) -> list[dict[str, Any]]:
    """The trace whose process span handled the sent job, once the agent has all of its spans."""
    deadline = time.monotonic() + TRACE_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for trace in test_agent.traces():
            job_spans = find(trace, name="nats.process")
            if any(span["meta"].get("mail.job_id") == sent_mail["job_id"] for span in job_spans) \
                    and trace_is_complete(trace):
                return trace
        time.sleep(0.3)
    names = [[(span["service"], span["name"]) for span in trace] for trace in test_agent.traces()]
    raise AssertionError(f"No complete trace for job {sent_mail['job_id']} within "
                         f"{TRACE_TIMEOUT_SECONDS:.0f} s; the agent has: {names}")


def ancestors(span: dict[str, Any], trace: list[dict[str, Any]]) -> list[int]:
    by_id = {candidate["span_id"]: candidate for candidate in trace}
    chain, parent_id = [], span.get("parent_id")
    while parent_id in by_id and len(chain) < len(trace):
        chain.append(parent_id)
        parent_id = by_id[parent_id].get("parent_id")
    return chain


def test_request_span_is_the_root_of_email_api(mail_trace):
    [request] = find(mail_trace, name="flask.request")
    assert request["service"] == SERVICE_API
    assert not request.get("parent_id")


def test_publish_span_descends_from_request_span(mail_trace):
    [request] = find(mail_trace, name="flask.request")
    [publish] = find(mail_trace, name="nats.publish")
    assert request["span_id"] in ancestors(publish, mail_trace)


def test_process_span_is_child_of_publish_span(mail_trace):
    [publish] = find(mail_trace, name="nats.publish")
    [process] = find(mail_trace, name="nats.process")
    assert process["parent_id"] == publish["span_id"]


def test_process_span_belongs_to_email_worker(mail_trace):
    [process] = find(mail_trace, name="nats.process")
    assert process["service"] == SERVICE_WORKER


def test_sender_lookup_query_is_child_of_process_span(mail_trace):
    [process] = find(mail_trace, name="nats.process")
    queries = [span for span in find(mail_trace, service="postgres") if span["parent_id"] == process["span_id"]]
    # The statement as prepared: pg8000 numbers the parameters, so no value reaches the span.
    lookups = [query for query in queries if query["resource"].endswith("FROM senders s WHERE s.app_tag = $1")]
    assert len(lookups) == 1


def test_query_span_names_host_and_database(mail_trace, traced):
    [process] = find(mail_trace, name="nats.process")
    [query] = [span for span in find(mail_trace, name="postgres.query") if span["parent_id"] == process["span_id"]
               and "FROM senders" in span["resource"]]
    expected_database = traced.env["DB_DSN"].rsplit("/", 1)[1]
    assert query["meta"]["db.system"] == "postgresql"
    assert query["meta"]["out.host"] == "127.0.0.1"
    assert query["meta"]["db.name"] == expected_database


def test_send_mail_request_is_child_of_process_span(mail_trace):
    [process] = find(mail_trace, name="nats.process")
    [send_mail] = [span for span in mail_trace if is_send_mail(span)]
    assert send_mail["parent_id"] == process["span_id"]


def test_send_mail_span_carries_graph_status(mail_trace):
    [send_mail] = [span for span in mail_trace if is_send_mail(span)]
    assert send_mail["meta"]["http.status_code"] == "202"


def test_all_spans_share_one_trace_id(mail_trace):
    assert len({span["trace_id"] for span in mail_trace}) == 1


def test_spans_carry_unified_service_tags(mail_trace):
    [process] = find(mail_trace, name="nats.process")
    assert process["meta"].get("env") == "test"
    assert process["meta"].get("version") == "0.1.0-test"


def test_no_tag_carries_body_addresses_or_credentials(mail_trace, sent_mail):
    dumped = json.dumps(mail_trace)
    forbidden = [BODY_TEXT, RECIPIENT, CC_RECIPIENT, sent_mail["mailbox"], "Bearer", "sandbox-client-secret"]
    assert [text for text in forbidden if text in dumped] == []


def test_no_tag_is_an_authorization_header(mail_trace):
    names = {name.lower() for span in mail_trace for name in span.get("meta", {})}
    assert [name for name in names if "authorization" in name] == []


def test_send_mail_url_shows_masked_mailbox(mail_trace, sent_mail):
    [send_mail] = [span for span in mail_trace if is_send_mail(span)]
    masked = sent_mail["mailbox"][0] + "***@example.com"
    assert f"/users/{masked}/sendMail" in send_mail["meta"]["http.url"]


def test_print_trace_table(mail_trace):
    # Shows the table that docs/tracing.md records; -s prints it.
    table = markdown_table(table_rows(mail_trace))
    print("\n" + table)
    assert table.count("\n") == len(mail_trace) + 1


def json_lines(process: Process) -> list[dict[str, Any]]:
    lines = []
    for line in process.log().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def full_trace_id(span: dict[str, Any]) -> str:
    """The 128-bit trace id as ddtrace's log injection writes it: upper half (_dd.p.tid) then lower half."""
    return span["meta"].get("_dd.p.tid", "0" * 16) + f"{span['trace_id']:016x}"


def test_worker_log_line_carries_trace_and_span_id(mail_trace, traced, sent_mail):
    [process] = find(mail_trace, name="nats.process")
    [sent_line] = [line for line in json_lines(traced.worker)
                   if line.get("job_id") == sent_mail["job_id"] and line["message"].startswith("Job sent")]
    assert sent_line["dd.trace_id"] == full_trace_id(process)
    assert sent_line["dd.span_id"] == str(process["span_id"])


def test_ingest_log_line_carries_trace_id(mail_trace, traced, sent_mail):
    [request] = find(mail_trace, name="flask.request")
    [queued] = [line for line in json_lines(traced.ingest)
                if line.get("job_id") == sent_mail["job_id"] and line["message"].startswith("Job queued")]
    assert queued["dd.trace_id"] == full_trace_id(request)


class StatsdListener:
    """A UDP socket in place of DogStatsD that keeps every metric line it received."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.socket.settimeout(0.2)
        self.lines: list[str] = []

    @property
    def port(self) -> int:
        return self.socket.getsockname()[1]

    def wait_for(self, prefix: str, text: str, timeout: float = 10.0) -> list[str]:
        """Return the received lines that start with prefix and contain text, waiting up to timeout."""
        deadline = time.monotonic() + timeout
        while True:
            found = [line for line in self.lines if line.startswith(prefix) and text in line]
            if found or time.monotonic() > deadline:
                return found
            try:
                self.lines += self.socket.recv(65535).decode().splitlines()
            except socket.timeout:
                continue

    def close(self) -> None:
        self.socket.close()


def test_metrics_count_accepted_mail(traced, sent_mail):
    [accepted] = traced.statsd.wait_for("mailservice.mail.accepted:", f"app_tag:{sent_mail['app_tag']}")
    assert accepted.split("|")[:2] == ["mailservice.mail.accepted:1", "c"]


def test_metrics_count_sent_mail(traced, sent_mail):
    [sent] = traced.statsd.wait_for("mailservice.mail.sent:", f"app_tag:{sent_mail['app_tag']}")
    assert sent.split("|")[:2] == ["mailservice.mail.sent:1", "c"]


def test_sent_metric_carries_graph_status_and_service(traced, sent_mail):
    [sent] = traced.statsd.wait_for("mailservice.mail.sent:", f"app_tag:{sent_mail['app_tag']}")
    tags = sent.split("|#")[1].split(",")
    assert {"graph_status:202", f"service:{SERVICE_WORKER}", "env:test"} <= set(tags)


def test_send_latency_is_a_distribution(traced, sent_mail):
    [latency] = traced.statsd.wait_for("mailservice.mail.send_latency:", f"app_tag:{sent_mail['app_tag']}")
    assert latency.split("|")[1] == "d"


def test_worker_gauges_pending_jobs(traced, sent_mail):
    assert traced.statsd.wait_for("mailservice.queue.pending:", "|g")


def test_worker_logs_periodic_summary(traced, sent_mail):
    wait_for_log(traced.worker, "(sent 1, retried 0, failed 0)", timeout=10)
    assert "pending in stream" in traced.worker.log()


def test_ingest_readyz_reports_nats_and_postgres(traced):
    response = requests.get(f"{traced.ingest_url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"] == {"nats": "ok", "postgres": "ok"}


def test_ingest_healthz_answers_ok(traced):
    response = requests.get(f"{traced.ingest_url}/healthz", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_worker_readyz_reports_nats_and_postgres(traced):
    response = requests.get(f"{traced.worker_health_url}/readyz", timeout=10)
    assert response.status_code == 200
    assert response.json()["checks"] == {"nats": "ok", "postgres": "ok"}


def test_worker_healthz_answers_ok(traced):
    response = requests.get(f"{traced.worker_health_url}/healthz", timeout=10)
    assert response.status_code == 200


def ddtrace_complaints(process: Process) -> list[str]:
    """Messages at WARNING or above from ddtrace or its DogStatsD client, digits replaced by '#'."""
    complaints = []
    for line in process.log().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record["level"] in ("WARNING", "ERROR", "CRITICAL") and record["logger.name"].startswith("ddtrace"):
                complaints.append(re.sub(r"\d+", "#", record["message"]))
        elif "ddtrace" in line and ("WARNING" in line or "ERROR" in line):
            complaints.append(re.sub(r"\d+", "#", line))
    return complaints


def test_unreachable_agent_leaves_mail_flowing_without_repeated_errors(service_env, database, sandbox, sender,
                                                                         log_dir):
    closed_port = free_port()
    env = traced_environment(service_env, f"http://127.0.0.1:{closed_port}", free_port())
    ingest_url, ingest, worker = start_stack(env, log_dir, "no-agent")
    try:
        app_tag, mailbox = sender()
        for number in range(MAILS_WITHOUT_AGENT):
            response = requests.post(f"{ingest_url}/send-email", timeout=10, headers=auth_for(app_tag), json={
                "recipients": ["a@example.com"], "subject": str(number), "app_tag": app_tag})
            assert response.status_code == 202
            time.sleep(0.3)  # longer than the writer interval, so each mail is a failed send of its own
        assert len(sandbox.wait_for_messages(mailbox, MAILS_WITHOUT_AGENT)) == MAILS_WITHOUT_AGENT
        time.sleep(1.0)
    finally:
        ingest.stop()
        worker.stop()
        asyncio.run(delete_stream(env))

    # ddtrace's loggers let each message through once a minute per process (DD_TRACE_LOGGING_RATE).
    # The ingest has two processes: gunicorn's arbiter also sends one span, of functions-framework's
    # app context that imports the function.
    assert max(Counter(ddtrace_complaints(ingest)).values(), default=0) <= 2
    assert max(Counter(ddtrace_complaints(worker)).values(), default=0) <= 1


def test_tracing_off_logs_text_and_nothing_from_ddtrace(ingest, worker, sandbox, sender):
    app_tag, mailbox = sender()
    response = requests.post(f"{ingest}/send-email", timeout=10, headers=auth_for(app_tag),
                             json={"recipients": ["a@example.com"], "subject": "off", "app_tag": app_tag})
    assert response.status_code == 202
    assert sandbox.wait_for_messages(mailbox)
    logs = worker.log()
    assert "ddtrace" not in logs
    assert "dd.trace_id" not in logs
    assert not logs.lstrip().startswith("{")
