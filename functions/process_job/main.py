"""The job processor: one queued job in, one outcome out.

The NATS consumer shim (consumer.py) calls ``process_job`` in a worker thread and acks, naks or
terminates the message according to the returned Outcome.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from common.attachments import AttachmentStore, ensure_object_store, object_names
from common.db import Database
from common.delivery import deliver
from common.errors import PoisonJob, ServiceError
from common.graph import GraphClient
from common.jobs import Action, Job, JobStatus, Outcome, backoff_delay
from common.logs import job_context, mask_address, mask_addresses
from common.message import recipient_count
from common.metrics import get_metrics
from common.queue import JetStreamPublisher
from common.senders import SenderStore
from common.settings import Settings, get_settings
from common.tracing import TAG_APP_TAG, TAG_JOB_ID, tag_current_span

logger = logging.getLogger(__name__)

# Graph answers sendMail with 202 Accepted; metrics of a sent job carry it as the Graph status.
SENT_STATUS = 202
# The app_tag in the metrics of a queued message that is not a job.
UNKNOWN_APP_TAG = "unknown"
TAG_ATTEMPT = "mail.attempt"
TAG_STATUS = "mail.status"
TAG_GRAPH_STATUS = "mail.graph_status"


class Services:
    """The process-wide clients: database connections per thread, one Graph client (token cache)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_dsn)
        self.senders = SenderStore(self.db)
        self.graph = GraphClient(settings)
        # Connects to NATS on the first job with attachments in the object store.
        self.attachments = AttachmentStore(
            settings, JetStreamPublisher(settings, name="email-worker-attachments", setup=[ensure_object_store]))


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())


def process_job(data: bytes, attempt: int = 1) -> Outcome:
    """Send one queued job through Graph and return what the consumer should do with the message."""
    try:
        job = Job.from_bytes(data)
    except PoisonJob as exc:
        logger.error("Terminating a queued message that is not a valid job: %s", exc)
        get_metrics().record_job(UNKNOWN_APP_TAG, JobStatus.FAILED, None)
        return Outcome.failed(str(exc))

    with job_context(job.job_id, job.app_tag):
        tag_current_span(**{TAG_JOB_ID: job.job_id, TAG_APP_TAG: job.app_tag, TAG_ATTEMPT: attempt})
        outcome, graph_status = _handle(job, attempt)
        _record(job, outcome, graph_status)
        # Attachments in the object store stay while a retry may still need them.
        if outcome.action is not Action.RETRY:
            services().attachments.delete(object_names(job))
        return outcome


def _handle(job: Job, attempt: int) -> tuple[Outcome, int | None]:
    """Send the job; return its outcome and Graph's status code, if Graph answered."""
    try:
        outcome = _send(job, attempt)
    except ServiceError as exc:
        return _outcome_of_error(exc, attempt), getattr(exc, "status_code", None)
    return outcome, SENT_STATUS if outcome.status is JobStatus.SENT else None


def _record(job: Job, outcome: Outcome, graph_status: int | None) -> None:
    get_metrics().record_job(job.app_tag, outcome.status, graph_status, job.accepted_at)
    span_tags: dict[str, str | int] = {TAG_STATUS: outcome.status.value}
    if graph_status is not None:
        span_tags[TAG_GRAPH_STATUS] = graph_status
    tag_current_span(**span_tags)


def _send(job: Job, attempt: int) -> Outcome:
    svc = services()
    mail = job.mail

    sender = svc.senders.get(job.app_tag)
    if sender is None:
        logger.info("Job failed: no sender is configured for app_tag %s any more", job.app_tag)
        return Outcome.failed(f"No sender is configured for app_tag {job.app_tag!r}.")
    if not sender.enabled:
        logger.info("Job failed: the sender of app_tag %s is disabled", job.app_tag)
        return Outcome.failed(f"The sender of app_tag {job.app_tag!r} is disabled.")

    logger.debug("Sending from %s to %s (attempt %d)", mask_address(sender.mailbox),
                 mask_addresses(mail["recipients"]), attempt)
    path = deliver(svc.graph, svc.attachments, sender.mailbox, mail, sender.display_name)

    logger.info("Job sent from %s to %d recipients via %s (attempt %d)", mask_address(sender.mailbox),
                recipient_count(mail), path.value, attempt)
    return Outcome.sent()


def _outcome_of_error(exc: ServiceError, attempt: int) -> Outcome:
    settings = services().settings
    if not exc.transient:
        logger.info("Job failed permanently: %s", exc)
        return Outcome.failed(str(exc))

    if attempt >= settings.max_deliver:
        logger.error("Job is dead after %d attempts: %s", attempt, exc)
        return Outcome.dead(f"Gave up after {attempt} attempts: {exc}")

    delay = backoff_delay(attempt, settings.retry_base_seconds, settings.retry_max_seconds,
                          getattr(exc, "retry_after", None))
    logger.warning("Attempt %d failed, retrying in %.1f s: %s", attempt, delay, exc)
    return Outcome.retry(delay, str(exc))
