"""Log configuration for the entry points, the job context of each line, and address masking.

Modules only call ``logging.getLogger(__name__)``; handlers are installed by ``configure_logging`` in
the entry points. Every line carries the job id and app_tag of the job being handled, or ``-``.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager

JOB_ID: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")
APP_TAG: contextvars.ContextVar[str] = contextvars.ContextVar("app_tag", default="-")

# Good enough to find addresses inside error texts; schemas.py validates addresses properly.
_ADDRESS_IN_TEXT = re.compile(r"[^\s'\"<>(),;:@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s app=%(app_tag)s] %(message)s"
# Attributes that ddtrace's log injection adds to each record; Datadog links a JSON log line to its
# trace through dd.trace_id and dd.span_id.
DD_RECORD_ATTRIBUTES = ("dd.trace_id", "dd.span_id", "dd.service", "dd.env", "dd.version")


_base_record_factory = logging.getLogRecordFactory()


def _record_with_job_context(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    record.job_id = JOB_ID.get()
    record.app_tag = APP_TAG.get()
    return record


# A record factory, not a handler filter, so every handler (pytest's caplog, ddtrace's) receives the fields.
if getattr(logging.getLogRecordFactory(), "__name__", "") != _record_with_job_context.__name__:
    logging.setLogRecordFactory(_record_with_job_context)


class JsonFormatter(logging.Formatter):
    """One JSON object per line, with Datadog's standard attribute names and the trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "timestamp": self.formatTime(record),
            "level": record.levelname,
            "logger.name": record.name,
            "logger.thread_name": record.threadName,
            "message": record.getMessage(),
            "job_id": getattr(record, "job_id", "-"),
            "app_tag": getattr(record, "app_tag", "-"),
        }
        for name in DD_RECORD_ATTRIBUTES:
            if hasattr(record, name):
                document[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            document["error.kind"] = record.exc_info[0].__name__
            document["error.message"] = str(record.exc_info[1])
            document["error.stack"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(document, ensure_ascii=False, default=str)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # ISO 8601 in UTC with milliseconds, which Datadog's date remapper reads without a pipeline.
        seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        return f"{seconds}.{int(record.msecs):03d}Z"


def configure_logging(level: str = "INFO", json_format: bool = False) -> None:
    """Send log lines to stderr with the job context; call once per process, from an entry point.

    json_format writes one JSON object per line (see JsonFormatter) instead of the text format.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_format else logging.Formatter(LOG_FORMAT))

    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Library chatter at DEBUG would log request URLs with mailbox addresses and token endpoints.
    for noisy in ("urllib3", "msal", "nats", "ddtrace"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


@contextmanager
def job_context(job_id: str, app_tag: str) -> Iterator[None]:
    """Tag every log line inside the block with the job id and app_tag."""
    job_token = JOB_ID.set(job_id)
    tag_token = APP_TAG.set(app_tag)
    try:
        yield
    finally:
        JOB_ID.reset(job_token)
        APP_TAG.reset(tag_token)


def mask_address(address: str) -> str:
    """Mask the local part of an e-mail address, keeping its first character and the domain."""
    local, at, domain = address.rpartition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def mask_addresses(addresses: list[str]) -> str:
    return ", ".join(mask_address(address) for address in addresses)


def mask_addresses_in_text(text: str) -> str:
    """Mask every e-mail address in text, for error messages from Graph that name recipients."""
    return _ADDRESS_IN_TEXT.sub(lambda match: mask_address(match.group(0)), text)
