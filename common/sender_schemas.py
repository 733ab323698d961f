"""The JSON contract of the admin endpoints, checked with marshmallow.

Unlike the send request, admin requests reject unknown fields: a typo in a field name of a PATCH
would otherwise be a silent no-op.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from common.errors import ValidationFailed
from common.i18n import DEFAULT_LANGUAGE, translate
from common.settings import DEFAULT_KEY_GRACE_SECONDS, MAX_KEY_GRACE_SECONDS

APP_TAG_PATTERN = re.compile(r"^[a-z0-9_-]{2,50}$")
MAX_DISPLAY_NAME_LENGTH = 256


class StrictBoolean(fields.Boolean):
    """A JSON true or false; marshmallow's Boolean also takes 1, "yes" and "on"."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid")
        return value


class StrictInteger(fields.Integer):
    """A JSON integer; marshmallow's Integer also takes true, "5" and 5.0."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return value


def _messages(language: str, invalid_key: str) -> dict[str, str]:
    return {
        "required": translate("field_required", language),
        "null": translate("field_null", language),
        "invalid": translate(invalid_key, language),
    }


def _app_tag(language: str) -> fields.String:
    return fields.String(required=True, error_messages=_messages(language, "field_not_string"),
                         validate=validate.Regexp(APP_TAG_PATTERN, error=translate(
                             "field_invalid_app_tag", language, input="{input}")))


def _mailbox(language: str, **kwargs: Any) -> fields.Email:
    messages = {**_messages(language, "field_not_string"),
                "invalid": translate("field_invalid_email", language, input="{input}")}
    return fields.Email(error_messages=messages, **kwargs)


def _display_name(language: str) -> fields.String:
    too_long = translate("field_too_long", language, max=MAX_DISPLAY_NAME_LENGTH)
    return fields.String(allow_none=True, error_messages=_messages(language, "field_not_string"),
                         validate=validate.Length(max=MAX_DISPLAY_NAME_LENGTH, error=too_long))


def _enabled(language: str) -> StrictBoolean:
    return StrictBoolean(error_messages=_messages(language, "field_not_boolean"))


def _schema_messages(language: str) -> dict[str, str]:
    return {"unknown": translate("field_unknown", language)}


@lru_cache(maxsize=None)
def sender_create_schema(language: str = DEFAULT_LANGUAGE) -> Schema:
    """Return the schema of POST /senders, with its error messages in language."""

    class SenderCreateSchema(Schema):
        class Meta:
            unknown = RAISE

        error_messages = _schema_messages(language)

        app_tag = _app_tag(language)
        mailbox = _mailbox(language, required=True)
        display_name = _display_name(language)
        enabled = _enabled(language)

    return SenderCreateSchema()


@lru_cache(maxsize=None)
def sender_update_schema(language: str = DEFAULT_LANGUAGE) -> Schema:
    """Return the schema of PATCH /senders/{app_tag}: any of mailbox, display_name, enabled."""

    class SenderUpdateSchema(Schema):
        class Meta:
            unknown = RAISE

        error_messages = _schema_messages(language)

        mailbox = _mailbox(language)
        display_name = _display_name(language)
        enabled = _enabled(language)

        @validates_schema
        def require_a_change(self, data: dict[str, Any], **kwargs: Any) -> None:
            if not data:
                raise ValidationError(translate("field_no_changes", language))

    return SenderUpdateSchema()


@lru_cache(maxsize=None)
def key_rotation_schema(language: str = DEFAULT_LANGUAGE) -> Schema:
    """Return the schema of POST /senders/{app_tag}/keys/rotate: an optional grace period in seconds."""
    out_of_range = translate("field_out_of_range", language, min=0, max=MAX_KEY_GRACE_SECONDS)

    class KeyRotationSchema(Schema):
        class Meta:
            unknown = RAISE

        error_messages = _schema_messages(language)

        grace_seconds = StrictInteger(
            load_default=DEFAULT_KEY_GRACE_SECONDS, error_messages=_messages(language, "field_not_integer"),
            validate=validate.Range(min=0, max=MAX_KEY_GRACE_SECONDS, error=out_of_range),
        )

    return KeyRotationSchema()


def load_admin_request(schema: Schema, payload: dict[str, Any]) -> dict[str, Any]:
    """Validate an admin request body with schema; raise ValidationFailed naming every failing field."""
    try:
        return schema.load(payload)
    except ValidationError as exc:
        failing = exc.messages if isinstance(exc.messages, dict) else {"_schema": exc.messages}
        names = ", ".join(sorted(str(name) for name in failing))
        raise ValidationFailed(f"Invalid fields: {names}.", fields=failing, names=names) from exc
