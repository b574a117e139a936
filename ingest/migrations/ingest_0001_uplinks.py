"""Raw uplinks (the evidence) and other device events (join, status, log)."""

from yoyo import step

from core.migrate import create_time_table
from core.timeseries import TimeTable

__depends__ = {"core_0002_readings", "devices_0001_devices"}

UPLINKS = TimeTable(
    name="uplinks",
    columns="""
        time              timestamptz NOT NULL,
        tenant_id         bigint NOT NULL,
        device_id         bigint NOT NULL,
        dev_eui           text NOT NULL,
        dedup_id          uuid NOT NULL,
        f_cnt             bigint,
        f_port            integer,
        payload           bytea,
        confirmed         boolean,
        dr                integer,
        adr               boolean,
        frequency         bigint,
        spreading_factor  integer,
        bandwidth         integer,
        gateway_id        text,
        rssi              integer,
        snr               real,
        gateway_count     integer NOT NULL DEFAULT 0,
        rx_info           jsonb,
        received_at       timestamptz NOT NULL DEFAULT now(),
        UNIQUE (dedup_id, time)
    """,
    indexes=("device_time:device_id, time DESC",),
)

DEVICE_EVENTS = TimeTable(
    name="device_events",
    columns="""
        time        timestamptz NOT NULL,
        tenant_id   bigint NOT NULL,
        device_id   bigint NOT NULL,
        dev_eui     text NOT NULL,
        kind        text NOT NULL CHECK (kind IN ('join', 'status', 'log')),
        event_key   text NOT NULL,
        body        jsonb NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (event_key, kind, time)
    """,
    indexes=("device_time:device_id, time DESC",),
)

steps = [
    step(lambda conn: create_time_table(conn, UPLINKS, retention="raw")),
    step(lambda conn: create_time_table(conn, DEVICE_EVENTS, retention="raw")),
]
