"""The ``jobs`` table: the delivery state of every accepted job; and the ``idempotency_keys`` table.

A job moves from queued to sending, then to sent, failed, dead or (transient failure) retrying, and from
retrying back to sending. Entering sending is a conditional UPDATE on the status and attempt count
that the worker read, so two workers that got the same message cannot both send it. No mail body is
stored here; the queued message and the dead-letter copy carry it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.db import Database
from common.errors import GraphError, JobNotFound, ServiceError
from common.jobs import Job, JobStatus
from common.logs import mask_addresses_in_text

logger = logging.getLogger(__name__)

# Dead jobs that `jobs dead` lists at most, oldest first.
DEAD_LIST_LIMIT = 500

_COLUMNS = ("job_id, app_tag, status, attempts, error_status, error_code, error_message, idempotency_key, "
            "recipient_count, mailbox, internet_message_id, outcome_unknown, requeues, created_at, "
            "updated_at, attempt_started_at, sent_at, EXTRACT(EPOCH FROM now() - attempt_started_at)")


@dataclass(frozen=True)
class JobError:
    """The last error of a job: Graph's HTTP status and error code, or None and a local code."""

    status: int | None
    code: str
    message: str

    @classmethod
    def from_exception(cls, exc: ServiceError) -> JobError:
        # Graph's messages can name recipients, and GET /jobs returns this text.
        message = mask_addresses_in_text(exc.message)
        if isinstance(exc, GraphError):
            return cls(exc.status_code, exc.graph_code or exc.code, message)
        return cls(None, exc.code, message)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "code": self.code, "message": self.message}

    def __str__(self) -> str:
        prefix = f"{self.status} " if self.status is not None else ""
        return f"{prefix}{self.code}: {self.message}"


@dataclass(frozen=True)
class JobRecord:
    """One row of the jobs table."""

    job_id: str
    app_tag: str
    status: JobStatus
    attempts: int
    error: JobError | None
    idempotency_key: str | None
    recipient_count: int
    mailbox: str | None
    internet_message_id: str | None
    # The last attempt may have sent the mail although no 202 arrived; look it up before a resend.
    outcome_unknown: bool
    requeues: int
    created_at: datetime
    updated_at: datetime
    attempt_started_at: datetime | None
    sent_at: datetime | None
    # Seconds since the last attempt started, by PostgreSQL's clock, so workers' clocks do not matter.
    seconds_since_attempt: float | None = None

    @classmethod
    def from_row(cls, row: list[Any]) -> JobRecord:
        (job_id, app_tag, status, attempts, error_status, error_code, error_message, idempotency_key,
         recipient_count, mailbox, internet_message_id, outcome_unknown, requeues, created_at, updated_at,
         attempt_started_at, sent_at, seconds_since_attempt) = row
        error = JobError(error_status, error_code, error_message or "") if error_code else None
        return cls(str(job_id), app_tag, JobStatus(status), attempts, error, idempotency_key, recipient_count,
                   mailbox, internet_message_id, outcome_unknown, requeues, created_at, updated_at,
                   attempt_started_at, sent_at,
                   float(seconds_since_attempt) if seconds_since_attempt is not None else None)

    def to_json(self) -> dict[str, Any]:
        """Return the job as GET /jobs/{id} shows it."""
        return {
            "job_id": self.job_id,
            "app_tag": self.app_tag,
            "status": self.status.value,
            "attempts": self.attempts,
            "last_error": self.error.to_json() if self.error else None,
            "idempotency_key": self.idempotency_key,
            "recipient_count": self.recipient_count,
            "created_at": _iso(self.created_at),
            "updated_at": _iso(self.updated_at),
            "sent_at": _iso(self.sent_at),
        }


@dataclass(frozen=True)
class IdempotencyClaim:
    """The job an Idempotency-Key maps to, and whether this request created it."""

    job_id: str
    request_hash: str
    created: bool


class JobStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- ingest ---

    def insert(self, job: Job, recipient_count: int) -> None:
        self._db.run_prepared(
            "INSERT INTO jobs (job_id, app_tag, status, recipient_count) VALUES (:id, :tag, 'queued', :count)",
            id=job.job_id, tag=job.app_tag, count=recipient_count,
        )

    def claim_idempotency_key(self, job: Job, recipient_count: int, key: str, request_hash: str,
                              window_seconds: float) -> IdempotencyClaim:
        """Map (app_tag, key) to job and insert the job, unless the key maps to a job of the window.

        One statement: the primary key of idempotency_keys makes a concurrent request with the same
        key wait for this one and then find its job. A key older than the window is taken over.
        """
        created = self._db.run_prepared(
            """
            WITH claim AS (
                INSERT INTO idempotency_keys (app_tag, idempotency_key, job_id, request_hash)
                VALUES (:tag, :key, :id, :hash)
                ON CONFLICT (app_tag, idempotency_key) DO UPDATE
                    SET job_id = EXCLUDED.job_id, request_hash = EXCLUDED.request_hash, created_at = now()
                    WHERE idempotency_keys.created_at < now() - make_interval(secs => :window)
                RETURNING job_id
            )
            INSERT INTO jobs (job_id, app_tag, status, recipient_count, idempotency_key)
            SELECT job_id, :tag, 'queued', :count, :key FROM claim
            RETURNING job_id
            """,
            tag=job.app_tag, key=key, id=job.job_id, hash=request_hash, window=float(window_seconds),
            count=recipient_count,
        )
        if created:
            return IdempotencyClaim(job.job_id, request_hash, created=True)

        rows = self._db.run_prepared(
            "SELECT job_id, request_hash FROM idempotency_keys WHERE app_tag = :tag AND idempotency_key = :key",
            tag=job.app_tag, key=key,
        )
        return IdempotencyClaim(str(rows[0][0]), rows[0][1], created=False)

    def delete_unpublished(self, job_id: str) -> None:
        """Delete a job that JetStream did not store; the client got 503 and never saw its id."""
        self._db.run_prepared("DELETE FROM jobs WHERE job_id = :id AND status = 'queued'", id=job_id)

    def record_publish_failure(self, job_id: str, error: JobError) -> None:
        self._db.run_prepared(
            "UPDATE jobs SET error_code = :code, error_message = :message, updated_at = now() "
            "WHERE job_id = :id AND status = 'queued'",
            id=job_id, code=error.code, message=error.message,
        )

    # --- reading ---

    def get(self, job_id: str, app_tag: str | None = None) -> JobRecord | None:
        """Return the job, or None when it does not exist or (with app_tag) belongs to another app."""
        rows = self._db.run_prepared(
            f"SELECT {_COLUMNS} FROM jobs WHERE job_id = :id AND (CAST(:tag AS text) IS NULL OR app_tag = :tag)",
            id=job_id, tag=app_tag,
        )
        return JobRecord.from_row(rows[0]) if rows else None

    def find(self, job_id: str, app_tag: str | None = None) -> JobRecord:
        """Return the job; raise JobNotFound when it does not exist or belongs to another app_tag."""
        record = self.get(job_id, app_tag)
        if record is None:
            raise JobNotFound(f"No job with id {job_id!r} exists.", job_id=job_id)
        return record

    def ensure(self, job: Job, recipient_count: int) -> JobRecord:
        """Return the job's row, inserting it for a message queued without one (older ingest)."""
        record = self.get(job.job_id)
        if record is not None:
            return record

        self._db.run_prepared(
            "INSERT INTO jobs (job_id, app_tag, status, recipient_count) VALUES (:id, :tag, 'queued', :count) "
            "ON CONFLICT (job_id) DO NOTHING",
            id=job.job_id, tag=job.app_tag, count=recipient_count,
        )
        logger.debug("Created the missing jobs row")
        record = self.get(job.job_id)
        assert record is not None
        return record

    def list_dead(self, limit: int = DEAD_LIST_LIMIT) -> list[JobRecord]:
        rows = self._db.run_prepared(
            f"SELECT {_COLUMNS} FROM jobs WHERE status = 'dead' ORDER BY updated_at LIMIT :limit", limit=limit
        )
        return [JobRecord.from_row(row) for row in rows]

    # --- worker ---

    def begin_attempt(self, record: JobRecord, mailbox: str, internet_message_id: str) -> int | None:
        """Record a send attempt as started; return its number, or None if another worker changed the job."""
        rows = self._db.run_prepared(
            """
            UPDATE jobs SET status = 'sending', attempts = attempts + 1, mailbox = :mailbox,
                            internet_message_id = :message_id, attempt_started_at = now(), updated_at = now()
            WHERE job_id = :id AND status = :status AND attempts = :attempts
            RETURNING attempts
            """,
            id=record.job_id, status=record.status.value, attempts=record.attempts, mailbox=mailbox,
            message_id=internet_message_id,
        )
        return rows[0][0] if rows else None

    def mark_sent(self, job_id: str) -> None:
        self._db.run_prepared(
            "UPDATE jobs SET status = 'sent', sent_at = now(), updated_at = now(), outcome_unknown = false "
            "WHERE job_id = :id",
            id=job_id,
        )

    def mark_retrying(self, job_id: str, error: JobError, outcome_unknown: bool,
                      count_attempt: bool = False) -> int:
        """Record a failed attempt that will be retried; return the job's attempt count."""
        rows = self._db.run_prepared(
            """
            UPDATE jobs SET status = 'retrying', error_status = :error_status, error_code = :code,
                            error_message = :message, outcome_unknown = :unknown,
                            attempts = attempts + :increment, updated_at = now()
            WHERE job_id = :id
            RETURNING attempts
            """,
            id=job_id, error_status=error.status, code=error.code, message=error.message,
            unknown=outcome_unknown, increment=1 if count_attempt else 0,
        )
        return rows[0][0]

    def finish(self, job_id: str, status: JobStatus, error: JobError, outcome_unknown: bool = False) -> None:
        """Record a failed or dead job with the error that ended it."""
        self._db.run_prepared(
            """
            UPDATE jobs SET status = :status, error_status = :error_status, error_code = :code,
                            error_message = :message, outcome_unknown = :unknown, updated_at = now()
            WHERE job_id = :id
            """,
            id=job_id, status=status.value, error_status=error.status, code=error.code, message=error.message,
            unknown=outcome_unknown,
        )

    # --- admin ---

    def requeue(self, job_id: str) -> int | None:
        """Set a dead job back to queued with no attempts; return its requeue count, None if not dead."""
        rows = self._db.run_prepared(
            "UPDATE jobs SET status = 'queued', attempts = 0, requeues = requeues + 1, updated_at = now() "
            "WHERE job_id = :id AND status = 'dead' RETURNING requeues",
            id=job_id,
        )
        return rows[0][0] if rows else None

    def undo_requeue(self, job_id: str, attempts: int) -> None:
        self._db.run_prepared(
            "UPDATE jobs SET status = 'dead', attempts = :attempts, requeues = requeues - 1, updated_at = now() "
            "WHERE job_id = :id AND status = 'queued'",
            id=job_id, attempts=attempts,
        )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
