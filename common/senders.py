"""The ``senders`` table: which mailbox each application (app_tag) sends from."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from pg8000.exceptions import DatabaseError as PgDatabaseError

from common.db import Database
from common.errors import SenderExists, SenderNotFound

logger = logging.getLogger(__name__)

UNIQUE_VIOLATION = "23505"


@dataclass(frozen=True)
class Sender:
    app_tag: str
    mailbox: str
    created_at: datetime | None = None


class SenderStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, app_tag: str) -> Sender | None:
        rows = self._db.run_prepared(
            "SELECT app_tag, mailbox, created_at FROM senders WHERE app_tag = :tag", tag=app_tag
        )
        return Sender(*rows[0]) if rows else None

    def list(self) -> list[Sender]:
        rows = self._db.run("SELECT app_tag, mailbox, created_at FROM senders ORDER BY app_tag")
        return [Sender(*row) for row in rows]

    def add(self, app_tag: str, mailbox: str) -> Sender:
        with self._db.connection() as con:
            try:
                rows = con.run(
                    "INSERT INTO senders (app_tag, mailbox) VALUES (:tag, :mailbox) "
                    "RETURNING app_tag, mailbox, created_at",
                    tag=app_tag, mailbox=mailbox,
                )
            except PgDatabaseError as exc:
                details = exc.args[0] if exc.args else {}
                if isinstance(details, dict) and details.get("C") == UNIQUE_VIOLATION:
                    raise SenderExists(f"A sender for app_tag {app_tag!r} already exists.",
                                       app_tag=app_tag) from exc
                raise
        return Sender(*rows[0])

    def delete(self, app_tag: str) -> None:
        rows = self._db.run("DELETE FROM senders WHERE app_tag = :tag RETURNING app_tag", tag=app_tag)
        if not rows:
            raise SenderNotFound(f"No sender with app_tag {app_tag!r} exists.", app_tag=app_tag)


class SenderCache:
    """A per-process cache of found senders, so ingest skips the database for known app_tags.

    Only hits are cached, so a sender added a moment ago is found at once. A deleted one may still be
    accepted for ``ttl_seconds``, but the worker looks the sender up again and fails such jobs.
    """

    def __init__(self, store: SenderStore, ttl_seconds: float) -> None:
        self._store = store
        self._ttl = ttl_seconds
        self._entries: dict[str, tuple[float, Sender]] = {}
        self._lock = threading.Lock()

    def get(self, app_tag: str) -> Sender | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(app_tag)
        if entry is not None and entry[0] > now:
            return entry[1]

        sender = self._store.get(app_tag)
        if sender is not None:
            with self._lock:
                self._entries[app_tag] = (now + self._ttl, sender)
        return sender
