"""Validation of message JSON the way Graph's OData reader and Exchange check it.

Shape errors (unknown property, wrong JSON type, bad base64) are Graph's 400 ``RequestBodyRead``.
Recipient errors are Exchange's 400 ``ErrorInvalidRecipients`` and are only checked when a message is
sent, because a draft may be saved without recipients. Property names are case-sensitive, as OData
defines them. Action parameter names such as ``message`` / ``Message`` are not, because Graph's
documentation itself spells them both ways.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from typing import Any, Iterable

from graph_sandbox.errors import GraphError
from graph_sandbox.state import StoredAttachment, new_graph_id

FILE_ATTACHMENT_TYPE = "#microsoft.graph.fileAttachment"
_OTHER_ATTACHMENT_TYPES = {"#microsoft.graph.itemAttachment", "#microsoft.graph.referenceAttachment"}

# Properties of microsoft.graph.message in Graph v1.0, including read-only ones Graph ignores on input.
MESSAGE_PROPERTIES = frozenset(
    {
        "attachments",
        "bccRecipients",
        "body",
        "bodyPreview",
        "categories",
        "ccRecipients",
        "changeKey",
        "conversationId",
        "conversationIndex",
        "createdDateTime",
        "extensions",
        "flag",
        "from",
        "hasAttachments",
        "id",
        "importance",
        "inferenceClassification",
        "internetMessageHeaders",
        "internetMessageId",
        "isDeliveryReceiptRequested",
        "isDraft",
        "isRead",
        "isReadReceiptRequested",
        "lastModifiedDateTime",
        "multiValueExtendedProperties",
        "parentFolderId",
        "receivedDateTime",
        "replyTo",
        "sender",
        "sentDateTime",
        "singleValueExtendedProperties",
        "subject",
        "toRecipients",
        "uniqueBody",
        "webLink",
    }
)
FILE_ATTACHMENT_PROPERTIES = frozenset(
    {
        "id",
        "name",
        "contentType",
        "contentBytes",
        "contentId",
        "contentLocation",
        "isInline",
        "size",
        "lastModifiedDateTime",
    }
)
RECIPIENT_FIELDS = ("toRecipients", "ccRecipients", "bccRecipients")
_RECIPIENT_LISTS = (*RECIPIENT_FIELDS, "replyTo")
_SINGLE_RECIPIENTS = ("from", "sender")
_BOOLEAN_PROPERTIES = ("isDeliveryReceiptRequested", "isReadReceiptRequested", "isRead", "isDraft")
_BODY_TYPES = {"text": "Text", "html": "HTML"}
_IMPORTANCE = {"low", "normal", "high"}

_ADDRESS = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\.]+(\.[^@\s<>(),;:\"\[\]\\.]+)*$")
_INTERNET_MESSAGE_ID = re.compile(r"^<[^<>\s@]+@[^<>\s@]+>$")


def parse_send_mail_parameters(body: Any) -> tuple[dict[str, Any], bool]:
    """Return the message and saveToSentItems of a sendMail request body."""
    if not isinstance(body, dict):
        raise _read_error("The request body of sendMail must be a JSON object with a 'message' property.")

    parameters = _action_parameters(body, "sendMail", ("message", "saveToSentItems"))
    message = parameters.get("message")
    if message is None:
        # NOTE: Exchange's exact code and text for a missing message are not documented.
        raise GraphError(400, "ErrorInvalidParameter", "The value of the parameter 'Message' is empty.")
    if not isinstance(message, dict):
        raise _node_error("Message", message, "StartObject")

    save = parameters.get("saveToSentItems")
    if save is None:
        return message, True
    if not isinstance(save, bool):
        raise _read_error(
            "Cannot convert a primitive value to the expected type 'Edm.Boolean'. "
            "See the inner exception for more details."
        )
    return message, save


def parse_attachment_item(body: Any) -> dict[str, Any]:
    """Return the AttachmentItem of a createUploadSession request body, validated."""
    if not isinstance(body, dict):
        raise _read_error(
            "The request body of createUploadSession must be a JSON object with 'AttachmentItem'."
        )

    item = _action_parameters(body, "createUploadSession", ("AttachmentItem",)).get("AttachmentItem")
    if not isinstance(item, dict):
        raise GraphError(
            400, "ErrorInvalidParameter", "The value of the parameter 'AttachmentItem' is empty."
        )

    if str(item.get("attachmentType", "")).lower() != "file":
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            "The Graph sandbox supports only upload sessions with attachmentType 'file'.",
        )
    if not isinstance(item.get("name"), str) or not item["name"]:
        raise GraphError(400, "ErrorInvalidRequest", "AttachmentItem.name is required.")
    size = item.get("size")
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise GraphError(
            400, "ErrorInvalidRequest", "AttachmentItem.size must be a positive number of bytes."
        )
    _check_optional(item, "contentType", str, "Edm.String")
    _check_optional(item, "contentId", str, "Edm.String")
    _check_optional(item, "isInline", bool, "Edm.Boolean")
    return item


def validate_message(message: dict[str, Any]) -> list[StoredAttachment]:
    """Check the message's shape and return its attachments with their bytes decoded."""
    _reject_unknown(message, MESSAGE_PROPERTIES, "message")

    _check_optional(message, "subject", str, "Edm.String")
    _check_body(message.get("body"))
    for name in _RECIPIENT_LISTS:
        _check_recipient_list(message, name)
    for name in _SINGLE_RECIPIENTS:
        if message.get(name) is not None:
            _check_recipient(message[name], name)
    for name in _BOOLEAN_PROPERTIES:
        _check_optional(message, name, bool, "Edm.Boolean")
    _check_importance(message.get("importance"))
    _check_internet_message_headers(message.get("internetMessageHeaders"))
    if message.get("internetMessageId") is not None:
        validate_internet_message_id(message["internetMessageId"])

    attachments = message.get("attachments")
    if attachments is None:
        return []
    if not isinstance(attachments, list):
        raise _node_error("attachments", attachments, "StartArray")
    return [parse_file_attachment(attachment) for attachment in attachments]


