"""The demo's simulated drivers: most pay, some by bay and some by zone, stays that ended
are stopped and charged, and running the simulation again changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg

from core.settings import Settings
from parking.demo import pay_for_stays
from tests.kit.parking import parking_town

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)  # 11:00 in Paris, regulated


def test_simulated_drivers_pay_some_by_bay_some_by_zone(
    conn: psycopg.Connection, settings: Settings
) -> None:
    town = parking_town(conn, settings, bays=40)
    for number, (bay_id,) in enumerate(conn.execute("SELECT id FROM parking_bays").fetchall()):
        arrived = NOW - timedelta(minutes=30 + number)
        left = NOW - timedelta(minutes=2) if number % 2 else None
        conn.execute(
            "INSERT INTO bay_occupancy (bay_id, tenant_id, arrived_at, left_at)"
            " VALUES (%s, %s, %s, %s)",
            (bay_id, town.tenant_id, arrived, left),
        )
    assert pay_for_stays(conn, town.tenant_id, NOW) > 0
    paid, by_bay, stopped, charged = conn.execute(
        "SELECT count(*), count(bay_id), count(stopped_at), count(amount) FROM parking_sessions"
    ).fetchone()  # type: ignore[misc]
    assert 20 <= paid <= 36  # about 70 % of 40 drivers pay
    assert 0 < by_bay < paid  # some name their bay, the others pay for the zone
    assert 0 < stopped == charged  # the cars that left are stopped and charged
    assert pay_for_stays(conn, town.tenant_id, NOW) == 0
