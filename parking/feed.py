"""The control map's data: every bay's status now, as GeoJSON, computed zone by zone.

Bays with their latest stay and their sensor's state, the zones' rules, and the sessions
around now are read in one transaction, for every active zone or only the zones a change
touched; `status.zone_status` does the rest per zone. A bay's sensor is trusted while its
device is `active`: a silent, decommissioned, never-heard or missing sensor makes the bay
`unknown`.

Each zone's part says until when it holds (`ZonePart.valid_until`): the first instant at
which one of its statuses can change with the clock alone — a grace period or paid time
ends, a car reaches the maximum stay, regulated hours start or end, a session or a stay
dated in the future begins, a session leaves the look-back window. Until then, and until a
change in the zone is announced (parking.changes), the part is the zone's status now, which
is what lets parking.live recompute only the zones that need it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import psycopg
from psycopg.rows import dict_row

from core import hours

from . import tariffs
from .occupancy import Interval
from .status import BayInput, Session, Status, ZoneRules, clock_instants, first_after, zone_status

SESSION_LOOKBACK = timedelta(days=2)

_ZONES = "SELECT id, code, hours, tariff, grace_minutes FROM parking_zones WHERE active"
_AMONG = " AND id = ANY(%(zones)s)"
_BAYS = """
SELECT b.id, b.code, b.kind, b.lat, b.lon, b.zone_id, d.status = 'active' AS sensor_ok,
       o.arrived_at, o.left_at
FROM parking_bays b
LEFT JOIN devices d ON d.id = b.device_id
LEFT JOIN LATERAL (
    SELECT arrived_at, left_at FROM bay_occupancy
    WHERE bay_id = b.id AND arrived_at <= %(now)s ORDER BY arrived_at DESC LIMIT 1
) o ON true
WHERE b.zone_id = ANY(%(zones)s)
ORDER BY b.code
"""
_SESSIONS = """
SELECT s.id, s.zone_id, s.plate, b.code AS bay, s.started_at, s.ends_at, s.stopped_at
FROM parking_sessions s LEFT JOIN parking_bays b ON b.id = s.bay_id
WHERE s.zone_id = ANY(%(zones)s)
  AND s.started_at <= %(now)s AND s.started_at > %(now)s - %(lookback)s
  AND (s.stopped_at IS NULL OR s.stopped_at > %(now)s - %(lookback)s)
"""
# stays and sessions dated after now (sensor or operator clocks ahead): the queries above
# leave them out until they begin, so each zone's first one is when its part expires
_FUTURE = """
SELECT zone_id, min(at) AS first_at FROM (
    SELECT b.zone_id, o.arrived_at AS at
    FROM bay_occupancy o JOIN parking_bays b ON b.id = o.bay_id
    WHERE o.arrived_at > %(now)s AND b.zone_id = ANY(%(zones)s)
    UNION ALL
    SELECT zone_id, started_at FROM parking_sessions
    WHERE started_at > %(now)s AND zone_id = ANY(%(zones)s)
) future
GROUP BY zone_id
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
class ZonePart:
    """One zone's share of the snapshot, and the instant from which it may be out of date
    without any change announced (None: not within the regulated-hours horizon)."""

    zone_id: int
    summary: ZoneSummary
    features: dict[str, dict[str, Any]]  # bay code → GeoJSON Feature (without plate)
    plates: dict[str, str]  # bay code → plate of the session that explains its status
    valid_until: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """Every bay's feature and every zone's summary at `at`, assembled from zone parts."""

    at: datetime
    parts: dict[int, ZonePart]  # by zone id, in zone-code order
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


def _zone_part(
    now: datetime,
    zone: dict[str, Any],
    rows: list[dict[str, Any]],
    sessions: list[Session],
    future: datetime | None,
) -> ZonePart:
    """One zone's features, plates and summary at `now`, and until when they hold."""
    rules = rules_of(zone)
    inputs = [BayInput(r["code"], bool(r["sensor_ok"]), _stay(r, now)) for r in rows]
    result = zone_status(now, rules, inputs, sessions)
    features: dict[str, dict[str, Any]] = {}
    plates: dict[str, str] = {}
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
    next_change = hours.next_change(hours.RegulatedHours.model_validate(zone["hours"]), now)
    summary = ZoneSummary(
        code=zone["code"],
        regulated=rules.is_regulated(now),
        next_change=next_change,
        unpaid_count=result.unpaid_count,
        unassigned_sessions=len(result.unassigned_sessions),
    )
    leaving = (session.started_at + SESSION_LOOKBACK for session in sessions)
    instants = clock_instants(now, rules, inputs, sessions, result)
    valid_until = first_after(now, [*instants, next_change, future, *leaving])
    return ZonePart(zone["id"], summary, features, plates, valid_until)


def zone_parts(
    conn: psycopg.Connection, now: datetime, zone_ids: Collection[int] | None = None
) -> dict[int, ZonePart]:
    """The parts at `now` of the tenant's active zones, or of those among `zone_ids`
    (a zone asked for but absent was deleted or deactivated)."""
    with conn.cursor(row_factory=dict_row) as cur:
        if zone_ids is None:
            zones = cur.execute(_ZONES).fetchall()
        else:
            zones = cur.execute(_ZONES + _AMONG, {"zones": list(zone_ids)}).fetchall()
        if not zones:
            return {}
        params = {"now": now, "zones": [z["id"] for z in zones], "lookback": SESSION_LOOKBACK}
        bays = cur.execute(_BAYS, params).fetchall()
        sessions = cur.execute(_SESSIONS, params).fetchall()
        future = {row["zone_id"]: row["first_at"] for row in cur.execute(_FUTURE, params)}
    bays_by_zone: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for bay in bays:
        bays_by_zone[bay["zone_id"]].append(bay)
    sessions_by_zone: dict[int, list[Session]] = defaultdict(list)
    for s in sessions:
        sessions_by_zone[s["zone_id"]].append(
            Session(s["id"], s["plate"], s["bay"], s["started_at"], s["ends_at"], s["stopped_at"])
        )
    return {
        zone["id"]: _zone_part(now, zone, bays_by_zone[zone["id"]],
                               sessions_by_zone[zone["id"]], future.get(zone["id"]))
        for zone in zones
    }  # fmt: skip


def assemble(at: datetime, parts: Mapping[int, ZonePart]) -> Snapshot:
    """The snapshot made of these zone parts, all of them valid at `at`."""
    ordered = dict(sorted(parts.items(), key=lambda item: item[1].summary.code))
    features: dict[str, dict[str, Any]] = {}
    plates: dict[str, str] = {}
    for part in ordered.values():
        features.update(part.features)
        plates.update(part.plates)
    zones = {part.summary.code: part.summary for part in ordered.values()}
    return Snapshot(at=at, parts=ordered, features=features, plates=plates, zones=zones)


def snapshot(conn: psycopg.Connection, now: datetime) -> Snapshot:
    """Every active bay's status at `now` for the connection's tenant, every zone computed."""
    return assemble(now, zone_parts(conn, now))
