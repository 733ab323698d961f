import base64

import pytest

from common.errors import ValidationFailed
from common.schemas import load_send_request

PDF_BYTES = base64.b64encode(b"%PDF-1.4 test").decode()


def valid_request(**overrides):
    request = {
        "recipients": ["empfaenger@example.com"],
        "subject": "Test E-Mail",
        "body_content": "Dies ist eine Testnachricht.",
        "app_tag": "rechnungssystem",
    }
    request.update(overrides)
    return request


def failing_fields(payload, language="en"):
    with pytest.raises(ValidationFailed) as info:
        load_send_request(payload, language)
    return info.value.fields


def test_minimal_go_request_is_accepted():
    mail = load_send_request(valid_request())
    assert mail["recipients"] == ["empfaenger@example.com"]


def test_optional_lists_default_to_empty():
    mail = load_send_request(valid_request())
    assert (mail["cc_recipients"], mail["bcc_recipients"], mail["attachments"]) == ([], [], [])


def test_go_null_lists_are_accepted_as_empty():
    mail = load_send_request(valid_request(cc_recipients=None, bcc_recipients=None, attachments=None))
    assert (mail["cc_recipients"], mail["bcc_recipients"], mail["attachments"]) == ([], [], [])


def test_unknown_fields_are_ignored_like_the_go_service():
    mail = load_send_request(valid_request(sender_name="legacy"))
    assert "sender_name" not in mail


def test_attachment_content_type_defaults_to_octet_stream():
    mail = load_send_request(valid_request(attachments=[{"name": "a.bin", "contentBytes": PDF_BYTES}]))
    assert mail["attachments"][0]["contentType"] == "application/octet-stream"


def test_missing_recipients_is_reported():
    payload = valid_request()
    del payload["recipients"]
    assert failing_fields(payload) == {"recipients": ["Missing required field."]}


def test_empty_recipients_is_reported():
    assert failing_fields(valid_request(recipients=[])) == {"recipients": ["At least one address is required."]}


def test_missing_app_tag_is_reported():
    payload = valid_request()
    del payload["app_tag"]
    assert "app_tag" in failing_fields(payload)


def test_invalid_address_names_index_and_value():
    fields = failing_fields(valid_request(cc_recipients=["ok@example.com", "kein-at"]))
    assert fields == {"cc_recipients": {1: ["'kein-at' is not a valid e-mail address."]}}


def test_invalid_address_message_in_german():
    fields = failing_fields(valid_request(bcc_recipients=["kaputt"]), language="de")
    assert fields == {"bcc_recipients": {0: ["'kaputt' ist keine gültige E-Mail-Adresse."]}}


def test_invalid_base64_is_reported_on_the_attachment():
    fields = failing_fields(valid_request(attachments=[{"name": "a.pdf", "contentBytes": "not base64!"}]))
    assert list(fields["attachments"][0]) == ["contentBytes"]


def test_attachment_without_name_is_reported():
    fields = failing_fields(valid_request(attachments=[{"contentBytes": PDF_BYTES}]))
    assert fields["attachments"][0] == {"name": ["Missing required field."]}


def test_recipients_string_is_not_list():
    assert failing_fields(valid_request(recipients="a@example.com")) == {
        "recipients": ["Not a list; expected a JSON array."]}


def test_subject_as_number_is_reported():
    assert failing_fields(valid_request(subject=5)) == {"subject": ["Not a string; expected text."]}


def test_every_failing_field_is_named():
    fields = failing_fields({"recipients": ["x"], "subject": 1})
    assert set(fields) == {"recipients", "subject", "app_tag"}
