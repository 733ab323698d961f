"""The steps every Graph mail request passes: bearer token, mailbox, concurrency limit, faults, body.

``graph_operation`` wraps a view so that an invalid token gets 401 before anything else. Next, a
request beyond the concurrency limit gets 429, and an injected fault may replace the response.
Only then does the view run.
"""

from __future__ import annotations

import functools
import json
import re
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from flask import Response, g, request

from graph_sandbox.context import sandbox_context
from graph_sandbox.errors import GraphError
from graph_sandbox.faults import Fault
from graph_sandbox.state import IssuedToken

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_READ_SIZE = 64 * 1024

# Graph's error message for a payload that is not JSON or not labelled as JSON.
JSON_PAYLOAD_MESSAGE = (
    "Unable to read JSON request payload. Please ensure Content-Type header is set "
    "and payload is of valid JSON format."
)
# Graph's "resource" in WWW-Authenticate is its own app id, the same in every tenant.
_GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


def graph_operation(operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wrap a ``/users/<mailbox>/...`` view, which receives ``mailbox`` and ``caller``."""

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(mailbox: str, **kwargs: Any) -> Any:
            g.operation = operation
            caller = authenticate()
            check_mailbox(mailbox)

            with request_slot(caller.client_id, mailbox, operation):
                return view(mailbox=mailbox, caller=caller, **kwargs)

        return wrapper

    return decorate


def authenticate() -> IssuedToken:
    """Return the token of the request's ``Authorization: Bearer`` header, or raise 401."""
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if not scheme or not token:
        raise _unauthorized("Access token is empty.")
    if scheme.lower() != "bearer":
        raise _unauthorized("CompactToken parsing failed with error code: 80049217")

    issued = sandbox_context().state.lookup_token(token)
    if issued is None:
        raise _unauthorized("CompactToken parsing failed with error code: 80049217")
    if issued.is_expired():
        raise _unauthorized("Lifetime validation failed, the token is expired.")
    return issued


def check_mailbox(mailbox: str) -> None:
    """Raise 404 ErrorInvalidUser unless the mailbox is a user principal name or an object id.

    The sandbox has no directory, so every well-formed address is a mailbox. A test that needs an
    unknown mailbox injects a 404 fault for it.
    """
    local, at, domain = mailbox.partition("@")
    if (at and local and domain) or _GUID.match(mailbox):
        return
    raise GraphError(404, "ErrorInvalidUser", f"The requested user '{mailbox}' is invalid.")


@contextmanager
def request_slot(client_id: str, mailbox: str, operation: str) -> Iterator[None]:
    """Count the request against the app's concurrency limit for the mailbox and apply faults."""
    context = sandbox_context()
    config = context.config
    limit = config.max_concurrent_requests if config.enforce_concurrency else None
    if not context.state.enter_request(client_id, mailbox, limit):
        # NOTE: Graph does not document its Retry-After for MailboxConcurrency, so 1 s is the sandbox's choice.
        raise GraphError(
            429,
            "ApplicationThrottled",
            "Application is over its MailboxConcurrency limit.",
            {"Retry-After": "1"},
        )
    try:
        processed_fault = apply_faults(operation, mailbox)
        yield
        if processed_fault is not None:
            raise fault_error(processed_fault, mailbox)
    finally:
        context.state.leave_request(client_id, mailbox)


def apply_faults(operation: str, mailbox: str) -> Fault | None:
    """Apply the faults that fire: sleep, raise an error, or return an error due after the request."""
    outcome = sandbox_context().state.faults.roll(operation, mailbox)
    if outcome.latency_seconds:
        time.sleep(outcome.latency_seconds)

    fault = outcome.error
    if fault is not None and fault.processed:
        return fault
    if fault is not None:
        raise fault_error(fault, mailbox)
    g.extra_headers.update(outcome.headers)
    return None


def fault_error(fault: Fault, mailbox: str) -> GraphError:
    code, message = fault.error_code_and_message(mailbox)
    return GraphError(fault.status or 500, code, message, fault.retry_after_header())


def read_body(limit: int) -> bytes:
    """Read the request body, or raise 413 RequestEntityTooLarge when it has more than `limit` bytes."""
    length = request.content_length
    if length is not None and length > limit:
        raise request_too_large()

    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = request.stream.read(min(_READ_SIZE, limit + 1 - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise request_too_large()
    return b"".join(chunks)


def read_json(limit: int) -> Any:
    """Read and parse a JSON request body as Graph does, or raise its 400 or 413 error."""
    length = request.content_length
    if length is not None and length > limit:
        raise request_too_large()
    if request.mimetype != "application/json":
        raise GraphError(400, "BadRequest", JSON_PAYLOAD_MESSAGE)

    data = read_body(limit)
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError):
        raise GraphError(400, "BadRequest", JSON_PAYLOAD_MESSAGE) from None


def empty_response(status: int) -> Response:
    """Return a response without body and, like Graph's 202 and 204, without Content-Type."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def request_too_large() -> GraphError:
    return GraphError(413, "RequestEntityTooLarge", "The maximum request length supported is 4MB.")


def _unauthorized(message: str) -> GraphError:
    authenticate_header = (
        f'Bearer realm="", authorization_uri="{request.host_url}common/oauth2/authorize", '
        f'client_id="{_GRAPH_APP_ID}"'
    )
    return GraphError(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": authenticate_header})
