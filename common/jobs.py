"""A mail job as it travels through the queue, its states and the outcomes of handling it."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

from common.errors import InvalidJobId, PoisonJob

# Version of the queued JSON document; a worker terminates versions it does not know.
JOB_FORMAT_VERSION = 1
# Upper bound on an honoured Retry-After, against a broken header that requests days.
MAX_RETRY_AFTER_SECONDS = 3600.0


class JobStatus(str, Enum):
    QUEUED = "queued"
    SENDING = "sending"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"


class Action(str, Enum):
    """The queue consumer's action on a message after the handler ran."""

    ACK = "ack"
    RETRY = "retry"  # nak with a delay
    TERMINATE = "terminate"
    DEAD_LETTER = "dead_letter"  # copy the message to the dead-letter stream, then terminate


@dataclass(frozen=True)
class Outcome:
    action: Action
    status: JobStatus
    reason: str = ""
    delay_seconds: float = 0.0
    # The dead-letter subject's last token; empty when the message is not a readable job.
    job_id: str = ""
    # Graph's status code of the attempt, for metrics; None when Graph did not respond or was not called.
    graph_status: int | None = None

    @classmethod
    def sent(cls) -> Outcome:
        return cls(Action.ACK, JobStatus.SENT)

    @classmethod
    def retry(cls, delay_seconds: float, reason: str) -> Outcome:
        return cls(Action.RETRY, JobStatus.RETRYING, reason, delay_seconds)

    @classmethod
    def failed(cls, reason: str) -> Outcome:
        return cls(Action.TERMINATE, JobStatus.FAILED, reason)

    @classmethod
    def dead(cls, reason: str, job_id: str = "") -> Outcome:
        return cls(Action.DEAD_LETTER, JobStatus.DEAD, reason, job_id=job_id)


@dataclass(frozen=True)
class Job:
    job_id: str
    app_tag: str
    mail: dict[str, Any]
    accepted_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())

    @classmethod
    def new(cls, mail: dict[str, Any]) -> Job:
        return cls(job_id=str(uuid.uuid4()), app_tag=mail["app_tag"], mail=mail)

    def to_bytes(self) -> bytes:
        document = {
            "version": JOB_FORMAT_VERSION,
            "job_id": self.job_id,
            "app_tag": self.app_tag,
            "accepted_at": self.accepted_at,
            "mail": self.mail,
        }
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Job:
        """Parse a queued job; raise PoisonJob for anything a retry could never process."""
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PoisonJob(f"Queued message is not JSON: {exc}.") from exc

        if not isinstance(document, dict):
            raise PoisonJob(f"Queued message is JSON of type {type(document).__name__}; expected an object.")
        version = document.get("version")
        if version != JOB_FORMAT_VERSION:
            raise PoisonJob(f"Queued job has format version {version!r}; expected {JOB_FORMAT_VERSION}.")

        try:
            job = cls(job_id=str(document["job_id"]), app_tag=str(document["app_tag"]),
                      mail=document["mail"], accepted_at=str(document.get("accepted_at", "")))
        except KeyError as exc:
            raise PoisonJob(f"Queued job lacks the field {exc.args[0]!r}.") from exc
        if not isinstance(job.mail, dict) or not job.mail.get("recipients"):
            raise PoisonJob("Queued job has no mail with recipients; expected the validated send request.")
        return job


def backoff_range(attempt: int, base_seconds: float, max_seconds: float) -> tuple[float, float]:
    """Return the lowest and highest delay after the given failed attempt, without Retry-After."""
    ceiling = min(base_seconds * 2 ** max(attempt - 1, 0), max_seconds)
    return ceiling / 2, ceiling


def backoff_delay(attempt: int, base_seconds: float, max_seconds: float,
                  retry_after: float | None = None) -> float:
    """Return the seconds to wait before the next attempt.

    Graph's Retry-After wins when given (Graph throttling guidance), up to MAX_RETRY_AFTER_SECONDS.
    Otherwise the delay doubles per attempt up to max_seconds, and a random half of it spreads out
    retries that failed together.
    """
    if retry_after is not None:
        return min(max(retry_after, 0.0), MAX_RETRY_AFTER_SECONDS)
    low, high = backoff_range(attempt, base_seconds, max_seconds)
    return random.uniform(low, high)


def parse_job_id(text: str) -> str:
    """Return the job id in canonical UUID form; raise InvalidJobId when text is not a UUID."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        shown = text[:60]
        raise InvalidJobId(f"Job id {shown!r} is not a UUID.", job_id=shown) from None
