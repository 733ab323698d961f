"""Drafts, small attachments, upload sessions for large ones, sending a draft, and Sent Items."""

from __future__ import annotations

import hashlib
import os
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

MIB = 1024 * 1024
LARGE_FILE = os.urandom(3 * MIB + 123_457)


def users_url(sandbox: SandboxServer, mailbox: str = MAILBOX) -> str:
    return f"{sandbox.url}/v1.0/users/{mailbox}"


def create_draft(
    http: requests.Session,
    sandbox: SandboxServer,
    token: str,
    headers: dict[str, str] | None = None,
    **overrides: Any,
) -> dict[str, Any]:
    response = http.post(
        f"{users_url(sandbox)}/messages",
        json=message(**overrides),
        headers={**bearer(token), **(headers or {})},
    )
    assert response.status_code == 201, response.text
    return response.json()


def create_upload_session(
    http: requests.Session,
    sandbox: SandboxServer,
    token: str,
    draft_id: str,
    size: int = len(LARGE_FILE),
    **item: Any,
) -> requests.Response:
    attachment_item = {
        "attachmentType": "file",
        "name": "scan.pdf",
        "size": size,
        "contentType": "application/pdf",
    }
    attachment_item.update(item)
    return http.post(
        f"{users_url(sandbox)}/messages/{draft_id}/attachments/createUploadSession",
        json={"AttachmentItem": attachment_item},
        headers=bearer(token),
    )


def upload_url(http: requests.Session, sandbox: SandboxServer, token: str, draft_id: str) -> str:
    response = create_upload_session(http, sandbox, token, draft_id)
    assert response.status_code == 201, response.text
    return response.json()["uploadUrl"]


def put_chunk(
    http: requests.Session,
    url: str,
    data: bytes,
    start: int,
    total: int = len(LARGE_FILE),
    headers: dict[str, str] | None = None,
) -> requests.Response:
    content_range = f"bytes {start}-{start + len(data) - 1}/{total}"
    return http.put(
        url,
        data=data,
        headers={
            "Content-Range": content_range,
            "Content-Type": "application/octet-stream",
            **(headers or {}),
        },
    )


def send_draft(
    http: requests.Session, sandbox: SandboxServer, token: str, draft_id: str
) -> requests.Response:
    return http.post(f"{users_url(sandbox)}/messages/{draft_id}/send", headers=bearer(token))


def sent_items(
    http: requests.Session, sandbox: SandboxServer, token: str, **params: str
) -> requests.Response:
    return http.get(
        f"{users_url(sandbox)}/mailFolders/sentitems/messages", params=params, headers=bearer(token)
    )


def test_create_draft_returns_message_resource(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)

    assert draft["id"].startswith("AAMkAD")
    assert draft["isDraft"] is True
    assert draft["subject"] == "Quarterly report"
    assert draft["internetMessageId"].startswith("<")


