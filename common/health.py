"""Health endpoints: ``/healthz`` (the process is alive) and ``/readyz`` (NATS and PostgreSQL work).

The HTTP functions serve both paths through ``health_response``. The worker, which serves no HTTP,
runs ``start_health_server`` on its event loop when WORKER_HEALTH_PORT is set: its /healthz then also
proves that the loop that moves the jobs still turns. Container healthchecks call
``python -m common.health URL``, because the slim image has neither curl nor wget.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import flask

from common.db import Database
from common.errors import QueueUnavailable
from common.http import json_response, method_not_allowed_response, request_language
from common.i18n import language_from_locale, translate
from common.tracing import drop_current_trace, name_request

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
READY_PATH = "/readyz"
HEALTH_PATHS = (HEALTH_PATH, READY_PATH)
ALLOWED_METHODS = ("GET", "HEAD")
CHECK_OK = "ok"
# Limits of the worker's health server, which reads requests from any local process.
MAX_REQUEST_HEADER_LINES = 100
REQUEST_READ_TIMEOUT_SECONDS = 5.0
PROBE_TIMEOUT_SECONDS = 10.0

# A check returns when its dependency works, and otherwise raises an exception whose message gives the reason.
Check = Callable[[], None]


class ConnectionState(Protocol):
    """A NATS client of this process, such as common.queue.JetStreamPublisher."""

    def connected(self, timeout: float) -> bool: ...


@dataclass(frozen=True)
class Readiness:
    """The result of the readiness checks: each check's name mapped to ``ok`` or its failure."""

    checks: dict[str, str]

    @property
    def ready(self) -> bool:
        return all(result == CHECK_OK for result in self.checks.values())

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result != CHECK_OK]

    def body(self, language: str) -> dict[str, object]:
        if self.ready:
            message = translate("ready", language, names=", ".join(self.checks))
        else:
            message = translate("not_ready", language, names=", ".join(self.failed))
        return {"status": "ready" if self.ready else "not_ready", "message": message, "checks": self.checks}


def run_checks(checks: Mapping[str, Check]) -> Readiness:
    """Run each check once, in order; a check that raises is reported with its message."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
        except Exception as exc:  # noqa: BLE001 - every failure is a "not ready", reported by name
            results[name] = str(exc) or type(exc).__name__
            logger.warning("Readiness check %s failed: %s", name, results[name])
        else:
            results[name] = CHECK_OK
    return Readiness(results)


def database_check(db: Database) -> Check:
    def check() -> None:
        db.run("SELECT 1")

    return check


def publisher_check(publisher: ConnectionState, url: str, timeout: float) -> Check:
    """Check that this process's NATS connection is up, letting it connect for up to timeout seconds."""
    def check() -> None:
        if not publisher.connected(timeout):
            raise QueueUnavailable(f"Not connected to NATS at {url} within {timeout:.0f} s.",
                                   reason="not connected to NATS")

    return check


def nats_check(url: str, timeout: float) -> Check:
    """Check that a NATS server accepts a connection at url, with a connection of its own.

    For processes that keep no NATS connection, such as the admin function.
    """
    def check() -> None:
        asyncio.run(_connect_and_close(url, timeout))

    return check


async def _connect_and_close(url: str, timeout: float) -> None:
    import nats

    try:
        nc = await nats.connect(url, connect_timeout=timeout, max_reconnect_attempts=1, allow_reconnect=False)
    except Exception as exc:
        raise QueueUnavailable(f"NATS at {url} is unreachable: {exc or type(exc).__name__}",
                               reason="NATS unreachable") from exc
    await nc.close()


# --- HTTP functions --------------------------------------------------------------------------------


