"""marshmallow fields and validators of the send request's message fields, with localized errors.

They reject at ingest, with a 422, what Graph or Exchange would reject later in the worker. That is
CR or LF in a subject, name or header value (header injection), a header name without the ``X-``
prefix (Graph returns 400 InvalidInternetMessageHeader) and an unknown importance.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import ValidationError, fields, validate

from common.i18n import translate

IMPORTANCE_VALUES = ("low", "normal", "high")
# RFC 5322 section 3.6.8: a field name is printable US-ASCII except ':'; Graph requires the X- prefix.
_HEADER_NAME = re.compile(r"^[\x21-\x39\x3b-\x7e]+$")
CUSTOM_HEADER_PREFIX = "x-"
# A Content-ID is referenced as cid:<id> in HTML, so it must survive in a URL and in a header.
_CONTENT_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]+$")


def common_messages(language: str) -> dict[str, str]:
    return {
        "required": translate("field_required", language),
        "null": translate("field_null", language),
    }


def has_line_break(value: str) -> bool:
    return "\r" in value or "\n" in value


def no_line_break(language: str):
    """Return a validator that rejects CR and LF, which would start a new header line."""
    def check(value: str) -> None:
        if has_line_break(value):
            raise ValidationError(translate("field_line_break", language))

    return check


class Recipient(fields.Field):
    """An address as a string, or an object ``{"address": ..., "name": ...}`` with a display name.

    Loads to ``{"address": str, "name": str | None}``.
    """

    def __init__(self, language: str, **kwargs: Any) -> None:
        messages = {**common_messages(language),
                    "invalid": translate("field_not_recipient", language)}
        super().__init__(error_messages=messages, **kwargs)
        self._language = language
        self._email = validate.Email(error=translate("field_invalid_email", language, input="{input}"))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, Any]:
        if isinstance(value, str):
            return {"address": self._email(value), "name": None}
        if not isinstance(value, dict):
            raise self.make_error("invalid")

        errors: dict[str, list[str]] = {}
        address, name = value.get("address"), value.get("name")
        if address is None:
            errors["address"] = [translate("field_required", self._language)]
        elif not isinstance(address, str):
            errors["address"] = [translate("field_not_string", self._language)]
        else:
            try:
                self._email(address)
            except ValidationError as exc:
                errors["address"] = exc.messages  # type: ignore[assignment]
        name_error = self._name_error(name)
        if name_error:
            errors["name"] = [name_error]
        if errors:
            raise ValidationError(errors)
        return {"address": address, "name": name or None}

    def _name_error(self, name: Any) -> str | None:
        if name is None:
            return None
        if not isinstance(name, str):
            return translate("field_not_string", self._language)
        if has_line_break(name):
            return translate("field_line_break", self._language)
        return None


def recipient_list(language: str, **kwargs: Any) -> fields.List:
    messages = {**common_messages(language), "invalid": translate("field_not_list", language)}
    return fields.List(Recipient(language), error_messages=messages, **kwargs)


class CustomHeaders(fields.Field):
    """A JSON object of custom header names (``X-`` prefix required) to string values."""

    def __init__(self, language: str, **kwargs: Any) -> None:
        messages = {**common_messages(language), "invalid": translate("field_not_object", language)}
        super().__init__(error_messages=messages, **kwargs)
        self._language = language

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise self.make_error("invalid")

        errors: dict[str, list[str]] = {}
        for name, header_value in value.items():
            error = self._header_error(name, header_value)
            if error:
                errors[name] = [error]
        if errors:
            raise ValidationError(errors)
        return dict(value)

    def _header_error(self, name: str, value: Any) -> str | None:
        if not _HEADER_NAME.match(name):
            return translate("field_header_invalid_name", self._language, name=name)
        if not name.lower().startswith(CUSTOM_HEADER_PREFIX) or len(name) == len(CUSTOM_HEADER_PREFIX):
            return translate("field_header_not_custom", self._language, name=name)
        if not isinstance(value, str):
            return translate("field_not_string", self._language)
        if has_line_break(value):
            return translate("field_line_break", self._language)
        return None


def importance_field(language: str) -> fields.String:
    def check(value: str) -> None:
        if value.lower() not in IMPORTANCE_VALUES:
            raise ValidationError(translate("field_invalid_importance", language, input=value))

    messages = {**common_messages(language), "invalid": translate("field_not_string", language)}
    return fields.String(load_default=None, allow_none=True, validate=check, error_messages=messages)


def boolean_field(language: str, default: bool) -> fields.Boolean:
    messages = {**common_messages(language), "invalid": translate("field_not_boolean", language)}
    return fields.Boolean(load_default=default, allow_none=True, error_messages=messages)


def content_id_validator(language: str):
    def check(value: str) -> None:
        if not _CONTENT_ID.match(value):
            raise ValidationError(translate("field_invalid_content_id", language, input=value))

    return check
