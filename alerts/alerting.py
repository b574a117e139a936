"""The rule engine on ingest's stream: each committed batch of readings is evaluated against
the tenants' threshold, event and rate rules, and each batch of uplinks clears the silence
and gateway alerts of what was heard.

Subscribed to ingest's events (core.events): each committed batch is handed to the engine's
own thread (`RuleEngine`) and evaluated in its own transaction, so rules never hold ingest's
writer and a failing rule or database hiccup loses no reading. The engine queues
notifications but never sends them (alerts.delivery does), so a slow mail server cannot hold
it back either. A batch still queued when the process dies is not evaluated: its alerts wait
for the device's next readings (silence checks do not depend on it).

Late readings: a reading older than what an active alert last saw is ignored (the newer one
already decided); a duration rule (`for_minutes`) opens at the first reading that still
holds once the duration is over, so it needs a sensor reporting at least that often.
"""

from __future__ import annotations

import logging
import queue
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import psycopg

from core.events import EventBus
from core.settings import Settings
from ingest.events import ReadingsStored, StoredReading, StoredUplink, UplinksStored

from .alert_store import AlertWriter, Subject, Tally, load_active
from .evaluate import Observation
from .rulebook import Rule, RuleBook
from .rules import Event, Rate, Threshold

log = logging.getLogger("civicsense.alerts")

_DEVICES = "SELECT id, name, site, tags FROM devices WHERE id = ANY(%s)"
_SERIES = """
SELECT device_id, quantity, time, value FROM readings
WHERE device_id = ANY(%s) AND quantity = ANY(%s) AND time >= %s AND time <= %s
ORDER BY device_id, quantity, time
"""
_GATEWAYS_HEARD = """
INSERT INTO gateways_heard (tenant_id, gateway_id, last_heard_at)
SELECT * FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[])
ON CONFLICT (tenant_id, gateway_id) DO UPDATE
SET last_heard_at = greatest(gateways_heard.last_heard_at, excluded.last_heard_at)
"""
_CLEAR_HEARD = """
UPDATE alerts a SET state = 'cleared', cleared_at = %(at)s
FROM alert_rules r
WHERE r.id = a.rule_id AND a.state <> 'cleared'
  AND ((r.condition ->> 'kind' = 'silence' AND a.device_id = ANY(%(devices)s))
       OR (r.condition ->> 'kind' = 'gateway' AND a.tenant_id = ANY(%(tenants)s)
           AND a.gateway_id = ANY(%(gateways)s)))
"""


def hold_for(rule: Rule) -> timedelta:
    """How long the rule's condition must hold before its alert opens."""
    condition = rule.spec.condition
    return (
        timedelta(minutes=condition.for_minutes)
        if isinstance(condition, Threshold)
        else timedelta(0)
    )


class RecentSeries:
    """The stored readings a batch's rate rules look back on, fetched in one query (a query
    per rule and reading would cost more than the evaluation itself)."""

    def __init__(self, conn: psycopg.Connection, readings: list[StoredReading],
                 lookback: dict[str, timedelta]) -> None:  # fmt: skip
        self._series: dict[tuple[int, str], tuple[list[datetime], list[float]]] = {}
        wanted = [r for r in readings if r.quantity in lookback]
        if not wanted:
            return
        start = min(r.time - lookback[r.quantity] for r in wanted)
        end = max(r.time for r in wanted)
        devices = sorted({r.device_id for r in wanted})
        quantities = sorted({r.quantity for r in wanted})
        for device_id, quantity, time, value in conn.execute(
            _SERIES, (devices, quantities, start, end)
        ):
            times, values = self._series.setdefault((device_id, quantity), ([], []))
            times.append(time)
            values.append(value)

    def earliest(self, reading: StoredReading, since: datetime) -> float | None:
        """The first value of the reading's series in [since, reading time)."""
        times, values = self._series.get((reading.device_id, reading.quantity), ((), ()))
        index = bisect_left(times, since)
        return values[index] if index < len(times) and times[index] < reading.time else None


def _lookback(rules: dict[int, dict[str, list[Rule]]]) -> dict[str, timedelta]:
    """Quantity → the longest window of the rate rules on it."""
    lookback: dict[str, timedelta] = {}
    for by_quantity in rules.values():
        for quantity, quantity_rules in by_quantity.items():
            for rule in quantity_rules:
                if isinstance(rule.spec.condition, Rate):
                    window = timedelta(minutes=rule.spec.condition.window_minutes)
                    lookback[quantity] = max(window, lookback.get(quantity, window))
    return lookback


def _observe(rule: Rule, reading: StoredReading, recent: RecentSeries) -> Observation:
    condition = rule.spec.condition
    if isinstance(condition, Rate):
        since = reading.time - timedelta(minutes=condition.window_minutes)
        earliest = recent.earliest(reading, since)
        change = 0.0 if earliest is None else reading.value - earliest
        holds = condition.holds_change(change)
        return Observation(reading.time, holds, not holds, change)
    if not isinstance(condition, Threshold | Event):
        raise TypeError(f"{condition.kind} rules are not evaluated on readings")
    value = reading.value
    return Observation(reading.time, condition.holds(value), condition.clears(value), value)


