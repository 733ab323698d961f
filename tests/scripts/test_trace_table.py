"""The trace table printed for docs/tracing.md, from test-agent data."""

from scripts.trace_table import markdown_table, select_trace, table_rows


def span(span_id, parent_id, name, start, service="email-api", trace_id=1, resource=None):
    return {"trace_id": trace_id, "span_id": span_id, "parent_id": parent_id, "name": name, "start": start,
            "service": service, "resource": resource or name}


TRACE = [
    span(3, 1, "nats.publish", 30),
    span(4, 3, "nats.process", 40, service="email-worker"),
    span(2, 1, "postgres.query", 20, service="postgres"),
    span(1, 0, "flask.request", 10, resource="POST /send-email"),
]


def test_rows_follow_the_tree_with_siblings_by_start():
    assert [row[1] for row in table_rows(TRACE)] == [
        "flask.request", "· postgres.query", "· nats.publish", "· · nats.process"]


def test_rows_name_the_parent_span():
    assert [row[3] for row in table_rows(TRACE)] == ["-", "flask.request", "flask.request", "nats.publish"]


def test_markdown_table_escapes_pipes():
    table = markdown_table([("svc", "name", "SELECT a || b", "-")])
    assert table.splitlines()[2] == "| svc | name | SELECT a \\|\\| b | - |"


def test_newest_trace_of_the_service_is_selected():
    older = [span(1, 0, "flask.request", 10, trace_id=7)]
    newer = [span(1, 0, "flask.request", 50, trace_id=8)]
    assert select_trace([newer, older])[0]["trace_id"] == 8


def test_trace_is_selected_by_id():
    other = [span(1, 0, "flask.request", 50, trace_id=8)]
    assert select_trace([other, TRACE], trace_id=1) == TRACE


def test_no_matching_trace_gives_empty_list():
    assert select_trace([TRACE], service="email-admin") == []
