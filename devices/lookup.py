"""Resolve DevEUIs to registered devices, with a small time-limited cache.

Public on purpose: ingest resolves every uplink through it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

_QUERY = """
SELECT dev_eui, id, tenant_id, model, status
FROM devices
WHERE dev_eui = ANY(%s) AND status <> 'decommissioned'
"""


@dataclass(frozen=True, slots=True)
class DeviceRef:
    """What the pipeline needs to know about a device."""

    id: int
    tenant_id: int
    dev_eui: str
    model: str
    status: str


class DeviceCache:
    """DevEUI → DeviceRef; known devices are kept `ttl` seconds, unknown ones less.

    An unknown DevEUI is remembered only briefly so that a device registered
    while uplinks are arriving is picked up within seconds.
    """

    def __init__(self, ttl: float = 30.0, unknown_ttl: float = 2.0) -> None:
        self.ttl = ttl
        self.unknown_ttl = min(unknown_ttl, ttl)
        self._entries: dict[str, tuple[float, DeviceRef | None]] = {}
        self._lock = threading.Lock()

    def resolve(self, conn: psycopg.Connection, dev_euis: Iterable[str]) -> dict[str, DeviceRef]:
        """The registered devices among `dev_euis` (one query for the cache misses)."""
        now = time.monotonic()
        found: dict[str, DeviceRef] = {}
        missing = []
        with self._lock:
            for dev_eui in set(dev_euis):
                entry = self._entries.get(dev_eui)
                if entry is not None and entry[0] > now:
                    if entry[1] is not None:
                        found[dev_eui] = entry[1]
                else:
                    missing.append(dev_eui)
        if not missing:
            return found
        rows = conn.execute(_QUERY, (missing,)).fetchall()
        fetched = {row[0]: DeviceRef(row[1], row[2], row[0], row[3], row[4]) for row in rows}
        with self._lock:
            for dev_eui in missing:
                ref = fetched.get(dev_eui)
                self._entries[dev_eui] = (now + (self.ttl if ref else self.unknown_ttl), ref)
        found.update(fetched)
        return found
