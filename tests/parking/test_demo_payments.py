"""The demo's simulated drivers: most pay, some by bay and some by zone, stays that ended
are stopped and charged, running the simulation again changes nothing, and they are the
drivers `civicsense simulate` has."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from core.settings import Settings
from ingest.simulator import Stay, ZoneFacts, driver_for
from parking.demo import pay_for_stays
from tests.kit.parking import Town, parking_town

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Paris, regulated


def test_simulated_drivers_pay_some_by_bay_some_by_zone(
    conn: psycopg.Connection, settings: Settings
) -> None:
    town = parking_town(conn, settings, bays=40)
    _park(conn, town)
    assert pay_for_stays(conn, town.tenant_id, NOW) > 0
    paid, by_bay, stopped, charged = conn.execute(
        "SELECT count(*), count(bay_id), count(stopped_at), count(amount) FROM parking_sessions"
    ).fetchone()  # type: ignore[misc]
    assert 20 <= paid <= 36  # about 70 % of 40 drivers pay
    assert 0 < by_bay < paid  # some name their bay, the others pay for the zone
    assert 0 < stopped == charged  # the cars that left are stopped and charged
    assert pay_for_stays(conn, town.tenant_id, NOW) == 0


def test_the_demo_drivers_are_the_simulators(conn: psycopg.Connection, settings: Settings) -> None:
    town = parking_town(conn, settings, bays=30)
    stays = _park(conn, town)
    pay_for_stays(conn, town.tenant_id, NOW)
    sessions = {
        external_id: (plate, by_bay, started_at)
        for external_id, plate, by_bay, started_at in conn.execute(
            "SELECT external_id, plate, bay_id IS NOT NULL, started_at FROM parking_sessions"
        ).fetchall()
    }
    expected = {}
    for stay in stays:
        driver = driver_for(stay, ZoneFacts(grace_minutes=10))  # the town's zone
        started = stay.arrived_at + driver.delay
        if driver.pays and (started < stay.left_at if stay.left_at else started <= NOW):
            session_id = f"{stay.bay}-{int(stay.arrived_at.timestamp())}"
            expected[session_id] = (driver.plate, driver.by_bay, started)
    assert sessions and sessions == expected


def _park(conn: psycopg.Connection, town: Town) -> list[Stay]:
    """A car in each bay, arrived 30 minutes ago or earlier; every other one left."""
    stays = []
    bays = conn.execute("SELECT id, code FROM parking_bays ORDER BY id").fetchall()
    for number, (bay_id, code) in enumerate(bays):
        arrived = NOW - timedelta(minutes=30 + number)
        left = NOW - timedelta(minutes=2) if number % 2 else None
        conn.execute(
            "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at, left_at)"
            " VALUES (%s, %s, %s, %s)",
            (bay_id, town.tenant_id, arrived, left),
        )
        stays.append(Stay(code, town.zone, arrived, left))
    return stays