def health_response(request: flask.Request, checks: Mapping[str, Check]) -> flask.Response | None:
    """Return the response to /healthz or /readyz for an HTTP function, or None for every other path."""
    path = request.path.rstrip("/")
    if path not in HEALTH_PATHS:
        return None

    name_request(f"{request.method} {path}")
    drop_current_trace()
    language = request_language(request)
    if request.method not in ALLOWED_METHODS:
        return method_not_allowed_response(request, language, ", ".join(ALLOWED_METHODS))
    if path == HEALTH_PATH:
        return json_response({"status": "ok"}, 200)

    readiness = run_checks(checks)
    return json_response(readiness.body(language), 200 if readiness.ready else 503,
                         {"Content-Language": language})


# --- the worker's health server --------------------------------------------------------------------


async def start_health_server(host: str, port: int, checks: Mapping[str, Check],
                              check_timeout: float) -> asyncio.Server:
    """Serve /healthz and /readyz over HTTP/1.0 on the running event loop.

    Blocking checks run in the loop's default executor, so a slow database does not stall the jobs.
    """
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            method, path = await _read_request(reader)
            status, body = await _answer(method, path, checks, check_timeout)
            payload = json.dumps(body).encode()
            writer.write(f"HTTP/1.0 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode())
            if method != "HEAD":
                writer.write(payload)
            await writer.drain()
        except (asyncio.TimeoutError, ValueError, ConnectionError) as exc:
            logger.debug("Health request dropped: %s", exc or type(exc).__name__)
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str]:
    request_line = await asyncio.wait_for(reader.readline(), REQUEST_READ_TIMEOUT_SECONDS)
    for _ in range(MAX_REQUEST_HEADER_LINES):
        line = await asyncio.wait_for(reader.readline(), REQUEST_READ_TIMEOUT_SECONDS)
        if line in (b"\r\n", b"\n", b""):
            break
    parts = request_line.decode("latin-1").split()
    if len(parts) != 3:
        raise ValueError(f"Invalid HTTP request line {request_line[:80]!r}.")
    return parts[0], parts[1].split("?", 1)[0].rstrip("/")


async def _answer(method: str, path: str, checks: Mapping[str, Check],
                  check_timeout: float) -> tuple[int, dict[str, object]]:
    language = language_from_locale()
    if path not in HEALTH_PATHS:
        return 404, {"error": "not_found", "message": translate("health_not_found", language, path=path)}
    if method not in ALLOWED_METHODS:
        return 405, {"error": "method_not_allowed",
                     "message": translate("method_not_allowed", language, method=method, path=path,
                                          allowed=", ".join(ALLOWED_METHODS))}
    if path == HEALTH_PATH:
        return 200, {"status": "ok"}

    loop = asyncio.get_running_loop()
    try:
        readiness = await asyncio.wait_for(loop.run_in_executor(None, run_checks, checks), check_timeout)
    except asyncio.TimeoutError:
        readiness = Readiness({name: f"no answer within {check_timeout:.0f} s" for name in checks})
    return (200 if readiness.ready else 503), readiness.body(language)


# --- the probe for container healthchecks ----------------------------------------------------------


def probe(url: str, timeout: float = PROBE_TIMEOUT_SECONDS) -> tuple[bool, str]:
    """GET url; return (True, status line) on a 2xx response, else (False, the reason)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the operator's URL
            return True, f"{response.status} {response.reason}"
    except urllib.error.HTTPError as exc:
        return False, f"{exc.code} {exc.reason}: {exc.read(500).decode(errors='replace')}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.health",
                                     description="Exit 0 if a health URL returns a 2xx status, 1 otherwise.")
    parser.add_argument("url", help="for example http://127.0.0.1:8080/readyz")
    parser.add_argument("--timeout", type=float, default=PROBE_TIMEOUT_SECONDS, help="seconds to wait")
    args = parser.parse_args(argv)
    language = language_from_locale()

    healthy, detail = probe(args.url, args.timeout)
    key = "health_probe_ok" if healthy else "health_probe_failed"
    print(translate(key, language, url=args.url, detail=detail), file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
