"""The attachment object store against real NATS JetStream."""

import asyncio
import base64
import dataclasses
import hashlib
import os
import uuid

import nats
import pytest

from common.attachments import AttachmentStore, ensure_object_store, object_names
from common.errors import AttachmentMissing
from common.jobs import Job
from common.queue import JetStreamPublisher
from common.settings import Settings

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def settings(service_env):
    return Settings.from_env(service_env)


@pytest.fixture(scope="module")
def store(settings):
    publisher = JetStreamPublisher(settings, "test-attachments", setup=[ensure_object_store])
    yield AttachmentStore(settings, publisher)
    publisher.close()


def job_with(*payloads):
    attachments = [{"name": f"{n}.bin", "contentType": "application/octet-stream",
                    "contentBytes": base64.b64encode(data).decode(), "content_id": None, "is_inline": False}
                   for n, data in enumerate(payloads)]
    return Job.new({"recipients": ["to@example.com"], "app_tag": "app", "attachments": attachments})


def test_offloaded_attachments_round_trip(store):
    data = [os.urandom(2 * MIB), os.urandom(10)]
    job = store.offload(job_with(*data))

    fetched = [store.fetch(item) for item in job.mail["attachments"]]

    assert fetched == data
    store.delete(object_names(job))


def test_reference_replaces_content_bytes(store):
    data = os.urandom(1000)
    job = store.offload(job_with(data))
    [reference] = job.mail["attachments"]

    assert "contentBytes" not in reference
    assert (reference["object_name"], reference["size"]) == (f"{job.job_id}/0", 1000)
    assert reference["sha256"] == hashlib.sha256(data).hexdigest()
    store.delete(object_names(job))


def test_offloaded_job_fits_in_a_message(store):
    job = store.offload(job_with(os.urandom(2 * MIB)))

    assert store.fits_in_message(job)
    store.delete(object_names(job))


def test_job_over_max_payload_does_not_fit(store):
    assert not store.fits_in_message(job_with(os.urandom(MIB)))


def test_small_job_fits(store):
    assert store.fits_in_message(job_with(b"hallo"))


def test_deleted_attachment_is_missing(store):
    job = store.offload(job_with(b"kurz"))
    store.delete(object_names(job))

    with pytest.raises(AttachmentMissing, match="retention"):
        store.fetch(job.mail["attachments"][0])


def test_deleting_a_missing_attachment_is_quiet(store, caplog):
    with caplog.at_level("WARNING"):
        store.delete([f"{uuid.uuid4()}/0"])
    assert caplog.records == []


async def _bucket_max_age(settings, retentions):
    nc = await nats.connect(settings.nats_url)
    js = nc.jetstream()
    ages = []
    try:
        for retention in retentions:
            await ensure_object_store(js, dataclasses.replace(settings, attachment_retention_seconds=retention))
            ages.append((await js.stream_info(f"OBJ_{settings.nats_object_store}")).config.max_age)
    finally:
        await js.delete_stream(f"OBJ_{settings.nats_object_store}")
        await nc.close()
    return ages


def test_ensure_object_store_creates_and_updates_retention(settings):
    own = dataclasses.replace(settings, nats_object_store=f"TEST_RETENTION_{uuid.uuid4().hex[:8]}")

    assert asyncio.run(_bucket_max_age(own, [3600, 3600, 7200])) == [3600, 3600, 7200]
