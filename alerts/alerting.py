"""The rule engine on ingest's stream: each committed batch of readings is evaluated against
the tenants' threshold, event and rate rules, and each batch of uplinks clears the silence
and gateway alerts of what was heard.

Subscribed to ingest's events (core.events): handlers run in the ingest writer's thread
right after its batch committed, in their own transaction, so a failing rule or database
hiccup is logged and loses no reading. They queue notifications but never send them
(alerts.delivery does), so a slow mail server cannot hold ingest back.

Late readings: a reading older than what an active alert last saw is ignored (the newer one
already decided); a duration rule (`for_minutes`) opens at the first reading that still
holds once the duration is over, so it needs a sensor reporting at least that often.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import psycopg

from core.db import ThreadConnections
from core.events import EventBus
from core.settings import Settings
from ingest.events import ReadingsStored, StoredReading, StoredUplink, UplinksStored

from .alert_store import AlertWriter, Subject, Tally, load_active
from .evaluate import Observation
from .rulebook import Rule, RuleBook
from .rules import Event, Rate, Threshold

log = logging.getLogger("civicsense.alerts")

_DEVICES = "SELECT id, name, site, tags FROM devices WHERE id = ANY(%s)"
_EARLIEST_IN_WINDOW = """
SELECT value FROM readings
WHERE device_id = %s AND quantity = %s AND time >= %s AND time < %s
ORDER BY time LIMIT 1
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


def _observe(conn: psycopg.Connection, rule: Rule, reading: StoredReading) -> Observation:
    condition = rule.spec.condition
    if isinstance(condition, Rate):
        since = reading.time - timedelta(minutes=condition.window_minutes)
        facts = (reading.device_id, reading.quantity, since, reading.time)
        row = conn.execute(_EARLIEST_IN_WINDOW, facts).fetchone()
        change = 0.0 if row is None else reading.value - row[0]
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
    devices = {row[0]: row[1:] for row in
               conn.execute(_DEVICES, (list({r.device_id for r in relevant}),))}  # fmt: skip
    observed: dict[tuple[int, str], tuple[Rule, Subject, list[Observation]]] = {}
    for reading in relevant:
        if reading.device_id not in devices:
            continue  # deleted since its batch committed
        name, site, tags = devices[reading.device_id]
        for rule in rules[reading.tenant_id][reading.quantity]:
            if not rule.spec.scope.matches(reading.model, site, tags, reading.device_id):
                continue
            subject = Subject(reading.tenant_id, name, device_id=reading.device_id, site=site)
            entry = observed.setdefault((rule.id, subject.key), (rule, subject, []))
            entry[2].append(_observe(conn, rule, reading))
    active = load_active(conn, observed)
    writer = AlertWriter(conn)
    for key, (rule, subject, seen) in observed.items():
        writer.apply(rule, subject, active.get(key), seen, hold_for(rule))
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
    """The subscribers, with one connection per ingest thread and one rule cache."""

    def __init__(self, database_url: str) -> None:
        self.connections = ThreadConnections(database_url)
        self.book = RuleBook()

    def _in_transaction(self, work: Callable[[psycopg.Connection], object]) -> None:
        conn = self.connections.get()
        try:
            with conn.transaction():
                work(conn)
        except psycopg.OperationalError:
            conn.close()  # reconnect on the next batch
            raise

    def on_readings(self, event: ReadingsStored) -> None:
        """Evaluate one committed batch's readings."""
        self._in_transaction(lambda conn: evaluate_readings(conn, self.book, event.readings))

    def on_uplinks(self, event: UplinksStored) -> None:
        """Note the gateways and devices heard in one committed batch."""
        self._in_transaction(lambda conn: note_heard(conn, event.uplinks))


def subscribe(bus: EventBus, settings: Settings) -> Callable[[], None]:
    """Attach the rule engine to ingest's events; returns the detach."""
    engine = RuleEngine(settings.database_url)
    detach = [bus.subscribe(UplinksStored, engine.on_uplinks),
              bus.subscribe(ReadingsStored, engine.on_readings)]  # fmt: skip

    def unsubscribe() -> None:
        for undo in detach:
            undo()

    return unsubscribe
