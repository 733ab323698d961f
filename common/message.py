"""Mapping of a validated send request to Graph's message resource.

Graph docs: "message resource type" and "user: sendMail" (https://learn.microsoft.com/graph/api/user-sendmail).
"""

from __future__ import annotations

from typing import Any

FILE_ATTACHMENT_TYPE = "#microsoft.graph.fileAttachment"


def _recipients(addresses: list[str]) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": address}} for address in addresses]


def _body(mail: dict[str, Any]) -> dict[str, str]:
    # A Graph message has one body. The Go service sent the HTML body when a client gave both.
    html = mail.get("html_body_content")
    if html:
        return {"contentType": "HTML", "content": html}
    return {"contentType": "Text", "content": mail.get("body_content") or ""}


def _attachment(attachment: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": FILE_ATTACHMENT_TYPE,
        "name": attachment["name"],
        "contentType": attachment["contentType"],
        "contentBytes": attachment["contentBytes"],
    }


def to_graph_message(mail: dict[str, Any]) -> dict[str, Any]:
    """Return the ``message`` object of a sendMail request body for mail."""
    message: dict[str, Any] = {
        "subject": mail.get("subject") or "",
        "body": _body(mail),
        "toRecipients": _recipients(mail["recipients"]),
    }
    if mail.get("cc_recipients"):
        message["ccRecipients"] = _recipients(mail["cc_recipients"])
    if mail.get("bcc_recipients"):
        message["bccRecipients"] = _recipients(mail["bcc_recipients"])
    if mail.get("attachments"):
        message["attachments"] = [_attachment(item) for item in mail["attachments"]]
    return message


def recipient_count(mail: dict[str, Any]) -> int:
    return sum(len(mail.get(key) or []) for key in ("recipients", "cc_recipients", "bcc_recipients"))


def with_sender_name(message: dict[str, Any], mailbox: str, display_name: str | None) -> dict[str, Any]:
    """Return message with ``from`` naming mailbox as display_name; unchanged without a display name."""
    if not display_name:
        return message
    # NOTE: Graph accepts a ``from`` equal to the sending mailbox. Whether recipients see this name or the
    # mailbox's directory name is not checked against Exchange Online, only against the sandbox.
    return {**message, "from": {"emailAddress": {"address": mailbox, "name": display_name}}}
