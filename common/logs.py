"""Log configuration for the entry points, the job context of each line, and address masking.

Modules only call ``logging.getLogger(__name__)``; handlers are installed by ``configure_logging`` in
the entry points. Every line carries the job id and app_tag of the job being handled, or ``-``.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

JOB_ID: contextvars.ContextVar[str] = contextvars.ContextVar("job_id", default="-")
APP_TAG: contextvars.ContextVar[str] = contextvars.ContextVar("app_tag", default="-")

# Good enough to find addresses inside error texts; schemas.py validates addresses properly.
_ADDRESS_IN_TEXT = re.compile(r"[^\s'\"<>(),;:@]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [job=%(job_id)s app=%(app_tag)s] %(message)s"


_base_record_factory = logging.getLogRecordFactory()


def _record_with_job_context(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_record_factory(*args, **kwargs)
    record.job_id = JOB_ID.get()
    record.app_tag = APP_TAG.get()
    return record


# A record factory, not a handler filter, so every handler (pytest's caplog, ddtrace's) sees the fields.
if getattr(logging.getLogRecordFactory(), "__name__", "") != _record_with_job_context.__name__:
    logging.setLogRecordFactory(_record_with_job_context)


def configure_logging(level: str = "INFO") -> None:
    """Send log lines to stderr with the job context; call once per process, from an entry point."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))

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
