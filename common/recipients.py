"""Recipients of a loaded mail: duplicates removed, display names kept beside the address lists.

The loaded mail keeps ``recipients``, ``cc_recipients``, ``bcc_recipients`` and ``reply_to`` as
lists of address strings, as the Go service's requests had them, and ``display_names`` maps an
address to the name a client gave for it.
"""

from __future__ import annotations

from typing import Any

# Graph's toRecipients, ccRecipients and bccRecipients, in the order in which duplicates are kept.
RECIPIENT_KEYS = ("recipients", "cc_recipients", "bcc_recipients")
REPLY_TO_KEY = "reply_to"
DISPLAY_NAMES_KEY = "display_names"


def normalise_recipients(mail: dict[str, Any]) -> dict[str, Any]:
    """Turn loaded recipient objects into address lists without duplicates, and collect display names.

    An address is kept where it first appears in recipients, cc_recipients, bcc_recipients. Addresses
    are compared without regard to case, as Exchange compares SMTP addresses. The first display name
    given for an address wins.
    """
    mail[DISPLAY_NAMES_KEY] = _display_names(mail)
    seen: set[str] = set()
    for key in RECIPIENT_KEYS:
        mail[key] = _unique_addresses(mail.get(key) or [], seen)
    mail[REPLY_TO_KEY] = _unique_addresses(mail.get(REPLY_TO_KEY) or [], set())
    return mail


def _display_names(mail: dict[str, Any]) -> dict[str, str]:
    names: dict[str, str] = {}
    named: set[str] = set()
    for key in (*RECIPIENT_KEYS, REPLY_TO_KEY):
        for entry in mail.get(key) or []:
            folded = entry["address"].casefold()
            if entry.get("name") and folded not in named:
                names[entry["address"]] = entry["name"]
                named.add(folded)
    return names


def _unique_addresses(entries: list[dict[str, Any]], seen: set[str]) -> list[str]:
    addresses: list[str] = []
    for entry in entries:
        folded = entry["address"].casefold()
        if folded in seen:
            continue
        seen.add(folded)
        addresses.append(entry["address"])
    return addresses


def display_name(mail: dict[str, Any], address: str) -> str | None:
    names: dict[str, str] = mail.get(DISPLAY_NAMES_KEY) or {}
    if address in names:
        return names[address]
    folded = address.casefold()
    return next((name for known, name in names.items() if known.casefold() == folded), None)
