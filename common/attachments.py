"""Attachments of jobs too large for one NATS message, kept in a JetStream object store bucket.

NATS rejects messages above its max_payload (1 MB by default). When a job does not fit, the ingest
puts each attachment's bytes into the bucket as ``<job id>/<index>`` and queues the job with
references instead of ``contentBytes``. The worker fetches them, and deletes them once the job is
sent, failed or dead. The bucket's max_age (ATTACHMENT_RETENTION_SECONDS) removes whatever a crash
left behind.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import logging
from typing import Any

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.object_store import ObjectStore

from common.errors import AttachmentMissing, ServiceError
from common.jobs import Job
from common.queue import JetStreamPublisher
from common.settings import Settings

logger = logging.getLogger(__name__)

# Keys of an attachment reference in a queued job; it has these instead of contentBytes.
OBJECT_NAME_KEY = "object_name"
SIZE_KEY = "size"
SHA256_KEY = "sha256"
# Room for the headers that a JetStream publish adds to the job (Nats-Msg-Id and the like), because
# max_payload counts headers and payload together.
PUBLISH_HEADROOM_BYTES = 4096
# nats-py names the stream behind an object store bucket OBJ_<bucket>.
OBJECT_STREAM_PREFIX = "OBJ_"


async def ensure_object_store(js: JetStreamContext, settings: Settings) -> None:
    """Create the attachment bucket, or update its max_age; safe to run in every process."""
    stream = OBJECT_STREAM_PREFIX + settings.nats_object_store
    retention = settings.attachment_retention_seconds
    try:
        info = await js.stream_info(stream)
    except nats.js.errors.NotFoundError:
        config = ObjectStoreConfig(ttl=retention, storage=StorageType.FILE,
                                   description="Attachments of queued mail jobs")
        await js.create_object_store(settings.nats_object_store, config=config)
        logger.info("Created JetStream object store %s with a retention of %.0f s",
                    settings.nats_object_store, retention)
        return

    if abs((info.config.max_age or 0) - retention) > 1:
        info.config.max_age = retention
        await js.update_stream(info.config)
        logger.info("Set the retention of object store %s to %.0f s", settings.nats_object_store, retention)


def is_stored(attachment: dict[str, Any]) -> bool:
    return OBJECT_NAME_KEY in attachment


def object_names(job: Job) -> list[str]:
    return [item[OBJECT_NAME_KEY] for item in job.mail.get("attachments") or [] if is_stored(item)]


class AttachmentStore:
    """Puts, fetches and deletes attachment bytes in the bucket, over a JetStreamPublisher's connection.

    The publisher must have been created with ``setup=[ensure_object_store]``.
    """

    def __init__(self, settings: Settings, connection: JetStreamPublisher) -> None:
        self._settings = settings
        self._connection = connection

    def fits_in_message(self, job: Job) -> bool:
        limit = self._connection.max_payload() - PUBLISH_HEADROOM_BYTES
        encoded = sum(len(item.get("contentBytes") or "") for item in job.mail.get("attachments") or [])
        if encoded > limit:
            return False  # no need to serialise a job of many megabytes to find out
        return len(job.to_bytes()) <= limit

    def offload(self, job: Job) -> Job:
        """Put every attachment of job into the bucket; return the job with references instead.

        Raises QueueUnavailable after deleting the objects already put. Chunks of a put that timed out
        midway stay until the bucket's max_age removes them.
        """
        stored: list[str] = []
        references: list[dict[str, Any]] = []
        try:
            for index, attachment in enumerate(job.mail["attachments"]):
                name = f"{job.job_id}/{index}"
                data = base64.b64decode(attachment["contentBytes"])
                self._put(name, data)
                stored.append(name)
                references.append(_reference(attachment, name, data))
        except ServiceError:
            self.delete(stored)
            raise

        logger.debug("Put %d attachments (%d bytes) into object store %s", len(stored),
                     sum(item[SIZE_KEY] for item in references), self._settings.nats_object_store)
        return dataclasses.replace(job, mail={**job.mail, "attachments": references})

    def fetch(self, attachment: dict[str, Any]) -> bytes:
        """Return the bytes of a stored attachment; raise AttachmentMissing when it is gone."""
        name = attachment[OBJECT_NAME_KEY]
        data = self._connection.run(lambda js: self._get(js, name), self._settings.object_store_timeout_seconds)
        if data is None:
            raise AttachmentMissing(
                f"Attachment {name!r} is not in object store {self._settings.nats_object_store}; it was "
                f"deleted, or the job was older than the retention of "
                f"{self._settings.attachment_retention_seconds:.0f} s."
            )
        return data

    def delete(self, names: list[str]) -> None:
        """Delete the named objects; a failure is logged, and the bucket's max_age removes them later."""
        for name in names:
            try:
                self._connection.run(lambda js, name=name: self._delete(js, name),
                                     self._settings.object_store_timeout_seconds)
            except ServiceError as exc:
                logger.warning("Could not delete attachment %s from object store %s (%s); it expires "
                               "after %.0f s", name, self._settings.nats_object_store, exc,
                               self._settings.attachment_retention_seconds)
        if names:
            logger.debug("Deleted %d attachments from object store %s", len(names),
                         self._settings.nats_object_store)

    def _put(self, name: str, data: bytes) -> None:
        async def put(js: JetStreamContext) -> None:
            await self._bucket(js).put(name, data)

        self._connection.run(put, self._settings.object_store_timeout_seconds)

    async def _get(self, js: JetStreamContext, name: str) -> bytes | None:
        buffer = io.BytesIO()
        try:
            # writeinto avoids nats-py's bytes concatenation per chunk, which is quadratic in the size.
            await self._bucket(js).get(name, writeinto=buffer)
        except nats.js.errors.ObjectNotFoundError:
            return None
        return buffer.getvalue()

    async def _delete(self, js: JetStreamContext, name: str) -> None:
        try:
            await self._bucket(js).delete(name)
        except nats.js.errors.ObjectNotFoundError:
            logger.debug("Attachment %s was already gone from the object store", name)

    def _bucket(self, js: JetStreamContext) -> ObjectStore:
        # Built directly, because js.object_store() first requests the stream info from the server.
        bucket = self._settings.nats_object_store
        return ObjectStore(name=bucket, stream=OBJECT_STREAM_PREFIX + bucket, js=js)


def _reference(attachment: dict[str, Any], name: str, data: bytes) -> dict[str, Any]:
    reference = {key: value for key, value in attachment.items() if key != "contentBytes"}
    reference[OBJECT_NAME_KEY] = name
    reference[SIZE_KEY] = len(data)
    reference[SHA256_KEY] = hashlib.sha256(data).hexdigest()
    return reference
