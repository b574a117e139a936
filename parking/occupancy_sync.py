"""Bay occupancy kept in step with the sensors' `occupied` readings.

Subscribed to ingest's committed readings: for each bay whose sensor spoke, the
stays from the start of the stay covering the earliest new reading onward are
rebuilt from the stored readings (parking.occupancy). Rebuilding rather than
appending is what makes repeated, late and out-of-order uplinks harmless. Bay rows
are locked in id order, so two ingest workers cannot deadlock on them. A job runs
the same rebuild for bays whose sensor has readings newer than their last stay, in
case a subscriber call was lost (process stopped between commit and handler).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

import psycopg

from core.db import ThreadConnections
from core.events import EventBus
from core.settings import Settings
from ingest.events import ReadingsStored

from . import changes
from .occupancy import intervals

log = logging.getLogger("civicsense.parking")

QUANTITY = "occupied"
CATCH_UP_WINDOW = timedelta(days=2)

_LOCK_BAYS = """
SELECT id, tenant_id, zone_id, device_id FROM parking_bays
WHERE device_id = ANY(%s) ORDER BY id FOR UPDATE
"""
_ANCHOR = "SELECT max(arrived_at) FROM bay_occupancy WHERE bay_id = %s AND arrived_at <= %s"
_READINGS = """
SELECT time, value FROM readings
WHERE device_id = %s AND quantity = 'occupied' AND time >= %s
ORDER BY time
"""
# A bay is stale when its sensor said something new since the bay's last stay change: a
# reading after it that differs from the bay's state (occupied while free, free while
# occupied). Readings that repeat the state (heartbeats, a quiet street's "free") change no
# stay: counting them made the job lock every idle bay each minute.
_STALE = """
SELECT b.device_id, min(r.time)
FROM parking_bays b
LEFT JOIN LATERAL (
    SELECT greatest(o.arrived_at, o.left_at) AS changed_at, o.left_at IS NULL AS occupied
    FROM bay_occupancy o WHERE o.bay_id = b.id ORDER BY o.arrived_at DESC LIMIT 1
) last ON true
JOIN readings r ON r.device_id = b.device_id AND r.quantity = 'occupied'
     AND r.time > now() - %(window)s
WHERE r.time > coalesce(last.changed_at, '-infinity')
  AND (r.value > 0) <> coalesce(last.occupied, false)
GROUP BY b.device_id
"""


def rebuild(
    conn: psycopg.Connection, since_by_device: dict[int, datetime], *, announce_all: bool = True
) -> set[int]:
    """Rebuild the stays of the bays of these sensors from `since`; the tenants announced.

    Every rebuilt bay's zone is announced by default: a reading may also have woken a silent
    sensor, which the feed shows. With `announce_all` False (the catch-up job) only the zones
    whose stays changed are: the job rebuilds every bay whose sensor has only ever said
    `free` each time it runs (no stay is newer than its readings), and announcing those
    would have the live feed recompute most of the town every minute for nothing.
    """
    zones_by_tenant: dict[int, set[int]] = defaultdict(set)
    rows = conn.execute(_LOCK_BAYS, (list(since_by_device),)).fetchall()
    for bay_id, tenant_id, zone_id, device_id in rows:
        since = since_by_device[device_id]
        anchor = conn.execute(_ANCHOR, (bay_id, since)).fetchone()
        start = anchor[0] if anchor and anchor[0] is not None else since
        readings = conn.execute(_READINGS, (device_id, start)).fetchall()
        removed = conn.execute(
            "DELETE FROM bay_occupancy WHERE bay_id = %s AND arrived_at >= %s"
            " RETURNING arrived_at, left_at",
            (bay_id, start),
        ).fetchall()
        stays = [(s.arrived_at, s.left_at) for s in intervals(readings)]
        if stays:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at, left_at)"
                    " VALUES (%s, %s, %s, %s)",
                    [(bay_id, tenant_id, *stay) for stay in stays],
                )
        if announce_all or sorted(removed) != stays:
            zones_by_tenant[tenant_id].add(zone_id)
    for tenant_id, zone_ids in zones_by_tenant.items():
        changes.announce(conn, tenant_id, zone_ids)
    return set(zones_by_tenant)


def earliest_by_device(readings: Iterable[tuple[datetime, int, str]]) -> dict[int, datetime]:
    """(time, device_id, quantity) → the earliest occupancy reading time per device."""
    earliest: dict[int, datetime] = {}
    for time, device_id, quantity in readings:
        if quantity == QUANTITY and (device_id not in earliest or time < earliest[device_id]):
            earliest[device_id] = time
    return earliest


def stale_sensors(conn: psycopg.Connection) -> dict[int, datetime]:
    """Sensor → its earliest reading that its bay's stays do not account for yet."""
    return dict(conn.execute(_STALE, {"window": CATCH_UP_WINDOW}).fetchall())


def catch_up(conn: psycopg.Connection) -> set[int]:
    """Rebuild the bays whose sensor has readings newer than their stays (lost updates);
    the tenants whose stays changed."""
    stale = stale_sensors(conn)
    return rebuild(conn, stale, announce_all=False) if stale else set()


class OccupancySubscriber:
    """The ingest subscriber: one connection per publishing thread (workers run apart)."""

    def __init__(self, database_url: str) -> None:
        self.connections = ThreadConnections(database_url)

    def on_readings(self, event: ReadingsStored) -> None:
        """Handle one committed batch's readings."""
        since = earliest_by_device((r.time, r.device_id, r.quantity) for r in event.readings)
        if not since:
            return
        conn = self.connections.get()
        try:
            with conn.transaction():
                rebuild(conn, since)
        except psycopg.OperationalError:
            conn.close()  # reconnect next time; the catch-up job repairs the bays
            raise


def subscribe(bus: EventBus, settings: Settings) -> Callable[[], None]:
    """Attach the occupancy subscriber to ingest's ReadingsStored events."""
    return bus.subscribe(ReadingsStored, OccupancySubscriber(settings.database_url).on_readings)


def run_job(settings: Settings) -> None:
    """Scheduled catch-up (privileged path)."""
    with psycopg.connect(settings.database_url) as conn:
        repaired = catch_up(conn)
    if repaired:
        log.info("occupancy caught up for %d tenant(s)", len(repaired))
