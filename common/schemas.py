"""The JSON contract of POST /send-email, as the old Go service defined it, checked with marshmallow.

Field names stay those of the Go service (snake_case mail fields, Graph-style attachment fields);
fields added since are snake_case. Go's encoding/json writes a nil slice as ``null``, so list fields
accept null as "none".
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates_schema

from common.errors import ValidationFailed
from common.i18n import DEFAULT_LANGUAGE, translate
from common.recipients import normalise_recipients
from common.schema_fields import (CustomHeaders, boolean_field, content_id_validator, importance_field,
                                  no_line_break, recipient_list)

DEFAULT_ATTACHMENT_CONTENT_TYPE = "application/octet-stream"


def _common_messages(language: str) -> dict[str, str]:
    return {
        "required": translate("field_required", language),
        "null": translate("field_null", language),
    }


def _string(language: str, **kwargs: Any) -> fields.String:
    messages = {**_common_messages(language), "invalid": translate("field_not_string", language)}
    return fields.String(error_messages=messages, **kwargs)


def _base64_validator(language: str):
    def check(value: str) -> None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(translate("field_invalid_base64", language)) from exc

    return check


@lru_cache(maxsize=None)
def send_email_schema(language: str = DEFAULT_LANGUAGE) -> Schema:
    """Return the schema of the send request, with its error messages in language."""
    not_empty = translate("field_empty", language)

    class AttachmentSchema(Schema):
        class Meta:
            unknown = EXCLUDE

        name = _string(language, required=True, validate=[validate.Length(min=1, error=not_empty),
                                                          no_line_break(language)])
        contentBytes = _string(language, required=True, validate=_base64_validator(language))
        contentType = _string(language, load_default=DEFAULT_ATTACHMENT_CONTENT_TYPE,
                              validate=[validate.Length(min=1, error=not_empty), no_line_break(language)])
        # An inline image: the HTML body references it as cid:<content_id>.
        content_id = _string(language, load_default=None, allow_none=True,
                             validate=content_id_validator(language))
        is_inline = boolean_field(language, default=False)

        @validates_schema
        def inline_needs_content_id(self, data: dict[str, Any], **kwargs: Any) -> None:
            if data.get("is_inline") and not data.get("content_id"):
                raise ValidationError(translate("field_inline_without_content_id", language), "content_id")

        @post_load
        def normalise_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            data["is_inline"] = bool(data.get("is_inline"))
            return data

    class SendEmailSchema(Schema):
        # The Go service ignored unknown fields, and clients rely on that.
        class Meta:
            unknown = EXCLUDE

        recipients = recipient_list(
            language, required=True,
            validate=validate.Length(min=1, error=translate("field_empty_list", language)),
        )
        cc_recipients = recipient_list(language, load_default=list, allow_none=True)
        bcc_recipients = recipient_list(language, load_default=list, allow_none=True)
        reply_to = recipient_list(language, load_default=list, allow_none=True)
        subject = _string(language, load_default="", allow_none=True, validate=no_line_break(language))
        body_content = _string(language, load_default=None, allow_none=True)
        html_body_content = _string(language, load_default=None, allow_none=True)
        attachments = fields.List(
            fields.Nested(AttachmentSchema, error_messages={
                **_common_messages(language), "type": translate("field_not_object", language),
            }),
            load_default=list, allow_none=True,
            error_messages={**_common_messages(language), "invalid": translate("field_not_list", language)},
        )
        app_tag = _string(language, required=True, validate=validate.Length(min=1, error=not_empty))
        importance = importance_field(language)
        save_to_sent_items = boolean_field(language, default=True)
        custom_headers = CustomHeaders(language, load_default=dict, allow_none=True)

        @validates_schema
        def normalise_nulls(self, data: dict[str, Any], **kwargs: Any) -> None:
            for key in ("cc_recipients", "bcc_recipients", "reply_to", "attachments"):
                if data.get(key) is None:
                    data[key] = []
            if data.get("subject") is None:
                data["subject"] = ""
            if data.get("custom_headers") is None:
                data["custom_headers"] = {}
            if data.get("save_to_sent_items") is None:
                data["save_to_sent_items"] = True
            if data.get("importance"):
                data["importance"] = data["importance"].lower()

        @post_load
        def split_recipients(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            return normalise_recipients(data)

    return SendEmailSchema()


def load_send_request(payload: dict[str, Any], language: str = DEFAULT_LANGUAGE) -> dict[str, Any]:
    """Validate a send request and return the mail with defaults filled in.

    Raises ValidationFailed naming every failing field.
    """
    try:
        return send_email_schema(language).load(payload)
    except ValidationError as exc:
        failing = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        names = ", ".join(sorted(str(name) for name in failing))
        raise ValidationFailed(f"Invalid fields: {names}.", fields=failing, names=names) from exc
