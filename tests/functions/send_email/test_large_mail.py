"""Large and rich mail through the ingest, NATS (job stream and object store), the worker and the sandbox."""

import asyncio
import base64
import hashlib
import os
import time

import nats
import nats.js.errors
import pytest
import requests

from common import settings as settings_module
from tests.conftest import auth_for

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LARGE_TIMEOUT_SECONDS = 90.0
LOGO = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


def post(ingest, payload, **headers):
    headers = {**auth_for(payload.get("app_tag")), **headers}
    return requests.post(f"{ingest}/send-email", json=payload, headers=headers, timeout=LARGE_TIMEOUT_SECONDS)


def file_attachment(name, data, content_type="application/octet-stream", **extra):
    return {"name": name, "contentType": content_type, "contentBytes": base64.b64encode(data).decode(), **extra}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


async def _bucket_state(env):
    nc = await nats.connect(env[settings_module.ENV_NATS_URL])
    try:
        js = nc.jetstream()
        try:
            info = await js.stream_info(f"OBJ_{env[settings_module.ENV_NATS_OBJECT_STORE]}")
        except nats.js.errors.NotFoundError:
            return 0, 0, 0  # the ingest creates the bucket when it first connects
        try:
            store = await js.object_store(env[settings_module.ENV_NATS_OBJECT_STORE])
            live = await store.list(ignore_deletes=True)
        except nats.js.errors.NotFoundError:
            live = []
        return info.state.last_seq, info.state.bytes, len(live)
    finally:
        await nc.close()


def bucket_state(env):
    """Return the object store stream's last sequence, its bytes, and the number of live objects."""
    return asyncio.run(_bucket_state(env))


def wait_until_empty(env, timeout=10.0):
    deadline = time.monotonic() + timeout
    state = bucket_state(env)
    while state[2] and time.monotonic() < deadline:
        time.sleep(0.2)
        state = bucket_state(env)
    return state


def max_payload(env):
    async def read():
        nc = await nats.connect(env[settings_module.ENV_NATS_URL])
        value = nc.max_payload
        await nc.close()
        return value

    return asyncio.run(read())


@pytest.fixture
def app(sender, worker):
    return sender()


@pytest.fixture(scope="module")
def pdf_20_mb():
    return b"%PDF-1.7\n" + os.urandom(20 * MIB)


def test_large_pdf_image_and_inline_logo_arrive_identical(ingest, sandbox, app, service_env, pdf_20_mb):
    app_tag, mailbox = app
    image = os.urandom(3 * MIB + MIB // 2)
    sequence_before = bucket_state(service_env)[0]
    payload = {
        "recipients": [{"address": "kunde@example.com", "name": "Kundin Müller"}],
        "subject": "Rechnung 2024-0815 – große Anhänge",
        "html_body_content": '<p>Rechnung</p><img src="cid:logo">',
        "attachments": [
            file_attachment("rechnung.pdf", pdf_20_mb, "application/pdf"),
            file_attachment("scan.png", image, "image/png"),
            file_attachment("logo.png", LOGO, "image/png", content_id="logo", is_inline=True),
        ],
        "app_tag": app_tag,
    }

    response = post(ingest, payload)
    assert response.status_code == 202, response.text
    [captured] = sandbox.wait_for_messages(mailbox, timeout=LARGE_TIMEOUT_SECONDS)

    attachments = {item["name"]: item for item in captured["message"]["attachments"]}
    assert attachments["rechnung.pdf"]["sha256"] == sha256(pdf_20_mb)
    assert attachments["scan.png"]["sha256"] == sha256(image)
    assert attachments["logo.png"]["sha256"] == sha256(LOGO)
    assert attachments["logo.png"]["isInline"] is True
    assert attachments["logo.png"]["contentId"] == "logo"
    assert attachments["rechnung.pdf"]["isInline"] is False
    assert captured["message"]["body"]["content"] == '<p>Rechnung</p><img src="cid:logo">'
    assert captured["source"] == "draft"
    assert bucket_state(service_env)[0] > sequence_before  # the attachments went through the object store
    assert wait_until_empty(service_env)[2] == 0


def test_object_store_keeps_only_deletion_markers(ingest, sandbox, app, service_env, pdf_20_mb):
    app_tag, mailbox = app
    payload = {"recipients": ["a@example.com"], "app_tag": app_tag,
               "attachments": [file_attachment("rechnung.pdf", pdf_20_mb[:5 * MIB], "application/pdf")]}

    assert post(ingest, payload).status_code == 202
    sandbox.wait_for_messages(mailbox, timeout=LARGE_TIMEOUT_SECONDS)
    _, stored_bytes, live = wait_until_empty(service_env)

    assert live == 0
    assert stored_bytes < 64 * 1024  # the chunks are purged; each deleted object leaves a small marker


def test_2_mb_attachment_passes_default_max_payload(ingest, sandbox, app, service_env):
    app_tag, mailbox = app
    data = os.urandom(2 * MIB)
    sequence_before = bucket_state(service_env)[0]

    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app_tag,
                             "attachments": [file_attachment("bericht.pdf", data, "application/pdf")]})
    assert response.status_code == 202, response.text
    [captured] = sandbox.wait_for_messages(mailbox, timeout=LARGE_TIMEOUT_SECONDS)

    assert max_payload(service_env) == 1024 * 1024  # NATS's default
    assert captured["message"]["attachments"][0]["sha256"] == sha256(data)
    assert captured["source"] == "sendMail"
    assert bucket_state(service_env)[0] > sequence_before
    assert wait_until_empty(service_env)[2] == 0


