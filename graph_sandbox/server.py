"""The sandbox's HTTPS server: werkzeug's threaded WSGI server with persistent connections.

Werkzeug's own handler (3.1) closes every connection after one response, so each request would
pay a TCP and TLS handshake. GraphRequestHandler keeps HTTP/1.1 connections open instead, as Graph
does, which more than doubles the requests per second a client gets on two cores (see bench.py).
One process contains all state, and each connection gets a thread.
"""

from __future__ import annotations

import logging
import re
import signal
import socket
import ssl
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from flask import Flask
from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

from common.logs import mask_address
from graph_sandbox.app import make_app
from graph_sandbox.certificates import TlsFiles, ensure_certificates, server_ssl_context
from graph_sandbox.config import SandboxConfig
from graph_sandbox.state import SandboxState

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("graph_sandbox.access")
_MAILBOX_IN_PATH = re.compile(r"(?<=/users/)([^/]+)")


def _mask_mailbox(match: re.Match[str]) -> str:
    return mask_address(unquote(match.group(1)))

# A connection idle this long is closed. The limit also bounds a TLS handshake that never completes.
IDLE_TIMEOUT_SECONDS = 60
# After a response (e.g. a 413), the server reads and discards at most this much of an unread
# request body to keep the connection open. A larger rest closes the connection.
MAX_DRAIN_BYTES = 64 * 1024 * 1024
_DRAIN_CHUNK = 1024 * 1024


class GraphRequestHandler(WSGIRequestHandler):
    """Serve WSGI requests on a persistent HTTP/1.1 connection and log one line per request."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    # Headers and body go out in two writes. With Nagle's algorithm on, the second write waits for
    # the client's delayed ACK, about 40 ms per response on Linux.
    disable_nagle_algorithm = True
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.track_connection(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack_connection(self.connection)

    def run_wsgi(self) -> None:
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

        environ = self.make_environ()
        body = self._bounded_body(environ)
        self.environ = environ
        try:
            self._respond(environ)
        except OSError:  # the client went away, timed out or broke TLS while the response was written
            self.close_connection = True
            return
        self._discard_unread(body)

    def _bounded_body(self, environ: dict[str, Any]) -> Any:
        # Werkzeug already bounds a chunked body with its own stream. A sized body is bounded here,
        # so the app cannot read into the next request on the same connection.
        if environ.get("wsgi.input_terminated"):
            return environ["wsgi.input"]
        body = LimitedStream(self.rfile, int(environ.get("CONTENT_LENGTH") or 0))  # type: ignore[arg-type]
        environ["wsgi.input"] = body
        environ["wsgi.input_terminated"] = True
        return body

    def _respond(self, environ: dict[str, Any]) -> None:
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started["status"], started["headers"] = status, headers
            return chunks.append

        # The response is buffered so it always carries a Content-Length, which keeps the connection
        # reusable. The largest response is an attachment's bytes from /_sandbox.
        result = self.server.app(environ, start_response)
        try:
            chunks.extend(chunk for chunk in result if chunk)
        finally:
            if hasattr(result, "close"):
                result.close()

        # http.server's own reason phrases read like Graph's ("Accepted"); Flask's are upper case.
        self.send_response(int(started["status"].split(" ", 1)[0]))
        content = b"".join(chunks)
        content_length = str(len(content))
        for name, value in started["headers"]:
            if name.lower() == "content-length" and self.command == "HEAD":
                content_length = value  # HEAD announces the length that GET would send
            elif name.lower() not in ("content-length", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", content_length)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)
        self.wfile.flush()

    def _discard_unread(self, body: Any) -> None:
        drained = 0
        try:
            while drained <= MAX_DRAIN_BYTES:
                chunk = body.read(_DRAIN_CHUNK)
                if not chunk:
                    return
                drained += len(chunk)
        except (OSError, ClientDisconnected):
            pass
        self.close_connection = True

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Log the path without the query, because an upload URL carries its authtoken there, and
        # with mailbox addresses masked like every other log line of the service.
        path = _MAILBOX_IN_PATH.sub(_mask_mailbox, urlsplit(getattr(self, "path", "")).path)
        access_logger.info("%s %s %s", getattr(self, "command", "-"), path, code)

    def log_error(self, format: str, *args: Any) -> None:
        # An idle keep-alive connection that times out is normal for a client's connection pool.
        level = logging.DEBUG if "timed out" in (format % args) else logging.WARNING
        logger.log(level, "Connection from %s: " + format, self.address_string(), *args)

    def log_message(self, format: str, *args: Any) -> None:
        logger.info(format, *args)


class SandboxHTTPServer(ThreadedWSGIServer):
    """Werkzeug's threaded server with TLS handshakes in the connection threads."""

    def __init__(self, host: str, port: int, app: Flask, ssl_context: ssl.SSLContext) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(host, port, app, handler=GraphRequestHandler)
        # Werkzeug's wrapping would make accept() do the TLS handshake, so one client that connects
        # and stays silent would block all others. Here the first read does the handshake instead.
        self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        self.ssl_context = ssl_context

    def track_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack_connection(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """Shut down open keep-alive connections, so no client is served after stop."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class SandboxServer:
    """A sandbox serving HTTPS from a background thread, for tests, scripts and the CLI.

    Usage: ``with SandboxServer("127.0.0.1", 0, data_dir) as sandbox: requests.get(sandbox.url + ...)``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        data_dir: Path,
        config: SandboxConfig | None = None,
        state: SandboxState | None = None,
    ) -> None:
        self.host = host
        self.data_dir = Path(data_dir).resolve()
        self.config = config or SandboxConfig.from_env()
        self.state = state or SandboxState()
        self.app = make_app(self.config, self.state)
        self.tls: TlsFiles = ensure_certificates(self.data_dir, host)
        self._server = SandboxHTTPServer(host, port, self.app, server_ssl_context(self.tls))
        self.port: int = self._server.port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def ca_path(self) -> Path:
        return self.tls.ca_cert

    def start(self) -> SandboxServer:
        self._thread = threading.Thread(target=self._server.serve_forever, name="graph-sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def serve(host: str, port: int, data_dir: Path, config: SandboxConfig | None = None) -> None:
    """Run the sandbox until SIGTERM or SIGINT, and print one line once it accepts connections."""
    sandbox = SandboxServer(host, port, data_dir, config)
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: Any) -> None:
        logger.info("Received %s; stopping the Graph sandbox", signal.Signals(signum).name)
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    sandbox.start()
    print(f"Graph sandbox listening on {sandbox.url} (CA: {sandbox.ca_path})", flush=True)
    logger.info("Registered app: tenant %s, client %s", sandbox.config.tenant_id, sandbox.config.client_id)
    while not stop_requested.wait(timeout=1):
        pass
    sandbox.stop()
    logger.info("Graph sandbox stopped")
    sys.stdout.flush()
