"""Graph's mail endpoints: sendMail, drafts, small attachments, sending a draft, reading mail folders.

Every accepted message is stored as a SentMessage that ``/_sandbox/messages`` lists. Sent Items
lists those sent with saveToSentItems true, so a worker can look a message up by internetMessageId.
"""

from __future__ import annotations

import copy
import logging
import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from graph_sandbox.config import MIN_UPLOAD_SESSION_BYTES
from graph_sandbox.context import sandbox_context
from graph_sandbox.errors import GraphError
from graph_sandbox.graph_request import authenticate, empty_response, graph_operation, read_json
from graph_sandbox.resources import (
    attachment_resource,
    message_resource,
    metadata_url,
    select_properties,
)
from graph_sandbox.state import (
    Draft,
    IssuedToken,
    SentMessage,
    StoredAttachment,
    message_size_bytes,
    new_graph_id,
    utc_now,
)
from graph_sandbox.uploads import create_upload_session
from graph_sandbox.validation import (
    new_internet_message_id,
    parse_attachment_item,
    parse_file_attachment,
    parse_send_mail_parameters,
    validate_message,
    validate_recipients_for_sending,
)

logger = logging.getLogger(__name__)

graph = Blueprint("graph", __name__, url_prefix="/v1.0")

_IMMUTABLE_ID = re.compile(r'IdType\s*=\s*"?ImmutableId"?', re.IGNORECASE)
_FILTER_BY_INTERNET_MESSAGE_ID = re.compile(
    r"^\s*internetMessageId\s+eq\s+'((?:[^']|'')*)'\s*$", re.IGNORECASE
)
_SUPPORTED_QUERY_OPTIONS = {"$filter", "$top", "$skip", "$select"}
_DEFAULT_PAGE_SIZE = 10  # Graph's default page size for messages
_MAX_PAGE_SIZE = 1000
_MESSAGE_TOO_LARGE = "The message exceeds the maximum supported size."
_ITEM_NOT_FOUND = "The specified object was not found in the store."
# Sending a draft files it in Sent Items unless this MAPI property (PR_DELETE_AFTER_SUBMIT) is true.
_DELETE_AFTER_SUBMIT_ID = "boolean 0x0e01"


@graph.post("/users/<mailbox>/sendMail")
@graph_operation("sendMail")
def send_mail(mailbox: str, caller: IssuedToken) -> Response:
    context = sandbox_context()
    config = context.config
    if request.mimetype == "text/plain":
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "The Graph sandbox does not accept MIME content; send JSON with Content-Type: application/json.",
        )

    message, save_to_sent_items = parse_send_mail_parameters(read_json(config.max_request_bytes))
    attachments = validate_message(message)
    validate_recipients_for_sending(message, config.max_recipients)
    _check_message_size(message, attachments)

    sent = SentMessage(
        message_id=new_graph_id(),
        mailbox=mailbox,
        client_id=caller.client_id,
        message=message,
        attachments=attachments,
        save_to_sent_items=save_to_sent_items,
        internet_message_id=message.get("internetMessageId") or new_internet_message_id(),
        received_at=utc_now(),
        source="sendMail",
        visible_in_sent_items_at=time.time() + config.sent_items_delay_seconds,
    )
    context.state.add_sent_message(sent)
    logger.debug(
        "Accepted message %s for mailbox %s with %d attachment(s)", sent.message_id, mailbox, len(attachments)
    )
    return empty_response(202)


@graph.post("/users/<mailbox>/messages")
@graph_operation("createMessage")
def create_message(mailbox: str, caller: IssuedToken) -> Response:
    context = sandbox_context()
    message = read_json(context.config.max_request_bytes)
    if not isinstance(message, dict):
        raise GraphError(
            400, "RequestBodyRead", "The request body must be a JSON object of type microsoft.graph.message."
        )
    attachments = validate_message(message)
    _check_message_size(message, attachments)

    stored_message = copy.deepcopy(message)
    stored_message.pop("attachments", None)
    immutable_id = any(_IMMUTABLE_ID.search(value) for value in request.headers.getlist("Prefer"))
    draft = Draft(
        draft_id=new_graph_id(),
        mailbox=mailbox,
        client_id=caller.client_id,
        message=stored_message,
        internet_message_id=message.get("internetMessageId") or new_internet_message_id(),
        immutable_id=immutable_id,
        created_at=utc_now(),
        attachments=attachments,
    )
    context.state.add_draft(draft)

    response = jsonify(
        {
            "@odata.context": metadata_url(f"users('{mailbox}')/messages/$entity"),
            **_draft_resource(draft),
        }
    )
    response.status_code = 201
    if immutable_id:
        response.headers["Preference-Applied"] = 'IdType="ImmutableId"'
    return response


