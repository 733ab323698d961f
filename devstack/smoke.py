"""`make smoke`: send one mail through the running stack and check that the Graph sandbox received it.

Contract of the stack that this relies on:
- ``python -m functions.admin add ... --json`` prints the new sender with its ``api_key``, and
  ``keys rotate ... --json`` prints a new ``api_key`` for an existing sender.
- ``POST {url}/send-email`` with ``Authorization: Bearer <api key>`` and JSON ``{"recipients": [...],
  "subject", "body_content", "app_tag"}`` returns 202 with ``{"job_id": ...}``.
- ``GET {sandbox}/_sandbox/messages?mailbox=...`` returns ``{"messages": [...]}``, each entry with the
  sending ``mailbox`` and the Graph ``message`` as sent (graph_sandbox/admin.py).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from common import settings
from devstack.environment import user_environment

SMOKE_APP_TAG = "smoke-test"
SMOKE_SENDER = "smoke@example.com"
SMOKE_RECIPIENT = "smoke-recipient@example.com"
ARRIVAL_TIMEOUT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.5
REQUEST_TIMEOUT_SECONDS = 10.0
DEFAULT_URL = "http://127.0.0.1:8080"
DEFAULT_SANDBOX = f"https://{settings.DEFAULT_SANDBOX_HOST}:{settings.DEFAULT_SANDBOX_PORT}"


class SmokeFailure(RuntimeError):
    """A step of the smoke test failed. The message names the step and quotes the response."""


def provide_api_key() -> tuple[str, str]:
    """Add the smoke-test sender, or rotate the key of the existing one; return (what happened, API key).

    Only the hash of a key is stored, so an existing sender's key can only be had by rotating it.
    """
    result = _admin_cli("add", "-tag", SMOKE_APP_TAG, "-email", SMOKE_SENDER, "--json")
    happened = "added, with a new API key"
    if result.returncode != 0 and "already exists" in result.stderr:
        result = _admin_cli("keys", "rotate", "-tag", SMOKE_APP_TAG, "--json")
        happened = "kept the existing sender and rotated its API key"

    if result.returncode != 0:
        raise SmokeFailure(f"The admin CLI failed (exit code {result.returncode}): {result.stderr.strip()}\n"
                           f"Is `make run` running? It applies the schema that the admin CLI needs.")
    return happened, json.loads(result.stdout)["api_key"]


def _admin_cli(*arguments: str) -> subprocess.CompletedProcess[str]:
    # The CLI prints German under a German locale; the "already exists" check needs English.
    environment = {**user_environment(), "LC_ALL": "C.UTF-8"}
    return subprocess.run([sys.executable, "-m", "functions.admin", *arguments], cwd=settings.REPO_ROOT,
                          env=environment, capture_output=True, text=True, check=False)


def send_mail(url: str, subject: str, api_key: str) -> str:
    """POST one mail to the ingest function and return its job id."""
    payload = {
        "recipients": [SMOKE_RECIPIENT],
        "subject": subject,
        "body_content": "Sent by `make smoke` to check the local stack end to end.",
        "app_tag": SMOKE_APP_TAG,
    }
    try:
        response = requests.post(f"{url.rstrip('/')}/send-email", json=payload, timeout=REQUEST_TIMEOUT_SECONDS,
                                 headers={"Authorization": f"Bearer {api_key}"})
    except requests.RequestException as error:
        raise SmokeFailure(f"POST {url}/send-email failed: {error}. Is `make run` running?") from error

    if response.status_code != 202:
        raise SmokeFailure(f"POST {url}/send-email returned {response.status_code}, expected 202: "
                           f"{response.text[:500]}")
    return str(response.json().get("job_id"))


def wait_for_message(sandbox: str, subject: str, ca_path: Path,
                     timeout: float = ARRIVAL_TIMEOUT_SECONDS) -> dict[str, Any] | None:
    """Poll the sandbox until a mail with subject from SMOKE_SENDER is listed; None after timeout."""
    url = f"{sandbox.rstrip('/')}/_sandbox/messages"
    if not ca_path.is_file():
        raise SmokeFailure(f"The sandbox's CA certificate {ca_path} is missing; the sandbox writes it when "
                           f"`make run` starts it.")
    deadline = time.monotonic() + timeout

    while True:
        try:
            response = requests.get(url, params={"mailbox": SMOKE_SENDER}, verify=str(ca_path),
                                    timeout=REQUEST_TIMEOUT_SECONDS)
            response.raise_for_status()
        except requests.RequestException as error:
            raise SmokeFailure(f"GET {url} failed: {error}") from error

        for entry in response.json().get("messages", []):
            if message_matches(entry, subject, SMOKE_SENDER):
                return entry
        if time.monotonic() > deadline:
            return None
        time.sleep(POLL_INTERVAL_SECONDS)


def message_matches(entry: dict[str, Any], subject: str, sender: str) -> bool:
    """Return True if a /_sandbox/messages entry was sent from sender's mailbox with this subject."""
    message = entry.get("message") or {}
    same_sender = str(entry.get("mailbox", "")).lower() == sender.lower()
    return same_sender and message.get("subject") == subject


def run(url: str, sandbox: str, ca_path: Path) -> int:
    happened, api_key = provide_api_key()
    print(f"Sender {SMOKE_APP_TAG} -> {SMOKE_SENDER}: {happened}")

    subject = f"smoke test {uuid.uuid4()}"
    job_id = send_mail(url, subject, api_key)
    print(f"POST {url}/send-email accepted the mail {subject!r} as job {job_id}")

    started = time.monotonic()
    print(f"Waiting up to {ARRIVAL_TIMEOUT_SECONDS:.0f} s for it at {sandbox}/_sandbox/messages")
    if wait_for_message(sandbox, subject, ca_path) is None:
        print(f"FAILED: no mail {subject!r} from {SMOKE_SENDER} arrived within {ARRIVAL_TIMEOUT_SECONDS:.0f} s. "
              f"The worker's lines in the `make run` terminal say why.")
        return 1

    print(f"OK: the sandbox received it from {SMOKE_SENDER} {time.monotonic() - started:.1f} s after the POST")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack smoke",
                                     description="Send one mail through the running stack (make run).")
    parser.add_argument("--url", default=DEFAULT_URL, help=f"base URL of the ingest function (default {DEFAULT_URL})")
    parser.add_argument("--sandbox", default=DEFAULT_SANDBOX,
                        help=f"base URL of the Graph sandbox (default {DEFAULT_SANDBOX})")
    parser.add_argument("--ca", type=Path, default=settings.DEFAULT_SANDBOX_DATA_DIR / settings.SANDBOX_CA_FILENAME,
                        help="CA certificate that signed the sandbox's TLS certificate "
                             "(default .local/sandbox/ca.pem)")
    args = parser.parse_args(argv)

    try:
        return run(args.url, args.sandbox, args.ca)
    except SmokeFailure as error:
        print(f"FAILED: {error}")
        return 1
