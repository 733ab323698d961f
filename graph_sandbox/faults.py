"""Injected faults: Graph error responses and latency for the mail endpoints, set up by tests.

A fault is posted as JSON to ``/_sandbox/faults``, for example
``{"status": 429, "retry_after": 1, "rate": 0.2}``, ``{"status": 503, "count": 5, "mailbox": "x@example.com"}``
or ``{"latency_ms": 300}``. Each matching request rolls each fault in the order they were added:
every fault that fires adds its latency, and the first one that fires with an error status
decides the response. A fault with ``count`` is removed after firing that many times. With
``"processed": true`` the request takes effect first (a mail is sent) and the error replaces its response,
as when a gateway times out after Exchange accepted the message.
"""

from __future__ import annotations

import random
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

# Operations a fault can apply to. A fault without "operations" applies to all of them.
OPERATIONS = frozenset(
    {
        "sendMail",
        "createMessage",
        "getMessage",
        "deleteMessage",
        "addAttachment",
        "createUploadSession",
        "uploadChunk",
        "send",
        "listMessages",
    }
)

# Graph's error code and message for each status a test is likely to inject. The 403 text is
# Exchange's for an application access policy.
# NOTE: the messages for 500, 502, 503 and 504 are the sandbox's own, because Graph's vary.
DEFAULT_ERRORS: dict[int, tuple[str, str]] = {
    400: ("ErrorInvalidRequest", "Cannot process the request because it is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."),
    403: (
        "ErrorAccessDenied",
        "Access to OData is disabled: Blocked by tenant configured AppOnly AccessPolicy settings.",
    ),
    404: ("ErrorInvalidUser", "The requested user '{mailbox}' is invalid."),
    413: ("ErrorMessageSizeExceeded", "The message exceeds the maximum supported size."),
    429: ("ApplicationThrottled", "Application is over its MailboxConcurrency limit."),
    500: ("UnknownError", "An internal server error occurred. The operation failed."),
    502: ("BadGateway", "The gateway received an invalid response from the mailbox server."),
    503: ("ServiceUnavailable", "The service is temporarily unavailable. Retry the request later."),
    504: ("GatewayTimeout", "The gateway did not receive a response from the mailbox server in time."),
}

_FIELDS = {"status", "code", "message", "retry_after", "rate", "count", "mailbox", "operations", "latency_ms",
           "processed"}


@dataclass
class Fault:
    fault_id: str
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: float | None = None
    rate: float = 1.0
    remaining: int | None = None  # None means no limit
    mailbox: str | None = None
    operations: frozenset[str] = OPERATIONS
    latency_ms: int = 0
    # The request takes effect before the error status replaces its response.
    processed: bool = False
    fired: int = 0

    @property
    def is_error(self) -> bool:
        return self.status is not None and self.status >= 400

    def matches(self, operation: str, mailbox: str) -> bool:
        if operation not in self.operations:
            return False
        return self.mailbox is None or self.mailbox.lower() == mailbox.lower()

    def error_code_and_message(self, mailbox: str) -> tuple[str, str]:
        default_code, default_message = DEFAULT_ERRORS.get(
            self.status or 500, ("UnknownError", f"Injected fault with status {self.status}.")
        )
        message = self.message or default_message.format(mailbox=mailbox)
        return self.code or default_code, message

    def retry_after_header(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        # Retry-After is in whole seconds (RFC 9110), so a fraction is rounded up and a client never retries early.
        seconds = (
            int(self.retry_after) if self.retry_after == int(self.retry_after) else int(self.retry_after) + 1
        )
        return {"Retry-After": str(seconds)}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.fault_id,
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "retry_after": self.retry_after,
            "rate": self.rate,
            "count": self.remaining,
            "mailbox": self.mailbox,
            "operations": sorted(self.operations),
            "latency_ms": self.latency_ms,
            "processed": self.processed,
            "fired": self.fired,
        }


@dataclass
class FaultOutcome:
    """Effects of the faults that fired on one request."""

    latency_seconds: float = 0.0
    error: Fault | None = None
    headers: dict[str, str] = field(default_factory=dict)


