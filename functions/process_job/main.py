"""The job processor: one queued job in, one outcome out.

The NATS consumer shim (consumer.py) calls ``process_job`` in a worker thread and acks, naks,
terminates or dead-letters the message according to the returned Outcome. The decisions that keep a
job from being sent twice are in common/delivery.py.
"""

from __future__ import annotations

import logging
from functools import lru_cache

from common.db import Database
from common.delivery import Delivery
from common.errors import PoisonJob
from common.graph import GraphClient
from common.job_store import JobStore
from common.jobs import Job, Outcome
from common.logs import job_context
from common.senders import SenderStore
from common.settings import Settings, get_settings

logger = logging.getLogger(__name__)


class Services:
    """The process-wide clients: database connections per thread, one Graph client (token cache)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        database = Database(settings.db_dsn)
        self.senders = SenderStore(database)
        self.jobs = JobStore(database)
        self.graph = GraphClient(settings)
        self.delivery = Delivery(settings, self.jobs, self.senders, self.graph)


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
        return Outcome.failed(str(exc))

    with job_context(job.job_id, job.app_tag):
        return services().delivery.deliver(job, attempt)
