"""Delivering one job once: the worker's decisions between the jobs table and Graph.

Each delivery of a job's message reads its row first:

- sent, failed or dead: nothing is sent. The previous delivery recorded the outcome, but its ack did
  not reach JetStream, so the message is acked, terminated or dead-lettered again.
- sending, or retrying after an attempt whose outcome is unknown: an earlier attempt may have sent the
  mail (the worker died mid-request, or Graph returned 500/502/504 or nothing at all). The mail is looked up
  in the sender's Sent Items by its preset internetMessageId, and sent again only when it is not there
  GRAPH_TIMEOUT_SECONDS + SENT_ITEMS_LAG_SECONDS after that attempt started: Graph may still work on a
  request that its client gave up on, and Exchange files a sent mail in Sent Items with a lag.
- queued or retrying: the attachments are gathered, the row is set to sending (attempts + 1,
  conditional on the row being unchanged), then the mail is sent (sendMail, or a draft for large mail),
  and the result is recorded before the consumer acks.

docs/delivery.md describes the guarantees and the windows that remain.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from common.attachments import AttachmentStore
from common.errors import DatabaseUnavailable, GraphError, ServiceError
from common.graph import GraphClient
from common.job_store import JobError, JobRecord, JobStore
from common.jobs import Job, JobStatus, Outcome, backoff_delay
from common.logs import mask_address, mask_addresses
from common.message import recipient_count
from common.send_paths import SendPath, load_attachments, send_message
from common.senders import Sender, SenderStore
from common.settings import Settings
from common.upload import OutgoingAttachment

logger = logging.getLogger(__name__)

# Right side of the preset internetMessageId when the sender address has no domain (never in practice).
FALLBACK_MESSAGE_ID_DOMAIN = "mailservice.invalid"
# Recording a 202 is retried this many times in the worker thread before the message is nakked.
RECORD_SENT_TRIES = 3
RECORD_SENT_PAUSE_SECONDS = 0.5
# Delay before a delivery that lost the race for a job to another worker looks again.
CONCURRENT_CHANGE_DELAY_SECONDS = 5.0


def internet_message_id(job_id: str, mailbox: str) -> str:
    """Return the RFC 5322 Message-ID that the job's mail carries: <job id@sender's domain>.

    NOTE: the sandbox keeps a preset internetMessageId; that Microsoft 365's sendMail keeps it too is
    not confirmed (docs/delivery.md, "The windows that remain").
    """
    domain = mailbox.rpartition("@")[2] or FALLBACK_MESSAGE_ID_DOMAIN
    return f"<{job_id}@{domain}>"


class Delivery:
    def __init__(self, settings: Settings, jobs: JobStore, senders: SenderStore, graph: GraphClient,
                 attachments: AttachmentStore) -> None:
        self._settings = settings
        self._jobs = jobs
        self._senders = senders
        self._graph = graph
        self._attachments = attachments

    def deliver(self, job: Job, delivery_count: int) -> Outcome:
        """Return what the consumer does with this delivery of the job's message."""
        try:
            return self._deliver(job)
        except DatabaseUnavailable as exc:
            # Nothing was sent after the last recorded state, so the job only waits for PostgreSQL.
            delay = backoff_delay(delivery_count, self._settings.retry_base_seconds,
                                  self._settings.retry_max_seconds)
            logger.warning("PostgreSQL is unavailable (%s); job waits %.1f s (delivery %d)", exc, delay,
                           delivery_count)
            return Outcome.retry(delay, str(exc))

    def _deliver(self, job: Job) -> Outcome:
        record = self._jobs.ensure(job, recipient_count(job.mail))

        if record.status is JobStatus.SENT:
            logger.info("Job was sent already (attempt %d); acknowledging without sending", record.attempts)
            return Outcome.sent()
        if record.status is JobStatus.FAILED:
            logger.info("Job failed already: %s", record.error)
            return Outcome.failed(str(record.error))
        if record.status is JobStatus.DEAD:
            logger.info("Job is dead already: %s", record.error)
            return Outcome.dead(str(record.error), job.job_id)

        if record.status is JobStatus.SENDING or record.outcome_unknown:
            outcome = self._resolve_unknown_outcome(job, record)
            if outcome is not None:
                return outcome
        return self._attempt(job, record)

    # --- an earlier attempt may have sent the mail ---

    def _resolve_unknown_outcome(self, job: Job, record: JobRecord) -> Outcome | None:
        """Return the outcome if Sent Items settle it (or it must wait), None if the mail must be sent."""
        assert record.mailbox is not None and record.internet_message_id is not None
        waited = record.seconds_since_attempt if record.seconds_since_attempt is not None else float("inf")
        settle = self._settings.graph_timeout_seconds + self._settings.sent_items_lag_seconds
        if waited < settle:
            logger.warning("Outcome of attempt %d is unknown; looking in Sent Items in %.1f s",
                           record.attempts, settle - waited)
            return Outcome.retry(settle - waited, "Waiting until Sent Items show the earlier attempt.")

        try:
            found = self._graph.find_sent_message(record.mailbox, record.internet_message_id)
        except GraphError as exc:
            return self._lookup_failed(job, record, exc)

        if found:
            self._jobs.mark_sent(job.job_id)
            logger.info("Job found in Sent Items of %s after attempt %d; not sending it again",
                        mask_address(record.mailbox), record.attempts)
            return Outcome.sent()
        logger.warning("Job not in Sent Items %.0f s after attempt %d; sending it again", waited,
                       record.attempts)
        return None

    def _lookup_failed(self, job: Job, record: JobRecord, exc: GraphError) -> Outcome | None:
        error = JobError.from_exception(exc)
        if not exc.transient and record.requeues > 0:
            # An operator requeued the job after checking the mailbox, which is the decision to send.
            logger.warning("Sent Items cannot be searched (%s); sending the requeued job again", exc)
            return None
        if not exc.transient:
            # Without the lookup a resend could send the mail twice, so an operator decides: the dead
            # job can be requeued after checking the mailbox.
            self._jobs.finish(job.job_id, JobStatus.DEAD, error, outcome_unknown=True)
            logger.error("Job is dead: the outcome of attempt %d is unknown and Sent Items cannot be "
                         "searched: %s", record.attempts, exc)
            return Outcome.dead(str(error), job.job_id)

        attempts = self._jobs.mark_retrying(job.job_id, error, outcome_unknown=True, count_attempt=True)
        return self._retry_or_dead(job, attempts, exc, error, outcome_unknown=True)

    # --- a send attempt ---

    def _attempt(self, job: Job, record: JobRecord) -> Outcome:
        sender = self._senders.get(job.app_tag)
        refusal = self._sender_refusal(job, sender)
        if refusal is not None:
            self._jobs.finish(job.job_id, JobStatus.FAILED, refusal)
            logger.info("Job failed: %s", refusal.message)
            return Outcome.failed(refusal.message)
        assert sender is not None

        # Loaded before the row is set to sending, because a failed fetch sent nothing and needs no lookup.
        try:
            attachments = load_attachments(job.mail, self._attachments)
        except ServiceError as exc:
            return self._attachments_failed(job, record, exc)

        message_id = record.internet_message_id or internet_message_id(job.job_id, sender.mailbox)
        attempt = self._jobs.begin_attempt(record, sender.mailbox, message_id)
        if attempt is None:
            logger.warning("Job changed while this delivery read it (another worker has it); "
                           "looking again in %.0f s", CONCURRENT_CHANGE_DELAY_SECONDS)
            return Outcome.retry(CONCURRENT_CHANGE_DELAY_SECONDS, "Another delivery changed the job.")

        logger.debug("Sending from %s to %s (attempt %d)", mask_address(sender.mailbox),
                     mask_addresses(job.mail["recipients"]), attempt)
        try:
            path = self._send(job, sender, attachments, message_id)
        except GraphError as exc:
            return self._send_failed(job, attempt, exc)

        return self._record_sent(job, sender.mailbox, attempt, path)

    def _sender_refusal(self, job: Job, sender: Sender | None) -> JobError | None:
        if sender is None:
            return JobError(None, "sender_not_found", f"No sender is configured for app_tag {job.app_tag!r}.")
        if not sender.enabled:
            return JobError(None, "sender_disabled", f"The sender of app_tag {job.app_tag!r} is disabled.")
        return None

    def _attachments_failed(self, job: Job, record: JobRecord, exc: ServiceError) -> Outcome:
        error = JobError.from_exception(exc)
        if not exc.transient:
            self._jobs.finish(job.job_id, JobStatus.FAILED, error)
            logger.info("Job failed: its attachments cannot be loaded: %s", exc)
            return Outcome.failed(str(error))

        delay = backoff_delay(record.attempts + 1, self._settings.retry_base_seconds,
                              self._settings.retry_max_seconds)
        logger.warning("Loading the attachments failed, retrying in %.1f s: %s", delay, exc)
        return Outcome.retry(delay, str(error))

    def _send(self, job: Job, sender: Sender, attachments: list[OutgoingAttachment], message_id: str) -> SendPath:
        return send_message(self._graph, sender.mailbox, job.mail, attachments, sender.display_name, message_id)

    def _record_sent(self, job: Job, mailbox: str, attempt: int, path: SendPath) -> Outcome:
        for try_number in range(1, RECORD_SENT_TRIES + 1):
            try:
                self._jobs.mark_sent(job.job_id)
                break
            except DatabaseUnavailable as exc:
                if try_number == RECORD_SENT_TRIES:
                    # The row's status is still sending, so the next delivery finds the mail in Sent Items.
                    logger.warning("Job was sent but PostgreSQL is unavailable to record it (%s); the next "
                                   "delivery looks it up in Sent Items", exc)
                    return Outcome.retry(self._settings.sent_items_lag_seconds, "Sent; recording it failed.")
                time.sleep(RECORD_SENT_PAUSE_SECONDS * try_number)

        logger.info("Job sent from %s to %d recipients via %s (attempt %d)", mask_address(mailbox),
                    recipient_count(job.mail), path.value, attempt)
        return Outcome.sent()

    def _send_failed(self, job: Job, attempt: int, exc: GraphError) -> Outcome:
        error = JobError.from_exception(exc)
        if not exc.transient:
            self._jobs.finish(job.job_id, JobStatus.FAILED, error)
            logger.info("Job failed permanently on attempt %d: %s", attempt, exc)
            return replace(Outcome.failed(str(error)), graph_status=exc.status_code)

        self._jobs.mark_retrying(job.job_id, error, outcome_unknown=exc.maybe_delivered)
        outcome = self._retry_or_dead(job, attempt, exc, error, outcome_unknown=exc.maybe_delivered)
        return replace(outcome, graph_status=exc.status_code)

    def _retry_or_dead(self, job: Job, attempts: int, exc: ServiceError, error: JobError,
                       outcome_unknown: bool) -> Outcome:
        if attempts >= self._settings.max_deliver:
            self._jobs.finish(job.job_id, JobStatus.DEAD, error, outcome_unknown=outcome_unknown)
            logger.error("Job is dead after %d attempts: %s", attempts, exc)
            return Outcome.dead(f"Gave up after {attempts} attempts: {error}", job.job_id)

        delay = backoff_delay(attempts, self._settings.retry_base_seconds, self._settings.retry_max_seconds,
                              getattr(exc, "retry_after", None))
        logger.warning("Attempt %d failed, retrying in %.1f s: %s", attempts, delay, exc)
        return Outcome.retry(delay, str(error))
