"""Graph throttling and error storms, a 400 in a batch, a mailbox that never recovers."""

import os
import random
import subprocess
import sys
import threading
import uuid

import pytest

from tests.faults.stack import mail

pytestmark = pytest.mark.faults

JOBS = 40
SETTLE_SECONDS = 90


def post_batch(stack, app_tag, prefix, count=JOBS):
    return stack.post_all([(mail(app_tag, f"{prefix}-{n}"), f"{prefix}-{n}") for n in range(count)])


def test_throttling_storm_sends_every_mail_once(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(status=429, retry_after=1, rate=0.5, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker()

    job_ids = post_batch(stack, app_tag, "throttled")

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"throttled-{n}": 1 for n in range(JOBS)}
    assert max(stack.job(job_id)["attempts"] for job_id in job_ids) > 1


def test_unavailable_storm_sends_every_mail_once(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(status=503, count=30, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker()

    job_ids = post_batch(stack, app_tag, "unavailable")

    statuses = stack.wait_for_statuses(job_ids, {"sent"}, SETTLE_SECONDS)
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {f"unavailable-{n}": 1 for n in range(JOBS)}


def test_bad_request_in_batch_fails_only_that_job(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(status=400, count=1, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker()

    job_ids = post_batch(stack, app_tag, "batch")

    statuses = stack.wait_for_statuses(job_ids, {"sent", "failed"}, SETTLE_SECONDS)
    [failed] = [job_id for job_id, status in statuses.items() if status == "failed"]
    assert list(statuses.values()).count("sent") == JOBS - 1
    assert stack.job(failed) == {"status": "failed", "attempts": 1, "error_status": 400,
                                 "error_code": "ErrorInvalidRequest"}
    assert sum(stack.captured_subjects([mailbox]).values()) == JOBS - 1
    assert set(stack.captured_subjects([mailbox]).values()) == {1}


def test_failing_mailbox_ends_dead_and_requeue_sends(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(status=503, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker(MAX_DELIVER="3")
    job_id = stack.post_until_accepted(mail(app_tag, "doomed"), "doomed")

    statuses = stack.wait_for_statuses([job_id], {"dead"}, SETTLE_SECONDS)
    listed = run_cli(stack, "jobs", "dead")
    stack.sandbox.clear_faults()
    requeued = run_cli(stack, "jobs", "requeue", "-id", job_id)
    after_requeue = stack.wait_for_statuses([job_id], {"sent"}, SETTLE_SECONDS)

    assert statuses == {job_id: "dead"}
    assert job_id in listed.stdout
    assert "503 ServiceUnavailable" in listed.stdout
    assert requeued.returncode == 0
    assert after_requeue == {job_id: "sent"}
    assert stack.captured_subjects([mailbox]) == {"doomed": 1}


def test_dead_job_records_attempts_and_graph_error(stack):
    app_tag, mailbox = stack.add_sender()
    stack.sandbox.add_fault(status=503, mailbox=mailbox, operations=["sendMail"])
    stack.start_ingest()
    stack.start_worker(MAX_DELIVER="3")
    job_id = stack.post_until_accepted(mail(app_tag, "doomed"), "doomed")

    stack.wait_for_statuses([job_id], {"dead"}, SETTLE_SECONDS)

    assert stack.job(job_id) == {"status": "dead", "attempts": 3, "error_status": 503,
                                 "error_code": "ServiceUnavailable"}
    assert stack.captured_subjects([mailbox]) == {}


def test_concurrent_duplicate_keys_send_each_mail_once(stack):
    app_tag, mailbox = stack.add_sender()
    stack.start_ingest()
    stack.start_worker()
    keys = [f"dup-{n}-{uuid.uuid4().hex[:6]}" for n in range(20)]
    requests_to_send = [(mail(app_tag, key), key) for key in keys for _ in range(5)]
    random.Random(4).shuffle(requests_to_send)
    barrier = threading.Barrier(10)
    responses = []

    def client(share):
        barrier.wait(timeout=10)
        for payload, key in share:
            responses.append((key, stack.post(payload, key)))

    threads = [threading.Thread(target=client, args=(requests_to_send[n::10],)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    job_ids = {key: {r.json()["job_id"] for k, r in responses if k == key} for key in keys}
    statuses = stack.wait_for_statuses([next(iter(ids)) for ids in job_ids.values()], {"sent"}, SETTLE_SECONDS)
    assert {response.status_code for _, response in responses} == {202}
    assert all(len(ids) == 1 for ids in job_ids.values())
    assert set(statuses.values()) == {"sent"}
    assert stack.captured_subjects([mailbox]) == {key: 1 for key in keys}


def run_cli(stack, *args):
    env = {**os.environ, **stack.env, "LANG": "en_US.UTF-8", "LC_ALL": ""}
    return subprocess.run([sys.executable, "-m", "functions.admin", *args], env=env, capture_output=True,
                          text=True, timeout=60)
