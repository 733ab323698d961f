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


def test_recipient_object_keeps_display_name():
    mail = load_send_request(valid_request(recipients=[{"address": "anna@example.com", "name": "Anna Müller"}]))
    assert mail["recipients"] == ["anna@example.com"]
    assert mail["display_names"] == {"anna@example.com": "Anna Müller"}


def test_duplicate_recipients_are_removed_across_lists():
    mail = load_send_request(valid_request(recipients=["a@example.com", "A@Example.com"],
                                           cc_recipients=["a@example.com", "b@example.com"],
                                           bcc_recipients=["B@example.com", "c@example.com"]))
    assert (mail["recipients"], mail["cc_recipients"], mail["bcc_recipients"]) == (
        ["a@example.com"], ["b@example.com"], ["c@example.com"])


def test_reply_to_is_loaded_as_addresses():
    mail = load_send_request(valid_request(reply_to=[{"address": "buchhaltung@example.com", "name": "BH"}]))
    assert mail["reply_to"] == ["buchhaltung@example.com"]


def test_new_fields_have_defaults():
    mail = load_send_request(valid_request())
    assert (mail["reply_to"], mail["importance"], mail["save_to_sent_items"], mail["custom_headers"]) == (
        [], None, True, {})


def test_nulls_of_new_fields_mean_defaults():
    mail = load_send_request(valid_request(reply_to=None, importance=None, save_to_sent_items=None,
                                           custom_headers=None))
    assert (mail["reply_to"], mail["importance"], mail["save_to_sent_items"], mail["custom_headers"]) == (
        [], None, True, {})


def test_importance_is_case_insensitive():
    assert load_send_request(valid_request(importance="HIGH"))["importance"] == "high"


def test_unknown_importance_is_reported():
    assert failing_fields(valid_request(importance="urgent"))["importance"] == [
        "'urgent' is not a valid importance; expected low, normal or high."]


def test_save_to_sent_items_false_is_kept():
    assert load_send_request(valid_request(save_to_sent_items=False))["save_to_sent_items"] is False


def test_x_headers_are_accepted_in_any_case():
    headers = {"X-Rechnung": "4711", "x-mandant": "Süd"}
    assert load_send_request(valid_request(custom_headers=headers))["custom_headers"] == headers


@pytest.mark.parametrize("name", ["Reply-To", "Subject", "X-", "Xmailer"])
def test_header_without_x_prefix_is_reported(name):
    assert name in failing_fields(valid_request(custom_headers={name: "v"}))["custom_headers"]


def test_header_rule_message_in_german():
    message = failing_fields(valid_request(custom_headers={"Priority": "1"}), "de")["custom_headers"]["Priority"]
    assert message == ["Der Header 'Priority' ist nicht erlaubt: Microsoft Graph nimmt nur eigene Header an, "
                       "deren Namen mit 'X-' beginnen."]


@pytest.mark.parametrize("name", ["X-Mit Leerzeichen", "X-Doppel:punkt", "X-Ümlaut"])
def test_invalid_header_name_is_reported(name):
    assert "not a valid header name" in failing_fields(valid_request(custom_headers={name: "v"}))[
        "custom_headers"][name][0]


@pytest.mark.parametrize("value", ["a\r\nBcc: x@example.com", "a\nb", "a\rb"])
def test_line_break_in_header_value_is_reported(value):
    assert failing_fields(valid_request(custom_headers={"X-A": value}))["custom_headers"]["X-A"] == [
        "Must not contain a line break (CR or LF)."]


def test_non_string_header_value_is_reported():
    assert "X-A" in failing_fields(valid_request(custom_headers={"X-A": 1}))["custom_headers"]


def test_headers_as_list_is_reported():
    assert failing_fields(valid_request(custom_headers=["X-A: 1"]))["custom_headers"] == [
        "Not an object; expected a JSON object."]


@pytest.mark.parametrize("subject", ["Rechnung\nBcc: x@example.com", "a\rb"])
def test_line_break_in_subject_is_reported(subject):
    assert failing_fields(valid_request(subject=subject))["subject"] == [
        "Must not contain a line break (CR or LF)."]


def test_unicode_subject_and_name_are_accepted():
    mail = load_send_request(valid_request(subject="Größe ✓ 請求書",
                                           recipients=[{"address": "a@example.com", "name": "Jörg 山田"}]))
    assert (mail["subject"], mail["display_names"]["a@example.com"]) == ("Größe ✓ 請求書", "Jörg 山田")


def test_line_break_in_display_name_is_reported():
    fields = failing_fields(valid_request(recipients=[{"address": "a@example.com", "name": "A\nB"}]))
    assert fields["recipients"] == {0: {"name": ["Must not contain a line break (CR or LF)."]}}


def test_recipient_object_without_address_is_reported():
    fields = failing_fields(valid_request(cc_recipients=[{"name": "Anna"}]))
    assert fields["cc_recipients"] == {0: {"address": ["Missing required field."]}}


def test_recipient_of_other_type_is_reported():
    assert failing_fields(valid_request(recipients=[42]))["recipients"] == {
        0: ["Not a recipient; expected an address or an object with 'address' and 'name'."]}


def test_inline_attachment_is_loaded():
    attachment = {"name": "logo.png", "contentBytes": PDF_BYTES, "content_id": "logo", "is_inline": True}
    [loaded] = load_send_request(valid_request(attachments=[attachment]))["attachments"]
    assert (loaded["content_id"], loaded["is_inline"]) == ("logo", True)


def test_attachment_is_not_inline_by_default():
    mail = load_send_request(valid_request(attachments=[{"name": "a", "contentBytes": PDF_BYTES}]))
    [loaded] = mail["attachments"]
    assert (loaded["content_id"], loaded["is_inline"]) == (None, False)


def test_inline_attachment_without_content_id_is_reported():
    fields = failing_fields(valid_request(attachments=[{"name": "logo.png", "contentBytes": PDF_BYTES,
                                                        "is_inline": True}]))
    assert "content_id" in fields["attachments"][0]


@pytest.mark.parametrize("content_id", ["mit leerzeichen", "<logo>", "zeile\numbruch"])
def test_invalid_content_id_is_reported(content_id):
    fields = failing_fields(valid_request(attachments=[{"name": "a", "contentBytes": PDF_BYTES,
                                                        "content_id": content_id}]))
    assert "content_id" in fields["attachments"][0]


def test_line_break_in_attachment_name_is_reported():
    fields = failing_fields(valid_request(attachments=[{"name": "a\r\n.pdf", "contentBytes": PDF_BYTES}]))
    assert "name" in fields["attachments"][0]
