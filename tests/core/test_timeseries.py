"""The time-series adapter: native partitions for real, TimescaleDB DDL as issued."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from yoyo import read_migrations

from core import jobs, migrate, timeseries
from core.settings import Settings

ROOT = Path(__file__).parents[2]
TIME_TABLES = ("readings", "uplinks", "device_events")
WEEK = timedelta(days=7)
FUTURE = datetime(2031, 1, 15, 12, 0, tzinfo=UTC)  # a Wednesday, far from any existing partition

# One row per table, with only what the table requires; %s is the row's time.
INSERTS = {
    "readings": (
        "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
        " VALUES (%s, 1, 1, 'temperature', 21.5)"
    ),
    "uplinks": (
        "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id)"
        " VALUES (%s, 1, 1, '24e124136c225107', gen_random_uuid())"
    ),
    "device_events": (
        "INSERT INTO device_events (time, tenant_id, device_id, dev_eui, kind, event_key, body)"
        " VALUES (%s, 1, 1, '24e124136c225107', 'join', gen_random_uuid()::text, '{}')"
    ),
}


def _load_migration(path: str) -> ModuleType:
    """A Python migration file as a module, loaded the way yoyo loads it."""
    migrations = read_migrations(str(ROOT / Path(path).parent))
    [migration] = [m for m in migrations if Path(m.path).name == Path(path).name]
    migration.load()
    return migration.module


@pytest.fixture
def utc_conn(conn: psycopg.Connection) -> psycopg.Connection:
    """The test connection with its session in UTC, so that bounds read back in UTC."""
    conn.execute("SET TIME ZONE 'UTC'")
    return conn


def _partitions(conn: psycopg.Connection, table: str) -> dict[str, str]:
    """name → bound expression of every partition of `table`."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    return dict(rows)


def _bound(lower: datetime, upper: datetime) -> str:
    return f"FOR VALUES FROM ('{lower:%Y-%m-%d %H:%M:%S}+00') TO ('{upper:%Y-%m-%d %H:%M:%S}+00')"


def _where(conn: psycopg.Connection, table: str) -> list[tuple[str, datetime]]:
    """(partition, time) of every row of `table`, in time order."""
    query = sql.SQL("SELECT tableoid::regclass::text, time FROM {} ORDER BY time").format(
        sql.Identifier(table)
    )
    return conn.execute(query).fetchall()


def _week_start(when: datetime) -> datetime:
    """Monday 00:00 UTC of `when`'s week."""
    day = when.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


# --- (a) native partitioning, for real -----------------------------------------------------


@pytest.mark.parametrize("table", TIME_TABLES)
def test_time_table_is_range_partitioned_on_time_with_a_default_partition(
    utc_conn: psycopg.Connection, table: str
) -> None:
    strategy = utc_conn.execute(
        "SELECT p.partstrat, a.attname FROM pg_partitioned_table p"
        " JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]"
        " WHERE p.partrelid = %s::regclass",
        (table,),
    ).fetchone()
    assert strategy == ("r", "time")
    assert _partitions(utc_conn, table).get(f"{table}_default") == "DEFAULT"


@pytest.mark.parametrize("table", TIME_TABLES)
def test_time_table_has_a_brin_index_on_time(conn: psycopg.Connection, table: str) -> None:
    definitions = [
        row[0]
        for row in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = %s",
            (table,),
        )
    ]
    assert any('USING brin ("time")' in d or "USING brin (time)" in d for d in definitions), (
        definitions
    )


def test_migrations_register_the_tables_with_their_retention(
    conn: psycopg.Connection, settings: Settings
) -> None:
    rows = conn.execute(
        "SELECT name, time_column, interval_days, retention, retention_days"
        " FROM timeseries_tables ORDER BY 1"
    ).fetchall()
    interval, raw, readings = (
        settings.chunk_interval_days, settings.raw_retention_days, settings.readings_retention_days
    )  # fmt: skip
    assert rows == [
        ("device_events", "time", interval, "raw", raw),
        ("readings", "time", interval, "readings", readings),
        ("uplinks", "time", interval, "raw", raw),
    ]


