"""Hourly rollups of readings: native PostgreSQL for real, TimescaleDB on its SQL (and for
real when CIVICSENSE_TEST_TIMESCALE_URL is set)."""

from __future__ import annotations

import math
import random
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import sql

from core import migrate, rollups
from core.db import APP_ROLE
from core.module import MODULE
from core.registry import resolve
from core.settings import Settings

HOUR = timedelta(hours=1)
NOW = datetime(2026, 3, 10, 14, 20, tzinfo=UTC)
TOWN_A, TOWN_B = 1, 2

Reading = tuple[datetime, int, int, str, float]  # time, tenant, device, quantity, value


def _insert(conn: psycopg.Connection, readings: Iterable[Reading]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
            " VALUES (%s, %s, %s, %s, %s)",
            list(readings),
        )


def _as_tenant(conn: psycopg.Connection, tenant_id: int) -> None:
    """The tenant for the rest of this (autocommit) session, as a request would set it."""
    conn.execute("SELECT set_config('civicsense.tenant_id', %s, false)", (str(tenant_id),))


def _figures(
    conn: psycopg.Connection, device_ids: list[int], start: datetime, end: datetime
) -> list[rollups.HourlyFigures]:
    return rollups.hourly(conn, device_ids=device_ids, start=start, end=end)


