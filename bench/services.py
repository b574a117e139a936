"""The real services under test: an embedded, durable PostgreSQL and a mosquitto broker."""

from __future__ import annotations

import contextlib
import io
import platform
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from core import migrate
from core.db import with_database
from core.embedded import EmbeddedBroker, EmbeddedPostgres
from core.mqtt import new_client
from core.settings import Settings

INGEST_TABLES = ("uplinks", "device_events", "readings", "ingest_rejects")


@dataclass
class Services:
    """Running PostgreSQL and broker, and the settings that point at them."""

    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    settings: Settings

    @property
    def database_url(self) -> str:
        """The benchmark database (the server's `postgres` database, migrated)."""
        return self.settings.database_url

    def database(self, name: str) -> str:
        """A fresh, migrated database `name` on the same server (dropped first); its URL."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            ident = sql.Identifier(name)
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
        url = with_database(self.database_url, name)
        with contextlib.redirect_stdout(io.StringIO()):  # yoyo prints its SELECTs' results
            migrate.upgrade(self.settings, url)
        return url

    def reset(self) -> None:
        """Empty the ingest tables and checkpoint, so every phase starts alike."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f"TRUNCATE {', '.join(INGEST_TABLES)}")
            conn.execute("CHECKPOINT")

    def counts(self) -> dict[str, int]:
        """Rows in each ingest table."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            return {
                table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
                for table in INGEST_TABLES
            }

    def forget_sessions(self, *client_ids: str) -> None:
        """End these clients' persistent broker sessions (and shared-group memberships).

        A stopped worker's session stays subscribed and would queue a copy of every later
        phase's messages: connecting with a clean start and no session expiry ends it.
        """
        for client_id in client_ids:
            client, address = new_client(self.settings.mqtt_url, client_id)
            connected = threading.Event()
            client.on_connect = lambda *_, done=connected: done.set()
            client.connect(address.host, address.port)
            client.loop_start()
            try:
                if not connected.wait(10):
                    raise ConnectionError(f"the broker did not accept {client_id}")
            finally:
                client.disconnect()
                client.loop_stop()

    def processes(self) -> dict[str, list[psutil.Process]]:
        """The broker's and PostgreSQL's processes right now (for CPU accounting)."""
        broker = [p for p in psutil.Process().children() if p.name() == "mosquitto"]
        pid_file = self.postgres.data_dir / "postmaster.pid"
        postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
        return {"mosquitto": broker, "postgres": [postmaster, *postmaster.children(True)]}

    def versions(self) -> dict[str, str]:
        """Server and broker versions, for the report."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            fsync = conn.execute("SHOW fsync").fetchone()
            sync_commit = conn.execute("SHOW synchronous_commit").fetchone()
        mosquitto = subprocess.run(
            ["mosquitto", "-h"], capture_output=True, text=True, check=False
        ).stdout.splitlines()
        return {
            "postgresql": row[0] if row else "?",
            "postgresql_fsync": fsync[0] if fsync else "?",
            "postgresql_synchronous_commit": sync_commit[0] if sync_commit else "?",
            "broker": self.broker.kind,
            "mosquitto": mosquitto[0] if mosquitto else "n/a",
            "python": platform.python_version(),
        }


@contextlib.contextmanager
def running(data_dir: Path, **knobs: object) -> Iterator[Services]:
    """Start PostgreSQL (fsync on) and the broker in `data_dir`, migrate, yield, stop."""
    postgres = EmbeddedPostgres(data_dir / "pg", durable=True)
    broker = EmbeddedBroker(data_dir / "mqtt")
    postgres.start()
    try:
        broker.start()
        try:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                database_url=postgres.url,
                mqtt_url=broker.url,
                data_dir=str(data_dir),
                **knobs,  # type: ignore[arg-type]
            )
            with contextlib.redirect_stdout(io.StringIO()):  # yoyo prints its SELECTs
                migrate.upgrade(settings, postgres.url)
            yield Services(postgres, broker, settings)
        finally:
            broker.stop()
    finally:
        postgres.stop()
