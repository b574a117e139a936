"""The dashboards' reads: the only code of this package that touches the database.

Every function takes a connection confined to one town (`access.tenant_data`): no query names
a tenant, row-level security keeps the others out. Time series come from the hourly rollups
(`core.rollups`); raw readings are read over bounded windows only (the last hour for "bad air
now", one room over at most 31 days for ICONE).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, dict_row

from devices import device_models


@dataclass(frozen=True)
class Town:
    """The viewer's town as its dashboards name it."""

    name: str
    timezone: str


@dataclass(frozen=True)
class Room:
    """A CO2-measuring device: a room of a building (its `site`)."""

    id: int
    name: str
    site: str


@dataclass(frozen=True)
class DeviceHealth:
    """One device of the fleet with what its health shows."""

    id: int
    name: str
    model: str
    site: str | None
    status: str
    last_seen_at: datetime | None
    battery: float | None


def town(conn: psycopg.Connection) -> Town:
    """The town set on `conn`."""
    with conn.cursor(row_factory=class_row(Town)) as cur:
        found = cur.execute("SELECT name, timezone FROM tenants").fetchone()
    if found is None:
        raise LookupError("no tenant is set on this connection")
    return found


_DEVICE_COUNTS = """
SELECT count(*) FILTER (WHERE status = 'active') AS active,
       count(*) FILTER (WHERE status = 'silent') AS silent,
       count(*) FILTER (WHERE status IN ('registered', 'provisioned')) AS pending
FROM devices
"""


def device_counts(conn: psycopg.Connection) -> dict[str, int]:
    """How many devices are active, silent, and pending (registered, never heard)."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(_DEVICE_COUNTS).fetchone()
    assert row is not None
    return {key: int(value) for key, value in row.items()}


_OPEN_INCIDENTS = """
SELECT id, title, priority, incident_class, state, site, opened_at,
       gti_due_at, gti_reached_at, gtr_due_at, gtr_reached_at
FROM incidents
WHERE state NOT IN ('resolved', 'closed')
ORDER BY priority, opened_at, id
"""


def open_incidents(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """The incidents neither resolved nor closed, most urgent first, with their due instants."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_OPEN_INCIDENTS).fetchall()


_STUFFY_ROOMS = """
SELECT d.site, d.name AS room, latest.value AS co2, latest.time
FROM (SELECT DISTINCT ON (device_id) device_id, value, time
      FROM readings
      WHERE quantity = 'co2' AND time >= %(since)s
      ORDER BY device_id, time DESC) latest
JOIN devices d ON d.id = latest.device_id
WHERE latest.value > %(above)s
ORDER BY d.site NULLS LAST, d.name
"""


def stuffy_rooms(
    conn: psycopg.Connection, *, since: datetime, above: float
) -> list[dict[str, Any]]:
    """Rooms whose latest CO2 value since `since` is above `above` ppm."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_STUFFY_ROOMS, {"since": since, "above": above}).fetchall()


_OPEN_LEAKS = """
SELECT d.site, d.name AS device, a.opened_at, a.incident_id
FROM alerts a
JOIN alert_rules r ON r.id = a.rule_id
LEFT JOIN devices d ON d.id = a.device_id
WHERE a.state = 'open' AND r.category = 'leak'
ORDER BY a.opened_at DESC
"""


def open_leaks(conn: psycopg.Connection) -> list[dict[str, Any]]:
    """Open alerts of the leak category, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_OPEN_LEAKS).fetchall()


_ROOMS = """
SELECT id, name, site FROM devices
WHERE model = ANY(%(models)s) AND site IS NOT NULL AND status <> 'decommissioned'
  AND (%(site)s::text IS NULL OR site = %(site)s)
ORDER BY site, name, id
"""


def rooms(conn: psycopg.Connection, *, site: str | None = None) -> list[Room]:
    """The devices measuring CO2 and placed on a site (of that site only, if given)."""
    models = [model.model_id for model in device_models.get_all(quantity="co2")]
    with conn.cursor(row_factory=class_row(Room)) as cur:
        return cur.execute(_ROOMS, {"models": models, "site": site}).fetchall()


_SAMPLES = """
SELECT time, value FROM readings
WHERE device_id = %(device_id)s AND quantity = %(quantity)s
  AND time >= %(start)s AND time < %(end)s
ORDER BY time
"""


def samples(
    conn: psycopg.Connection, *, device_id: int, quantity: str, start: datetime, end: datetime
) -> list[tuple[datetime, float]]:
    """The raw readings of one device and quantity in [start, end), oldest first."""
    params = {"device_id": device_id, "quantity": quantity, "start": start, "end": end}
    return [(row[0], float(row[1])) for row in conn.execute(_SAMPLES, params)]


