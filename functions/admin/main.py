"""Admin HTTP API: sender CRUD and API key rotation, behind the admin token.

Run: ``ADMIN_TOKEN=... functions-framework --target admin --source functions/admin/main.py --port 8081``

Every endpoint except GET /openapi.json, /healthz and /readyz needs ``Authorization: Bearer
<ADMIN_TOKEN>``. Without ADMIN_TOKEN the function does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache

import flask
import functions_framework
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule

from common.auth import check_admin_token, require_admin_token
from common.db import Database, redact_dsn
from common.errors import ConfigurationError, ServiceError
from common.http import (apply_server_defaults, error_response, guarded_response, json_response,
                         method_not_allowed_response, not_found_response, read_json_object,
                         request_language)
from common.health import database_check, health_response, nats_check
from common.openapi import ADMIN_DOCUMENT, OPENAPI_PATH, openapi_response
from common.sender_admin import SenderAdmin, created_json, rotation_json, sender_json
from common.sender_schemas import (key_rotation_schema, load_admin_request, sender_create_schema,
                                   sender_update_schema)
from common.settings import SERVICE_ADMIN, get_observability_settings, get_settings
from common.tracing import configure_entry_point, name_request

logger = logging.getLogger(__name__)

apply_server_defaults()
configure_entry_point(SERVICE_ADMIN, get_settings().log_level)
try:
    ADMIN_TOKEN = require_admin_token(get_settings())
except ConfigurationError as exc:
    # functions-framework imports this module before it listens, so the process exits with this message.
    raise SystemExit(f"admin: {exc}") from exc

logger.info("admin loaded: database %s", redact_dsn(get_settings().db_dsn))

URL_MAP = Map([
    Rule("/senders", endpoint="list_senders", methods=["GET"]),
    Rule("/senders", endpoint="create_sender", methods=["POST"]),
    Rule("/senders/<app_tag>", endpoint="get_sender", methods=["GET"]),
    Rule("/senders/<app_tag>", endpoint="update_sender", methods=["PATCH"]),
    Rule("/senders/<app_tag>", endpoint="delete_sender", methods=["DELETE"]),
    Rule("/senders/<app_tag>/keys/rotate", endpoint="rotate_key", methods=["POST"]),
], strict_slashes=False)
# Span resources name the route, not the app_tag in the path.
URL_MAP_PATTERNS = {rule.endpoint: rule.rule for rule in URL_MAP.iter_rules()}


@lru_cache(maxsize=1)
def database() -> Database:
    return Database(get_settings().db_dsn)


@lru_cache(maxsize=1)
def sender_admin() -> SenderAdmin:
    return SenderAdmin(database())


@lru_cache(maxsize=1)
def readiness_checks() -> dict[str, Callable[[], None]]:
    # The admin function keeps no NATS connection; a ready stack still needs NATS for the senders it adds.
    timeout = get_observability_settings().health_check_timeout_seconds
    return {"nats": nats_check(get_settings().nats_url, timeout), "postgres": database_check(database())}


@functions_framework.http
def admin(request: flask.Request) -> flask.Response:
    health = health_response(request, readiness_checks())
    if health is not None:
        return health

    language = request_language(request)
    if request.path == OPENAPI_PATH and request.method == "GET":
        return openapi_response(ADMIN_DOCUMENT)

    try:
        check_admin_token(request.headers, ADMIN_TOKEN)
        endpoint, arguments = URL_MAP.bind_to_environ(request.environ).match()
    except ServiceError as exc:
        return error_response(exc, language)
    except NotFound:
        return not_found_response(request, language, "admin_not_found")
    except MethodNotAllowed as exc:
        return method_not_allowed_response(request, language, ", ".join(sorted(exc.valid_methods or [])))

    name_request(f"{request.method} {URL_MAP_PATTERNS[endpoint]}")
    return guarded_response(lambda: HANDLERS[endpoint](request, language, **arguments), language)


def list_senders(request: flask.Request, language: str) -> flask.Response:
    return json_response({"senders": [sender_json(sender) for sender in sender_admin().list()]}, 200)


def create_sender(request: flask.Request, language: str) -> flask.Response:
    fields = load_admin_request(sender_create_schema(language), read_json_object(request))
    created = sender_admin().create(fields["app_tag"], fields["mailbox"], fields.get("display_name"),
                                    fields.get("enabled", True))

    return json_response(created_json(created), 201, {"Location": f"/senders/{created.sender.app_tag}"})


def get_sender(request: flask.Request, language: str, app_tag: str) -> flask.Response:
    return json_response(sender_json(sender_admin().get(app_tag)), 200)


def update_sender(request: flask.Request, language: str, app_tag: str) -> flask.Response:
    changes = load_admin_request(sender_update_schema(language), read_json_object(request))
    return json_response(sender_json(sender_admin().update(app_tag, changes)), 200)


def delete_sender(request: flask.Request, language: str, app_tag: str) -> flask.Response:
    sender_admin().delete(app_tag)
    return flask.Response(status=204)


def rotate_key(request: flask.Request, language: str, app_tag: str) -> flask.Response:
    # The body is optional: no body means no grace period.
    payload = read_json_object(request) if request.get_data(cache=True) else {}
    fields = load_admin_request(key_rotation_schema(language), payload)
    rotation = sender_admin().rotate_key(app_tag, fields["grace_seconds"])

    return json_response(rotation_json(rotation), 201)


HANDLERS: dict[str, Callable[..., flask.Response]] = {
    "list_senders": list_senders,
    "create_sender": create_sender,
    "get_sender": get_sender,
    "update_sender": update_sender,
    "delete_sender": delete_sender,
    "rotate_key": rotate_key,
}
