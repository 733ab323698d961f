"""Graph's JSON representations of messages and attachments, as Graph returns them."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import datetime
from typing import Any

from flask import request

from graph_sandbox.state import StoredAttachment, format_graph_time
from graph_sandbox.validation import FILE_ATTACHMENT_TYPE, RECIPIENT_FIELDS

_TAG = re.compile(r"<[^>]*>")
_PREVIEW_CHARS = 255


def metadata_url(fragment: str) -> str:
    return f"{request.host_url}v1.0/$metadata#{fragment}"


def message_resource(
    *,
    message_id: str,
    mailbox: str,
    message: dict[str, Any],
    attachments: list[StoredAttachment],
    internet_message_id: str,
    created_at: datetime,
    sent_at: datetime | None,
    folder: str,
) -> dict[str, Any]:
    """Return a message as Graph's GET returns it (without internetMessageHeaders, as Graph omits them)."""
    change_key = _change_key(message_id, created_at)
    body = message.get("body") or {}
    content_type = str(body.get("contentType") or "text").lower()
    content = body.get("content") or ""
    owner = {"emailAddress": {"name": mailbox, "address": mailbox}}

    resource: dict[str, Any] = {
        "@odata.etag": f'W/"{change_key}"',
        "id": message_id,
        "createdDateTime": format_graph_time(created_at),
        "lastModifiedDateTime": format_graph_time(sent_at or created_at),
        "changeKey": change_key,
        "categories": message.get("categories") or [],
        "receivedDateTime": format_graph_time(sent_at or created_at),
        "sentDateTime": format_graph_time(sent_at) if sent_at else None,
        "hasAttachments": any(not attachment.is_inline for attachment in attachments),
        "internetMessageId": internet_message_id,
        "subject": message.get("subject") or "",
        "bodyPreview": _preview(content, content_type),
        "importance": str(message.get("importance") or "normal").lower(),
        "parentFolderId": folder,
        "conversationId": _derived_id("conversation", internet_message_id),
        "isDeliveryReceiptRequested": bool(message.get("isDeliveryReceiptRequested")),
        "isReadReceiptRequested": bool(message.get("isReadReceiptRequested")),
        "isRead": True,
        "isDraft": sent_at is None,
        "body": {"contentType": content_type, "content": content},
        "sender": message.get("sender") or message.get("from") or owner,
        "from": message.get("from") or owner,
        "replyTo": message.get("replyTo") or [],
        "flag": {"flagStatus": "notFlagged"},
    }
    for field in RECIPIENT_FIELDS:
        resource[field] = message.get(field) or []
    return resource


def select_properties(resource: dict[str, Any], select: str | None) -> dict[str, Any]:
    """Apply an OData ``$select``, keeping the id and the etag as Graph does."""
    if not select:
        return resource
    selected = {name.strip() for name in select.split(",") if name.strip()}
    return {key: value for key, value in resource.items() if key in selected or key in ("id", "@odata.etag")}


def attachment_resource(
    attachment: StoredAttachment, last_modified: datetime, include_content: bool = True
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "@odata.type": FILE_ATTACHMENT_TYPE,
        "@odata.mediaContentType": attachment.content_type,
        "id": attachment.attachment_id,
        "lastModifiedDateTime": format_graph_time(last_modified),
        "name": attachment.name,
        "contentType": attachment.content_type,
        "size": len(attachment.data),
        "isInline": attachment.is_inline,
        "contentId": attachment.content_id,
        "contentLocation": None,
    }
    if include_content:
        resource["contentBytes"] = base64.b64encode(attachment.data).decode("ascii")
    return resource


def format_expiration(moment: datetime) -> str:
    """Format an upload session's expiry as Outlook does, with 7 fractional digits.

    Example: 2019-09-25T01:09:30.7671707Z.
    """
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _preview(content: str, content_type: str) -> str:
    text = _TAG.sub(" ", content) if content_type == "html" else content
    return " ".join(text.split())[:_PREVIEW_CHARS]


def _change_key(message_id: str, created_at: datetime) -> str:
    digest = hashlib.sha256(f"{message_id}|{created_at.isoformat()}".encode()).digest()
    return base64.b64encode(digest[:21]).decode("ascii")


def _derived_id(kind: str, seed: str) -> str:
    digest = hashlib.sha256(f"{kind}|{seed}".encode()).digest()
    return "AAQkAD" + base64.urlsafe_b64encode(digest).decode("ascii")
