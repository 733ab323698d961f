"""The JSON contract of POST /send-email, as the old Go service defined it, checked with marshmallow.

Field names stay those of the Go service (snake_case mail fields, Graph-style attachment fields).
Go's encoding/json writes a nil slice as ``null``, so list fields accept null as "none".
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema

from common.errors import ValidationFailed
from common.i18n import DEFAULT_LANGUAGE, translate

DEFAULT_ATTACHMENT_CONTENT_TYPE = "application/octet-stream"


def _common_messages(language: str) -> dict[str, str]:
    return {
        "required": translate("field_required", language),
        "null": translate("field_null", language),
    }


def _string(language: str, **kwargs: Any) -> fields.String:
    messages = {**_common_messages(language), "invalid": translate("field_not_string", language)}
    return fields.String(error_messages=messages, **kwargs)


def _address_list(language: str, **kwargs: Any) -> fields.List:
    address = fields.Email(error_messages={
        **_common_messages(language),
        "invalid": translate("field_invalid_email", language, input="{input}"),
    })
    messages = {**_common_messages(language), "invalid": translate("field_not_list", language)}
    return fields.List(address, error_messages=messages, **kwargs)


def _base64_validator(language: str):
    def check(value: str) -> None:
        try:
            base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValidationError(translate("field_invalid_base64", language, reason=exc)) from exc

    return check


@lru_cache(maxsize=None)
def send_email_schema(language: str = DEFAULT_LANGUAGE) -> Schema:
    """Return the schema of the send request, with its error messages in language."""
    not_empty = translate("field_empty", language)

    class AttachmentSchema(Schema):
        class Meta:
            unknown = EXCLUDE

        name = _string(language, required=True, validate=validate.Length(min=1, error=not_empty))
        contentBytes = _string(language, required=True, validate=_base64_validator(language))
        contentType = _string(language, load_default=DEFAULT_ATTACHMENT_CONTENT_TYPE,
                              validate=validate.Length(min=1, error=not_empty))

    class SendEmailSchema(Schema):
        # The Go service ignored unknown fields, and clients rely on that.
        class Meta:
            unknown = EXCLUDE

        recipients = _address_list(
            language, required=True,
            validate=validate.Length(min=1, error=translate("field_empty_list", language)),
        )
        cc_recipients = _address_list(language, load_default=list, allow_none=True)
        bcc_recipients = _address_list(language, load_default=list, allow_none=True)
        subject = _string(language, load_default="", allow_none=True)
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

        @validates_schema
        def normalise_nulls(self, data: dict[str, Any], **kwargs: Any) -> None:
            for key in ("cc_recipients", "bcc_recipients", "attachments"):
                if data.get(key) is None:
                    data[key] = []
            if data.get("subject") is None:
                data["subject"] = ""

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