def validate_recipients_for_sending(message: dict[str, Any], max_recipients: int) -> None:
    """Raise ErrorInvalidRecipients unless the message has 1..max_recipients resolvable recipients."""
    addresses = list(_recipient_addresses(message))
    if not addresses:
        raise _recipients_error("A message can't be sent because it contains no recipients.")
    if len(addresses) > max_recipients:
        # NOTE: Exchange allows 500 recipients per message, but Graph's code for exceeding it is not documented.
        raise _recipients_error(
            f"The message has {len(addresses)} recipients, but at most {max_recipients} are allowed per message."
        )
    for address in addresses:
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise _recipients_error(
                f'Recipient "{address or ""}" isn\'t resolved. '
                "All recipients must be resolved before a message can be submitted."
            )


def parse_file_attachment(attachment: Any) -> StoredAttachment:
    """Validate a fileAttachment and decode its contentBytes."""
    if not isinstance(attachment, dict):
        raise _node_error("attachments", attachment, "StartObject")

    odata_type = attachment.get("@odata.type")
    if odata_type is None:
        raise _read_error(
            f"An attachment must specify its @odata.type, for example '{FILE_ATTACHMENT_TYPE}'."
        )
    if odata_type in _OTHER_ATTACHMENT_TYPES:
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The Graph sandbox supports only {FILE_ATTACHMENT_TYPE} attachments, got {odata_type!r}.",
        )
    if odata_type != FILE_ATTACHMENT_TYPE:
        raise _read_error(
            f"A type named '{odata_type}' could not be resolved by the model. "
            "When a model is available, each type name must resolve to a valid type."
        )
    _reject_unknown(attachment, FILE_ATTACHMENT_PROPERTIES, "fileAttachment")

    name = attachment.get("name")
    if not isinstance(name, str) or not name:
        # NOTE: Graph's handling of a nameless fileAttachment is not documented, so the sandbox rejects it.
        raise GraphError(400, "ErrorInvalidRequest", "A fileAttachment needs a non-empty 'name'.")
    _check_optional(attachment, "contentType", str, "Edm.String")
    _check_optional(attachment, "contentId", str, "Edm.String")
    _check_optional(attachment, "isInline", bool, "Edm.Boolean")

    return StoredAttachment(
        attachment_id=new_graph_id(),
        name=name,
        content_type=attachment.get("contentType") or "application/octet-stream",
        data=_decode_content_bytes(attachment.get("contentBytes"), name),
        is_inline=bool(attachment.get("isInline")),
        content_id=attachment.get("contentId"),
        received=attachment,
    )


def validate_internet_message_id(value: Any) -> str:
    if not isinstance(value, str) or not _INTERNET_MESSAGE_ID.match(value):
        # NOTE: Graph's reaction to a malformed internetMessageId is not documented. The sandbox
        # requires the RFC 5322 form, so a client cannot rely on an id that Exchange might rewrite.
        raise GraphError(
            400,
            "ErrorInvalidRequest",
            f"The internetMessageId {value!r} is invalid; expected the form <local-part@domain>.",
        )
    return value


def new_internet_message_id() -> str:
    return f"<{secrets.token_hex(16)}@sandbox.graph.local>"


def _action_parameters(body: dict[str, Any], action: str, names: Iterable[str]) -> dict[str, Any]:
    by_lower = {name.lower(): name for name in names}
    parameters: dict[str, Any] = {}
    for key, value in body.items():
        if key.startswith("@"):
            continue
        canonical = by_lower.get(key.lower())
        if canonical is None:
            raise _read_error(
                f"The parameter '{key}' in the request payload is not a valid parameter "
                f"for the operation '{action}'."
            )
        parameters[canonical] = value
    return parameters


def _recipient_addresses(message: dict[str, Any]) -> Iterable[Any]:
    for name in RECIPIENT_FIELDS:
        for recipient in message.get(name) or []:
            yield recipient.get("emailAddress", {}).get("address")


