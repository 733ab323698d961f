"""The worker's delivery decisions against real PostgreSQL and the Graph sandbox, in this process."""

import dataclasses

import pytest

from common.attachments import AttachmentStore, ensure_object_store
from common.db import Database
from common.delivery import Delivery, internet_message_id
from common.graph import GraphClient
from common.job_store import JobStore
from common.jobs import Action, Job, JobStatus
from common.queue import JetStreamPublisher
from common.senders import SenderStore
from common.settings import Settings
from tests.conftest import free_port

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(service_env):
    return dataclasses.replace(Settings.from_env(service_env), sent_items_lag_seconds=60.0,
                               graph_timeout_seconds=10.0, max_deliver=3)


@pytest.fixture
def jobs(database):
    return JobStore(database)


@pytest.fixture
def make_delivery(settings, database, jobs):
    def make(**overrides):
        configured = dataclasses.replace(settings, **overrides)
        return Delivery(configured, jobs, SenderStore(database), GraphClient(configured), attachment_store(configured))
    return make


@pytest.fixture
def delivery(make_delivery):
    return make_delivery()


@pytest.fixture
def faults(sandbox):
    yield sandbox
    sandbox.clear_faults()


def let_attempt_settle(database, job_id):
    """Move the last attempt's start back an hour, past Graph's timeout and the Sent Items lag."""
    database.run("UPDATE jobs SET attempt_started_at = attempt_started_at - interval '1 hour' WHERE job_id = :id",
                 id=job_id)


def attachment_store(settings):
    # Connects to NATS only when a job has attachments in the object store, which these jobs have not.
    return AttachmentStore(settings, JetStreamPublisher(settings, "test-delivery", setup=[ensure_object_store]))


def new_job(app_tag, **mail):
    return Job.new({"recipients": ["to@example.com"], "subject": "s", "body_content": "b",
                    "cc_recipients": [], "bcc_recipients": [], "attachments": [], "app_tag": app_tag, **mail})


def test_sent_job_is_acked_and_recorded(delivery, jobs, sandbox, sender):
    app_tag, mailbox = sender()
    job = new_job(app_tag)

    outcome = delivery.deliver(job, 1)

    assert outcome.action is Action.ACK
    assert jobs.get(job.job_id).status is JobStatus.SENT
    assert jobs.get(job.job_id).attempts == 1
    assert len(sandbox.messages(mailbox)) == 1


def test_sent_mail_carries_preset_internet_message_id(delivery, sandbox, sender):
    app_tag, mailbox = sender()
    job = new_job(app_tag)

    delivery.deliver(job, 1)

    [captured] = sandbox.messages(mailbox)
    assert captured["internetMessageId"] == internet_message_id(job.job_id, mailbox)


def test_internet_message_id_uses_sender_domain():
    assert internet_message_id("abc", "rechnungen@firma.example") == "<abc@firma.example>"


def test_redelivered_sent_job_is_not_sent_again(delivery, sandbox, sender):
    app_tag, mailbox = sender()
    job = new_job(app_tag)
    delivery.deliver(job, 1)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.ACK
    assert len(sandbox.messages(mailbox)) == 1


@pytest.mark.parametrize("status, code", [(400, "ErrorInvalidRequest"), (403, "ErrorAccessDenied"),
                                          (404, "ErrorInvalidUser"), (413, "ErrorMessageSizeExceeded")])
def test_permanent_graph_error_fails_after_one_attempt(delivery, jobs, faults, sender, status, code):
    app_tag, mailbox = sender()
    faults.add_fault(status=status, mailbox=mailbox)
    job = new_job(app_tag)

    outcome = delivery.deliver(job, 1)

    record = jobs.get(job.job_id)
    assert outcome.action is Action.TERMINATE
    assert record.status is JobStatus.FAILED
    assert record.attempts == 1
    assert (record.error.status, record.error.code) == (status, code)


def test_failed_job_error_masks_addresses(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=404, mailbox=mailbox)
    job = new_job(app_tag)

    delivery.deliver(job, 1)

    assert mailbox not in jobs.get(job.job_id).error.message


def test_redelivered_failed_job_is_terminated_without_sending(delivery, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=400, count=1, mailbox=mailbox)
    job = new_job(app_tag)
    delivery.deliver(job, 1)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.TERMINATE
    assert faults.messages(mailbox) == []


def test_throttled_job_retries_after_retry_after(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=429, retry_after=7, count=1, mailbox=mailbox)
    job = new_job(app_tag)

    outcome = delivery.deliver(job, 1)

    assert outcome.action is Action.RETRY
    assert outcome.delay_seconds == 7
    assert jobs.get(job.job_id).status is JobStatus.RETRYING


def test_retrying_job_records_graph_status_and_code(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=503, count=1, mailbox=mailbox)
    job = new_job(app_tag)

    delivery.deliver(job, 1)

    error = jobs.get(job.job_id).error
    assert (error.status, error.code) == (503, "ServiceUnavailable")


def test_retried_job_is_sent_on_next_delivery(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=503, count=1, mailbox=mailbox)
    job = new_job(app_tag)
    delivery.deliver(job, 1)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.ACK
    assert jobs.get(job.job_id).attempts == 2
    assert len(faults.messages(mailbox)) == 1


def test_job_is_dead_after_configured_attempts(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=503, mailbox=mailbox)
    job = new_job(app_tag)

    outcomes = [delivery.deliver(job, number) for number in (1, 2, 3)]

    assert [outcome.action for outcome in outcomes] == [Action.RETRY, Action.RETRY, Action.DEAD_LETTER]
    assert outcomes[-1].job_id == job.job_id
    assert jobs.get(job.job_id).status is JobStatus.DEAD
    assert jobs.get(job.job_id).attempts == 3


