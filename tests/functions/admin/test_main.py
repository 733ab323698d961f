"""The admin HTTP function over HTTP, against the test database, with the ingest for key checks."""

import os
import subprocess
import sys
import time
import uuid

import pytest
import requests

from tests.conftest import INGEST_CACHE_TTL_SECONDS, free_port

pytestmark = pytest.mark.integration

CACHE_EXPIRY_WAIT_SECONDS = float(INGEST_CACHE_TTL_SECONDS) + 0.5
MAIL = {"recipients": ["a@example.com"], "subject": "Admin-Test"}

ENDPOINTS = [
    ("GET", "/senders"),
    ("POST", "/senders"),
    ("GET", "/senders/some-app"),
    ("PATCH", "/senders/some-app"),
    ("DELETE", "/senders/some-app"),
    ("POST", "/senders/some-app/keys/rotate"),
    ("GET", "/no-such-endpoint"),
]


@pytest.fixture
def tag(admin_api):
    value = f"adm-{uuid.uuid4().hex[:8]}"
    yield value
    admin_api.request("DELETE", f"/senders/{value}")


def create(admin_api, tag, **fields):
    return admin_api.request("POST", "/senders", json={"app_tag": tag, "mailbox": f"{tag}@example.com", **fields})


def send(ingest, key, **mail):
    return requests.post(f"{ingest}/send-email", json={**MAIL, **mail}, timeout=10,
                         headers={"Authorization": f"Bearer {key}"})


# --- 401 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,path", ENDPOINTS)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-of-enough-length"},
                                     {"Authorization": "Basic YWRtaW46YWRtaW4="}],
                         ids=["no-token", "wrong-token", "basic"])
def test_request_without_right_token_is_401(admin_api, method, path, headers):
    response = requests.request(method, f"{admin_api.url}{path}", headers=headers, json={}, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "admin_token_invalid"
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_token_in_x_api_key_is_401(admin_api):
    response = requests.get(f"{admin_api.url}/senders", headers={"X-API-Key": admin_api.token}, timeout=10)
    assert response.status_code == 401


def test_sender_api_key_is_not_an_admin_token(admin_api, sender):
    response = admin_api.request("GET", "/senders", token=sender().api_key)
    assert response.status_code == 401


def test_401_message_follows_accept_language(admin_api):
    response = requests.get(f"{admin_api.url}/senders", headers={"Accept-Language": "de"}, timeout=10)
    assert response.json()["message"].startswith("Das Admin-Token fehlt")


def test_openapi_needs_no_token(admin_api):
    response = requests.get(f"{admin_api.url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert "/senders" in response.json()["paths"]


# --- CRUD ----------------------------------------------------------------------------------------


def test_create_returns_sender_with_key(admin_api, tag):
    response = create(admin_api, tag, display_name="Rechnungen")
    body = response.json()
    assert response.status_code == 201
    assert response.headers["Location"] == f"/senders/{tag}"
    assert body["app_tag"] == tag
    assert body["display_name"] == "Rechnungen"
    assert body["enabled"] is True
    assert body["api_key"].startswith(f"msk_{body['key_id']}_")
    assert body["key_created_at"] is not None


def test_created_key_sends_from_own_mailbox(admin_api, ingest, sandbox, worker, tag):
    api_key = create(admin_api, tag).json()["api_key"]
    assert send(ingest, api_key, app_tag=tag).status_code == 202
    [captured] = sandbox.wait_for_messages(f"{tag}@example.com")
    assert captured["mailbox"] == f"{tag}@example.com"


def test_list_shows_sender_without_key(admin_api, tag):
    api_key = create(admin_api, tag).json()["api_key"]
    response = admin_api.request("GET", "/senders")
    [listed] = [entry for entry in response.json()["senders"] if entry["app_tag"] == tag]
    assert listed["mailbox"] == f"{tag}@example.com"
    assert "api_key" not in listed
    assert api_key not in response.text


def test_get_returns_one_sender(admin_api, tag):
    create(admin_api, tag)
    response = admin_api.request("GET", f"/senders/{tag}")
    assert response.status_code == 200
    assert response.json()["app_tag"] == tag


def test_patch_changes_given_fields(admin_api, tag):
    create(admin_api, tag, display_name="Alt")
    response = admin_api.request("PATCH", f"/senders/{tag}", json={"mailbox": "neu@example.com"})
    assert response.status_code == 200
    assert response.json()["mailbox"] == "neu@example.com"
    assert response.json()["display_name"] == "Alt"


def test_patch_disable_makes_sends_403(admin_api, ingest, tag):
    api_key = create(admin_api, tag).json()["api_key"]
    assert admin_api.request("PATCH", f"/senders/{tag}", json={"enabled": False}).json()["enabled"] is False
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)
    assert send(ingest, api_key).status_code == 403


def test_delete_removes_sender(admin_api, tag):
    create(admin_api, tag)
    assert admin_api.request("DELETE", f"/senders/{tag}").status_code == 204
    assert admin_api.request("GET", f"/senders/{tag}").status_code == 404


def test_deleted_sender_key_stops_working(admin_api, ingest, tag):
    api_key = create(admin_api, tag).json()["api_key"]
    admin_api.request("DELETE", f"/senders/{tag}")
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)
    assert send(ingest, api_key).status_code == 401


