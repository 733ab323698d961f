from __future__ import annotations

from devstack.smoke import message_matches

SUBJECT = "smoke test 1234"


def entry(mailbox: str, subject: str) -> dict[str, object]:
    """An entry of GET /_sandbox/messages, as graph_sandbox lists it."""
    return {"id": "m1", "mailbox": mailbox, "source": "sendMail",
            "message": {"subject": subject, "toRecipients": [{"emailAddress": {"address": "x@example.com"}}]}}


def test_message_matches_sender_and_subject() -> None:
    assert message_matches(entry("smoke@example.com", SUBJECT), SUBJECT, "smoke@example.com")


def test_message_matches_ignores_mailbox_case() -> None:
    assert message_matches(entry("Smoke@Example.com", SUBJECT), SUBJECT, "smoke@example.com")


def test_message_matches_rejects_other_sender() -> None:
    assert not message_matches(entry("notsmoke@example.com", SUBJECT), SUBJECT, "smoke@example.com")


def test_message_matches_rejects_other_subject() -> None:
    assert not message_matches(entry("smoke@example.com", "smoke test 9999"), SUBJECT, "smoke@example.com")


def test_message_matches_tolerates_missing_fields() -> None:
    assert not message_matches({}, SUBJECT, "smoke@example.com")
