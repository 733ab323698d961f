"""The jobs and idempotency_keys tables on the test database."""

import threading
import uuid

import pytest

from common.db import Database
from common.errors import DatabaseUnavailable, JobNotFound
from common.job_store import JobError, JobStore
from common.jobs import Job, JobStatus
from tests.conftest import free_port

pytestmark = pytest.mark.integration

WINDOW = 3600.0


@pytest.fixture
def store(database):
    return JobStore(database)


def new_job(app_tag="store-app", subject="s"):
    return Job.new({"recipients": ["to@example.com"], "subject": subject, "app_tag": app_tag})


def test_inserted_job_is_queued(store):
    job = new_job()
    store.insert(job, 2)

    record = store.get(job.job_id)
    assert record.status is JobStatus.QUEUED
    assert record.recipient_count == 2


def test_job_of_other_app_tag_is_hidden(store):
    job = new_job("owner-app")
    store.insert(job, 1)

    assert store.get(job.job_id, app_tag="other-app") is None


def test_find_raises_job_not_found(store):
    with pytest.raises(JobNotFound):
        store.find(str(uuid.uuid4()))


def test_record_json_has_no_mail_content(store):
    job = new_job(subject="Geheimer Betreff")
    store.insert(job, 1)

    assert "Geheimer Betreff" not in str(store.get(job.job_id).to_json())


def test_begin_attempt_counts_attempts(store):
    job = new_job()
    record = store.ensure(job, 1)

    assert store.begin_attempt(record, "s@example.com", "<id@example.com>") == 1


def test_second_begin_attempt_from_same_state_loses(store):
    job = new_job()
    record = store.ensure(job, 1)
    store.begin_attempt(record, "s@example.com", "<id@example.com>")

    assert store.begin_attempt(record, "s@example.com", "<id@example.com>") is None


def test_ensure_creates_missing_row(store):
    job = new_job()

    assert store.ensure(job, 3).status is JobStatus.QUEUED


def test_seconds_since_attempt_is_measured(store):
    job = new_job()
    store.begin_attempt(store.ensure(job, 1), "s@example.com", "<id@example.com>")

    assert 0 <= store.get(job.job_id).seconds_since_attempt < 60


def test_first_claim_creates_job(store):
    job = new_job()

    claim = store.claim_idempotency_key(job, 1, f"k-{uuid.uuid4()}", "hash", WINDOW)

    assert claim.created is True
    assert store.get(job.job_id).idempotency_key is not None


def test_second_claim_returns_first_job(store):
    key = f"k-{uuid.uuid4()}"
    first = new_job()
    store.claim_idempotency_key(first, 1, key, "hash", WINDOW)

    claim = store.claim_idempotency_key(new_job(), 1, key, "other-hash", WINDOW)

    assert (claim.job_id, claim.request_hash, claim.created) == (first.job_id, "hash", False)


def test_same_key_of_other_app_is_independent(store):
    key = f"k-{uuid.uuid4()}"
    store.claim_idempotency_key(new_job("app-one"), 1, key, "hash", WINDOW)

    assert store.claim_idempotency_key(new_job("app-two"), 1, key, "hash", WINDOW).created is True


def test_expired_key_is_taken_over(store, database):
    key = f"k-{uuid.uuid4()}"
    store.claim_idempotency_key(new_job(), 1, key, "hash", WINDOW)
    database.run("UPDATE idempotency_keys SET created_at = now() - interval '2 hours' WHERE idempotency_key = :k",
                 k=key)
    second = new_job()

    claim = store.claim_idempotency_key(second, 1, key, "hash", WINDOW)

    assert (claim.job_id, claim.created) == (second.job_id, True)


def test_concurrent_claims_agree_on_one_job(store, service_env):
    key = f"k-{uuid.uuid4()}"
    barrier = threading.Barrier(8)
    claims = []

    def claim() -> None:
        # Each thread gets its own connection from Database's per-thread pool.
        barrier.wait(timeout=10)
        claims.append(store.claim_idempotency_key(new_job(), 1, key, "hash", WINDOW))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len({c.job_id for c in claims}) == 1
    assert sum(c.created for c in claims) == 1


def test_requeue_resets_dead_job(store):
    job = new_job()
    store.insert(job, 1)
    store.finish(job.job_id, JobStatus.DEAD, JobError(503, "ServiceUnavailable", "down"))

    assert store.requeue(job.job_id) == 1
    assert store.get(job.job_id).status is JobStatus.QUEUED


def test_requeue_of_sent_job_is_refused(store):
    job = new_job()
    store.insert(job, 1)
    store.mark_sent(job.job_id)

    assert store.requeue(job.job_id) is None


def test_dead_jobs_are_listed(store):
    job = new_job()
    store.insert(job, 1)
    store.finish(job.job_id, JobStatus.DEAD, JobError(503, "ServiceUnavailable", "down"))

    assert job.job_id in [record.job_id for record in store.list_dead()]


def test_unreachable_database_raises_unavailable():
    store = JobStore(Database(f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"))
    with pytest.raises(DatabaseUnavailable):
        store.get(str(uuid.uuid4()))
