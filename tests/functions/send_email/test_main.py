"""The ingest function over HTTP, with the worker, NATS, PostgreSQL and the Graph sandbox running."""

import base64
import os
import sys

import pytest
import requests

from tests.conftest import free_port, spawn, wait_for_port

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


def post(ingest, payload, **headers):
    return requests.post(f"{ingest}/send-email", json=payload, headers=headers, timeout=10)


@pytest.fixture
def app(sender, worker):
    return sender()


def test_mail_arrives_from_the_app_tags_mailbox(ingest, sandbox, app):
    app_tag, mailbox = app
    response = post(ingest, {"recipients": ["empfaenger@example.com"], "subject": "Test E-Mail",
                             "body_content": "Dies ist eine Testnachricht.", "app_tag": app_tag})
    assert response.status_code == 202

    [captured] = sandbox.wait_for_messages(mailbox)
    message = captured["message"]
    assert captured["mailbox"] == mailbox
    assert message["toRecipients"] == [{"emailAddress": {"address": "empfaenger@example.com"}}]
    assert message["subject"] == "Test E-Mail"
    assert message["body"] == {"contentType": "Text", "content": "Dies ist eine Testnachricht."}


def test_accepted_answer_carries_job_id(ingest, app):
    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app[0]})
    assert response.json()["job_id"]


def test_cc_bcc_html_and_pdf_arrive_intact(ingest, sandbox, app):
    app_tag, mailbox = app
    payload = {
        "recipients": ["to@example.com"], "cc_recipients": ["cc1@example.com", "cc2@example.com"],
        "bcc_recipients": ["bcc@example.com"], "subject": "Rechnung 4711 – Größe ✓",
        "html_body_content": "<p>Ihre <b>Rechnung</b></p>",
        "attachments": [{"name": "rechnung.pdf", "contentType": "application/pdf",
                         "contentBytes": base64.b64encode(PDF).decode()}],
        "app_tag": app_tag,
    }
    assert post(ingest, payload).status_code == 202

    [captured] = sandbox.wait_for_messages(mailbox)
    message = captured["message"]
    assert [r["emailAddress"]["address"] for r in message["ccRecipients"]] == ["cc1@example.com", "cc2@example.com"]
    assert [r["emailAddress"]["address"] for r in message["bccRecipients"]] == ["bcc@example.com"]
    assert message["subject"] == "Rechnung 4711 – Größe ✓"
    assert message["body"] == {"contentType": "HTML", "content": "<p>Ihre <b>Rechnung</b></p>"}
    [attachment] = message["attachments"]
    assert attachment["name"] == "rechnung.pdf"
    assert attachment["contentType"] == "application/pdf"
    assert base64.b64decode(attachment["contentBytes"]) == PDF


def test_mail_is_saved_to_sent_items(ingest, sandbox, app):
    assert post(ingest, {"recipients": ["a@example.com"], "app_tag": app[0]}).status_code == 202
    [captured] = sandbox.wait_for_messages(app[1])
    assert captured["saveToSentItems"] is True


def test_unparseable_json_is_400(ingest):
    response = requests.post(f"{ingest}/send-email", data="{nope", timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def test_schema_errors_are_422_with_every_field(ingest):
    response = post(ingest, {"recipients": ["kaputt"], "cc_recipients": "x"})
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"recipients", "cc_recipients", "app_tag"}


def test_schema_errors_follow_accept_language(ingest):
    response = post(ingest, {"recipients": ["kaputt"], "app_tag": "x"}, **{"Accept-Language": "de-DE"})
    assert response.json()["fields"]["recipients"]["0"] == ["'kaputt' ist keine gültige E-Mail-Adresse."]


def test_unknown_app_tag_is_422(ingest):
    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": "niemand"})
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_app_tag"


def test_other_path_is_404(ingest):
    assert requests.get(f"{ingest}/nothing", timeout=10).status_code == 404


def test_get_on_send_path_is_405(ingest):
    assert requests.get(f"{ingest}/send-email", timeout=10).status_code == 405


def test_unreachable_jetstream_is_503(service_env, sender, log_dir):
    app_tag, _ = sender()
    port = free_port()
    env = {**os.environ, **service_env, "NATS_URL": f"nats://127.0.0.1:{free_port()}", "WORKERS": "1",
           "PUBLISH_TIMEOUT_SECONDS": "1"}
    process = spawn("ingest-no-nats", [sys.executable, "-m", "functions_framework", "--target", "send_email",
                                       "--source", "functions/send_email/main.py", "--port", str(port)],
                    env, log_dir)
    try:
        wait_for_port(port, process.popen, process.log_path)
        response = post(f"http://127.0.0.1:{port}", {"recipients": ["a@example.com"], "app_tag": app_tag})
    finally:
        process.stop()
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
