from common.message import recipient_count, to_graph_message


def mail(**overrides):
    value = {
        "recipients": ["to@example.com"], "cc_recipients": [], "bcc_recipients": [],
        "subject": "Betreff", "body_content": "Text", "html_body_content": None, "attachments": [],
        "app_tag": "app",
    }
    value.update(overrides)
    return value


def test_text_body_maps_to_text_content_type():
    assert to_graph_message(mail())["body"] == {"contentType": "Text", "content": "Text"}


def test_html_body_wins_over_text_body():
    assert to_graph_message(mail(html_body_content="<p>Hi</p>"))["body"] == {
        "contentType": "HTML", "content": "<p>Hi</p>"}


def test_missing_body_maps_to_empty_text():
    assert to_graph_message(mail(body_content=None))["body"] == {"contentType": "Text", "content": ""}


def test_recipients_map_to_email_address_objects():
    message = to_graph_message(mail(cc_recipients=["cc@example.com"], bcc_recipients=["bcc@example.com"]))
    assert message["toRecipients"] == [{"emailAddress": {"address": "to@example.com"}}]
    assert message["ccRecipients"] == [{"emailAddress": {"address": "cc@example.com"}}]
    assert message["bccRecipients"] == [{"emailAddress": {"address": "bcc@example.com"}}]


def test_empty_cc_and_bcc_are_left_out():
    message = to_graph_message(mail())
    assert "ccRecipients" not in message
    assert "bccRecipients" not in message


def test_attachment_maps_to_file_attachment():
    attachment = {"name": "r.pdf", "contentBytes": "JVBERg==", "contentType": "application/pdf"}
    assert to_graph_message(mail(attachments=[attachment]))["attachments"] == [{
        "@odata.type": "#microsoft.graph.fileAttachment", "name": "r.pdf",
        "contentType": "application/pdf", "contentBytes": "JVBERg==",
    }]


def test_recipient_count_adds_to_cc_and_bcc():
    assert recipient_count(mail(cc_recipients=["a@x.de"], bcc_recipients=["b@x.de", "c@x.de"])) == 4
