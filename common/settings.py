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
# (connect, read) in seconds; Graph answers sendMail within a few seconds unless it is throttling.
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

# The Graph sandbox: a local HTTPS server that speaks Entra ID's and Graph's protocol.
DEFAULT_SANDBOX_HOST = "127.0.0.1"
DEFAULT_SANDBOX_PORT = 8443
DEFAULT_SANDBOX_DATA_DIR = LOCAL_DATA_DIR / "sandbox"
SANDBOX_CA_FILENAME = "ca.pem"
# Credentials of the one app registration the sandbox knows; they are not secrets.
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
    idempotency_window_seconds: float = DEFAULT_IDEMPOTENCY_WINDOW_SECONDS
    sent_items_lag_seconds: float = DEFAULT_SENT_ITEMS_LAG_SECONDS
    dead_letter_max_age_days: float = DEFAULT_DEAD_LETTER_MAX_AGE_DAYS

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

    @property
    def tls_verify(self) -> bool | str:
        """The ``verify`` argument of requests: a CA bundle path, or True for the system store."""
        return self.graph_ca_bundle or True

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


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return this process's settings, read from the environment on the first call."""
    return Settings.from_env()
