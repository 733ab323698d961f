"""The worker's periodic summary line and its count of pending jobs, against real JetStream."""

import asyncio
import uuid

import nats
import pytest

from common.metrics import Metric
from common.queue import ensure_stream
from common.settings import Settings
from functions.process_job.summary import pending_jobs, summary_line


def test_summary_line_adds_up_processed_jobs():
    counts = {Metric.SENT: 5, Metric.RETRIED: 2, Metric.FAILED: 1, Metric.THROTTLED: 2}
    assert summary_line(counts, 3, 60) == ("Summary of the last 60 s: processed 8 (sent 5, retried 2, failed 1), "
                                           "throttled 2, pending in stream 3")


def test_summary_line_without_stream_state_says_unknown():
    assert summary_line({}, None, 60).endswith("pending in stream unknown")


@pytest.mark.integration
def test_pending_jobs_counts_unacked_messages(servers):
    suffix = uuid.uuid4().hex[:8]
    settings = Settings.from_env({**servers, "NATS_STREAM": f"SUMMARY_{suffix}",
                                  "NATS_SUBJECT_PREFIX": f"summary-{suffix}"})

    async def publish_two_and_count() -> int | None:
        nc = await nats.connect(settings.nats_url)
        js = nc.jetstream()
        try:
            await ensure_stream(js, settings)
            for _ in range(2):
                await js.publish(settings.job_subject, b"{}")
            return await pending_jobs(js, settings.nats_stream)
        finally:
            await js.delete_stream(settings.nats_stream)
            await nc.close()

    assert asyncio.run(publish_two_and_count()) == 2


@pytest.mark.integration
def test_pending_jobs_of_missing_stream_is_none(servers):
    async def count() -> int | None:
        nc = await nats.connect(servers["NATS_URL"])
        try:
            return await pending_jobs(nc.jetstream(), f"MISSING_{uuid.uuid4().hex[:8]}")
        finally:
            await nc.close()

    assert asyncio.run(count()) is None
