"""The parking change channel: writers announce, the live feed listens.

Writers (occupancy from sensor readings, sessions, zone and bay edits) call
`announce` inside their transaction with the zones they touched; PostgreSQL delivers
the notification at commit, to every process (the API may run apart from the ingest
workers), and drops duplicates within a transaction. The payload is the tenant id,
then the zone ids after a colon (`12:3,7`); a bare tenant id means any of its zones
may have changed, so that the live feed recomputes only what a change touched.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

CHANNEL = "civicsense_parking"
MAX_ZONES = 500
"""More zones than this in one announcement are sent as 'any zone' (a payload is < 8 kB)."""


def announce(
    conn: psycopg.Connection, tenant_id: int, zone_ids: Iterable[int] | None = None
) -> None:
    """Tell listeners that bays of `tenant_id` in `zone_ids` may have changed (sent at
    commit); without zones, or with too many, any of the tenant's bays."""
    payload = str(tenant_id)
    zones = sorted(set(zone_ids or ()))
    if 0 < len(zones) <= MAX_ZONES:
        payload += ":" + ",".join(map(str, zones))
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def parse(payload: str) -> tuple[int, frozenset[int] | None] | None:
    """(tenant id, zone ids or None for any) from a payload; None if it is not one."""
    tenant, _, zones = payload.partition(":")
    if not tenant.isdigit():
        return None
    if not zones:
        return int(tenant), None
    ids = zones.split(",")
    if not all(zone.isdigit() for zone in ids):
        return int(tenant), None  # garbled zones: take the whole tenant as changed
    return int(tenant), frozenset(map(int, ids))