# --- errors --------------------------------------------------------------------------------------


def test_duplicate_is_409(admin_api, tag):
    create(admin_api, tag)
    response = create(admin_api, tag)
    assert response.status_code == 409
    assert response.json()["error"] == "sender_exists"


@pytest.mark.parametrize("method,path,body", [
    ("GET", "/senders/{missing}", None),
    ("PATCH", "/senders/{missing}", {"enabled": False}),
    ("DELETE", "/senders/{missing}", None),
    ("POST", "/senders/{missing}/keys/rotate", None),
])
def test_unknown_app_tag_is_404(admin_api, method, path, body):
    response = admin_api.request(method, path.format(missing="gibt-es-nicht"), json=body)
    assert response.status_code == 404
    assert response.json()["error"] == "sender_not_found"


def test_invalid_fields_are_422_with_each_field(admin_api):
    response = admin_api.request("POST", "/senders", json={"app_tag": "X", "mailbox": "kein-at", "extra": 1})
    assert response.status_code == 422
    assert set(response.json()["fields"]) == {"app_tag", "mailbox", "extra"}


def test_empty_patch_is_422(admin_api, tag):
    create(admin_api, tag)
    assert admin_api.request("PATCH", f"/senders/{tag}", json={}).status_code == 422


def test_invalid_json_is_400(admin_api):
    response = admin_api.request("POST", "/senders", data="{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_wrong_method_is_405_with_allow(admin_api):
    response = admin_api.request("PUT", "/senders")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, HEAD, POST"


def test_unknown_path_with_token_is_404(admin_api):
    assert admin_api.request("GET", "/nothing").status_code == 404


# --- key rotation --------------------------------------------------------------------------------


def test_rotation_returns_new_key(admin_api, tag):
    old = create(admin_api, tag).json()["api_key"]
    response = admin_api.request("POST", f"/senders/{tag}/keys/rotate")
    assert response.status_code == 201
    assert response.json()["api_key"] != old


def test_rotation_invalidates_old_key(admin_api, ingest, tag):
    old = create(admin_api, tag).json()["api_key"]
    new = admin_api.request("POST", f"/senders/{tag}/keys/rotate").json()["api_key"]
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)
    assert send(ingest, old).status_code == 401
    assert send(ingest, new).status_code == 202


def test_rotation_with_grace_reports_expiry(admin_api, ingest, tag):
    old = create(admin_api, tag).json()["api_key"]
    response = admin_api.request("POST", f"/senders/{tag}/keys/rotate", json={"grace_seconds": 600})
    assert response.json()["previous_keys_expire_at"] is not None
    time.sleep(CACHE_EXPIRY_WAIT_SECONDS)
    assert send(ingest, old).status_code == 202


def test_rotation_with_invalid_grace_is_422(admin_api, tag):
    create(admin_api, tag)
    response = admin_api.request("POST", f"/senders/{tag}/keys/rotate", json={"grace_seconds": -5})
    assert response.status_code == 422


# --- logs ----------------------------------------------------------------------------------------


def test_each_change_is_logged_once_at_info(admin_api, tag):
    create(admin_api, tag)
    admin_api.request("PATCH", f"/senders/{tag}", json={"enabled": False})
    admin_api.request("POST", f"/senders/{tag}/keys/rotate")
    admin_api.request("DELETE", f"/senders/{tag}")
    time.sleep(0.5)  # the log file is written by another process
    lines = [line for line in admin_api.process.log().splitlines() if f"of sender {tag}" in line]
    assert [line.split("Admin change: ")[1].split(" ")[0] for line in lines] == [
        "create", "update", "rotate_key", "delete"]
    assert all(" INFO " in line for line in lines)


def test_no_key_or_token_in_log_or_answers(admin_api, tag):
    created = create(admin_api, tag)
    rotated = admin_api.request("POST", f"/senders/{tag}/keys/rotate")
    errors = [admin_api.request("GET", "/senders", token="wrong-token-of-enough-length"),
              create(admin_api, tag),
              admin_api.request("POST", "/senders", json={"app_tag": tag, "mailbox": "x", "api_key": "y"})]
    time.sleep(0.5)
    log = admin_api.process.log()
    secrets = [admin_api.token, created.json()["api_key"], rotated.json()["api_key"]]
    for secret in secrets:
        assert secret not in log
        assert all(secret not in error.text for error in errors)


# --- start-up ------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", ["", "too-short"])
def test_refuses_to_start_without_usable_token(service_env, token):
    env = {**os.environ, **service_env, "ADMIN_TOKEN": token, "WORKERS": "1"}
    result = subprocess.run([sys.executable, "-m", "functions_framework", "--target", "admin",
                             "--source", "functions/admin/main.py", "--port", str(free_port()),
                             "--host", "127.0.0.1"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ADMIN_TOKEN" in result.stderr



def test_healthz_needs_no_token(admin_api):
    assert requests.get(f"{admin_api.url}/healthz", timeout=10).status_code == 200


def test_readyz_reports_nats_and_postgres(admin_api):
    body = requests.get(f"{admin_api.url}/readyz", timeout=10).json()
    assert set(body["checks"]) == {"nats", "postgres"}


def test_readyz_is_200_with_servers_up(admin_api):
    assert requests.get(f"{admin_api.url}/readyz", timeout=10).status_code == 200
