"""`civicsense backup` and `civicsense restore`: a round trip gives back every row of every
table, the sequences and the row-level security; a damaged dump or a non-empty target
is refused without touching anything."""

from __future__ import annotations

import hashlib
import json
import stat
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from core import audit, backup_tools, rollups, tenants
from core.cli import cli
from core.db import APP_ROLE, with_database
from core.embedded import EmbeddedPostgres
from core.events import EventBus
from core.settings import Settings
from ingest.pipeline import Pipeline
from parking import intake
from parking.session_models import SessionBatch
from tests.kit.catalog import SIRETS, add_catalogue, order_of
from tests.kit.folders import service_dir
from tests.kit.identity import SYSTEM, add_api_key, add_user
from tests.kit.incidents import opened
from tests.kit.parking import SENSOR_MODEL, parking_town
from tests.kit.uplinks import uplink

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)

Run = Callable[..., Result]


@pytest.fixture
def towns(conn: psycopg.Connection, settings: Settings) -> dict[str, int]:
    """Annecy and Lyon with bays, sensors that sent uplinks, users, an API key, parking
    sessions, an incident, a catalogue order, audit entries and hourly rollups."""
    add_catalogue(conn)
    ids = {}
    for slug in SIRETS:
        town = parking_town(conn, settings, slug=slug, bays=3)
        ids[slug] = town.tenant_id
        add_user(conn, tenant_id=town.tenant_id, email=f"agent@{slug}.fr", roles=["technician"])
        add_api_key(conn, tenant_id=town.tenant_id, permissions=["readings:read"])
        facts = {"id": "s1", "plate": "AB-123-CD", "zone": "Z1", "started_at": NOW.isoformat()}
        batch = SessionBatch.model_validate(
            {"station": "horodateur-1", "batch_id": "b1", "sessions": [facts]}
        )
        intake.apply_batch(conn, SYSTEM, town.tenant_id, batch)
        opened(conn, town.tenant_id, NOW)
        order_of(conn, town.tenant_id, siret=SIRETS[slug])
        audit.record(conn, SYSTEM, "test.seed", tenant_id=town.tenant_id)
        pipeline = Pipeline.from_settings(settings, EventBus())
        pipeline.start()
        try:
            for minute, sensor in enumerate(town.sensors.values()):
                at = NOW + timedelta(minutes=minute)
                pipeline.submit(uplink(sensor, SENSOR_MODEL, {"occupied": minute % 2}, at))
            assert pipeline.wait_idle(30)
        finally:
            pipeline.stop()
    rollups.refresh(conn, start=NOW - timedelta(hours=1), end=NOW + timedelta(hours=1))
    return ids


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """`civicsense ARGS...` against the database at `url`."""
    monkeypatch.chdir(tmp_path)  # no .env of the developer's

    def invoke(url: str, *args: str) -> Result:
        return CliRunner(env={"CIVICSENSE_DATABASE_URL": url}).invoke(cli, list(args))

    return invoke


@pytest.fixture
def empty_database(pg_admin_url: str) -> Iterator[str]:
    """A brand-new database on the test server, not migrated: where a restore goes."""
    name = f"cs_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def contents(url: str) -> dict[str, Any]:
    """What a database holds, computed independently of the commands under test: each
    table's row count and md5 of its ordered rows (every schema but the system's,
    partitions one by one), each sequence's value, the row-level security policies."""
    with psycopg.connect(url) as conn:
        tables = conn.execute(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
            " AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1"
        ).fetchall()
        checksums = {}
        for (table,) in tables:
            checksums[table] = conn.execute(
                sql.SQL(
                    "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text),"
                    " '')) FROM ONLY {} t"
                ).format(sql.SQL(table))
            ).fetchone()
        sequences = conn.execute(
            "SELECT schemaname, sequencename, last_value FROM pg_sequences ORDER BY 1, 2"
        ).fetchall()
        policies = conn.execute(
            "SELECT schemaname, tablename, policyname, roles::text[], cmd, qual, with_check"
            " FROM pg_policies ORDER BY 1, 2, 3"
        ).fetchall()
        secured = conn.execute(
            "SELECT relname FROM pg_class WHERE relrowsecurity ORDER BY 1"
        ).fetchall()
    return {"tables": checksums, "sequences": sequences, "policies": policies, "rls": secured}


