"""Mapping of a validated send request to Graph's message resource.

Graph docs: "message resource type" and "user: sendMail" (https://learn.microsoft.com/graph/api/user-sendmail).
"""

from __future__ import annotations

from typing import Any

from common.recipients import display_name

FILE_ATTACHMENT_TYPE = "#microsoft.graph.fileAttachment"


def _recipients(addresses: list[str], mail: dict[str, Any]) -> list[dict[str, Any]]:
    recipients = []
    for address in addresses:
        email_address = {"address": address}
        name = display_name(mail, address)
        if name:
            email_address["name"] = name
        recipients.append({"emailAddress": email_address})
    return recipients


def _body(mail: dict[str, Any]) -> dict[str, str]:
    # A Graph message in JSON has one body, so Graph cannot carry both a text and an HTML part. The
    # Go service sent the HTML body when a client gave both.
    html = mail.get("html_body_content")
    if html:
        return {"contentType": "HTML", "content": html}
    return {"contentType": "Text", "content": mail.get("body_content") or ""}


def graph_attachment(name: str, content_type: str, content_bytes: str, content_id: str | None = None,
                     is_inline: bool = False) -> dict[str, Any]:
    """Return a fileAttachment; content_bytes is base64."""
    attachment: dict[str, Any] = {
        "@odata.type": FILE_ATTACHMENT_TYPE,
        "name": name,
        "contentType": content_type,
        "contentBytes": content_bytes,
    }
    if content_id:
        attachment["contentId"] = content_id
    if is_inline:
        attachment["isInline"] = True
    return attachment


def _attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    return graph_attachment(attachment["name"], attachment["contentType"], attachment["contentBytes"],
                            attachment.get("content_id"), bool(attachment.get("is_inline")))


def message_without_attachments(mail: dict[str, Any]) -> dict[str, Any]:
    """Return Graph's message resource for mail, without the attachments."""
    message: dict[str, Any] = {
        "subject": mail.get("subject") or "",
        "body": _body(mail),
        "toRecipients": _recipients(mail["recipients"], mail),
    }
    if mail.get("cc_recipients"):
        message["ccRecipients"] = _recipients(mail["cc_recipients"], mail)
    if mail.get("bcc_recipients"):
        message["bccRecipients"] = _recipients(mail["bcc_recipients"], mail)
    if mail.get("reply_to"):
        message["replyTo"] = _recipients(mail["reply_to"], mail)
    if mail.get("importance"):
        message["importance"] = mail["importance"]
    if mail.get("custom_headers"):
        message["internetMessageHeaders"] = [
            {"name": name, "value": value} for name, value in mail["custom_headers"].items()
        ]
    return message


def to_graph_message(mail: dict[str, Any]) -> dict[str, Any]:
    """Return the ``message`` object of a sendMail request body for mail.

    Attachments must carry their bytes in ``contentBytes``; those kept in the object store are
    fetched and added by the worker (common/delivery.py).
    """
    message = message_without_attachments(mail)
    if mail.get("attachments"):
        message["attachments"] = [_attachment(item) for item in mail["attachments"]]
    return message


def save_to_sent_items(mail: dict[str, Any]) -> bool:
    value = mail.get("save_to_sent_items")
    return True if value is None else bool(value)


def recipient_count(mail: dict[str, Any]) -> int:
    return sum(len(mail.get(key) or []) for key in ("recipients", "cc_recipients", "bcc_recipients"))


def with_sender_name(message: dict[str, Any], mailbox: str, display_name: str | None) -> dict[str, Any]:
    """Return message with ``from`` naming mailbox as display_name; unchanged without a display name."""
    if not display_name:
        return message
    # NOTE: Graph accepts a ``from`` equal to the sending mailbox. Whether recipients see this name or the
    # mailbox's directory name is not checked against Exchange Online, only against the sandbox.
    return {**message, "from": {"emailAddress": {"address": mailbox, "name": display_name}}}
