"""The ingest function over HTTP, with the worker, NATS, PostgreSQL and the Graph sandbox running."""

import base64
import os
import sys
import time

import pytest
import requests

from common.apikeys import ApiKeyStore, generate_api_key
from common.sender_admin import SenderAdmin
from tests.conftest import INGEST_CACHE_TTL_SECONDS, free_port, spawn, start_ingest, wait_for_port

pytestmark = pytest.mark.integration

PDF = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"


# Longer than the test ingest's cache TTL, so a change in the database has reached it.
CACHE_EXPIRY_WAIT_SECONDS = float(INGEST_CACHE_TTL_SECONDS) + 0.5


def post(ingest, payload, key=None, **headers):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(f"{ingest}/send-email", json=payload, headers=headers, timeout=10)


@pytest.fixture
def app(sender, worker):
    return sender()


def test_mail_arrives_from_the_app_tags_mailbox(ingest, sandbox, app):
    app_tag, mailbox = app
    response = post(ingest, {"recipients": ["empfaenger@example.com"], "subject": "Test E-Mail",
                             "body_content": "Dies ist eine Testnachricht.", "app_tag": app_tag}, app.api_key)
    assert response.status_code == 202

    [captured] = sandbox.wait_for_messages(mailbox)
    message = captured["message"]
    assert captured["mailbox"] == mailbox
    assert message["toRecipients"] == [{"emailAddress": {"address": "empfaenger@example.com"}}]
    assert message["subject"] == "Test E-Mail"
    assert message["body"] == {"contentType": "Text", "content": "Dies ist eine Testnachricht."}


def test_accepted_answer_carries_job_id(ingest, app):
    response = post(ingest, {"recipients": ["a@example.com"], "app_tag": app[0]}, app.api_key)
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
    assert post(ingest, payload, app.api_key).status_code == 202

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
    assert post(ingest, {"recipients": ["a@example.com"], "app_tag": app[0]}, app.api_key).status_code == 202
    [captured] = sandbox.wait_for_messages(app[1])
    assert captured["saveToSentItems"] is True


def test_unparseable_json_is_400(ingest, sender):
    response = requests.post(f"{ingest}/send-email", data="{nope", timeout=10,
                             headers={"Content-Type": "application/json", **sender().auth})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_json"


def raw_post(ingest, sender, data, **headers):
    return requests.post(f"{ingest}/send-email", data=data, timeout=10,
                         headers={"Content-Type": "application/json", **sender().auth, **headers})


def test_invalid_json_message_names_position_in_german(ingest, sender):
    response = raw_post(ingest, sender, '{"recipients": nope}', **{"Accept-Language": "de"})
    assert "Zeile 1, Spalte 16" in response.json()["message"]


def test_non_utf8_body_is_400(ingest, sender):
    response = raw_post(ingest, sender, b'{"subject": "\xff"}')
    assert response.status_code == 400
    assert "offset 13" in response.json()["message"]


def test_deeply_nested_json_is_400(ingest, sender):
    response = raw_post(ingest, sender, "[" * 100_000 + "]" * 100_000)
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["message"]


def test_schema_errors_are_422_with_every_field(ingest, sender):
    response = post(ingest, {"recipients": ["kaputt"], "cc_recipients": "x", "subject": 5}, sender().api_key)
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"recipients", "cc_recipients", "subject"}


def test_schema_errors_follow_accept_language(ingest, sender):
    response = post(ingest, {"recipients": ["kaputt"]}, sender().api_key, **{"Accept-Language": "de-DE"})
    assert response.json()["fields"]["recipients"]["0"] == ["'kaputt' ist keine gültige E-Mail-Adresse."]


def test_other_path_is_404(ingest):
    assert requests.get(f"{ingest}/nothing", timeout=10).status_code == 404


def test_get_on_send_path_is_405(ingest):
    assert requests.get(f"{ingest}/send-email", timeout=10).status_code == 405


def test_unreachable_jetstream_is_503(service_env, sender, log_dir):
    sender_with_key = sender()
    app_tag = sender_with_key.app_tag
    port = free_port()
    env = {**os.environ, **service_env, "NATS_URL": f"nats://127.0.0.1:{free_port()}", "WORKERS": "1",
           "PUBLISH_TIMEOUT_SECONDS": "1"}
    process = spawn("ingest-no-nats", [sys.executable, "-m", "functions_framework", "--target", "send_email",
                                       "--source", "functions/send_email/main.py", "--port", str(port)],
                    env, log_dir)
    try:
        wait_for_port(port, process.popen, process.log_path)
        response = post(f"http://127.0.0.1:{port}", {"recipients": ["a@example.com"], "app_tag": app_tag},
                        sender_with_key.api_key)
    finally:
        process.stop()
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"


