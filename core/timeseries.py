"""One interface over two storage engines for time-ordered tables.

With the `timescaledb` extension a time table becomes a hypertable with compression
and retention policies. On plain PostgreSQL it is a native range-partitioned table:
partitions of `interval` width are created ahead by `maintain()` (a scheduled job),
a DEFAULT partition catches rows outside them so that nothing is lost, BRIN indexes
keep time scans cheap, and partitions older than the retention are dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql

log = logging.getLogger("civicsense.timeseries")

Statement = sql.SQL | sql.Composed
EPOCH = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: partitions align on weeks


@dataclass(frozen=True)
class TimeTable:
    """How a time-ordered table is laid out; `columns` is its column list in SQL."""

    name: str
    columns: str
    time_column: str = "time"
    segment_by: str = "device_id"
    retention_days: int = 730
    indexes: tuple[str, ...] = ()


def timescale_available(conn: psycopg.Connection) -> bool:
    """True when TimescaleDB is, or can be, created in this database.

    Trying `CREATE EXTENSION` (in a savepoint) is the only test that needs no
    superuser rights: `shared_preload_libraries` is not readable by ordinary roles.
    """
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
        return True
    if not conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone():
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        log.warning("TimescaleDB is installed but cannot be created here: %s", exc)
        return False
    return True


def engine_for(conn: psycopg.Connection, choice: str = "auto") -> str:
    """'timescaledb' or 'native', from the setting and what the server offers."""
    if choice == "native":
        return "native"
    available = timescale_available(conn)
    if choice == "timescaledb" and not available:
        raise RuntimeError("CIVICSENSE_TIMESERIES=timescaledb but the extension is not available")
    return "timescaledb" if available else "native"


def current_engine(conn: psycopg.Connection) -> str:
    """The engine the time tables were created with, as recorded at creation."""
    row = conn.execute(
        "SELECT 1 FROM timeseries_tables WHERE engine = 'timescaledb' LIMIT 1"
    ).fetchone()
    return "timescaledb" if row else "native"


def _index_statements(table: TimeTable) -> list[Statement]:
    name = sql.Identifier(table.name)
    statements: list[Statement] = [
        sql.SQL("CREATE INDEX {} ON {} ({})").format(
            sql.Identifier(f"{table.name}_{index_name}_idx"), name, sql.SQL(columns)
        )
        for index_name, columns in (spec.split(":", 1) for spec in table.indexes)
    ]
    return statements


def create_statements(
    table: TimeTable, engine: str, *, interval_days: int, compress_after_days: int
) -> list[Statement]:
    """The DDL that creates `table` on `engine`; tests read it, migrations run it."""
    name = sql.Identifier(table.name)
    time_col = sql.Identifier(table.time_column)
    interval = sql.Literal(f"{interval_days} days")
    if engine == "timescaledb":
        return [
            sql.SQL("CREATE EXTENSION IF NOT EXISTS timescaledb"),
            sql.SQL("CREATE TABLE {} ({})").format(name, sql.SQL(table.columns)),
            sql.SQL("SELECT create_hypertable({}, {}, chunk_time_interval => {}::interval)").format(
                sql.Literal(table.name), sql.Literal(table.time_column), interval
            ),
            *_index_statements(table),
            sql.SQL(
                "ALTER TABLE {} SET (timescaledb.compress, "
                "timescaledb.compress_segmentby = {}, timescaledb.compress_orderby = {})"
            ).format(name, sql.Literal(table.segment_by), sql.Literal(f"{table.time_column} DESC")),
            sql.SQL("SELECT add_compression_policy({}, {}::interval)").format(
                sql.Literal(table.name), sql.Literal(f"{compress_after_days} days")
            ),
            sql.SQL("SELECT add_retention_policy({}, {}::interval)").format(
                sql.Literal(table.name), sql.Literal(f"{table.retention_days} days")
            ),
        ]
    if engine != "native":
        raise ValueError(f"unknown time-series engine {engine!r}")
    return [
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY RANGE ({})").format(
            name, sql.SQL(table.columns), time_col
        ),
        sql.SQL("CREATE TABLE {} PARTITION OF {} DEFAULT").format(
            sql.Identifier(f"{table.name}_default"), name
        ),
        sql.SQL("CREATE INDEX {} ON {} USING brin ({})").format(
            sql.Identifier(f"{table.name}_time_brin"), name, time_col
        ),
        *_index_statements(table),
    ]


def create(
    conn: psycopg.Connection,
    table: TimeTable,
    *,
    engine: str,
    interval_days: int,
    compress_after_days: int,
    partitions_ahead: int,
) -> None:
    """Create `table` and, on native PostgreSQL, its first partitions."""
    for statement in create_statements(
        table, engine, interval_days=interval_days, compress_after_days=compress_after_days
    ):
        conn.execute(statement)
    conn.execute(
        "INSERT INTO timeseries_tables"
        " (name, engine, time_column, interval_days, retention_days) VALUES (%s, %s, %s, %s, %s)",
        (table.name, engine, table.time_column, interval_days, table.retention_days),
    )
    if engine == "native":
        ensure_partitions(conn, table.name, interval_days=interval_days, ahead=partitions_ahead)


def partition_bounds(when: datetime, interval_days: int) -> tuple[datetime, datetime]:
    """The [start, end) of the partition holding `when`."""
    width = timedelta(days=interval_days)
    start = EPOCH + ((when - EPOCH) // width) * width
    return start, start + width


def _partitions(conn: psycopg.Connection, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = %s::regclass",
        (table,),
    )
    return [row[0] for row in rows]


def _partition_name(table: str, start: datetime) -> str:
    return f"{table}_p{start:%Y%m%d}"


def ensure_partitions(
    conn: psycopg.Connection,
    table: str,
    *,
    interval_days: int,
    ahead: int,
    now: datetime | None = None,
    time_column: str = "time",
) -> list[str]:
    """Create missing partitions from the current one to `ahead` intervals later.

    A new partition is filled with the rows the DEFAULT partition already holds for
    its range before it is attached, so late or early rows are never stranded.
    """
    now = now or datetime.now(UTC)
    existing = set(_partitions(conn, table))
    created = []
    start, _ = partition_bounds(now, interval_days)
    width = timedelta(days=interval_days)
    for step in range(ahead + 1):
        lower = start + step * width
        upper = lower + width
        name = _partition_name(table, lower)
        if name in existing:
            continue
        _attach_partition(conn, table, name, lower, upper, time_column)
        created.append(name)
    if created:
        log.info("created partitions %s", ", ".join(created))
    return created


def _attach_partition(
    conn: psycopg.Connection,
    table: str,
    name: str,
    lower: datetime,
    upper: datetime,
    time_column: str,
) -> None:
    parent, part = sql.Identifier(table), sql.Identifier(name)
    default = sql.Identifier(f"{table}_default")
    time_col = sql.Identifier(time_column)
    with conn.transaction():
        conn.execute(
            sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
                part, parent
            )
        )
        conn.execute(
            sql.SQL(
                "WITH moved AS (DELETE FROM {} WHERE {} >= %s AND {} < %s RETURNING *)"
                " INSERT INTO {} SELECT * FROM moved"
            ).format(default, time_col, time_col, part),
            (lower, upper),
        )
        conn.execute(
            sql.SQL(
                "ALTER TABLE {part} ADD CONSTRAINT {check} CHECK ({t} >= {lo} AND {t} < {hi})"
            ).format(
                part=part,
                check=sql.Identifier(f"{name}_range"),
                t=time_col,
                lo=sql.Literal(lower),
                hi=sql.Literal(upper),
            )
        )
        conn.execute(
            sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
                parent, part, sql.Literal(lower), sql.Literal(upper)
            )
        )


def drop_expired_partitions(
    conn: psycopg.Connection,
    table: str,
    *,
    interval_days: int,
    retention_days: int,
    now: datetime | None = None,
) -> list[str]:
    """Drop the partitions whose whole range is older than the retention."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    dropped = []
    for name in _partitions(conn, table):
        match = re.fullmatch(rf"{re.escape(table)}_p(\d{{8}})", name)
        if match is None:
            continue
        start = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)
        if start + timedelta(days=interval_days) <= cutoff:
            conn.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(name)))
            dropped.append(name)
    if dropped:
        log.info("dropped expired partitions %s", ", ".join(dropped))
    return dropped


