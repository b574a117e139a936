"""Session-wide real services: one PostgreSQL and one MQTT broker, a database per test.

PostgreSQL is the embedded one unless CIVICSENSE_TEST_DATABASE_URL points at a
server (e.g. the machine's PostgreSQL 15); each test gets a fresh database cloned
from a migrated template, which is fast and fully isolated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from core import migrate
from core.db import with_database
from core.embedded import EmbeddedBroker, EmbeddedPostgres
from core.events import EventBus
from core.settings import Settings
from ingest.pipeline import Pipeline
from tests.kit.folders import service_dir

TEMPLATE = f"cs_template_{os.getpid()}"


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    """An admin URL of the session's PostgreSQL server."""
    external = os.environ.get("CIVICSENSE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    with service_dir("pg") as folder:
        server = EmbeddedPostgres(folder / "data", durable=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


def base_settings(**overrides: object) -> Settings:
    """Settings for tests: nothing read from the environment but what is given."""
    values: dict[str, object] = {
        "http_ingest_token": "test-ingest-token",
        "secret_key": "q1o4l7oQ5d0sE6S3C0mQbq1a9rZKDw8LMRS0iVt1H6w=",
        "batch_max_age_ms": 50,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> Iterator[str]:
    """A migrated database that every test database is cloned from."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(TEMPLATE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(TEMPLATE)))
    url = with_database(pg_admin_url, TEMPLATE)
    migrate.upgrade(base_settings(database_url=url), url)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(TEMPLATE))
        )


@pytest.fixture
def database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh, migrated database for one test."""
    name = f"cs_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            # FILE_COPY: copying the template's files beats WAL-logging them, 2-3x (the
            # whole suite makes a database per test)
            sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(TEMPLATE)
            )
        )
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def settings(database_url: str) -> Settings:
    """Settings pointing at this test's database."""
    return base_settings(database_url=database_url)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to this test's database."""
    with psycopg.connect(database_url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def pipeline(settings: Settings) -> Iterator[Pipeline]:
    """The ingest pipeline on this test's database, with the installed packages' subscribers."""
    running = Pipeline.from_settings(settings, EventBus())
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """The session's MQTT broker (mosquitto when installed, else amqtt; or as forced by
    CIVICSENSE_TEST_BROKER=amqtt)."""
    prefer = os.environ.get("CIVICSENSE_TEST_BROKER", "auto")
    with service_dir("mqtt") as folder:
        server = EmbeddedBroker(folder, prefer=prefer)
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def shared_dir() -> Path:
    """The shared/ folder with vendor vectors and ChirpStack events."""
    folder = Path(os.environ.get("CIVICSENSE_SHARED_DIR", Path(__file__).parents[2] / "shared"))
    if not (folder / "chirpstack-events").is_dir():
        message = f"shared fixtures not found in {folder} (set CIVICSENSE_SHARED_DIR)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return folder


@pytest.fixture
def timescale_url() -> Iterator[str]:
    """A fresh database on the TimescaleDB server of CIVICSENSE_TEST_TIMESCALE_URL."""
    admin_url = os.environ.get("CIVICSENSE_TEST_TIMESCALE_URL")
    if not admin_url:
        pytest.skip("set CIVICSENSE_TEST_TIMESCALE_URL to a TimescaleDB server to run this test")
    name = f"cs_tsdb_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
