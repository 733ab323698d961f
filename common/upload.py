"""Sending a message through a draft, for attachments or bodies too large for one sendMail request.

Graph's path for large attachments (Graph docs: outlook-large-attachments):

1. ``POST /users/{mailbox}/messages`` creates a draft with the message and as many small
   attachments as fit into the 4 MB request;
2. each other attachment under 3 MiB is added with ``POST .../messages/{id}/attachments``;
3. each attachment of 3 MiB or more gets ``POST .../attachments/createUploadSession`` and is PUT to
   the returned ``uploadUrl`` in chunks of 3.75 MiB with ``Content-Range`` and no Authorization;
4. ``POST .../messages/{id}/send`` sends the draft.

When a step fails, the draft is deleted and the error is raised, so the job's retry starts over
with a new draft instead of leaving half-built drafts in the mailbox.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from typing import Any

from common.errors import GraphError
from common.graph import GraphClient, mailbox_path
from common.logs import mask_address
from common.message import graph_attachment
from common.settings import GRAPH_MAX_REQUEST_BYTES, GRAPH_UPLOAD_CHUNK_BYTES, GRAPH_UPLOAD_SESSION_MIN_BYTES

logger = logging.getLogger(__name__)

# MAPI's PidTagDeleteAfterSubmit (PR_DELETE_AFTER_SUBMIT, 0x0E01): Exchange removes the message after
# sending it, because sending a draft always files a copy in Sent Items (msgraph-sdk-dotnet issue 743)
# and has no saveToSentItems parameter.
# NOTE: not verified against Exchange Online; the Graph sandbox honours it.
DELETE_AFTER_SUBMIT_PROPERTY = {"id": "Boolean 0x0E01", "value": "true"}


@dataclass(frozen=True)
class OutgoingAttachment:
    """One attachment's bytes and metadata, ready for Graph."""

    name: str
    content_type: str
    data: bytes
    content_id: str | None = None
    is_inline: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def needs_upload_session(self) -> bool:
        return self.size >= GRAPH_UPLOAD_SESSION_MIN_BYTES

    def file_attachment(self) -> dict[str, Any]:
        """Return Graph's fileAttachment with the bytes in base64."""
        encoded = base64.b64encode(self.data).decode("ascii")
        return graph_attachment(self.name, self.content_type, encoded, self.content_id, self.is_inline)

    def attachment_item(self) -> dict[str, Any]:
        """Return the AttachmentItem of createUploadSession."""
        item: dict[str, Any] = {"attachmentType": "file", "name": self.name, "size": self.size,
                                "contentType": self.content_type, "isInline": self.is_inline}
        if self.content_id:
            item["contentId"] = self.content_id
        return item


def json_size(body: dict[str, Any]) -> int:
    """Return the length of body as requests serialises it (json.dumps with ASCII escapes)."""
    return len(json.dumps(body))


def send_as_draft(graph: GraphClient, mailbox: str, message: dict[str, Any],
                  attachments: list[OutgoingAttachment], save_to_sent_items: bool = True) -> None:
    """Create a draft of message, add the attachments, and send it; raise GraphError on failure."""
    user = mailbox_path(mailbox)
    draft, small, large = _split_attachments(message, attachments)
    if not save_to_sent_items:
        draft["singleValueExtendedProperties"] = [DELETE_AFTER_SUBMIT_PROPERTY]

    draft_id = graph.call("POST", f"{user}/messages", draft).json()["id"]
    logger.debug("Created draft for %s with %d attachments in it; adding %d small and %d large ones",
                 mask_address(mailbox), len(draft.get("attachments", [])), len(small), len(large))
    try:
        for file_attachment in small:
            graph.call("POST", f"{user}/messages/{draft_id}/attachments", file_attachment)
        for attachment in large:
            _upload(graph, f"{user}/messages/{draft_id}", attachment)
        graph.call("POST", f"{user}/messages/{draft_id}/send")
    except Exception:
        _delete_draft(graph, f"{user}/messages/{draft_id}")
        raise
    logger.debug("Sent the draft for %s", mask_address(mailbox))


def _split_attachments(message: dict[str, Any], attachments: list[OutgoingAttachment],
                       ) -> tuple[dict[str, Any], list[dict[str, Any]], list[OutgoingAttachment]]:
    """Return the draft with the small attachments that fit in one request, the other small ones as
    fileAttachments, and the ones that need an upload session."""
    draft = dict(message)
    in_draft: list[dict[str, Any]] = []
    separate: list[dict[str, Any]] = []
    size = json_size(draft)
    for attachment in attachments:
        if attachment.needs_upload_session:
            continue
        file_attachment = attachment.file_attachment()
        # Counts the "attachments" key and brackets for each attachment, so the sum never falls short.
        added = json_size(file_attachment) + len(', "attachments": []')
        # Once one does not fit, the rest go separately too, so Graph keeps the client's order.
        if not separate and size + added <= GRAPH_MAX_REQUEST_BYTES:
            in_draft.append(file_attachment)
            size += added
        else:
            # NOTE: an attachment just under 3 MiB is about 4 MiB in base64, so its request may exceed
            # Graph's 4 MB limit while an upload session still rejects it as too small.
            separate.append(file_attachment)
    if in_draft:
        draft["attachments"] = in_draft
    return draft, separate, [attachment for attachment in attachments if attachment.needs_upload_session]


def _upload(graph: GraphClient, draft_path: str, attachment: OutgoingAttachment) -> None:
    session = graph.call("POST", f"{draft_path}/attachments/createUploadSession",
                         {"AttachmentItem": attachment.attachment_item()}).json()
    upload_url = session["uploadUrl"]

    offset = 0
    total = attachment.size
    # Each round either sends a chunk the server had not received, or raises: at most this many rounds.
    for _ in range(total // GRAPH_UPLOAD_CHUNK_BYTES + 1):
        end = min(offset + GRAPH_UPLOAD_CHUNK_BYTES, total) - 1
        response = graph.upload_chunk(upload_url, attachment.data[offset:end + 1], f"bytes {offset}-{end}/{total}")
        logger.debug("Uploaded bytes %d-%d of %d of an attachment (status %d)", offset, end, total,
                     response.status_code)
        if response.status_code == 201:
            return
        offset = _next_expected_byte(response, offset)
    raise GraphError(f"The upload session of a {total}-byte attachment did not complete after all chunks "
                     "were sent.", status_code=None, transient=True)


def _next_expected_byte(response: Any, offset: int) -> int:
    """Return the first byte of Graph's nextExpectedRanges, e.g. ``["4194304-"]`` or ``["4194304"]``."""
    try:
        ranges = response.json()["nextExpectedRanges"]
        next_byte = int(str(ranges[0]).split("-")[0])
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise GraphError(f"The upload session returned {response.status_code} without a readable "
                         f"nextExpectedRanges: {exc!r}.", status_code=response.status_code,
                         transient=True) from exc
    if next_byte <= offset:
        raise GraphError(f"The upload session expects byte {next_byte} next, but byte {offset} was already "
                         "sent.", status_code=response.status_code, transient=True)
    return next_byte


def _delete_draft(graph: GraphClient, draft_path: str) -> None:
    try:
        graph.call("DELETE", draft_path)
    except GraphError as exc:
        if exc.status_code == 404:
            # The draft was sent before the error (a send whose 202 got lost), or deleted already.
            logger.debug("The draft to delete is gone already")
            return
        logger.warning("Could not delete the unsent draft (%s); it stays in the mailbox's Drafts folder", exc)
