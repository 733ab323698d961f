"""The job handler in this process, against real PostgreSQL and the Graph sandbox."""

import pytest

from common.jobs import Action, Job, JobStatus
from functions.process_job import main as handler

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def fresh_services(service_env, database):
    handler.services.cache_clear()
    yield
    handler.services.cache_clear()


def job_for(app_tag, **mail):
    return Job.new({"recipients": ["to@example.com"], "subject": "s", "body_content": "b",
                    "cc_recipients": [], "bcc_recipients": [], "attachments": [], "app_tag": app_tag, **mail})


def test_job_is_sent_and_acked(sandbox, sender):
    app_tag, mailbox = sender()
    outcome = handler.process_job(job_for(app_tag).to_bytes())
    assert outcome.action is Action.ACK
    assert len(sandbox.messages(mailbox)) == 1


def test_removed_sender_fails_the_job(sender, database):
    app_tag, _ = sender()
    data = job_for(app_tag).to_bytes()
    database.run("DELETE FROM senders WHERE app_tag = :t", t=app_tag)

    outcome = handler.process_job(data)
    assert outcome.action is Action.TERMINATE
    assert outcome.status is JobStatus.FAILED


def test_removed_sender_is_logged_with_job_id(sender, database, caplog):
    app_tag, _ = sender()
    job = job_for(app_tag)
    database.run("DELETE FROM senders WHERE app_tag = :t", t=app_tag)

    with caplog.at_level("INFO"):
        handler.process_job(job.to_bytes())
    assert any(record.job_id == job.job_id for record in caplog.records)


def test_unparseable_message_is_terminated():
    outcome = handler.process_job(b"\x00garbage")
    assert outcome.action is Action.TERMINATE


def test_throttled_graph_is_retried_with_retry_after(sandbox, sender):
    app_tag, mailbox = sender()
    sandbox.add_fault(status=429, retry_after=1, count=1, mailbox=mailbox)
    try:
        outcome = handler.process_job(job_for(app_tag).to_bytes())
    finally:
        sandbox.clear_faults()
    assert outcome.action is Action.RETRY
    assert outcome.delay_seconds == 1


def test_graph_400_fails_without_retry(sandbox, sender):
    app_tag, mailbox = sender()
    sandbox.add_fault(status=400, count=1, mailbox=mailbox)
    try:
        outcome = handler.process_job(job_for(app_tag).to_bytes())
    finally:
        sandbox.clear_faults()
    assert outcome.status is JobStatus.FAILED


def test_handled_job_is_recorded_as_sent(sandbox, sender, database):
    app_tag, _ = sender()
    job = job_for(app_tag)

    handler.process_job(job.to_bytes())

    rows = database.run("SELECT status FROM jobs WHERE job_id = :id", id=job.job_id)
    assert rows == [["sent"]]