def evaluate_readings(
    conn: psycopg.Connection, book: RuleBook, readings: Iterable[StoredReading]
) -> Tally:
    """Evaluate committed readings against their tenants' rules, inside `conn`'s transaction."""
    readings = list(readings)
    rules = book.for_tenants(conn, {r.tenant_id for r in readings})
    relevant = sorted((r for r in readings if rules[r.tenant_id].get(r.quantity)),
                      key=lambda r: r.time)  # fmt: skip
    if not relevant:
        return Tally()
    recent = RecentSeries(conn, relevant, _lookback(rules))
    devices = {row[0]: row[1:] for row in
               conn.execute(_DEVICES, (list({r.device_id for r in relevant}),))}  # fmt: skip
    observed: dict[tuple[int, str], tuple[Rule, Subject, list[Observation]]] = {}
    in_scope: dict[tuple[int, str], list[Rule]] = {}  # (device, quantity) → its rules
    subjects: dict[int, Subject] = {}
    for reading in relevant:
        if reading.device_id not in devices:
            continue  # deleted since its batch committed
        series = (reading.device_id, reading.quantity)
        if series not in in_scope:
            name, site, tags = devices[reading.device_id]
            device = reading.device_id
            subjects[device] = Subject(reading.tenant_id, name, device_id=device, site=site)
            in_scope[series] = [
                rule for rule in rules[reading.tenant_id][reading.quantity]
                if rule.spec.scope.matches(reading.model, site, tags, reading.device_id)
            ]  # fmt: skip
        subject = subjects[reading.device_id]
        for rule in in_scope[series]:
            entry = observed.get((rule.id, subject.key))
            if entry is None:
                entry = observed[rule.id, subject.key] = (rule, subject, [])
            entry[2].append(_observe(rule, reading, recent))
    active = load_active(conn, observed)
    writer = AlertWriter(conn)
    for key, (rule, subject, seen) in observed.items():
        writer.apply(rule, subject, active.get(key), seen, hold_for(rule))
    writer.flush()
    return writer.tally


def note_heard(conn: psycopg.Connection, uplinks: Iterable[StoredUplink]) -> int:
    """Record the gateways heard, and clear the silence and gateway alerts of what spoke."""
    gateways: dict[tuple[int, str], datetime] = {}
    devices: set[int] = set()
    latest: datetime | None = None
    for uplink in uplinks:
        devices.add(uplink.device_id)
        latest = uplink.time if latest is None else max(latest, uplink.time)
        for gateway_id in uplink.gateway_ids or ((uplink.gateway_id,) if uplink.gateway_id else ()):
            key = (uplink.tenant_id, gateway_id)
            gateways[key] = max(gateways.get(key, uplink.time), uplink.time)
    if latest is None:
        return 0
    if gateways:
        keys = sorted(gateways)
        conn.execute(_GATEWAYS_HEARD, ([k[0] for k in keys], [k[1] for k in keys],
                                       [gateways[k] for k in keys]))  # fmt: skip
    cleared = conn.execute(_CLEAR_HEARD, {
        "at": latest, "devices": sorted(devices), "tenants": sorted({k[0] for k in gateways}),
        "gateways": sorted({k[1] for k in gateways}),
    })  # fmt: skip
    return cleared.rowcount


class RuleEngine:
    """The subscribers' side: committed batches go into a bounded queue and are evaluated in
    a thread of its own.

    Ingest's writer is not held while rules run; batches that queued up meanwhile are
    evaluated together, with one round of queries for all of them, so the engine catches up
    when it falls behind; and a full queue makes ingest wait rather than lose a batch. A
    batch whose evaluation failed is logged and retried once on a fresh connection.
    """

    QUEUED_BATCHES = 64

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.book = RuleBook()
        self.tally = Tally()
        self._queue: queue.Queue[ReadingsStored | UplinksStored | None] = queue.Queue(
            self.QUEUED_BATCHES
        )
        self._conn: psycopg.Connection | None = None
        self._thread = threading.Thread(target=self._run, name="alert-rules", daemon=True)
        self._thread.start()

    def on_readings(self, event: ReadingsStored) -> None:
        """Queue one committed batch's readings."""
        self._queue.put(event)

    def on_uplinks(self, event: UplinksStored) -> None:
        """Queue one committed batch's uplinks (gateways and devices heard)."""
        self._queue.put(event)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued batch has been evaluated (tests, benchmarks)."""
        with self._queue.all_tasks_done:
            return self._queue.all_tasks_done.wait_for(
                lambda: self._queue.unfinished_tasks == 0, timeout
            )

    def stop(self, timeout: float = 60.0) -> None:
        """Evaluate what is queued, then end the thread."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.QUEUED_BATCHES:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            events = [item for item in items if item is not None]
            try:
                if events:
                    self._evaluate(events)
            except Exception:
                log.exception("alert rules: %d batch(es) not evaluated", len(events))
            finally:
                for _ in items:
                    self._queue.task_done()
            if None in items:
                if self._conn is not None:
                    self._conn.close()
                return

    def _evaluate(self, events: list[ReadingsStored | UplinksStored]) -> None:
        uplinks = [u for e in events if isinstance(e, UplinksStored) for u in e.uplinks]
        readings = [r for e in events if isinstance(e, ReadingsStored) for r in e.readings]
        for attempt in (1, 2):
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self.url)
            try:
                with self._conn.transaction():
                    if uplinks:
                        note_heard(self._conn, uplinks)
                    if readings:
                        self._add(evaluate_readings(self._conn, self.book, readings))
                return
            except psycopg.OperationalError:
                self._conn.close()
                if attempt == 2:
                    raise
                log.warning("alert rules lost their database connection; trying again")

    def _add(self, tally: Tally) -> None:
        for name, value in vars(tally).items():
            setattr(self.tally, name, getattr(self.tally, name) + value)


def subscribe(bus: EventBus, settings: Settings) -> Callable[[], None]:
    """Attach a rule engine to ingest's events; returns the detach (which lets the engine
    finish what is queued)."""
    engine = RuleEngine(settings.database_url)
    detach = [bus.subscribe(UplinksStored, engine.on_uplinks),
              bus.subscribe(ReadingsStored, engine.on_readings)]  # fmt: skip

    def unsubscribe() -> None:
        for undo in detach:
            undo()
        engine.stop()

    return unsubscribe