@pytest.mark.parametrize("table", TIME_TABLES)
def test_migrations_create_this_week_and_the_next_ones(
    utc_conn: psycopg.Connection, settings: Settings, table: str
) -> None:
    partitions = _partitions(utc_conn, table)
    start = _week_start(datetime.now(UTC))
    for step in range(settings.partitions_ahead + 1):
        lower = start + step * WEEK
        name = f"{table}_p{lower:%Y%m%d}"
        assert partitions.get(name) == _bound(lower, lower + WEEK), sorted(partitions)


@pytest.mark.parametrize("table", TIME_TABLES)
def test_current_rows_do_not_land_in_the_default_partition(
    conn: psycopg.Connection, table: str
) -> None:
    conn.execute(INSERTS[table], (datetime.now(UTC),))
    [(partition, _)] = _where(conn, table)
    assert partition == f"{table}_p{_week_start(datetime.now(UTC)):%Y%m%d}"


def test_ensure_partitions_creates_the_current_one_and_ahead_more(
    utc_conn: psycopg.Connection,
) -> None:
    before = _partitions(utc_conn, "readings")
    created = timeseries.ensure_partitions(
        utc_conn, "readings", interval_days=7, ahead=3, now=FUTURE
    )
    monday = datetime(2031, 1, 13, tzinfo=UTC)
    expected = {f"readings_p{monday + i * WEEK:%Y%m%d}": monday + i * WEEK for i in range(4)}
    assert created == list(expected)
    after = _partitions(utc_conn, "readings")
    assert set(after) - set(before) == set(expected)
    for name, lower in expected.items():
        assert lower.weekday() == 0
        assert after[name] == _bound(lower, lower + WEEK)


def test_ensure_partitions_is_idempotent(utc_conn: psycopg.Connection) -> None:
    first = timeseries.ensure_partitions(utc_conn, "uplinks", interval_days=7, ahead=2, now=FUTURE)
    assert len(first) == 3
    partitions = _partitions(utc_conn, "uplinks")
    assert (
        timeseries.ensure_partitions(utc_conn, "uplinks", interval_days=7, ahead=2, now=FUTURE)
        == []
    )
    # a later call overlapping the first creates only the missing week
    later = timeseries.ensure_partitions(
        utc_conn, "uplinks", interval_days=7, ahead=2, now=FUTURE + WEEK
    )
    assert later == [f"uplinks_p{datetime(2031, 2, 3, tzinfo=UTC):%Y%m%d}"]
    assert set(_partitions(utc_conn, "uplinks")) == set(partitions) | set(later)


@pytest.mark.parametrize("table", TIME_TABLES)
def test_rows_waiting_in_the_default_partition_move_into_the_new_partition(
    conn: psycopg.Connection, table: str
) -> None:
    inside = [FUTURE - timedelta(days=2), FUTURE, FUTURE + timedelta(days=4, hours=11)]
    outside = FUTURE + timedelta(days=30)
    for when in [*inside, outside]:
        conn.execute(INSERTS[table], (when,))
    assert {p for p, _ in _where(conn, table)} == {f"{table}_default"}

    created = timeseries.ensure_partitions(conn, table, interval_days=7, ahead=0, now=FUTURE)
    assert created == [f"{table}_p20310113"]
    assert _where(conn, table) == [
        *((f"{table}_p20310113", when) for when in inside),
        (f"{table}_default", outside),
    ]


def test_moved_rows_keep_their_values_and_uniqueness(conn: psycopg.Connection) -> None:
    dedup = uuid.uuid4()
    conn.execute(
        "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id, f_cnt, payload)"
        " VALUES (%s, 7, 8, '24e124136c225107', %s, 42, '\\x0175'::bytea)",
        (FUTURE, dedup),
    )
    before = conn.execute("SELECT * FROM uplinks").fetchall()
    timeseries.ensure_partitions(conn, "uplinks", interval_days=7, ahead=0, now=FUTURE)
    assert conn.execute("SELECT * FROM uplinks").fetchall() == before
    # the (dedup_id, time) key still holds in the new partition
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id)"
            " VALUES (%s, 7, 8, '24e124136c225107', %s)",
            (FUTURE, dedup),
        )
    inserted = conn.execute(
        "INSERT INTO uplinks (time, tenant_id, device_id, dev_eui, dedup_id)"
        " VALUES (%s, 7, 8, '24e124136c225107', %s) ON CONFLICT DO NOTHING RETURNING 1",
        (FUTURE, dedup),
    ).fetchall()
    assert inserted == []


