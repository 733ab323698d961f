"""HTTP ingest: check the API key, validate a mail, store it as a job in JetStream, return 202.

Run: ``functions-framework --target send_email --source functions/send_email/main.py --port 8080``
"""

from __future__ import annotations

import logging
from functools import lru_cache

import flask
import functions_framework

from common.apikeys import ApiKeyStore
from common.attachments import AttachmentStore, ensure_object_store, object_names
from common.auth import SendAuthorizer
from common.db import Database
from common.errors import ServiceError
from common.health import database_check, health_response, publisher_check
from common.http import (apply_server_defaults, error_response, internal_error_response, json_response,
                         method_not_allowed_response, not_found_response, read_json_object,
                         request_language)
from common.jobs import Job, JobStatus
from common.limits import check_limits
from common.logs import job_context, mask_addresses
from common.metrics import Metric, get_metrics
from common.openapi import OPENAPI_PATH, SEND_EMAIL_DOCUMENT, openapi_response
from common.queue import MSG_ID_HEADER, JetStreamPublisher
from common.schemas import load_send_request
from common.senders import SenderCache, SenderStore
from common.settings import SERVICE_API, Settings, get_observability_settings, get_settings
from common.tracing import configure_entry_point, name_request

logger = logging.getLogger(__name__)

SEND_PATH = "/send-email"

apply_server_defaults()
configure_entry_point(SERVICE_API, get_settings().log_level)
if get_settings().allow_keyless_send:
    logger.warning("ALLOW_KEYLESS_SEND is on: send requests without an API key are accepted. "
                   "Turn it off once every client sends its key.")


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = Database(settings.db_dsn)
        self.senders = SenderCache(SenderStore(self.db), settings.sender_cache_ttl_seconds, ApiKeyStore(self.db))
        self.auth = SendAuthorizer(self.senders, settings.allow_keyless_send)
        self.publisher = JetStreamPublisher(settings, name="email-api", setup=[ensure_object_store])
        self.attachments = AttachmentStore(settings, self.publisher)
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
    if request.path == OPENAPI_PATH and request.method == "GET":
        return openapi_response(SEND_EMAIL_DOCUMENT)
    if request.path.rstrip("/") != SEND_PATH:
        return not_found_response(request, language)
    if request.method != "POST":
        return method_not_allowed_response(request, language, "POST")
    name_request(f"POST {SEND_PATH}")

    try:
        job = accept(request, language)
    except ServiceError as exc:
        return error_response(exc, language)
    except Exception:  # noqa: BLE001 - answer JSON, never functions-framework's HTML page
        return internal_error_response(language)
    return json_response({"job_id": job.job_id, "status": JobStatus.QUEUED.value}, 202)


def accept(request: flask.Request, language: str) -> Job:
    """Authorize and validate the request and store its job; raise ServiceError when it is not accepted."""
    svc = services()
    key = svc.auth.authenticate(request.headers)

    payload = read_json_object(request, svc.settings.max_request_body_bytes)
    if key is not None:
        payload = svc.auth.bind_app_tag(payload, key)
    mail = load_send_request(payload, language)
    check_limits(mail, svc.settings, language)
    if key is None:
        svc.auth.admit_keyless(mail["app_tag"], client=request.remote_addr or "-")

    job = Job.new(mail)
    with job_context(job.job_id, job.app_tag):
        if not svc.attachments.fits_in_message(job):
            job = svc.attachments.offload(job)
        try:
            sequence = svc.publisher.publish(svc.settings.job_subject, job.to_bytes(),
                                             {MSG_ID_HEADER: job.job_id})
        except ServiceError:
            svc.attachments.delete(object_names(job))
            raise
        logger.info("Job queued as stream sequence %d for %s", sequence, mask_addresses(mail["recipients"]))
    get_metrics().increment(Metric.ACCEPTED, job.app_tag)
    return job
