"""The live bay feed: one LISTEN per process, a short-lived snapshot per tenant, and
waiters for Server-Sent Events.

A thread listens on the parking channel (parking.changes) and bumps the tenant's
version; a snapshot is reused while its tenant's version is unchanged and it is
younger than `MAX_AGE_S` (statuses also change with the clock alone: grace ends,
paid time runs out), so a thousand agents polling cost one computation per tenant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import psycopg
from fastapi import FastAPI

from . import changes
from .feed import Snapshot

log = logging.getLogger("civicsense.parking")

MAX_AGE_S = 2.0
LISTEN_TIMEOUT_S = 1.0


@dataclass
class _Cached:
    version: int
    made_at: float
    snapshot: Snapshot


@dataclass
class LiveFeed:
    """Versions, snapshots and async waiters, per tenant."""

    versions: dict[int, int] = field(default_factory=lambda: defaultdict(int))
    _cache: dict[int, _Cached] = field(default_factory=dict)
    _locks: dict[int, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def bump(self, tenant_id: int) -> None:
        """A change was committed for `tenant_id`: drop its snapshot, wake its streams."""
        with self._guard:
            self.versions[tenant_id] += 1
            waiters = list(self._waiters[tenant_id])
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def get(self, tenant_id: int, compute: Callable[[], Snapshot]) -> Snapshot:
        """The tenant's current snapshot, computed at most once per change or MAX_AGE_S."""
        with self._locks[tenant_id]:
            version = self.versions[tenant_id]
            cached = self._cache.get(tenant_id)
            if (
                cached is not None
                and cached.version == version
                and time.monotonic() - cached.made_at < MAX_AGE_S
            ):
                return cached.snapshot
            snapshot = compute()
            self._cache[tenant_id] = _Cached(version, time.monotonic(), snapshot)
            return snapshot

    async def wait(self, tenant_id: int, timeout: float) -> None:
        """Return at the tenant's next change, or after `timeout` seconds."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        with self._guard:
            self._waiters[tenant_id].add(entry)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._guard:
                self._waiters[tenant_id].discard(entry)


def _listen(database_url: str, feed: LiveFeed, stop: threading.Event) -> None:
    """Bump versions on notifications until stopped; reconnect when the server goes."""
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f"LISTEN {changes.CHANNEL}")
                while not stop.is_set():
                    for note in conn.notifies(timeout=LISTEN_TIMEOUT_S):
                        if note.payload.isdigit():
                            feed.bump(int(note.payload))
        except psycopg.OperationalError as exc:
            log.warning("parking live feed lost its database connection: %s", exc)
            stop.wait(1.0)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the listener while the app runs; `app.state.parking_live` is the feed."""
    feed = LiveFeed()
    stop = threading.Event()
    thread = threading.Thread(
        target=_listen, args=(app.state.settings.database_url, feed, stop),
        name="parking-live", daemon=True,
    )  # fmt: skip
    thread.start()
    app.state.parking_live = feed
    try:
        yield
    finally:
        stop.set()
        await asyncio.to_thread(thread.join, LISTEN_TIMEOUT_S * 3)
