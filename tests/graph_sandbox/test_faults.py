"""Injected faults and the limit of 4 concurrent requests per app and mailbox."""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

import pytest
import requests

from graph_sandbox.server import SandboxServer
from tests.graph_sandbox.helpers import (
    MAILBOX,
    add_fault,
    fetch_token,
    graph_error,
    https_session,
    listed_messages,
    message,
    send_mail,
)


def send(
    http: requests.Session, sandbox: SandboxServer, token: str, mailbox: str = MAILBOX
) -> requests.Response:
    return send_mail(http, sandbox.url, token, {"message": message()}, mailbox=mailbox)


def send_in_parallel(sandbox: SandboxServer, token: str, mailboxes: list[str]) -> list[int]:
    """Send one message per mailbox, all at once and each from its own connection, and return the statuses."""
    barrier = threading.Barrier(len(mailboxes))
    statuses: list[int] = [0] * len(mailboxes)

    def worker(index: int) -> None:
        with https_session(sandbox.ca_path) as session:
            session.get(f"{sandbox.url}/_sandbox/health")  # connect and handshake before the barrier
            barrier.wait()
            statuses[index] = send(session, sandbox, token, mailboxes[index]).status_code

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(len(mailboxes))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return statuses


def test_throttling_fault_uses_graph_format(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=429, retry_after=2)

    response = send(http, sandbox, token)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "2"
    error = graph_error(response)
    assert error["code"] == "ApplicationThrottled"
    assert error["message"] == "Application is over its MailboxConcurrency limit."
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert listed_messages(http, sandbox.url) == []


def test_fractional_retry_after_rounded_up(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=503, retry_after=0.2)

    response = send(http, sandbox, token)

    assert response.headers["Retry-After"] == "1"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "ErrorInvalidRequest"),
        (401, "InvalidAuthenticationToken"),
        (403, "ErrorAccessDenied"),
        (404, "ErrorInvalidUser"),
        (500, "UnknownError"),
        (503, "ServiceUnavailable"),
        (504, "GatewayTimeout"),
    ],
)
def test_fault_default_codes(
    sandbox: SandboxServer, http: requests.Session, token: str, status: int, code: str
) -> None:
    add_fault(http, sandbox.url, status=status)

    response = send(http, sandbox, token)

    assert response.status_code == status
    assert graph_error(response)["code"] == code


