"""Measure sendMail throughput of a Graph sandbox: ``python -m graph_sandbox.bench``.

Without ``--url`` it starts ``python -m graph_sandbox`` on a free port in a child process, so
client and server do not share one interpreter lock, and reports the server's CPU time too.
Each client thread keeps one HTTPS connection and sends to its own mailbox, so the limit of 4
concurrent requests per mailbox never throttles the run. The run is bounded by ``--requests``.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

from common import settings

_LISTENING = re.compile(r"^Graph sandbox listening on (\S+) \(CA: (.+)\)$")
_REPO_ROOT = Path(__file__).resolve().parent.parent
_PAYLOAD = {
    "message": {
        "subject": "Benchmark",
        "body": {"contentType": "HTML", "content": "<p>Hello from the benchmark.</p>"},
        "toRecipients": [{"emailAddress": {"address": "recipient@example.org"}}],
        "internetMessageHeaders": [{"name": "X-Bench", "value": "1"}],
    },
    "saveToSentItems": False,
}


@dataclass
class Results:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, status: int, seconds: float) -> None:
        with self.lock:
            self.statuses[status] += 1
            self.latencies.append(seconds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m graph_sandbox.bench", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--requests", type=int, default=4000, help="sendMail requests in total (default %(default)s)"
    )
    parser.add_argument("--concurrency", type=int, default=8, help="client threads (default %(default)s)")
    parser.add_argument("--url", help="base URL of a running sandbox (omit it to start one)")
    parser.add_argument("--ca", type=Path, help="CA bundle of the running sandbox given by --url")
    args = parser.parse_args(argv)
    if args.url and not args.ca:
        parser.error("--url needs --ca, the sandbox's ca.pem")

    if args.url:
        run(args.url, args.ca, args.requests, args.concurrency, server_pid=None)
        return 0

    with tempfile.TemporaryDirectory(prefix="graph-sandbox-bench-") as data_dir:
        server = subprocess.Popen(
            [sys.executable, "-m", "graph_sandbox", "--port", "0", "--data-dir", data_dir],
            cwd=_REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONPATH": str(_REPO_ROOT)},
        )
        try:
            match = _LISTENING.match((server.stdout.readline() if server.stdout else "").strip())
            if match is None:
                print("The sandbox did not start; run python -m graph_sandbox to see why.", file=sys.stderr)
                return 1
            run(match.group(1), Path(match.group(2)), args.requests, args.concurrency, server_pid=server.pid)
        finally:
            server.terminate()
            server.wait(timeout=10)
    return 0


def run(base_url: str, ca: Path, total: int, concurrency: int, server_pid: int | None) -> None:
    token = _fetch_token(base_url, ca)
    results = Results()
    barrier = threading.Barrier(concurrency + 1)
    per_thread = [total // concurrency + (1 if i < total % concurrency else 0) for i in range(concurrency)]
    threads = [
        threading.Thread(
            target=_client, args=(base_url, ca, token, f"bench{i}@example.com", count, barrier, results)
        )
        for i, count in enumerate(per_thread)
    ]
    for thread in threads:
        thread.start()

    barrier.wait()
    cpu_before = _cpu_seconds(server_pid)
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu_used = _cpu_seconds(server_pid) - cpu_before

    _report(results, elapsed, concurrency, cpu_used if server_pid else None)


def _client(
    base_url: str,
    ca: Path,
    token: str,
    mailbox: str,
    count: int,
    barrier: threading.Barrier,
    results: Results,
) -> None:
    url = f"{base_url}/v1.0/users/{mailbox}/sendMail"
    headers = {"Authorization": f"Bearer {token}"}
    with requests.Session() as session:
        session.verify = str(ca)
        session.trust_env = False
        session.get(f"{base_url}/_sandbox/health", timeout=10)  # open the connection before timing
        barrier.wait()
        for _ in range(count):
            started = time.perf_counter()
            response = session.post(url, json=_PAYLOAD, headers=headers, timeout=10)
            results.record(response.status_code, time.perf_counter() - started)


def _fetch_token(base_url: str, ca: Path) -> str:
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(
            f"{base_url}/{settings.SANDBOX_TENANT_ID}/oauth2/v2.0/token",
            verify=str(ca),
            timeout=10,
            data={
                "grant_type": "client_credentials",
                "client_id": settings.SANDBOX_CLIENT_ID,
                "client_secret": settings.SANDBOX_CLIENT_SECRET,
                "scope": settings.GRAPH_SCOPE,
            },
        )
    response.raise_for_status()
    return response.json()["access_token"]


def _cpu_seconds(pid: int | None) -> float:
    """Return user plus system CPU seconds of a process from /proc (Linux), or 0 without a pid."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _report(results: Results, elapsed: float, concurrency: int, server_cpu: float | None) -> None:
    count = len(results.latencies)
    quantiles = statistics.quantiles(results.latencies, n=100)
    print(f"sendMail requests: {count} with {concurrency} client threads in {elapsed:.2f} s")
    print(f"throughput:        {count / elapsed:.0f} requests/s")
    print(
        f"latency:           p50 {quantiles[49] * 1000:.1f} ms, p95 {quantiles[94] * 1000:.1f} ms, "
        f"p99 {quantiles[98] * 1000:.1f} ms"
    )
    print(f"statuses:          {dict(sorted(results.statuses.items()))}")
    if server_cpu is not None:
        print(f"server CPU:        {server_cpu:.2f} s ({server_cpu / count * 1000:.2f} ms per request)")


if __name__ == "__main__":
    sys.exit(main())
