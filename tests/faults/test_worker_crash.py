"""Workers killed with SIGKILL or stopped with SIGTERM while they send."""

import signal

import pytest

from tests.faults.stack import active_requests, mail, wait_until

pytestmark = pytest.mark.faults

JOBS = 4
SETTLE_SECONDS = 40


def test_kill_after_graph_took_the_request_sends_once(stack):
    app_tag, mailbox = stack.add_sender()
    # Graph delays each request by 3 s and then stores the mail, whether or not the worker still waits.
    stack.sandbox.add_fault(latency_ms=3000, count=JOBS, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    worker = stack.start_worker()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"kill-{n}"), f"kill-{n}") for n in range(JOBS)]
    assert wait_until(lambda: active_requests(stack.sandbox, mailbox) == JOBS, 10)

    stack.kill_worker(worker)
    stack.start_worker()

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"kill-{n}": 1 for n in range(JOBS)}


def test_kill_before_graph_took_the_request_sends_once(stack):
    app_tag, mailbox = stack.add_sender()
    # Graph delays each request by 3 s and then fails it, so the killed attempts sent nothing.
    stack.sandbox.add_fault(status=503, latency_ms=3000, count=JOBS, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    worker = stack.start_worker()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"lost-{n}"), f"lost-{n}") for n in range(JOBS)]
    assert wait_until(lambda: active_requests(stack.sandbox, mailbox) == JOBS, 10)

    stack.kill_worker(worker)
    stack.start_worker()

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"lost-{n}": 1 for n in range(JOBS)}


def test_sigterm_finishes_jobs_in_flight_and_exits(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(latency_ms=1500, count=JOBS, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    worker = stack.start_worker()
    job_ids = [stack.post_until_accepted(mail(app_tag, f"term-{n}"), f"term-{n}") for n in range(JOBS)]
    assert wait_until(lambda: active_requests(stack.sandbox, mailbox) == JOBS, 10)

    worker.popen.send_signal(signal.SIGTERM)

    assert worker.popen.wait(20) == 0
    assert set(stack.statuses(job_ids).values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"term-{n}": 1 for n in range(JOBS)}


def test_sigterm_leaves_waiting_jobs_to_the_next_worker(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(latency_ms=1500, count=4, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    # One thread: one job is in flight and the others wait for it when SIGTERM arrives.
    worker = stack.start_worker(WORKER_CONCURRENCY="1")
    job_ids = [stack.post_until_accepted(mail(app_tag, f"wait-{n}"), f"wait-{n}") for n in range(JOBS)]
    assert wait_until(lambda: active_requests(stack.sandbox, mailbox) == 1, 10)

    worker.popen.send_signal(signal.SIGTERM)
    assert worker.popen.wait(20) == 0
    stack.start_worker()

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"wait-{n}": 1 for n in range(JOBS)}


def test_long_send_is_kept_in_progress_not_redelivered(stack):
    app_tag, mailbox = stack.add_sender()
    # Twice ACK_WAIT_SECONDS (3 s): without in-progress signals JetStream would redeliver meanwhile.
    stack.sandbox.add_fault(latency_ms=6000, count=1, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker(GRAPH_TIMEOUT_SECONDS="15")

    job_id = stack.post_until_accepted(mail(app_tag, "long"), "long")

    statuses = stack.wait_for_statuses([job_id], {"sent"}, SETTLE_SECONDS)
    assert statuses == {job_id: "sent"}
    assert stack.job(job_id)["attempts"] == 1
    assert stack.captured_subjects([mailbox]) == {"long": 1}