@graph.get("/users/<mailbox>/messages/<message_id>")
@graph_operation("getMessage")
def get_message(mailbox: str, caller: IssuedToken, message_id: str) -> Response:
    state = sandbox_context().state
    draft = state.draft(mailbox, message_id, caller.client_id)
    if draft is not None:
        resource = _draft_resource(draft)
    else:
        sent = _find_sent_item(mailbox, caller.client_id, message_id)
        resource = _sent_item_resource(sent)

    return jsonify(
        {
            "@odata.context": metadata_url(f"users('{mailbox}')/messages/$entity"),
            **select_properties(resource, request.args.get("$select")),
        }
    )


@graph.delete("/users/<mailbox>/messages/<message_id>")
@graph_operation("deleteMessage")
def delete_message(mailbox: str, caller: IssuedToken, message_id: str) -> Response:
    state = sandbox_context().state
    if state.draft(mailbox, message_id, caller.client_id) is None:
        raise GraphError(404, "ErrorItemNotFound", _ITEM_NOT_FOUND)
    state.take_draft(message_id)
    return empty_response(204)


@graph.post("/users/<mailbox>/messages/<message_id>/attachments")
@graph_operation("addAttachment")
def add_attachment(mailbox: str, caller: IssuedToken, message_id: str) -> Response:
    context = sandbox_context()
    attachment = parse_file_attachment(read_json(context.config.max_request_bytes))

    with context.state.locked():
        draft = _existing_draft(mailbox, caller, message_id)
        _check_message_size(draft.message, [*draft.attachments, attachment])
        draft.attachments.append(attachment)

    response = jsonify(
        {
            "@odata.context": metadata_url(
                f"users('{mailbox}')/messages('{message_id}')/attachments/$entity"
            ),
            **attachment_resource(attachment, utc_now()),
        }
    )
    response.status_code = 201
    return response


@graph.post("/users/<mailbox>/messages/<message_id>/attachments/createUploadSession")
@graph_operation("createUploadSession")
def create_attachment_upload_session(mailbox: str, caller: IssuedToken, message_id: str) -> Response:
    context = sandbox_context()
    item = parse_attachment_item(read_json(context.config.max_request_bytes))
    if item["size"] < MIN_UPLOAD_SESSION_BYTES:
        raise GraphError(
            400,
            "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
            f"The attachment size {item['size']} is less than the minimum size of {MIN_UPLOAD_SESSION_BYTES} "
            "bytes for an upload session. Attach smaller files with POST .../attachments.",
        )
    draft = _existing_draft(mailbox, caller, message_id)

    response = jsonify(create_upload_session(draft, item))
    response.status_code = 201
    return response


@graph.post("/users/<mailbox>/messages/<message_id>/send")
@graph_operation("send")
def send_draft(mailbox: str, caller: IssuedToken, message_id: str) -> Response:
    context = sandbox_context()
    config = context.config
    draft = _existing_draft(mailbox, caller, message_id)
    validate_recipients_for_sending(draft.message, config.max_recipients)
    _check_message_size(draft.message, draft.attachments)

    # Taking the draft atomically makes a second, concurrent send of it fail with 404.
    if context.state.take_draft(message_id) is None:
        raise GraphError(404, "ErrorItemNotFound", _ITEM_NOT_FOUND)

    # Exchange gives the copy in Sent Items a new id unless the draft was created with an immutable id.
    sent = SentMessage(
        message_id=message_id if draft.immutable_id else new_graph_id(),
        mailbox=draft.mailbox,
        client_id=caller.client_id,
        message=draft.message,
        attachments=draft.attachments,
        save_to_sent_items=not _deletes_after_submit(draft.message),
        internet_message_id=draft.internet_message_id,
        received_at=utc_now(),
        source="draft",
        visible_in_sent_items_at=time.time() + config.sent_items_delay_seconds,
    )
    context.state.add_sent_message(sent)
    logger.debug(
        "Sent draft %s of mailbox %s as message %s with %d attachment(s)",
        message_id,
        mailbox,
        sent.message_id,
        len(sent.attachments),
    )
    return empty_response(202)


