"""Schema migrations with yoyo-migrations: plain SQL (and a few Python steps) per package.

Each installed package with a `migrations/` folder contributes files named
`<package>_<NNNN>_<what>.{sql,py}`; `-- depends:` / `__depends__` order them across
packages. Python steps exist where DDL depends on the server (time-series tables).
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import psycopg
from yoyo import get_backend, read_migrations

from . import timeseries
from .registry import modules
from .settings import Settings

log = logging.getLogger("civicsense.migrate")


@dataclass(frozen=True)
class _Context:
    settings: Settings


_context: ContextVar[_Context] = ContextVar("migration_context")


def yoyo_url(database_url: str) -> str:
    """yoyo's URL for psycopg 3: `postgresql+psycopg://...`."""
    scheme, sep, rest = database_url.partition("://")
    if not sep or scheme not in {"postgres", "postgresql", "postgresql+psycopg"}:
        raise ValueError("database URL must start with postgresql://")
    return f"postgresql+psycopg://{rest}"


def migration_dirs() -> list[str]:
    """Every installed package's migrations folder."""
    return [str(m.migrations_dir) for m in modules() if m.migrations_dir is not None]


@contextlib.contextmanager
def _settings_for_steps(settings: Settings) -> Iterator[None]:
    token = _context.set(_Context(settings))
    try:
        yield
    finally:
        _context.reset(token)


def pending(database_url: str) -> list[str]:
    """Ids of migrations not yet applied."""
    backend = get_backend(yoyo_url(database_url))
    try:
        return [m.id for m in backend.to_apply(read_migrations(*migration_dirs()))]
    finally:
        backend.connection.close()


def upgrade(settings: Settings, database_url: str | None = None) -> list[str]:
    """Apply pending migrations under yoyo's lock; returns the ids applied."""
    backend = get_backend(yoyo_url(database_url or settings.database_url))
    migrations = read_migrations(*migration_dirs())
    try:
        # yoyo prints the rows a step's SELECT returns (our helper calls' empty results)
        printed = io.StringIO()
        with backend.lock(), _settings_for_steps(settings), contextlib.redirect_stdout(printed):
            todo = backend.to_apply(migrations)
            backend.apply_migrations(todo)
        if printed.getvalue():
            log.debug("migration output:\n%s", printed.getvalue())
    finally:
        backend.connection.close()
    applied = [m.id for m in todo]
    for migration_id in applied:
        log.info("applied migration %s", migration_id)
    return applied


def create_time_table(
    conn: psycopg.Connection, table: timeseries.TimeTable, *, retention: str
) -> None:
    """Migration step: create a time table on the engine the server offers.

    `retention` names which retention setting applies ("raw" or "readings").
    """
    settings = _context.get().settings
    days = {"raw": settings.raw_retention_days, "readings": settings.readings_retention_days}
    table = dataclasses.replace(table, retention_days=days[retention])
    engine = timeseries.engine_for(conn, settings.timeseries)
    log.info("creating %s on %s", table.name, engine)
    timeseries.create(
        conn,
        table,
        engine=engine,
        interval_days=settings.chunk_interval_days,
        compress_after_days=settings.compress_after_days,
        partitions_ahead=settings.partitions_ahead,
    )
