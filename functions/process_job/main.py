"""The job processor: one queued job in, one outcome out.

The NATS consumer shim (consumer.py) calls ``process_job`` in a worker thread and acks, naks or
terminates the message according to the returned Outcome.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from common.db import Database
from common.errors import PoisonJob, ServiceError
from common.graph import GraphClient
from common.jobs import Job, Outcome, backoff_delay
from common.logs import job_context, mask_address, mask_addresses
from common.message import recipient_count, to_graph_message, with_sender_name
from common.senders import SenderStore
from common.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class Services:
    """The process-wide clients: database connections per thread, one Graph client (token cache)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.senders = SenderStore(Database(settings.db_dsn))
        self.graph = GraphClient(settings)


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())


def process_job(data: bytes, attempt: int = 1) -> Outcome:
    """Send one queued job through Graph and return what the consumer should do with the message."""
    try:
        job = Job.from_bytes(data)
    except PoisonJob as exc:
        logger.error("Terminating a queued message that is not a valid job: %s", exc)
        return Outcome.failed(str(exc))

    with job_context(job.job_id, job.app_tag):
        try:
            return _send(job, attempt)
        except ServiceError as exc:
            return _outcome_of_error(exc, attempt)


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
    message = with_sender_name(to_graph_message(mail), sender.mailbox, sender.display_name)
    svc.graph.send_mail(sender.mailbox, message)

    logger.info("Job sent from %s to %d recipients (attempt %d)", mask_address(sender.mailbox),
                recipient_count(mail), attempt)
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