def visible_to_app_role(url: str, tenant_id: int | None) -> dict[str, int]:
    """Rows the application role sees in a few tenant tables, with `tenant_id` set."""
    with psycopg.connect(url) as conn:
        conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(APP_ROLE)))
        conn.execute("SELECT set_config('civicsense.tenant_id', %s, true)", (str(tenant_id or ""),))
        seen = {}
        for table in ("tenants", "devices", "uplinks", "readings", "parking_sessions", "incidents"):
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            seen[table] = row.fetchone()[0]  # type: ignore[index]
    return seen


def rows_of_tenant(url: str, tenant_id: int) -> dict[str, int]:
    """What the owner counts of one tenant in the same tables."""
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE {} = %s").format(
                    sql.Identifier(table),
                    sql.Identifier("id" if table == "tenants" else "tenant_id"),
                ),
                (tenant_id,),
            ).fetchone()[0]  # type: ignore[index]
            for table in (
                "tenants",
                "devices",
                "uplinks",
                "readings",
                "parking_sessions",
                "incidents",
            )
        }


def test_restore_into_a_fresh_database_gives_back_every_row(
    run: Run, database_url: str, empty_database: str, towns: dict[str, int], tmp_path: Path
) -> None:
    dump = tmp_path / "civicsense.dump"
    saved = run(database_url, "backup", "--output", str(dump))
    assert saved.exit_code == 0, saved.output
    before = contents(database_url)

    manifest_path = tmp_path / "civicsense.dump.manifest.json"
    for path in (dump, manifest_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    manifest = json.loads(manifest_path.read_text())
    assert manifest["dump"]["sha256"] == hashlib.sha256(dump.read_bytes()).hexdigest()
    assert manifest["tables"] == {table: count for table, (count, _) in before["tables"].items()}
    assert manifest["tables"]["public.audit_log"] >= 2
    with psycopg.connect(database_url) as conn:
        applied = [r[0] for r in conn.execute("SELECT migration_id FROM _yoyo_migration")]
    assert sorted(manifest["migrations"]) == sorted(applied)
    assert "civicsense_app" in manifest["roles"]
    assert list(tmp_path.glob("*.part")) == []

    restored = run(empty_database, "restore", str(dump))
    assert restored.exit_code == 0, restored.output
    assert f"restored {len(manifest['tables'])} tables" in restored.output
    assert "public.parking_sessions" in restored.output

    after = contents(empty_database)
    assert after["tables"] == before["tables"]
    assert after["sequences"] == before["sequences"]
    assert after["policies"] == before["policies"] and after["rls"] == before["rls"]

    annecy, lyon = towns["annecy"], towns["lyon"]
    assert visible_to_app_role(empty_database, annecy) == rows_of_tenant(empty_database, annecy)
    assert visible_to_app_role(empty_database, lyon) == rows_of_tenant(empty_database, lyon)
    assert set(visible_to_app_role(empty_database, None).values()) == {0}
    assert rows_of_tenant(empty_database, annecy)["uplinks"] == 3


def test_a_damaged_dump_is_refused_and_the_target_left_as_it_was(
    run: Run, database_url: str, towns: dict[str, int], tmp_path: Path
) -> None:
    dump = tmp_path / "civicsense.dump"
    assert run(database_url, "backup", "-o", str(dump)).exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenants.create(conn, tenants.TenantCreate(slug="chambery", name="Chambéry"))
    changed = contents(database_url)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))

    refused = run(database_url, "restore", "--clean", str(dump))

    assert refused.exit_code != 0
    assert "does not match its manifest" in refused.output
    assert "nothing was restored" in refused.output
    assert contents(database_url) == changed


def test_a_database_with_tables_is_replaced_only_with_clean(
    run: Run, database_url: str, towns: dict[str, int], tmp_path: Path
) -> None:
    dump = tmp_path / "civicsense.dump"
    assert run(database_url, "backup", "-o", str(dump)).exit_code == 0
    saved = contents(database_url)
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenants.create(conn, tenants.TenantCreate(slug="chambery", name="Chambéry"))
        conn.execute("DELETE FROM parking_sessions WHERE tenant_id = %s", (towns["lyon"],))
    changed = contents(database_url)

    refused = run(database_url, "restore", str(dump))
    assert refused.exit_code != 0
    assert "already holds tables" in refused.output and "--clean" in refused.output
    assert contents(database_url) == changed

    replaced = run(database_url, "restore", "--clean", str(dump))
    assert replaced.exit_code == 0, replaced.output
    assert contents(database_url) == saved


