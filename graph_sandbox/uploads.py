"""Upload sessions for large attachments, as Outlook serves them (Graph docs: outlook-large-attachments).

createUploadSession returns a pre-authorised ``uploadUrl``. The client PUTs the file to it in
order, in chunks of at most 4 MB. Each chunk has ``Content-Range: bytes {start}-{end}/{total}``
and no Authorization header. An intermediate chunk gets 200 with the next expected byte, the
last one 201 with the attachment's URL in ``Location``; DELETE cancels the session.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, g, jsonify, request

from graph_sandbox.config import MAX_UPLOAD_CHUNK_BYTES
from graph_sandbox.context import sandbox_context
from graph_sandbox.errors import GraphError
from graph_sandbox.graph_request import empty_response, read_body, request_slot
from graph_sandbox.resources import format_expiration, metadata_url
from graph_sandbox.state import (
    Draft,
    StoredAttachment,
    UploadSession,
    message_size_bytes,
    new_graph_id,
    utc_now,
)

uploads = Blueprint("uploads", __name__)

_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+)\s*$")
_SESSION_NOT_FOUND = "The upload session was not found. It may have completed, expired or been cancelled."


def create_upload_session(draft: Draft, item: dict[str, Any]) -> dict[str, Any]:
    """Open an upload session for the AttachmentItem and return the uploadSession resource."""
    context = sandbox_context()
    session = UploadSession(
        session_id=secrets.token_urlsafe(18),
        auth_token=secrets.token_urlsafe(32),
        draft_id=draft.draft_id,
        mailbox=draft.mailbox,
        client_id=draft.client_id,
        name=item["name"],
        content_type=item.get("contentType") or "application/octet-stream",
        size=item["size"],
        is_inline=bool(item.get("isInline")),
        content_id=item.get("contentId"),
        expires_at=utc_now() + timedelta(seconds=context.config.upload_session_lifetime_seconds),
    )
    context.state.add_upload_session(session)

    # Outlook's uploadUrl points at another host with the token in the query. The sandbox serves the URL itself.
    upload_url = (
        f"{request.host_url}api/v2.0/AttachmentSessions/{session.session_id}?authtoken={session.auth_token}"
    )
    return {
        "@odata.context": metadata_url("microsoft.graph.uploadSession"),
        "uploadUrl": upload_url,
        "expirationDateTime": format_expiration(session.expires_at),
        "nextExpectedRanges": ["0-"],
    }


@uploads.route("/api/v2.0/AttachmentSessions/<session_id>", methods=["PUT", "DELETE"])
def upload_session_endpoint(session_id: str) -> Response:
    g.operation = "uploadChunk"
    session = _authorized_session(session_id)

    with request_slot(session.client_id, session.mailbox, "uploadChunk"):
        if request.method == "DELETE":
            sandbox_context().state.remove_upload_session(session_id)
            return empty_response(204)
        return _receive_chunk(session)


def _authorized_session(session_id: str) -> UploadSession:
    state = sandbox_context().state
    session = state.upload_session(session_id)
    if session is None:
        raise GraphError(404, "ErrorItemNotFound", _SESSION_NOT_FOUND)
    if not hmac.compare_digest(request.args.get("authtoken", ""), session.auth_token):
        raise GraphError(401, "InvalidAuthenticationToken", "The authtoken of the upload URL is invalid.")
    if "Authorization" in request.headers:
        # NOTE: Outlook's docs only say "do not specify an Authorization header". The sandbox rejects
        # the header, so a client that sends its Graph token to the upload host is caught.
        raise GraphError(
            401,
            "InvalidAuthenticationToken",
            "Do not send an Authorization header to a pre-authenticated upload URL.",
        )
    if session.expires_at <= utc_now():
        state.remove_upload_session(session_id)
        raise GraphError(
            401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired."
        )
    return session


def _receive_chunk(session: UploadSession) -> Response:
    start, end, total = _parse_content_range(request.headers.get("Content-Range"))
    if total != session.size:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The current upload session is for {session.size} total bytes, but the current "
            f"fragment declares a total of {total}.",
        )
    if end - start + 1 > MAX_UPLOAD_CHUNK_BYTES:
        raise GraphError(
            413,
            "RequestEntityTooLarge",
            f"A fragment can carry at most {MAX_UPLOAD_CHUNK_BYTES} bytes, got {end - start + 1}.",
        )
    data = read_body(MAX_UPLOAD_CHUNK_BYTES)
    if len(data) != end - start + 1:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "The Content-Range header length does not match the provided number of bytes.",
        )

    context = sandbox_context()
    with context.state.locked():
        draft = _append_chunk(session, start, end, data)
        if len(session.received) < session.size:
            return _progress(session)

        attachment = StoredAttachment(
            attachment_id=new_graph_id(),
            name=session.name,
            content_type=session.content_type,
            data=bytes(session.received),
            is_inline=session.is_inline,
            content_id=session.content_id,
            received={
                "@odata.type": "#microsoft.graph.fileAttachment",
                "name": session.name,
                "contentType": session.content_type,
                "isInline": session.is_inline,
                "contentId": session.content_id,
            },
        )
        draft.attachments.append(attachment)
        context.state.remove_upload_session(session.session_id)

    response = empty_response(201)
    response.headers["Location"] = (
        f"{request.host_url}api/v2.0/Users('{session.mailbox}')/Messages('{session.draft_id}')"
        f"/Attachments('{attachment.attachment_id}')"
    )
    return response


def _append_chunk(session: UploadSession, start: int, end: int, data: bytes) -> Draft:
    """Append a chunk under the state lock and return the draft it belongs to."""
    state = sandbox_context().state
    if state.upload_session(session.session_id) is None:
        raise GraphError(404, "ErrorItemNotFound", _SESSION_NOT_FOUND)

    # NOTE: Outlook documents only that bytes must be uploaded in order, so the status and code for
    # a fragment out of order (416 invalidRange) are the sandbox's guess.
    expected = len(session.received)
    if start < expected:
        raise GraphError(
            416,
            "invalidRange",
            f"The uploaded fragment overlaps with data that has already been received. "
            f"The next expected byte is {expected}.",
        )
    if start > expected:
        raise GraphError(
            416,
            "invalidRange",
            f"The uploaded fragment starts at byte {start}, but the next expected byte is {expected}. "
            "Upload the bytes in order.",
        )

    draft = state.draft(session.mailbox, session.draft_id, session.client_id)
    if draft is None:
        raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
    if (
        message_size_bytes(draft.message, draft.attachments) + end + 1
        > sandbox_context().config.max_message_bytes
    ):
        raise GraphError(413, "ErrorMessageSizeExceeded", "The message exceeds the maximum supported size.")

    session.received.extend(data)
    return draft


def _progress(session: UploadSession) -> Response:
    # Outlook's response to an intermediate chunk uses REST v2.0 casing: ExpirationDateTime, nextExpectedRanges.
    return jsonify(
        {
            "@odata.context": (
                f"{request.host_url}api/v2.0/$metadata#Users('{session.mailbox}')"
                f"/Messages('{session.draft_id}')/AttachmentSessions/$entity"
            ),
            "ExpirationDateTime": format_expiration(session.expires_at),
            "nextExpectedRanges": [str(len(session.received))],
        }
    )


def _parse_content_range(header: str | None) -> tuple[int, int, int]:
    if not header:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "The Content-Range header is missing; expected 'bytes {start}-{end}/{total}'.",
        )
    match = _CONTENT_RANGE.match(header)
    if match is None:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The Content-Range header {header!r} is invalid; expected 'bytes {{start}}-{{end}}/{{total}}'.",
        )
    start, end, total = (int(part) for part in match.groups())
    if end < start or end >= total:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The Content-Range header {header!r} is invalid: the range must lie inside 0-{total - 1}.",
        )
    return start, end, total
