"""A small HTTP/1.1 load generator: keep-alive connections on one asyncio loop, bounded in time.

Run as its own process so the load does not share the interpreter of the server under test:

    python -m scripts.loadgen --url http://127.0.0.1:8080/send-email --body body.json \
        --header "Authorization: Bearer x" --connections 32 --seconds 10

It prints one JSON object: requests, non-2xx responses, errors, requests/s and latency percentiles (ms).
Only loopback URLs are accepted, because the benchmark must not load any other machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def build_request(url: str, body: bytes, headers: list[str]) -> tuple[str, int, bytes]:
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK_HOSTS:
        raise SystemExit(f"--url {url!r} is not an http:// URL on this machine; use 127.0.0.1 or localhost.")
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"Host: {parts.hostname}:{parts.port}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *headers,
        "", "",
    ]
    return parts.hostname, parts.port or 80, "\r\n".join(lines).encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response and return its status; the body is skipped by Content-Length."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status


async def connection_loop(host: str, port: int, request: bytes, deadline: float,
                          latencies: list[float], counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            counts["requests"] += 1
            if not 200 <= status < 300:
                counts["non_2xx"] += 1
    except (OSError, asyncio.IncompleteReadError):
        counts["errors"] += 1
    finally:
        writer.close()


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(int(fraction * len(sorted_values)), len(sorted_values) - 1)
    return sorted_values[index] * 1000


async def run(url: str, body: bytes, headers: list[str], connections: int, seconds: float) -> dict[str, float]:
    host, port, request = build_request(url, body, headers)
    latencies: list[float] = []
    counts = {"requests": 0, "non_2xx": 0, "errors": 0}
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(connection_loop(host, port, request, deadline, latencies, counts)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        **counts,
        "seconds": round(elapsed, 2),
        "requests_per_second": round(counts["requests"] / elapsed, 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Send POST requests over keep-alive connections for a while.")
    parser.add_argument("--url", required=True, help="http:// URL on 127.0.0.1 or localhost")
    parser.add_argument("--body", type=Path, required=True, help="file with the JSON request body")
    parser.add_argument("--header", action="append", default=[], help="extra header line, repeatable")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration in seconds (default 10)")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.body.read_bytes(), args.header, args.connections, args.seconds))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
