"""The control map's data: every bay's status now, as GeoJSON, from three queries.

Bays with their latest stay and their sensor's state, the zones' rules, and the
sessions around now are read in one transaction; `status.zone_status` does the rest
per zone. A bay's sensor is trusted while its device is `active`: a silent,
decommissioned, never-heard or missing sensor makes the bay `unknown`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core import hours

from . import tariffs
from .occupancy import Interval
from .status import BayInput, Session, Status, ZoneRules, zone_status

SESSION_LOOKBACK = timedelta(days=2)

_BAYS = """
SELECT b.id, b.code, b.kind, b.lat, b.lon, b.zone_id, d.status = 'active' AS sensor_ok,
       o.arrived_at, o.left_at
FROM parking_bays b
JOIN parking_zones z ON z.id = b.zone_id AND z.active
LEFT JOIN devices d ON d.id = b.device_id
LEFT JOIN LATERAL (
    SELECT arrived_at, left_at FROM bay_occupancy
    WHERE bay_id = b.id AND arrived_at <= %(now)s ORDER BY arrived_at DESC LIMIT 1
) o ON true
"""
_ZONES = "SELECT id, code, hours, tariff, grace_minutes FROM parking_zones WHERE active"
_SESSIONS = """
SELECT s.id, s.zone_id, s.plate, b.code AS bay, s.started_at, s.ends_at, s.stopped_at
FROM parking_sessions s LEFT JOIN parking_bays b ON b.id = s.bay_id
WHERE s.started_at <= %(now)s AND s.started_at > %(now)s - %(lookback)s
  AND (s.stopped_at IS NULL OR s.stopped_at > %(now)s - %(lookback)s)
"""


@dataclass(frozen=True)
class ZoneSummary:
    """What the map shows for a zone besides its bays."""

    code: str
    regulated: bool
    next_change: datetime | None
    unpaid_count: int
    unassigned_sessions: int


@dataclass(frozen=True)
class Snapshot:
    """Every bay's feature and every zone's summary, computed at `at`."""

    at: datetime
    features: dict[str, dict[str, Any]]  # bay code → GeoJSON Feature (without plate)
    plates: dict[str, str]  # bay code → plate of the session that explains its status
    zones: dict[str, ZoneSummary]
    #: bodies already serialised from this snapshot, by request: (body, ETag)
    rendered: dict[tuple[Any, ...], tuple[bytes, str]] = field(
        default_factory=dict, compare=False, repr=False
    )


def rules_of(zone: dict[str, Any]) -> ZoneRules:
    """A zone row's rules as `status` wants them."""
    regulated = hours.RegulatedHours.model_validate(zone["hours"])
    tariff = tariffs.Tariff.model_validate(zone["tariff"])
    return ZoneRules(
        grace_minutes=zone["grace_minutes"],
        max_duration_minutes=tariff.max_minutes,
        is_regulated=partial(hours.is_regulated, regulated),
        regulated_seconds=partial(hours.regulated_seconds, regulated),
        add_regulated=partial(hours.add_regulated, regulated),
    )


def _stay(row: dict[str, Any], now: datetime) -> Interval | None:
    """The bay's current stay: its latest one begun by `now`, if still open then."""
    if row["arrived_at"] is None:
        return None
    if row["left_at"] is not None and row["left_at"] <= now:
        return None
    return Interval(row["arrived_at"], row["left_at"])


def snapshot(conn: psycopg.Connection, now: datetime) -> Snapshot:
    """Every active bay's status at `now` for the connection's tenant."""
    with conn.cursor(row_factory=dict_row) as cur:
        bays = cur.execute(_BAYS, {"now": now}).fetchall()
        zones = {z["id"]: z for z in cur.execute(_ZONES).fetchall()}
        sessions = cur.execute(_SESSIONS, {"now": now, "lookback": SESSION_LOOKBACK}).fetchall()
    bays_by_zone: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for bay in bays:
        bays_by_zone[bay["zone_id"]].append(bay)
    sessions_by_zone: dict[int, list[Session]] = defaultdict(list)
    for s in sessions:
        sessions_by_zone[s["zone_id"]].append(
            Session(s["id"], s["plate"], s["bay"], s["started_at"], s["ends_at"], s["stopped_at"])
        )
    features: dict[str, dict[str, Any]] = {}
    plates: dict[str, str] = {}
    summaries: dict[str, ZoneSummary] = {}
    for zone_id, zone in zones.items():
        rows = bays_by_zone.get(zone_id, [])
        rules = rules_of(zone)
        inputs = [BayInput(r["code"], bool(r["sensor_ok"]), _stay(r, now)) for r in rows]
        result = zone_status(now, rules, inputs, sessions_by_zone.get(zone_id, []))
        for row in rows:
            state = result.bays[row["code"]]
            since = state.since
            if state.status == Status.FREE and row["left_at"] is not None:
                since = row["left_at"]
            features[row["code"]] = {
                "type": "Feature",
                "id": row["code"],
                "geometry": {"type": "Point", "coordinates": [row["lon"], row["lat"]]},
                "properties": {
                    "bay": row["code"], "zone": zone["code"], "kind": row["kind"],
                    "status": str(state.status), "since": since.isoformat() if since else None,
                    "session_id": state.session_id, "matched": state.matched,
                },
            }  # fmt: skip
            if state.plate:
                plates[row["code"]] = state.plate
        regulated = hours.RegulatedHours.model_validate(zone["hours"])
        summaries[zone["code"]] = ZoneSummary(
            code=zone["code"],
            regulated=rules.is_regulated(now),
            next_change=hours.next_change(regulated, now),
            unpaid_count=result.unpaid_count,
            unassigned_sessions=len(result.unassigned_sessions),
        )
    return Snapshot(at=now, features=features, plates=plates, zones=summaries)
