"""SQL of the device registry; the only code here that touches the `devices` table."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

_COLUMNS = sql.SQL(
    "id, tenant_id, dev_eui, join_eui, model, name, site, bay, lat, lon, tags, status,"
    " app_key_encrypted IS NOT NULL AS has_app_key, provisioned_at, provisioning_error,"
    " last_seen_at, expected_interval_s, created_at, updated_at,"
    " (SELECT p.uploaded_at FROM device_photos p WHERE p.device_id = devices.id)"
    " AS photo_uploaded_at"
)


def _adapted(values: dict[str, Any]) -> list[Any]:
    """Column values as parameters: the tags map goes in as JSON."""
    return [Jsonb(v) if isinstance(v, dict) else v for v in values.values()]


def get_live(conn: psycopg.Connection, dev_eui: str) -> dict[str, Any] | None:
    """The non-decommissioned device with `dev_eui`, any tenant."""
    query = sql.SQL(
        "SELECT {} FROM devices WHERE dev_eui = %s AND status <> 'decommissioned'"
    ).format(_COLUMNS)
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (dev_eui,)).fetchone()


def app_key_encrypted(conn: psycopg.Connection, device_id: int) -> bytes | None:
    """The stored (encrypted) AppKey of a device, to compare or forward it; never returned."""
    row = conn.execute(
        "SELECT app_key_encrypted FROM devices WHERE id = %s", (device_id,)
    ).fetchone()
    return bytes(row[0]) if row and row[0] is not None else None


def insert(conn: psycopg.Connection, *, tenant_id: int, values: dict[str, Any]) -> dict[str, Any]:
    """Insert a device row."""
    columns = ["tenant_id", *values]
    query = sql.SQL("INSERT INTO devices ({}) VALUES ({}) RETURNING {}").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)),
        sql.SQL(", ").join(sql.Placeholder() * len(columns)),
        _COLUMNS,
    )
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(query, (tenant_id, *_adapted(values))).fetchone()
    assert row is not None
    return row


def update(conn: psycopg.Connection, device_id: int, changes: dict[str, Any]) -> None:
    """Update the given columns of one device."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in changes
    )
    conn.execute(
        sql.SQL("UPDATE devices SET {}, updated_at = now() WHERE id = %s").format(assignments),
        (*_adapted(changes), device_id),
    )


_LIST = sql.SQL("""
SELECT {} FROM devices
WHERE (%(model)s::text IS NULL OR model = %(model)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(site)s::text IS NULL OR site = %(site)s)
  AND (%(silent_since)s::timestamptz IS NULL
       OR (status = 'silent' AND last_seen_at <= %(silent_since)s))
  AND tags ?& %(tag_keys)s::text[]
  AND tags @> ALL(%(tag_pairs)s::jsonb[])
  AND (%(status)s::text = 'decommissioned' OR status <> 'decommissioned')
ORDER BY site NULLS LAST, name, id
LIMIT %(limit)s OFFSET %(offset)s
""").format(_COLUMNS)


def get_all(
    conn: psycopg.Connection,
    *,
    model: str | None = None,
    status: str | None = None,
    site: str | None = None,
    silent_since: datetime | None = None,
    tags: Sequence[tuple[str, str | None]] = (),
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Devices the connection may see; decommissioned ones only when asked for;
    `silent_since`: silent devices not heard from since that time; `tags`: (key, value or
    None for any value) pairs the device must all have."""
    params = {
        "model": model, "status": status, "site": site, "silent_since": silent_since,
        "tag_keys": [key for key, _ in tags],
        "tag_pairs": [Jsonb({key: value}) for key, value in tags if value is not None],
        "limit": limit, "offset": offset,
    }  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LIST, params).fetchall()


def decommission(conn: psycopg.Connection, device_id: int) -> None:
    """Retire a device: its DevEUI is free again, its history stays."""
    conn.execute(
        "UPDATE devices SET status = 'decommissioned', updated_at = now() WHERE id = %s",
        (device_id,),
    )


_HEALTH = """
SELECT
  (SELECT max(time) FROM uplinks WHERE device_id = %(id)s) AS last_seen,
  (SELECT value FROM readings WHERE device_id = %(id)s AND quantity = 'battery'
   ORDER BY time DESC LIMIT 1) AS battery,
  (SELECT avg(rssi) FROM (SELECT rssi FROM uplinks WHERE device_id = %(id)s
   ORDER BY time DESC LIMIT 10) recent) AS rssi,
  (SELECT avg(snr) FROM (SELECT snr FROM uplinks WHERE device_id = %(id)s
   ORDER BY time DESC LIMIT 10) recent) AS snr,
  (SELECT coalesce(array_agg(DISTINCT gateway_id), '{}') FROM (SELECT gateway_id FROM uplinks
   WHERE device_id = %(id)s AND gateway_id IS NOT NULL ORDER BY time DESC LIMIT 50) recent)
   AS gateways
"""


def health(conn: psycopg.Connection, device_id: int) -> dict[str, Any]:
    """Last uplink, latest battery, mean RSSI/SNR of the last 10 uplinks, gateways heard."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_HEALTH, {"id": device_id}).fetchone()
    assert row is not None
    return row
