"""Limits that a loaded mail must meet before the ingest queues it: recipients and sizes.

Each is checked at ingest so the client gets a 413 or 422 at once, instead of a job that Graph
rejects later (ErrorMessageSizeExceeded, RequestEntityTooLarge, ErrorInvalidRecipients).
"""

from __future__ import annotations

import json
from typing import Any

from common.errors import MessageTextTooLarge, MessageTooLarge, ValidationFailed
from common.i18n import DEFAULT_LANGUAGE, translate
from common.message import message_without_attachments, recipient_count, save_to_sent_items
from common.settings import GRAPH_MAX_REQUEST_BYTES, Settings


def check_limits(mail: dict[str, Any], settings: Settings, language: str = DEFAULT_LANGUAGE) -> None:
    """Raise ValidationFailed (422) or a PayloadTooLarge error (413) when mail exceeds a limit."""
    _check_recipients(mail, settings.max_recipients, language)
    _check_message_size(mail, settings.max_message_bytes)
    _check_text_size(mail)


def base64_decoded_size(encoded: str) -> int:
    """Return the byte count of valid, unwrapped base64 text without decoding it."""
    return len(encoded) // 4 * 3 - encoded[-2:].count("=")


def message_size(mail: dict[str, Any]) -> int:
    """Return the size that the message size limit counts: attachment bytes, subject and body.

    NOTE: Exchange counts the encoded MIME message, in which base64 makes attachments about a third
    larger, so a message near the limit may still be rejected by Exchange. The Graph sandbox counts
    the same way as this function.
    """
    body = message_without_attachments(mail)["body"]["content"]
    text_bytes = len((mail.get("subject") or "").encode()) + len(body.encode())
    attachment_bytes = sum(_attachment_size(item) for item in mail.get("attachments") or [])
    return text_bytes + attachment_bytes


def _attachment_size(attachment: dict[str, Any]) -> int:
    if "contentBytes" in attachment:
        return base64_decoded_size(attachment["contentBytes"])
    return int(attachment["size"])


def _check_recipients(mail: dict[str, Any], limit: int, language: str) -> None:
    count = recipient_count(mail)
    if count <= limit:
        return
    reason = translate("field_too_many_recipients", language, count=count, limit=limit)
    raise ValidationFailed(f"The mail has {count} recipients; at most {limit} are allowed.",
                           fields={"recipients": [reason]}, names="recipients")


def _check_message_size(mail: dict[str, Any], limit: int) -> None:
    size = message_size(mail)
    if size > limit:
        raise MessageTooLarge(f"Message of {size} bytes exceeds the maximum message size of {limit} bytes.",
                              size=size, limit=limit)


def _check_text_size(mail: dict[str, Any]) -> None:
    # Graph takes the message without attachments in one request (sendMail or the draft), so it must
    # fit Graph's request limit even when the attachments go through upload sessions.
    body = {"message": message_without_attachments(mail), "saveToSentItems": save_to_sent_items(mail)}
    size = len(json.dumps(body))
    if size > GRAPH_MAX_REQUEST_BYTES:
        raise MessageTextTooLarge(
            f"Message without attachments is {size} bytes as Graph JSON; Graph accepts {GRAPH_MAX_REQUEST_BYTES}.",
            size=size, limit=GRAPH_MAX_REQUEST_BYTES)
