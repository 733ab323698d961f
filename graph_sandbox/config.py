"""Configuration of the Graph sandbox, read from the environment.

The server's address and data directory come from ``common.settings``. The limits and switches
below are the sandbox's own, so a test can shorten a token's lifetime or lower a size limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping

from common import settings

ENV_TOKEN_LIFETIME_SECONDS = "SANDBOX_TOKEN_LIFETIME_SECONDS"
ENV_ENFORCE_CONCURRENCY = "SANDBOX_ENFORCE_CONCURRENCY"
ENV_MAX_CONCURRENT_REQUESTS = "SANDBOX_MAX_CONCURRENT_REQUESTS"
ENV_MAX_MESSAGE_BYTES = "SANDBOX_MAX_MESSAGE_BYTES"
ENV_MAX_RECIPIENTS = "SANDBOX_MAX_RECIPIENTS"
ENV_UPLOAD_SESSION_LIFETIME_SECONDS = "SANDBOX_UPLOAD_SESSION_LIFETIME_SECONDS"
ENV_SENT_ITEMS_DELAY_SECONDS = "SANDBOX_SENT_ITEMS_DELAY_SECONDS"

MIB = 1024 * 1024

# Entra ID's client-credentials tokens carry expires_in=3599. MSAL (1.39) treats a cached token with
# less than 5 minutes left as expired, so with a lifetime under 300 s it fetches a new token every time.
DEFAULT_TOKEN_LIFETIME_SECONDS = 3599
# Graph allows at most 4 concurrent requests per app and mailbox.
DEFAULT_MAX_CONCURRENT_REQUESTS = 4
# Graph rejects request bodies over 4 MB with 413. The sandbox takes 4 MB as 4,194,304 bytes.
MAX_REQUEST_BYTES = 4 * MIB
# Exchange Online's default maximum message size is 35 MB, and tenants can raise it to 150 MB.
DEFAULT_MAX_MESSAGE_BYTES = 35 * MIB
# Exchange Online accepts at most 500 recipients per message.
DEFAULT_MAX_RECIPIENTS = 500
# Graph rejects upload sessions for attachments under 3 MB (ErrorAttachmentSizeShouldNotBeLessThanMinimumSize).
# NOTE: Microsoft does not document whether "3 MB" means 3,000,000 or 3,145,728 bytes. This is the larger.
MIN_UPLOAD_SESSION_BYTES = 3 * MIB
# Each PUT to an upload URL carries at most 4 MB (Graph docs: attachment-createuploadsession).
MAX_UPLOAD_CHUNK_BYTES = 4 * MIB
# NOTE: Outlook does not document the upload-session lifetime, so 1 hour is the sandbox's guess.
DEFAULT_UPLOAD_SESSION_LIFETIME_SECONDS = 3600

_TRUE_WORDS = {"1", "true", "yes", "on"}
_FALSE_WORDS = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class SandboxConfig:
    """The app registration the sandbox accepts and the Graph limits it enforces."""

    tenant_id: str = settings.SANDBOX_TENANT_ID
    client_id: str = settings.SANDBOX_CLIENT_ID
    client_secret: str = settings.SANDBOX_CLIENT_SECRET
    token_lifetime_seconds: int = DEFAULT_TOKEN_LIFETIME_SECONDS
    enforce_concurrency: bool = True
    max_concurrent_requests: int = DEFAULT_MAX_CONCURRENT_REQUESTS
    max_request_bytes: int = MAX_REQUEST_BYTES
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_recipients: int = DEFAULT_MAX_RECIPIENTS
    upload_session_lifetime_seconds: int = DEFAULT_UPLOAD_SESSION_LIFETIME_SECONDS
    # Exchange files a sent message in Sent Items a moment after the 202, and tests can model that lag.
    sent_items_delay_seconds: float = 0.0

    def __repr__(self) -> str:
        # The dataclass repr would print the client secret into logs and tracebacks.
        return f"SandboxConfig(tenant_id={self.tenant_id!r}, client_id={self.client_id!r}, ...)"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SandboxConfig:
        """Read the configuration, raising ValueError that names an invalid variable."""
        env = os.environ if environ is None else environ
        return cls(
            tenant_id=env.get(settings.ENV_TENANT_ID) or settings.SANDBOX_TENANT_ID,
            client_id=env.get(settings.ENV_CLIENT_ID) or settings.SANDBOX_CLIENT_ID,
            client_secret=env.get(settings.ENV_CLIENT_SECRET) or settings.SANDBOX_CLIENT_SECRET,
            token_lifetime_seconds=_positive_int(
                env, ENV_TOKEN_LIFETIME_SECONDS, DEFAULT_TOKEN_LIFETIME_SECONDS
            ),
            enforce_concurrency=_boolean(env, ENV_ENFORCE_CONCURRENCY, True),
            max_concurrent_requests=_positive_int(
                env, ENV_MAX_CONCURRENT_REQUESTS, DEFAULT_MAX_CONCURRENT_REQUESTS
            ),
            max_message_bytes=_positive_int(env, ENV_MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES),
            max_recipients=_positive_int(env, ENV_MAX_RECIPIENTS, DEFAULT_MAX_RECIPIENTS),
            upload_session_lifetime_seconds=_positive_int(
                env, ENV_UPLOAD_SESSION_LIFETIME_SECONDS, DEFAULT_UPLOAD_SESSION_LIFETIME_SECONDS
            ),
            sent_items_delay_seconds=_non_negative_float(env, ENV_SENT_ITEMS_DELAY_SECONDS, 0.0),
        )


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"Setting {name}={raw!r} is not an integer. Use a whole number such as {default}."
        ) from None
    if value <= 0:
        raise ValueError(f"Setting {name}={raw!r} must be greater than 0.")
    return value


def _non_negative_float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(
            f"Setting {name}={raw!r} is not a number. Use a number of seconds such as 0.5."
        ) from None
    if value < 0:
        raise ValueError(f"Setting {name}={raw!r} must not be negative.")
    return value


def _boolean(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in _TRUE_WORDS:
        return True
    if raw in _FALSE_WORDS:
        return False
    raise ValueError(
        f"Setting {name}={raw!r} is not a boolean. Use one of 1, true, yes, on, 0, false, no, off."
    )
