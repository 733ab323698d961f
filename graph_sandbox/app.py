"""The Flask application of the Graph sandbox: Entra ID, Graph mail, upload URLs and /_sandbox."""

from __future__ import annotations

import logging
import uuid

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from graph_sandbox.admin import admin
from graph_sandbox.config import SandboxConfig
from graph_sandbox.context import EXTENSION_KEY, SandboxContext, sandbox_context
from graph_sandbox.errors import EntraError, GraphError, entra_error_response, graph_error_response
from graph_sandbox.identity import identity
from graph_sandbox.mail import graph
from graph_sandbox.state import SandboxState
from graph_sandbox.uploads import uploads

logger = logging.getLogger(__name__)

_GRAPH_PREFIXES = ("/v1.0/", "/api/v2.0/")


def make_app(config: SandboxConfig | None = None, state: SandboxState | None = None) -> Flask:
    """Build the sandbox app. `config` defaults to the environment's and `state` to a fresh one."""
    app = Flask(__name__)
    app.json.sort_keys = False  # type: ignore[attr-defined]  # Graph and Entra ID return keys in their own order.
    app.extensions[EXTENSION_KEY] = SandboxContext(
        config=config or SandboxConfig.from_env(),
        state=state or SandboxState(),
    )

    app.register_blueprint(identity)
    app.register_blueprint(graph)
    app.register_blueprint(uploads)
    app.register_blueprint(admin)

    app.before_request(_start_request)
    app.after_request(_finish_request)
    app.register_error_handler(GraphError, graph_error_response)
    app.register_error_handler(EntraError, entra_error_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected_error)
    return app


def _start_request() -> None:
    g.request_id = str(uuid.uuid4())
    # Graph and Entra ID echo the client's client-request-id, or reuse their own id when there is none.
    g.client_request_id = request.headers.get("client-request-id") or g.request_id
    g.operation = None
    g.extra_headers = {}


def _finish_request(response: Response) -> Response:
    if g.operation is not None:
        sandbox_context().state.record_response(g.operation, response.status_code)

    if request.path.startswith(_GRAPH_PREFIXES):
        response.headers["request-id"] = g.request_id
        response.headers["client-request-id"] = g.client_request_id
    elif g.operation in ("token", "openidConfiguration"):
        response.headers["x-ms-request-id"] = g.request_id
        response.headers["client-request-id"] = g.client_request_id
    for name, value in g.extra_headers.items():
        response.headers[name] = value
    return response


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    if request.path.startswith("/v1.0/") and status == 404:
        # Graph returns 400, not 404, for an unknown path segment.
        segment = request.path.rstrip("/").rsplit("/", 1)[-1]
        return graph_error_response(
            GraphError(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
        )
    if status == 405:
        return graph_error_response(
            GraphError(405, "BadRequest", "Specified HTTP method is not allowed for the request target.")
        )
    return graph_error_response(
        GraphError(status, error.name.replace(" ", ""), error.description or error.name)
    )


def _unexpected_error(error: Exception) -> Response:
    logger.exception("Request %s %s failed with an unexpected error", request.method, request.path)
    return graph_error_response(
        GraphError(500, "UnknownError", f"The Graph sandbox failed: {type(error).__name__}.")
    )
