import base64
import os

import pytest

from common.errors import MessageTextTooLarge, MessageTooLarge, ValidationFailed
from common.limits import base64_decoded_size, check_limits, message_size
from common.settings import GRAPH_MAX_REQUEST_BYTES, Settings


def mail(**overrides):
    value = {"recipients": ["to@example.com"], "cc_recipients": [], "bcc_recipients": [], "reply_to": [],
             "subject": "Betreff", "body_content": "Text", "html_body_content": None, "attachments": [],
             "app_tag": "app"}
    value.update(overrides)
    return value


def settings(**overrides):
    return Settings.from_env({key: str(value) for key, value in overrides.items()})


def inline(size):
    return {"name": "a.bin", "contentType": "application/octet-stream",
            "contentBytes": base64.b64encode(os.urandom(size)).decode()}


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 1000, 1001, 1002])
def test_base64_decoded_size_matches_decoding(size):
    encoded = base64.b64encode(os.urandom(size)).decode()
    assert base64_decoded_size(encoded) == size


def test_message_size_counts_subject_body_and_attachments():
    assert message_size(mail(subject="äb", body_content="xyz", attachments=[inline(100)])) == 3 + 3 + 100


def test_message_size_counts_sent_body_only():
    assert message_size(mail(subject="", body_content="long text", html_body_content="<p>")) == 3


def test_message_size_counts_stored_attachments_by_size():
    stored = {"name": "a.pdf", "contentType": "application/pdf", "object_name": "job/0", "size": 5000}
    assert message_size(mail(subject="", body_content="", attachments=[stored])) == 5000


def test_message_at_limit_passes():
    check_limits(mail(subject="", body_content="", attachments=[inline(1000)]), settings(MAX_MESSAGE_BYTES=1000))


def test_message_over_limit_raises_with_size_and_limit():
    with pytest.raises(MessageTooLarge) as info:
        check_limits(mail(subject="", body_content="", attachments=[inline(1001)]),
                     settings(MAX_MESSAGE_BYTES=1000))
    assert (info.value.params["size"], info.value.params["limit"], info.value.status) == (1001, 1000, 413)


def test_recipients_at_limit_pass():
    check_limits(mail(recipients=["a@x.de", "b@x.de"], bcc_recipients=["c@x.de"]), settings(MAX_RECIPIENTS=3))


def test_recipients_over_limit_name_the_field():
    with pytest.raises(ValidationFailed) as info:
        check_limits(mail(recipients=["a@x.de", "b@x.de"], cc_recipients=["c@x.de"], bcc_recipients=["d@x.de"]),
                     settings(MAX_RECIPIENTS=3))
    assert info.value.fields == {"recipients": [
        "The mail has 4 distinct recipients in recipients, cc_recipients and bcc_recipients; "
        "at most 3 are allowed."]}


def test_recipient_limit_message_in_german():
    with pytest.raises(ValidationFailed) as info:
        check_limits(mail(recipients=["a@x.de", "b@x.de"]), settings(MAX_RECIPIENTS=1), "de")
    assert "höchstens 1" in info.value.fields["recipients"][0]


def test_body_over_graph_request_limit_raises():
    with pytest.raises(MessageTextTooLarge) as info:
        check_limits(mail(body_content="x" * GRAPH_MAX_REQUEST_BYTES), settings())
    assert info.value.params["limit"] == GRAPH_MAX_REQUEST_BYTES


def test_graph_request_limit_ignores_attachments():
    check_limits(mail(attachments=[inline(5 * 1024 * 1024)]), settings())