def _stored(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Every rollup row with its row version (xmin): a rewrite shows even with equal values."""
    return conn.execute(
        "SELECT xmin::text, * FROM readings_hourly ORDER BY device_id, quantity, hour"
    ).fetchall()


def _count(conn: psycopg.Connection, device_id: int, hour: datetime) -> int | None:
    row = conn.execute(
        "SELECT count FROM readings_hourly WHERE device_id = %s AND hour = %s", (device_id, hour)
    ).fetchone()
    return None if row is None else int(row[0])


# --- native PostgreSQL, for real ------------------------------------------------------------


def test_hourly_figures_equal_the_aggregates_of_the_raw_readings(
    conn: psycopg.Connection,
) -> None:
    # the session is in UTC+05:30: hours must still be UTC hours
    conn.execute("SET TIME ZONE 'Asia/Kolkata'")
    start = datetime(2026, 3, 10, 8, tzinfo=UTC)
    draw = random.Random(8)
    readings: list[Reading] = [
        (start + timedelta(seconds=draw.randrange(3 * 3600)), TOWN_A, device, quantity,
         round(draw.uniform(300, 2500), 1))
        for device in (11, 12)
        for quantity in ("co2", "temperature")
        for _ in range(40)
    ]  # fmt: skip
    readings += [
        (start + HOUR, TOWN_A, 11, "co2", 999.0),  # on the boundary: the second hour's
        (start + HOUR - timedelta(microseconds=1), TOWN_A, 11, "co2", 111.0),  # the first's
    ]
    outside = [(start + 3 * HOUR, TOWN_A, 11, "co2", 5000.0), (start - HOUR, TOWN_A, 12, "co2", 1)]
    _insert(conn, readings + outside)

    assert rollups.refresh(conn, start=start, end=start + 3 * HOUR) == 2 * 2 * 3
    _as_tenant(conn, TOWN_A)
    figures = _figures(conn, [11, 12], start - 2 * HOUR, start + 5 * HOUR)

    groups: dict[tuple[int, str, datetime], list[tuple[datetime, float]]] = defaultdict(list)
    for time, _, device, quantity, value in readings:
        hour = time.replace(minute=0, second=0, microsecond=0)
        groups[device, quantity, hour].append((time, value))
    assert [(f.device_id, f.quantity, f.hour) for f in figures] == sorted(groups)
    for f in figures:
        values = [value for _, value in groups[f.device_id, f.quantity, f.hour]]
        assert (f.count, f.min_value, f.max_value) == (len(values), min(values), max(values))
        assert f.avg_value == pytest.approx(statistics.fmean(values))
        assert f.sum_value == pytest.approx(math.fsum(values))
        assert f.last_value == max(groups[f.device_id, f.quantity, f.hour])[1]


def test_hourly_selects_devices_quantity_and_hours(conn: psycopg.Connection) -> None:
    start = datetime(2026, 3, 10, 8, tzinfo=UTC)
    _insert(
        conn,
        [
            (start + h * HOUR + timedelta(minutes=5), TOWN_A, device, quantity, 1.0)
            for h in range(4)
            for device in (11, 12)
            for quantity in ("co2", "humidity")
        ],
    )
    rollups.refresh(conn, start=start, end=start + 4 * HOUR)
    _as_tenant(conn, TOWN_A)
    figures = rollups.hourly(
        conn, device_ids=[12], quantity="humidity", start=start + HOUR, end=start + 3 * HOUR
    )
    assert [(f.device_id, f.quantity, f.hour) for f in figures] == [
        (12, "humidity", start + HOUR),
        (12, "humidity", start + 2 * HOUR),
    ]


def test_a_late_reading_is_in_its_hour_after_the_next_run(conn: psycopg.Connection) -> None:
    hour = datetime(2026, 3, 10, 11, tzinfo=UTC)  # three hours before NOW
    _insert(conn, [(hour + timedelta(minutes=10), TOWN_A, 11, "co2", 800.0)])
    rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=NOW)
    assert _count(conn, 11, hour) == 1

    # a LoRaWAN uplink relayed late: its hour was rolled up already
    _insert(conn, [(hour + timedelta(minutes=50), TOWN_A, 11, "co2", 1200.0)])
    assert _count(conn, 11, hour) == 1
    later = NOW + timedelta(minutes=5)
    assert rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=later) == 1
    _as_tenant(conn, TOWN_A)
    [figures] = _figures(conn, [11], hour, hour + HOUR)
    assert (figures.count, figures.max_value, figures.last_value) == (2, 1200.0, 1200.0)
    assert figures.avg_value == 1000.0


def test_readings_later_than_the_recent_window_wait_for_the_daily_pass(
    conn: psycopg.Connection,
) -> None:
    """The bound: up to RECENT_WINDOW late, counted by the 5-minute run; up to DEEP_WINDOW,
    by the daily one; later, by an explicit refresh over their hours."""
    two_days = (NOW - timedelta(days=2)).replace(minute=0)
    ten_days = (NOW - timedelta(days=10)).replace(minute=0)
    _insert(conn, [(two_days, TOWN_A, 11, "co2", 1.0), (ten_days, TOWN_A, 11, "co2", 1.0)])

    rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=NOW)
    assert (_count(conn, 11, two_days), _count(conn, 11, ten_days)) == (None, None)
    rollups.catch_up(conn, lookback=rollups.DEEP_WINDOW, now=NOW)
    assert (_count(conn, 11, two_days), _count(conn, 11, ten_days)) == (1, None)
    rollups.refresh(conn, start=ten_days, end=ten_days + timedelta(minutes=1))
    assert (_count(conn, 11, two_days), _count(conn, 11, ten_days)) == (1, 1)


def test_rerunning_changes_nothing(conn: psycopg.Connection) -> None:
    start = datetime(2026, 3, 10, 8, tzinfo=UTC)
    _insert(
        conn,
        [
            (start + timedelta(minutes=7 * i), tenant, 10 * tenant + i % 3, "co2", float(i))
            for i in range(60)
            for tenant in (TOWN_A, TOWN_B)
        ],
    )
    assert rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=start + 6 * HOUR)
    before = _stored(conn)
    assert before
    assert rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=start + 6 * HOUR) == 0
    assert rollups.refresh(conn, start=start, end=start + 6 * HOUR) == 0
    assert _stored(conn) == before  # same row versions: nothing was rewritten


def test_hours_whose_readings_are_gone_go_too_but_only_within_the_window(
    conn: psycopg.Connection,
) -> None:
    """Readings removed (a correction) take their hour with them when it is recomputed; an
    hour outside the window stays, as it must once retention drops its raw readings."""
    old, recent = NOW - timedelta(days=30), NOW - 2 * HOUR
    _insert(conn, [(old, TOWN_A, 11, "co2", 1.0), (recent, TOWN_A, 11, "co2", 1.0)])
    rollups.refresh(conn, start=old, end=NOW)
    conn.execute("DELETE FROM readings")
    assert rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW, now=NOW) == 1
    hours = conn.execute("SELECT hour FROM readings_hourly").fetchall()
    assert hours == [(old.replace(minute=0),)]


def test_the_app_role_reads_only_its_tenants_hours(
    conn: psycopg.Connection, database_url: str
) -> None:
    hour = datetime(2026, 3, 10, 9, tzinfo=UTC)
    _insert(conn, [(hour, TOWN_A, 11, "co2", 400.0), (hour, TOWN_B, 21, "co2", 900.0)])
    rollups.refresh(conn, start=hour, end=hour + HOUR)

    with psycopg.connect(database_url) as app:
        app.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        # no tenant set: nothing
        assert _figures(app, [11, 21], hour, hour + HOUR) == []
        app.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(TOWN_A),))
        [figures] = _figures(app, [11, 21], hour, hour + HOUR)
        assert (figures.device_id, figures.avg_value) == (11, 400.0)
        for relation in ("tenant_readings_hourly", "readings_hourly"):
            query = sql.SQL("SELECT count(*) FROM {} WHERE tenant_id = %s").format(
                sql.Identifier(relation)
            )
            assert app.execute(query, (TOWN_B,)).fetchone() == (0,), relation
        # a cheap leaky function in the caller's filter runs only on the tenant's rows, even
        # in a sequential scan, where filters would otherwise run cheapest first
        app.execute("SET enable_indexscan = off")
        app.execute("SET enable_bitmapscan = off")
        app.execute(
            "CREATE FUNCTION pg_temp.peek(t bigint) RETURNS boolean LANGUAGE plpgsql COST 0.0001"
            " AS $$ BEGIN RAISE NOTICE 'saw %', t; RETURN true; END $$"
        )
        seen: list[str] = []
        app.add_notice_handler(lambda notice: seen.append(notice.message_primary or ""))
        app.execute("SELECT * FROM tenant_readings_hourly WHERE pg_temp.peek(tenant_id)")
        assert seen == [f"saw {TOWN_A}"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute(
                "INSERT INTO readings_hourly VALUES (%s, %s, 11, 'co2', 1, 0, 0, 0, 0, 0)",
                (hour + HOUR, TOWN_A),
            )


def test_the_jobs_roll_up_the_current_hour(conn: psycopg.Connection, settings: Settings) -> None:
    jobs = {job.name: job for job in MODULE.jobs}
    assert jobs["readings_hourly.recent"].every_seconds == 5 * 60
    assert jobs["readings_hourly.late"].every_seconds == 24 * 3600
    now = datetime.now(UTC)
    _insert(
        conn, [(now, TOWN_A, 11, "co2", 450.0), (now - timedelta(days=3), TOWN_A, 11, "co2", 1)]
    )

    resolve(jobs["readings_hourly.recent"].target)(settings)
    assert conn.execute("SELECT count(*) FROM readings_hourly").fetchone() == (1,)
    resolve(jobs["readings_hourly.late"].target)(settings)
    assert conn.execute("SELECT count(*) FROM readings_hourly").fetchone() == (2,)


# --- TimescaleDB, on its SQL ----------------------------------------------------------------


def test_timescaledb_ddl_makes_a_continuous_aggregate_refreshed_by_a_policy(
    conn: psycopg.Connection,
) -> None:
    issued = [" ".join(s.as_string(conn).split()) for s in rollups.create_statements("timescaledb")]
    assert issued == [
        "ALTER TABLE readings DISABLE ROW LEVEL SECURITY",
        "CREATE MATERIALIZED VIEW readings_hourly"
        " WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
        " SELECT time_bucket('1 hour', time) AS hour, tenant_id, device_id, quantity,"
        " count(*) AS count, min(value) AS min_value, max(value) AS max_value,"
        " avg(value) AS avg_value, sum(value) AS sum_value, last(value, time) AS last_value"
        " FROM readings GROUP BY time_bucket('1 hour', time), tenant_id, device_id, quantity"
        " WITH NO DATA",
        "ALTER TABLE readings ENABLE ROW LEVEL SECURITY",
        "SELECT add_continuous_aggregate_policy('readings_hourly',"
        " start_offset => '7 days 0:00:00'::interval, end_offset => '1:00:00'::interval,"
        " schedule_interval => '0:05:00'::interval)",
        "CREATE VIEW tenant_readings_hourly WITH (security_barrier) AS"
        " SELECT hour, tenant_id, device_id, quantity, count, min_value, max_value,"
        " avg_value, sum_value, last_value FROM readings_hourly"
        " WHERE tenant_id = civicsense_current_tenant()",
        "GRANT SELECT ON tenant_readings_hourly TO civicsense_app",
    ]
    # the application role is never granted the aggregate itself: no row-level security there
    assert not any("ON readings_hourly" in s for s in issued)


def test_both_engines_expose_the_same_tenant_view() -> None:
    native, timescale = (rollups.create_statements(e)[-2:] for e in ("native", "timescaledb"))
    assert native == timescale


def test_unknown_engine_is_refused() -> None:
    with pytest.raises(ValueError, match="influx"):
        rollups.create_statements("influx")


# --- TimescaleDB, for real when one is given -----------------------------------------------


@pytest.mark.timescale
def test_continuous_aggregate_on_timescaledb(timescale_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=timescale_url, timeseries="timescaledb"
    )
    migrate.upgrade(settings, timescale_url)
    hour = datetime(2026, 3, 10, 9, tzinfo=UTC)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT relrowsecurity FROM pg_class WHERE oid = 'readings'::regclass"
        ).fetchone() == (True,)
        policies = conn.execute(
            "SELECT j.proc_name FROM timescaledb_information.jobs j"
            " JOIN timescaledb_information.continuous_aggregates c"
            " ON c.materialization_hypertable_name = j.hypertable_name"
            " WHERE c.view_name = 'readings_hourly'"
        ).fetchall()
        assert policies == [("policy_refresh_continuous_aggregate",)]
        _insert(
            conn,
            [
                (hour + timedelta(minutes=10), TOWN_A, 11, "co2", 400.0),
                (hour + timedelta(minutes=40), TOWN_A, 11, "co2", 600.0),
                (hour, TOWN_B, 21, "co2", 900.0),
            ],
        )
        assert rollups.refresh(conn, start=hour, end=hour + HOUR) is None
        assert rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW) is None
    with psycopg.connect(timescale_url) as app:
        app.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        app.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(TOWN_A),))
        [figures] = _figures(app, [11, 21], hour, hour + HOUR)
        assert (figures.device_id, figures.count, figures.avg_value, figures.last_value) == (
            11, 2, 500.0, 600.0,
        )  # fmt: skip
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT count(*) FROM readings_hourly")