# --- API keys: 401 and 403 -----------------------------------------------------------------------

MAIL = {"recipients": ["a@example.com"], "subject": "Schlüsseltest"}


def test_request_without_key_is_401(ingest, sender):
    response = post(ingest, {**MAIL, "app_tag": sender().app_tag})
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_missing"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_missing_key_wins_over_invalid_body(ingest):
    assert requests.post(f"{ingest}/send-email", data="{nope", timeout=10).status_code == 401


@pytest.mark.parametrize("key", ["nonsense", "msk_0123", "Bearer", generate_api_key()[1]])
def test_malformed_or_unknown_key_is_401(ingest, sender, key):
    response = post(ingest, {**MAIL, "app_tag": sender().app_tag}, key)
    assert response.status_code == 401
    assert response.json()["error"] == "api_key_invalid"


def test_known_key_id_with_wrong_secret_is_401(ingest, sender):
    added = sender()
    forged = added.api_key[:-4] + ("AAAA" if not added.api_key.endswith("AAAA") else "BBBB")
    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, forged).status_code == 401


def test_non_bearer_authorization_is_401(ingest, sender):
    response = post(ingest, {**MAIL, "app_tag": sender().app_tag}, Authorization="Basic dXNlcjpwYXNz")
    assert response.status_code == 401
    assert response.json()["error"] == "authorization_malformed"


def test_key_of_other_app_is_403(ingest, sender):
    mine, other = sender(), sender()
    response = post(ingest, {**MAIL, "app_tag": mine.app_tag}, other.api_key)
    assert response.status_code == 403
    assert response.json()["error"] == "app_tag_mismatch"


def test_key_of_other_app_is_403_before_validation(ingest, sender):
    mine, other = sender(), sender()
    response = post(ingest, {"recipients": ["kaputt"], "app_tag": mine.app_tag}, other.api_key)
    assert response.status_code == 403


def test_disabled_sender_is_403(ingest, sender):
    added = sender(enabled=False)
    response = post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key)
    assert response.status_code == 403
    assert response.json()["error"] == "sender_disabled"


def test_disabling_takes_effect_within_cache_ttl(ingest, sender, database):
    added = sender()
    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 202

    SenderAdmin(database).set_enabled(added.app_tag, False)
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)

    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 403


def test_x_api_key_header_is_accepted(ingest, sender):
    added = sender()
    response = post(ingest, {**MAIL, "app_tag": added.app_tag}, **{"X-API-Key": added.api_key})
    assert response.status_code == 202


def test_bearer_key_wins_over_x_api_key(ingest, sender):
    mine, other = sender(), sender()
    response = post(ingest, {**MAIL, "app_tag": mine.app_tag}, mine.api_key, **{"X-API-Key": other.api_key})
    assert response.status_code == 202


def test_omitted_app_tag_is_taken_from_key(ingest, sandbox, app):
    assert post(ingest, {**MAIL, "subject": "ohne app_tag"}, app.api_key).status_code == 202
    [captured] = sandbox.wait_for_messages(app.mailbox)
    assert captured["message"]["subject"] == "ohne app_tag"


def test_null_app_tag_is_taken_from_key(ingest, sender):
    added = sender()
    assert post(ingest, {**MAIL, "app_tag": None}, added.api_key).status_code == 202


def test_key_decides_the_mailbox(ingest, sandbox, sender, worker):
    mine, other = sender(), sender()
    assert post(ingest, {**MAIL, "subject": "vom Schlüssel"}, other.api_key).status_code == 202
    [captured] = sandbox.wait_for_messages(other.mailbox)
    assert captured["mailbox"] == other.mailbox
    assert sandbox.messages(mine.mailbox) == []


# --- rotation and deletion -----------------------------------------------------------------------


def test_rotation_invalidates_old_key(ingest, sender, database):
    added = sender()
    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 202

    new_key = ApiKeyStore(database).rotate(added.app_tag, grace_seconds=0).issued.api_key
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)

    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 401
    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, new_key).status_code == 202


def test_rotation_with_grace_keeps_old_key_working(ingest, sender, database):
    added = sender()
    ApiKeyStore(database).rotate(added.app_tag, grace_seconds=600)
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)

    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 202


def test_grace_period_end_is_exact_while_cached(ingest, sender, database):
    added = sender()
    ApiKeyStore(database).rotate(added.app_tag, grace_seconds=2)
    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 202

    time.sleep(2.2)

    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 401


