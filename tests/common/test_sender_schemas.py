"""The admin request schemas: app_tag and mailbox rules, strict types, unknown fields."""

import pytest

from common.errors import ValidationFailed
from common.sender_schemas import (key_rotation_schema, load_admin_request, sender_create_schema,
                                   sender_update_schema)


def create(payload, language="en"):
    return load_admin_request(sender_create_schema(language), payload)


def failing_fields(schema, payload):
    with pytest.raises(ValidationFailed) as caught:
        load_admin_request(schema, payload)
    return caught.value.fields


@pytest.mark.parametrize("app_tag", ["ab", "a" * 50, "rechnungs-system_2"])
def test_valid_app_tags_are_accepted(app_tag):
    assert create({"app_tag": app_tag, "mailbox": "a@example.com"})["app_tag"] == app_tag


@pytest.mark.parametrize("app_tag", ["a", "a" * 51, "Gross", "mit leer", "ä-tag", "", 5, None])
def test_invalid_app_tags_fail(app_tag):
    assert set(failing_fields(sender_create_schema(), {"app_tag": app_tag, "mailbox": "a@example.com"})) == {
        "app_tag"}


def test_invalid_app_tag_message_names_rule():
    fields = failing_fields(sender_create_schema(), {"app_tag": "A", "mailbox": "a@example.com"})
    assert fields["app_tag"] == ["'A' is not a valid app_tag: use 2 to 50 lower-case letters, digits, '-' or '_'."]


def test_invalid_mailbox_fails():
    fields = failing_fields(sender_create_schema(), {"app_tag": "ab", "mailbox": "kein-at"})
    assert fields["mailbox"] == ["'kein-at' is not a valid e-mail address."]


def test_missing_fields_are_each_named():
    assert set(failing_fields(sender_create_schema(), {})) == {"app_tag", "mailbox"}


def test_unknown_field_fails():
    fields = failing_fields(sender_create_schema(), {"app_tag": "ab", "mailbox": "a@example.com", "api_key": "x"})
    assert fields == {"api_key": ["Unknown field."]}


@pytest.mark.parametrize("value", [1, "true", "yes", None])
def test_enabled_must_be_a_boolean(value):
    assert "enabled" in failing_fields(sender_update_schema(), {"enabled": value})


def test_display_name_may_be_null():
    assert load_admin_request(sender_update_schema(), {"display_name": None}) == {"display_name": None}


def test_display_name_too_long_fails():
    assert "display_name" in failing_fields(sender_update_schema(), {"display_name": "x" * 257})


def test_empty_update_fails():
    assert "_schema" in failing_fields(sender_update_schema(), {})


def test_update_cannot_rename():
    assert "app_tag" in failing_fields(sender_update_schema(), {"app_tag": "neu"})


def test_messages_are_german_for_german():
    fields = failing_fields(sender_create_schema("de"), {"app_tag": "ab", "mailbox": "kein-at"})
    assert fields["mailbox"] == ["'kein-at' ist keine gültige E-Mail-Adresse."]


def test_rotation_grace_defaults_to_zero():
    assert load_admin_request(key_rotation_schema(), {}) == {"grace_seconds": 0}


@pytest.mark.parametrize("value", [-1, 2592001, 1.5, True, "60"])
def test_invalid_grace_fails(value):
    assert "grace_seconds" in failing_fields(key_rotation_schema(), {"grace_seconds": value})
