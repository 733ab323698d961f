"""The job handler in this process, against real PostgreSQL, NATS and the Graph sandbox."""

import base64
import os

import pytest

from common.attachments import object_names
from common.errors import AttachmentMissing
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


def test_disabled_sender_fails_the_job(sandbox, sender, database):
    app_tag, mailbox = sender(enabled=False)

    outcome = handler.process_job(job_for(app_tag).to_bytes())
    assert outcome.status is JobStatus.FAILED
    assert sandbox.messages(mailbox) == []


def test_display_name_is_the_from_name(sandbox, sender, database):
    app_tag, mailbox = sender()
    database.run("UPDATE senders SET display_name = 'Rechnungsstelle' WHERE app_tag = :t", t=app_tag)

    handler.process_job(job_for(app_tag).to_bytes())
    [captured] = sandbox.messages(mailbox)
    assert captured["message"]["from"] == {"emailAddress": {"address": mailbox, "name": "Rechnungsstelle"}}


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


def stored_job(app_tag, data):
    """A job whose attachment waits in the object store, as the ingest queues a large job."""
    job = job_for(app_tag, attachments=[{"name": "gross.pdf", "contentType": "application/pdf",
                                         "contentBytes": base64.b64encode(data).decode()}])
    return handler.services().attachments.offload(job)


def test_sent_job_deletes_its_attachments(sandbox, sender):
    app_tag, mailbox = sender()
    job = stored_job(app_tag, os.urandom(2 * 1024 * 1024))

    outcome = handler.process_job(job.to_bytes())

    assert outcome.action is Action.ACK
    with pytest.raises(AttachmentMissing):
        handler.services().attachments.fetch(job.mail["attachments"][0])


def test_retried_job_keeps_its_attachments(sandbox, sender):
    app_tag, mailbox = sender()
    data = os.urandom(2 * 1024 * 1024)
    job = stored_job(app_tag, data)
    sandbox.add_fault(status=503, count=1, mailbox=mailbox)
    try:
        outcome = handler.process_job(job.to_bytes())
    finally:
        sandbox.clear_faults()

    assert outcome.action is Action.RETRY
    assert handler.services().attachments.fetch(job.mail["attachments"][0]) == data
    handler.services().attachments.delete(object_names(job))


def test_failed_job_deletes_its_attachments(sandbox, sender):
    app_tag, mailbox = sender()
    job = stored_job(app_tag, os.urandom(1000))
    sandbox.add_fault(status=400, count=1, mailbox=mailbox)
    try:
        outcome = handler.process_job(job.to_bytes())
    finally:
        sandbox.clear_faults()

    assert outcome.status is JobStatus.FAILED
    with pytest.raises(AttachmentMissing):
        handler.services().attachments.fetch(job.mail["attachments"][0])


def test_missing_attachment_fails_the_job(sandbox, sender):
    app_tag, mailbox = sender()
    job = stored_job(app_tag, os.urandom(1000))
    handler.services().attachments.delete(object_names(job))

    outcome = handler.process_job(job.to_bytes())

    assert outcome.status is JobStatus.FAILED
    assert "object store" in outcome.reason
    assert sandbox.messages(mailbox) == []
def test_handled_job_is_recorded_as_sent(sandbox, sender, database):
    app_tag, _ = sender()
    job = job_for(app_tag)

    handler.process_job(job.to_bytes())

    rows = database.run("SELECT status FROM jobs WHERE job_id = :id", id=job.job_id)
    assert rows == [["sent"]]