def test_a_restore_that_fails_half_way_leaves_the_target_as_it_was(
    run: Run, database_url: str, towns: dict[str, int], tmp_path: Path
) -> None:
    """A dump cut short whose manifest was made to match: pg_restore fails after the
    schemas were dropped and part of the script ran; none of it may stay."""
    dump = tmp_path / "civicsense.dump"
    assert run(database_url, "backup", "-o", str(dump)).exit_code == 0
    with psycopg.connect(database_url, autocommit=True) as conn:
        tenants.create(conn, tenants.TenantCreate(slug="chambery", name="Chambéry"))
    changed = contents(database_url)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size * 3 // 4])
    manifest_path = tmp_path / "civicsense.dump.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["dump"]["sha256"] = hashlib.sha256(dump.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))

    failed = run(database_url, "restore", "--clean", str(dump))

    assert failed.exit_code != 0
    assert "pg_restore failed" in failed.output, failed.output
    assert contents(database_url) == changed


@pytest.fixture
def other_cluster() -> Iterator[str]:
    """A new PostgreSQL server that checks passwords (scram), as a real one does: no
    civicsense role exists in it yet. Its admin URL, password included."""
    with service_dir("pg-restore") as folder:
        server = EmbeddedPostgres(folder / "data", durable=False)
        server.start()
        try:
            with psycopg.connect(server.url, autocommit=True) as admin:
                admin.execute("ALTER ROLE postgres PASSWORD 'r3st:ore\\pw'")
                admin.execute("CREATE DATABASE civicsense")
            (folder / "data" / "pg_hba.conf").write_text(
                "host all all 127.0.0.1/32 scram-sha-256\n"
            )
            with psycopg.connect(server.url, autocommit=True) as admin:
                admin.execute("SELECT pg_reload_conf()")
            yield f"postgresql://postgres:r3st%3Aore%5Cpw@127.0.0.1:{server.port}/civicsense"
        finally:
            server.stop()


def test_restore_into_a_new_cluster_creates_the_application_role(
    run: Run, database_url: str, other_cluster: str, towns: dict[str, int], tmp_path: Path
) -> None:
    password = "r3st:ore\\pw"
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(other_cluster.replace("%3Aore", "wrong")).close()
    dump = tmp_path / "civicsense.dump"
    assert run(database_url, "backup", "-o", str(dump)).exit_code == 0

    restored = run(other_cluster, "restore", str(dump))

    assert restored.exit_code == 0, restored.output
    assert f"created role {APP_ROLE}" in restored.output
    assert password not in restored.output and "r3st%3Aore" not in restored.output
    assert contents(other_cluster)["tables"] == contents(database_url)["tables"]
    annecy = towns["annecy"]
    assert visible_to_app_role(other_cluster, annecy) == rows_of_tenant(other_cluster, annecy)
    tool = backup_tools.find("pg_restore", at_least=15)
    argv, kept_off = backup_tools.command(tool, other_cluster)
    assert kept_off == password and all(password not in arg for arg in argv)


def test_backup_refuses_a_pg_dump_older_than_the_server(
    run: Run, database_url: str, tmp_path: Path
) -> None:
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    server = backup_tools.server_major(row[0])  # type: ignore[index]
    older = sorted(
        folder
        for folder in Path("/usr/lib/postgresql").glob("*/bin")
        if (folder / "pg_dump").exists() and int(folder.parent.name) < server
    )
    if not older:
        pytest.skip(f"no pg_dump older than the server's PostgreSQL {server} here")
    dump = tmp_path / "civicsense.dump"

    refused = run(database_url, "backup", "-o", str(dump), "--pg-bin", str(older[0]))

    assert refused.exit_code != 0
    assert f"no pg_dump of PostgreSQL {server} or newer" in refused.output
    assert not dump.exists()
