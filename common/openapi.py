"""The OpenAPI documents of the HTTP functions, kept in docs/openapi/ and served at /openapi.json."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import flask

from common.http import json_response
from common.settings import REPO_ROOT

OPENAPI_DIR = REPO_ROOT / "docs" / "openapi"
OPENAPI_PATH = "/openapi.json"
SEND_EMAIL_DOCUMENT = "send_email"
ADMIN_DOCUMENT = "admin"


def document_path(name: str) -> Path:
    return OPENAPI_DIR / f"{name}.json"


@lru_cache(maxsize=None)
def load_document(name: str) -> dict[str, Any]:
    """Return the parsed OpenAPI document name (send_email or admin)."""
    return json.loads(document_path(name).read_text(encoding="utf-8"))


def openapi_response(name: str) -> flask.Response:
    return json_response(load_document(name), 200)
