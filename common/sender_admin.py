"""Sender administration shared by the admin CLI and the admin HTTP function.

Each change is one database transaction and one INFO log line that names the action and the app_tag.
API keys never reach a log line: they are returned to the caller, who shows them once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from common.apikeys import ApiKeyStore, IssuedKey, Rotation
from common.db import Database
from common.errors import SenderNotFound
from common.logs import job_context
from common.senders import Sender, SenderStore

logger = logging.getLogger(__name__)

# Admin log lines belong to no job; the job column shows this instead of "-".
ADMIN_JOB_ID = "admin"


class AdminAction(str, Enum):
    CREATE = "create"
    UPDATE = "update"
    ENABLE = "enable"
    DISABLE = "disable"
    ROTATE_KEY = "rotate_key"
    DELETE = "delete"


@dataclass(frozen=True)
class CreatedSender:
    sender: Sender
    key: IssuedKey


class SenderAdmin:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._senders = SenderStore(db)
        self._keys = ApiKeyStore(db)

    def list(self) -> list[Sender]:
        return self._senders.list()

    def get(self, app_tag: str) -> Sender:
        sender = self._senders.get(app_tag)
        if sender is None:
            raise SenderNotFound(f"No sender with app_tag {app_tag!r} exists.", app_tag=app_tag)
        return sender

    def create(self, app_tag: str, mailbox: str, display_name: str | None = None,
               enabled: bool = True) -> CreatedSender:
        """Add a sender and issue its first API key; raise SenderExists."""
        with self._db.transaction():
            self._senders.add(app_tag, mailbox, display_name, enabled)
            key = self._keys.issue(app_tag)

        _record(AdminAction.CREATE, app_tag)
        return CreatedSender(self.get(app_tag), key)

    def update(self, app_tag: str, changes: dict[str, Any]) -> Sender:
        """Change mailbox, display_name and/or enabled; raise SenderNotFound."""
        sender = self._senders.update(app_tag, changes)

        _record(AdminAction.UPDATE, app_tag, fields=", ".join(sorted(changes)))
        return sender

    def set_enabled(self, app_tag: str, enabled: bool) -> Sender:
        sender = self._senders.update(app_tag, {"enabled": enabled})

        _record(AdminAction.ENABLE if enabled else AdminAction.DISABLE, app_tag)
        return sender

    def rotate_key(self, app_tag: str, grace_seconds: int) -> Rotation:
        """Issue a new key; the previous ones stop working after grace_seconds. Raise SenderNotFound."""
        rotation = self._keys.rotate(app_tag, grace_seconds)

        _record(AdminAction.ROTATE_KEY, app_tag, grace_seconds=grace_seconds)
        return rotation

    def delete(self, app_tag: str) -> None:
        """Delete a sender and, through the foreign key, its API keys; raise SenderNotFound."""
        self._senders.delete(app_tag)

        _record(AdminAction.DELETE, app_tag)


def _record(action: AdminAction, app_tag: str, **details: object) -> None:
    extra = "".join(f", {name}: {value}" for name, value in details.items())
    with job_context(ADMIN_JOB_ID, app_tag):
        logger.info("Admin change: %s of sender %s%s", action.value, app_tag, extra)


# JSON shapes, shared by the admin API and the CLI's --json output.

def sender_json(sender: Sender) -> dict[str, Any]:
    return {
        "app_tag": sender.app_tag,
        "mailbox": sender.mailbox,
        "display_name": sender.display_name,
        "enabled": sender.enabled,
        "created_at": _iso(sender.created_at),
        "key_created_at": _iso(sender.key_created_at),
    }


def created_json(created: CreatedSender) -> dict[str, Any]:
    """Return the new sender with its first key; no other response carries that key."""
    return {**sender_json(created.sender), "key_id": created.key.key_id, "api_key": created.key.api_key}


def rotation_json(rotation: Rotation) -> dict[str, Any]:
    """Return the new key of a rotation; no other response carries that key."""
    return {
        "app_tag": rotation.issued.app_tag,
        "key_id": rotation.issued.key_id,
        "api_key": rotation.issued.api_key,
        "key_created_at": _iso(rotation.issued.created_at),
        "previous_keys_expire_at": _iso(rotation.previous_expire_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
