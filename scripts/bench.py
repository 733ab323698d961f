"""`make bench`: ingest requests/s and p99 latency, and the worker's drain rate against the sandbox.

Everything runs on this machine: NATS and PostgreSQL as the tests find or start them, a Graph sandbox,
the ingest under functions-framework and a worker, each in its own process. The load comes from a second
process (scripts/loadgen.py) on loopback and stops after --seconds. Figures print as a Markdown table;
--record also writes them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import nats
import requests

from common import settings
from common.db import Database, migrate
from common.apikeys import ApiKeyStore
from common.jobs import Job
from common.queue import delete_streams
from devstack.servers import ensure_nats, ensure_postgres

BENCH_DATABASE = "mailservice_bench"
BENCH_APP_TAG = "bench"
BENCH_MAILBOX = "bench@example.com"
RESULTS_PATH = settings.REPO_ROOT / "docs" / "benchmarks.md"
RESULTS_START = "<!-- bench:start -->"
RESULTS_END = "<!-- bench:end -->"
READY_TIMEOUT_SECONDS = 30.0
DRAIN_TIMEOUT_SECONDS = 300.0

MAIL = {
    "recipients": ["empfaenger@example.com", "zweite@example.com"],
    "cc_recipients": ["kopie@example.com"],
    "subject": "Rechnung 2026-4711",
    "body_content": "Sehr geehrte Damen und Herren, anbei die Rechnung. " * 4,
    "app_tag": BENCH_APP_TAG,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"A benchmark process exited with {process.returncode} before port {port} opened.")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"Port {port} did not open within {READY_TIMEOUT_SECONDS:.0f} s.")


@contextmanager
def process(command: list[str], env: dict[str, str], log: Path, port: int | None = None) -> Iterator[subprocess.Popen]:
    with log.open("wb") as output:
        popen = subprocess.Popen(command, env=env, cwd=settings.REPO_ROOT, stdout=output,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        try:
            if port is not None:
                wait_for_port(port, popen)
            yield popen
        finally:
            popen.terminate()
            try:
                popen.wait(15)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def function_command(target: str, source: str, port: int) -> list[str]:
    return [sys.executable, "-m", "functions_framework", "--target", target, "--source", source,
            "--port", str(port), "--host", "127.0.0.1"]


def load(url: str, seconds: float, connections: int, body_path: Path, api_key: str) -> dict[str, float]:
    command = [sys.executable, "-m", "scripts.loadgen", "--url", url, "--body", str(body_path),
               "--connections", str(connections), "--seconds", str(seconds),
               "--header", f"Authorization: Bearer {api_key}"]
    result = subprocess.run(command, cwd=settings.REPO_ROOT, capture_output=True, text=True, check=True,
                            timeout=seconds + 60)
    return json.loads(result.stdout)


def measure_http(target: str, source: str, env: dict[str, str], args: argparse.Namespace, work: Path,
                 body_path: Path, api_key: str) -> dict[str, float]:
    port = free_port()
    url = f"http://127.0.0.1:{port}/send-email"
    with process(function_command(target, source, port), env, work / f"{target}.log", port):
        load(url, 1.0, args.connections, body_path, api_key)  # warm-up
        return load(url, args.seconds, args.connections, body_path, api_key)


async def publish_jobs(env: dict[str, str], count: int) -> None:
    nc = await nats.connect(env[settings.ENV_NATS_URL])
    js = nc.jetstream()
    subject = f"{env[settings.ENV_NATS_SUBJECT_PREFIX]}.jobs"
    mail = {**MAIL, "bcc_recipients": [], "attachments": [], "html_body_content": None}
    for start in range(0, count, 256):
        batch = [Job.new(mail).to_bytes() for _ in range(min(256, count - start))]
        await asyncio.gather(*(js.publish(subject, data) for data in batch))
    await nc.close()


async def delete_stream(env: dict[str, str]) -> None:
    nc = await nats.connect(env[settings.ENV_NATS_URL])
    await delete_streams(nc.jetstream(), settings.Settings.from_env(env))
    await nc.close()


def sandbox_message_count(sandbox_url: str, ca_path: Path) -> int:
    return requests.get(f"{sandbox_url}/_sandbox/stats", verify=ca_path, timeout=10).json()["messages"]


def measure_drain(env: dict[str, str], jobs: int, work: Path, sandbox_url: str, ca_path: Path) -> dict[str, float]:
    """Queue jobs with no worker running, then time one worker process until the sandbox has them all."""
    # The worker creates the stream; a short first run does that before the jobs are queued.
    with process([sys.executable, "-m", "functions.process_job"], env, work / "worker-setup.log"):
        time.sleep(3)
    asyncio.run(publish_jobs(env, jobs))

    before = sandbox_message_count(sandbox_url, ca_path)
    started = time.perf_counter()
    with process([sys.executable, "-m", "functions.process_job"], env, work / "worker.log"):
        deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
        while sandbox_message_count(sandbox_url, ca_path) - before < jobs:
            if time.monotonic() > deadline:
                raise SystemExit(f"The worker did not drain {jobs} jobs within {DRAIN_TIMEOUT_SECONDS:.0f} s.")
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    return {"jobs": jobs, "seconds": round(elapsed, 2), "jobs_per_second": round(jobs / elapsed, 1)}


def machine_description() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()}"


def format_results(results: dict[str, dict[str, float]], args: argparse.Namespace, workers: str) -> str:
    baseline, ingest, drain = results["baseline"], results["ingest"], results["drain"]
    ratio = ingest["requests_per_second"] / baseline["requests_per_second"] if baseline["requests_per_second"] else 0
    lines = [
        f"Run {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC on {machine_description()}.",
        f"Command: `make bench` (`python -m scripts.bench --seconds {args.seconds:g} "
        f"--connections {args.connections} --jobs {args.jobs}`), WORKERS={workers}, "
        f"load from a second process on loopback.",
        "",
        "| measurement | requests or jobs | per second | p50 ms | p99 ms | non-2xx | errors |",
        "|---|---|---|---|---|---|---|",
        f"| functions-framework baseline (202, no work) | {baseline['requests']:.0f} | "
        f"{baseline['requests_per_second']:,.0f} | {baseline['p50_ms']} | {baseline['p99_ms']} | "
        f"{baseline['non_2xx']:.0f} | {baseline['errors']:.0f} |",
        f"| ingest POST /send-email (API key, validation, JetStream ack) | {ingest['requests']:.0f} | "
        f"{ingest['requests_per_second']:,.0f} | {ingest['p50_ms']} | {ingest['p99_ms']} | "
        f"{ingest['non_2xx']:.0f} | {ingest['errors']:.0f} |",
        f"| worker drain, 1 process, queued jobs to sandbox 202 | {drain['jobs']:.0f} | "
        f"{drain['jobs_per_second']:,.0f} | | | | |",
        "",
        f"The ingest reached {ratio:.0%} of the baseline's requests/s in the same run.",
    ]
    return "\n".join(lines)


def record(text: str) -> None:
    content = RESULTS_PATH.read_text()
    start, end = content.index(RESULTS_START), content.index(RESULTS_END)
    RESULTS_PATH.write_text(content[:start + len(RESULTS_START)] + "\n" + text + "\n" + content[end:])


def prepare(work: Path) -> tuple[dict[str, str], str]:
    """Find or start the servers, add the bench sender; return the environment and its API key."""
    nats_url = os.environ.get(settings.ENV_NATS_URL, settings.DEFAULT_NATS_URL)
    dsn = os.environ.get(settings.ENV_DB_DSN, settings.DEFAULT_DB_DSN).rsplit("/", 1)[0] + "/" + BENCH_DATABASE
    data_dir = settings.LOCAL_DATA_DIR / "bench-servers"
    data_dir.mkdir(parents=True, exist_ok=True)
    ensure_nats(nats_url, data_dir)
    ensure_postgres(dsn, data_dir)

    db = Database(dsn)
    migrate(db)
    db.run("DELETE FROM senders WHERE app_tag = :t", t=BENCH_APP_TAG)
    db.run("INSERT INTO senders (app_tag, mailbox) VALUES (:t, :m)", t=BENCH_APP_TAG, m=BENCH_MAILBOX)
    api_key = ApiKeyStore(db).issue(BENCH_APP_TAG).api_key
    db.close()

    suffix = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        settings.ENV_NATS_URL: nats_url,
        settings.ENV_DB_DSN: dsn,
        settings.ENV_NATS_STREAM: f"BENCH_{suffix}",
        settings.ENV_NATS_SUBJECT_PREFIX: f"bench-{suffix}",
        settings.ENV_NATS_CONSUMER: f"bench-workers-{suffix}",
        settings.ENV_LOG_LEVEL: "WARNING",
    }, api_key


def main() -> int:
    parser = argparse.ArgumentParser(description="Measure the ingest and the worker on this machine.")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration per HTTP measurement (s)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent keep-alive connections")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs queued for the drain measurement")
    parser.add_argument("--record", action="store_true", help="also write the table into docs/benchmarks.md")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-", dir=settings.LOCAL_DATA_DIR if settings.LOCAL_DATA_DIR.exists() else None))
    env, api_key = prepare(work)
    sandbox_port = free_port()
    sandbox_dir = work / "sandbox"
    env.update(settings.sandbox_environment(sandbox_dir, sandbox_port))
    workers = env.get("WORKERS") or str(os.cpu_count() or 1)
    body_path = work / "mail.json"
    body_path.write_text(json.dumps(MAIL))

    sandbox_command = [sys.executable, "-m", "graph_sandbox", "--port", str(sandbox_port), "--data-dir", str(sandbox_dir)]
    results: dict[str, dict[str, float]] = {}
    try:
        with process(sandbox_command, env, work / "sandbox.log", sandbox_port):
            results["baseline"] = measure_http("baseline", "scripts/bench_baseline.py", env, args, work,
                                               body_path, api_key)
            results["ingest"] = measure_http("send_email", "functions/send_email/main.py", env, args, work,
                                             body_path, api_key)
            asyncio.run(delete_stream(env))
            results["drain"] = measure_drain(env, args.jobs, work, f"https://127.0.0.1:{sandbox_port}",
                                             sandbox_dir / settings.SANDBOX_CA_FILENAME)
    finally:
        asyncio.run(delete_stream(env))

    text = format_results(results, args, workers)
    print(text)
    print(f"\nProcess logs: {work}")
    if args.record:
        record(text)
        print(f"Recorded in {RESULTS_PATH.relative_to(settings.REPO_ROOT)}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
