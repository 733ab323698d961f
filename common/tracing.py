"""Datadog APM for the entry points: ddtrace set-up, pg8000 query spans and NATS trace propagation.

ddtrace traces Flask and requests by itself but has no integration for pg8000 or nats-py. This module adds a
span per pg8000 query, and carries the trace context from the ingest's publish span to the worker's
process span in the JetStream message headers, through ddtrace's HTTPPropagator (the Datadog and W3C
tracecontext headers by default; DD_TRACE_PROPAGATION_STYLE changes that).

Tracing is off unless DD_TRACE_ENABLED is true. Then nothing is patched and every helper here only
runs the code it wraps, so the service works the same without ddtrace.
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from common.logs import configure_logging
from common.settings import (ENV_DD_SERVICE, ENV_DD_TRACE_ENABLED, ObservabilitySettings,
                             get_observability_settings)

if TYPE_CHECKING:
    from ddtrace.trace import Span, Tracer

logger = logging.getLogger(__name__)

PUBLISH_SPAN_NAME = "nats.publish"
PROCESS_SPAN_NAME = "nats.process"
QUERY_SPAN_NAME = "postgres.query"
# The service of database spans that ddtrace's own PostgreSQL integrations (psycopg, asyncpg) use
# with its default span attribute schema v0, so Datadog shows the database as one inferred service.
DATABASE_SERVICE = "postgres"

# Span tag names, from Datadog's span tag semantics.
TAG_SPAN_KIND = "span.kind"
TAG_COMPONENT = "component"
TAG_DB_SYSTEM = "db.system"
TAG_DB_NAME = "db.name"
TAG_DB_USER = "db.user"
TAG_DB_ROW_COUNT = "db.row_count"
TAG_OUT_HOST = "out.host"
TAG_OUT_PORT = "network.destination.port"
TAG_MESSAGING_SYSTEM = "messaging.system"
TAG_MESSAGING_DESTINATION = "messaging.destination.name"
TAG_MESSAGE_ID = "messaging.message_id"
TAG_JOB_ID = "mail.job_id"
TAG_APP_TAG = "mail.app_tag"

# ddtrace reads these on import; set here unless the environment sets them.
DDTRACE_ENVIRONMENT_DEFAULTS = {
    # Without this, ddtrace adds a stderr handler of its own to the "ddtrace" logger: its lines would
    # appear twice and bypass the JSON format of common.logs.
    "DD_TRACE_LOG_STREAM_HANDLER": "false",
}

_tracer: Tracer | None = None
_Result = TypeVar("_Result")


def configure_tracing(default_service: str, settings: ObservabilitySettings | None = None) -> bool:
    """Set up ddtrace for this process once, before it serves; return True if tracing is on.

    Call it from each entry point before configure_logging. DD_SERVICE defaults to default_service;
    the other DD_* settings are ddtrace's own. With tracing on, it patches Flask, requests, logging
    (trace ids on every log record) and pg8000, and redacts span tags (common.trace_redaction).
    """
    global _tracer
    settings = settings or get_observability_settings()
    os.environ.setdefault(ENV_DD_SERVICE, default_service)
    # The service's default (off) differs from ddtrace's (on), so ddtrace must read the decision.
    os.environ[ENV_DD_TRACE_ENABLED] = "true" if settings.trace_enabled else "false"
    for name, value in DDTRACE_ENVIRONMENT_DEFAULTS.items():
        os.environ.setdefault(name, value)
    if not settings.trace_enabled or _tracer is not None:
        return settings.trace_enabled

    # Imported here, not at the top: ddtrace reads its settings from the environment on import.
    import ddtrace
    from ddtrace.trace import tracer

    from common.trace_redaction import RedactingFilter

    ddtrace.patch(flask=True, requests=True, logging=True)
    _trace_functions_framework_app()
    patch_pg8000()
    tracer.configure(trace_processors=[RedactingFilter()])
    _tracer = tracer
    logger.debug("Tracing is on for service %s", os.environ[ENV_DD_SERVICE])
    return True


def _trace_functions_framework_app() -> None:
    """Route the function's Flask app through ddtrace's patched ``Flask.wsgi_app``.

    functions-framework 3.10 wraps ``app.wsgi_app`` in its execution-id middleware before it imports
    the function's module (functions_framework/__init__.py, create_app), so that middleware still
    calls the method as it was before ddtrace patched Flask, and requests would get no Flask span.
    The module is imported inside the app's context, which is how this finds the app.
    """
    import flask

    if not flask.has_app_context():
        return
    app = flask.current_app._get_current_object()  # type: ignore[attr-defined]
    middleware = app.__dict__.get("wsgi_app")
    inner = getattr(middleware, "wsgi_app", None)
    if getattr(inner, "__self__", None) is app:
        middleware.wsgi_app = type(app).wsgi_app.__get__(app)


def tracing_enabled() -> bool:
    return _tracer is not None


# --- NATS: the trace context in the message headers ----------------------------------------------


@contextmanager
def publish_span(subject: str, headers: MutableMapping[str, str], message_id: str = "") -> Iterator[None]:
    """Trace a JetStream publish as a child of the active span, and add its context to headers.

    Open it in the thread that handles the request, so the span is a child of the request's span
    even though the publish itself runs on the publisher's event loop.
    """
    if _tracer is None:
        yield
        return

    from ddtrace.propagation.http import HTTPPropagator

    with _tracer.trace(PUBLISH_SPAN_NAME, resource=subject, span_type="worker") as span:
        span.set_tags({TAG_SPAN_KIND: "producer", TAG_COMPONENT: "nats-py", TAG_MESSAGING_SYSTEM: "nats",
                       TAG_MESSAGING_DESTINATION: subject})
        if message_id:
            span.set_tag(TAG_MESSAGE_ID, message_id)
        HTTPPropagator.inject(span.context, headers)
        yield


def run_in_process_span(subject: str, headers: Mapping[str, str] | None,
                        handler: Callable[..., _Result], *args: Any) -> _Result:
    """Run handler(*args) in a span that continues the trace whose context the headers carry.

    Call it in the thread that runs the handler, so the handler's pg8000 and requests spans nest
    under the process span. Without trace headers (a message from another publisher), the span
    starts a new trace.
    """
    if _tracer is None:
        return handler(*args)

    from ddtrace.propagation.http import HTTPPropagator

    parent = HTTPPropagator.extract(dict(headers or {}))
    span = _tracer.start_span(PROCESS_SPAN_NAME, child_of=parent if parent.trace_id else None,
                              resource=subject, span_type="worker", activate=True)
    span.set_tags({TAG_SPAN_KIND: "consumer", TAG_COMPONENT: "nats-py", TAG_MESSAGING_SYSTEM: "nats",
                   TAG_MESSAGING_DESTINATION: subject})
    with span:
        return handler(*args)


@contextmanager
def operation_span(name: str, resource: str) -> Iterator[None]:
    """Trace a block as a span (a root span outside any request or job), if tracing is on."""
    if _tracer is None:
        yield
        return
    with _tracer.trace(name, resource=resource):
        yield


def name_request(resource: str) -> None:
    """Set the resource of this request's root span, if tracing is on.

    functions-framework routes every path to the function through one ``/<path:path>`` rule, so
    ddtrace would name every request ``POST /<path:path>``. Pass only known routes, because each
    distinct resource is a separate series in Datadog.
    """
    if _tracer is None:
        return
    root = _tracer.current_root_span()
    if root is not None:
        root.resource = resource


def drop_current_trace() -> None:
    """Keep this request's trace out of Datadog's indexed traces, for health probes every few seconds."""
    if _tracer is None:
        return
    from ddtrace.constants import MANUAL_DROP_KEY

    root = _tracer.current_root_span()
    if root is not None:
        root.set_tag(MANUAL_DROP_KEY)


def tag_current_span(**tags: str | int) -> None:
    """Set tags on the active span, if tracing is on; for job ids, app tags and outcomes."""
    if _tracer is None:
        return
    span = _tracer.current_span()
    if span is None:
        return
    for name, value in tags.items():
        if isinstance(value, str):
            span.set_tag(name, value)
        else:
            span.set_metric(name, value)


# --- pg8000: a span per query ---------------------------------------------------------------------

# Connection -> the tags that name its server and database, recorded when it is opened.
_connection_tags: weakref.WeakKeyDictionary[Any, dict[str, str | int]] = weakref.WeakKeyDictionary()


def patch_pg8000() -> None:
    """Trace every pg8000 native query: service postgres, the statement as resource, host and database.

    Statements carry named parameters (``:tag``), never values, so the resource contains no data.
    """
    import pg8000.core
    import pg8000.native

    connection_class = pg8000.native.Connection
    if getattr(connection_class, "_mailservice_traced", False):
        return

    connect_signature = inspect.signature(pg8000.core.CoreConnection.__init__)
    original_init = connection_class.__init__

    @functools.wraps(original_init)
    def traced_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        bound = connect_signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        _connection_tags[self] = connection_tags(bound.arguments)

    connection_class.__init__ = traced_init
    connection_class.run = _traced(connection_class.run, lambda con, sql, *_, **__: (con, sql))
    statement_class = pg8000.native.PreparedStatement
    statement_class.run = _traced(statement_class.run, lambda statement, *_, **__: (statement.con,
                                                                                    statement.statement))
    connection_class._mailservice_traced = True


def connection_tags(arguments: Mapping[str, Any]) -> dict[str, str | int]:
    """Return the span tags of a pg8000 connection from its connect arguments (no password)."""
    tags: dict[str, str | int] = {TAG_OUT_HOST: str(arguments.get("unix_sock") or arguments.get("host") or "")}
    if arguments.get("port"):
        tags[TAG_OUT_PORT] = int(arguments["port"])
    user = str(arguments.get("user") or "")
    # PostgreSQL connects to the database named like the user when none is given.
    tags[TAG_DB_NAME] = str(arguments.get("database") or user)
    tags[TAG_DB_USER] = user
    return tags


def _traced(run: Callable[..., _Result], target: Callable[..., tuple[Any, str]]) -> Callable[..., _Result]:
    @functools.wraps(run)
    def traced_run(*args: Any, **kwargs: Any) -> _Result:
        if _tracer is None:
            return run(*args, **kwargs)
        connection, sql = target(*args, **kwargs)
        with _tracer.trace(QUERY_SPAN_NAME, service=DATABASE_SERVICE, resource=" ".join(sql.split()),
                           span_type="sql") as span:
            _set_query_tags(span, connection)
            rows = run(*args, **kwargs)
            if isinstance(rows, list):
                span.set_metric(TAG_DB_ROW_COUNT, len(rows))
            return rows

    return traced_run


def _set_query_tags(span: Span, connection: Any) -> None:
    span.set_tags({TAG_SPAN_KIND: "client", TAG_COMPONENT: "pg8000", TAG_DB_SYSTEM: "postgresql"})
    for name, value in _connection_tags.get(connection, {}).items():
        if isinstance(value, int):
            span.set_metric(name, value)
        else:
            span.set_tag(name, value)


def configure_entry_point(default_service: str, log_level: str) -> bool:
    """Configure tracing, then logging, for an entry point; return True if tracing is on.

    Log lines are JSON with the trace ids when tracing is on, unless LOG_FORMAT sets another format.
    """
    enabled = configure_tracing(default_service)
    configure_logging(log_level, json_format=get_observability_settings().json_logs)
    return enabled
