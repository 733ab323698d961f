"""The ``senders`` table: which mailbox each application (app_tag) sends from, and whether it may."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Generic, TypeVar

from pg8000.exceptions import DatabaseError as PgDatabaseError

from common.apikeys import ApiKeyStore, StoredKey
from common.db import Database
from common.errors import SenderExists, SenderNotFound

logger = logging.getLogger(__name__)

UNIQUE_VIOLATION = "23505"

# The columns of Sender, in its field order; key_created_at is the newest key's creation time.
SENDER_COLUMNS = (
    "s.app_tag, s.mailbox, s.created_at, s.display_name, s.enabled, "
    "(SELECT max(k.created_at) FROM api_keys k WHERE k.app_tag = s.app_tag) AS key_created_at"
)
# The fields that an update may change.
UPDATABLE_FIELDS = ("mailbox", "display_name", "enabled")


@dataclass(frozen=True)
class Sender:
    app_tag: str
    mailbox: str
    created_at: datetime | None = None
    display_name: str | None = None
    enabled: bool = True
    key_created_at: datetime | None = None


class SenderStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, app_tag: str) -> Sender | None:
        rows = self._db.run_prepared(f"SELECT {SENDER_COLUMNS} FROM senders s WHERE s.app_tag = :tag",
                                     tag=app_tag)
        return Sender(*rows[0]) if rows else None

    def list(self) -> list[Sender]:
        rows = self._db.run(f"SELECT {SENDER_COLUMNS} FROM senders s ORDER BY s.app_tag")
        return [Sender(*row) for row in rows]

    def add(self, app_tag: str, mailbox: str, display_name: str | None = None, enabled: bool = True) -> Sender:
        with self._db.connection() as con:
            try:
                rows = con.run(
                    "INSERT INTO senders AS s (app_tag, mailbox, display_name, enabled) "
                    "VALUES (:tag, :mailbox, :name, :enabled) "
                    f"RETURNING {SENDER_COLUMNS}",
                    tag=app_tag, mailbox=mailbox, name=display_name, enabled=enabled,
                )
            except PgDatabaseError as exc:
                details = exc.args[0] if exc.args else {}
                if isinstance(details, dict) and details.get("C") == UNIQUE_VIOLATION:
                    raise SenderExists(f"A sender for app_tag {app_tag!r} already exists.",
                                       app_tag=app_tag) from exc
                raise
        return Sender(*rows[0])

    def update(self, app_tag: str, changes: dict[str, Any]) -> Sender:
        """Set the given fields (a subset of UPDATABLE_FIELDS) of app_tag's sender; raise SenderNotFound."""
        if not changes:
            raise ValueError("An update needs at least one field to change.")
        unknown = set(changes) - set(UPDATABLE_FIELDS)
        if unknown:
            raise ValueError(f"Cannot update sender fields {sorted(unknown)}; expected some of {UPDATABLE_FIELDS}.")

        # The column names come from UPDATABLE_FIELDS, never from the request.
        assignments = ", ".join(f"{name} = :{name}" for name in UPDATABLE_FIELDS if name in changes)
        rows = self._db.run(
            f"UPDATE senders AS s SET {assignments} WHERE s.app_tag = :tag RETURNING {SENDER_COLUMNS}",
            tag=app_tag, **changes,
        )
        if not rows:
            raise SenderNotFound(f"No sender with app_tag {app_tag!r} exists.", app_tag=app_tag)
        return Sender(*rows[0])

    def delete(self, app_tag: str) -> None:
        rows = self._db.run("DELETE FROM senders WHERE app_tag = :tag RETURNING app_tag", tag=app_tag)
        if not rows:
            raise SenderNotFound(f"No sender with app_tag {app_tag!r} exists.", app_tag=app_tag)


T = TypeVar("T")


class TtlCache(Generic[T]):
    """A thread-safe map of found values, each kept for ttl_seconds; misses are not kept."""

    def __init__(self, ttl_seconds: float) -> None:
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[str], T | None]) -> T | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and entry[0] > now:
            return entry[1]

        value = load(key)
        with self._lock:
            if value is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (now + self._ttl, value)
        return value


class SenderCache:
    """A per-process cache of found senders and API keys, so ingest skips the database for known ones.

    Only hits are cached: a sender or key added a moment ago is found at once. A change to a cached
    one (deleted sender, disabled sender, revoked key) takes effect after at most ``ttl_seconds``.
    The worker looks the sender up again and fails jobs of deleted or disabled senders. A cached key's
    own expiry time is checked on every request, so the end of a rotation's grace period is exact.
    """

    def __init__(self, store: SenderStore, ttl_seconds: float, keys: ApiKeyStore | None = None) -> None:
        self._store = store
        self._keys = keys
        self._senders: TtlCache[Sender] = TtlCache(ttl_seconds)
        self._stored_keys: TtlCache[StoredKey] = TtlCache(ttl_seconds)

    def get(self, app_tag: str) -> Sender | None:
        return self._senders.get(app_tag, self._store.get)

    def get_key(self, key_id: str) -> StoredKey | None:
        """Return the live key with key_id, or None when it is unknown, revoked or expired."""
        if self._keys is None:
            raise RuntimeError("This SenderCache was created without an ApiKeyStore.")
        stored = self._stored_keys.get(key_id, self._keys.lookup)
        if stored is None or not stored.active_at(datetime.now(timezone.utc)):
            return None
        return stored
