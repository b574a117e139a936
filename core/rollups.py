"""Hourly rollups of readings (`readings_hourly`), on either time-series engine.

Dashboards read these instead of raw readings: per tenant, device, quantity and UTC
hour, the count, min, max, avg, sum and last value.

On TimescaleDB `readings_hourly` is a continuous aggregate. Its refresh policy re-runs
every 5 minutes over the last `DEEP_WINDOW`; TimescaleDB logs which hours received rows
(late ones included) and rematerialises only those. Real-time aggregation adds the
hours not yet materialised, so the current hour is always fresh.

On plain PostgreSQL `readings_hourly` is a table that `catch_up` recomputes. Nothing
says which hours received rows since the last run: readings has no insertion column,
and ingest is not to be slowed by bookkeeping. So every run recomputes a window of
recent hours, which costs a BRIN range scan of readings for that window:
- every 5 minutes over `RECENT_WINDOW` (6 h): a reading up to 5 h 55 min late is in its
  hour within 5 minutes;
- every day over `DEEP_WINDOW` (7 days): a reading up to 6 days late (a gateway back
  after an outage, a LoRaWAN device replaying its log) is in its hour within a day.
Later ones wait for an explicit `refresh` over their range, which both engines honour
(TimescaleDB's policy never looks further back than `DEEP_WINDOW` either).

Tenant isolation. TimescaleDB refuses row-level security on a continuous aggregate (it
is a view), and refuses to create one over a table with row-level security enabled. So
the application role gets no grant on the continuous aggregate and reads the security
barrier view `tenant_readings_hourly`, which keeps the rows of
`civicsense_current_tenant()` only. Native PostgreSQL has the same view, so the
application reads both engines the same way; its table additionally carries the usual
row-level security, like every tenant table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.rows import class_row

from . import timeseries

#: How far back each 5-minute run recomputes, on native PostgreSQL.
RECENT_WINDOW = timedelta(hours=6)
#: How far back the daily pass (native) and the refresh policy (TimescaleDB) look.
DEEP_WINDOW = timedelta(days=7)
HOUR = timedelta(hours=1)

_FIGURES = "count, min_value, max_value, avg_value, sum_value, last_value"

_TENANT_VIEW = sql.SQL(
    "CREATE VIEW tenant_readings_hourly WITH (security_barrier) AS"
    " SELECT hour, tenant_id, device_id, quantity, " + _FIGURES + " FROM readings_hourly"
    " WHERE tenant_id = civicsense_current_tenant()"
)
_GRANT_TENANT_VIEW = sql.SQL("GRANT SELECT ON tenant_readings_hourly TO civicsense_app")


@dataclass(frozen=True)
class HourlyFigures:
    """One device's readings of one quantity during one UTC hour."""

    hour: datetime
    device_id: int
    quantity: str
    count: int
    min_value: float
    max_value: float
    avg_value: float
    sum_value: float
    last_value: float


def create_statements(engine: str) -> list[timeseries.Statement]:
    """The DDL that creates `readings_hourly` on `engine`; tests read it, migrations run it."""
    if engine == "timescaledb":
        return [
            # TimescaleDB checks for row-level security on the source only when the
            # aggregate is created; it is back on before this transaction commits.
            sql.SQL("ALTER TABLE readings DISABLE ROW LEVEL SECURITY"),
            sql.SQL(
                "CREATE MATERIALIZED VIEW readings_hourly"
                " WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS"
                " SELECT time_bucket('1 hour', time) AS hour, tenant_id, device_id, quantity,"
                " count(*) AS count, min(value) AS min_value, max(value) AS max_value,"
                " avg(value) AS avg_value, sum(value) AS sum_value,"
                " last(value, time) AS last_value"
                " FROM readings"
                " GROUP BY time_bucket('1 hour', time), tenant_id, device_id, quantity"
                " WITH NO DATA"
            ),
            sql.SQL("ALTER TABLE readings ENABLE ROW LEVEL SECURITY"),
            sql.SQL(
                "SELECT add_continuous_aggregate_policy('readings_hourly',"
                " start_offset => {}, end_offset => {}, schedule_interval => {})"
            ).format(
                sql.Literal(DEEP_WINDOW), sql.Literal(HOUR), sql.Literal(timedelta(minutes=5))
            ),
            _TENANT_VIEW,
            _GRANT_TENANT_VIEW,
        ]
    if engine != "native":
        raise ValueError(f"unknown time-series engine {engine!r}")
    return [
        sql.SQL(
            "CREATE TABLE readings_hourly ("
            " hour timestamptz NOT NULL, tenant_id bigint NOT NULL,"
            " device_id bigint NOT NULL, quantity text NOT NULL,"
            " count bigint NOT NULL, min_value double precision NOT NULL,"
            " max_value double precision NOT NULL, avg_value double precision NOT NULL,"
            " sum_value double precision NOT NULL, last_value double precision NOT NULL,"
            " PRIMARY KEY (device_id, quantity, hour, tenant_id))"
        ),
        # each run replaces a range of hours: found by this index, not a scan
        sql.SQL("CREATE INDEX readings_hourly_hour_idx ON readings_hourly (hour)"),
        sql.SQL("SELECT civicsense_protect_tenant_table('readings_hourly', 'SELECT')"),
        _TENANT_VIEW,
        _GRANT_TENANT_VIEW,
    ]