_FLEET = """
SELECT d.id, d.name, d.model, d.site, d.status, d.last_seen_at, b.last_value AS battery
FROM devices d
LEFT JOIN LATERAL (
    SELECT last_value FROM tenant_readings_hourly h
    WHERE h.device_id = d.id AND h.quantity = 'battery' AND h.hour >= %(since)s
    ORDER BY h.hour DESC LIMIT 1) b ON true
WHERE d.status <> 'decommissioned'
ORDER BY d.site NULLS LAST, d.name, d.id
"""


def fleet(conn: psycopg.Connection, *, battery_since: datetime) -> list[DeviceHealth]:
    """Every device in service, with its latest hourly battery level since `battery_since`."""
    with conn.cursor(row_factory=class_row(DeviceHealth)) as cur:
        return cur.execute(_FLEET, {"since": battery_since}).fetchall()


_PARKING_ZONES = "SELECT code, name FROM parking_zones WHERE active ORDER BY code"


def parking_zones(conn: psycopg.Connection) -> list[tuple[str, str]]:
    """The town's active parking zones as (code, name), by code."""
    return [(str(code), str(name)) for code, name in conn.execute(_PARKING_ZONES)]


_INCIDENT_CATEGORIES = "SELECT DISTINCT category FROM incidents ORDER BY category"


def incident_categories(conn: psycopg.Connection) -> list[str]:
    """The categories the town's incidents use, alphabetically."""
    return [str(row[0]) for row in conn.execute(_INCIDENT_CATEGORIES)]


def tenant_id(conn: psycopg.Connection) -> int:
    """The id of the town set on `conn`, for the services that take it as an argument."""
    found = conn.execute("SELECT id FROM tenants").fetchone()
    if found is None:
        raise LookupError("no tenant is set on this connection")
    return int(found[0])


@dataclass(frozen=True)
class LeakSensor:
    """A device reporting the `leak` quantity, where it is and what it last said."""

    id: int
    name: str
    site: str | None
    status: str
    lat: float | None
    lon: float | None
    last_seen_at: datetime | None
    leak: float | None
    leak_at: datetime | None
    battery: float | None


_LEAK_SENSORS = """
SELECT d.id, d.name, d.site, d.status, d.lat, d.lon, d.last_seen_at,
       l.last_value AS leak, l.hour AS leak_at, b.last_value AS battery
FROM devices d
LEFT JOIN LATERAL (
    SELECT last_value, hour FROM tenant_readings_hourly h
    WHERE h.device_id = d.id AND h.quantity = 'leak' AND h.hour >= %(since)s
    ORDER BY h.hour DESC LIMIT 1) l ON true
LEFT JOIN LATERAL (
    SELECT last_value FROM tenant_readings_hourly h
    WHERE h.device_id = d.id AND h.quantity = 'battery' AND h.hour >= %(since)s
    ORDER BY h.hour DESC LIMIT 1) b ON true
WHERE d.model = ANY(%(models)s) AND d.status <> 'decommissioned'
ORDER BY d.site NULLS LAST, d.name, d.id
"""


def leak_sensors(conn: psycopg.Connection, *, since: datetime) -> list[LeakSensor]:
    """The devices in service measuring `leak`, with their latest hourly leak value and
    battery level since `since` (from the rollups)."""
    models = [model.model_id for model in device_models.get_all(quantity="leak")]
    with conn.cursor(row_factory=class_row(LeakSensor)) as cur:
        return cur.execute(_LEAK_SENSORS, {"models": models, "since": since}).fetchall()


_RADIO_BY_DEVICE = """
SELECT d.name AS device, count(*) AS uplinks,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY u.rssi) AS rssi_median_dbm,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY u.snr) AS snr_median_db
FROM uplinks u
JOIN devices d ON d.id = u.device_id
WHERE u.time >= %(since)s AND (u.rssi IS NOT NULL OR u.snr IS NOT NULL)
GROUP BY d.id, d.name
ORDER BY d.name, d.id
"""

_RADIO_BY_GATEWAY = """
SELECT gateway_id AS gateway, count(*) AS uplinks, count(DISTINCT device_id) AS devices,
       avg(rssi)::float8 AS rssi_mean_dbm, avg(snr)::float8 AS snr_mean_db
FROM uplinks
WHERE time >= %(since)s AND gateway_id IS NOT NULL
GROUP BY gateway_id
ORDER BY gateway_id
"""


def radio_by_device(conn: psycopg.Connection, *, since: datetime) -> list[dict[str, Any]]:
    """Per device heard since `since`: its uplinks and their median RSSI (dBm) and SNR (dB),
    as the best gateway received them. Bounded by `since` (the uplinks' time index)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_RADIO_BY_DEVICE, {"since": since}).fetchall()


def radio_by_gateway(conn: psycopg.Connection, *, since: datetime) -> list[dict[str, Any]]:
    """Per gateway that was an uplink's best one since `since`: the uplinks and distinct
    devices it heard, their mean RSSI (dBm) and SNR (dB)."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_RADIO_BY_GATEWAY, {"since": since}).fetchall()
