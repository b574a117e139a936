"""The parking change channel: writers announce, the live feed listens.

Writers (occupancy from sensor readings, sessions, zone and bay edits) call
`announce` inside their transaction; PostgreSQL delivers the notification at commit,
to every process (the API may run apart from the ingest workers), and drops
duplicates within a transaction.
"""

from __future__ import annotations

import psycopg

CHANNEL = "civicsense_parking"


def announce(conn: psycopg.Connection, tenant_id: int) -> None:
    """Tell listeners that `tenant_id`'s bays may have changed (sent at commit)."""
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(tenant_id)))
