"""Tariff zones and bays: their SQL and the rules of editing them.

Every function works through the caller's connection; under row-level security it
sees the caller's tenant only. Writes are audited and announce a change on the
parking channel, so the control map updates live.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors, sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from core import audit
from core.audit import Actor

from . import changes
from .models import BayCreate, BayUpdate, ZoneCreate, ZoneUpdate


class NotFound(LookupError):
    """No such zone, bay or sensor in the tenant."""


class Conflict(ValueError):
    """The code or the sensor is already taken."""


_ZONE = """
SELECT z.id, z.code, z.name, z.category, z.area, z.hours, z.tariff, z.grace_minutes, z.active,
       z.created_at, z.updated_at,
       (SELECT count(*) FROM parking_bays b WHERE b.zone_id = z.id) AS bays
FROM parking_zones z
"""

_BAY = """
SELECT b.id, b.code, z.code AS zone, b.kind, b.lat, b.lon, d.dev_eui AS sensor,
       b.created_at, b.updated_at
FROM parking_bays b
JOIN parking_zones z ON z.id = b.zone_id
LEFT JOIN devices d ON d.id = b.device_id
"""


def _zone_columns(fields: dict[str, Any]) -> dict[str, Any]:
    json_columns = ("area", "hours", "tariff")
    return {k: Jsonb(v) if k in json_columns and v is not None else v for k, v in fields.items()}


def zones(conn: psycopg.Connection, *, active: bool | None = None) -> list[dict[str, Any]]:
    """The tenant's zones by code."""
    query = _ZONE + " WHERE (%s::boolean IS NULL OR z.active = %s) ORDER BY z.code"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (active, active)).fetchall()


def zone(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    """One zone by code, or NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_ZONE + " WHERE z.code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"no zone {code!r}")
    return row


def _zone_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT id FROM parking_zones WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"no zone {code!r}")
    return int(row[0])


def create_zone(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, body: ZoneCreate
) -> dict[str, Any]:
    """Create a zone; Conflict when its code exists."""
    values = _zone_columns({"tenant_id": tenant_id, **body.model_dump(mode="json")})
    query = sql.SQL("INSERT INTO parking_zones ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    try:
        with conn.transaction():
            conn.execute(query, tuple(values.values()))
    except errors.UniqueViolation:
        raise Conflict(f"zone {body.code!r} exists") from None
    audit.record(conn, actor, "parking.zone.create", target=body.code)
    created = zone(conn, body.code)
    changes.announce(conn, tenant_id, [created["id"]])
    return created


def update_zone(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, code: str, body: ZoneUpdate
) -> dict[str, Any]:
    """Change the given fields of a zone."""
    fields = body.model_dump(mode="json", exclude_unset=True)
    zone_id = _zone_id(conn, code)
    if fields:
        values = _zone_columns(fields)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in values
        )
        conn.execute(
            sql.SQL("UPDATE parking_zones SET {}, updated_at = now() WHERE id = %s").format(
                assignments
            ),
            (*values.values(), zone_id),
        )
        audit.record(conn, actor, "parking.zone.update", target=code,
                     details={"fields": sorted(fields)})  # fmt: skip
        changes.announce(conn, tenant_id, [zone_id])
    return zone(conn, code)


def bays(
    conn: psycopg.Connection, *, zone: str | None = None, limit: int = 1000, offset: int = 0
) -> list[dict[str, Any]]:
    """The tenant's bays, by zone and code."""
    query = (
        _BAY + " WHERE (%s::text IS NULL OR z.code = %s) ORDER BY z.code, b.code LIMIT %s OFFSET %s"
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (zone, zone, limit, offset)).fetchall()


def bay(conn: psycopg.Connection, code: str) -> dict[str, Any]:
    """One bay by code, or NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_BAY + " WHERE b.code = %s", (code,)).fetchone()
    if row is None:
        raise NotFound(f"no bay {code!r}")
    return row


def _sensor_id(conn: psycopg.Connection, dev_eui: str | None) -> int | None:
    if dev_eui is None:
        return None
    row = conn.execute(
        "SELECT id FROM devices WHERE dev_eui = %s AND status <> 'decommissioned'", (dev_eui,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no device {dev_eui} registered in this town")
    return int(row[0])


def _bay_columns(conn: psycopg.Connection, fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    if "zone" in values:
        values["zone_id"] = _zone_id(conn, values.pop("zone"))
    if "sensor" in values:
        values["device_id"] = _sensor_id(conn, values.pop("sensor"))
    return values


def _write_bay(conn: psycopg.Connection, query: sql.Composed, params: tuple[Any, ...]) -> None:
    try:
        with conn.transaction():
            conn.execute(query, params)
    except errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name or ""
        what = "sensor is already on another bay" if "device" in constraint else "bay code exists"
        raise Conflict(what) from None


def create_bay(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, body: BayCreate
) -> dict[str, Any]:
    """Create a bay in an existing zone, with its sensor if given."""
    values = {"tenant_id": tenant_id, **_bay_columns(conn, body.model_dump())}
    query = sql.SQL("INSERT INTO parking_bays ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    _write_bay(conn, query, tuple(values.values()))
    audit.record(conn, actor, "parking.bay.create", target=body.code,
                 details={"zone": body.zone, "sensor": body.sensor})  # fmt: skip
    changes.announce(conn, tenant_id, [values["zone_id"]])
    return bay(conn, body.code)


def update_bay(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, code: str, body: BayUpdate
) -> dict[str, Any]:
    """Change the given fields of a bay (a new sensor starts a new occupancy history)."""
    current = bay(conn, code)
    fields = body.model_dump(exclude_unset=True)
    values = _bay_columns(conn, fields)
    if values:
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder()) for k in values
        )
        query = sql.SQL("UPDATE parking_bays SET {}, updated_at = now() WHERE id = %s").format(
            assignments
        )
        _write_bay(conn, query, (*values.values(), current["id"]))
        audit.record(conn, actor, "parking.bay.update", target=code, details=fields)
        moved_to = [values["zone_id"]] if "zone_id" in values else []
        changes.announce(conn, tenant_id, [_zone_id(conn, current["zone"]), *moved_to])
    return bay(conn, code)


def delete_bay(conn: psycopg.Connection, actor: Actor, tenant_id: int, code: str) -> None:
    """Remove a bay that no session names (those keep their history)."""
    current = bay(conn, code)
    try:
        with conn.transaction():
            conn.execute("DELETE FROM parking_bays WHERE id = %s", (current["id"],))
    except errors.ForeignKeyViolation:
        raise Conflict("payment sessions name this bay; move its sensor instead") from None
    audit.record(conn, actor, "parking.bay.delete", target=code)
    changes.announce(conn, tenant_id, [_zone_id(conn, current["zone"])])
