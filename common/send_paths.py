"""The worker's send step: gather a job's attachments and pick sendMail or the draft path.

A message goes through one sendMail request unless an attachment has 3 MiB or more or the request
body would exceed 4,000,000 bytes. Such a message goes through a draft and upload sessions
(common/upload.py).
"""

from __future__ import annotations

import base64
import logging
from enum import Enum
from typing import Any

from common.attachments import AttachmentStore, is_stored
from common.graph import GraphClient
from common.message import message_without_attachments, save_to_sent_items, with_sender_name
from common.settings import GRAPH_MAX_REQUEST_BYTES
from common.upload import OutgoingAttachment, json_size, send_as_draft

logger = logging.getLogger(__name__)


class SendPath(str, Enum):
    SEND_MAIL = "sendMail"
    DRAFT = "draft"


def load_attachments(mail: dict[str, Any], store: AttachmentStore) -> list[OutgoingAttachment]:
    """Return the mail's attachments with their bytes, fetching those kept in the object store."""
    attachments = []
    for item in mail.get("attachments") or []:
        data = store.fetch(item) if is_stored(item) else base64.b64decode(item["contentBytes"])
        attachments.append(OutgoingAttachment(
            name=item["name"],
            content_type=item["contentType"],
            data=data,
            content_id=item.get("content_id"),
            is_inline=bool(item.get("is_inline")),
        ))
    return attachments


def send_message(graph: GraphClient, mailbox: str, mail: dict[str, Any], attachments: list[OutgoingAttachment],
                 display_name: str | None = None, internet_message_id: str | None = None) -> SendPath:
    """Send mail from mailbox through Graph and return the path it took; raise ServiceError on failure.

    internet_message_id presets the Message-ID, so an attempt whose outcome is unknown can be looked up
    in Sent Items later.
    """
    message = with_sender_name(message_without_attachments(mail), mailbox, display_name)
    if internet_message_id:
        message["internetMessageId"] = internet_message_id
    save = save_to_sent_items(mail)

    body = _send_mail_body(message, attachments, save)
    if body is None:
        logger.debug("Sending through a draft: %d attachments, %d bytes", len(attachments),
                     sum(attachment.size for attachment in attachments))
        send_as_draft(graph, mailbox, message, attachments, save)
        return SendPath.DRAFT

    graph.send_mail(mailbox, body["message"], save)
    return SendPath.SEND_MAIL


def _send_mail_body(message: dict[str, Any], attachments: list[OutgoingAttachment],
                    save: bool) -> dict[str, Any] | None:
    """Return the sendMail request body, or None when the message needs the draft path."""
    if any(attachment.needs_upload_session for attachment in attachments):
        return None
    if sum(4 * -(-attachment.size // 3) for attachment in attachments) > GRAPH_MAX_REQUEST_BYTES:
        return None  # the base64 alone is too large; skip encoding it
    full_message = dict(message)
    if attachments:
        full_message["attachments"] = [attachment.file_attachment() for attachment in attachments]
    body = {"message": full_message, "saveToSentItems": save}
    if json_size(body) > GRAPH_MAX_REQUEST_BYTES:
        return None
    return body
