"""Reading the decoded time series (shared by every package that shows readings)."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import dict_row

_LATEST = """
SELECT r.time, r.quantity, r.value
FROM readings r
WHERE r.device_id = %(device_id)s
  AND (%(quantity)s::text IS NULL OR r.quantity = %(quantity)s)
  AND (%(since)s::timestamptz IS NULL OR r.time >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR r.time < %(until)s)
ORDER BY r.time DESC, r.quantity
LIMIT %(limit)s
"""


def for_device(
    conn: psycopg.Connection,
    *,
    device_id: int,
    quantity: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, object]]:
    """Readings of one device, newest first."""
    params = {
        "device_id": device_id,
        "quantity": quantity,
        "since": since,
        "until": until,
        "limit": limit,
    }
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(_LATEST, params).fetchall()
