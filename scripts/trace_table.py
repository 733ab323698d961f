"""Print one trace that an APM test agent received as a Markdown table: service, span, resource, parent.

    python -m scripts.trace_table --agent-url http://127.0.0.1:8126 [--trace-id ID] [--service email-api]

The agent is Datadog's APM test agent (``ddapm-test-agent``), which keeps the traces that it
receives and returns them from ``GET /test/traces``. Without --trace-id the script prints the newest
trace that has a span of --service.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

import requests

TRACES_PATH = "/test/traces"
REQUEST_TIMEOUT_SECONDS = 10.0
DEFAULT_SERVICE = "email-api"
COLUMNS = ("service", "span name", "resource", "parent")

Span = dict[str, Any]


def fetch_traces(agent_url: str) -> list[list[Span]]:
    response = requests.get(agent_url.rstrip("/") + TRACES_PATH, timeout=REQUEST_TIMEOUT_SECONDS)
    response.raise_for_status()
    return response.json()


def select_trace(traces: list[list[Span]], trace_id: int | None = None,
                 service: str = DEFAULT_SERVICE) -> list[Span]:
    """Return the trace with trace_id, or the newest one with a span of service; [] if none matches."""
    if trace_id is not None:
        matches = [trace for trace in traces if trace and trace[0]["trace_id"] == trace_id]
    else:
        matches = [trace for trace in traces if any(span["service"] == service for span in trace)]
    if not matches:
        return []
    return max(matches, key=lambda trace: min(span["start"] for span in trace))


def ordered_spans(trace: list[Span]) -> list[tuple[int, Span]]:
    """Return (depth, span) pairs in tree order: each span after its parent, siblings by start time."""
    by_id = {span["span_id"]: span for span in trace}
    children: dict[int, list[Span]] = {}
    roots = []
    for span in trace:
        parent_id = span.get("parent_id") or 0
        if parent_id in by_id:
            children.setdefault(parent_id, []).append(span)
        else:
            roots.append(span)

    result: list[tuple[int, Span]] = []
    stack = [(0, span) for span in sorted(roots, key=lambda span: span["start"], reverse=True)]
    while stack:
        depth, span = stack.pop()
        result.append((depth, span))
        for child in sorted(children.get(span["span_id"], []), key=lambda child: child["start"], reverse=True):
            stack.append((depth + 1, child))
    return result


def table_rows(trace: list[Span]) -> list[tuple[str, str, str, str]]:
    """Return one row per span: its service, its name (indented by depth), resource and parent's name."""
    names = {span["span_id"]: span["name"] for span in trace}
    rows = []
    for depth, span in ordered_spans(trace):
        parent = names.get(span.get("parent_id") or 0, "-")
        rows.append((span["service"], "· " * depth + span["name"], span.get("resource", ""), parent))
    return rows


def markdown_table(rows: list[tuple[str, str, str, str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    return "\n".join([line(COLUMNS), line(["---"] * len(COLUMNS)), *(line(row) for row in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.trace_table", description=__doc__.split("\n")[0])
    parser.add_argument("--agent-url", required=True, help="base URL of the APM test agent")
    parser.add_argument("--trace-id", type=int, help="the trace's 64-bit id as the agent stores it")
    parser.add_argument("--service", default=DEFAULT_SERVICE, help="print the newest trace with this service")
    args = parser.parse_args(argv)

    try:
        traces = fetch_traces(args.agent_url)
    except requests.RequestException as exc:
        print(f"error: reading traces from {args.agent_url}{TRACES_PATH} failed: {exc}", file=sys.stderr)
        return 1

    trace = select_trace(traces, args.trace_id, args.service)
    if not trace:
        criterion = f"trace id {args.trace_id}" if args.trace_id is not None else f"a span of service {args.service}"
        print(f"error: the agent has {len(traces)} traces, none with {criterion}.", file=sys.stderr)
        return 1
    print(markdown_table(table_rows(trace)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
