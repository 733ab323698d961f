"""Every setting of the service, its environment variable and its default.

The functions, the worker, the admin CLI, the Graph sandbox and the local stack read their
configuration here and nowhere else. Defaults point at Microsoft's endpoints; the local run and the
tests override the Graph endpoints with the sandbox's (see ``SANDBOX_*`` below).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Names of the environment variables.
ENV_NATS_URL = "NATS_URL"
ENV_NATS_STREAM = "NATS_STREAM"
ENV_NATS_SUBJECT_PREFIX = "NATS_SUBJECT_PREFIX"
ENV_NATS_CONSUMER = "NATS_CONSUMER"
ENV_DB_DSN = "DB_DSN"
ENV_TENANT_ID = "TENANT_ID"
ENV_CLIENT_ID = "CLIENT_ID"
ENV_CLIENT_SECRET = "CLIENT_SECRET"
ENV_AUTHORITY_HOST = "AUTHORITY_HOST"
ENV_GRAPH_BASE_URL = "GRAPH_BASE_URL"
ENV_GRAPH_CA_BUNDLE = "GRAPH_CA_BUNDLE"
ENV_GRAPH_TIMEOUT_SECONDS = "GRAPH_TIMEOUT_SECONDS"
ENV_SENDER_CACHE_TTL_SECONDS = "SENDER_CACHE_TTL_SECONDS"
ENV_PUBLISH_TIMEOUT_SECONDS = "PUBLISH_TIMEOUT_SECONDS"
ENV_WORKER_CONCURRENCY = "WORKER_CONCURRENCY"
ENV_MAX_DELIVER = "MAX_DELIVER"
ENV_ACK_WAIT_SECONDS = "ACK_WAIT_SECONDS"
ENV_RETRY_BASE_SECONDS = "RETRY_BASE_SECONDS"
ENV_RETRY_MAX_SECONDS = "RETRY_MAX_SECONDS"
ENV_IDEMPOTENCY_WINDOW_SECONDS = "IDEMPOTENCY_WINDOW_SECONDS"
ENV_SENT_ITEMS_LAG_SECONDS = "SENT_ITEMS_LAG_SECONDS"
ENV_DEAD_LETTER_MAX_AGE_DAYS = "DEAD_LETTER_MAX_AGE_DAYS"
ENV_LOG_LEVEL = "LOG_LEVEL"
ENV_SANDBOX_HOST = "SANDBOX_HOST"
ENV_SANDBOX_PORT = "SANDBOX_PORT"
ENV_SANDBOX_DATA_DIR = "SANDBOX_DATA_DIR"
ENV_SANDBOX_CERT_HOSTS = "SANDBOX_CERT_HOSTS"
ENV_MAX_MESSAGE_BYTES = "MAX_MESSAGE_BYTES"
ENV_MAX_REQUEST_BODY_BYTES = "MAX_REQUEST_BODY_BYTES"
ENV_MAX_RECIPIENTS = "MAX_RECIPIENTS"
ENV_NATS_OBJECT_STORE = "NATS_OBJECT_STORE"
ENV_ATTACHMENT_RETENTION_SECONDS = "ATTACHMENT_RETENTION_SECONDS"
ENV_OBJECT_STORE_TIMEOUT_SECONDS = "OBJECT_STORE_TIMEOUT_SECONDS"
ENV_GRAPH_UPLOAD_TIMEOUT_SECONDS = "GRAPH_UPLOAD_TIMEOUT_SECONDS"
ENV_ADMIN_TOKEN = "ADMIN_TOKEN"
ENV_ALLOW_KEYLESS_SEND = "ALLOW_KEYLESS_SEND"

# Paths of the repository checkout, for the local run and the sandbox.
REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DATA_DIR = REPO_ROOT / ".local"

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_NATS_STREAM = "MAIL"
DEFAULT_NATS_SUBJECT_PREFIX = "mail"
DEFAULT_NATS_CONSUMER = "mail-workers"
DEFAULT_DB_DSN = "postgresql://postgres@127.0.0.1:5432/mailservice"

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_BASE_URL = "https://graph.microsoft.com/v1.0"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"
# (connect, read) in seconds; Graph usually returns sendMail within a few seconds unless it throttles (an estimate).
DEFAULT_GRAPH_TIMEOUT_SECONDS = 30.0
GRAPH_CONNECT_TIMEOUT_SECONDS = 5.0

DEFAULT_SENDER_CACHE_TTL_SECONDS = 30.0
DEFAULT_PUBLISH_TIMEOUT_SECONDS = 5.0

# Graph allows at most 4 concurrent requests per app and mailbox (Graph docs: throttling-limits).
DEFAULT_WORKER_CONCURRENCY = 4
# Send attempts of one job before it is dead. With the backoff below (2 s doubling to 300 s, each
# delay drawn from its upper half) 24 attempts span 42 to 84 minutes, about an hour on average.
DEFAULT_MAX_DELIVER = 24
DEFAULT_ACK_WAIT_SECONDS = 60.0
DEFAULT_RETRY_BASE_SECONDS = 2.0
DEFAULT_RETRY_MAX_SECONDS = 300.0
# How long an Idempotency-Key maps to its job; also JetStream's duplicate window of the job stream.
DEFAULT_IDEMPOTENCY_WINDOW_SECONDS = 24 * 3600.0
# When a send attempt's outcome is unknown, the worker looks the mail up in Sent Items and trusts a
# miss only GRAPH_TIMEOUT_SECONDS + this long after the attempt started, because Exchange files sent
# mail there with a lag. NOTE: Microsoft documents no bound for that lag; 5 minutes is a guess.
DEFAULT_SENT_ITEMS_LAG_SECONDS = 300.0
# Dead-letter copies keep the mail body, so they expire; a dead job older than this cannot be requeued.
DEFAULT_DEAD_LETTER_MAX_AGE_DAYS = 30.0
DEFAULT_LOG_LEVEL = "INFO"

# Message sizes. Exchange Online's default maximum message size is 35 MB, and tenants can raise it to
# 150 MB. MB here means MiB, as the Graph sandbox counts it.
MIB = 1024 * 1024
DEFAULT_MAX_MESSAGE_BYTES = 35 * MIB
MAX_MESSAGE_BYTES_CEILING = 150 * MIB
# JSON carries attachments as base64 (4 bytes per 3), so the default request body limit is the base64
# size of the maximum message plus this much for the rest of the JSON: 50.7 MiB for 35 MiB.
REQUEST_BODY_HEADROOM_BYTES = 4 * MIB
# Exchange Online accepts at most 500 recipients per message.
DEFAULT_MAX_RECIPIENTS = 500

# Attachments of jobs larger than NATS's max_payload wait in this JetStream object store bucket.
DEFAULT_NATS_OBJECT_STORE = "MAIL_ATTACHMENTS"
# The bucket's max_age: an attachment is deleted when its job ends, and at the latest after this time.
# A job not sent within it fails, because its attachments are gone.
DEFAULT_ATTACHMENT_RETENTION_SECONDS = 7 * 24 * 3600.0
# How long one put, get or delete of an attachment in the object store may take.
DEFAULT_OBJECT_STORE_TIMEOUT_SECONDS = 60.0

# Graph rejects request bodies over "4 MB", and 4,000,000 bytes is the stricter reading. Attachments of
# 3 MB or more need an upload session; 3 MiB is the reading of the Graph sandbox.
GRAPH_MAX_REQUEST_BYTES = 4_000_000
GRAPH_UPLOAD_SESSION_MIN_BYTES = 3 * MIB
# Each upload PUT carries at most 4 MB. 3.75 MiB is below 4,000,000 bytes and a multiple of 320 KiB.
GRAPH_UPLOAD_CHUNK_BYTES = 12 * 320 * 1024
# Read timeout of one upload PUT, longer than GRAPH_TIMEOUT_SECONDS because a chunk has 3.75 MiB.
DEFAULT_GRAPH_UPLOAD_TIMEOUT_SECONDS = 120.0
# Authentication. The admin function does not start without ADMIN_TOKEN or with a shorter one.
MIN_ADMIN_TOKEN_LENGTH = 16
# The local run keeps a generated admin token in this file under .local/, so that later runs reuse it.
ADMIN_TOKEN_FILENAME = "admin-token"
# Keyless sends are a migration aid for clients without an API key; off unless an operator opts in.
DEFAULT_ALLOW_KEYLESS_SEND = False
# An ingest process warns about each client (address and app_tag) without a key at most once per interval.
KEYLESS_WARNING_INTERVAL_SECONDS = 300.0
# How long a rotated-out API key keeps working, at most; the default is to stop it at once.
DEFAULT_KEY_GRACE_SECONDS = 0
MAX_KEY_GRACE_SECONDS = 30 * 24 * 3600

# The Graph sandbox: a local HTTPS server that speaks Entra ID's and Graph's protocol.
DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8443
DEFAULT_SANDBOX_DATA_DIR = LOCAL_DATA_DIR / "sandbox"
SANDBOX_CA_FILENAME = "ca.pem"
# Credentials of the one app registration that the sandbox accepts. They are not secrets.
SANDBOX_TENANT_ID = "11111111-2222-3333-4444-555555555555"
SANDBOX_CLIENT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
SANDBOX_CLIENT_SECRET = "sandbox-client-secret"


@dataclass(frozen=True)
class Settings:
    """The service's configuration, read once per process from the environment."""

    nats_url: str
    nats_stream: str
    nats_subject_prefix: str
    nats_consumer: str
    db_dsn: str
    tenant_id: str
    client_id: str
    client_secret: str
    authority_host: str
    graph_base_url: str
    graph_ca_bundle: str
    graph_timeout_seconds: float
    sender_cache_ttl_seconds: float
    publish_timeout_seconds: float
    worker_concurrency: int
    max_deliver: int
    ack_wait_seconds: float
    retry_base_seconds: float
    retry_max_seconds: float
    log_level: str
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    # 0 means default_request_body_bytes(max_message_bytes).
    max_request_body_bytes: int = 0
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    nats_object_store: str = DEFAULT_NATS_OBJECT_STORE
    attachment_retention_seconds: float = DEFAULT_ATTACHMENT_RETENTION_SECONDS
    object_store_timeout_seconds: float = DEFAULT_OBJECT_STORE_TIMEOUT_SECONDS
    graph_upload_timeout_seconds: float = DEFAULT_GRAPH_UPLOAD_TIMEOUT_SECONDS
    admin_token: str = ""
    allow_keyless_send: bool = DEFAULT_ALLOW_KEYLESS_SEND

    idempotency_window_seconds: float = DEFAULT_IDEMPOTENCY_WINDOW_SECONDS
    sent_items_lag_seconds: float = DEFAULT_SENT_ITEMS_LAG_SECONDS
    dead_letter_max_age_days: float = DEFAULT_DEAD_LETTER_MAX_AGE_DAYS

    def __post_init__(self) -> None:
        if self.max_request_body_bytes <= 0:
            object.__setattr__(self, "max_request_body_bytes", default_request_body_bytes(self.max_message_bytes))

    @property
    def job_subject(self) -> str:
        return f"{self.nats_subject_prefix}.jobs"

    @property
    def dead_letter_stream(self) -> str:
        return f"{self.nats_stream}_DEAD"

    def dead_letter_subject(self, token: str) -> str:
        """Return the dead-letter subject of one job; token is its job id."""
        return f"{self.nats_subject_prefix}.dead.{token}"

    @property
    def authority(self) -> str:
        return f"{self.authority_host.rstrip('/')}/{self.tenant_id}"

    def __repr__(self) -> str:
        # The dataclass repr would print the client secret into logs and tracebacks.
        return f"Settings(nats_url={self.nats_url!r}, graph_base_url={self.graph_base_url!r}, ...)"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            nats_url=env.get(ENV_NATS_URL, DEFAULT_NATS_URL),
            nats_stream=env.get(ENV_NATS_STREAM, DEFAULT_NATS_STREAM),
            nats_subject_prefix=env.get(ENV_NATS_SUBJECT_PREFIX, DEFAULT_NATS_SUBJECT_PREFIX),
            nats_consumer=env.get(ENV_NATS_CONSUMER, DEFAULT_NATS_CONSUMER),
            db_dsn=env.get(ENV_DB_DSN, DEFAULT_DB_DSN),
            tenant_id=env.get(ENV_TENANT_ID, ""),
            client_id=env.get(ENV_CLIENT_ID, ""),
            client_secret=env.get(ENV_CLIENT_SECRET, ""),
            authority_host=env.get(ENV_AUTHORITY_HOST, DEFAULT_AUTHORITY_HOST),
            graph_base_url=env.get(ENV_GRAPH_BASE_URL, DEFAULT_GRAPH_BASE_URL).rstrip("/"),
            graph_ca_bundle=env.get(ENV_GRAPH_CA_BUNDLE, ""),
            graph_timeout_seconds=_number(env, ENV_GRAPH_TIMEOUT_SECONDS, DEFAULT_GRAPH_TIMEOUT_SECONDS),
            sender_cache_ttl_seconds=_number(
                env, ENV_SENDER_CACHE_TTL_SECONDS, DEFAULT_SENDER_CACHE_TTL_SECONDS
            ),
            publish_timeout_seconds=_number(
                env, ENV_PUBLISH_TIMEOUT_SECONDS, DEFAULT_PUBLISH_TIMEOUT_SECONDS
            ),
            worker_concurrency=int(_number(env, ENV_WORKER_CONCURRENCY, DEFAULT_WORKER_CONCURRENCY)),
            max_deliver=int(_number(env, ENV_MAX_DELIVER, DEFAULT_MAX_DELIVER)),
            ack_wait_seconds=_number(env, ENV_ACK_WAIT_SECONDS, DEFAULT_ACK_WAIT_SECONDS),
            retry_base_seconds=_number(env, ENV_RETRY_BASE_SECONDS, DEFAULT_RETRY_BASE_SECONDS),
            retry_max_seconds=_number(env, ENV_RETRY_MAX_SECONDS, DEFAULT_RETRY_MAX_SECONDS),
            log_level=env.get(ENV_LOG_LEVEL, DEFAULT_LOG_LEVEL).upper(),
            max_message_bytes=_max_message_bytes(env),
            max_request_body_bytes=int(_number(env, ENV_MAX_REQUEST_BODY_BYTES, 0)),
            max_recipients=int(_number(env, ENV_MAX_RECIPIENTS, DEFAULT_MAX_RECIPIENTS)),
            nats_object_store=env.get(ENV_NATS_OBJECT_STORE, DEFAULT_NATS_OBJECT_STORE),
            attachment_retention_seconds=_number(
                env, ENV_ATTACHMENT_RETENTION_SECONDS, DEFAULT_ATTACHMENT_RETENTION_SECONDS
            ),
            object_store_timeout_seconds=_number(
                env, ENV_OBJECT_STORE_TIMEOUT_SECONDS, DEFAULT_OBJECT_STORE_TIMEOUT_SECONDS
            ),
            graph_upload_timeout_seconds=_number(
                env, ENV_GRAPH_UPLOAD_TIMEOUT_SECONDS, DEFAULT_GRAPH_UPLOAD_TIMEOUT_SECONDS
            ),
            admin_token=env.get(ENV_ADMIN_TOKEN, "").strip(),
            allow_keyless_send=_flag(env, ENV_ALLOW_KEYLESS_SEND, DEFAULT_ALLOW_KEYLESS_SEND),
            idempotency_window_seconds=_number(
                env, ENV_IDEMPOTENCY_WINDOW_SECONDS, DEFAULT_IDEMPOTENCY_WINDOW_SECONDS
            ),
            sent_items_lag_seconds=_number(env, ENV_SENT_ITEMS_LAG_SECONDS, DEFAULT_SENT_ITEMS_LAG_SECONDS),
            dead_letter_max_age_days=_number(
                env, ENV_DEAD_LETTER_MAX_AGE_DAYS, DEFAULT_DEAD_LETTER_MAX_AGE_DAYS
            ),
        )