def test_fault_code_and_message_override(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    text = "The user account which was used to submit this request does not have the right to send mail."
    add_fault(http, sandbox.url, status=403, code="ErrorSendAsDenied", message=text)

    response = send(http, sandbox, token)

    assert graph_error(response)["code"] == "ErrorSendAsDenied"
    assert graph_error(response)["message"] == text


def test_fault_count_and_mailbox(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    add_fault(http, sandbox.url, status=503, count=2, mailbox="x@example.com")

    other = send(http, sandbox, token, "y@example.com").status_code
    statuses = [send(http, sandbox, token, "X@example.com").status_code for _ in range(3)]

    assert other == 202
    assert statuses == [503, 503, 202]
    assert http.get(f"{sandbox.url}/_sandbox/faults").json() == {"faults": []}


def test_fault_rate_fires_on_a_share_of_requests(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=429, rate=0.5)

    statuses = [send(http, sandbox, token).status_code for _ in range(100)]

    # For a fair coin, 100 tries give fewer than 25 or more than 75 throttled with probability below 1e-6.
    assert 25 <= statuses.count(429) <= 75
    assert statuses.count(202) == 100 - statuses.count(429)


def test_latency_fault_delays_response(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    add_fault(http, sandbox.url, latency_ms=300)

    started = time.monotonic()
    response = send(http, sandbox, token)
    elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed >= 0.3


def test_accepted_with_retry_after_still_stores_message(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=202, retry_after=5, count=1)

    response = send(http, sandbox, token)

    assert response.status_code == 202
    assert response.headers["Retry-After"] == "5"
    assert len(listed_messages(http, sandbox.url)) == 1


def test_processed_fault_stores_message_and_answers_error(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=504, processed=True, count=1)

    response = send(http, sandbox, token)

    assert response.status_code == 504
    assert graph_error(response)["code"] == "GatewayTimeout"
    assert len(listed_messages(http, sandbox.url)) == 1


def test_unprocessed_fault_stores_nothing(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    add_fault(http, sandbox.url, status=504, count=1)

    send(http, sandbox, token)

    assert listed_messages(http, sandbox.url) == []


def test_processed_fault_does_not_hide_request_errors(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, status=504, processed=True, count=1)

    response = send_mail(http, sandbox.url, token, {"message": message(toRecipients=[])})

    assert response.status_code == 400


def test_active_requests_are_counted_per_mailbox(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, latency_ms=1000, count=1)
    sender = threading.Thread(target=send, args=(https_session(sandbox.ca_path), sandbox, token))
    sender.start()
    time.sleep(0.5)

    active = http.get(f"{sandbox.url}/_sandbox/stats").json()["active_requests"]
    sender.join(timeout=10)

    assert active == {MAILBOX.lower(): 1}


def test_fault_limited_to_operations(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    add_fault(http, sandbox.url, status=503, operations=["send", "createUploadSession"])

    response = send(http, sandbox, token)

    assert response.status_code == 202


def test_faults_listed_removed_and_cleared(sandbox: SandboxServer, http: requests.Session) -> None:
    first = add_fault(http, sandbox.url, status=503, count=5, mailbox="x@example.com")
    second = add_fault(http, sandbox.url, latency_ms=100)

    listed = http.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]
    removed = http.delete(f"{sandbox.url}/_sandbox/faults/{first['id']}")
    after_remove = http.get(f"{sandbox.url}/_sandbox/faults").json()["faults"]
    cleared = http.delete(f"{sandbox.url}/_sandbox/faults")

    assert [fault["id"] for fault in listed] == [first["id"], second["id"]]
    assert listed[0]["count"] == 5
    assert removed.status_code == 204
    assert [fault["id"] for fault in after_remove] == [second["id"]]
    assert cleared.status_code == 204
    assert http.get(f"{sandbox.url}/_sandbox/faults").json() == {"faults": []}


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"status": 99},
        {"status": 503, "rate": 0},
        {"status": 503, "rate": 1.5},
        {"status": 503, "count": 0},
        {"status": 503, "retryAfter": 1},
        {"status": 503, "operations": ["sendmail"]},
        {"status": "503"},
        {"status": 504, "processed": "yes"},
    ],
)
def test_invalid_fault_rejected(sandbox: SandboxServer, http: requests.Session, spec: dict[str, Any]) -> None:
    response = http.post(f"{sandbox.url}/_sandbox/faults", json=spec)

    assert response.status_code == 400
    assert graph_error(response)["code"] == "InvalidFault"


def test_concurrency_limit_throttles_fifth_request(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    add_fault(http, sandbox.url, latency_ms=500)

    statuses = send_in_parallel(sandbox, token, [MAILBOX] * 8)

    assert sorted(statuses) == [202] * 4 + [429] * 4
    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["peak_concurrent_requests"] == {MAILBOX: 4}


def test_concurrency_limit_is_per_mailbox(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    add_fault(http, sandbox.url, latency_ms=500)

    statuses = send_in_parallel(sandbox, token, ["a@example.com"] * 4 + ["b@example.com"] * 4)

    assert statuses == [202] * 8


def test_concurrency_limit_can_be_switched_off(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(enforce_concurrency=False)
    token = fetch_token(http, sandbox.url)
    add_fault(http, sandbox.url, latency_ms=500)

    statuses = send_in_parallel(sandbox, token, [MAILBOX] * 6)

    assert statuses == [202] * 6