def test_drop_expired_partitions_drops_only_whole_partitions_past_the_retention(
    conn: psycopg.Connection,
) -> None:
    w0 = datetime(2020, 1, 6, tzinfo=UTC)  # a Monday
    created = timeseries.ensure_partitions(conn, "readings", interval_days=7, ahead=2, now=w0)
    assert created == ["readings_p20200106", "readings_p20200113", "readings_p20200120"]
    for when in (w0 + timedelta(days=1), w0 + timedelta(days=8), w0 + timedelta(days=15)):
        conn.execute(INSERTS["readings"], (when,))
    conn.execute(INSERTS["readings"], (datetime(2019, 6, 1, tzinfo=UTC),))  # in DEFAULT
    before = set(_partitions(conn, "readings"))

    # the cutoff falls inside the second week: it is kept, whole
    dropped = timeseries.drop_expired_partitions(
        conn,
        "readings",
        interval_days=7,
        retention_days=30,
        now=w0 + timedelta(days=10) + timedelta(days=30),
    )
    assert dropped == ["readings_p20200106"]
    assert set(_partitions(conn, "readings")) == before - {"readings_p20200106"}
    assert [p for p, _ in _where(conn, "readings")] == [
        "readings_default",
        "readings_p20200113",
        "readings_p20200120",
    ]

    # a partition ending exactly at the cutoff is past the retention
    assert timeseries.drop_expired_partitions(
        conn, "readings", interval_days=7, retention_days=30, now=w0 + 2 * WEEK + timedelta(days=30)
    ) == ["readings_p20200113"]
    # the current partitions and the DEFAULT one are never dropped by retention
    assert f"readings_p{_week_start(datetime.now(UTC)):%Y%m%d}" in _partitions(conn, "readings")
    assert "readings_default" in _partitions(conn, "readings")


def test_maintain_creates_ahead_and_applies_each_tables_retention(
    conn: psycopg.Connection,
) -> None:
    now = datetime.now(UTC) + timedelta(days=400)
    old = now - timedelta(days=1000)  # past raw retention (730), within readings' (1825)
    recent = now - timedelta(days=700)  # within both
    for table in TIME_TABLES:
        timeseries.ensure_partitions(conn, table, interval_days=7, ahead=0, now=old)
        timeseries.ensure_partitions(conn, table, interval_days=7, ahead=0, now=recent)
        conn.execute(INSERTS[table], (old,))
    old_name, recent_name = f"p{_week_start(old):%Y%m%d}", f"p{_week_start(recent):%Y%m%d}"

    timeseries.maintain(conn, ahead=2, now=now)

    for table in TIME_TABLES:
        partitions = _partitions(conn, table)
        for step in range(3):
            assert f"{table}_p{_week_start(now) + step * WEEK:%Y%m%d}" in partitions
        assert f"{table}_{recent_name}" in partitions
        assert (f"{table}_{old_name}" in partitions) is (table == "readings"), table
    assert len(_where(conn, "readings")) == 1
    assert _where(conn, "uplinks") == [] and _where(conn, "device_events") == []


def test_the_maintenance_job_applies_changed_retention_settings(
    conn: psycopg.Connection, settings: Settings
) -> None:
    """A town that shortens CIVICSENSE_RAW_RETENTION_DAYS after install gets it applied."""
    old = datetime.now(UTC) - timedelta(days=100)
    for table in TIME_TABLES:
        timeseries.ensure_partitions(conn, table, interval_days=7, ahead=0, now=old)
        conn.execute(INSERTS[table], (old,))
    conn.commit()
    shorter = settings.model_copy(update={"raw_retention_days": 30})

    jobs.maintain_timeseries(shorter)

    assert conn.execute(
        "SELECT name, retention_days FROM timeseries_tables ORDER BY 1"
    ).fetchall() == [
        ("device_events", 30), ("readings", settings.readings_retention_days), ("uplinks", 30)
    ]  # fmt: skip
    assert _where(conn, "uplinks") == [] and _where(conn, "device_events") == []
    assert len(_where(conn, "readings")) == 1
    assert timeseries.apply_retention(conn, {"raw": 30, "readings": 1825}) == []


