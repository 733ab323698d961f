"""Ingest limits: request body, message size, recipients, headers and line breaks, and the 503 without orphans.

Most run against an ingest started with small limits, so the tests send a few MB instead of 50.
"""

import asyncio
import base64
import http.client
import json
import os
import sys
import uuid

import nats
import nats.js.errors
import pytest
import requests
from nats.js.api import ObjectStoreConfig, StorageType

from common import settings as settings_module
from tests.conftest import auth_for, free_port, spawn, wait_for_port

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
LIMITED_MESSAGE_BYTES = 5 * MIB
LIMITED_BODY_BYTES = 8 * MIB
LIMITED_RECIPIENTS = 3
# The limited ingest's bucket takes 3 MiB, so the second of two 2 MiB attachments cannot be put.
LIMITED_BUCKET_BYTES = 3 * MIB


def post(base_url, payload, **headers):
    headers = {**auth_for(payload.get("app_tag")), **headers}
    return requests.post(f"{base_url}/send-email", json=payload, headers=headers, timeout=60)


def attachment(size, name="datei.bin", **extra):
    return {"name": name, "contentBytes": base64.b64encode(os.urandom(size)).decode(), **extra}


def mail(app_tag, **fields):
    return {"recipients": ["a@example.com"], "subject": "s", "body_content": "b", "app_tag": app_tag, **fields}


async def _create_bucket(url, bucket, max_bytes):
    nc = await nats.connect(url)
    config = ObjectStoreConfig(ttl=settings_module.DEFAULT_ATTACHMENT_RETENTION_SECONDS, storage=StorageType.FILE,
                               max_bytes=max_bytes)
    await nc.jetstream().create_object_store(bucket, config=config)
    await nc.close()


async def _live_objects(url, bucket):
    nc = await nats.connect(url)
    try:
        store = await nc.jetstream().object_store(bucket)
        return len(await store.list(ignore_deletes=True))
    except nats.js.errors.NotFoundError:
        return 0
    finally:
        await nc.close()


async def _delete_bucket(url, bucket):
    nc = await nats.connect(url)
    await nc.jetstream().delete_object_store(bucket)
    await nc.close()


@pytest.fixture(scope="module")
def limited(service_env, database, log_dir):
    """An ingest with a 5 MiB message limit, an 8 MiB body limit, 3 recipients and a 3 MiB bucket."""
    bucket = f"TEST_LIMITED_{uuid.uuid4().hex[:8]}"
    url = service_env[settings_module.ENV_NATS_URL]
    asyncio.run(_create_bucket(url, bucket, LIMITED_BUCKET_BYTES))
    port = free_port()
    env = {**os.environ, **service_env, "WORKERS": "1", "THREADS": "4",
           settings_module.ENV_NATS_OBJECT_STORE: bucket,
           settings_module.ENV_MAX_MESSAGE_BYTES: str(LIMITED_MESSAGE_BYTES),
           settings_module.ENV_MAX_REQUEST_BODY_BYTES: str(LIMITED_BODY_BYTES),
           settings_module.ENV_MAX_RECIPIENTS: str(LIMITED_RECIPIENTS)}
    process = spawn("ingest-limited", [sys.executable, "-m", "functions_framework", "--target", "send_email",
                                       "--source", "functions/send_email/main.py", "--port", str(port),
                                       "--host", "127.0.0.1"], env, log_dir)
    wait_for_port(port, process.popen, process.log_path)
    yield {"base_url": f"http://127.0.0.1:{port}", "port": port, "bucket": bucket}
    process.stop()
    asyncio.run(_delete_bucket(url, bucket))


@pytest.fixture
def app_tag(sender):
    return sender()[0]


def raw_response(connection):
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def test_message_over_max_size_is_413_with_limit(limited, app_tag):
    response = post(limited["base_url"], mail(app_tag, attachments=[attachment(LIMITED_MESSAGE_BYTES)]))

    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.json()["limit_bytes"] == LIMITED_MESSAGE_BYTES
    assert str(LIMITED_MESSAGE_BYTES) in response.json()["message"]


def test_message_size_message_in_german(limited, app_tag):
    response = post(limited["base_url"], mail(app_tag, attachments=[attachment(LIMITED_MESSAGE_BYTES)]),
                    **{"Accept-Language": "de"})

    assert "maximale Nachrichtengröße von 5242880 Bytes" in response.json()["message"]


def padded_body(app_tag, size):
    body = json.dumps(mail(app_tag)).encode()
    return body + b" " * (size - len(body))


@pytest.mark.parametrize(("size", "status"), [(LIMITED_BODY_BYTES, 202), (LIMITED_BODY_BYTES + 1, 413)])
def test_body_limit_boundary(limited, app_tag, size, status):
    response = requests.post(f"{limited['base_url']}/send-email", data=padded_body(app_tag, size), timeout=60,
                             headers={"Content-Type": "application/json", **auth_for(app_tag)})

    assert response.status_code == status


