"""Helpers of the HTTP functions: server defaults, JSON bodies and localized error responses."""

from __future__ import annotations

import json
import logging
import os
import uuid
from typing import Any

import flask

from common.errors import InvalidJSON, JSONNotObject, ServiceError, ValidationFailed
from common.i18n import language_from_accept, translate

logger = logging.getLogger(__name__)

ENV_WORKERS = "WORKERS"


def apply_server_defaults() -> None:
    """Run one gunicorn worker per CPU unless WORKERS is set.

    functions-framework 3.10 starts a single worker by default, which caps a 2-core machine at about
    a third of its throughput. It reads WORKERS after importing the function's source, so setting it
    at import time takes effect.
    """
    os.environ.setdefault(ENV_WORKERS, str(os.cpu_count() or 1))


def request_language(request: flask.Request) -> str:
    return language_from_accept(request.headers.get("Accept-Language"))


def read_json_object(request: flask.Request) -> dict[str, Any]:
    """Parse the request body as a JSON object; raise InvalidJSON or JSONNotObject."""
    raw = request.get_data(cache=False)
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidJSON(f"Request body is not valid JSON: {exc}.", reason=str(exc)) from exc
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise JSONNotObject(f"Request body is JSON of type {kind}; expected an object.", type=kind)
    return payload


def json_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(exc: ServiceError, language: str) -> flask.Response:
    body: dict[str, Any] = {"error": exc.code, "message": exc.localized(language)}
    if isinstance(exc, ValidationFailed):
        body["fields"] = exc.fields
    headers = {"Content-Language": language}
    if exc.status == 503:
        headers["Retry-After"] = "5"
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"  # RFC 6750, section 3
    return json_response(body, exc.status, headers)


def internal_error_response(language: str) -> flask.Response:
    """Log the exception being handled and answer 500 with an id that finds the log line."""
    request_id = uuid.uuid4().hex[:12]
    logger.error("Unhandled error (request id %s)", request_id, exc_info=True)
    body = {"error": "internal_error", "message": translate("internal_error", language, request_id=request_id)}
    return json_response(body, 500, {"Content-Language": language})


def not_found_response(request: flask.Request, language: str, hint_key: str = "not_found") -> flask.Response:
    message = translate(hint_key, language, method=request.method, path=request.path)
    return json_response({"error": "not_found", "message": message}, 404, {"Content-Language": language})


def method_not_allowed_response(request: flask.Request, language: str, allowed: str) -> flask.Response:
    message = translate("method_not_allowed", language, method=request.method, path=request.path,
                        allowed=allowed)
    return json_response({"error": "method_not_allowed", "message": message}, 405,
                         {"Content-Language": language, "Allow": allowed})
