"""The dead-letter stream: a copy of each dead job's message, so an operator can requeue the job.

A job is dead when every attempt failed transiently (MAX_DELIVER attempts, about an hour). Before the
worker terminates the original message, it publishes the message unchanged to
``<NATS_SUBJECT_PREFIX>.dead.<job id>`` in the stream ``<NATS_STREAM>_DEAD``, which keeps the newest copy
per job for DEAD_LETTER_MAX_AGE_DAYS. The jobs table lists the dead jobs; ``requeue_dead_job`` publishes
the copy to the job subject again and deletes it.
"""

from __future__ import annotations

import asyncio
import logging

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from common.errors import DeadLetterMissing, JobNotDead
from common.job_store import JobRecord, JobStore
from common.jobs import JobStatus
from common.queue import MSG_ID_HEADER, connect, ensure_stream_config, translate_error
from common.settings import Settings

logger = logging.getLogger(__name__)

DEAD_REASON_HEADER = "Mailservice-Dead-Reason"
# NATS header values are single lines; a long Graph message is cut to this length.
MAX_REASON_LENGTH = 500
PUBLISH_TIMEOUT_SECONDS = 5.0
SECONDS_PER_DAY = 86400


def dead_letter_stream_config(settings: Settings) -> StreamConfig:
    return StreamConfig(
        name=settings.dead_letter_stream,
        subjects=[settings.dead_letter_subject(">")],
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_msgs_per_subject=1,
        max_age=settings.dead_letter_max_age_days * SECONDS_PER_DAY,
    )


async def ensure_dead_letter_stream(js: JetStreamContext, settings: Settings) -> None:
    await ensure_stream_config(js, dead_letter_stream_config(settings))


async def publish_dead_letter(js: JetStreamContext, settings: Settings, job_token: str, data: bytes,
                              reason: str, delivery_sequence: int) -> None:
    """Copy a dead job's message to its dead-letter subject; raise nats errors when it was not stored.

    The Nats-Msg-Id names the original stream sequence, so a repeated copy of the same message (after
    a failed term) is dropped, while a requeued job that dies again is copied anew.
    """
    single_line = " ".join(reason.split())[:MAX_REASON_LENGTH]
    headers = {MSG_ID_HEADER: f"dead-{job_token}-{delivery_sequence}", DEAD_REASON_HEADER: single_line}
    await js.publish(settings.dead_letter_subject(job_token), data, headers=headers,
                     timeout=PUBLISH_TIMEOUT_SECONDS)


def requeue_dead_job(settings: Settings, store: JobStore, job_id: str) -> None:
    """Publish a dead job's dead-letter copy to the job subject again, with a fresh attempt budget.

    Raises JobNotFound, JobNotDead, DeadLetterMissing or QueueUnavailable; the job stays dead then.
    """
    record = store.find(job_id)
    if record.status is not JobStatus.DEAD:
        raise JobNotDead(f"Job {job_id} has status {record.status.value}; expected dead.", job_id=job_id,
                         status=record.status.value)
    asyncio.run(_requeue(settings, store, record))


async def _requeue(settings: Settings, store: JobStore, record: JobRecord) -> None:
    try:
        nc = await connect(settings.nats_url, "mailservice-admin")
    except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
        raise translate_error(exc) from exc

    try:
        js = nc.jetstream()
        data = await _dead_letter_data(js, settings, record.job_id)

        requeues = store.requeue(record.job_id)
        if requeues is None:
            raise JobNotDead(f"Job {record.job_id} is no longer dead.", job_id=record.job_id, status="?")
        try:
            # A fresh Nats-Msg-Id, because JetStream still remembers the original one within its window.
            await js.publish(settings.job_subject, data, timeout=PUBLISH_TIMEOUT_SECONDS,
                             headers={MSG_ID_HEADER: f"{record.job_id}-requeue-{requeues}"})
        except (asyncio.TimeoutError, nats.errors.Error) as exc:
            store.undo_requeue(record.job_id, record.attempts)
            raise translate_error(exc) from exc
        logger.info("Requeued dead job %s (requeue %d)", record.job_id, requeues)

        await _delete_dead_letter(js, settings, record.job_id)
    finally:
        await nc.close()


async def _dead_letter_data(js: JetStreamContext, settings: Settings, job_id: str) -> bytes:
    try:
        message = await js.get_last_msg(settings.dead_letter_stream, settings.dead_letter_subject(job_id))
    except nats.js.errors.NotFoundError as exc:
        days = f"{settings.dead_letter_max_age_days:g}"
        raise DeadLetterMissing(f"No dead-letter copy of job {job_id} exists.", job_id=job_id, days=days) from exc
    except (asyncio.TimeoutError, nats.errors.Error) as exc:
        raise translate_error(exc) from exc
    return message.data or b""


async def _delete_dead_letter(js: JetStreamContext, settings: Settings, job_id: str) -> None:
    try:
        await js.purge_stream(settings.dead_letter_stream, subject=settings.dead_letter_subject(job_id))
    except (asyncio.TimeoutError, nats.errors.Error):
        # The job is queued already; the copy expires with the stream's max_age.
        logger.warning("Could not delete the dead-letter copy of job %s", job_id, exc_info=True)
