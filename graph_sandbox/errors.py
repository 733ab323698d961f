"""Error responses in the formats of Microsoft Graph and of Entra ID's token service.

Graph: ``{"error": {"code", "message", "innerError": {"date", "request-id", "client-request-id"}}}``
with ``request-id`` and ``client-request-id`` response headers.
Entra ID: ``{"error", "error_description": "AADSTS<n>: ...", "error_codes": [n], "timestamp",
"trace_id", "correlation_id", "error_uri"}``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Mapping

from flask import Response, g, jsonify, request


class GraphError(Exception):
    """A Graph error response: HTTP status, Graph error code and message."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


class EntraError(Exception):
    """An Entra ID OAuth error: HTTP status, OAuth error, AADSTS number and description."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(f"{status} {error}: AADSTS{aadsts}: {description}")
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


def graph_error_response(error: GraphError) -> Response:
    body = {
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                # Graph writes this date without fraction or zone, e.g. 2024-05-10T12:34:56.
                "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": g.request_id,
                "client-request-id": g.client_request_id,
            },
        }
    }
    response = jsonify(body)
    response.status_code = error.status
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def entra_error_response(error: EntraError) -> Response:
    now = datetime.now(timezone.utc)
    trace_id = g.request_id
    correlation_id = g.client_request_id
    description = (
        f"AADSTS{error.aadsts}: {error.description}\r\n"
        f"Trace ID: {trace_id}\r\n"
        f"Correlation ID: {correlation_id}\r\n"
        f"Timestamp: {now.strftime('%Y-%m-%d %H:%M:%S')}Z"
    )
    body = {
        "error": error.error,
        "error_description": description,
        "error_codes": [error.aadsts],
        "timestamp": now.strftime("%Y-%m-%d %H:%M:%SZ"),
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        # Entra ID links its own host. The sandbox links itself, so no link points off this machine.
        "error_uri": f"{request.host_url}error?code={error.aadsts}",
    }
    response = jsonify(body)
    response.status_code = error.status
    response.headers["Cache-Control"] = "no-store, no-cache"
    response.headers["Pragma"] = "no-cache"
    return response
