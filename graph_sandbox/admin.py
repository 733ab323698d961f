"""The sandbox's own endpoints under ``/_sandbox``, for tests and scripts. Graph has none of them.

They need no token, because the sandbox listens on loopback and contains no real mail.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from graph_sandbox.context import sandbox_context
from graph_sandbox.errors import GraphError
from graph_sandbox.faults import parse_fault
from graph_sandbox.graph_request import empty_response

admin = Blueprint("admin", __name__, url_prefix="/_sandbox")


@admin.get("/health")
def health() -> Response:
    return jsonify({"status": "ok"})


@admin.get("/messages")
def list_messages() -> Response:
    """Return the accepted messages, oldest first, optionally only those of ``?mailbox=``."""
    mailbox = request.args.get("mailbox")
    messages = sandbox_context().state.sent_messages(mailbox)
    return jsonify({"messages": [sent.listing() for sent in messages]})


@admin.delete("/messages")
def clear_messages() -> Response:
    sandbox_context().state.clear_sent_messages()
    return empty_response(204)


@admin.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    sent = sandbox_context().state.sent_message(message_id)
    if sent is None:
        raise GraphError(404, "NotFound", f"No accepted message has the id {message_id!r}.")
    return jsonify(sent.listing())


@admin.get("/messages/<message_id>/attachments/<int:index>/$value")
def attachment_content(message_id: str, index: int) -> Response:
    """Return the bytes of the message's attachment number `index` (0-based, in listing order)."""
    sent = sandbox_context().state.sent_message(message_id)
    if sent is None:
        raise GraphError(404, "NotFound", f"No accepted message has the id {message_id!r}.")
    if index >= len(sent.attachments):
        raise GraphError(
            404,
            "NotFound",
            f"Message {message_id!r} has {len(sent.attachments)} attachment(s); index {index} is out of range.",
        )

    attachment = sent.attachments[index]
    return Response(attachment.data, status=200, content_type=attachment.content_type)


@admin.get("/stats")
def stats() -> Response:
    return jsonify(sandbox_context().state.stats())


@admin.delete("/stats")
def reset_stats() -> Response:
    sandbox_context().state.reset_stats()
    return empty_response(204)


@admin.post("/faults")
def add_fault() -> Response:
    spec = request.get_json(silent=True)
    try:
        fault = parse_fault(spec)
    except ValueError as error:
        raise GraphError(400, "InvalidFault", str(error)) from None

    sandbox_context().state.faults.add(fault)
    response = jsonify(fault.to_json())
    response.status_code = 201
    return response


@admin.get("/faults")
def list_faults() -> Response:
    return jsonify({"faults": sandbox_context().state.faults.as_json()})


@admin.delete("/faults")
def clear_faults() -> Response:
    sandbox_context().state.faults.clear()
    return empty_response(204)


@admin.delete("/faults/<fault_id>")
def remove_fault(fault_id: str) -> Response:
    if not sandbox_context().state.faults.remove(fault_id):
        raise GraphError(404, "NotFound", f"No active fault has the id {fault_id!r}.")
    return empty_response(204)


@admin.delete("/tokens")
def revoke_tokens() -> Response:
    """Forget every issued token, so the next Graph request with one gets 401."""
    sandbox_context().state.revoke_tokens()
    return empty_response(204)


@admin.post("/reset")
def reset() -> Response:
    """Forget messages, drafts, upload sessions, faults and counters, but keep issued tokens valid."""
    sandbox_context().state.reset()
    return empty_response(204)
