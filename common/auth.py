"""Credentials of the HTTP functions: API keys for POST /send-email, the admin token for the admin API.

No credential is ever logged or put into an error message; only key ids, which are not secret,
appear in DEBUG lines.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from common.apikeys import StoredKey, parse_key_id
from common.errors import (AdminTokenInvalid, ApiKeyInvalid, ApiKeyMissing, AppTagMismatch,
                           AuthorizationMalformed, ConfigurationError, SenderDisabled, UnknownAppTag)
from common.senders import SenderCache
from common.settings import ENV_ADMIN_TOKEN, KEYLESS_WARNING_INTERVAL_SECONDS, MIN_ADMIN_TOKEN_LENGTH, Settings

logger = logging.getLogger(__name__)

AUTHORIZATION_HEADER = "Authorization"
API_KEY_HEADER = "X-API-Key"
BEARER_SCHEME = "bearer"
# Clients tracked for keyless warnings; past this the table starts afresh, so memory stays bounded.
MAX_KEYLESS_CLIENTS = 10_000


def bearer_credential(headers: Mapping[str, str]) -> str | None:
    """Return the credential of an ``Authorization: Bearer`` header, or None without the header.

    Raise AuthorizationMalformed for another scheme or an empty credential (RFC 6750, section 2.1).
    """
    value = headers.get(AUTHORIZATION_HEADER)
    if value is None:
        return None
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() != BEARER_SCHEME or not credential.strip():
        raise AuthorizationMalformed("The Authorization header is not 'Bearer <credential>'.")
    return credential.strip()


def presented_api_key(headers: Mapping[str, str]) -> str | None:
    """Return the API key of a send request: the bearer credential, else X-API-Key, else None."""
    credential = bearer_credential(headers)
    if credential is not None:
        return credential
    value = (headers.get(API_KEY_HEADER) or "").strip()
    return value or None


# --- admin token ---------------------------------------------------------------------------------


def require_admin_token(settings: Settings) -> str:
    """Return the configured admin token; raise ConfigurationError when it is missing or too short."""
    token = settings.admin_token
    if not token:
        raise ConfigurationError(
            f"{ENV_ADMIN_TOKEN} is not set. The admin function does not start without it, because "
            f"every admin request must carry it. Set {ENV_ADMIN_TOKEN} to a random string of at least "
            f"{MIN_ADMIN_TOKEN_LENGTH} characters, for example: python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'.")
    if len(token) < MIN_ADMIN_TOKEN_LENGTH:
        raise ConfigurationError(
            f"{ENV_ADMIN_TOKEN} has {len(token)} characters; expected at least {MIN_ADMIN_TOKEN_LENGTH}. "
            f"Use a random string, for example from: python -c 'import secrets; "
            f"print(secrets.token_urlsafe(32))'.")
    return token


def check_admin_token(headers: Mapping[str, str], expected: str) -> None:
    """Raise AdminTokenInvalid unless the request carries ``Authorization: Bearer <expected>``."""
    try:
        presented = bearer_credential(headers)
    except AuthorizationMalformed as exc:
        raise AdminTokenInvalid("The admin request's Authorization header is malformed.") from exc
    if presented is None:
        raise AdminTokenInvalid("The admin request carries no Authorization header.")

    # compare_digest takes time independent of where the first difference is.
    if not hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8")):
        raise AdminTokenInvalid("The admin request carries a wrong token.")


# --- API keys of send requests -------------------------------------------------------------------


class SendAuthorizer:
    """Decides whether a send request may be accepted, and for which app_tag.

    With a key, the key decides the app_tag: a body naming another one is rejected with 403, and a body
    without app_tag gets the key's. Without a key the request is rejected with 401, unless
    ALLOW_KEYLESS_SEND is on for the transition of old clients.
    """

    def __init__(self, senders: SenderCache, allow_keyless: bool,
                 warning_interval_seconds: float = KEYLESS_WARNING_INTERVAL_SECONDS) -> None:
        self._senders = senders
        self._allow_keyless = allow_keyless
        self._keyless_warnings = RateLimitedClients(warning_interval_seconds, MAX_KEYLESS_CLIENTS)

    def authenticate(self, headers: Mapping[str, str]) -> StoredKey | None:
        """Return the request's live API key, or None for an allowed keyless request.

        Raise ApiKeyMissing, ApiKeyInvalid or AuthorizationMalformed (401), or SenderDisabled (403).
        """
        presented = presented_api_key(headers)
        if presented is None:
            if self._allow_keyless:
                return None
            raise ApiKeyMissing("The send request carries no API key.")

        key_id = parse_key_id(presented)
        if key_id is None:
            raise ApiKeyInvalid("The send request's API key is malformed.")
        stored = self._senders.get_key(key_id)
        if stored is None or not stored.matches(presented):
            logger.debug("Rejected API key id %s: unknown, expired or wrong secret", key_id)
            raise ApiKeyInvalid(f"API key id {key_id} is unknown, expired or has a wrong secret.")

        if not stored.sender_enabled:
            raise SenderDisabled(f"The sender of app_tag {stored.app_tag!r} is disabled.",
                                 app_tag=stored.app_tag)
        return stored

    def bind_app_tag(self, payload: dict[str, Any], key: StoredKey) -> dict[str, Any]:
        """Return payload with the key's app_tag; raise AppTagMismatch if it names another one.

        A missing or null app_tag means "the key's", so keyed clients need not repeat it.
        """
        named = payload.get("app_tag")
        if named is None:
            return {**payload, "app_tag": key.app_tag}
        if named != key.app_tag:
            raise AppTagMismatch(f"The key of app_tag {key.app_tag!r} cannot send as {named!r}.",
                                 key_app_tag=key.app_tag, app_tag=named)
        return payload

    def admit_keyless(self, app_tag: str, client: str) -> None:
        """Check the sender of a keyless request and warn, rate-limited, that the client needs a key.

        Raise UnknownAppTag (422) or SenderDisabled (403).
        """
        sender = self._senders.get(app_tag)
        if sender is None:
            raise UnknownAppTag(f"No sender for app_tag {app_tag!r}.", app_tag=app_tag)
        if not sender.enabled:
            raise SenderDisabled(f"The sender of app_tag {app_tag!r} is disabled.", app_tag=app_tag)

        if self._keyless_warnings.due(f"{client} {app_tag}"):
            logger.warning("Accepted a send without API key from client %s for app_tag %s; give this "
                           "client its key, because keyless sends stop working once ALLOW_KEYLESS_SEND "
                           "is off (this warning repeats at most every %.0f s per client)",
                           client, app_tag, self._keyless_warnings.interval_seconds)


class RateLimitedClients:
    """Decides whether a client is due for another warning: each at most once per interval."""

    def __init__(self, interval_seconds: float, max_clients: int) -> None:
        self.interval_seconds = interval_seconds
        self._max_clients = max_clients
        self._last_warned: dict[str, float] = {}
        self._lock = threading.Lock()

    def due(self, client: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last_warned.get(client)
            if last is not None and now - last < self.interval_seconds:
                return False
            if len(self._last_warned) >= self._max_clients:
                self._last_warned.clear()
            self._last_warned[client] = now
        return True
