"""The Idempotency-Key request header and the fingerprint of a request body.

Clients send the header with POST /send-email so that a retried request (after a timeout or a 503)
cannot send the mail twice. Within IDEMPOTENCY_WINDOW_SECONDS the same key of the same app_tag returns
the first job; the same key with another body is rejected with 409.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from common.errors import InvalidIdempotencyKey

IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# Visible ASCII without spaces: enough for UUIDs and the keys of common client libraries.
_KEY_PATTERN = re.compile(r"^[\x21-\x7e]+$")
# How much of an invalid key an error message repeats.
_SHOWN_CHARACTERS = 60


def parse_idempotency_key(value: str | None) -> str | None:
    """Return the header's key, None when the header is absent; raise InvalidIdempotencyKey otherwise."""
    if value is None:
        return None
    if len(value) <= MAX_KEY_LENGTH and _KEY_PATTERN.match(value):
        return value

    shown = repr(value[:_SHOWN_CHARACTERS] + ("..." if len(value) > _SHOWN_CHARACTERS else ""))
    raise InvalidIdempotencyKey(f"The Idempotency-Key header {shown} is invalid; expected 1 to "
                                f"{MAX_KEY_LENGTH} visible ASCII characters.", value=shown,
                                max_length=MAX_KEY_LENGTH)


def request_hash(mail: dict[str, Any]) -> str:
    """Return a SHA-256 hex digest of the validated mail; equal mails give equal digests."""
    canonical = json.dumps(mail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