def parse_fault(spec: Any) -> Fault:
    """Build a fault from its JSON, raising ValueError that names an invalid field."""
    if not isinstance(spec, dict):
        raise ValueError('A fault must be a JSON object, for example {"status": 503, "count": 2}.')
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        raise ValueError(f"Unknown fault field(s) {unknown}. Valid fields are {sorted(_FIELDS)}.")
    if spec.get("status") is None and not spec.get("latency_ms"):
        raise ValueError("A fault needs a status, a latency_ms, or both.")

    return Fault(
        fault_id=secrets.token_hex(8),
        status=_optional_int(spec, "status", minimum=200, maximum=599),
        code=_optional_str(spec, "code"),
        message=_optional_str(spec, "message"),
        retry_after=_optional_number(spec, "retry_after", minimum=0),
        rate=_rate(spec),
        remaining=_optional_int(spec, "count", minimum=1),
        mailbox=_optional_str(spec, "mailbox"),
        operations=_operations(spec),
        latency_ms=_optional_int(spec, "latency_ms", minimum=0, maximum=600_000) or 0,
        processed=_optional_bool(spec, "processed"),
    )


class FaultInjector:
    """The active faults, shared by the request threads."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._rng = rng or random.Random()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def as_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.to_json() for fault in self._faults]

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.fault_id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def roll(self, operation: str, mailbox: str) -> FaultOutcome:
        """Decide which faults fire on this request, and count them as fired."""
        outcome = FaultOutcome()
        with self._lock:
            for fault in list(self._faults):
                if outcome.error is not None and fault.is_error:
                    continue
                if not fault.matches(operation, mailbox) or self._rng.random() >= fault.rate:
                    continue
                self._fire(fault, outcome)
        return outcome

    def _fire(self, fault: Fault, outcome: FaultOutcome) -> None:
        fault.fired += 1
        if fault.remaining is not None:
            fault.remaining -= 1
            if fault.remaining == 0:
                self._faults.remove(fault)

        outcome.latency_seconds += fault.latency_ms / 1000
        if fault.is_error:
            outcome.error = fault
        else:
            # A non-error status (e.g. 202 with Retry-After) lets the request succeed with the header added.
            outcome.headers.update(fault.retry_after_header())


def _optional_int(spec: dict[str, Any], name: str, minimum: int, maximum: int | None = None) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"Fault field {name!r} must be an integer, got {value!r}.")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise ValueError(f"Fault field {name!r} must be {bound}, got {value}.")
    return value


def _optional_number(spec: dict[str, Any], name: str, minimum: float) -> float | None:
    value = spec.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"Fault field {name!r} must be a number, got {value!r}.")
    if value < minimum:
        raise ValueError(f"Fault field {name!r} must be at least {minimum}, got {value}.")
    return float(value)


def _optional_bool(spec: dict[str, Any], name: str) -> bool:
    value = spec.get(name, False)
    if not isinstance(value, bool):
        raise ValueError(f"Fault field {name!r} must be true or false, got {value!r}.")
    return value


def _optional_str(spec: dict[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"Fault field {name!r} must be a non-empty string, got {value!r}.")
    return value


def _rate(spec: dict[str, Any]) -> float:
    rate = _optional_number(spec, "rate", minimum=0)
    if rate is None:
        return 1.0
    if rate == 0 or rate > 1:
        raise ValueError(f"Fault field 'rate' must be greater than 0 and at most 1, got {rate}.")
    return rate


def _operations(spec: dict[str, Any]) -> frozenset[str]:
    value = spec.get("operations")
    if value is None:
        return OPERATIONS
    if not isinstance(value, list) or not value or not all(isinstance(op, str) for op in value):
        raise ValueError(
            f"Fault field 'operations' must be a non-empty list of names from {sorted(OPERATIONS)}."
        )
    unknown = sorted(set(value) - OPERATIONS)
    if unknown:
        raise ValueError(f"Unknown operation(s) {unknown}. Valid operations are {sorted(OPERATIONS)}.")
    return frozenset(value)
