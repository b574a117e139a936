"""core's scheduled jobs."""

from __future__ import annotations

from . import timeseries
from .db import connect
from .settings import Settings


def maintain_timeseries(settings: Settings) -> None:
    """Create partitions ahead and drop expired ones (native PostgreSQL only)."""
    with connect(settings.database_url, autocommit=True) as conn:
        timeseries.maintain(conn, ahead=settings.partitions_ahead)
