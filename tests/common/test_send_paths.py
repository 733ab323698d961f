"""Choosing sendMail or the draft path, and gathering a job's attachments."""

import base64
import hashlib
import os
import uuid

import pytest

from common.attachments import AttachmentStore, ensure_object_store, object_names
from common.send_paths import SendPath, _send_mail_body, load_attachments, send_message
from common.graph import GraphClient
from common.jobs import Job
from common.queue import JetStreamPublisher
from common.settings import MIB, Settings
from common.upload import OutgoingAttachment

MESSAGE = {"subject": "s", "body": {"contentType": "Text", "content": "b"},
           "toRecipients": [{"emailAddress": {"address": "to@example.com"}}]}


def attachment(size):
    return OutgoingAttachment(name="a.bin", content_type="application/octet-stream", data=os.urandom(size))


def mail_with(*payloads, **extra):
    attachments = [{"name": f"{n}.bin", "contentType": "application/octet-stream",
                    "contentBytes": base64.b64encode(data).decode(), **extra} for n, data in enumerate(payloads)]
    return {"recipients": ["to@example.com"], "cc_recipients": [], "bcc_recipients": [], "subject": "s",
            "body_content": "b", "attachments": attachments, "app_tag": "app"}


@pytest.fixture(scope="module")
def settings(service_env):
    return Settings.from_env(service_env)


@pytest.fixture(scope="module")
def store(settings):
    publisher = JetStreamPublisher(settings, "test-delivery", setup=[ensure_object_store])
    yield AttachmentStore(settings, publisher)
    publisher.close()


@pytest.fixture
def mailbox():
    return f"delivery-{uuid.uuid4().hex[:8]}@example.com"


def test_small_message_goes_through_send_mail():
    body = _send_mail_body(MESSAGE, [attachment(MIB)], save=False)
    assert (len(body["message"]["attachments"]), body["saveToSentItems"]) == (1, False)


def test_attachment_of_3_mib_takes_draft_path():
    assert _send_mail_body(MESSAGE, [attachment(3 * MIB)], save=True) is None


def test_small_attachments_over_4_mb_take_draft():
    assert _send_mail_body(MESSAGE, [attachment(MIB) for _ in range(3)], save=True) is None


def test_long_body_with_attachment_takes_draft_path():
    message = {**MESSAGE, "body": {"contentType": "Text", "content": "x" * 3_000_000}}
    assert _send_mail_body(message, [attachment(MIB)], save=True) is None


@pytest.mark.integration
def test_inline_attachment_bytes_are_decoded(store):
    data = os.urandom(100)
    [loaded] = load_attachments(mail_with(data, content_id="logo", is_inline=True), store)
    assert (loaded.data, loaded.content_id, loaded.is_inline) == (data, "logo", True)


@pytest.mark.integration
def test_stored_attachment_bytes_are_fetched(store):
    data = os.urandom(2 * MIB)
    job = store.offload(Job.new(mail_with(data)))

    [loaded] = load_attachments(job.mail, store)

    assert loaded.data == data
    store.delete(object_names(job))


@pytest.mark.integration
def test_small_mail_takes_send_mail_path(settings, store, sandbox, mailbox):
    mail = mail_with(b"klein")
    path = send_message(GraphClient(settings), mailbox, mail, load_attachments(mail, store))

    assert path is SendPath.SEND_MAIL
    assert sandbox.messages(mailbox)[0]["source"] == "sendMail"


@pytest.mark.integration
def test_large_attachment_takes_draft_path(settings, store, sandbox, mailbox):
    data = os.urandom(3 * MIB)
    mail = mail_with(data)

    path = send_message(GraphClient(settings), mailbox, mail, load_attachments(mail, store))

    [listed] = sandbox.messages(mailbox)[0]["message"]["attachments"]
    assert path is SendPath.DRAFT
    assert listed["sha256"] == hashlib.sha256(data).hexdigest()


@pytest.mark.integration
@pytest.mark.parametrize("size", [1000, 3 * MIB])
def test_preset_message_id_reaches_graph_on_both_paths(settings, store, sandbox, mailbox, size):
    mail = mail_with(os.urandom(size))
    send_message(GraphClient(settings), mailbox, mail, load_attachments(mail, store),
                 internet_message_id="<preset@example.com>")
    assert sandbox.messages(mailbox)[0]["internetMessageId"] == "<preset@example.com>"