def sandbox_environment(data_dir: Path = DEFAULT_SANDBOX_DATA_DIR,
                        port: int = DEFAULT_SANDBOX_PORT) -> dict[str, str]:
    """Return the settings that point the Graph client at a sandbox on this machine."""
    base = f"https://{DEFAULT_SANDBOX_HOST}:{port}"
    return {
        ENV_TENANT_ID: SANDBOX_TENANT_ID,
        ENV_CLIENT_ID: SANDBOX_CLIENT_ID,
        ENV_CLIENT_SECRET: SANDBOX_CLIENT_SECRET,
        ENV_AUTHORITY_HOST: base,
        ENV_GRAPH_BASE_URL: f"{base}/v1.0",
        ENV_GRAPH_CA_BUNDLE: str(data_dir / SANDBOX_CA_FILENAME),
    }


def _number(env: os._Environ[str] | dict[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"Setting {name}={raw!r} is not a number; expected for example {default}.") from None


def default_request_body_bytes(max_message_bytes: int) -> int:
    """Return the request body limit that fits a message of max_message_bytes sent as base64 JSON."""
    return 4 * -(-max_message_bytes // 3) + REQUEST_BODY_HEADROOM_BYTES


def _max_message_bytes(env: os._Environ[str] | dict[str, str]) -> int:
    value = int(_number(env, ENV_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES))
    if not 0 < value <= MAX_MESSAGE_BYTES_CEILING:
        raise ValueError(f"Setting {ENV_MAX_MESSAGE_BYTES}={value} is out of range; expected 1 to "
                         f"{MAX_MESSAGE_BYTES_CEILING} bytes (150 MiB, Exchange Online's maximum).")
    return value
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def _flag(env: os._Environ[str] | dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"Setting {name}={raw!r} is not a boolean; expected true or false.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return this process's settings, read from the environment on the first call."""
    return Settings.from_env()


# --- Observability: Datadog tracing, DogStatsD metrics, log format and health endpoints ---------------

ENV_DD_TRACE_ENABLED = "DD_TRACE_ENABLED"
ENV_DD_SERVICE = "DD_SERVICE"
ENV_DD_AGENT_HOST = "DD_AGENT_HOST"
ENV_DD_DOGSTATSD_URL = "DD_DOGSTATSD_URL"
ENV_DD_DOGSTATSD_PORT = "DD_DOGSTATSD_PORT"
ENV_DD_DOGSTATSD_DISABLE = "DD_DOGSTATSD_DISABLE"
ENV_LOG_FORMAT = "LOG_FORMAT"
ENV_HEALTH_CHECK_TIMEOUT_SECONDS = "HEALTH_CHECK_TIMEOUT_SECONDS"
ENV_WORKER_HEALTH_HOST = "WORKER_HEALTH_HOST"
ENV_WORKER_HEALTH_PORT = "WORKER_HEALTH_PORT"
ENV_WORKER_SUMMARY_INTERVAL_SECONDS = "WORKER_SUMMARY_INTERVAL_SECONDS"

# Datadog service names of the entry points; DD_SERVICE overrides them.
SERVICE_API = "email-api"
SERVICE_WORKER = "email-worker"
SERVICE_ADMIN = "email-admin"

# ddtrace itself defaults DD_TRACE_ENABLED to true and would then send every trace to an agent on
# 127.0.0.1:8126; without an agent that only costs work and a failure line a minute, so tracing is opt-in.
DEFAULT_DD_TRACE_ENABLED = False
DEFAULT_DD_AGENT_HOST = "127.0.0.1"
DEFAULT_DD_DOGSTATSD_PORT = 8125
LOG_FORMAT_AUTO = "auto"
LOG_FORMAT_JSON = "json"
LOG_FORMAT_TEXT = "text"
LOG_FORMATS = (LOG_FORMAT_AUTO, LOG_FORMAT_JSON, LOG_FORMAT_TEXT)
DEFAULT_LOG_FORMAT = LOG_FORMAT_AUTO
DEFAULT_HEALTH_CHECK_TIMEOUT_SECONDS = 2.0
DEFAULT_WORKER_HEALTH_HOST = "127.0.0.1"
# 0 means the worker serves no health endpoint.
DEFAULT_WORKER_HEALTH_PORT = 0
DEFAULT_WORKER_SUMMARY_INTERVAL_SECONDS = 60.0

TRUE_VALUES = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ObservabilitySettings:
    """Tracing, metrics, log format and health settings, read once per process from the environment."""

    trace_enabled: bool
    log_format: str
    metrics_enabled: bool
    dogstatsd_url: str
    health_check_timeout_seconds: float
    worker_health_host: str
    worker_health_port: int
    worker_summary_interval_seconds: float

    @property
    def json_logs(self) -> bool:
        """Whether log lines are JSON: as LOG_FORMAT sets, or when tracing is on if it is ``auto``."""
        if self.log_format == LOG_FORMAT_AUTO:
            return self.trace_enabled
        return self.log_format == LOG_FORMAT_JSON

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ObservabilitySettings:
        env = os.environ if environ is None else environ
        log_format = env.get(ENV_LOG_FORMAT, DEFAULT_LOG_FORMAT).strip().lower() or DEFAULT_LOG_FORMAT
        if log_format not in LOG_FORMATS:
            raise ValueError(f"Setting {ENV_LOG_FORMAT}={log_format!r} is invalid; expected one of "
                             f"{', '.join(LOG_FORMATS)}.")
        trace_enabled = _flag(env, ENV_DD_TRACE_ENABLED, DEFAULT_DD_TRACE_ENABLED)
        return cls(
            trace_enabled=trace_enabled,
            log_format=log_format,
            # Metrics follow tracing unless DD_DOGSTATSD_DISABLE is set, so a service without a Datadog
            # agent sends no packets and logs no refused ones.
            metrics_enabled=not _flag(env, ENV_DD_DOGSTATSD_DISABLE, not trace_enabled),
            dogstatsd_url=dogstatsd_url(env),
            health_check_timeout_seconds=_number(env, ENV_HEALTH_CHECK_TIMEOUT_SECONDS,
                                                 DEFAULT_HEALTH_CHECK_TIMEOUT_SECONDS),
            worker_health_host=env.get(ENV_WORKER_HEALTH_HOST, DEFAULT_WORKER_HEALTH_HOST),
            worker_health_port=int(_number(env, ENV_WORKER_HEALTH_PORT, DEFAULT_WORKER_HEALTH_PORT)),
            worker_summary_interval_seconds=_number(env, ENV_WORKER_SUMMARY_INTERVAL_SECONDS,
                                                    DEFAULT_WORKER_SUMMARY_INTERVAL_SECONDS),
        )


def dogstatsd_url(env: os._Environ[str] | dict[str, str]) -> str:
    """Return the DogStatsD address as the Datadog libraries resolve it: DD_DOGSTATSD_URL, else
    ``udp://DD_AGENT_HOST:DD_DOGSTATSD_PORT``."""
    url = env.get(ENV_DD_DOGSTATSD_URL, "")
    if url:
        return url
    host = env.get(ENV_DD_AGENT_HOST, "") or DEFAULT_DD_AGENT_HOST
    port = int(_number(env, ENV_DD_DOGSTATSD_PORT, DEFAULT_DD_DOGSTATSD_PORT))
    return f"udp://{host}:{port}"


def _flag(env: os._Environ[str] | dict[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    return raw in TRUE_VALUES


@lru_cache(maxsize=1)
def get_observability_settings() -> ObservabilitySettings:
    """Return this process's observability settings, read from the environment on the first call."""
    return ObservabilitySettings.from_env()