def create(conn: psycopg.Connection) -> None:
    """Create `readings_hourly` on the engine `readings` was created with."""
    for statement in create_statements(timeseries.current_engine(conn)):
        conn.execute(statement)


# One statement, so that the recomputation and the rows it replaces share one snapshot.
# Rows are written only when a figure changed: a run over quiet hours writes nothing.
# The last value breaks ties on time by value, so that a rerun picks the same one.
_RECOMPUTE = """
WITH fresh AS (
    SELECT date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour,
           tenant_id, device_id, quantity,
           count(*) AS count, min(value) AS min_value, max(value) AS max_value,
           avg(value) AS avg_value, sum(value) AS sum_value,
           (array_agg(value ORDER BY time DESC, value DESC))[1] AS last_value
    FROM readings
    WHERE time >= %(start)s AND time < %(end)s
    GROUP BY 1, 2, 3, 4
), removed AS (
    DELETE FROM readings_hourly h
    WHERE h.hour >= %(start)s AND h.hour < %(end)s
      AND NOT EXISTS (
          SELECT 1 FROM fresh f
          WHERE (f.hour, f.tenant_id, f.device_id, f.quantity)
              = (h.hour, h.tenant_id, h.device_id, h.quantity))
    RETURNING 1
), written AS (
    INSERT INTO readings_hourly AS h (hour, tenant_id, device_id, quantity,
        count, min_value, max_value, avg_value, sum_value, last_value)
    SELECT * FROM fresh
    ON CONFLICT (device_id, quantity, hour, tenant_id) DO UPDATE SET
        count = EXCLUDED.count, min_value = EXCLUDED.min_value,
        max_value = EXCLUDED.max_value, avg_value = EXCLUDED.avg_value,
        sum_value = EXCLUDED.sum_value, last_value = EXCLUDED.last_value
    WHERE (h.count, h.min_value, h.max_value, h.avg_value, h.sum_value, h.last_value)
        IS DISTINCT FROM (EXCLUDED.count, EXCLUDED.min_value, EXCLUDED.max_value,
                          EXCLUDED.avg_value, EXCLUDED.sum_value, EXCLUDED.last_value)
    RETURNING 1
)
SELECT (SELECT count(*) FROM written) + (SELECT count(*) FROM removed)
"""


def _hour_floor(when: datetime) -> datetime:
    """The start of `when`'s UTC hour."""
    return when - (when - timeseries.EPOCH) % HOUR


def refresh(conn: psycopg.Connection, *, start: datetime, end: datetime) -> int | None:
    """Recompute the hours overlapping [start, end): a backfill, or readings later than
    the jobs look back. The rows changed on native PostgreSQL; None on TimescaleDB.

    On TimescaleDB `conn` must be in autocommit: a refresh cannot run in a transaction.
    """
    lower, upper = _hour_floor(start), _hour_floor(end)
    if upper < end:
        upper += HOUR
    if timeseries.current_engine(conn) == "timescaledb":
        conn.execute("CALL refresh_continuous_aggregate('readings_hourly', %s, %s)", (lower, upper))
        return None
    with conn.transaction():
        # the 5-minute and the daily runs must not interleave: the one with the older
        # snapshot would write back figures that miss the readings the other one saw
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('civicsense.readings_hourly'))")
        row = conn.execute(_RECOMPUTE, {"start": lower, "end": upper}).fetchone()
    assert row is not None
    return int(row[0])


def catch_up(
    conn: psycopg.Connection, *, lookback: timedelta, now: datetime | None = None
) -> int | None:
    """The scheduled job: recompute the hours from `lookback` ago to the current one.

    The rows changed; None on TimescaleDB, whose refresh policy does this itself.
    """
    if timeseries.current_engine(conn) == "timescaledb":
        return None
    now = now or datetime.now(UTC)
    return refresh(conn, start=now - lookback, end=now)


_HOURLY = """
SELECT hour, device_id, quantity, count, min_value, max_value, avg_value, sum_value, last_value
FROM tenant_readings_hourly
WHERE device_id = ANY(%(device_ids)s)
  AND (%(quantity)s::text IS NULL OR quantity = %(quantity)s)
  AND hour >= %(start)s AND hour < %(end)s
ORDER BY device_id, quantity, hour
"""


def hourly(
    conn: psycopg.Connection,
    *,
    device_ids: Sequence[int],
    quantity: str | None = None,
    start: datetime,
    end: datetime,
) -> list[HourlyFigures]:
    """The hours starting in [start, end) of these devices (one quantity, or all), of the
    tenant set on `conn`'s transaction; by device, quantity and hour."""
    params = {"device_ids": list(device_ids), "quantity": quantity, "start": start, "end": end}
    with conn.cursor(row_factory=class_row(HourlyFigures)) as cur:
        return cur.execute(_HOURLY, params).fetchall()
