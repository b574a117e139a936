"""Decoded readings (time, device, quantity, value): the platform's shared time series."""

from yoyo import step

from core.migrate import create_time_table
from core.timeseries import TimeTable

__depends__ = {"core_0001_base"}

READINGS = TimeTable(
    name="readings",
    columns="""
        time       timestamptz NOT NULL,
        tenant_id  bigint NOT NULL,
        device_id  bigint NOT NULL,
        quantity   text NOT NULL,
        value      double precision NOT NULL
    """,
    segment_by="device_id, quantity",
    indexes=("device_time:device_id, time DESC",),
)

steps = [step(lambda conn: create_time_table(conn, READINGS, retention="readings"))]
