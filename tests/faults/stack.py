"""The service on private servers for fault tests: processes to start, kill and restart, and checks.

Each test gets its own stream, subject and consumer on the package's private NATS and PostgreSQL, and
its own ingest and worker processes, so killing one of them cannot disturb another test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import pg8000.native
import requests

from common import settings as settings_module
from common.apikeys import ApiKeyStore
from common.db import Database
from devstack.servers import NatsServer, PostgresServer
from tests.conftest import Process, Sandbox, free_port, spawn, wait_for_log, wait_for_port

POLL_SECONDS = 0.2
# A client of the service retries a 503 this long before it gives up on a mail.
CLIENT_RETRY_SECONDS = 60.0


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = POLL_SECONDS) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()


@dataclass
class FaultServers:
    nats: NatsServer
    postgres: PostgresServer
    dsn: str


@dataclass
class FaultStack:
    """One test's service: environment, processes and the shared servers and sandbox."""

    servers: FaultServers
    sandbox: Sandbox
    log_dir: Path
    env: dict[str, str]
    ingest_url: str = ""
    ingest: Process | None = None
    workers: list[Process] = field(default_factory=list)
    # The API key of each sender that add_sender created, by app_tag.
    api_keys: dict[str, str] = field(default_factory=dict)

    # --- processes ---

    def start_ingest(self) -> str:
        port = free_port()
        env = {**os.environ, **self.env, "WORKERS": "1", "THREADS": "8"}
        self.ingest = spawn("fault-ingest", [sys.executable, "-m", "functions_framework", "--target",
                                             "send_email", "--source", "functions/send_email/main.py",
                                             "--port", str(port), "--host", "127.0.0.1"], env, self.log_dir)
        wait_for_port(port, self.ingest.popen, self.ingest.log_path)
        self.ingest_url = f"http://127.0.0.1:{port}"
        return self.ingest_url

    def start_worker(self, **overrides: str) -> Process:
        env = {**os.environ, **self.env, **overrides}
        worker = spawn(f"fault-worker-{len(self.workers) + 1}", [sys.executable, "-m", "functions.process_job"],
                       env, self.log_dir)
        self.workers.append(worker)
        wait_for_log(worker, "Consuming")
        return worker

    def kill_worker(self, worker: Process) -> None:
        """SIGKILL the worker, as the kernel's OOM killer or a node failure would end it."""
        os.killpg(worker.popen.pid, signal.SIGKILL)
        worker.popen.wait(10)

    def stop(self) -> None:
        for process in [*self.workers, self.ingest]:
            if process is not None:
                process.stop()
        asyncio.run(self._delete_streams())

    async def _delete_streams(self) -> None:
        try:
            nc = await nats.connect(self.env[settings_module.ENV_NATS_URL], allow_reconnect=False)
        except Exception:  # noqa: BLE001 - a test may leave NATS stopped; its data dir is deleted anyway
            return
        js = nc.jetstream()
        for stream in (self.stream, f"{self.stream}_DEAD"):
            try:
                await js.delete_stream(stream)
            except Exception:  # noqa: BLE001 - the stream may not exist
                pass
        await nc.close()

    @property
    def stream(self) -> str:
        return self.env[settings_module.ENV_NATS_STREAM]

    # --- clients ---

    def post(self, mail: dict[str, Any], key: str | None = None, timeout: float = 10) -> requests.Response:
        headers = {"Idempotency-Key": key} if key else {}
        headers["Authorization"] = f"Bearer {self.api_keys[mail['app_tag']]}"
        return requests.post(f"{self.ingest_url}/send-email", json=mail, headers=headers, timeout=timeout)

    def post_until_accepted(self, mail: dict[str, Any], key: str) -> str:
        """POST with an Idempotency-Key like a careful client: retry 503s and timeouts; return the job id."""
        deadline = time.monotonic() + CLIENT_RETRY_SECONDS
        while True:
            try:
                response = self.post(mail, key)
                if response.status_code == 202:
                    return response.json()["job_id"]
                if response.status_code != 503:
                    raise AssertionError(f"POST answered {response.status_code}: {response.text}")
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"Mail {key} was not accepted within {CLIENT_RETRY_SECONDS} s")
            time.sleep(0.3)

    def post_all(self, mails: list[tuple[dict[str, Any], str]], threads: int = 4, pause_seconds: float = 0.0,
                 job_ids: list[str] | None = None) -> list[str]:
        """Post every (mail, key) from a few client threads; return the job ids in order.

        job_ids, when given, is filled while the clients run, so a test can watch the progress.
        """
        accepted = job_ids if job_ids is not None else [""] * len(mails)
        cursor = iter(range(len(mails)))
        lock = threading.Lock()

        def client() -> None:
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                mail, key = mails[index]
                accepted[index] = self.post_until_accepted(mail, key)
                time.sleep(pause_seconds)

        pool = [threading.Thread(target=client) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join(timeout=CLIENT_RETRY_SECONDS * 2)
        return accepted

    # --- checks ---

    def query(self, sql: str, **params: Any) -> list[list[Any]]:
        connection = pg8000.native.Connection("postgres", host="127.0.0.1", port=self.servers.postgres.port,
                                              database=self.servers.dsn.rsplit("/", 1)[1], timeout=5)
        try:
            return connection.run(sql, **params)
        finally:
            connection.close()

    def statuses(self, job_ids: Iterable[str]) -> dict[str, str]:
        rows = self.query("SELECT job_id::text, status FROM jobs WHERE job_id::text = ANY(:ids)",
                          ids=list(job_ids))
        return {job_id: status for job_id, status in rows}

    def job(self, job_id: str) -> dict[str, Any]:
        rows = self.query("SELECT status, attempts, error_status, error_code FROM jobs WHERE job_id = :id",
                          id=job_id)
        status, attempts, error_status, error_code = rows[0]
        return {"status": status, "attempts": attempts, "error_status": error_status, "error_code": error_code}

    def wait_for_statuses(self, job_ids: list[str], wanted: Iterable[str], timeout: float) -> dict[str, str]:
        """Wait until every job has one of the wanted (final) statuses; return the statuses."""
        final = set(wanted)
        found: dict[str, str] = {}

        def settled() -> bool:
            found.update(self.statuses(job_ids))
            return len(found) == len(job_ids) and set(found.values()) <= final

        wait_until(settled, timeout, poll=0.5)
        return found

    def captured_subjects(self, mailboxes: Iterable[str]) -> Counter[str]:
        subjects: Counter[str] = Counter()
        for mailbox in mailboxes:
            subjects.update(message["message"]["subject"] for message in self.sandbox.messages(mailbox))
        return subjects

    def add_sender(self) -> tuple[str, str]:
        suffix = uuid.uuid4().hex[:8]
        app_tag, mailbox = f"fault-{suffix}", f"fault-{suffix}@example.com"
        self.query("INSERT INTO senders (app_tag, mailbox) VALUES (:t, :m)", t=app_tag, m=mailbox)
        database = Database(self.servers.dsn)
        try:
            self.api_keys[app_tag] = ApiKeyStore(database).issue(app_tag).api_key
        finally:
            database.close()
        return app_tag, mailbox


def mail(app_tag: str, subject: str) -> dict[str, Any]:
    return {"recipients": ["empfaenger@example.com"], "subject": subject, "body_content": "Test",
            "app_tag": app_tag}


def active_requests(sandbox: Sandbox, mailbox: str) -> int:
    """Return how many Graph requests for the mailbox the sandbox is handling right now."""
    return int(sandbox.get("/_sandbox/stats")["active_requests"].get(mailbox.lower(), 0))
