"""NATS and PostgreSQL killed, stopped and restarted under the running service."""

import time

import pytest

from tests.faults.stack import mail, wait_until

pytestmark = pytest.mark.faults

JOBS = 10
SETTLE_SECONDS = 60


def test_nats_kill_loses_no_accepted_job(stack):
    app_tag, mailbox = stack.add_sender()
    stack.start_ingest()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"stored-{n}"), f"stored-{n}") for n in range(JOBS)]

    stack.servers.nats.kill()
    stack.servers.nats.start()
    stack.start_worker()

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"stored-{n}": 1 for n in range(JOBS)}


def test_ingest_answers_503_while_nats_is_down(stack):
    app_tag, _ = stack.add_sender()
    stack.start_ingest()
    stack.post_until_accepted(mail(app_tag, "before"), "before")

    stack.servers.nats.kill()
    try:
        response = stack.post(mail(app_tag, "during"))
    finally:
        stack.servers.nats.start()

    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    assert response.headers["Retry-After"]


def test_service_reconnects_after_nats_restart(stack):
    app_tag, mailbox = stack.add_sender()
    stack.start_ingest()
    stack.start_worker()
    first = stack.post_until_accepted(mail(app_tag, "first"), "first")
    stack.wait_for_statuses([first], {"sent"}, SETTLE_SECONDS)

    stack.servers.nats.restart()
    second = stack.post_until_accepted(mail(app_tag, "second"), "second")

    statuses = stack.wait_for_statuses([first, second], {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {"first": 1, "second": 1}


def test_postgres_outage_makes_jobs_wait(stack):
    app_tag, mailbox = stack.add_sender()
    stack.start_ingest()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"wait-{n}"), f"wait-{n}") for n in range(JOBS)]

    stack.servers.postgres.stop()
    try:
        stack.start_worker()
        time.sleep(3)
        sent_while_down = stack.captured_subjects([mailbox])
        ingest_while_down = stack.post(mail(app_tag, "refused"))
    finally:
        stack.servers.postgres.start()

    assert sum(sent_while_down.values()) == 0
    assert ingest_while_down.status_code == 503
    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"wait-{n}": 1 for n in range(JOBS)}


def test_postgres_restart_mid_stream_sends_every_job_once(stack):
    app_tag, mailbox = stack.add_sender()
    # Slow sends, so that jobs are in every state when PostgreSQL goes away.
    stack.sandbox.add_fault(latency_ms=300, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"mid-{n}"), f"mid-{n}") for n in range(JOBS)]
    assert wait_until(lambda: sum(stack.captured_subjects([mailbox]).values()) >= 2, 20)

    stack.servers.postgres.restart()

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"mid-{n}": 1 for n in range(JOBS)}
