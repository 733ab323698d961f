"""The NATS shim of the job processor: a durable push consumer in a deliver group.

Every worker process binds to the same durable consumer and deliver group, so JetStream spreads the
jobs over them. The handler runs in a thread pool; the event loop only moves messages and acks.
Each message ends in exactly one branch: ack (sent), nak with a delay (transient failure), term
(failed) or a copy to the dead-letter stream and term (dead). While a message waits for a thread or is
being sent, it is marked in progress so JetStream does not redeliver it to another worker meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import nats.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from common.dead_letters import ensure_dead_letter_stream, publish_dead_letter
from common.errors import PoisonJob, QueueUnavailable
from common.health import Check, start_health_server
from common.jobs import Action, Job, Outcome, backoff_delay
from common.metrics import get_metrics
from common.queue import RECONNECT_WAIT_SECONDS, connect, ensure_stream
from common.settings import Settings, get_observability_settings
from common.tracing import run_in_process_span
from functions.process_job.summary import report_summaries

logger = logging.getLogger(__name__)

Handler = Callable[[bytes, int], Outcome]

# The consumer may have this many unacked jobs per worker process in flight or waiting for a thread.
ACK_PENDING_PER_SLOT = 4
# JetStream's max_deliver: unlimited. The handler ends a job after MAX_DELIVER send attempts, counted in
# its row. Deliveries that only waited (PostgreSQL down, a shutdown) do not count, so a JetStream limit
# could stop delivering a job that the handler has not given up.
UNLIMITED_DELIVERIES = -1
# Settings of an existing durable consumer that ensure_consumer brings up to date.
UPDATABLE_FIELDS = ("ack_wait", "max_deliver", "max_ack_pending")


def consumer_config(settings: Settings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=settings.nats_consumer,
        deliver_group=settings.nats_consumer,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        ack_wait=settings.ack_wait_seconds,
        max_deliver=UNLIMITED_DELIVERIES,
        max_ack_pending=settings.worker_concurrency * ACK_PENDING_PER_SLOT,
    )


async def ensure_consumer(js: JetStreamContext, settings: Settings) -> None:
    """Update an existing durable consumer whose settings differ; subscribe creates a missing one.

    nats-py binds to an existing durable consumer without comparing its configuration, so one created
    by an older version would keep, for example, a max_deliver of 20.
    """
    wanted = consumer_config(settings)
    try:
        info = await js.consumer_info(settings.nats_stream, settings.nats_consumer)
    except nats.js.errors.NotFoundError:
        return
    current = info.config
    if all(getattr(current, name) == getattr(wanted, name) for name in UPDATABLE_FIELDS):
        return

    wanted.deliver_subject = current.deliver_subject
    await js.add_consumer(settings.nats_stream, wanted)
    logger.info("Updated consumer %s: ack_wait %s, max_deliver %s, max_ack_pending %s",
                settings.nats_consumer, wanted.ack_wait, wanted.max_deliver, wanted.max_ack_pending)


class Consumer:
    def __init__(self, settings: Settings, handler: Handler,
                 readiness_checks: Mapping[str, Check] | None = None) -> None:
        self._settings = settings
        self._handler = handler
        self._readiness_checks = dict(readiness_checks or {})
        self._observability = get_observability_settings()
        self._executor = ThreadPoolExecutor(settings.worker_concurrency, thread_name_prefix="job")
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._js: JetStreamContext | None = None

    def stop(self) -> None:
        logger.info("Stopping: taking no new jobs, finishing the ones in flight")
        self._stopping.set()

    async def run(self) -> None:
        nc = await self._connect()
        js = self._js = nc.jetstream()
        await ensure_stream(js, self._settings)
        await ensure_dead_letter_stream(js, self._settings)
        await ensure_consumer(js, self._settings)
        sub = await js.subscribe(
            self._settings.job_subject,
            queue=self._settings.nats_consumer,
            durable=self._settings.nats_consumer,
            stream=self._settings.nats_stream,
            config=consumer_config(self._settings),
            manual_ack=True,
            cb=self._on_message,
        )
        health_server = await self._start_health_server(nc)
        summaries = asyncio.create_task(report_summaries(
            js, self._settings.nats_stream, get_metrics(), self._observability.worker_summary_interval_seconds,
            self._stopping))
        logger.info("Consuming %s as %s with %d threads", self._settings.job_subject,
                    self._settings.nats_consumer, self._settings.worker_concurrency)

        await self._stopping.wait()
        await summaries
        if health_server is not None:
            health_server.close()

        # Drain delivers what nats-py already buffered to the callback, which naks it while stopping.
        await sub.drain()
        if self._tasks:
            await asyncio.wait(set(self._tasks))
        await nc.drain()
        self._executor.shutdown(wait=True)
        logger.info("Stopped")

    async def _start_health_server(self, nc: nats.aio.client.Client) -> asyncio.Server | None:
        host, port = self._observability.worker_health_host, self._observability.worker_health_port
        if not port:
            return None

        def nats_connected() -> None:
            if not nc.is_connected:
                raise QueueUnavailable(f"Not connected to NATS at {self._settings.nats_url}.",
                                       reason="not connected to NATS")

        checks = {"nats": nats_connected, **self._readiness_checks}
        server = await start_health_server(host, port, checks, self._observability.health_check_timeout_seconds)
        logger.info("Serving /healthz and /readyz on http://%s:%d", host, port)
        return server

    async def _connect(self) -> nats.aio.client.Client:
        while not self._stopping.is_set():
            try:
                return await connect(self._settings.nats_url, "email-worker")
            except (OSError, asyncio.TimeoutError, nats.errors.Error) as exc:
                logger.warning("NATS at %s is not reachable (%s); retrying in %.0f s",
                               self._settings.nats_url, exc or type(exc).__name__, RECONNECT_WAIT_SECONDS)
                await asyncio.sleep(RECONNECT_WAIT_SECONDS)
        raise SystemExit(0)

    async def _on_message(self, msg: Msg) -> None:
        # Return at once so nats-py keeps delivering; the task waits for a free thread.
        task = asyncio.create_task(self._process(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _process(self, msg: Msg) -> None:
        keepalive = asyncio.create_task(self._keep_in_progress(msg))
        try:
            async with self._slots:
                if self._stopping.is_set():
                    await msg.nak()
                    return
                outcome = await self._run_handler(msg)
            await self._settle(msg, outcome)
        except nats.errors.Error as exc:
            # The ack did not reach NATS; JetStream redelivers after ack_wait.
            logger.warning("Could not settle message %s: %s", _sequence(msg), exc)
        finally:
            keepalive.cancel()

    async def _run_handler(self, msg: Msg) -> Outcome:
        attempt = msg.metadata.num_delivered
        loop = asyncio.get_running_loop()
        try:
            # The process span starts in the handler's thread, so its database and Graph spans nest in it.
            return await loop.run_in_executor(self._executor, run_in_process_span, msg.subject, msg.headers,
                                              self._handler, msg.data, attempt)
        except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the worker
            logger.error("Handler raised on message %s (attempt %d)", _sequence(msg), attempt, exc_info=True)
            if attempt >= self._settings.max_deliver:
                # NOTE: the job's row keeps its last status, because the handler never recorded one.
                return Outcome.dead(f"Handler raised {type(exc).__name__} on every attempt.", _job_id(msg))
            delay = backoff_delay(attempt, self._settings.retry_base_seconds, self._settings.retry_max_seconds)
            return Outcome.retry(delay, f"Handler raised {type(exc).__name__}: {exc}")

    async def _settle(self, msg: Msg, outcome: Outcome) -> None:
        if outcome.action is Action.ACK:
            await msg.ack()
        elif outcome.action is Action.RETRY:
            await msg.nak(delay=outcome.delay_seconds)
        elif outcome.action is Action.DEAD_LETTER:
            await self._dead_letter(msg, outcome)
        else:
            await msg.term()
        logger.debug("Message %s settled: %s (%s)", _sequence(msg), outcome.action.value, outcome.status.value)

    async def _dead_letter(self, msg: Msg, outcome: Outcome) -> None:
        """Copy the message to the dead-letter stream, then terminate it; nak it if the copy failed."""
        assert self._js is not None
        token = outcome.job_id or f"seq-{_sequence(msg)}"
        try:
            await publish_dead_letter(self._js, self._settings, token, msg.data, outcome.reason,
                                      msg.metadata.sequence.stream)
        except (asyncio.TimeoutError, nats.errors.Error) as exc:
            # The redelivery finds the job dead in its row and copies it again.
            delay = self._settings.retry_max_seconds
            logger.warning("Could not copy message %s (job %s) to the dead-letter stream (%s); retrying in "
                           "%.0f s", _sequence(msg), token, exc or type(exc).__name__, delay)
            await msg.nak(delay=delay)
            return
        await msg.term()

    async def _keep_in_progress(self, msg: Msg) -> None:
        interval = max(self._settings.ack_wait_seconds / 3, 1.0)
        while True:
            await asyncio.sleep(interval)
            await msg.in_progress()


def _job_id(msg: Msg) -> str:
    try:
        return Job.from_bytes(msg.data).job_id
    except PoisonJob:
        return ""


def _sequence(msg: Msg) -> str:
    try:
        return str(msg.metadata.sequence.stream)
    except Exception:  # noqa: BLE001 - only for log lines
        return "?"


async def serve(settings: Settings, handler: Handler, readiness_checks: Mapping[str, Check] | None = None) -> None:
    """Consume until SIGTERM or SIGINT, then finish the jobs in flight and drain.

    readiness_checks are added to the NATS check of the health server, if WORKER_HEALTH_PORT is set.
    """
    consumer = Consumer(settings, handler, readiness_checks)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, consumer.stop)
    await consumer.run()
