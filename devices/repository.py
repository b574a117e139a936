"""SQL of the device registry; the only code here that touches the `devices` table."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

_COLUMNS = sql.SQL(
    "id, tenant_id, dev_eui, join_eui, model, name, site, bay, lat, lon, status,"
    " app_key_encrypted IS NOT NULL AS has_app_key"
)


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
        row = cur.execute(query, (tenant_id, *values.values())).fetchone()
    assert row is not None
    return row


def update(conn: psycopg.Connection, device_id: int, changes: dict[str, Any]) -> None:
    """Update the given columns of one device."""
    assignments = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder()) for column in changes
    )
    conn.execute(
        sql.SQL("UPDATE devices SET {}, updated_at = now() WHERE id = %s").format(assignments),
        (*changes.values(), device_id),
    )
