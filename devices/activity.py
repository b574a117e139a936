"""Device lifecycle from traffic: `active` at the first uplink, `silent` when a device has
sent nothing for 3 × its expected uplink interval, `active` again when it speaks.

Ingest calls `mark_seen` inside each batch's transaction (one statement per batch);
`mark_silent` runs as a scheduled job. The expected interval is the device's own
(`expected_interval_s`) or its model's (`devices.device_models`): conservative values (a
parking or leak sensor that only reports changes still sends a daily heartbeat), so that a
quiet street is not taken for a dead sensor. Set the device's interval where a fleet reports
more often and silence must be noticed sooner.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from core.settings import Settings

from .device_models import uplink_intervals

log = logging.getLogger("civicsense.devices.activity")

SILENT_AFTER_INTERVALS = 3
DEFAULT_INTERVAL_S = 3600

# Rows are locked in id order first: two ingest workers stamping overlapping devices
# then wait for each other instead of deadlocking. An active device's stamp moves only when
# it gains a minute or more (silence is counted in tens of minutes; the exact last uplink
# is in `uplinks`), so a burst of uplinks does not rewrite the same rows batch after batch.
_SEEN = """
WITH seen(id, at) AS (SELECT * FROM unnest(%s::bigint[], %s::timestamptz[])),
     locked AS (SELECT d.id FROM devices d JOIN seen USING (id)
                WHERE d.status <> 'decommissioned'
                  AND (d.status <> 'active' OR d.last_seen_at IS NULL
                       OR seen.at >= d.last_seen_at + interval '1 minute')
                ORDER BY d.id FOR UPDATE OF d)
UPDATE devices d
SET last_seen_at = greatest(d.last_seen_at, seen.at),
    status = CASE WHEN d.status IN ('registered', 'provisioned', 'silent') THEN 'active'
                  ELSE d.status END
FROM seen JOIN locked USING (id)
WHERE d.id = seen.id
"""

_SILENT = """
UPDATE devices
SET status = 'silent', updated_at = now()
WHERE status = 'active'
  AND last_seen_at < now() - make_interval(secs => %s * coalesce(
        expected_interval_s, (%s::jsonb ->> model)::integer, %s))
RETURNING tenant_id, dev_eui
"""


def mark_seen(cur: psycopg.Cursor, seen: Iterable[tuple[int, datetime]]) -> None:
    """Stamp the latest uplink time of each (device id, time); wake silent devices."""
    latest: dict[int, datetime] = {}
    for device_id, at in seen:
        if device_id not in latest or at > latest[device_id]:
            latest[device_id] = at
    if latest:
        cur.execute(_SEEN, (list(latest), list(latest.values())))


def mark_silent(conn: psycopg.Connection) -> list[tuple[int, str]]:
    """Mark active devices silent past 3 × their interval; (tenant id, DevEUI) of each."""
    rows = conn.execute(
        _SILENT, (SILENT_AFTER_INTERVALS, Jsonb(uplink_intervals()), DEFAULT_INTERVAL_S)
    ).fetchall()
    return [(int(tenant_id), str(dev_eui)) for tenant_id, dev_eui in rows]


def run_job(settings: Settings) -> None:
    """Scheduled job: the devices that went silent since the last run (privileged path)."""
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        silent = mark_silent(conn)
    if silent:
        log.info("%d device(s) went silent: %s", len(silent), ", ".join(e for _, e in silent))
