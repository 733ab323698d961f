"""NATS JetStream: the job stream, the connection options, and the publisher of the HTTP functions.

A connect-publish-close per request measured 3.6x slower than a shared connection. So each process
keeps one connection on a background asyncio loop, and request threads hand their publishes to it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, TypeVar

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from nats.js.api import RetentionPolicy, StorageType, StreamConfig

from common.errors import PayloadTooLarge, QueueUnavailable
from common.settings import Settings
from common.tracing import publish_span

logger = logging.getLogger(__name__)

T = TypeVar("T")
# A set-up step that runs once per connection, after the job stream exists (e.g. ensure a bucket).
SetupStep = Callable[[JetStreamContext, Settings], Awaitable[None]]

# Seconds between connect attempts while NATS is down; nats-py retries on its own after that.
RECONNECT_WAIT_SECONDS = 1.0
CONNECT_TIMEOUT_SECONDS = 2.0
MSG_ID_HEADER = "Nats-Msg-Id"


def stream_config(settings: Settings) -> StreamConfig:
    # Work-queue retention removes a job once the worker acked it; file storage keeps accepted jobs
    # across a NATS restart. Within the duplicate window JetStream drops a second publish with the same
    # Nats-Msg-Id, so it matches the window of Idempotency-Key.
    return StreamConfig(
        name=settings.nats_stream,
        subjects=[settings.job_subject],
        storage=StorageType.FILE,
        retention=RetentionPolicy.WORK_QUEUE,
        duplicate_window=settings.idempotency_window_seconds,
    )


async def ensure_stream(js: JetStreamContext, settings: Settings) -> None:
    """Create the job stream, or update it to the wanted configuration; safe to run in every process."""
    await ensure_stream_config(js, stream_config(settings))


async def ensure_stream_config(js: JetStreamContext, config: StreamConfig) -> None:
    """Create the stream, or update it to config."""
    try:
        await js.stream_info(config.name)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
        logger.info("Created JetStream stream %s for subjects %s", config.name, ", ".join(config.subjects or []))
        return
    await js.update_stream(config)
    logger.debug("JetStream stream %s is up to date", config.name)


async def delete_streams(js: JetStreamContext, settings: Settings) -> None:
    """Delete the job stream and its dead-letter stream, if they exist; for tests and the benchmark."""
    for name in (settings.nats_stream, settings.dead_letter_stream):
        try:
            await js.delete_stream(name)
        except nats.js.errors.NotFoundError:
            pass


def connect_options(name: str, nc: NATS) -> dict[str, Any]:
    """nats.connect keyword arguments shared by every process: reconnect forever, log concisely."""
    async def on_error(exc: Exception) -> None:
        logger.warning("NATS connection error: %s", exc or type(exc).__name__)

    async def on_disconnected() -> None:
        # A drain at shutdown disconnects too; that is no reason for a warning.
        if nc.is_closed or nc.is_draining:
            logger.debug("Disconnected from NATS after drain")
            return
        logger.warning("Disconnected from NATS; reconnecting")

    async def on_reconnected() -> None:
        logger.info("Reconnected to NATS")

    return {
        "name": name,
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "reconnect_time_wait": RECONNECT_WAIT_SECONDS,
        "max_reconnect_attempts": -1,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
    }


def translate_error(exc: Exception, size: int = 0, limit: int = 0) -> Exception:
    """Map a nats-py error to QueueUnavailable or PayloadTooLarge."""
    if isinstance(exc, nats.errors.MaxPayloadError):
        return PayloadTooLarge(f"Job of {size} bytes exceeds the NATS max_payload of {limit} bytes.",
                               size=size, limit=limit)
    maybe_stored = isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError, FutureTimeoutError))
    if maybe_stored:
        reason = "JetStream did not acknowledge the publish in time"
    elif isinstance(exc, nats.js.errors.NoStreamResponseError):
        reason = "no JetStream stream stored the job"
    else:
        reason = f"{type(exc).__name__}: {exc}"
    error = QueueUnavailable(f"Publishing to JetStream failed: {reason}.", reason=reason)
    # A timed-out publish may still be stored, so what it refers to must stay.
    error.maybe_stored = maybe_stored
    return error


class JetStreamPublisher:
    """One NATS connection per process, on a background asyncio loop, shared by request threads.

    The connection is made lazily on the first publish in each process, because gunicorn forks its
    workers after the function module was imported.
    """

    def __init__(self, settings: Settings, name: str, setup: Sequence[SetupStep] = ()) -> None:
        self._settings = settings
        self._name = name
        self._setup = tuple(setup)
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._nc: NATS | None = None
        self._js: asyncio.Future[JetStreamContext] | None = None

    def publish(self, subject: str, payload: bytes, headers: dict[str, str] | None = None) -> int:
        """Publish and wait for JetStream's acknowledgement; return the stream sequence.

        Raises QueueUnavailable when the job was not stored and PayloadTooLarge when NATS rejects its size.
        """
        timeout = self._settings.publish_timeout_seconds
        headers = dict(headers or {})

        async def store(js: JetStreamContext, remaining: float) -> int:
            ack = await js.publish(subject, payload, timeout=remaining, headers=headers or None)
            return ack.seq

        # The span starts in this (the request's) thread, so it is a child of the request's span.
        with publish_span(subject, headers, headers.get(MSG_ID_HEADER, "")):
            return self._call(store, timeout, size=len(payload))

    def run(self, operation: Callable[[JetStreamContext], Awaitable[T]], timeout: float) -> T:
        """Run operation(js) on this connection's loop and return its result.

        Raises QueueUnavailable when NATS is not connected, the operation fails with a nats-py error,
        or it takes longer than timeout seconds.
        """
        async def bounded(js: JetStreamContext, remaining: float) -> T:
            return await asyncio.wait_for(operation(js), remaining)

        return self._call(bounded, timeout)

    def connected(self, timeout: float) -> bool:
        """Return whether this process is connected to NATS, waiting up to timeout for a first connect."""
        loop = self._ensure_started()
        future = asyncio.run_coroutine_threadsafe(self._wait_connected(timeout), loop)
        try:
            return future.result(timeout + 1.0)
        except FutureTimeoutError:
            future.cancel()
            return False

    async def _wait_connected(self, timeout: float) -> bool:
        assert self._js is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._js), timeout)
        except asyncio.TimeoutError:
            return False
        return self._nc is not None and self._nc.is_connected

    def _call(self, operation: Callable[[JetStreamContext, float], Awaitable[T]], timeout: float,
              size: int = 0) -> T:
        """Run operation(js, remaining seconds) on the connection's loop from a request thread."""
        loop = self._ensure_started()
        future = asyncio.run_coroutine_threadsafe(self._on_connection(operation, timeout, size), loop)
        try:
            return future.result(timeout + 1.0)
        except FutureTimeoutError as exc:
            future.cancel()
            raise translate_error(exc) from exc

    async def _on_connection(self, operation: Callable[[JetStreamContext, float], Awaitable[T]],
                             timeout: float, size: int) -> T:
        deadline = time.monotonic() + timeout
        assert self._js is not None
        try:
            js = await asyncio.wait_for(asyncio.shield(self._js), timeout)
            # While nats-py reconnects it buffers publishes and may deliver them after our timeout.
            # That would store a job whose client already received a 503.
            if self._nc is None or not self._nc.is_connected:
                raise QueueUnavailable("Not connected to NATS.", reason="not connected to NATS")
            return await operation(js, max(deadline - time.monotonic(), 0.1))
        except QueueUnavailable:
            raise
        except (asyncio.TimeoutError, nats.errors.Error) as exc:
            limit = self._nc.max_payload if self._nc is not None else 0
            raise translate_error(exc, size=size, limit=limit) from exc

    def max_payload(self) -> int:
        """Return the NATS server's max_payload in bytes, connecting first if needed."""
        self._ensure_started()
        nc = self._nc
        if nc is not None and nc.is_connected:
            return nc.max_payload
        return self.run(self._max_payload, self._settings.publish_timeout_seconds)

    async def _max_payload(self, js: JetStreamContext) -> int:
        assert self._nc is not None
        return self._nc.max_payload

    def _ensure_started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._pid == os.getpid() and self._loop is not None:
                return self._loop

            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="nats-publisher", daemon=True)
            thread.start()
            self._js = asyncio.run_coroutine_threadsafe(self._create_future(), loop).result()
            # An empty context, so the connection's log lines do not carry the first request's job id.
            contextvars.Context().run(asyncio.run_coroutine_threadsafe, self._connect(), loop)
            self._loop, self._pid = loop, os.getpid()
            return loop

    async def _create_future(self) -> asyncio.Future[JetStreamContext]:
        return asyncio.get_running_loop().create_future()

    async def _connect(self) -> None:
        """Connect and set up the stream, retrying until it works; publishes wait for it with a timeout."""
        assert self._js is not None
        while True:
            try:
                nc = await connect(self._settings.nats_url, self._name)
                js = nc.jetstream()
                await ensure_stream(js, self._settings)
                for step in self._setup:
                    await step(js, self._settings)
            except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
                logger.warning("NATS at %s is not ready (%s); retrying in %.0f s",
                               self._settings.nats_url, exc or type(exc).__name__, RECONNECT_WAIT_SECONDS)
                await asyncio.sleep(RECONNECT_WAIT_SECONDS)
                continue
            self._nc = nc
            self._js.set_result(js)
            logger.info("Connected to NATS at %s", self._settings.nats_url)
            return

    def close(self) -> None:
        """Drain the connection; for tests and orderly shutdown."""
        loop = self._loop
        if loop is None or self._nc is None:
            return
        asyncio.run_coroutine_threadsafe(self._nc.drain(), loop).result(5)


async def connect(url: str, name: str,
                  extra_callbacks: dict[str, Callable[..., Awaitable[None]]] | None = None) -> NATS:
    """Open one NATS connection; the first attempt fails fast, later outages reconnect forever."""
    nc = NATS()
    options = connect_options(name, nc)
    options.update(extra_callbacks or {})
    # nats-py 2.16 retries the first connect forever unless max_reconnect_attempts is positive, so
    # the first connect is bounded here (two attempts) and the caller decides when to try again.
    options["max_reconnect_attempts"] = 1
    await nc.connect(url, **options)
    nc.options["max_reconnect_attempts"] = -1
    return nc
