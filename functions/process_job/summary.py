"""The worker's periodic summary: one log line and the queue-pending gauge every interval."""

from __future__ import annotations

import asyncio
import logging

import nats.errors
from nats.js import JetStreamContext

from common.metrics import Metric, Metrics

logger = logging.getLogger(__name__)


async def pending_jobs(js: JetStreamContext, stream: str) -> int | None:
    """Return the jobs in the stream (work-queue retention keeps each one until it is acked)."""
    try:
        info = await js.stream_info(stream)
    except (asyncio.TimeoutError, nats.errors.Error) as exc:
        logger.debug("Could not read the state of stream %s: %s", stream, exc or type(exc).__name__)
        return None
    return info.state.messages


def summary_line(counts: dict[Metric, int], pending: int | None, interval_seconds: float) -> str:
    sent, retried, failed = (counts.get(metric, 0) for metric in (Metric.SENT, Metric.RETRIED, Metric.FAILED))
    pending_text = "unknown" if pending is None else str(pending)
    return (f"Summary of the last {interval_seconds:.0f} s: processed {sent + retried + failed} "
            f"(sent {sent}, retried {retried}, failed {failed}), throttled {counts.get(Metric.THROTTLED, 0)}, "
            f"pending in stream {pending_text}")


async def report_summaries(js: JetStreamContext, stream: str, metrics: Metrics, interval_seconds: float,
                           stopping: asyncio.Event) -> None:
    """Log a summary and gauge the pending jobs every interval_seconds until stopping is set."""
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), interval_seconds)
            return
        except asyncio.TimeoutError:
            pass

        pending = await pending_jobs(js, stream)
        if pending is not None:
            metrics.gauge(Metric.QUEUE_PENDING, pending)
        logger.info("%s", summary_line(metrics.take_counts(), pending, interval_seconds))
