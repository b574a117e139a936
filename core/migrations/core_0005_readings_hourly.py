"""Hourly rollups of readings for the dashboards: a continuous aggregate on TimescaleDB,
a table kept by the `readings_hourly.*` jobs on plain PostgreSQL (see core.rollups)."""

from yoyo import step

from core import rollups

__depends__ = {"core_0004_scheduler"}

steps = [step(rollups.create)]