def test_maintain_follows_the_registry(conn: psycopg.Connection) -> None:
    conn.execute("UPDATE timeseries_tables SET interval_days = 1 WHERE name = 'readings'")
    conn.execute("DELETE FROM timeseries_tables WHERE name = 'uplinks'")
    before = set(_partitions(conn, "uplinks"))
    timeseries.maintain(conn, ahead=1, now=FUTURE)
    assert {"readings_p20310115", "readings_p20310116"} <= set(_partitions(conn, "readings"))
    assert set(_partitions(conn, "uplinks")) == before
    assert "device_events_p20310113" in _partitions(conn, "device_events")


# --- (b) TimescaleDB DDL, as issued ------------------------------------------------------


@pytest.fixture(scope="module")
def time_tables() -> dict[str, timeseries.TimeTable]:
    """The TimeTable declarations of the migrations."""
    readings = _load_migration("core/migrations/core_0002_readings.py")
    uplinks = _load_migration("ingest/migrations/ingest_0001_uplinks.py")
    return {
        "readings": readings.READINGS,
        "uplinks": uplinks.UPLINKS,
        "device_events": uplinks.DEVICE_EVENTS,
    }


def _timescale_sql(
    conn: psycopg.Connection, table: timeseries.TimeTable, *, retention_days: int
) -> list[str]:
    statements = timeseries.create_statements(
        dataclasses.replace(table, retention_days=retention_days),
        "timescaledb",
        interval_days=7,
        compress_after_days=14,
    )
    return [" ".join(s.as_string(conn).split()) for s in statements]


@pytest.mark.parametrize(
    ("name", "segment_by", "retention_days"),
    [
        ("readings", "device_id, quantity", 1825),
        ("uplinks", "device_id", 730),
        ("device_events", "device_id", 730),
    ],
)
def test_timescaledb_ddl_makes_a_compressed_hypertable_with_retention(
    conn: psycopg.Connection,
    time_tables: dict[str, timeseries.TimeTable],
    name: str,
    segment_by: str,
    retention_days: int,
) -> None:
    issued = _timescale_sql(conn, time_tables[name], retention_days=retention_days)
    expected_in_order = [
        "CREATE EXTENSION IF NOT EXISTS timescaledb",
        f'CREATE TABLE "{name}" (',
        f"SELECT create_hypertable('{name}', 'time', chunk_time_interval => '7 days'::interval)",
        f'CREATE INDEX "{name}_device_time_idx" ON "{name}" (device_id, time DESC)',
        f'ALTER TABLE "{name}" SET (timescaledb.compress, '
        f"timescaledb.compress_segmentby = '{segment_by}', "
        "timescaledb.compress_orderby = 'time DESC')",
        f"SELECT add_compression_policy('{name}', '14 days'::interval)",
        f"SELECT add_retention_policy('{name}', '{retention_days} days'::interval)",
    ]
    assert len(issued) == len(expected_in_order), issued
    for statement, expected in zip(issued, expected_in_order, strict=True):
        assert statement.startswith(expected), (statement, expected)
    assert not any("PARTITION" in s or "brin" in s.lower() for s in issued)


@pytest.mark.parametrize(
    ("name", "unique"),
    [("uplinks", "UNIQUE (dedup_id, time)"), ("device_events", "UNIQUE (event_key, kind, time)")],
)
def test_timescaledb_unique_keys_include_the_time_column(
    conn: psycopg.Connection, time_tables: dict[str, timeseries.TimeTable], name: str, unique: str
) -> None:
    """TimescaleDB accepts a unique key on a hypertable only if it holds the time column."""
    create_table = _timescale_sql(conn, time_tables[name], retention_days=730)[1]
    assert unique in create_table