def _check_body(body: Any) -> None:
    if body is None:
        return
    if not isinstance(body, dict):
        raise _node_error("body", body, "StartObject")
    _reject_unknown(body, {"contentType", "content"}, "itemBody")
    _check_optional(body, "content", str, "Edm.String")
    content_type = body.get("contentType")
    if content_type is None:
        return
    if not isinstance(content_type, str) or content_type.lower() not in _BODY_TYPES:
        raise _read_error(
            f"Cannot convert the literal '{content_type}' to the expected type 'microsoft.graph.bodyType'."
        )


def _check_importance(importance: Any) -> None:
    if importance is None:
        return
    if not isinstance(importance, str) or importance.lower() not in _IMPORTANCE:
        raise _read_error(
            f"Cannot convert the literal '{importance}' to the expected type 'microsoft.graph.importance'."
        )


def _check_recipient_list(message: dict[str, Any], name: str) -> None:
    if name not in message:
        return
    recipients = message[name]
    if recipients is None:
        raise _read_error(
            f"A null value was found for the property named '{name}', which has the expected type "
            "'Collection(microsoft.graph.recipient)[Nullable=False]'. The expected type "
            "'Collection(microsoft.graph.recipient)[Nullable=False]' does not allow null values."
        )
    if not isinstance(recipients, list):
        raise _node_error(name, recipients, "StartArray")
    for recipient in recipients:
        _check_recipient(recipient, name)


def _check_recipient(recipient: Any, property_name: str) -> None:
    if not isinstance(recipient, dict):
        raise _node_error(property_name, recipient, "StartObject")
    _reject_unknown(recipient, {"emailAddress"}, "recipient")
    address = recipient.get("emailAddress")
    if address is None:
        raise _recipients_error("A recipient has no emailAddress.")
    if not isinstance(address, dict):
        raise _node_error("emailAddress", address, "StartObject")
    _reject_unknown(address, {"address", "name"}, "emailAddress")
    _check_optional(address, "address", str, "Edm.String")
    _check_optional(address, "name", str, "Edm.String")


def _check_internet_message_headers(headers: Any) -> None:
    if headers is None:
        return
    if not isinstance(headers, list):
        raise _node_error("internetMessageHeaders", headers, "StartArray")
    for header in headers:
        if not isinstance(header, dict):
            raise _node_error("internetMessageHeaders", header, "StartObject")
        _reject_unknown(header, {"name", "value"}, "internetMessageHeader")
        _check_optional(header, "name", str, "Edm.String")
        _check_optional(header, "value", str, "Edm.String")
        name = header.get("name") or ""
        if not name[:2].lower() == "x-":
            raise GraphError(
                400,
                "InvalidInternetMessageHeader",
                f"The internet message header name '{name}' should start with 'x-' or 'X-'.",
            )


def _decode_content_bytes(content: Any, name: str) -> bytes:
    if content is None:
        raise GraphError(400, "ErrorInvalidRequest", f"The fileAttachment '{name}' has no contentBytes.")
    if not isinstance(content, str):
        raise _node_error("contentBytes", content, "PrimitiveValue")
    # .NET's base64 decoder, which Graph uses, skips whitespace but nothing else.
    compact = "".join(content.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise _read_error(
            f"Cannot convert the literal '{compact[:40]}' to the expected type 'Edm.Binary'."
        ) from None


def _check_optional(obj: dict[str, Any], name: str, kind: type, edm_type: str) -> None:
    value = obj.get(name)
    if value is None:
        return
    if isinstance(value, (dict, list)):
        raise _node_error(name, value, "PrimitiveValue")
    if not isinstance(value, kind) or (kind is not bool and isinstance(value, bool)):
        raise _read_error(
            f"Cannot convert a primitive value to the expected type '{edm_type}'. "
            "See the inner exception for more details."
        )


def _reject_unknown(obj: dict[str, Any], known: Iterable[str], type_name: str) -> None:
    known_names = set(known)
    for key in obj:
        # '@odata.type' and 'name@odata.type' are annotations, which OData allows on any object.
        if "@" in key:
            continue
        if key not in known_names:
            raise _read_error(
                f"The property '{key}' does not exist on type 'microsoft.graph.{type_name}'. Make sure to "
                "only use property names that are defined by the type or mark the type as open type."
            )


def _node_error(name: str, value: Any, expected: str) -> GraphError:
    found = "PrimitiveValue"
    if isinstance(value, dict):
        found = "StartObject"
    elif isinstance(value, list):
        found = "StartArray"
    return _read_error(
        f"An unexpected '{found}' node was found for property named '{name}' when reading "
        f"from the JSON reader. A '{expected}' node was expected."
    )


def _read_error(message: str) -> GraphError:
    return GraphError(400, "RequestBodyRead", message)


def _recipients_error(detail: str) -> GraphError:
    return GraphError(400, "ErrorInvalidRecipients", f"At least one recipient isn't valid., {detail}")