@graph.get("/users/<mailbox>/mailFolders/<folder>/messages")
@graph_operation("listMessages")
def list_folder_messages(mailbox: str, caller: IssuedToken, folder: str) -> Response:
    unsupported = sorted(
        key for key in request.args if key.startswith("$") and key not in _SUPPORTED_QUERY_OPTIONS
    )
    if unsupported:
        raise GraphError(
            400,
            "BadRequest",
            f"The Graph sandbox does not support the query option(s) {', '.join(unsupported)}.",
        )
    requested_id = _internet_message_id_filter(request.args.get("$filter"))
    top = _query_int("$top", _DEFAULT_PAGE_SIZE, 1, _MAX_PAGE_SIZE)
    skip = _query_int("$skip", 0, 0, None)

    resources = _folder_resources(mailbox, caller, folder)
    if requested_id is not None:
        resources = [resource for resource in resources if resource["internetMessageId"] == requested_id]
    page = resources[skip : skip + top]

    body: dict[str, Any] = {
        "@odata.context": metadata_url(f"users('{mailbox}')/mailFolders('{folder}')/messages"),
        "value": [select_properties(resource, request.args.get("$select")) for resource in page],
    }
    if skip + top < len(resources):
        next_args = {**request.args.to_dict(), "$skip": str(skip + top), "$top": str(top)}
        query = "&".join(f"{key}={value}" for key, value in next_args.items())
        body["@odata.nextLink"] = f"{request.base_url}?{query}"
    return jsonify(body)


@graph.route("/me/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def me_endpoint(rest: str) -> Response:
    authenticate()
    raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")


def _folder_resources(mailbox: str, caller: IssuedToken, folder: str) -> list[dict[str, Any]]:
    state = sandbox_context().state
    if folder.lower() == "sentitems":
        return [_sent_item_resource(sent) for sent in state.sent_items(mailbox, caller.client_id)]
    if folder.lower() == "drafts":
        return [_draft_resource(draft) for draft in state.drafts(mailbox, caller.client_id)]
    raise GraphError(
        404,
        "ErrorItemNotFound",
        f"The Graph sandbox has only the mail folders 'sentitems' and 'drafts', not {folder!r}.",
    )


def _internet_message_id_filter(expression: str | None) -> str | None:
    if expression is None:
        return None
    match = _FILTER_BY_INTERNET_MESSAGE_ID.match(expression)
    if match is None:
        raise GraphError(
            400,
            "BadRequest",
            "Invalid filter clause: the Graph sandbox supports only internetMessageId eq '<id>'.",
        )
    return match.group(1).replace("''", "'")


def _query_int(name: str, default: int, minimum: int, maximum: int | None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum or (maximum is not None and value > maximum):
        raise GraphError(400, "BadRequest", f"Invalid value {raw!r} for query option {name}.")
    return value


def _existing_draft(mailbox: str, caller: IssuedToken, message_id: str) -> Draft:
    draft = sandbox_context().state.draft(mailbox, message_id, caller.client_id)
    if draft is None:
        raise GraphError(404, "ErrorItemNotFound", _ITEM_NOT_FOUND)
    return draft


def _find_sent_item(mailbox: str, client_id: str, message_id: str) -> SentMessage:
    for sent in sandbox_context().state.sent_items(mailbox, client_id):
        if sent.message_id == message_id:
            return sent
    raise GraphError(404, "ErrorItemNotFound", _ITEM_NOT_FOUND)


def _deletes_after_submit(message: dict[str, Any]) -> bool:
    """Return whether the draft sets PidTagDeleteAfterSubmit (0x0E01), so no copy goes to Sent Items."""
    for prop in message.get("singleValueExtendedProperties") or []:
        if not isinstance(prop, dict):
            continue
        if str(prop.get("id", "")).lower() == _DELETE_AFTER_SUBMIT_ID and str(prop.get("value")).lower() == "true":
            return True
    return False


def _check_message_size(message: dict[str, Any], attachments: list[StoredAttachment]) -> None:
    limit = sandbox_context().config.max_message_bytes
    if message_size_bytes(message, attachments) > limit:
        raise GraphError(413, "ErrorMessageSizeExceeded", _MESSAGE_TOO_LARGE)


def _draft_resource(draft: Draft) -> dict[str, Any]:
    return message_resource(
        message_id=draft.draft_id,
        mailbox=draft.mailbox,
        message=draft.message,
        attachments=draft.attachments,
        internet_message_id=draft.internet_message_id,
        created_at=draft.created_at,
        sent_at=None,
        folder="drafts",
    )


def _sent_item_resource(sent: SentMessage) -> dict[str, Any]:
    return message_resource(
        message_id=sent.message_id,
        mailbox=sent.mailbox,
        message=sent.message,
        attachments=sent.attachments,
        internet_message_id=sent.internet_message_id,
        created_at=sent.received_at,
        sent_at=sent.received_at,
        folder="sentitems",
    )
