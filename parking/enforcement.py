"""What agents ask and record: plate checks, the unpaid list, enforcement actions."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict, Field, model_validator

from core import audit
from core.audit import Actor

from .feed import Snapshot
from .models import BAY_CODE
from .places import NotFound
from .plates import normalise_plate
from .session_models import Money

RECENT = timedelta(hours=2)
TO_CHECK = ("unpaid", "overstay")

_PLATE_SESSIONS = """
SELECT s.id, z.code AS zone, b.code AS bay, s.source, s.provider, s.started_at, s.ends_at,
       s.stopped_at
FROM parking_sessions s JOIN parking_zones z ON z.id = s.zone_id
LEFT JOIN parking_bays b ON b.id = s.bay_id
WHERE s.plate_key = %(key)s AND (%(zone)s::text IS NULL OR z.code = %(zone)s)
  AND s.started_at <= %(now)s
  AND coalesce(least(s.ends_at, s.stopped_at), 'infinity') > %(now)s - %(recent)s
ORDER BY s.started_at DESC
"""


class PlateSession(BaseModel):
    """A session of the plate covering now or ended within the last two hours."""

    id: int
    zone: str
    bay: str | None
    source: str
    provider: str
    started_at: datetime
    ends_at: datetime | None
    stopped_at: datetime | None
    active: bool


class PlateCheck(BaseModel):
    """Whether a plate is paid now, until when and where."""

    plate: str
    paid: bool
    zone: str | None = Field(description="zone of the covering session")
    until: datetime | None = Field(description="paid end; null while it runs until stopped")
    checked_at: datetime
    sessions: list[PlateSession]


def _active(row: dict[str, Any], now: datetime) -> bool:
    ends = [t for t in (row["ends_at"], row["stopped_at"]) if t is not None]
    return not ends or min(ends) > now


def check_plate(
    conn: psycopg.Connection, actor: Actor, plate: str, zone: str | None, now: datetime
) -> PlateCheck:
    """The plate's sessions now (paid or not), audited: a plate is personal data."""
    normal = normalise_plate(plate)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            _PLATE_SESSIONS, {"key": normal.key, "zone": zone, "now": now, "recent": RECENT}
        ).fetchall()
    found = [PlateSession(**row, active=_active(row, now)) for row in rows]
    covering = [s for s in found if s.active]
    audit.record(conn, actor, "parking.plate_check", target=normal.display,
                 details={"zone": zone, "paid": bool(covering)})  # fmt: skip
    best = max(covering, key=lambda s: s.ends_at or datetime.max.replace(tzinfo=now.tzinfo),
               default=None)  # fmt: skip
    return PlateCheck(
        plate=normal.display, paid=best is not None, zone=best.zone if best else None,
        until=best.ends_at if best else None, checked_at=now, sessions=found,
    )  # fmt: skip


def to_check(snapshot: Snapshot, zone: str | None) -> list[dict[str, Any]]:
    """Unpaid and overstaying bays, the longest-standing first."""
    rows = [
        feature["properties"]
        for feature in snapshot.features.values()
        if feature["properties"]["status"] in TO_CHECK
        and (zone is None or feature["properties"]["zone"] == zone)
    ]
    return sorted(rows, key=lambda p: (p["since"] or "", p["bay"]))


class ActionCreate(BaseModel):
    """What an agent did about a bay or a plate."""

    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    kind: Literal["fps", "warning", "none"] = Field(description="FPS issued, warning, no action")
    bay: str | None = Field(None, pattern=BAY_CODE)
    plate: str | None = Field(None, min_length=1, max_length=20)
    amount: Money | None = Field(None, description="FPS amount, EUR")
    note: str | None = Field(None, max_length=1000)

    @model_validator(mode="after")
    def _coherent(self) -> ActionCreate:
        if self.bay is None and self.plate is None:
            raise ValueError("name the bay, the plate or both")
        if self.kind == "fps" and self.amount is None:
            raise ValueError("an FPS has an amount")
        if self.kind != "fps" and self.amount is not None:
            raise ValueError("only an FPS has an amount")
        return self


class ActionRead(BaseModel):
    """A recorded enforcement action."""

    id: int
    kind: str
    bay: str | None
    zone: str | None
    plate: str | None
    amount: Decimal | None
    note: str | None
    bay_status: str | None
    agent: str
    has_photo: bool = Field(description="a photo is attached: GET /enforcement/actions/{id}/photo")
    created_at: datetime


_ACTIONS = """
SELECT a.id, a.kind, b.code AS bay, z.code AS zone, a.plate, a.amount, a.note, a.bay_status,
       a.agent, p.action_id IS NOT NULL AS has_photo, a.created_at
FROM enforcement_actions a LEFT JOIN enforcement_action_photos p ON p.action_id = a.id
LEFT JOIN parking_bays b ON b.id = a.bay_id LEFT JOIN parking_zones z ON z.id = a.zone_id
"""


def record_action(
    conn: psycopg.Connection, actor: Actor, tenant_id: int, body: ActionCreate,
    snapshot: Snapshot,
) -> dict[str, Any]:  # fmt: skip
    """Record an action with the bay's status on the map at that moment."""
    bay_id = zone_id = None
    status = None
    if body.bay is not None:
        row = conn.execute(
            "SELECT id, zone_id FROM parking_bays WHERE code = %s", (body.bay,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no bay {body.bay!r}")
        bay_id, zone_id = row
        feature = snapshot.features.get(body.bay)
        status = feature["properties"]["status"] if feature else None
    plate = normalise_plate(body.plate) if body.plate else None
    row = conn.execute(
        "INSERT INTO enforcement_actions (tenant_id, bay_id, zone_id, plate, plate_key, kind,"
        " amount, note, bay_status, agent, agent_id) VALUES"
        " (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (tenant_id, bay_id, zone_id, plate.display if plate else None,
         plate.key if plate else None, body.kind, body.amount, body.note, status,
         actor.label, actor.id),
    ).fetchone()  # fmt: skip
    assert row is not None
    details = {"action_id": row[0], "plate": plate.display if plate else None}
    audit.record(conn, actor, f"parking.enforcement.{body.kind}", target=body.bay, details=details)
    return action(conn, int(row[0]))


def action(conn: psycopg.Connection, action_id: int) -> dict[str, Any]:
    """One action, or NotFound."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_ACTIONS + " WHERE a.id = %s", (action_id,)).fetchone()
    if row is None:
        raise NotFound(f"no enforcement action {action_id}")
    return row


def actions(
    conn: psycopg.Connection, *, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Recorded actions, newest first."""
    query = _ACTIONS + " WHERE (%s::timestamptz IS NULL OR a.created_at >= %s)"
    query += " ORDER BY a.created_at DESC, a.id DESC LIMIT %s"
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, (since, since, limit)).fetchall()
