"""The job processor: one queued job in, one outcome out.

The NATS consumer shim (consumer.py) calls ``process_job`` in a worker thread and acks, naks,
terminates or dead-letters the message according to the returned Outcome. The decisions that keep a
job from being sent twice are in common/delivery.py.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from common.attachments import AttachmentStore, ensure_object_store, object_names
from common.db import Database
from common.delivery import Delivery
from common.errors import PoisonJob
from common.graph import GraphClient
from common.job_store import JobStore
from common.jobs import Action, Job, JobStatus, Outcome
from common.logs import job_context
from common.metrics import get_metrics
from common.queue import JetStreamPublisher
from common.senders import SenderStore
from common.settings import Settings, get_settings
from common.tracing import TAG_APP_TAG, TAG_JOB_ID, tag_current_span

logger = logging.getLogger(__name__)

# Graph returns 202 Accepted for sendMail; metrics of a sent job carry it as the Graph status.
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
        self.jobs = JobStore(self.db)
        self.graph = GraphClient(settings)
        # Connects to NATS on the first job with attachments in the object store.
        self.attachments = AttachmentStore(
            settings, JetStreamPublisher(settings, name="email-worker-attachments", setup=[ensure_object_store]))
        self.delivery = Delivery(settings, self.jobs, self.senders, self.graph, self.attachments)


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())


def process_job(data: bytes, attempt: int = 1) -> Outcome:
    """Send one queued job through Graph and return what the consumer should do with the message.

    attempt is JetStream's delivery count of the message; the job's own attempt count is in its row.
    """
    try:
        job = Job.from_bytes(data)
    except PoisonJob as exc:
        logger.error("Terminating a queued message that is not a valid job: %s", exc)
        get_metrics().record_job(UNKNOWN_APP_TAG, JobStatus.FAILED, None)
        return Outcome.failed(str(exc))

    with job_context(job.job_id, job.app_tag):
        tag_current_span(**{TAG_JOB_ID: job.job_id, TAG_APP_TAG: job.app_tag, TAG_ATTEMPT: attempt})
        outcome = services().delivery.deliver(job, attempt)
        _record(job, outcome)
        # Attachments in the object store stay while a retry may still need them.
        if outcome.action is not Action.RETRY:
            services().attachments.delete(object_names(job))
        return outcome


def _record(job: Job, outcome: Outcome) -> None:
    graph_status = SENT_STATUS if outcome.status is JobStatus.SENT else outcome.graph_status
    get_metrics().record_job(job.app_tag, outcome.status, graph_status, job.accepted_at)
    span_tags: dict[str, str | int] = {TAG_STATUS: outcome.status.value}
    if graph_status is not None:
        span_tags[TAG_GRAPH_STATUS] = graph_status
    tag_current_span(**span_tags)
