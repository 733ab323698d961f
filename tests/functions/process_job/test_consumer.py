"""The NATS consumer shim with real worker processes."""

import asyncio
import os
import signal
import sys
import time

import nats
import pytest
import requests

from common.settings import ENV_NATS_CONSUMER, ENV_NATS_STREAM, ENV_NATS_URL
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
