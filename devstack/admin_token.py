"""The admin token of the local run: ADMIN_TOKEN from the environment or .env, else a stored or new one.

A generated token is written to .local/admin-token (mode 0600), so that the next `make run` and the
operator's curl commands reuse it, and is shown once, when it is generated.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from common import settings

# 32 bytes from the CSPRNG: 43 URL-safe characters, far above MIN_ADMIN_TOKEN_LENGTH.
TOKEN_BYTES = 32


class TokenOrigin(str, Enum):
    ENVIRONMENT = "environment"  # ADMIN_TOKEN in the environment or .env
    FILE = "file"  # stored by an earlier run
    GENERATED = "generated"  # new in this run


@dataclass(frozen=True)
class AdminToken:
    value: str = field(repr=False)
    origin: TokenOrigin
    path: Path | None = None


def ensure_admin_token(environment: Mapping[str, str], token_file: Path) -> AdminToken:
    """Return the configured admin token, else the one in token_file, else a new one stored there."""
    configured = environment.get(settings.ENV_ADMIN_TOKEN, "").strip()
    if configured:
        return AdminToken(configured, TokenOrigin.ENVIRONMENT)

    if token_file.is_file():
        stored = token_file.read_text(encoding="utf-8").strip()
        if stored:
            return AdminToken(stored, TokenOrigin.FILE, token_file)

    token = secrets.token_urlsafe(TOKEN_BYTES)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    # Owner-only from the first byte: the token grants full sender administration.
    descriptor = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # os.open keeps the mode of a file that exists already
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    return AdminToken(token, TokenOrigin.GENERATED, token_file)
