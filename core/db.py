"""PostgreSQL access: one connection pool per process, plain connections for workers."""

from __future__ import annotations

import threading
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg_pool import ConnectionPool


def connect(url: str, **kwargs: object) -> psycopg.Connection:
    """A single connection (CLI commands, the ingest writer)."""
    return psycopg.connect(url, **kwargs)  # type: ignore[arg-type]


APP_ROLE = "civicsense_app"


def _as_app_role(conn: psycopg.Connection) -> None:
    conn.execute(f"SET ROLE {APP_ROLE}")
    conn.commit()


def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 10, app_role: bool = False
) -> ConnectionPool:
    """A pool opened in the ASGI lifespan, closed at shutdown.

    With `app_role`, every connection runs as `civicsense_app`, which owns no table:
    row-level security applies, and the tenant is set per transaction
    (`core.identity.principal.tenant_conn`).
    """
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        open=False,
        configure=_as_app_role if app_role else None,
    )
    pool.open(wait=True, timeout=30)
    return pool


def with_database(url: str, name: str) -> str:
    """`url` (postgresql://...) pointing at database `name` instead."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def with_port(url: str, port: int) -> str:
    """`url` with another port on the same host."""
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = netloc[-1].rsplit(":", 1)[0] if not netloc[-1].endswith("]") else netloc[-1]
    netloc[-1] = f"{host}:{port}"
    return urlunsplit(parts._replace(netloc="@".join(netloc)))


class ThreadConnections:
    """One connection per thread, opened on first use and again after it broke.

    For event-bus subscribers: they run in the publisher's thread (each ingest worker has
    its own), so a connection must not be shared across threads.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def get(self) -> psycopg.Connection:
        """This thread's connection."""
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self.url)
            self._local.conn = conn
        return conn
