"""The batch writer: COPY into staging tables, then insert what is new, in one transaction.

Idempotency: uplinks are unique on (dedup_id, time) and device events on
(event_key, kind, time); `ON CONFLICT DO NOTHING ... RETURNING` tells which are new,
and only their readings are copied in. Rejects are unique on their fingerprint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from devices import activity, downlinks

from .batch import Batch
from .events import StoredReading, StoredUplink

log = logging.getLogger("civicsense.ingest.store")

Columns = tuple[tuple[str, str], ...]

# (column, type) in COPY order: binary COPY needs the types, and is ~5x cheaper per row
UPLINK_TYPES: Columns = (
    ("time", "timestamptz"), ("tenant_id", "int8"), ("device_id", "int8"), ("dev_eui", "text"),
    ("dedup_id", "uuid"), ("f_cnt", "int8"), ("f_port", "int4"), ("payload", "bytea"),
    ("confirmed", "bool"), ("dr", "int4"), ("adr", "bool"), ("frequency", "int8"),
    ("spreading_factor", "int4"), ("bandwidth", "int4"), ("gateway_id", "text"),
    ("rssi", "int4"), ("snr", "float4"), ("gateway_count", "int4"), ("rx_info", "jsonb"),
    ("received_at", "timestamptz"),
)  # fmt: skip
EVENT_TYPES: Columns = (
    ("time", "timestamptz"), ("tenant_id", "int8"), ("device_id", "int8"), ("dev_eui", "text"),
    ("kind", "text"), ("event_key", "text"), ("body", "jsonb"),
)  # fmt: skip
READING_TYPES: Columns = (
    ("time", "timestamptz"), ("tenant_id", "int8"), ("device_id", "int8"),
    ("quantity", "text"), ("value", "float8"),
)  # fmt: skip
REJECT_TYPES: Columns = (
    ("received_at", "timestamptz"), ("tenant_id", "int8"), ("source", "text"), ("topic", "text"),
    ("event", "text"), ("dev_eui", "text"), ("reason", "text"), ("detail", "text"),
    ("fingerprint", "bytea"), ("raw", "bytea"),
)  # fmt: skip


def _names(columns: Columns) -> str:
    return ", ".join(name for name, _ in columns)


UPLINK_COLUMNS = _names(UPLINK_TYPES)
EVENT_COLUMNS = _names(EVENT_TYPES)
READING_COLUMNS = _names(READING_TYPES)
REJECT_COLUMNS = _names(REJECT_TYPES)


def _staged(columns: Columns) -> Columns:
    """Staging tables hold JSON as text (rows carry orjson's text); INSERT casts it."""
    return tuple((name, "text" if kind == "jsonb" else kind) for name, kind in columns)


def _stage_select(columns: Columns, cast: str) -> str:
    return ", ".join(
        f"{name}::{cast} AS {name}" if kind == "jsonb" else name for name, kind in columns
    )


_STAGES = (
    ("stage_uplinks", UPLINK_TYPES, "uplinks"),
    ("stage_events", EVENT_TYPES, "device_events"),
    ("stage_rejects", REJECT_TYPES, "ingest_rejects"),
)
_STAGING = tuple(
    f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS"
    f" AS SELECT {_stage_select(columns, 'text')} FROM {table} WITH NO DATA"
    for stage, columns, table in _STAGES
)
_INSERT_UPLINKS = (
    f"INSERT INTO uplinks ({UPLINK_COLUMNS})"
    f" SELECT {_stage_select(UPLINK_TYPES, 'jsonb')} FROM stage_uplinks"
    " ON CONFLICT DO NOTHING RETURNING dedup_id::text"
)
_INSERT_EVENTS = (
    f"INSERT INTO device_events ({EVENT_COLUMNS})"
    f" SELECT {_stage_select(EVENT_TYPES, 'jsonb')} FROM stage_events"
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


def _copy(cur: psycopg.Cursor, table: str, columns: Columns, rows: list[tuple]) -> None:
    if not rows:
        return
    with cur.copy(f"COPY {table} ({_names(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


def write(conn: psycopg.Connection, batch: Batch) -> Written:
    """Write `batch` in one transaction and return what was new."""
    with conn.transaction(), conn.cursor() as cur:
        new_keys: set[str] = set()
        if batch.uplinks:
            _copy(cur, "stage_uplinks", _staged(UPLINK_TYPES), batch.uplinks)
            new_keys.update(row[0] for row in cur.execute(_INSERT_UPLINKS).fetchall())
        new_events = 0
        if batch.events:
            _copy(cur, "stage_events", _staged(EVENT_TYPES), batch.events)
            event_keys = [row[0] for row in cur.execute(_INSERT_EVENTS).fetchall()]
            new_events = len(event_keys)
            new_keys.update(event_keys)
        readings = tuple(
            reading for key, rows in batch.readings.items() if key in new_keys for reading in rows
        )
        _copy(
            cur,
            "readings",
            READING_TYPES,
            [(r.time, r.tenant_id, r.device_id, r.quantity, r.value) for r in readings],
        )
        rejects = 0
        if batch.rejects:
            _copy(cur, "stage_rejects", REJECT_TYPES, batch.rejects)
            rejects = cur.execute(_INSERT_REJECTS).rowcount
        uplinks = tuple(fact for key, fact in batch.uplink_facts.items() if key in new_keys)
        activity.mark_seen(cur, ((u.device_id, u.time) for u in uplinks))
        downlinks.apply_feedback(cur, batch.downlink_feedback)
    conflicts = len(batch.uplinks) + len(batch.events) - len(uplinks) - new_events
    duplicates = batch.duplicates + conflicts
    return Written(uplinks, new_events, readings, rejects, duplicates)
