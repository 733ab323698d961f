"""POST /v1.0/users/{mailbox}/sendMail: authentication, validation, limits and the message listing."""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
import time
from typing import Any, Callable

import pytest
import requests

from graph_sandbox.server import SandboxServer
from tests.graph_sandbox.helpers import (
    MAILBOX,
    bearer,
    fetch_token,
    file_attachment,
    graph_error,
    listed_messages,
    message,
    recipients,
    send_mail,
)

FOUR_MB = 4 * 1024 * 1024


def test_send_mail_accepted_and_listed(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    payload = {"message": message()}

    response = send_mail(http, sandbox.url, token, payload)

    assert response.status_code == 202
    assert response.content == b""
    [listed] = listed_messages(http, sandbox.url)
    assert listed["mailbox"] == MAILBOX
    assert listed["message"] == payload["message"]
    assert listed["saveToSentItems"] is True
    assert listed["receivedDateTime"].endswith("Z")
    assert listed["id"]


def test_send_mail_save_to_sent_items_false_listed(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    send_mail(http, sandbox.url, token, {"message": message(), "saveToSentItems": False})

    [listed] = listed_messages(http, sandbox.url)
    assert listed["saveToSentItems"] is False


def test_listing_adds_attachment_size_and_sha256(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    data = b"%PDF-1.7 report" * 100
    attachment = file_attachment("report.pdf", data, contentType="application/pdf")
    inline = file_attachment("logo.png", b"\x89PNG logo", isInline=True, contentId="logo")

    send_mail(http, sandbox.url, token, {"message": message(attachments=[attachment, inline])})

    [listed] = listed_messages(http, sandbox.url)
    first, second = listed["message"]["attachments"]
    assert first["size"] == len(data)
    assert first["sha256"] == hashlib.sha256(data).hexdigest()
    assert first["contentBytes"] == attachment["contentBytes"]
    assert second["isInline"] is True
    assert second["contentId"] == "logo"


def test_attachment_bytes_served(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    data = bytes(range(256)) * 10
    send_mail(http, sandbox.url, token, {"message": message(attachments=[file_attachment("a.bin", data)])})
    [listed] = listed_messages(http, sandbox.url)

    response = http.get(f"{sandbox.url}/_sandbox/messages/{listed['id']}/attachments/0/$value")

    assert response.status_code == 200
    assert response.content == data


def test_listing_filters_by_mailbox(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    send_mail(http, sandbox.url, token, {"message": message(subject="one")}, mailbox="a@example.com")
    send_mail(http, sandbox.url, token, {"message": message(subject="two")}, mailbox="b@example.com")
    send_mail(http, sandbox.url, token, {"message": message(subject="three")}, mailbox="A@example.com")

    listed = listed_messages(http, sandbox.url, mailbox="a@example.com")

    assert [entry["message"]["subject"] for entry in listed] == ["one", "three"]


def test_delete_messages_clears_listing(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    send_mail(http, sandbox.url, token, {"message": message()})

    response = http.delete(f"{sandbox.url}/_sandbox/messages")

    assert response.status_code == 204
    assert listed_messages(http, sandbox.url) == []


def test_send_mail_without_token_is_401(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(f"{sandbox.url}/v1.0/users/{MAILBOX}/sendMail", json={"message": message()})

    assert response.status_code == 401
    error = graph_error(response)
    assert error["code"] == "InvalidAuthenticationToken"
    assert error["message"] == "Access token is empty."
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert listed_messages(http, sandbox.url) == []


def test_send_mail_with_bogus_token_is_401(sandbox: SandboxServer, http: requests.Session) -> None:
    response = send_mail(http, sandbox.url, "not-a-token-the-sandbox-issued", {"message": message()})

    assert response.status_code == 401
    assert graph_error(response)["code"] == "InvalidAuthenticationToken"


def test_send_mail_with_expired_token_is_401(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(token_lifetime_seconds=1)
    token = fetch_token(http, sandbox.url)
    time.sleep(1.1)

    response = send_mail(http, sandbox.url, token, {"message": message()})

    assert response.status_code == 401
    assert graph_error(response)["message"] == "Lifetime validation failed, the token is expired."


def test_revoked_token_is_401(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    assert http.delete(f"{sandbox.url}/_sandbox/tokens").status_code == 204

    response = send_mail(http, sandbox.url, token, {"message": message()})

    assert response.status_code == 401


def test_client_request_id_echoed(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = send_mail(
        http,
        sandbox.url,
        token,
        {"message": message()},
        headers={"client-request-id": "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"},
    )

    assert response.headers["client-request-id"] == "0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"
    assert response.headers["request-id"] != response.headers["client-request-id"]


def test_header_without_x_prefix_is_400(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    headers = [{"name": "X-Job-Id", "value": "1"}, {"name": "References", "value": "<a@b>"}]

    response = send_mail(http, sandbox.url, token, {"message": message(internetMessageHeaders=headers)})

    assert response.status_code == 400
    error = graph_error(response)
    assert error["code"] == "InvalidInternetMessageHeader"
    assert "'References'" in error["message"]


def test_lowercase_x_header_accepted(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    headers = [{"name": "x-correlation-id", "value": "abc"}]

    response = send_mail(http, sandbox.url, token, {"message": message(internetMessageHeaders=headers)})

    assert response.status_code == 202


def padded_payload(total_bytes: int) -> bytes:
    """Return a valid sendMail JSON body of exactly `total_bytes` bytes."""
    payload = {"message": message(body={"contentType": "Text", "content": ""})}
    empty = len(json.dumps(payload).encode())
    payload["message"]["body"]["content"] = "a" * (total_bytes - empty)
    data = json.dumps(payload).encode()
    assert len(data) == total_bytes
    return data


def test_body_of_exactly_4_mb_accepted(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = http.post(
        f"{sandbox.url}/v1.0/users/{MAILBOX}/sendMail",
        data=padded_payload(FOUR_MB),
        headers={**bearer(token), "Content-Type": "application/json"},
    )

    assert response.status_code == 202


def test_body_over_4_mb_is_413(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = http.post(
        f"{sandbox.url}/v1.0/users/{MAILBOX}/sendMail",
        data=padded_payload(FOUR_MB + 1),
        headers={**bearer(token), "Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert graph_error(response)["code"] == "RequestEntityTooLarge"
    assert listed_messages(http, sandbox.url) == []


def test_message_over_size_limit_is_413(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(max_message_bytes=1000)
    token = fetch_token(http, sandbox.url)

    response = send_mail(
        http, sandbox.url, token, {"message": message(attachments=[file_attachment("a", b"x" * 1001)])}
    )

    assert response.status_code == 413
    assert graph_error(response)["code"] == "ErrorMessageSizeExceeded"


def test_message_without_recipients_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(toRecipients=[])})

    assert response.status_code == 400
    error = graph_error(response)
    assert error["code"] == "ErrorInvalidRecipients"
    assert error["message"] == (
        "At least one recipient isn't valid., A message can't be sent because it contains no recipients."
    )


def test_500_recipients_accepted(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    to = recipients(*(f"user{i}@example.org" for i in range(300)))
    bcc = recipients(*(f"hidden{i}@example.org" for i in range(200)))

    response = send_mail(http, sandbox.url, token, {"message": message(toRecipients=to, bccRecipients=bcc)})

    assert response.status_code == 202


def test_501_recipients_is_400(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    to = recipients(*(f"user{i}@example.org" for i in range(300)))
    cc = recipients(*(f"copy{i}@example.org" for i in range(201)))

    response = send_mail(http, sandbox.url, token, {"message": message(toRecipients=to, ccRecipients=cc)})

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorInvalidRecipients"


@pytest.mark.parametrize("address", ["not-an-address", "", "two@@example.org", "space @example.org"])
def test_unresolvable_recipient_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str, address: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(toRecipients=recipients(address))})

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorInvalidRecipients"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"subjekt": "typo"}, "The property 'subjekt' does not exist on type 'microsoft.graph.message'"),
        ({"body": {"contentType": "Markdown", "content": "x"}}, "microsoft.graph.bodyType"),
        ({"importance": "urgent"}, "microsoft.graph.importance"),
        (
            {"toRecipients": {"emailAddress": {"address": "a@example.org"}}},
            "A 'StartArray' node was expected",
        ),
        ({"ccRecipients": None}, "does not allow null values"),
        (
            {"toRecipients": [{"emailAddress": {"address": "a@example.org", "mail": "x"}}]},
            "microsoft.graph.emailAddress",
        ),
        ({"attachments": [file_attachment("a.txt", b"x", contentBytes="not base64!")]}, "Edm.Binary"),
        ({"attachments": [{"name": "a.txt", "contentBytes": "eA=="}]}, "@odata.type"),
        (
            {
                "attachments": [
                    file_attachment("a.txt", b"x", **{"@odata.type": "#microsoft.graph.fileAttachement"})
                ]
            },
            "could not be resolved",
        ),
        ({"attachments": [file_attachment("a.txt", b"x", isInline="yes")]}, "Edm.Boolean"),
    ],
)
def test_malformed_message_is_request_body_read(
    sandbox: SandboxServer, http: requests.Session, token: str, overrides: dict[str, Any], fragment: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(**overrides)})

    assert response.status_code == 400
    error = graph_error(response)
    assert error["code"] == "RequestBodyRead"
    assert fragment in error["message"]


def test_save_to_sent_items_must_be_boolean(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(), "saveToSentItems": "false"})

    assert response.status_code == 400
    assert graph_error(response)["code"] == "RequestBodyRead"


def test_unknown_parameter_is_request_body_read(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(), "saveToSent": True})

    assert response.status_code == 400
    assert "'saveToSent'" in graph_error(response)["message"]


def test_pascal_case_parameters_accepted(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = send_mail(http, sandbox.url, token, {"Message": message(), "SaveToSentItems": False})

    assert response.status_code == 202


def test_missing_message_is_400(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = send_mail(http, sandbox.url, token, {"saveToSentItems": True})

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorInvalidParameter"


@pytest.mark.parametrize(
    ("data", "content_type"),
    [
        (b'{"message": ', "application/json"),
        (json.dumps({"message": message()}).encode(), "application/x-www-form-urlencoded"),
    ],
)
def test_unreadable_json_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str, data: bytes, content_type: str
) -> None:
    response = http.post(
        f"{sandbox.url}/v1.0/users/{MAILBOX}/sendMail",
        data=data,
        headers={**bearer(token), "Content-Type": content_type},
    )

    assert response.status_code == 400
    assert graph_error(response)["code"] == "BadRequest"


def test_invalid_mailbox_is_404(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message()}, mailbox="no-at-sign")

    assert response.status_code == 404
    assert graph_error(response)["code"] == "ErrorInvalidUser"


def test_me_path_rejected_for_app_token(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = http.post(
        f"{sandbox.url}/v1.0/me/sendMail", json={"message": message()}, headers=bearer(token)
    )

    assert response.status_code == 400
    assert graph_error(response)["message"] == "/me request is only valid with delegated authentication flow."


def test_unknown_segment_is_400(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = http.post(f"{sandbox.url}/v1.0/users/{MAILBOX}/sendEmail", json={}, headers=bearer(token))

    assert response.status_code == 400
    assert graph_error(response)["message"] == "Resource not found for the segment 'sendEmail'."


def test_send_mail_counted_by_status(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    send_mail(http, sandbox.url, token, {"message": message()})
    send_mail(http, sandbox.url, token, {"message": message()})
    send_mail(http, sandbox.url, "bogus", {"message": message()})

    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()

    assert stats["send_mail_requests"] == {"total": 3, "by_status": {"202": 2, "401": 1}}


def test_connection_kept_alive_across_requests(sandbox: SandboxServer, token: str) -> None:
    context = ssl.create_default_context(cafile=str(sandbox.ca_path))
    connection = http.client.HTTPSConnection("127.0.0.1", sandbox.port, context=context, timeout=10)
    headers = {**bearer(token), "Content-Type": "application/json"}
    statuses = []
    try:
        for body in (padded_payload(FOUR_MB + 10), json.dumps({"message": message()}).encode()):
            connection.request("POST", f"/v1.0/users/{MAILBOX}/sendMail", body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            statuses.append(response.status)
        local_port = connection.sock.getsockname()[1]
        connection.request("GET", "/_sandbox/health")
        connection.getresponse().read()
        same_socket = connection.sock.getsockname()[1] == local_port
    finally:
        connection.close()

    assert statuses == [413, 202]
    assert same_socket


def test_json_responses_not_delayed(sandbox: SandboxServer, http: requests.Session) -> None:
    http.get(f"{sandbox.url}/_sandbox/stats")
    started = time.monotonic()
    for _ in range(20):
        http.get(f"{sandbox.url}/_sandbox/stats")
    elapsed = time.monotonic() - started

    # With Nagle's algorithm on, each response with a body waits about 40 ms for a delayed ACK.
    assert elapsed < 0.5