def test_deleted_sender_key_is_401(ingest, sender, database):
    added = sender()
    SenderAdmin(database).delete(added.app_tag)
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)

    assert post(ingest, {**MAIL, "app_tag": added.app_tag}, added.api_key).status_code == 401


# --- secrets stay out of logs and responses ------------------------------------------------------


def test_keys_absent_from_logs_and_errors(ingest_server, sender):
    process, ingest = ingest_server
    mine, other = sender(), sender()
    forged = mine.api_key[:-1] + ("A" if not mine.api_key.endswith("A") else "B")
    answers = [
        post(ingest, {**MAIL, "app_tag": mine.app_tag}, mine.api_key),
        post(ingest, {**MAIL, "app_tag": mine.app_tag}, other.api_key),
        post(ingest, {**MAIL, "app_tag": mine.app_tag}, forged),
        post(ingest, {**MAIL, "app_tag": mine.app_tag}, Authorization=mine.api_key),
        post(ingest, {"recipients": ["kaputt"], "app_tag": mine.app_tag}, mine.api_key),
    ]
    time.sleep(0.5)  # the log file is written by another process
    log = process.log()
    secrets = [mine.api_key, other.api_key, forged] + [key.split("_", 2)[2] for key in (mine.api_key, other.api_key)]

    assert [answer.status_code for answer in answers] == [202, 403, 401, 401, 422]
    for secret in secrets:
        assert secret not in log
        assert all(secret not in answer.text for answer in answers)


# --- keyless transition --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyless_ingest(service_env, database, log_dir):
    process, url = start_ingest(service_env, log_dir, name="ingest-keyless", ALLOW_KEYLESS_SEND="true")
    yield process, url
    process.stop()


def test_keyless_mode_accepts_request_without_key(keyless_ingest, sender):
    _, url = keyless_ingest
    assert post(url, {**MAIL, "app_tag": sender().app_tag}).status_code == 202


def test_keyless_mode_warns_at_start(keyless_ingest):
    process, _ = keyless_ingest
    lines = [line for line in process.log().splitlines() if "ALLOW_KEYLESS_SEND is on" in line]
    assert [" WARNING " in line for line in lines] == [True]


def test_keyless_mode_warns_once_per_client(keyless_ingest, sender):
    process, url = keyless_ingest
    app_tag = sender().app_tag
    for _ in range(3):
        assert post(url, {**MAIL, "app_tag": app_tag}).status_code == 202
    time.sleep(0.5)
    warnings = [line for line in process.log().splitlines()
                if "without API key" in line and app_tag in line and "WARNING" in line]
    assert len(warnings) == 1


def test_keyless_mode_still_rejects_invalid_key(keyless_ingest, sender):
    _, url = keyless_ingest
    assert post(url, {**MAIL, "app_tag": sender().app_tag}, generate_api_key()[1]).status_code == 401


def test_keyless_mode_still_checks_key_app_tag(keyless_ingest, sender):
    _, url = keyless_ingest
    mine, other = sender(), sender()
    assert post(url, {**MAIL, "app_tag": mine.app_tag}, other.api_key).status_code == 403


def test_keyless_unknown_app_tag_is_422(keyless_ingest):
    _, url = keyless_ingest
    response = post(url, {**MAIL, "app_tag": "niemand"})
    assert response.status_code == 422
    assert response.json()["error"] == "unknown_app_tag"


def test_keyless_missing_app_tag_is_422(keyless_ingest):
    _, url = keyless_ingest
    response = post(url, MAIL)
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"app_tag"}


def test_keyless_disabled_sender_is_403(keyless_ingest, sender):
    _, url = keyless_ingest
    response = post(url, {**MAIL, "app_tag": sender(enabled=False).app_tag})
    assert response.status_code == 403
    assert response.json()["error"] == "sender_disabled"


# --- OpenAPI -------------------------------------------------------------------------------------


def test_openapi_document_is_served(ingest):
    response = requests.get(f"{ingest}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert "/send-email" in response.json()["paths"]


def test_rejected_request_is_logged_with_code(ingest_server, sender):
    process, url = ingest_server
    post(url, {"recipients": ["kaputt"], "subject": "log me"}, sender().api_key)
    time.sleep(0.5)
    assert "POST /send-email rejected with 422 validation_failed" in process.log()


def test_rejection_log_has_no_body(ingest_server, sender):
    process, url = ingest_server
    post(url, {"recipients": ["geheim-empfaenger@example.com"], "body_content": "Geheimer Inhalt",
               "cc_recipients": "x"}, sender().api_key)
    time.sleep(0.5)
    assert "Geheimer Inhalt" not in process.log()