@pytest.mark.parametrize(("size", "status"), [(LIMITED_BODY_BYTES, 202), (LIMITED_BODY_BYTES + 1, 413)])
def test_chunked_body_limit_boundary(limited, app_tag, size, status):
    body = padded_body(app_tag, size)
    chunks = (body[start:start + MIB] for start in range(0, len(body), MIB))

    response = requests.post(f"{limited['base_url']}/send-email", data=chunks, timeout=60,
                             headers={"Content-Type": "application/json", **auth_for(app_tag)})

    assert response.status_code == status


def test_announced_large_body_is_413_unread(limited, app_tag):
    connection = http.client.HTTPConnection("127.0.0.1", limited["port"], timeout=10)
    # Announces a body one byte over the limit but sends none, so only a check before reading can respond.
    connection.putrequest("POST", "/send-email")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Authorization", auth_for(app_tag)["Authorization"])
    connection.putheader("Content-Length", str(LIMITED_BODY_BYTES + 1))
    connection.endheaders()

    status, body = raw_response(connection)
    connection.close()

    assert status == 413
    assert body["limit_bytes"] == LIMITED_BODY_BYTES


def test_chunked_body_over_limit_is_413(limited, app_tag):
    connection = http.client.HTTPConnection("127.0.0.1", limited["port"], timeout=10)
    chunk = b" " * (256 * 1024)
    connection.putrequest("POST", "/send-email")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Authorization", auth_for(app_tag)["Authorization"])
    connection.putheader("Transfer-Encoding", "chunked")
    connection.endheaders()
    try:
        for _ in range(LIMITED_BODY_BYTES // len(chunk) + 2):
            connection.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        connection.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may respond and stop reading before the whole body is sent

    status, body = raw_response(connection)
    connection.close()

    assert status == 413
    assert body["limit_bytes"] == LIMITED_BODY_BYTES


def test_failed_attachment_put_is_503_without_orphans(limited, app_tag, service_env):
    payload = mail(app_tag, attachments=[attachment(2 * MIB, "a.bin"), attachment(2 * MIB, "b.bin")])

    response = post(limited["base_url"], payload)
    live = asyncio.run(_live_objects(service_env[settings_module.ENV_NATS_URL], limited["bucket"]))

    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    assert live == 0


def test_recipients_over_limit_is_422(limited, app_tag):
    recipients = [f"r{n}@example.com" for n in range(LIMITED_RECIPIENTS)]

    response = post(limited["base_url"], mail(app_tag, recipients=recipients, cc_recipients=["cc@example.com"]))

    assert response.status_code == 422
    assert "4" in response.json()["fields"]["recipients"][0]


def test_duplicate_recipients_count_once(limited, app_tag):
    payload = mail(app_tag, recipients=["a@example.com", "b@example.com"],
                   cc_recipients=["A@example.com", "c@example.com"], bcc_recipients=["b@example.com"])

    response = post(limited["base_url"], payload)

    assert response.status_code == 202


def test_501_recipients_is_422_by_default(ingest, app_tag):
    recipients = [f"r{n}@example.com" for n in range(501)]

    response = post(ingest, mail(app_tag, recipients=recipients))

    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"recipients"}


def test_message_over_35_mib_is_413_by_default(ingest, app_tag):
    response = post(ingest, mail(app_tag, attachments=[attachment(35 * MIB)]))

    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings_module.DEFAULT_MAX_MESSAGE_BYTES


def test_body_text_over_graph_request_limit_is_413(ingest, app_tag):
    response = post(ingest, mail(app_tag, body_content="x" * settings_module.GRAPH_MAX_REQUEST_BYTES))

    assert response.status_code == 413
    assert response.json()["limit_bytes"] == settings_module.GRAPH_MAX_REQUEST_BYTES


@pytest.mark.parametrize(("fields", "failing"), [
    ({"custom_headers": {"Reply-To": "x@example.com"}}, "custom_headers"),
    ({"custom_headers": {"X-Ok": "zwei\r\nBcc: opfer@example.com"}}, "custom_headers"),
    ({"subject": "Rechnung\nBcc: opfer@example.com"}, "subject"),
    ({"recipients": [{"address": "a@example.com", "name": "A\r\nB"}]}, "recipients"),
    ({"importance": "urgent"}, "importance"),
    ({"save_to_sent_items": "vielleicht"}, "save_to_sent_items"),
    ({"reply_to": ["kaputt"]}, "reply_to"),
    ({"attachments": [{"name": "logo.png", "contentBytes": "AAAA", "is_inline": True}]}, "attachments"),
])
def test_invalid_message_field_is_422(ingest, app_tag, fields, failing):
    response = post(ingest, mail(app_tag, **fields))

    assert response.status_code == 422
    assert set(response.json()["fields"]) == {failing}
