"""What the workers' PostgreSQL sessions are doing, sampled from pg_stat_activity."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg

# every client backend but the sampler's: idle ones (between batches) are counted too
_QUERY = """
SELECT CASE WHEN state <> 'active' THEN 'idle'
            ELSE coalesce(wait_event_type || ':' || wait_event, 'running') END
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
_DEADLOCKS = "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"


class PgWaits:
    """Samples the wait event of every other client backend at `hz` until stop().

    A sample per backend: `idle` (no statement), `running` (on CPU) or the wait event
    (`Lock:transactionid` would be one worker waiting for the other's transaction,
    `IO:WalSync` / `LWLock:WALWrite` the commit's fsync, `Client:ClientRead` the COPY).
    """

    def __init__(self, database_url: str, *, hz: float = 20.0) -> None:
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._interval = 1 / hz
        self._stop = threading.Event()
        self.samples: Counter[str] = Counter()
        self._deadlocks = self._deadlock_count()
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)
        self._thread.start()

    def _deadlock_count(self) -> int:
        row = self._conn.execute(_DEADLOCKS).fetchone()
        return int(row[0]) if row else 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.samples.update(row[0] for row in self._conn.execute(_QUERY).fetchall())

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the counts by state/wait event, and deadlocks since start."""
        self._stop.set()
        self._thread.join()
        deadlocks = self._deadlock_count() - self._deadlocks
        self._conn.close()
        return {"samples": dict(self.samples.most_common()), "deadlocks": deadlocks}