def test_small_mail_stays_out_of_object_store(ingest, sandbox, app, service_env):
    app_tag, mailbox = app
    sequence_before = bucket_state(service_env)[0]

    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app_tag,
                             "attachments": [file_attachment("klein.txt", b"hallo", "text/plain")]})
    assert response.status_code == 202
    sandbox.wait_for_messages(mailbox)

    assert bucket_state(service_env)[0] == sequence_before


def test_message_fields_reach_graph(ingest, sandbox, app):
    app_tag, mailbox = app
    payload = {
        "recipients": [{"address": "anna@example.com", "name": "Anna Ärger"}, "ANNA@example.com"],
        "cc_recipients": ["anna@example.com", "chef@example.com"],
        "reply_to": [{"address": "buchhaltung@example.com", "name": "Buchhaltung"}],
        "importance": "High",
        "custom_headers": {"X-Rechnung": "2024-0815", "x-mandant": "Süd"},
        "subject": "Grüße ✓",
        "body_content": "Text",
        "html_body_content": "<p>HTML</p>",
        "app_tag": app_tag,
    }

    assert post(ingest, payload).status_code == 202
    [captured] = sandbox.wait_for_messages(mailbox)
    message = captured["message"]

    assert message["toRecipients"] == [{"emailAddress": {"address": "anna@example.com", "name": "Anna Ärger"}}]
    assert message["ccRecipients"] == [{"emailAddress": {"address": "chef@example.com"}}]
    assert message["replyTo"] == [{"emailAddress": {"address": "buchhaltung@example.com", "name": "Buchhaltung"}}]
    assert message["importance"] == "high"
    assert message["internetMessageHeaders"] == [{"name": "X-Rechnung", "value": "2024-0815"},
                                                 {"name": "x-mandant", "value": "Süd"}]
    assert message["subject"] == "Grüße ✓"
    assert message["body"] == {"contentType": "HTML", "content": "<p>HTML</p>"}


def test_save_to_sent_items_false_reaches_graph(ingest, sandbox, app):
    app_tag, mailbox = app

    assert post(ingest, {"recipients": ["a@example.com"], "app_tag": app_tag,
                         "save_to_sent_items": False}).status_code == 202
    [captured] = sandbox.wait_for_messages(mailbox)

    assert captured["saveToSentItems"] is False


def test_save_to_sent_items_false_on_draft_path(ingest, sandbox, app):
    app_tag, mailbox = app
    data = os.urandom(3 * MIB)

    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app_tag, "save_to_sent_items": False,
                             "attachments": [file_attachment("scan.pdf", data, "application/pdf")]})
    assert response.status_code == 202
    [captured] = sandbox.wait_for_messages(mailbox, timeout=LARGE_TIMEOUT_SECONDS)

    assert captured["source"] == "draft"
    assert captured["saveToSentItems"] is False


def test_small_attachments_over_4_mb_take_draft(ingest, sandbox, app):
    app_tag, mailbox = app
    files = [os.urandom(MIB) for _ in range(5)]

    attachments = [file_attachment(f"teil-{n}.bin", data) for n, data in enumerate(files)]

    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app_tag, "attachments": attachments})
    assert response.status_code == 202
    [captured] = sandbox.wait_for_messages(mailbox, timeout=LARGE_TIMEOUT_SECONDS)

    assert captured["source"] == "draft"
    assert [item["sha256"] for item in captured["message"]["attachments"]] == [sha256(data) for data in files]
