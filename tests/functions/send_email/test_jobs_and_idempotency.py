"""Idempotency-Key on POST /send-email and GET /jobs/{id}, with the worker running."""

import threading
import time
import uuid

import pytest
import requests

from tests.conftest import auth_for

pytestmark = pytest.mark.integration

# The app_tag that sent each job, so that reads of the job carry that application's key.
JOB_APPS: dict[str, str] = {}


@pytest.fixture
def app(sender, worker):
    return sender()


def post(ingest, payload, key=None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    response = requests.post(f"{ingest}/send-email", json=payload, timeout=10,
                             headers={**auth_for(payload["app_tag"]), **headers})
    if response.status_code == 202:
        JOB_APPS[response.json()["job_id"]] = payload["app_tag"]
    return response


def get_job(ingest, job_id, app_tag=None, **headers):
    app_tag = app_tag or JOB_APPS.get(str(job_id))
    return requests.get(f"{ingest}/jobs/{job_id}", headers={**auth_for(app_tag), **headers}, timeout=10)


def wait_for_status(ingest, job_id, status, timeout=20.0):
    deadline = time.monotonic() + timeout
    body = get_job(ingest, job_id).json()
    while body.get("status") != status and time.monotonic() < deadline:
        time.sleep(0.2)
        body = get_job(ingest, job_id).json()
    return body


def mail(app_tag, subject="Rechnung"):
    return {"recipients": ["a@example.com"], "subject": subject, "body_content": "b", "app_tag": app_tag}


def test_repeated_key_returns_first_job_id(ingest, app):
    key = str(uuid.uuid4())
    first = post(ingest, mail(app[0]), key)
    second = post(ingest, mail(app[0]), key)

    assert second.status_code == 202
    assert second.json()["job_id"] == first.json()["job_id"]


def test_repeated_key_is_marked_replayed(ingest, app):
    key = str(uuid.uuid4())
    post(ingest, mail(app[0]), key)

    assert post(ingest, mail(app[0]), key).headers.get("Idempotent-Replayed") == "true"


def test_repeated_key_sends_one_mail(ingest, sandbox, app):
    app_tag, mailbox = app
    key = str(uuid.uuid4())
    first = post(ingest, mail(app_tag), key)
    wait_for_status(ingest, first.json()["job_id"], "sent")

    post(ingest, mail(app_tag), key)
    time.sleep(1.0)

    assert len(sandbox.messages(mailbox)) == 1


def test_concurrent_requests_with_one_key_send_one_mail(ingest, sandbox, app):
    app_tag, mailbox = app
    key = str(uuid.uuid4())
    barrier = threading.Barrier(8)
    responses = []

    def send() -> None:
        barrier.wait(timeout=10)
        responses.append(post(ingest, mail(app_tag), key))

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    job_id = responses[0].json()["job_id"]
    wait_for_status(ingest, job_id, "sent")
    time.sleep(1.0)

    assert [r.status_code for r in responses] == [202] * 8
    assert {r.json()["job_id"] for r in responses} == {job_id}
    assert len(sandbox.messages(mailbox)) == 1


def test_key_with_other_body_is_409(ingest, app):
    key = str(uuid.uuid4())
    post(ingest, mail(app[0], "eins"), key)

    response = post(ingest, mail(app[0], "zwei"), key)

    assert response.status_code == 409
    assert response.json()["error"] == "idempotency_key_reused"


def test_other_apps_key_is_new_job(ingest, sender, worker):
    key = str(uuid.uuid4())
    first = post(ingest, mail(sender()[0]), key)
    second = post(ingest, mail(sender()[0]), key)

    assert second.json()["job_id"] != first.json()["job_id"]


@pytest.mark.parametrize("key", ["", "mit leerzeichen", "x" * 256, "umlaut-ä"])
def test_invalid_key_is_400_naming_the_header(ingest, app, key):
    response = requests.post(f"{ingest}/send-email", json=mail(app[0]), timeout=10,
                             headers={"Idempotency-Key": key.encode("utf-8"), **auth_for(app[0])})

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["message"]


def test_job_status_shows_sent_job(ingest, app):
    job_id = post(ingest, mail(app[0])).json()["job_id"]

    body = wait_for_status(ingest, job_id, "sent")

    assert body["status"] == "sent"
    assert body["attempts"] == 1
    assert body["app_tag"] == app[0]
    assert body["recipient_count"] == 1
    assert body["last_error"] is None


def test_job_status_is_readable_right_after_202(ingest, app):
    job_id = post(ingest, mail(app[0])).json()["job_id"]

    assert get_job(ingest, job_id).status_code == 200


def test_job_status_shows_graph_error_of_failed_job(ingest, sandbox, app):
    app_tag, mailbox = app
    sandbox.add_fault(status=400, mailbox=mailbox)
    try:
        job_id = post(ingest, mail(app_tag)).json()["job_id"]
        body = wait_for_status(ingest, job_id, "failed")
    finally:
        sandbox.clear_faults()

    assert body["attempts"] == 1
    assert body["last_error"]["status"] == 400
    assert body["last_error"]["code"] == "ErrorInvalidRequest"


def test_job_status_shows_idempotency_key(ingest, app):
    key = str(uuid.uuid4())
    job_id = post(ingest, mail(app[0]), key).json()["job_id"]

    assert get_job(ingest, job_id).json()["idempotency_key"] == key


def test_unknown_job_is_404(ingest, app):
    response = get_job(ingest, uuid.uuid4(), app[0])

    assert response.status_code == 404
    assert response.json()["error"] == "job_not_found"


def test_malformed_job_id_is_400(ingest, app):
    response = get_job(ingest, "kein-job", app[0])

    assert response.status_code == 400
    assert "kein-job" in response.json()["message"]


def test_malformed_job_id_message_follows_accept_language(ingest, app):
    response = get_job(ingest, "kein-job", app[0], **{"Accept-Language": "de"})

    assert "ungültig" in response.json()["message"]


def test_post_on_job_is_405(ingest):
    assert requests.post(f"{ingest}/jobs/{uuid.uuid4()}", timeout=10).status_code == 405


def test_job_status_without_key_is_401(ingest, app):
    job_id = post(ingest, mail(app[0])).json()["job_id"]

    assert requests.get(f"{ingest}/jobs/{job_id}", timeout=10).status_code == 401


def test_other_apps_job_is_404(ingest, app, sender):
    job_id = post(ingest, mail(app[0])).json()["job_id"]
    other = sender()

    assert get_job(ingest, job_id, other[0]).status_code == 404
