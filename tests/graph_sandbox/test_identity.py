"""Entra ID's discovery and token endpoints, used by MSAL unmodified."""

from __future__ import annotations

from typing import Any

import msal
import pytest
import requests

from graph_sandbox.server import SandboxServer
from tests.graph_sandbox.helpers import (
    CLIENT_ID,
    CLIENT_SECRET,
    GRAPH_SCOPE,
    TENANT,
    token_url,
)


def msal_app(
    sandbox: SandboxServer, http: requests.Session, secret: str = CLIENT_SECRET, client_id: str = CLIENT_ID
) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{sandbox.url}/{TENANT}",
        instance_discovery=False,
        http_client=http,
    )


def token_form(**overrides: str | None) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": GRAPH_SCOPE,
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_openid_configuration_lists_https_endpoints(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.get(f"{sandbox.url}/{TENANT}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 200
    config = response.json()
    assert config["token_endpoint"] == f"{sandbox.url}/{TENANT}/oauth2/v2.0/token"
    assert config["authorization_endpoint"] == f"{sandbox.url}/{TENANT}/oauth2/v2.0/authorize"
    assert config["issuer"] == f"{sandbox.url}/{TENANT}/v2.0"


@pytest.mark.parametrize(
    ("tenant", "code"),
    [
        ("99999999-2222-3333-4444-555555555555", 90002),
        ("contoso.onmicrosoft.com", 90002),
        ("not_a_tenant", 900023),
    ],
)
def test_openid_configuration_unknown_tenant(
    sandbox: SandboxServer, http: requests.Session, tenant: str, code: int
) -> None:
    response = http.get(f"{sandbox.url}/{tenant}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_tenant"
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    assert body["correlation_id"] == response.headers["client-request-id"]


def test_msal_acquires_token_unmodified(sandbox: SandboxServer, http: requests.Session) -> None:
    result = msal_app(sandbox, http).acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert "error" not in result, result
    assert result["token_type"] == "Bearer"
    assert result["expires_in"] == 3599
    assert len(result["access_token"]) >= 32


def test_msal_reuses_cached_token(sandbox: SandboxServer, http: requests.Session) -> None:
    app = msal_app(sandbox, http)

    first = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])
    second = app.acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert second["access_token"] == first["access_token"]
    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["token_requests"] == {"total": 1, "by_status": {"200": 1}}


def test_msal_wrong_secret_returns_invalid_client(sandbox: SandboxServer, http: requests.Session) -> None:
    result = msal_app(sandbox, http, secret="wrong-secret").acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert result["error"] == "invalid_client"
    assert result["error_description"].startswith("AADSTS7000215: ")
    assert result["error_codes"] == [7000215]


def test_msal_unknown_client_returns_unauthorized_client(
    sandbox: SandboxServer, http: requests.Session
) -> None:
    unknown = "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee"
    result = msal_app(sandbox, http, client_id=unknown).acquire_token_for_client(scopes=[GRAPH_SCOPE])

    assert result["error"] == "unauthorized_client"
    assert result["error_codes"] == [700016]


def test_token_response_format(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(token_url(sandbox.url), data=token_form())

    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["token_type", "expires_in", "ext_expires_in", "access_token"]
    assert body["expires_in"] == body["ext_expires_in"] == 3599
    assert response.headers["Cache-Control"] == "no-store, no-cache"


def test_token_accepts_client_secret_basic(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        token_url(sandbox.url),
        data=token_form(client_id=None, client_secret=None),
        auth=(CLIENT_ID, CLIENT_SECRET),
    )

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", 7000215),
        ({"client_secret": None}, 401, "invalid_client", 7000218),
        ({"client_id": "bbbbbbbb-bbbb-cccc-dddd-eeeeeeeeeeee"}, 400, "unauthorized_client", 700016),
        ({"client_id": None}, 400, "invalid_request", 900144),
        ({"grant_type": None}, 400, "invalid_request", 900144),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
        ({"scope": None}, 400, "invalid_request", 900144),
        ({"scope": "https://graph.microsoft.com/Mail.Send"}, 400, "invalid_scope", 1002012),
        ({"scope": "https://storage.azure.com/.default"}, 400, "invalid_resource", 500011),
        ({"scope": f"{GRAPH_SCOPE} openid"}, 400, "invalid_scope", 70011),
    ],
)
def test_token_request_errors(
    sandbox: SandboxServer, http: requests.Session, form: dict[str, Any], status: int, error: str, code: int
) -> None:
    response = http.post(token_url(sandbox.url), data=token_form(**form))

    assert response.status_code == status
    body = response.json()
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")


def test_token_unknown_tenant_is_aadsts90002(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.post(
        token_url(sandbox.url, tenant="99999999-2222-3333-4444-555555555555"), data=token_form()
    )

    assert response.status_code == 400
    assert response.json()["error_codes"] == [90002]


def test_token_endpoint_rejects_get(sandbox: SandboxServer, http: requests.Session) -> None:
    response = http.get(token_url(sandbox.url))

    assert response.status_code == 400
    assert response.json()["error_codes"] == [900561]


def test_token_requests_counted_by_status(sandbox: SandboxServer, http: requests.Session) -> None:
    http.post(token_url(sandbox.url), data=token_form())
    http.post(token_url(sandbox.url), data=token_form(client_secret="wrong"))

    stats = http.get(f"{sandbox.url}/_sandbox/stats").json()
    assert stats["token_requests"] == {"total": 2, "by_status": {"200": 1, "401": 1}}