def test_native_ddl_partitions_by_time_with_default_and_brin(
    conn: psycopg.Connection, time_tables: dict[str, timeseries.TimeTable]
) -> None:
    statements = timeseries.create_statements(
        time_tables["readings"], "native", interval_days=7, compress_after_days=14
    )
    issued = [" ".join(s.as_string(conn).split()) for s in statements]
    assert issued[0].startswith('CREATE TABLE "readings" (') and issued[0].endswith(
        'PARTITION BY RANGE ("time")'
    )
    assert issued[1:] == [
        'CREATE TABLE "readings_default" PARTITION OF "readings" DEFAULT',
        'CREATE INDEX "readings_time_brin" ON "readings" USING brin ("time")',
        'CREATE INDEX "readings_device_time_idx" ON "readings" (device_id, time DESC)',
    ]
    assert not any("timescaledb" in s for s in issued)


def test_unknown_engine_is_refused(time_tables: dict[str, timeseries.TimeTable]) -> None:
    with pytest.raises(ValueError, match="influx"):
        timeseries.create_statements(
            time_tables["readings"], "influx", interval_days=7, compress_after_days=14
        )


# --- (c) real TimescaleDB, when one is given ---------------------------------------------


@pytest.mark.timescale
def test_migrations_on_timescaledb_make_hypertables(timescale_url: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=timescale_url, timeseries="timescaledb"
    )
    migrate.upgrade(settings, timescale_url)
    with psycopg.connect(timescale_url, autocommit=True) as conn:
        hypertables = {
            row[0]
            for row in conn.execute(
                "SELECT hypertable_name FROM timescaledb_information.hypertables"
            )
        }
        assert hypertables >= set(TIME_TABLES)
        assert timeseries.current_engine(conn) == "timescaledb"
        jobs = conn.execute(
            "SELECT hypertable_name, proc_name FROM timescaledb_information.jobs"
            " WHERE hypertable_name IS NOT NULL"
        ).fetchall()
        for table in TIME_TABLES:
            assert (table, "policy_compression") in jobs
            assert (table, "policy_retention") in jobs


# --- (d) engine choice -------------------------------------------------------------------


@pytest.fixture
def plain_postgres(conn: psycopg.Connection) -> psycopg.Connection:
    """The test server, when it has no TimescaleDB (the embedded one)."""
    if timeseries.timescale_available(conn):
        pytest.skip("the test server has TimescaleDB; these tests are about plain PostgreSQL")
    return conn


def test_asking_for_timescaledb_without_the_extension_is_a_clear_error(
    plain_postgres: psycopg.Connection,
) -> None:
    with pytest.raises(RuntimeError, match=r"timescaledb.*not available"):
        timeseries.engine_for(plain_postgres, "timescaledb")


def test_auto_engine_is_native_on_plain_postgresql(plain_postgres: psycopg.Connection) -> None:
    assert timeseries.engine_for(plain_postgres, "auto") == "native"
    assert timeseries.engine_for(plain_postgres, "native") == "native"
    assert timeseries.current_engine(plain_postgres) == "native"


def test_auto_engine_works_for_an_ordinary_role_on_a_server_offering_timescaledb(
    conn: psycopg.Connection, database_url: str
) -> None:
    """Production connects as an unprivileged role, which may not read shared_preload_libraries.

    The view `pg_available_extensions` is shadowed for that role's search path so that this
    server looks like one where TimescaleDB is installed (as in the timescaledb images).
    """
    role = f"cs_app_{uuid.uuid4().hex[:8]}"
    conn.execute("CREATE SCHEMA shadow")
    conn.execute(
        "CREATE VIEW shadow.pg_available_extensions AS"
        " SELECT 'timescaledb'::name AS name, '2.17.2'::text AS default_version,"
        " NULL::text AS installed_version, ''::text AS comment"
    )
    conn.execute("GRANT USAGE ON SCHEMA shadow TO PUBLIC")
    conn.execute("GRANT SELECT ON shadow.pg_available_extensions TO PUBLIC")
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'app-password'").format(sql.Identifier(role))
    )
    try:
        parts = urlsplit(database_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        url = urlunsplit(parts._replace(netloc=f"{role}:app-password@{host}"))
        with psycopg.connect(
            url, autocommit=True, options="-c search_path=shadow,pg_catalog,public"
        ) as app:
            assert app.execute("SELECT name FROM pg_available_extensions").fetchall() == [
                ("timescaledb",)
            ]
            assert timeseries.engine_for(app, "auto") in {"native", "timescaledb"}
    finally:
        conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