def test_get_and_delete_draft(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    url = f"{users_url(sandbox)}/messages/{draft['id']}"

    fetched = http.get(url, headers=bearer(token))
    deleted = http.delete(url, headers=bearer(token))
    after = http.get(url, headers=bearer(token))

    assert fetched.json()["id"] == draft["id"]
    assert deleted.status_code == 204
    assert after.status_code == 404
    assert graph_error(after)["code"] == "ErrorItemNotFound"


def test_add_small_attachment(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)

    response = http.post(
        f"{users_url(sandbox)}/messages/{draft['id']}/attachments",
        json=file_attachment("notes.txt", b"hello", contentType="text/plain"),
        headers=bearer(token),
    )

    assert response.status_code == 201
    assert response.json()["size"] == 5
    assert response.json()["name"] == "notes.txt"


def test_upload_session_happy_path(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    http.post(
        f"{users_url(sandbox)}/messages/{draft['id']}/attachments",
        json=file_attachment("logo.png", b"\x89PNG", isInline=True, contentId="logo"),
        headers=bearer(token),
    )
    created = create_upload_session(http, sandbox, token, draft["id"], isInline=False)
    session = created.json()
    url = session["uploadUrl"]

    first = put_chunk(http, url, LARGE_FILE[: 2 * MIB], 0)
    second = put_chunk(http, url, LARGE_FILE[2 * MIB :], 2 * MIB)
    sent = send_draft(http, sandbox, token, draft["id"])

    assert created.status_code == 201
    assert session["nextExpectedRanges"] == ["0-"]
    assert url.startswith(f"{sandbox.url}/")
    assert first.status_code == 200
    assert first.json()["nextExpectedRanges"] == [str(2 * MIB)]
    assert first.json()["ExpirationDateTime"] == session["expirationDateTime"]
    assert second.status_code == 201
    assert second.content == b""
    assert "/Attachments('" in second.headers["Location"]
    assert sent.status_code == 202

    [listed] = listed_messages(http, sandbox.url)
    small, large = listed["message"]["attachments"]
    assert small["isInline"] is True
    assert small["contentId"] == "logo"
    assert large["name"] == "scan.pdf"
    assert large["contentType"] == "application/pdf"
    assert large["size"] == len(LARGE_FILE)
    assert large["sha256"] == hashlib.sha256(LARGE_FILE).hexdigest()
    assert large["isInline"] is False
    content = http.get(f"{sandbox.url}/_sandbox/messages/{listed['id']}/attachments/1/$value")
    assert content.content == LARGE_FILE


def test_upload_url_needs_no_authorization(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    response = put_chunk(http, url, LARGE_FILE[:MIB], 0, headers=bearer(token))

    assert response.status_code == 401


@pytest.mark.parametrize(
    ("chunks", "status"),
    [
        ([(0, MIB), (2 * MIB, 3 * MIB)], 416),  # skips the second MiB
        ([(0, MIB), (MIB // 2, 2 * MIB)], 416),  # overlaps the first chunk
        ([(MIB, 2 * MIB)], 416),  # does not start at byte 0
    ],
)
def test_upload_rejects_chunks_out_of_order(
    sandbox: SandboxServer, http: requests.Session, token: str, chunks: list[tuple[int, int]], status: int
) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    responses = [put_chunk(http, url, LARGE_FILE[start:end], start) for start, end in chunks]

    assert responses[-1].status_code == status
    assert graph_error(responses[-1])["code"] == "invalidRange"


def test_upload_resumes_after_rejected_chunk(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])
    put_chunk(http, url, LARGE_FILE[:MIB], 0)
    put_chunk(http, url, LARGE_FILE[2 * MIB : 3 * MIB], 2 * MIB)

    response = put_chunk(http, url, LARGE_FILE[MIB:], MIB)

    assert response.status_code == 201


def test_upload_rejects_wrong_total(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    response = put_chunk(http, url, LARGE_FILE[:MIB], 0, total=len(LARGE_FILE) + 1)

    assert response.status_code == 400
    assert "total" in graph_error(response)["message"]


@pytest.mark.parametrize("content_range", [None, "0-1023/4000000", "bytes 10-5/100", "bytes 0-99/50"])
def test_upload_rejects_malformed_content_range(
    sandbox: SandboxServer, http: requests.Session, token: str, content_range: str | None
) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])
    headers = {"Content-Type": "application/octet-stream"}
    if content_range is not None:
        headers["Content-Range"] = content_range

    response = http.put(url, data=LARGE_FILE[:1024], headers=headers)

    assert response.status_code == 400


def test_upload_rejects_length_not_matching_range(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    response = http.put(
        url, data=LARGE_FILE[:1000], headers={"Content-Range": f"bytes 0-1023/{len(LARGE_FILE)}"}
    )

    assert response.status_code == 400
    assert "does not match" in graph_error(response)["message"]


def test_upload_rejects_chunk_over_4_mb(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    data = os.urandom(5 * MIB)
    draft = create_draft(http, sandbox, token)
    url = create_upload_session(http, sandbox, token, draft["id"], size=len(data)).json()["uploadUrl"]

    response = put_chunk(http, url, data, 0, total=len(data))

    assert response.status_code == 413


def test_upload_rejects_wrong_authtoken(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])
    tampered = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")

    response = put_chunk(http, tampered, LARGE_FILE[:MIB], 0)

    assert response.status_code == 401


def test_cancelled_upload_session_is_gone(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    cancelled = http.delete(url)
    response = put_chunk(http, url, LARGE_FILE[:MIB], 0)

    assert cancelled.status_code == 204
    assert response.status_code == 404


def test_expired_upload_session_rejected(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(upload_session_lifetime_seconds=1)
    token = fetch_token(http, sandbox.url)
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])
    time.sleep(1.1)

    response = put_chunk(http, url, LARGE_FILE[:MIB], 0)

    assert response.status_code == 401


def test_upload_session_needs_at_least_3_mb(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)

    response = create_upload_session(http, sandbox, token, draft["id"], size=3 * MIB - 1)

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"


def test_upload_beyond_message_size_limit_is_413(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(max_message_bytes=3 * MIB + 1000)
    token = fetch_token(http, sandbox.url)
    draft = create_draft(http, sandbox, token)
    url = upload_url(http, sandbox, token, draft["id"])

    first = put_chunk(http, url, LARGE_FILE[: 3 * MIB], 0)
    second = put_chunk(http, url, LARGE_FILE[3 * MIB :], 3 * MIB)

    assert first.status_code == 200
    assert second.status_code == 413
    assert graph_error(second)["code"] == "ErrorMessageSizeExceeded"


def test_upload_to_unknown_draft_is_404(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = create_upload_session(http, sandbox, token, "AAMkADunknown=")

    assert response.status_code == 404
    assert graph_error(response)["code"] == "ErrorItemNotFound"


def test_send_draft_without_recipients_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token, toRecipients=[])

    response = send_draft(http, sandbox, token, draft["id"])

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorInvalidRecipients"


def test_send_draft_twice_sends_once(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)

    first = send_draft(http, sandbox, token, draft["id"])
    second = send_draft(http, sandbox, token, draft["id"])

    assert first.status_code == 202
    assert second.status_code == 404
    assert len(listed_messages(http, sandbox.url)) == 1


def test_sent_item_gets_new_id(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    send_draft(http, sandbox, token, draft["id"])

    [item] = sent_items(http, sandbox, token).json()["value"]

    assert item["id"] != draft["id"]
    assert item["internetMessageId"] == draft["internetMessageId"]


def test_immutable_id_kept_after_send(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token, headers={"Prefer": 'IdType="ImmutableId"'})
    send_draft(http, sandbox, token, draft["id"])

    [item] = sent_items(http, sandbox, token).json()["value"]

    assert item["id"] == draft["id"]


def test_sent_items_filter_by_internet_message_id(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    expected_id = "<job-42@mailservice.example>"
    send_mail(http, sandbox.url, token, {"message": message(internetMessageId=expected_id)})
    send_mail(
        http, sandbox.url, token, {"message": message(internetMessageId="<job-43@mailservice.example>")}
    )

    response = sent_items(http, sandbox, token, **{"$filter": f"internetMessageId eq '{expected_id}'"})

    assert response.status_code == 200
    assert [item["internetMessageId"] for item in response.json()["value"]] == [expected_id]


def test_sent_items_skip_unsaved_messages(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    unsaved = "<job-44@mailservice.example>"
    send_mail(
        http, sandbox.url, token, {"message": message(internetMessageId=unsaved), "saveToSentItems": False}
    )

    response = sent_items(http, sandbox, token, **{"$filter": f"internetMessageId eq '{unsaved}'"})

    assert response.json()["value"] == []


def test_sent_items_appear_after_delay(
    start_sandbox: Callable[..., SandboxServer], http: requests.Session
) -> None:
    sandbox = start_sandbox(sent_items_delay_seconds=0.5)
    token = fetch_token(http, sandbox.url)
    send_mail(http, sandbox.url, token, {"message": message()})

    before = sent_items(http, sandbox, token).json()["value"]
    time.sleep(0.6)
    after = sent_items(http, sandbox, token).json()["value"]

    assert before == []
    assert len(after) == 1


def test_sent_items_paged(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    for index in range(3):
        send_mail(http, sandbox.url, token, {"message": message(subject=f"m{index}")})

    first = sent_items(http, sandbox, token, **{"$top": "2"}).json()
    second = http.get(first["@odata.nextLink"], headers=bearer(token)).json()

    assert [item["subject"] for item in first["value"]] == ["m2", "m1"]
    assert [item["subject"] for item in second["value"]] == ["m0"]
    assert "@odata.nextLink" not in second


@pytest.mark.parametrize(
    "params",
    [
        {"$filter": "subject eq 'x'"},
        {"$orderby": "sentDateTime desc"},
        {"$top": "0"},
    ],
)
def test_sent_items_unsupported_query_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str, params: dict[str, str]
) -> None:
    response = sent_items(http, sandbox, token, **params)

    assert response.status_code == 400


def test_malformed_internet_message_id_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    response = send_mail(http, sandbox.url, token, {"message": message(internetMessageId="job-45")})

    assert response.status_code == 400


def test_draft_with_non_x_header_is_400(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    response = http.post(
        f"{users_url(sandbox)}/messages",
        json=message(internetMessageHeaders=[{"name": "Reply-To", "value": "x@example.com"}]),
        headers=bearer(token),
    )

    assert response.status_code == 400
    assert graph_error(response)["code"] == "InvalidInternetMessageHeader"


def test_draft_over_4_mb_is_413(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    body = message(body={"contentType": "Text", "content": "x" * (4 * MIB)})

    response = http.post(f"{users_url(sandbox)}/messages", json=body, headers=bearer(token))

    assert response.status_code == 413
    assert graph_error(response)["code"] == "RequestEntityTooLarge"


def test_add_attachment_over_4_mb_is_413(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)

    response = http.post(
        f"{users_url(sandbox)}/messages/{draft['id']}/attachments",
        json=file_attachment("big.bin", os.urandom(3 * MIB)),
        headers=bearer(token),
    )

    assert response.status_code == 413


def test_send_draft_over_recipient_limit_is_400(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    addresses = [f"r{index}@example.org" for index in range(501)]
    draft = create_draft(http, sandbox, token, toRecipients=recipients(*addresses))

    response = send_draft(http, sandbox, token, draft["id"])

    assert response.status_code == 400
    assert graph_error(response)["code"] == "ErrorInvalidRecipients"


@pytest.mark.parametrize(("value", "saved"), [("true", False), ("false", True)])
def test_send_draft_honours_delete_after_submit(
    sandbox: SandboxServer, http: requests.Session, token: str, value: str, saved: bool
) -> None:
    draft = create_draft(
        http, sandbox, token, singleValueExtendedProperties=[{"id": "Boolean 0x0E01", "value": value}]
    )

    send_draft(http, sandbox, token, draft["id"])

    [listed] = listed_messages(http, sandbox.url)
    in_sent_items = sent_items(http, sandbox, token).json()["value"]
    assert listed["saveToSentItems"] is saved
    assert len(in_sent_items) == (1 if saved else 0)


def test_inline_upload_keeps_content_id(sandbox: SandboxServer, http: requests.Session, token: str) -> None:
    draft = create_draft(http, sandbox, token)
    url = create_upload_session(
        http, sandbox, token, draft["id"], name="banner.png", contentType="image/png", isInline=True,
        contentId="banner",
    ).json()["uploadUrl"]
    put_chunk(http, url, LARGE_FILE[: 3 * MIB], 0)
    put_chunk(http, url, LARGE_FILE[3 * MIB :], 3 * MIB)

    send_draft(http, sandbox, token, draft["id"])

    [listed] = listed_messages(http, sandbox.url)
    [attachment] = listed["message"]["attachments"]
    assert (attachment["name"], attachment["contentType"]) == ("banner.png", "image/png")
    assert (attachment["isInline"], attachment["contentId"]) == (True, "banner")
    assert attachment["sha256"] == hashlib.sha256(LARGE_FILE).hexdigest()


def test_small_draft_attachment_bytes_retrievable(
    sandbox: SandboxServer, http: requests.Session, token: str
) -> None:
    draft = create_draft(http, sandbox, token)
    http.post(
        f"{users_url(sandbox)}/messages/{draft['id']}/attachments",
        json=file_attachment("logo.png", b"\x89PNG-logo", isInline=True, contentId="logo"),
        headers=bearer(token),
    )
    send_draft(http, sandbox, token, draft["id"])

    [listed] = listed_messages(http, sandbox.url)
    content = http.get(f"{sandbox.url}/_sandbox/messages/{listed['id']}/attachments/0/$value")

    assert content.content == b"\x89PNG-logo"
