"""The draft path with upload sessions, through the Graph client against the sandbox over HTTPS."""

import hashlib
import json
import os
import uuid

import pytest

from common.errors import GraphError
from common.graph import GraphClient, mailbox_path
from common.settings import GRAPH_MAX_REQUEST_BYTES, GRAPH_UPLOAD_CHUNK_BYTES, MIB, Settings
from common.upload import OutgoingAttachment, _next_expected_byte, _split_attachments, send_as_draft

MESSAGE = {"subject": "Große Anhänge", "body": {"contentType": "HTML", "content": '<img src="cid:logo">'},
           "toRecipients": [{"emailAddress": {"address": "to@example.com"}}]}


@pytest.fixture
def settings(service_env):
    return Settings.from_env(service_env)


@pytest.fixture
def mailbox():
    return f"upload-{uuid.uuid4().hex[:8]}@example.com"


def operation_count(sandbox, operation, status):
    return sandbox.get("/_sandbox/stats")["operations"].get(operation, {}).get("by_status", {}).get(str(status), 0)


def drafts(client, mailbox):
    return client.call("GET", f"{mailbox_path(mailbox)}/mailFolders/drafts/messages").json()["value"]


def attachment(size, name="datei.bin", **extra):
    return OutgoingAttachment(name=name, content_type="application/octet-stream", data=os.urandom(size), **extra)


class FakeResponse:
    status_code = 200

    def __init__(self, body):
        self._body = body

    def json(self):
        return self._body


@pytest.mark.integration
def test_large_attachments_arrive_byte_identical(settings, sandbox, mailbox):
    large = attachment(9 * MIB, "rechnung.pdf")
    logo = attachment(500, "logo.png", content_id="logo", is_inline=True)
    chunks_before = operation_count(sandbox, "uploadChunk", 200) + operation_count(sandbox, "uploadChunk", 201)

    send_as_draft(GraphClient(settings), mailbox, MESSAGE, [large, logo])

    [captured] = sandbox.messages(mailbox)
    listed = {item["name"]: item for item in captured["message"]["attachments"]}
    chunks = operation_count(sandbox, "uploadChunk", 200) + operation_count(sandbox, "uploadChunk", 201)
    assert listed["rechnung.pdf"]["sha256"] == hashlib.sha256(large.data).hexdigest()
    assert (listed["logo.png"]["contentId"], listed["logo.png"]["isInline"]) == ("logo", True)
    assert chunks - chunks_before == -(-large.size // GRAPH_UPLOAD_CHUNK_BYTES)


@pytest.mark.integration
def test_large_inline_attachment_keeps_content_id(settings, sandbox, mailbox):
    image = attachment(3 * MIB, "banner.png", content_id="banner", is_inline=True)

    send_as_draft(GraphClient(settings), mailbox, MESSAGE, [image])

    [listed] = sandbox.messages(mailbox)[0]["message"]["attachments"]
    assert (listed["contentId"], listed["isInline"], listed["size"]) == ("banner", True, image.size)


@pytest.mark.integration
def test_failed_upload_deletes_the_draft(settings, sandbox, mailbox):
    client = GraphClient(settings)
    sandbox.add_fault(status=503, count=1, mailbox=mailbox, operations=["uploadChunk"])
    try:
        with pytest.raises(GraphError) as info:
            send_as_draft(client, mailbox, MESSAGE, [attachment(4 * MIB)])
    finally:
        sandbox.clear_faults()

    assert info.value.transient is True
    assert drafts(client, mailbox) == []
    assert sandbox.messages(mailbox) == []


@pytest.mark.integration
def test_rejected_send_deletes_the_draft(settings, sandbox, mailbox):
    client = GraphClient(settings)
    sandbox.add_fault(status=400, count=1, mailbox=mailbox, operations=["send"])
    try:
        with pytest.raises(GraphError):
            send_as_draft(client, mailbox, MESSAGE, [attachment(100)])
    finally:
        sandbox.clear_faults()

    assert drafts(client, mailbox) == []


@pytest.mark.integration
def test_save_to_sent_items_false_skips_sent_items(settings, sandbox, mailbox):
    send_as_draft(GraphClient(settings), mailbox, MESSAGE, [attachment(3 * MIB)], save_to_sent_items=False)

    assert sandbox.messages(mailbox)[0]["saveToSentItems"] is False


def test_small_attachments_fill_the_draft_in_order():
    small = [attachment(MIB, f"{n}.bin") for n in range(4)]

    draft, separate, large = _split_attachments(MESSAGE, small)

    assert [item["name"] for item in draft["attachments"]] == ["0.bin", "1.bin"]
    assert [item["name"] for item in separate] == ["2.bin", "3.bin"]
    assert large == []


def test_draft_request_stays_under_graph_limit():
    draft, _, _ = _split_attachments(MESSAGE, [attachment(MIB // 2, f"{n}.bin") for n in range(10)])

    assert len(json.dumps(draft)) <= GRAPH_MAX_REQUEST_BYTES


def test_attachments_of_3_mib_need_upload_session():
    exact = attachment(3 * MIB)

    draft, separate, large = _split_attachments(MESSAGE, [exact, attachment(3 * MIB - 1)])

    assert large == [exact]
    assert len(draft.get("attachments", [])) + len(separate) == 1


@pytest.mark.parametrize("ranges", [["4194304-"], ["4194304"], ["4194304-8388607", "9000000-"]])
def test_next_expected_byte_is_parsed(ranges):
    assert _next_expected_byte(FakeResponse({"nextExpectedRanges": ranges}), 0) == 4194304


@pytest.mark.parametrize("body", [{}, {"nextExpectedRanges": []}, {"nextExpectedRanges": ["abc-"]},
                                  {"nextExpectedRanges": ["0-"]}])
def test_unusable_next_expected_range_raises(body):
    with pytest.raises(GraphError):
        _next_expected_byte(FakeResponse(body), 0)
