"""The batch writer: COPY into staging tables, then insert what is new, in one transaction.

Idempotency: uplinks are unique on (dedup_id, time) and device events on
(event_key, kind, time); `ON CONFLICT DO NOTHING ... RETURNING` tells which are new,
and only their readings are copied in. Rejects are unique on their fingerprint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from .batch import Batch
from .events import StoredReading, StoredUplink

log = logging.getLogger("civicsense.ingest.store")

UPLINK_COLUMNS = (
    "time, tenant_id, device_id, dev_eui, dedup_id, f_cnt, f_port, payload, confirmed, dr, adr,"
    " frequency, spreading_factor, bandwidth, gateway_id, rssi, snr, gateway_count, rx_info,"
    " received_at"
)
EVENT_COLUMNS = "time, tenant_id, device_id, dev_eui, kind, event_key, body"
READING_COLUMNS = "time, tenant_id, device_id, quantity, value"
REJECT_COLUMNS = (
    "received_at, tenant_id, source, topic, event, dev_eui, reason, detail, fingerprint, raw"
)

_STAGING = tuple(
    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"
    f" AS SELECT {columns} FROM {table} WITH NO DATA"
    for stage, columns, table in (
        ("stage_uplinks", UPLINK_COLUMNS, "uplinks"),
        ("stage_events", EVENT_COLUMNS, "device_events"),
        ("stage_rejects", REJECT_COLUMNS, "ingest_rejects"),
    )
)
_INSERT_UPLINKS = (
    f"INSERT INTO uplinks ({UPLINK_COLUMNS}) SELECT {UPLINK_COLUMNS} FROM stage_uplinks"
    " ON CONFLICT DO NOTHING RETURNING dedup_id::text"
)
_INSERT_EVENTS = (
    f"INSERT INTO device_events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM stage_events"
    " ON CONFLICT DO NOTHING RETURNING kind || ':' || event_key"
)
_INSERT_REJECTS = (
    f"INSERT INTO ingest_rejects ({REJECT_COLUMNS}) SELECT {REJECT_COLUMNS} FROM stage_rejects"
    " ON CONFLICT (fingerprint) DO NOTHING"
)


@dataclass(frozen=True, slots=True)
class Written:
    """What one committed batch added."""

    uplinks: tuple[StoredUplink, ...]
    events: int
    readings: tuple[StoredReading, ...]
    rejects: int
    duplicates: int


def prepare(conn: psycopg.Connection) -> None:
    """Create this connection's staging tables (temporary, emptied at each commit)."""
    with conn.transaction():
        for statement in _STAGING:
            conn.execute(statement)


def _copy(cur: psycopg.Cursor, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def write(conn: psycopg.Connection, batch: Batch) -> Written:
    """Write `batch` in one transaction and return what was new."""
    with conn.transaction(), conn.cursor() as cur:
        new_keys: set[str] = set()
        if batch.uplinks:
            _copy(cur, "stage_uplinks", UPLINK_COLUMNS, batch.uplinks)
            new_keys.update(row[0] for row in cur.execute(_INSERT_UPLINKS).fetchall())
        new_events = 0
        if batch.events:
            _copy(cur, "stage_events", EVENT_COLUMNS, batch.events)
            event_keys = [row[0] for row in cur.execute(_INSERT_EVENTS).fetchall()]
            new_events = len(event_keys)
            new_keys.update(event_keys)
        readings = tuple(
            reading for key, rows in batch.readings.items() if key in new_keys for reading in rows
        )
        _copy(
            cur,
            "readings",
            READING_COLUMNS,
            [(r.time, r.tenant_id, r.device_id, r.quantity, r.value) for r in readings],
        )
        rejects = 0
        if batch.rejects:
            _copy(cur, "stage_rejects", REJECT_COLUMNS, batch.rejects)
            rejects = cur.execute(_INSERT_REJECTS).rowcount
    uplinks = tuple(fact for key, fact in batch.uplink_facts.items() if key in new_keys)
    conflicts = len(batch.uplinks) + len(batch.events) - len(uplinks) - new_events
    duplicates = batch.duplicates + conflicts
    return Written(uplinks, new_events, readings, rejects, duplicates)
