"""The live bay feed: one LISTEN per process, each tenant's snapshot kept zone by zone, and
waiters for Server-Sent Events.

A thread listens on the parking channel (parking.changes) and marks the zones a change
touched as dirty (every zone of the tenant when the change did not name them). A snapshot
is reused while nothing is dirty or due, so a thousand agents polling cost one computation
per change; when something is, only those zones are recomputed and the tenant's snapshot is
reassembled from its parts. A 200-bay zone costs a few milliseconds where the whole town
cost hundreds.

A zone is due at its part's `valid_until` (statuses also change with the clock alone: grace
ends, paid time runs out, regulated hours start; see parking.feed), or at the latest
`MAX_AGE` after it was computed: the safety net for changes nobody announces (a device marked
silent by its own package's job) and for notifications lost while the listener reconnected.
Parts computed together get staggered safety deadlines, so that the net never recomputes the
whole town at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
from fastapi import FastAPI

from core.listening import StopSignal

from . import changes
from .feed import Snapshot, ZonePart, assemble

log = logging.getLogger("civicsense.parking")

MAX_AGE = timedelta(seconds=30)
LISTEN_TIMEOUT_S = 1.0

#: computes the parts at an instant of the given zones (every active zone when None)
Compute = Callable[[datetime, Collection[int] | None], dict[int, ZonePart]]


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Tenant:
    """A tenant's parts, when each is due again, and the snapshot assembled from them."""

    parts: dict[int, ZonePart]
    due: dict[int, datetime]
    snapshot: Snapshot


@dataclass
class LiveFeed:
    """Zone parts, dirty zones and async waiters, per tenant; `clock` is the time now and
    `max_age` the safety net's (both for tests to set)."""

    clock: Callable[[], datetime] = _utc_now
    max_age: timedelta = MAX_AGE
    _tenants: dict[int, _Tenant] = field(default_factory=dict)
    #: zones changed since the tenant's last computation; None: all of them
    _dirty: dict[int, set[int] | None] = field(default_factory=dict)
    _locks: dict[int, threading.Lock] = field(default_factory=lambda: defaultdict(threading.Lock))
    _waiters: dict[int, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def bump(self, tenant_id: int, zone_ids: Collection[int] | None = None) -> None:
        """A change was committed in these zones of `tenant_id` (None: in any of them):
        mark them dirty, wake the tenant's streams."""
        with self._guard:
            self._mark(tenant_id, zone_ids)
            waiters = list(self._waiters[tenant_id])
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def bump_all(self) -> None:
        """Changes may have been missed (the listener reconnected): every tenant is dirty."""
        with self._guard:
            tenants = set(self._tenants) | set(self._dirty)
        for tenant_id in tenants:
            self.bump(tenant_id)

    def _mark(self, tenant_id: int, zone_ids: Collection[int] | None) -> None:
        """Add `zone_ids` to the tenant's dirty zones (under the guard)."""
        dirty = self._dirty.get(tenant_id, set())
        if dirty is None or zone_ids is None:
            self._dirty[tenant_id] = None
        else:
            self._dirty[tenant_id] = dirty | set(zone_ids)

    def get(self, tenant_id: int, compute: Compute) -> Snapshot:
        """The tenant's snapshot now: the same object while nothing changed or fell due,
        else reassembled after recomputing the dirty and due zones (all on first use)."""
        with self._guard:
            lock = self._locks[tenant_id]
        with lock:
            now = self.clock()
            with self._guard:  # taken before reading: a change committed from now on stays dirty
                dirty = self._dirty.pop(tenant_id, set())
            cached = self._tenants.get(tenant_id)
            if cached is None:
                dirty = None
            elif dirty is not None:
                dirty |= {zone_id for zone_id, due in cached.due.items() if due <= now}
                if not dirty:
                    return cached.snapshot
            try:
                fresh = compute(now, dirty)
            except BaseException:
                with self._guard:
                    self._mark(tenant_id, dirty)
                raise
            parts = {} if cached is None or dirty is None else dict(cached.parts)
            due = {} if cached is None or dirty is None else dict(cached.due)
            for zone_id in dirty or ():  # zones asked for and not returned are gone
                parts.pop(zone_id, None)
                due.pop(zone_id, None)
            parts.update(fresh)
            due.update(_due(now, fresh, self.max_age))
            snapshot = assemble(now, parts)
            self._tenants[tenant_id] = _Tenant(parts, due, snapshot)
            return snapshot

    def seconds_to_due(self, tenant_id: int) -> float | None:
        """Seconds until one of the tenant's zones falls due (None before its first use)."""
        cached = self._tenants.get(tenant_id)
        if cached is None or not cached.due:
            return None
        return (min(cached.due.values()) - self.clock()).total_seconds()

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


def _due(now: datetime, parts: dict[int, ZonePart], max_age: timedelta) -> dict[int, datetime]:
    """When each freshly computed part must be computed again: at its `valid_until`, or at
    the safety net's deadline, spread over [max_age / 2, max_age] in zone-id order when many
    were computed together."""
    due = {}
    for rank, (zone_id, part) in enumerate(sorted(parts.items())):
        safety = now + max_age * (1 - rank / (2 * len(parts)))
        due[zone_id] = min(safety, part.valid_until or safety)
    return due


def _listen(database_url: str, feed: LiveFeed, stop: StopSignal) -> None:
    """Mark zones dirty on notifications until stopped; reconnect when the server goes
    (and then take every tenant as changed: notifications sent meanwhile are lost)."""
    connected_before = False
    while not stop.is_set():
        try:
            with psycopg.connect(database_url, autocommit=True) as conn:
                conn.execute(f"LISTEN {changes.CHANNEL}")
                if connected_before:
                    feed.bump_all()
                connected_before = True
                while not stop.is_set():
                    for note in stop.notifies(conn, LISTEN_TIMEOUT_S):
                        change = changes.parse(note.payload)
                        if change is not None:
                            feed.bump(*change)
        except psycopg.OperationalError as exc:
            log.warning("parking live feed lost its database connection: %s", exc)
            stop.wait(1.0)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the listener while the app runs; `app.state.parking_live` is the feed."""
    feed = LiveFeed()
    stop = StopSignal()
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
        if not thread.is_alive():
            stop.close()
