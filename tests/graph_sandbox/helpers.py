"""Requests and message bodies that the Graph sandbox tests share."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import requests

from common import settings

GRAPH_SCOPE = settings.GRAPH_SCOPE
TENANT = settings.SANDBOX_TENANT_ID
CLIENT_ID = settings.SANDBOX_CLIENT_ID
CLIENT_SECRET = settings.SANDBOX_CLIENT_SECRET
MAILBOX = "sender@example.com"


def https_session(ca_path: Path) -> requests.Session:
    """Return a session that trusts only the sandbox's CA.

    trust_env is off because requests lets REQUESTS_CA_BUNDLE (set on many machines to the system
    bundle) override Session.verify for every request that does not pass verify itself.
    """
    session = requests.Session()
    session.verify = str(ca_path)
    session.trust_env = False
    return session


def token_url(base_url: str, tenant: str = TENANT) -> str:
    return f"{base_url}/{tenant}/oauth2/v2.0/token"


def fetch_token(http: requests.Session, base_url: str) -> str:
    response = http.post(
        token_url(base_url),
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": GRAPH_SCOPE,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def recipients(*addresses: str) -> list[dict[str, Any]]:
    return [{"emailAddress": {"address": address}} for address in addresses]


def message(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "subject": "Quarterly report",
        "body": {"contentType": "Text", "content": "See the attachment."},
        "toRecipients": recipients("alice@example.org"),
    }
    body.update(overrides)
    return body


def file_attachment(name: str, data: bytes, **overrides: Any) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.fileAttachment",
        "name": name,
        "contentType": "application/octet-stream",
        "contentBytes": base64.b64encode(data).decode("ascii"),
    }
    attachment.update(overrides)
    return attachment


def send_mail(
    http: requests.Session,
    base_url: str,
    token: str,
    payload: Any,
    mailbox: str = MAILBOX,
    headers: dict[str, str] | None = None,
) -> requests.Response:
    return http.post(
        f"{base_url}/v1.0/users/{mailbox}/sendMail",
        json=payload,
        headers={**bearer(token), **(headers or {})},
    )


def listed_messages(http: requests.Session, base_url: str, **params: str) -> list[dict[str, Any]]:
    response = http.get(f"{base_url}/_sandbox/messages", params=params)
    assert response.status_code == 200
    return response.json()["messages"]


def graph_error(response: requests.Response) -> dict[str, Any]:
    return response.json()["error"]


def add_fault(http: requests.Session, base_url: str, **spec: Any) -> dict[str, Any]:
    response = http.post(f"{base_url}/_sandbox/faults", json=spec)
    assert response.status_code == 201, response.text
    return response.json()