def test_redelivered_dead_job_is_dead_lettered_again(delivery, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=503, mailbox=mailbox)
    job = new_job(app_tag)
    for number in (1, 2, 3):
        delivery.deliver(job, number)

    assert delivery.deliver(job, 4).action is Action.DEAD_LETTER


def test_single_401_gets_new_token_and_sends(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=401, count=1, mailbox=mailbox)
    job = new_job(app_tag)

    outcome = delivery.deliver(job, 1)

    assert outcome.action is Action.ACK
    assert jobs.get(job.job_id).attempts == 1


def test_removed_sender_fails_with_local_reason(delivery, jobs, sender, database):
    app_tag, _ = sender()
    database.run("DELETE FROM senders WHERE app_tag = :t", t=app_tag)
    job = new_job(app_tag)

    outcome = delivery.deliver(job, 1)

    record = jobs.get(job.job_id)
    assert outcome.action is Action.TERMINATE
    assert (record.error.status, record.error.code) == (None, "sender_not_found")


def test_unknown_outcome_found_is_not_resent(delivery, jobs, faults, sender, database):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, processed=True, count=1, mailbox=mailbox)
    job = new_job(app_tag)
    first = delivery.deliver(job, 1)
    let_attempt_settle(database, job.job_id)

    second = delivery.deliver(job, 2)

    assert first.action is Action.RETRY
    assert second.action is Action.ACK
    assert jobs.get(job.job_id).status is JobStatus.SENT
    assert len(faults.messages(mailbox)) == 1


def test_unknown_outcome_missing_is_resent(delivery, jobs, faults, sender, database):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, count=1, mailbox=mailbox)
    job = new_job(app_tag)
    delivery.deliver(job, 1)
    let_attempt_settle(database, job.job_id)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.ACK
    assert jobs.get(job.job_id).attempts == 2
    assert len(faults.messages(mailbox)) == 1


def test_unknown_outcome_waits_for_graph_timeout_and_lag(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, processed=True, count=1, mailbox=mailbox)
    job = new_job(app_tag)
    delivery.deliver(job, 1)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.RETRY
    assert 60 < outcome.delay_seconds <= 70
    assert jobs.get(job.job_id).attempts == 1


def test_503_outcome_is_known_not_sent(delivery, jobs, faults, sender):
    app_tag, mailbox = sender()
    faults.add_fault(status=503, count=1, mailbox=mailbox)
    job = new_job(app_tag)

    delivery.deliver(job, 1)

    assert jobs.get(job.job_id).outcome_unknown is False


def test_interrupted_attempt_found_in_sent_items(delivery, jobs, sandbox, sender, settings, database):
    app_tag, mailbox = sender()
    job = new_job(app_tag)
    record = jobs.ensure(job, 1)
    message_id = internet_message_id(job.job_id, mailbox)
    jobs.begin_attempt(record, mailbox, message_id)
    let_attempt_settle(database, job.job_id)
    # The worker died after Graph accepted the mail and before it recorded the 202.
    GraphClient(settings).send_mail(mailbox, {"subject": "s", "body": {"contentType": "Text", "content": "b"},
                                              "toRecipients": [{"emailAddress": {"address": "to@example.com"}}],
                                              "internetMessageId": message_id})

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.ACK
    assert len(sandbox.messages(mailbox)) == 1


def test_unreadable_sent_items_make_unknown_outcome_dead(delivery, jobs, faults, sender, database):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, processed=True, count=1, mailbox=mailbox, operations=["sendMail"])
    faults.add_fault(status=403, mailbox=mailbox, operations=["listMessages"])
    job = new_job(app_tag)
    delivery.deliver(job, 1)
    let_attempt_settle(database, job.job_id)

    outcome = delivery.deliver(job, 2)

    record = jobs.get(job.job_id)
    assert outcome.action is Action.DEAD_LETTER
    assert record.outcome_unknown is True
    assert len(faults.messages(mailbox)) == 1


def test_requeued_job_sent_without_sent_items(delivery, jobs, faults, sender, database):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, count=1, mailbox=mailbox, operations=["sendMail"])
    faults.add_fault(status=403, mailbox=mailbox, operations=["listMessages"])
    job = new_job(app_tag)
    delivery.deliver(job, 1)
    let_attempt_settle(database, job.job_id)
    delivery.deliver(job, 2)
    jobs.requeue(job.job_id)

    outcome = delivery.deliver(job, 3)

    assert outcome.action is Action.ACK
    assert len(faults.messages(mailbox)) == 1


def test_lookup_throttling_counts_as_attempt(delivery, jobs, faults, sender, database):
    app_tag, mailbox = sender()
    faults.add_fault(status=504, processed=True, count=1, mailbox=mailbox, operations=["sendMail"])
    faults.add_fault(status=429, retry_after=1, count=1, mailbox=mailbox, operations=["listMessages"])
    job = new_job(app_tag)
    delivery.deliver(job, 1)
    let_attempt_settle(database, job.job_id)

    outcome = delivery.deliver(job, 2)

    assert outcome.action is Action.RETRY
    assert jobs.get(job.job_id).attempts == 2


def test_unreachable_database_makes_job_wait(settings, sender, service_env):
    app_tag, _ = sender()
    gone = Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing")
    delivery = Delivery(settings, JobStore(gone), SenderStore(gone), GraphClient(settings), attachment_store(settings))

    outcome = delivery.deliver(new_job(app_tag), 1)

    assert outcome.action is Action.RETRY
    assert outcome.delay_seconds <= settings.retry_base_seconds
