"""The service's one exception hierarchy.

Errors of pg8000, requests, msal and nats-py are translated into these where they enter the code
(``raise ... from exc``), so callers handle service concepts instead of library types. Each error
carries an HTTP status, a stable code for API clients and a catalog message key, so the same error
renders in English or German.
"""

from __future__ import annotations

from typing import Any

from common.i18n import DEFAULT_LANGUAGE, translate


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    status: int = 500
    code: str = "internal_error"
    message_key: str | None = None
    # Transient errors may succeed when retried later; the worker naks them instead of failing the job.
    transient: bool = False

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params = params

    def localized(self, language: str = DEFAULT_LANGUAGE) -> str:
        """Return the operator-facing message in language, or the English message without a key."""
        if self.message_key is None:
            return self.message
        return translate(self.message_key, language, **self.params)


# Request errors (ingest and admin HTTP)

class InvalidJSON(ServiceError):
    status = 400
    code = "invalid_json"
    message_key = "invalid_json"


class JSONNotObject(ServiceError):
    status = 400
    code = "invalid_json"
    message_key = "json_not_object"


class ValidationFailed(ServiceError):
    """Schema errors; ``fields`` maps each failing field to its reasons, in marshmallow's shape."""

    status = 422
    code = "validation_failed"
    message_key = "validation_failed"

    def __init__(self, message: str, fields: dict[str, Any], **params: Any) -> None:
        super().__init__(message, **params)
        self.fields = fields


class UnknownAppTag(ServiceError):
    status = 422
    code = "unknown_app_tag"
    message_key = "unknown_app_tag"


class PayloadTooLarge(ServiceError):
    status = 413
    code = "payload_too_large"
    message_key = "payload_too_large"


class RequestTooLarge(PayloadTooLarge):
    """The request body is larger than MAX_REQUEST_BODY_BYTES; raised before the body is read in full."""

    message_key = "request_too_large"


class MessageTooLarge(PayloadTooLarge):
    """The mail (attachments, subject and body) is larger than MAX_MESSAGE_BYTES."""

    message_key = "message_too_large"


class MessageTextTooLarge(PayloadTooLarge):
    """The mail without its attachments is larger than one Graph request may be."""

    message_key = "message_text_too_large"
class InvalidIdempotencyKey(ServiceError):
    status = 400
    code = "invalid_idempotency_key"
    message_key = "invalid_idempotency_key"


class IdempotencyKeyReused(ServiceError):
    """The Idempotency-Key names an earlier request of the application whose body differs."""

    status = 409
    code = "idempotency_key_reused"
    message_key = "idempotency_key_reused"


class InvalidJobId(ServiceError):
    status = 400
    code = "invalid_job_id"
    message_key = "invalid_job_id"


class JobNotFound(ServiceError):
    status = 404
    code = "job_not_found"
    message_key = "job_not_found"


class JobNotDead(ServiceError):
    """Only a dead job can be requeued."""

    status = 409
    code = "job_not_dead"
    message_key = "job_not_dead"


class DeadLetterMissing(ServiceError):
    """The dead-letter copy of a dead job expired or was deleted, so the job cannot be requeued."""

    status = 410
    code = "dead_letter_missing"
    message_key = "dead_letter_missing"


class InvalidArgument(ServiceError):
    """A command-line value is invalid; the message is already localized."""

    status = 422
    code = "invalid_argument"


# Authentication and authorization (ingest and admin HTTP)

class Unauthorized(ServiceError):
    """The request carries no valid credential: 401 with a WWW-Authenticate header."""

    status = 401
    code = "unauthorized"


class ApiKeyMissing(Unauthorized):
    code = "api_key_missing"
    message_key = "api_key_missing"


class ApiKeyInvalid(Unauthorized):
    """The API key is malformed, unknown, revoked or expired; the client message does not tell which."""

    code = "api_key_invalid"
    message_key = "api_key_invalid"


class AuthorizationMalformed(Unauthorized):
    code = "authorization_malformed"
    message_key = "authorization_malformed"


class AdminTokenInvalid(Unauthorized):
    code = "admin_token_invalid"
    message_key = "admin_token_invalid"


class Forbidden(ServiceError):
    status = 403
    code = "forbidden"


class AppTagMismatch(Forbidden):
    code = "app_tag_mismatch"
    message_key = "app_tag_mismatch"


class SenderDisabled(Forbidden):
    code = "sender_disabled"
    message_key = "sender_disabled"


class ConfigurationError(ServiceError):
    """A setting is missing or invalid, so the process cannot start."""

    code = "configuration_error"


# Infrastructure errors

class QueueUnavailable(ServiceError):
    status = 503
    code = "queue_unavailable"
    message_key = "queue_unavailable"
    transient = True
    # True when a publish timed out: JetStream may have stored the message all the same.
    maybe_stored = False


class DatabaseUnavailable(ServiceError):
    status = 503
    code = "database_unavailable"
    message_key = "database_unavailable"
    transient = True


class DatabaseError(ServiceError):
    """A statement failed for a reason that a retry does not fix (a bug or a schema mismatch)."""

    code = "database_error"


class SenderExists(ServiceError):
    status = 409
    code = "sender_exists"
    message_key = "cli_sender_exists"


class SenderNotFound(ServiceError):
    status = 404
    code = "sender_not_found"
    message_key = "cli_sender_not_found"


# Job errors (worker)

class PoisonJob(ServiceError):
    """A queued message that can never be processed: not JSON, or not a job of a known version."""

    code = "poison_job"


class AttachmentMissing(ServiceError):
    """An attachment of a queued job is gone from the object store (retention passed, or deleted)."""

    code = "attachment_missing"


# Microsoft Graph and Entra ID errors

class GraphError(ServiceError):
    """Graph returned an error status, and ``graph_code`` is Graph's error code, if any."""

    code = "graph_error"

    def __init__(self, message: str, *, status_code: int | None = None, graph_code: str | None = None,
                 retry_after: float | None = None, transient: bool = False,
                 maybe_delivered: bool = False) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.graph_code = graph_code
        self.retry_after = retry_after
        self.transient = transient
        # True when Graph may have acted on the request although no 202 arrived (a read timeout, a
        # connection lost while waiting, a 500, 502 or 504), so a send must be looked up before a resend.
        self.maybe_delivered = maybe_delivered


class GraphUnavailable(GraphError):
    """Graph or Entra ID could not be reached, or did not respond in time."""

    code = "graph_unavailable"

    def __init__(self, message: str, maybe_delivered: bool = False) -> None:
        super().__init__(message, transient=True, maybe_delivered=maybe_delivered)


class TokenError(GraphError):
    """Entra ID refused the client credentials (wrong secret, unknown app or tenant)."""

    code = "token_error"
