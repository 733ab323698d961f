"""In-memory state of one sandbox process: tokens, drafts, upload sessions, sent messages, counters.

Every method takes the one lock, so request threads see a consistent state. Nothing is persisted,
so a restart loses all tokens and messages.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, ContextManager

from graph_sandbox.faults import FaultInjector


def new_graph_id() -> str:
    """Return an id shaped like Exchange's REST ids (base64 with '=' padding and '-' or '_')."""
    return "AAMkAD" + base64.urlsafe_b64encode(secrets.token_bytes(33)).decode("ascii") + "="


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def format_graph_time(moment: datetime) -> str:
    """Format a time the way Graph's message properties do, e.g. 2024-05-10T12:34:56Z."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class IssuedToken:
    client_id: str
    tenant_id: str
    expires_at: float  # time.time() seconds

    def is_expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at


@dataclass
class StoredAttachment:
    """A file attachment with its decoded bytes and the JSON it arrived as."""

    attachment_id: str
    name: str
    content_type: str
    data: bytes
    is_inline: bool
    content_id: str | None
    # The attachment JSON as the client sent it. An upload-session attachment has no contentBytes.
    received: dict[str, Any]

    def listing(self) -> dict[str, Any]:
        entry = copy.deepcopy(self.received)
        entry.setdefault("@odata.type", "#microsoft.graph.fileAttachment")
        entry.setdefault("name", self.name)
        entry.setdefault("contentType", self.content_type)
        entry.setdefault("isInline", self.is_inline)
        entry.setdefault("contentId", self.content_id)
        entry["size"] = len(self.data)
        entry["sha256"] = hashlib.sha256(self.data).hexdigest()
        return entry


@dataclass
class Draft:
    draft_id: str
    mailbox: str
    client_id: str
    message: dict[str, Any]
    internet_message_id: str
    immutable_id: bool
    created_at: datetime
    attachments: list[StoredAttachment] = field(default_factory=list)


@dataclass
class UploadSession:
    session_id: str
    auth_token: str
    draft_id: str
    mailbox: str
    client_id: str
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    expires_at: datetime
    received: bytearray = field(default_factory=bytearray)


@dataclass
class SentMessage:
    """A message the sandbox accepted for sending, by sendMail or by sending a draft."""

    message_id: str
    mailbox: str
    client_id: str
    message: dict[str, Any]
    attachments: list[StoredAttachment]
    save_to_sent_items: bool
    internet_message_id: str
    received_at: datetime
    source: str  # "sendMail" or "draft"
    # time.time() from which the message is listed in Sent Items.
    visible_in_sent_items_at: float

    def listing(self) -> dict[str, Any]:
        message = copy.deepcopy(self.message)
        message.pop("attachments", None)
        if self.attachments:
            message["attachments"] = [attachment.listing() for attachment in self.attachments]
        return {
            "id": self.message_id,
            "mailbox": self.mailbox,
            "message": message,
            "saveToSentItems": self.save_to_sent_items,
            "internetMessageId": self.internet_message_id,
            "receivedDateTime": format_graph_time(self.received_at),
            "source": self.source,
        }


def message_size_bytes(message: dict[str, Any], attachments: list[StoredAttachment]) -> int:
    """Estimate a message's size as Exchange's size limit counts it.

    NOTE: Exchange measures the encoded MIME message, but this counts decoded attachment bytes plus
    subject and body text. A message close to the limit may pass here and fail in Exchange.
    """
    body = message.get("body")
    content = body.get("content") if isinstance(body, dict) else None
    text = f"{message.get('subject') or ''}{content or ''}"
    return len(text.encode("utf-8")) + sum(len(attachment.data) for attachment in attachments)


class SandboxState:
    """All mutable state of one sandbox, shared by the request threads."""

    def __init__(self) -> None:
        # Reentrant, so a caller holding locked() can still call the other methods.
        self._lock = threading.RLock()
        self._tokens: dict[str, IssuedToken] = {}
        self._sent: list[SentMessage] = []
        self._drafts: dict[str, Draft] = {}
        self._uploads: dict[str, UploadSession] = {}
        self._responses: dict[str, Counter[int]] = defaultdict(Counter)
        self._active: Counter[tuple[str, str]] = Counter()
        self._peak_active: dict[str, int] = {}
        self.faults = FaultInjector()

    # Tokens

    def issue_token(self, client_id: str, tenant_id: str, lifetime_seconds: int) -> str:
        token = secrets.token_urlsafe(48)
        now = time.time()
        with self._lock:
            self._drop_expired_tokens(now)
            self._tokens[token] = IssuedToken(client_id, tenant_id, now + lifetime_seconds)
        return token

    def lookup_token(self, token: str) -> IssuedToken | None:
        with self._lock:
            return self._tokens.get(token)

    def revoke_tokens(self) -> int:
        with self._lock:
            count = len(self._tokens)
            self._tokens.clear()
        return count

    def _drop_expired_tokens(self, now: float) -> None:
        # Expired tokens stay an hour, so a client that presents one gets "expired" rather than "unknown".
        stale = [token for token, issued in self._tokens.items() if issued.expires_at < now - 3600]
        for token in stale:
            del self._tokens[token]

    # Sent messages

    def add_sent_message(self, sent: SentMessage) -> None:
        with self._lock:
            self._sent.append(sent)

    def sent_messages(self, mailbox: str | None = None) -> list[SentMessage]:
        with self._lock:
            messages = list(self._sent)
        if mailbox is None:
            return messages
        return [sent for sent in messages if sent.mailbox.lower() == mailbox.lower()]

    def sent_message(self, message_id: str) -> SentMessage | None:
        with self._lock:
            return next((sent for sent in self._sent if sent.message_id == message_id), None)

    def clear_sent_messages(self) -> None:
        with self._lock:
            self._sent.clear()

    def sent_items(self, mailbox: str, client_id: str) -> list[SentMessage]:
        """Return the mailbox's Sent Items that the app can read, newest first."""
        now = time.time()
        with self._lock:
            items = [
                sent
                for sent in self._sent
                if sent.mailbox.lower() == mailbox.lower()
                and sent.client_id == client_id
                and sent.save_to_sent_items
                and sent.visible_in_sent_items_at <= now
            ]
        return list(reversed(items))

    # Drafts and upload sessions

    def add_draft(self, draft: Draft) -> None:
        with self._lock:
            self._drafts[draft.draft_id] = draft

    def draft(self, mailbox: str, draft_id: str, client_id: str) -> Draft | None:
        with self._lock:
            draft = self._drafts.get(draft_id)
        if draft is None or draft.mailbox.lower() != mailbox.lower() or draft.client_id != client_id:
            return None
        return draft

    def drafts(self, mailbox: str, client_id: str) -> list[Draft]:
        with self._lock:
            drafts = list(self._drafts.values())
        return [d for d in drafts if d.mailbox.lower() == mailbox.lower() and d.client_id == client_id]

    def take_draft(self, draft_id: str) -> Draft | None:
        """Remove a draft and the upload sessions that would have added to it, and return the draft."""
        with self._lock:
            draft = self._drafts.pop(draft_id, None)
            for session_id in [s.session_id for s in self._uploads.values() if s.draft_id == draft_id]:
                del self._uploads[session_id]
        return draft

    def add_upload_session(self, session: UploadSession) -> None:
        with self._lock:
            self._uploads[session.session_id] = session

    def upload_session(self, session_id: str) -> UploadSession | None:
        with self._lock:
            return self._uploads.get(session_id)

    def remove_upload_session(self, session_id: str) -> None:
        with self._lock:
            self._uploads.pop(session_id, None)

    def locked(self) -> ContextManager[bool]:
        """Return the state lock, for a read-modify-write of a draft or an upload session."""
        return self._lock

    # Concurrency per app and mailbox

    def enter_request(self, client_id: str, mailbox: str, limit: int | None) -> bool:
        """Count a request as active, or return False without counting it when `limit` requests are active."""
        key = (client_id, mailbox.lower())
        with self._lock:
            if limit is not None and self._active[key] >= limit:
                return False
            self._active[key] += 1
            peak = self._peak_active.get(key[1], 0)
            self._peak_active[key[1]] = max(peak, self._active[key])
        return True

    def leave_request(self, client_id: str, mailbox: str) -> None:
        key = (client_id, mailbox.lower())
        with self._lock:
            self._active[key] -= 1
            if self._active[key] <= 0:
                del self._active[key]

    # Counters

    def record_response(self, operation: str, status: int) -> None:
        with self._lock:
            self._responses[operation][status] += 1

    def stats(self) -> dict[str, Any]:
        with self._lock:
            responses = {op: dict(counts) for op, counts in self._responses.items()}
            peaks = dict(self._peak_active)
            active: Counter[str] = Counter()
            for (_, mailbox), count in self._active.items():
                active[mailbox] += count
            message_count = len(self._sent)
            draft_count = len(self._drafts)
            token_count = len(self._tokens)
        return {
            "token_requests": _status_summary(responses.get("token", {})),
            "send_mail_requests": _status_summary(responses.get("sendMail", {})),
            "operations": {op: _status_summary(counts) for op, counts in sorted(responses.items())},
            "peak_concurrent_requests": peaks,
            "active_requests": dict(active),
            "messages": message_count,
            "drafts": draft_count,
            "tokens": token_count,
        }

    def reset_stats(self) -> None:
        with self._lock:
            self._responses.clear()
            self._peak_active.clear()

    def reset(self) -> None:
        """Forget messages, drafts, upload sessions, faults and counters, but keep the issued tokens."""
        with self._lock:
            self._sent.clear()
            self._drafts.clear()
            self._uploads.clear()
            self._responses.clear()
            self._peak_active.clear()
        self.faults.clear()


def _status_summary(counts: dict[int, int]) -> dict[str, Any]:
    return {
        "total": sum(counts.values()),
        "by_status": {str(status): count for status, count in sorted(counts.items())},
    }
