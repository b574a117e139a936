"""Phase 8: the dashboards' data on a year of readings.

In a database of its own (`bench_dashboard`): a town of `rooms` classrooms (CO2 sensors) in
buildings of 20 rooms, each with a year of CO2, temperature and humidity readings every 10
minutes (an Elsys ERS CO2's default interval; COPY), rolled up once into `readings_hourly`
(`core.rollups.refresh`, timed: what a backfill costs). Then, on a connection of the
application role with the town set (as a dashboard callback reads), each measured `repeats`
times over rooms drawn at random:

- the air page's series of one room over 31 days (`dashboard.pages.air.series`, from the
  hourly rollups), against the baseline: the same hourly means computed from the raw
  readings (`date_bin` over `readings`);
- one room's whole year of hourly means, rollups against raw;
- a building's room × hour heatmap over 31 days (`dashboard.pages.air.heatmap`);
- the overview page's layout (`dashboard.pages.overview.layout`: device counts, open
  incidents, stuffy rooms, leaks).

These are the callbacks' data parts in process: Dash's HTTP round trip and the browser's
drawing come on top (the browser tests see pages drawn in about a second on small data).
"""

from __future__ import annotations

import io
import math
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from core import rollups, tenants
from core.db import APP_ROLE
from core.settings import Settings
from dashboard.pages import air, overview
from dashboard.strings import STRINGS
from devices import service as devices
from devices.models import DeviceCreate

from .services import Services
from .stats import summarise

DATABASE = "bench_dashboard"
ROOMS_PER_SITE = 20
STEP = timedelta(minutes=10)
QUANTITIES = ("co2", "temperature", "humidity")
_RAW_HOURLY = """
SELECT date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour, quantity,
       avg(value)
FROM readings WHERE device_id = %s AND time >= %s AND time < %s
GROUP BY 1, 2 ORDER BY 1, 2
"""


def _value(quantity: str, moment: datetime, room: int) -> float:
    """A plausible reading: CO2 rising in class hours, a daily temperature swing."""
    local = moment.astimezone(ZoneInfo("Europe/Paris"))
    in_class = local.weekday() < 5 and 8 <= local.hour < 17
    if quantity == "co2":
        return 450.0 + (600.0 + 15.0 * (room % 60) if in_class else 0.0)
    if quantity == "temperature":
        return round(19.0 + 2.5 * math.sin(local.hour / 24 * 2 * math.pi), 2)
    return 45.0 + (room % 15)


def _seed(url: str, settings: Settings, rooms: int, end: datetime) -> dict[str, Any]:
    """The town, its rooms and a year of hourly readings; the rollup of the year, timed."""
    start = end - timedelta(days=365)
    with psycopg.connect(url) as conn:
        tenant = tenants.get_or_create(conn, tenants.TenantCreate(slug="ecoles", name="Écoles"))
        ids = []
        for n in range(rooms):
            site = f"École {n // ROOMS_PER_SITE + 1}"
            device = DeviceCreate(dev_eui=f"a81758ff{n:08x}", model="elsys-ers-co2",
                                  name=f"Salle {n + 1}", site=site)  # fmt: skip
            ids.append(devices.register(conn, settings, tenant_id=tenant, device=device)[1]["id"])
        conn.execute("UPDATE devices SET status = 'active', last_seen_at = %s", (end,))
        conn.commit()
        steps = [start + STEP * n for n in range(int(timedelta(days=365) / STEP))]
        started = time.perf_counter()
        with conn.cursor().copy(
            "COPY readings (time, tenant_id, device_id, quantity, value) FROM STDIN"
        ) as copy:
            for n, device_id in enumerate(ids):
                buffer = io.StringIO()
                for moment in steps:
                    stamp = moment.isoformat()
                    for quantity in QUANTITIES:
                        value = _value(quantity, moment, n)
                        buffer.write(f"{stamp}\t{tenant}\t{device_id}\t{quantity}\t{value}\n")
                copy.write(buffer.getvalue())
        conn.commit()
        copied = time.perf_counter() - started
        conn.execute("ANALYZE readings")
        started = time.perf_counter()
        rollups.refresh(conn, start=start, end=end)
        conn.commit()
        rolled = time.perf_counter() - started
        rows = conn.execute("SELECT count(*) FROM readings").fetchone()
    return {"tenant": tenant, "rooms": ids, "readings": rows[0] if rows else 0,
            "copy_s": copied, "rollup_s": rolled, "start": start}  # fmt: skip


def _as_town(url: str, tenant: int) -> psycopg.Connection:
    """A connection as the dashboards read: the application role, the town set."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.execute("SELECT set_config('civicsense.tenant_id', %s, false)", (str(tenant),))
    return conn


def _timed(work: Callable[[], object], repeats: int) -> dict[str, float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return summarise(times)


def run(
    services: Services, *, rooms: int, repeats: int, step: Callable[[str], float]
) -> dict[str, Any]:
    """The whole phase; returns its results."""
    url = services.database(DATABASE)
    settings = services.settings.model_copy(update={"database_url": url})
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    step(f"   seeding {rooms} rooms × a year of 10-minute CO2, temperature, humidity; rollup")
    seeded = _seed(url, settings, rooms, end)
    rng = random.Random(8)
    ids = seeded["rooms"]
    month_start, today = (end - timedelta(days=30)).date().isoformat(), end.date().isoformat()
    month = (end - timedelta(days=31), end)
    step(f"   timing the air page's data, {repeats} draws each")
    with _as_town(url, seeded["tenant"]) as conn:
        results = {
            "series_31d_rollup_s": _timed(
                lambda: air.series(conn, rng.choice(ids), month_start, today), repeats),
            "series_31d_raw_s": _timed(
                lambda: conn.execute(_RAW_HOURLY, (rng.choice(ids), *month)).fetchall(), repeats),
            "year_rollup_s": _timed(lambda: rollups.hourly(
                conn, device_ids=[rng.choice(ids)], start=seeded["start"], end=end), repeats),
            "year_raw_s": _timed(lambda: conn.execute(
                _RAW_HOURLY, (rng.choice(ids), seeded["start"], end)).fetchall(), repeats),
            "heatmap_31d_s": _timed(lambda: air.heatmap(
                conn, f"École {rng.randrange(max(1, rooms // ROOMS_PER_SITE)) + 1}", month_start,
                today), repeats),
            "overview_s": _timed(lambda: overview.layout(conn, STRINGS["fr"], "fr"), repeats),
        }  # fmt: skip
    return {"rooms": rooms, "readings": seeded["readings"], "copy_s": seeded["copy_s"],
            "rollup_year_s": seeded["rollup_s"], "repeats": repeats, **results}  # fmt: skip
