"""DogStatsD metrics of the mail pipeline, and the per-process counts behind the worker's summary line.

Metrics go over UDP (or a Unix socket) to the Datadog agent's DogStatsD through the client that
ddtrace bundles. Sending never blocks or raises: without a listener the packets are dropped, and the
client logs that through ddtrace's logger, which lets each message through once a minute
(DD_TRACE_LOGGING_RATE).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from datetime import datetime, timezone
from enum import Enum
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from common.jobs import JobStatus
from common.settings import ObservabilitySettings, get_observability_settings

if TYPE_CHECKING:
    from ddtrace.vendor.dogstatsd import DogStatsd

logger = logging.getLogger(__name__)

DEFAULT_UDP_PORT = 8125


class Metric(str, Enum):
    ACCEPTED = "mailservice.mail.accepted"
    SENT = "mailservice.mail.sent"
    FAILED = "mailservice.mail.failed"
    RETRIED = "mailservice.mail.retried"
    THROTTLED = "mailservice.mail.throttled"
    # Seconds from the ingest's acceptance of a job to Graph's 202, queueing and retries included.
    SEND_LATENCY = "mailservice.mail.send_latency"
    # Jobs in the stream: not yet delivered, or delivered and not yet acked.
    QUEUE_PENDING = "mailservice.queue.pending"


# The counter that each final or intermediate job status increments.
STATUS_METRICS = {
    JobStatus.SENT: Metric.SENT,
    JobStatus.RETRYING: Metric.RETRIED,
    JobStatus.FAILED: Metric.FAILED,
    JobStatus.DEAD: Metric.FAILED,
}
THROTTLED_STATUS = 429


class Metrics:
    """Counters, distributions and gauges for DogStatsD, plus in-process counts of each counter."""

    def __init__(self, client: DogStatsd | None) -> None:
        self._client = client
        self._counts: Counter[Metric] = Counter()
        self._lock = threading.Lock()

    def increment(self, metric: Metric, app_tag: str, graph_status: int | None = None,
                  **tags: str) -> None:
        with self._lock:
            self._counts[metric] += 1
        if self._client is not None:
            self._client.increment(metric.value, tags=_tags(app_tag, graph_status, **tags))

    def distribution(self, metric: Metric, value: float, app_tag: str) -> None:
        if self._client is not None:
            self._client.distribution(metric.value, value, tags=_tags(app_tag))

    def gauge(self, metric: Metric, value: float) -> None:
        if self._client is not None:
            self._client.gauge(metric.value, value)

    def take_counts(self) -> dict[Metric, int]:
        """Return the counts since the last call and start counting from zero."""
        with self._lock:
            counts, self._counts = dict(self._counts), Counter()
        return counts

    def record_job(self, app_tag: str, status: JobStatus, graph_status: int | None,
                   accepted_at: str = "") -> None:
        """Count one handled job by its status; a sent job also records its send latency."""
        metric = STATUS_METRICS.get(status)
        if metric is None:
            return
        self.increment(metric, app_tag, graph_status, status=status.value)
        if graph_status == THROTTLED_STATUS:
            self.increment(Metric.THROTTLED, app_tag, graph_status)
        if status is JobStatus.SENT and accepted_at:
            latency = seconds_since(accepted_at)
            if latency is not None:
                self.distribution(Metric.SEND_LATENCY, latency, app_tag)


def _tags(app_tag: str, graph_status: int | None = None, **tags: str) -> list[str]:
    result = [f"app_tag:{app_tag}"]
    if graph_status is not None:
        result.append(f"graph_status:{graph_status}")
    result += [f"{name}:{value}" for name, value in tags.items()]
    return result


def seconds_since(timestamp: str) -> float | None:
    """Return the seconds since an ISO 8601 timestamp, or None if it does not parse."""
    try:
        then = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    if then.tzinfo is None:
        then = then.replace(tzinfo=timezone.utc)
    return max((datetime.now(timezone.utc) - then).total_seconds(), 0.0)


def build_client(url: str) -> DogStatsd:
    """Return a DogStatsD client for ``udp://host:port`` or ``unix:///path``; it connects lazily."""
    from ddtrace.vendor.dogstatsd import DogStatsd

    parts = urlsplit(url if "://" in url else f"udp://{url}")
    if parts.scheme == "unix":
        return DogStatsd(socket_path=parts.path)
    if parts.scheme == "udp":
        return DogStatsd(host=parts.hostname or "127.0.0.1", port=parts.port or DEFAULT_UDP_PORT)
    raise ValueError(f"DogStatsD URL {url!r} is invalid; expected udp://HOST:PORT or unix:///PATH.")


def create_metrics(settings: ObservabilitySettings) -> Metrics:
    if not settings.metrics_enabled:
        return Metrics(None)
    client = build_client(settings.dogstatsd_url)
    logger.debug("Sending metrics to DogStatsD at %s", settings.dogstatsd_url)
    return Metrics(client)


@lru_cache(maxsize=1)
def get_metrics() -> Metrics:
    """Return this process's metrics; the client is made on the first call, after gunicorn's fork."""
    return create_metrics(get_observability_settings())
