"""HTTP ingest: check the API key, validate a mail, store it as a job in JetStream, return 202.

``GET /jobs/{id}`` returns a job's delivery status to the application that sent it.

Run: ``functions-framework --target send_email --source functions/send_email/main.py --port 8080``
"""

from __future__ import annotations

import logging
from functools import lru_cache

import flask
import functions_framework

from common.apikeys import ApiKeyStore
from common.attachments import AttachmentStore, ensure_object_store
from common.auth import SendAuthorizer
from common.db import Database, redact_dsn
from common.errors import ServiceError
from common.health import database_check, health_response, publisher_check
from common.http import (apply_server_defaults, guarded_response, json_response, method_not_allowed_response,
                         not_found_response, read_json_object, request_language)
from common.idempotency import IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER, parse_idempotency_key
from common.intake import Accepted, Intake
from common.job_store import JobRecord, JobStore
from common.jobs import parse_job_id
from common.limits import check_limits
from common.metrics import Metric, get_metrics
from common.openapi import OPENAPI_PATH, SEND_EMAIL_DOCUMENT, openapi_response
from common.queue import JetStreamPublisher
from common.schemas import load_send_request
from common.senders import SenderCache, SenderStore
from common.settings import SERVICE_API, Settings, get_observability_settings, get_settings
from common.tracing import configure_entry_point, name_request

logger = logging.getLogger(__name__)

SEND_PATH = "/send-email"
JOBS_PATH_PREFIX = "/jobs/"

apply_server_defaults()
configure_entry_point(SERVICE_API, get_settings().log_level)
logger.info("send_email loaded: NATS %s (stream %s), database %s, Graph %s", get_settings().nats_url,
            get_settings().nats_stream, redact_dsn(get_settings().db_dsn), get_settings().graph_base_url)
if get_settings().allow_keyless_send:
    logger.warning("ALLOW_KEYLESS_SEND is on: send requests without an API key are accepted. "
                   "Turn it off once every client sends its key.")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_dsn)
        self.jobs = JobStore(self.db)
        self.senders = SenderCache(SenderStore(self.db), settings.sender_cache_ttl_seconds, ApiKeyStore(self.db))
        self.auth = SendAuthorizer(self.senders, settings.allow_keyless_send)
        self.publisher = JetStreamPublisher(settings, name="email-api", setup=[ensure_object_store])
        self.intake = Intake(settings, self.senders, self.jobs, self.publisher,
                             AttachmentStore(settings, self.publisher))
        timeout = get_observability_settings().health_check_timeout_seconds
        self.readiness_checks = {"nats": publisher_check(self.publisher, settings.nats_url, timeout),
                                 "postgres": database_check(self.db)}


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())


@functions_framework.http
def send_email(request: flask.Request) -> flask.Response:
    health = health_response(request, services().readiness_checks)
    if health is not None:
        return health

    language = request_language(request)
    path = request.path.rstrip("/")
    if request.path == OPENAPI_PATH and request.method == "GET":
        return openapi_response(SEND_EMAIL_DOCUMENT)
    if path.startswith(JOBS_PATH_PREFIX):
        name_request(f"{request.method} {JOBS_PATH_PREFIX}{{id}}")
        return job_status(request, language, path[len(JOBS_PATH_PREFIX):])
    if path != SEND_PATH:
        return not_found_response(request, language)
    if request.method != "POST":
        return method_not_allowed_response(request, language, "POST")
    name_request(f"POST {SEND_PATH}")

    return guarded_response(lambda: accepted_response(accept(request, language)), language)


def accepted_response(accepted: Accepted) -> flask.Response:
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else {}
    return json_response({"job_id": accepted.job_id, "status": accepted.status.value}, 202, headers)


def accept(request: flask.Request, language: str) -> Accepted:
    """Authorize and validate the request, record its job and store it; raise ServiceError otherwise."""
    svc = services()
    key = svc.auth.authenticate(request.headers)
    idempotency_key = parse_idempotency_key(request.headers.get(IDEMPOTENCY_KEY_HEADER))

    payload = read_json_object(request, svc.settings.max_request_body_bytes)
    if key is not None:
        payload = svc.auth.bind_app_tag(payload, key)
    mail = load_send_request(payload, language)
    check_limits(mail, svc.settings, language)
    if key is None:
        svc.auth.admit_keyless(mail["app_tag"], client=request.remote_addr or "-")

    accepted = svc.intake.accept(mail, idempotency_key)
    if not accepted.replayed:
        get_metrics().increment(Metric.ACCEPTED, mail["app_tag"])
    return accepted


def job_status(request: flask.Request, language: str, raw_job_id: str) -> flask.Response:
    if request.method != "GET":
        return method_not_allowed_response(request, language, "GET")

    return guarded_response(lambda: json_response(find_job(request, raw_job_id).to_json(), 200), language)


def find_job(request: flask.Request, raw_job_id: str) -> JobRecord:
    # The key is checked first, so a caller without one learns nothing about job ids.
    app_tag = caller_app_tag(request)
    return services().jobs.find(parse_job_id(raw_job_id), app_tag)


def caller_app_tag(request: flask.Request) -> str | None:
    """Return the app_tag whose jobs the caller may read: that of its API key.

    Without a key (only while ALLOW_KEYLESS_SEND is on) it is None, and any job can be read by its id,
    which is a random UUID.
    """
    key = services().auth.authenticate(request.headers)
    return key.app_tag if key is not None else None
