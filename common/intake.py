"""Accepting a validated mail: record the job in PostgreSQL, then store it in JetStream.

The jobs row exists before the publish, so GET /jobs/{id} finds every job whose id a client received.
With an Idempotency-Key two guards work together. The primary key of idempotency_keys gives every
request with that key the same job id. The publish carries the job id as Nats-Msg-Id, so JetStream
stores a job only once within its duplicate window, also when two requests publish it at once.
Attachments of a job larger than a NATS message go into the object store first (common/attachments.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from common.attachments import AttachmentStore, object_names
from common.errors import DatabaseUnavailable, IdempotencyKeyReused, ServiceError, UnknownAppTag
from common.idempotency import request_hash
from common.job_store import JobError, JobStore
from common.jobs import Job, JobStatus
from common.logs import job_context, mask_addresses
from common.message import recipient_count
from common.queue import MSG_ID_HEADER, JetStreamPublisher
from common.senders import SenderCache
from common.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accepted:
    job_id: str
    status: JobStatus
    # True when an earlier request with the same Idempotency-Key created the job.
    replayed: bool = False


class Intake:
    def __init__(self, settings: Settings, senders: SenderCache, jobs: JobStore,
                 publisher: JetStreamPublisher, attachments: AttachmentStore) -> None:
        self._settings = settings
        self._senders = senders
        self._jobs = jobs
        self._publisher = publisher
        self._attachments = attachments

    def accept(self, mail: dict[str, Any], idempotency_key: str | None = None) -> Accepted:
        """Record and queue the mail; raise ServiceError when it is not accepted."""
        if self._senders.get(mail["app_tag"]) is None:
            raise UnknownAppTag(f"No sender for app_tag {mail['app_tag']!r}.", app_tag=mail["app_tag"])

        job = Job.new(mail)
        if idempotency_key is None:
            return self._accept_new(job)
        return self._accept_idempotent(job, idempotency_key)

    def _accept_new(self, job: Job) -> Accepted:
        with job_context(job.job_id, job.app_tag):
            self._jobs.insert(job, recipient_count(job.mail))
            try:
                self._publish(job)
            except ServiceError:
                # No client can know this job id, so no row may stay behind. NOTE: a publish that timed
                # out may still have been stored; the worker then recreates the row and sends the mail.
                self._forget(job.job_id)
                raise
        return Accepted(job.job_id, JobStatus.QUEUED)

    def _accept_idempotent(self, job: Job, key: str) -> Accepted:
        fingerprint = request_hash(job.mail)
        claim = self._jobs.claim_idempotency_key(job, recipient_count(job.mail), key, fingerprint,
                                                 self._settings.idempotency_window_seconds)
        with job_context(claim.job_id, job.app_tag):
            if claim.request_hash != fingerprint:
                raise IdempotencyKeyReused(
                    f"Idempotency-Key {key!r} belongs to job {claim.job_id} with a different request body.",
                    idempotency_key=key, job_id=claim.job_id)

            if claim.created:
                self._publish_keeping_row(job)
                return Accepted(job.job_id, JobStatus.QUEUED)
            return self._replay(Job(claim.job_id, job.app_tag, job.mail), key)

    def _replay(self, job: Job, key: str) -> Accepted:
        record = self._jobs.get(job.job_id)
        status = record.status if record is not None else JobStatus.QUEUED
        if status is JobStatus.QUEUED:
            # The first request may have got a 503 although JetStream stored the job, or may still be
            # publishing. Publishing again is safe: JetStream drops a second message with the same
            # Nats-Msg-Id, and the worker's conditional status update stops a second send.
            self._publish_keeping_row(job, keep_attachments=True)
        logger.info("Idempotency-Key %r repeated; returning the existing job (status %s)", key, status.value)
        return Accepted(job.job_id, status, replayed=True)

    def _publish(self, job: Job, keep_attachments: bool = False) -> None:
        """Store the job (its large attachments first) in JetStream.

        A failed publish deletes the attachments it put, with two exceptions. A replay (keep_attachments)
        keeps them, because its first publish may have stored the job with them. A timed-out publish keeps
        them, because JetStream may have stored the job. The object store's retention removes the rest.
        """
        queued = job if self._attachments.fits_in_message(job) else self._attachments.offload(job)
        try:
            sequence = self._publisher.publish(self._settings.job_subject, queued.to_bytes(),
                                               {MSG_ID_HEADER: job.job_id})
        except ServiceError as exc:
            if not keep_attachments and not getattr(exc, "maybe_stored", False):
                self._attachments.delete(object_names(queued))
            raise
        logger.info("Job queued as stream sequence %d for %s", sequence, mask_addresses(job.mail["recipients"]))

    def _publish_keeping_row(self, job: Job, keep_attachments: bool = False) -> None:
        """Publish; on failure keep the row, because a retry with the key will publish the job again."""
        try:
            self._publish(job, keep_attachments)
        except ServiceError as exc:
            self._record_publish_failure(job.job_id, exc)
            raise

    def _forget(self, job_id: str) -> None:
        try:
            self._jobs.delete_unpublished(job_id)
        except DatabaseUnavailable:
            logger.warning("Could not delete the row of the job that JetStream did not store", exc_info=True)

    def _record_publish_failure(self, job_id: str, exc: ServiceError) -> None:
        try:
            self._jobs.record_publish_failure(job_id, JobError.from_exception(exc))
        except DatabaseUnavailable:
            logger.warning("Could not record the failed publish", exc_info=True)
