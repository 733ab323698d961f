"""HTTP ingest: validate a mail, store it as a job in JetStream, answer 202 with the job id.

``GET /jobs/{id}`` returns a job's delivery status.

Run: ``functions-framework --target send_email --source functions/send_email/main.py --port 8080``
"""

from __future__ import annotations

import logging
from functools import lru_cache

import flask
import functions_framework

from common.db import Database
from common.errors import ServiceError
from common.http import (apply_server_defaults, error_response, internal_error_response, json_response,
                         method_not_allowed_response, not_found_response, read_json_object,
                         request_language)
from common.idempotency import IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER, parse_idempotency_key
from common.intake import Accepted, Intake
from common.job_store import JobRecord, JobStore
from common.jobs import parse_job_id
from common.logs import configure_logging
from common.queue import JetStreamPublisher
from common.schemas import load_send_request
from common.senders import SenderCache, SenderStore
from common.settings import Settings, get_settings

logger = logging.getLogger(__name__)

SEND_PATH = "/send-email"
JOBS_PATH_PREFIX = "/jobs/"

apply_server_defaults()
configure_logging(get_settings().log_level)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        database = Database(settings.db_dsn)
        self.jobs = JobStore(database)
        senders = SenderCache(SenderStore(database), settings.sender_cache_ttl_seconds)
        self.intake = Intake(settings, senders, self.jobs, JetStreamPublisher(settings, name="email-api"))


@lru_cache(maxsize=1)
def services() -> Services:
    return Services(get_settings())


@functions_framework.http
def send_email(request: flask.Request) -> flask.Response:
    language = request_language(request)
    path = request.path.rstrip("/")
    if path.startswith(JOBS_PATH_PREFIX):
        return job_status(request, language, path[len(JOBS_PATH_PREFIX):])
    if path != SEND_PATH:
        return not_found_response(request, language)
    if request.method != "POST":
        return method_not_allowed_response(request, language, "POST")

    try:
        accepted = accept(request, language)
    except ServiceError as exc:
        return error_response(exc, language)
    except Exception:  # noqa: BLE001 - answer JSON, never functions-framework's HTML page
        return internal_error_response(language)
    headers = {REPLAYED_HEADER: "true"} if accepted.replayed else {}
    return json_response({"job_id": accepted.job_id, "status": accepted.status.value}, 202, headers)


def accept(request: flask.Request, language: str) -> Accepted:
    """Validate the request, record its job and store it in JetStream; raise ServiceError otherwise."""
    idempotency_key = parse_idempotency_key(request.headers.get(IDEMPOTENCY_KEY_HEADER))
    mail = load_send_request(read_json_object(request), language)
    return services().intake.accept(mail, idempotency_key)


def job_status(request: flask.Request, language: str, raw_job_id: str) -> flask.Response:
    if request.method != "GET":
        return method_not_allowed_response(request, language, "GET")

    try:
        record = find_job(request, raw_job_id)
    except ServiceError as exc:
        return error_response(exc, language)
    except Exception:  # noqa: BLE001 - answer JSON, never functions-framework's HTML page
        return internal_error_response(language)
    return json_response(record.to_json(), 200)


def find_job(request: flask.Request, raw_job_id: str) -> JobRecord:
    return services().jobs.find(parse_job_id(raw_job_id), caller_app_tag(request))


def caller_app_tag(request: flask.Request) -> str | None:
    """Return the app_tag whose jobs the caller may read, or None for every job.

    TODO: return the app_tag of the caller's API key once requests are authenticated; until then every
    caller can read every job by its id.
    """
    return None
