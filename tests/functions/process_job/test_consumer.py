"""The NATS consumer shim with real worker processes."""

import asyncio
import base64
import os
import signal
import sys
import time
import uuid

import nats
import pytest
import requests

from nats.js.api import AckPolicy, ConsumerConfig

from common.attachments import AttachmentStore, ensure_object_store
from common.jobs import Job
from common.queue import JetStreamPublisher, delete_streams, ensure_stream
from common.settings import ENV_NATS_CONSUMER, ENV_NATS_STREAM, ENV_NATS_SUBJECT_PREFIX, ENV_NATS_URL, Settings
from functions.process_job.consumer import UNLIMITED_DELIVERIES, ensure_consumer
from tests.conftest import spawn

pytestmark = pytest.mark.integration


async def publish_raw(env, data):
    nc = await nats.connect(env[ENV_NATS_URL])
    js = nc.jetstream()
    ack = await js.publish(f"{env['NATS_SUBJECT_PREFIX']}.jobs", data)
    await nc.close()
    return ack.seq


async def consumer_state(env):
    nc = await nats.connect(env[ENV_NATS_URL])
    js = nc.jetstream()
    info = await js.consumer_info(env[ENV_NATS_STREAM], env[ENV_NATS_CONSUMER])
    stream = await js.stream_info(env[ENV_NATS_STREAM])
    await nc.close()
    return info, stream


async def delete_stream(env):
    nc = await nats.connect(env[ENV_NATS_URL])
    await delete_streams(nc.jetstream(), Settings.from_env(env))
    await nc.close()


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_poison_message_is_terminated_not_redelivered(service_env, worker):
    asyncio.run(publish_raw(service_env, b"this is not a job"))
    assert wait_until(lambda: asyncio.run(consumer_state(service_env))[1].state.messages == 0)
    info, _ = asyncio.run(consumer_state(service_env))
    assert info.num_redelivered == 0


def test_poison_message_is_logged(service_env, worker):
    asyncio.run(publish_raw(service_env, b"\x00\x01 definitely not json"))
    assert wait_until(lambda: "not a valid job" in worker.log())


def test_two_workers_share_the_jobs(service_env, worker, sender, ingest, sandbox, log_dir):
    second = spawn("worker-2", [sys.executable, "-m", "functions.process_job"], {**os.environ, **service_env},
                   log_dir)
    try:
        assert wait_until(lambda: "Consuming" in second.log())
        added = sender()
        app_tag, mailbox = added
        for number in range(40):
            requests.post(f"{ingest}/send-email", timeout=10, headers=added.auth,
                          json={"recipients": ["a@example.com"], "subject": str(number), "app_tag": app_tag})
        assert len(sandbox.wait_for_messages(mailbox, 40)) == 40
        assert "Job sent" in second.log()
    finally:
        second.stop()


def test_sigterm_drains_and_exits_cleanly(service_env, log_dir, database):
    process = spawn("worker-term", [sys.executable, "-m", "functions.process_job"], {**os.environ, **service_env},
                    log_dir)
    assert wait_until(lambda: "Consuming" in process.log())
    process.popen.send_signal(signal.SIGTERM)
    assert process.popen.wait(20) == 0
    assert "Stopped" in process.log()


def test_slow_upload_outlasting_ack_wait_is_not_redelivered(service_env, sender, sandbox, log_dir, database):
    suffix = uuid.uuid4().hex[:8]
    env = {**service_env, ENV_NATS_STREAM: f"TEST_SLOW_{suffix}", "NATS_SUBJECT_PREFIX": f"test-slow-{suffix}",
           ENV_NATS_CONSUMER: f"test-slow-{suffix}", "ACK_WAIT_SECONDS": "2"}
    settings = Settings.from_env(env)
    app_tag, mailbox = sender()
    publisher = JetStreamPublisher(settings, "test-slow", setup=[ensure_object_store])
    data = base64.b64encode(os.urandom(8 * 1024 * 1024)).decode()
    job = AttachmentStore(settings, publisher).offload(Job.new({
        "recipients": ["a@example.com"], "subject": "langsam", "app_tag": app_tag,
        "attachments": [{"name": "gross.pdf", "contentType": "application/pdf", "contentBytes": data}]}))
    publisher.publish(settings.job_subject, job.to_bytes())
    # Three chunks of one second each: the upload outlasts the 2 s ack wait unless the worker extends it.
    sandbox.add_fault(latency_ms=1000, mailbox=mailbox, operations=["uploadChunk"])
    process = spawn("worker-slow", [sys.executable, "-m", "functions.process_job"], {**os.environ, **env}, log_dir)
    try:
        assert wait_until(lambda: "Job sent" in process.log(), timeout=30)
        time.sleep(3)
        info, _ = asyncio.run(consumer_state(env))
    finally:
        process.stop()
        sandbox.clear_faults()
        publisher.close()
        asyncio.run(delete_stream(env))

    assert len(sandbox.messages(mailbox)) == 1
    assert info.num_redelivered == 0
def test_consumer_delivers_without_limit(service_env, worker):
    info, _ = asyncio.run(consumer_state(service_env))
    assert info.config.max_deliver == UNLIMITED_DELIVERIES


async def create_then_ensure(env):
    """Create a consumer as an older version did (max_deliver 20) on a fresh stream, then ensure it."""
    suffix = uuid.uuid4().hex[:8]
    settings = Settings.from_env({**env, ENV_NATS_STREAM: f"OLD_{suffix}",
                                  ENV_NATS_SUBJECT_PREFIX: f"old-{suffix}", ENV_NATS_CONSUMER: f"old-{suffix}"})
    nc = await nats.connect(env[ENV_NATS_URL])
    js = nc.jetstream()
    await ensure_stream(js, settings)
    old = ConsumerConfig(durable_name=settings.nats_consumer, deliver_group=settings.nats_consumer,
                         deliver_subject=nc.new_inbox(), ack_policy=AckPolicy.EXPLICIT, max_deliver=20,
                         ack_wait=60)
    await js.add_consumer(settings.nats_stream, old)

    await ensure_consumer(js, settings)

    info = await js.consumer_info(settings.nats_stream, settings.nats_consumer)
    await js.delete_stream(settings.nats_stream)
    await nc.close()
    return info.config


def test_consumer_of_older_version_is_updated(service_env):
    config = asyncio.run(create_then_ensure(service_env))

    assert config.max_deliver == UNLIMITED_DELIVERIES
