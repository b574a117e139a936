"""core's scheduled jobs."""

from __future__ import annotations

from . import rollups, timeseries
from .db import connect
from .settings import Settings


def maintain_timeseries(settings: Settings) -> None:
    """Apply the retention settings, create partitions ahead and drop expired ones (the
    last two on native PostgreSQL only: TimescaleDB runs its own policies)."""
    with connect(settings.database_url, autocommit=True) as conn:
        timeseries.apply_retention(
            conn,
            {"raw": settings.raw_retention_days, "readings": settings.readings_retention_days},
        )
        timeseries.maintain(conn, ahead=settings.partitions_ahead)


def rollup_recent_readings(settings: Settings) -> None:
    """Recompute the last hours of `readings_hourly`: fresh figures and most late readings
    within minutes (native PostgreSQL only; TimescaleDB refreshes its own aggregate)."""
    with connect(settings.database_url, autocommit=True) as conn:
        rollups.catch_up(conn, lookback=rollups.RECENT_WINDOW)


def rollup_late_readings(settings: Settings) -> None:
    """Recompute the last days of `readings_hourly`, for readings that came in later than
    the 5-minute run looks back (native PostgreSQL only)."""
    with connect(settings.database_url, autocommit=True) as conn:
        rollups.catch_up(conn, lookback=rollups.DEEP_WINDOW)
