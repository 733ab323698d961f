"""API keys: each proves which application (app_tag) a send request comes from.

A key reads ``msk_<key id>_<secret>``. The prefix lets people and secret scanners recognise it. The
key id (16 hex digits) is stored in clear, so a lookup is one primary-key read and never a scan. The
secret carries 256 random bits. The database stores only the SHA-256 of the whole key, and the key
itself is shown once, when it is issued.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from pg8000.exceptions import DatabaseError as PgDatabaseError

from common.db import Database
from common.errors import SenderNotFound

API_KEY_PREFIX = "msk"
KEY_ID_BYTES = 8
SECRET_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe base64 alphabet.
API_KEY_PATTERN = re.compile(r"^msk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")
FOREIGN_KEY_VIOLATION = "23503"

KEY_COLUMNS = "k.key_id, k.app_tag, k.key_hash, k.expires_at, s.enabled"


def hash_api_key(api_key: str) -> bytes:
    """Return the SHA-256 digest under which api_key is stored.

    A fast hash is enough here. Each key contains 256 random bits, so a leaked hash cannot be reversed by
    guessing, which is what slow KDFs such as bcrypt or Argon2 defend against for low-entropy passwords.
    Such a KDF would instead add tens of milliseconds to every send request.
    """
    return hashlib.sha256(api_key.encode("utf-8")).digest()


def generate_api_key() -> tuple[str, str]:
    """Return a new (key id, API key) pair from the operating system's CSPRNG."""
    key_id = secrets.token_hex(KEY_ID_BYTES)
    return key_id, f"{API_KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"


def parse_key_id(api_key: str) -> str | None:
    """Return the key id of a well-formed API key, or None for anything else."""
    match = API_KEY_PATTERN.match(api_key)
    return match.group(1) if match else None


@dataclass(frozen=True)
class IssuedKey:
    """A key just issued: the only moment the service has the key itself."""

    app_tag: str
    key_id: str
    api_key: str = field(repr=False)
    created_at: datetime


@dataclass(frozen=True)
class Rotation:
    """A rotation's new key and when the previous keys stop working (None: there were none)."""

    issued: IssuedKey
    previous_expire_at: datetime | None


@dataclass(frozen=True)
class StoredKey:
    """A key's row as the ingest checks it, with its sender's enabled flag."""

    key_id: str
    app_tag: str
    key_hash: bytes = field(repr=False)
    expires_at: datetime | None
    sender_enabled: bool

    def matches(self, api_key: str) -> bool:
        return hmac.compare_digest(hash_api_key(api_key), self.key_hash)

    def active_at(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class ApiKeyStore:
    """The ``api_keys`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def issue(self, app_tag: str) -> IssuedKey:
        """Store the hash of a new key for app_tag and return the key; raise SenderNotFound."""
        key_id, api_key = generate_api_key()
        with self._db.connection() as con:
            try:
                rows = con.run(
                    "INSERT INTO api_keys (key_id, app_tag, key_hash) VALUES (:id, :tag, :hash) "
                    "RETURNING created_at",
                    id=key_id, tag=app_tag, hash=hash_api_key(api_key),
                )
            except PgDatabaseError as exc:
                details = exc.args[0] if exc.args else {}
                if isinstance(details, dict) and details.get("C") == FOREIGN_KEY_VIOLATION:
                    raise SenderNotFound(f"No sender with app_tag {app_tag!r} exists.", app_tag=app_tag) from exc
                raise
        return IssuedKey(app_tag, key_id, api_key, rows[0][0])

    def rotate(self, app_tag: str, grace_seconds: int) -> Rotation:
        """Issue a new key for app_tag; the previous keys stop working after grace_seconds (0: now).

        A grace period only ever shortens an earlier one, so rotating twice cannot revive a key.
        """
        with self._db.transaction():
            expiries = self._db.run(
                "UPDATE api_keys SET expires_at = LEAST(COALESCE(expires_at, 'infinity'), "
                "now() + make_interval(secs => CAST(:grace AS double precision))) "
                "WHERE app_tag = :tag AND (expires_at IS NULL OR expires_at > now()) RETURNING expires_at",
                tag=app_tag, grace=grace_seconds,
            )
            # Expired rows are of no use; deleting them keeps one row per live key.
            self._db.run("DELETE FROM api_keys WHERE app_tag = :tag AND expires_at <= now()", tag=app_tag)
            issued = self.issue(app_tag)
        previous = max((row[0] for row in expiries), default=None)
        return Rotation(issued, previous)

    def lookup(self, key_id: str) -> StoredKey | None:
        """Return the key with key_id if it exists and has not expired, with its sender's state."""
        rows = self._db.run(
            f"SELECT {KEY_COLUMNS} FROM api_keys k JOIN senders s ON s.app_tag = k.app_tag "
            "WHERE k.key_id = :id AND (k.expires_at IS NULL OR k.expires_at > now())",
            id=key_id,
        )
        if not rows:
            return None
        key_id, app_tag, key_hash, expires_at, enabled = rows[0]
        return StoredKey(key_id, app_tag, bytes(key_hash), expires_at, enabled)
