from common.message import recipient_count, save_to_sent_items, to_graph_message


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


def test_display_names_go_into_email_address():
    message = to_graph_message(mail(display_names={"to@example.com": "Anna Müller"}))
    assert message["toRecipients"] == [{"emailAddress": {"address": "to@example.com", "name": "Anna Müller"}}]


def test_reply_to_importance_and_headers_map_to_graph():
    message = to_graph_message(mail(reply_to=["bh@example.com"], importance="low",
                                    custom_headers={"X-Rechnung": "4711"}))
    assert message["replyTo"] == [{"emailAddress": {"address": "bh@example.com"}}]
    assert message["importance"] == "low"
    assert message["internetMessageHeaders"] == [{"name": "X-Rechnung", "value": "4711"}]


def test_unset_optional_fields_are_left_out():
    message = to_graph_message(mail(reply_to=[], importance=None, custom_headers={}))
    assert not {"replyTo", "importance", "internetMessageHeaders"} & set(message)


def test_inline_attachment_carries_content_id():
    attachment = {"name": "logo.png", "contentBytes": "iVBO", "contentType": "image/png",
                  "content_id": "logo", "is_inline": True}
    [graph_attachment] = to_graph_message(mail(attachments=[attachment]))["attachments"]
    assert (graph_attachment["contentId"], graph_attachment["isInline"]) == ("logo", True)


def test_save_to_sent_items_defaults_to_true():
    assert save_to_sent_items(mail()) is True


def test_save_to_sent_items_false_is_kept():
    assert save_to_sent_items(mail(save_to_sent_items=False)) is False
