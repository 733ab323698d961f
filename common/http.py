"""Helpers of the HTTP functions: server defaults, JSON bodies and localized error responses."""

from __future__ import annotations

import json
from collections.abc import Callable
import logging
import os
import uuid
from typing import Any

import flask
from werkzeug.exceptions import RequestEntityTooLarge

from common.errors import (InvalidJSON, JSONNotObject, PayloadTooLarge, RequestTooLarge, ServiceError,
                           ValidationFailed)
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


def read_json_object(request: flask.Request, max_bytes: int | None = None) -> dict[str, Any]:
    """Parse the request body as a JSON object; raise InvalidJSON, JSONNotObject or RequestTooLarge.

    With max_bytes, a larger body raises RequestTooLarge without being read: a Content-Length over the
    limit is rejected before reading, and werkzeug stops reading a chunked body one byte past it.
    """
    if max_bytes is not None and (request.content_length or 0) > max_bytes:
        raise _request_too_large(max_bytes)
    if max_bytes is not None:
        # werkzeug's limit stream returns the first max_content_length bytes without an error and
        # raises only on the next read, so one byte more shows whether the body is longer.
        request.max_content_length = max_bytes + 1
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge as exc:
        raise _request_too_large(max_bytes) from exc
    if max_bytes is not None and len(raw) > max_bytes:
        raise _request_too_large(max_bytes)

    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise invalid_json(exc) from exc
    if not isinstance(payload, dict):
        kind = type(payload).__name__
        raise JSONNotObject(f"Request body is JSON of type {kind}; expected an object.", type=kind)
    return payload


def _request_too_large(limit: int | None) -> RequestTooLarge:
    return RequestTooLarge(f"Request body exceeds the limit of {limit} bytes.", limit=limit)


def log_rejection(exc: ServiceError) -> None:
    """Log one line per rejected request: the route and the error code, never the body or a key."""
    method, path = ("-", "-")
    if flask.has_request_context():
        method, path = flask.request.method, flask.request.path
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    logger.log(level, "%s %s rejected with %d %s", method, path, exc.status, exc.code)


def invalid_json(exc: Exception) -> InvalidJSON:
    """Describe a JSON parse error by its position only, because the parser's text is English."""
    error = InvalidJSON(f"Request body is not valid JSON: {exc}.")
    if isinstance(exc, json.JSONDecodeError):
        error.params = {"line": exc.lineno, "column": exc.colno}
    elif isinstance(exc, UnicodeDecodeError):
        error.message_key, error.params = "invalid_json_encoding", {"offset": exc.start}
    else:
        error.message_key = "invalid_json_depth"
    return error


def json_response(body: dict[str, Any], status: int, headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(exc: ServiceError, language: str) -> flask.Response:
    log_rejection(exc)
    body: dict[str, Any] = {"error": exc.code, "message": exc.localized(language)}
    if isinstance(exc, ValidationFailed):
        body["fields"] = exc.fields
    if isinstance(exc, PayloadTooLarge) and "limit" in exc.params:
        body["limit_bytes"] = exc.params["limit"]
    headers = {"Content-Language": language}
    if exc.status == 503:
        headers["Retry-After"] = "5"
    if exc.status == 401:
        headers["WWW-Authenticate"] = "Bearer"  # RFC 6750, section 3
    response = json_response(body, exc.status, headers)
    if isinstance(exc, RequestTooLarge):
        # functions-framework (3.10, read_request) reads the rest of the request body after every
        # response that is not streamed. That read would raise the 413 again and return a 500.
        response.response = iter([response.get_data()])
        del response.headers["Content-Length"]
    return response


def guarded_response(action: Callable[[], flask.Response], language: str) -> flask.Response:
    """Return action's response; a ServiceError becomes its JSON error, anything else a logged 500.

    Handlers return JSON in every case, never functions-framework's HTML error page.
    """
    try:
        return action()
    except ServiceError as exc:
        return error_response(exc, language)
    except Exception:  # noqa: BLE001 - the 500 logs it with a request id
        return internal_error_response(language)


def internal_error_response(language: str) -> flask.Response:
    """Log the exception being handled and return 500 with an id that finds the log line."""
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
