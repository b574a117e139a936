"""PostgreSQL access: one connection pool per process, plain connections for workers."""

from __future__ import annotations

import psycopg
from psycopg_pool import ConnectionPool


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """A single connection (CLI commands, the ingest writer)."""
    return psycopg.connect(url, **kwargs)  # type: ignore[arg-type]


def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> ConnectionPool:
    """The process pool; opened in the ASGI lifespan, closed at shutdown."""
    pool = ConnectionPool(url, min_size=min_size, max_size=max_size, open=False)
    pool.open(wait=True, timeout=30)
    return pool