def apply_retention(conn: psycopg.Connection, days: Mapping[str, int]) -> list[str]:
    """Bring each time table's retention to the setting of its kind (`days`: kind → days);
    returns the tables changed. TimescaleDB's retention policy is replaced to match."""
    changed = []
    rows = conn.execute(
        "SELECT name, engine, retention, retention_days FROM timeseries_tables ORDER BY name"
    ).fetchall()
    for name, engine, kind, current in rows:
        wanted = days[kind]
        if wanted == current:
            continue
        if engine == "timescaledb":
            conn.execute("SELECT remove_retention_policy(%s, if_exists => true)", (name,))
            conn.execute("SELECT add_retention_policy(%s, %s::interval)", (name, f"{wanted} days"))
        conn.execute(
            "UPDATE timeseries_tables SET retention_days = %s WHERE name = %s", (wanted, name)
        )
        log.info("retention of %s: %d → %d days", name, current, wanted)
        changed.append(name)
    return changed


def maintain(conn: psycopg.Connection, *, ahead: int, now: datetime | None = None) -> None:
    """The scheduled job: partitions ahead and retention, for every native table.

    Hypertables are left alone: TimescaleDB runs their policies itself.
    """
    tables = conn.execute(
        "SELECT name, time_column, interval_days, retention_days FROM timeseries_tables"
        " WHERE engine = 'native'"
    ).fetchall()
    for name, time_column, interval_days, retention_days in tables:
        ensure_partitions(
            conn, name, interval_days=interval_days, ahead=ahead, now=now, time_column=time_column
        )
        drop_expired_partitions(
            conn, name, interval_days=interval_days, retention_days=retention_days, now=now
        )
