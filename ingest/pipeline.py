"""The ingest pipeline: a writer thread that batches inbound messages and commits them.

Sources (MQTT, HTTP) call `submit()`; a batch is flushed when it holds
`batch_size` messages or its first message is `batch_max_age_ms` old. Messages are
acknowledged only after their batch committed, so a crash or a database outage
loses nothing: the broker redelivers, and the writer's idempotency absorbs it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
from tenacity import Retrying, retry_if_exception_type, stop_any, wait_exponential

from core import metrics, registry
from core.events import EventBus
from core.settings import Settings
from devices.lookup import DeviceCache, DeviceRef

from . import store
from .batch import Batch, Inbound, assemble
from .events import ReadingsStored, UplinksStored

log = logging.getLogger("civicsense.ingest")


@dataclass
class Stats:
    """Counters since start; read by the CLI, the benchmark and tests."""

    received: int = 0
    uplinks: int = 0
    events: int = 0
    readings: int = 0
    duplicates: int = 0
    ignored: int = 0
    batches: int = 0
    retries: int = 0
    rejects: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)


class Pipeline:
    """The batching writer thread and its database connection."""

    def __init__(
        self,
        database_url: str,
        bus: EventBus,
        *,
        batch_size: int = 1000,
        batch_max_age: float = 0.2,
        fmt: str = "auto",
        device_cache: DeviceCache | None = None,
        keep_latencies: bool = False,
    ) -> None:
        self.database_url = database_url
        self.bus = bus
        self.batch_size = batch_size
        self.batch_max_age = batch_max_age
        self.fmt = fmt
        self.devices = device_cache or DeviceCache()
        self.stats = Stats()
        self.keep_latencies = keep_latencies
        self._settled = 0  # messages whose batch committed
        self._queue: queue.SimpleQueue[Inbound | None] = queue.SimpleQueue()  # None: stop
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self.idle = threading.Event()
        self.settings: Settings | None = None
        self._detach_subscribers: Callable[[], None] | None = None
        metrics.watch_queue(self)

    @classmethod
    def from_settings(cls, settings: Settings, bus: EventBus, **options: Any) -> Pipeline:
        """A pipeline configured by `settings` (batching, format, device cache)."""
        pipeline = cls(
            settings.database_url,
            bus,
            batch_size=settings.batch_size,
            batch_max_age=settings.batch_max_age_ms / 1000,
            fmt=settings.event_format,
            device_cache=DeviceCache(settings.device_cache_seconds),
            **options,
        )
        pipeline.settings = settings
        return pipeline

    def submit(self, message: Inbound) -> None:
        """Queue a message (thread-safe); it is acknowledged after its batch commits."""
        self.stats.received += 1
        self.idle.clear()
        self._queue.put(message)

    def queue_depth(self) -> int:
        """Messages received and not yet committed (the metrics' queue depth)."""
        return self.stats.received - self._settled

    def start(self) -> None:
        """Start the writer thread (and, when built from settings, the packages'
        subscribers: parking occupancy...)."""
        if self.settings is not None:
            self._detach_subscribers = registry.attach_subscribers(self.bus, self.settings)
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Flush what is queued, then stop the writer thread."""
        self._stopping.set()
        self._queue.put(None)  # ends the writer's wait for messages
        if self._thread is not None:
            self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()
        if self._detach_subscribers is not None:
            self._detach_subscribers()
            self._detach_subscribers = None

    def _run(self) -> None:
        while True:
            messages = self._collect()
            if messages:
                metrics.INGEST_RECEIVED.inc(len(messages))
                self._flush_until_done(messages)
            elif self._stopping.is_set():
                return
            else:
                self.idle.set()

    def _collect(self) -> list[Inbound]:
        try:
            first = self._queue.get(timeout=0.2)
        except queue.Empty:
            return []
        if first is None:
            return []
        messages = [first]
        deadline = time.monotonic() + self.batch_max_age
        while len(messages) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                message = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if message is None:
                break
            messages.append(message)
        return messages

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.database_url, connect_timeout=5, autocommit=True)
            store.prepare(self._conn)
        return self._conn

    def _resolve(self, dev_euis: Iterable[str]) -> Mapping[str, DeviceRef]:
        return self.devices.resolve(self._connection(), dev_euis)

    def _on_retry(self, state: object) -> None:
        self.stats.retries += 1
        log.warning("database unavailable, retrying the batch: %s", state.outcome.exception())  # type: ignore[attr-defined]
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _flush_until_done(self, messages: list[Inbound]) -> None:
        """Flush, and keep trying on an unexpected error: the thread must not die."""
        delay = 1.0
        while True:
            try:
                self._flush(messages)
                return
            except Exception:
                log.exception("ingest batch failed unexpectedly; retrying in %.0fs", delay)
                time.sleep(delay)
                delay = min(delay * 2, 30.0)

    def _flush(self, messages: list[Inbound]) -> None:
        """Assemble and write `messages`, retrying while the database is unreachable."""
        retrying = Retrying(
            retry=retry_if_exception_type(psycopg.OperationalError),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_any(),  # never give up: unacknowledged messages wait in the broker
            before_sleep=self._on_retry,
            reraise=True,
        )
        written = retrying(self._write_all, messages)
        for ack in (m.ack for m in messages if m.ack is not None):
            ack()
        now = time.time()
        self._settled += len(messages)
        metrics.INGEST_BATCH_SIZE.observe(len(messages))
        metrics.INGEST_LAG.observe_many(
            max(0.0, now - uplink.time.timestamp()) for item in written for uplink in item.uplinks
        )
        if self.keep_latencies:
            self.stats.latencies.extend(now - m.received_at.timestamp() for m in messages)
        for item in written:
            self._publish(item)

    def _write_all(self, messages: list[Inbound]) -> list[store.Written]:
        """Write the batch; on any other error than a lost connection, isolate the message
        that causes it and store it as a reject, so that one bad event never blocks the rest."""
        batch = assemble(messages, self._resolve, fmt=self.fmt)
        conn = self._connection()
        try:
            return [self._write(conn, batch)]
        except psycopg.OperationalError:
            raise
        except Exception as exc:
            if len(messages) == 1:
                event_id = _event_id(batch)
                log.warning("event stored as a reject, the database refused it: %s", exc,
                            extra={"event_id": event_id} if event_id else None)  # fmt: skip
                return [self._write(conn, _storage_reject(messages[0], exc))]
            log.warning("batch failed (%s); writing its messages one by one", exc)
            return [w for m in messages for w in self._write_all([m])]

    def _write(self, conn: psycopg.Connection, batch: Batch) -> store.Written:
        written = store.write(conn, batch)
        stats = self.stats
        stats.batches += 1
        stats.uplinks += len(written.uplinks)
        stats.events += written.events
        stats.readings += len(written.readings)
        stats.duplicates += written.duplicates
        stats.ignored += batch.ignored
        stats.rejects.update(batch.reject_reasons)
        metrics.INGEST_UPLINKS_STORED.inc(len(written.uplinks))
        metrics.INGEST_EVENTS_STORED.inc(written.events)
        metrics.INGEST_READINGS_STORED.inc(len(written.readings))
        metrics.INGEST_DUPLICATES.inc(written.duplicates)
        metrics.INGEST_IGNORED.inc(batch.ignored)
        for reason, count in batch.reject_reasons.items():
            metrics.INGEST_REJECTED.labels(reason).inc(count)
        return written

    def _publish(self, written: store.Written) -> None:
        if written.uplinks:
            self.bus.publish(UplinksStored(written.uplinks))
        if written.readings:
            self.bus.publish(ReadingsStored(written.readings))

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted message has been flushed (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._queue.empty() and self.idle.wait(0.05) and self._queue.empty():
                return True
        return False


def _event_id(batch: Batch) -> str | None:
    """The id of the one event of `batch` (an uplink's deduplicationId), if it has one."""
    if batch.uplink_facts:
        return next(iter(batch.uplink_facts))
    return f"{batch.events[0][4]}:{batch.events[0][5]}" if batch.events else None


def _storage_reject(message: Inbound, exc: Exception) -> Batch:
    batch = Batch()
    batch.reject(message, "storage_error", f"{type(exc).__name__}: {exc}")
    return batch
