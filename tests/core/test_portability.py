"""Reversibility: `civicsense export` writes a town's data, secrets aside, and `civicsense
import` loads it into an empty instance row for row; altered archives and second imports
are refused with nothing written."""

from __future__ import annotations

import base64
import io
import json
import tarfile
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from alerts.workflow import Transition
from core import rollups
from core.cli import cli
from core.db import with_database
from core.identity.passwords import verify_password
from core.portability import tables
from core.portability.archive import MANIFEST
from core.settings import Settings
from tests.core.identity.test_tenant_isolation import NOW, _seed_tenant
from tests.kit.identity import PASSWORD, add_user, enable_totp
from tests.kit.incidents import opened

APP_KEY = "00112233445566778899aabbccddeeff"  # the AppKey _seed_tenant registers
READINGS = 2000


@dataclass(frozen=True)
class Source:
    """Two towns with rows everywhere; annecy is exported."""

    url: str
    annecy: int
    lyon: int
    secrets: list[bytes]  # what must not appear in the archive, in any encoding


@pytest.fixture
def source(conn: psycopg.Connection, settings: Settings, database_url: str) -> Source:
    """Annecy and Lyon seeded in every tenant table; Annecy also with a second factor, an
    operator who issued its API key, an incident with a history and a day of readings."""
    annecy, lyon = (
        _seed_tenant(conn, settings, "annecy", 1),
        _seed_tenant(conn, settings, "lyon", 2),
    )
    agent = conn.execute("SELECT id FROM users WHERE email = 'agent@annecy.fr'").fetchone()
    assert agent is not None
    totp = enable_totp(conn, settings, agent[0])
    operator = add_user(conn, tenant_id=None, email="ops@operateur.fr", roles=["platform_admin"])
    conn.execute(
        "UPDATE api_keys SET created_by = %s WHERE tenant_id = %s", (operator["id"], annecy)
    )
    opened(conn, annecy, NOW, steps=((Transition.ACKNOWLEDGE, NOW + timedelta(minutes=5)),),
           title="Capteur muet, parking Bonlieu")  # fmt: skip
    conn.execute(
        "INSERT INTO readings (time, tenant_id, device_id, quantity, value)"
        " SELECT %s - n * interval '1 minute', tenant_id, id, 'temperature', 20 + n / 100.0"
        " FROM devices, generate_series(1, %s) n WHERE tenant_id = %s",
        (NOW, READINGS, annecy),
    )
    rollups.refresh(conn, start=NOW - timedelta(days=2), end=NOW + timedelta(hours=1))
    secrets = [APP_KEY.encode(), APP_KEY.upper().encode(), totp.secret.encode(), b"s3cr3t"]
    for query in (
        "SELECT password_hash::bytea FROM users",
        "SELECT totp_secret FROM users WHERE totp_secret IS NOT NULL",
        "SELECT app_key_encrypted FROM devices",
        "SELECT secret_hash FROM api_keys",
        "SELECT secret_encrypted FROM payment_providers",
        "SELECT secret_encrypted FROM notification_routes",
    ):
        secrets += [bytes(row[0]) for row in conn.execute(query)]
    return Source(database_url, annecy, lyon, secrets)


@pytest.fixture
def empty_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A second instance: a fresh migrated database, empty."""
    name = f"cs_target_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(urlsplit(template_url).path.lstrip("/"))
            )
        )
    yield with_database(pg_admin_url, name)
    with psycopg.connect(pg_admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def civicsense(url: str, *args: str) -> Result:
    """Run the `civicsense` command against the database at `url`."""
    return CliRunner().invoke(cli, ["--database-url", url, *args], catch_exceptions=False)


def export(source: Source, folder: Path) -> Path:
    """Annecy's archive."""
    archive = folder / "annecy.tar.gz"
    result = civicsense(source.url, "export", "--tenant", "annecy", "--output", str(archive))
    assert result.exit_code == 0, result.output
    return archive


def members(archive: Path) -> dict[str, bytes]:
    """Every file of the archive, by its path below the top folder."""
    with tarfile.open(archive, "r:gz") as tar:
        return {
            m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def snapshot(url: str, manifest: dict, tenant_id: int) -> dict[str, tuple[Counter, Counter]]:
    """Per exported table and on its exported columns: the tenant's rows, and the rows of
    no tenant (shared or operators'), as JSON texts."""
    found = {}
    with psycopg.connect(url) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        for entry in manifest["files"]:
            if entry["table"] is None:
                continue
            columns = sql.SQL(", ").join(map(sql.Identifier, entry["columns"]))
            tenant_column = "id" if entry["table"] == "tenants" else "tenant_id"
            has_tenant = tenant_column in entry["columns"]
            query = sql.SQL("SELECT to_jsonb(x)::text, {} FROM (SELECT {} FROM {}) x").format(
                sql.Identifier("x", tenant_column) if has_tenant else sql.SQL("NULL::bigint"),
                columns,
                sql.Identifier(entry["table"]),
            )
            rows = conn.execute(query).fetchall()
            found[entry["table"]] = (
                Counter(text for text, owner in rows if owner == tenant_id),
                Counter(text for text, owner in rows if owner is None),
            )
    return found


def test_round_trip_restores_every_row_and_nothing_secret_or_of_another_town(
    source: Source, empty_url: str, tmp_path: Path
) -> None:
    archive = export(source, tmp_path)
    files = members(archive)
    manifest = json.loads(files[MANIFEST])
    before = snapshot(source.url, manifest, source.annecy)

    data = {e["table"]: e for e in manifest["files"] if e["table"]}
    assert manifest["tenant"]["slug"] == "annecy" and "README.md" in files
    assert {"readings", "uplinks", "devices", "parking_sessions", "incident_events",
            "incident_attachments", "catalog_orders", "catalog_solution_versions",
            "audit_log", "users", "user_roles"} <= set(data)  # fmt: skip
    assert data["readings"]["rows"] == READINGS + 1
    assert "readings_hourly" not in data
    empty = sorted(table for table, entry in data.items() if entry["rows"] == 0)
    assert empty == [], "seed these tables: the round trip would not cover them"
    assert "password_hash" not in data["users"]["columns"]
    header = files["data/users.csv"].split(b"\n", 1)[0].decode()
    assert header.split(",") == data["users"]["columns"]
    schema = json.loads(files["schema/devices.json"])
    assert {"app_key_encrypted"} <= set(schema["excludedColumns"])

    blob = b"".join(files.values())
    for secret in source.secrets:
        for form in (secret, base64.b64encode(secret), secret.hex().encode()):
            assert form not in blob
    assert b"@lyon.fr" not in blob and b"Ville lyon" not in blob

    result = civicsense(empty_url, "import", str(archive))
    assert result.exit_code == 0, result.output
    assert "imported tenant annecy" in result.output
    assert "user account(s) have no password" in result.output

    after = snapshot(empty_url, manifest, source.annecy)
    before["audit_log"][0].subtract(_one_action(before["audit_log"][0], "tenant.export"))
    after["audit_log"][0].subtract(_one_action(after["audit_log"][0], "tenant.import"))
    for table, (owned, shared) in after.items():
        assert +owned == +before[table][0], table
        assert not shared - before[table][1], table  # nothing shared that was not there
    with psycopg.connect(empty_url) as target:
        towns = target.execute("SELECT slug FROM tenants").fetchall()
        assert towns == [("annecy",)]
        hourly = "SELECT count(*), sum(sum_value) FROM readings_hourly WHERE tenant_id = %s"
        restored = target.execute(hourly, (source.annecy,)).fetchone()
        hashes = target.execute("SELECT password_hash FROM users").fetchall()
        assert not any(verify_password(h, PASSWORD) for (h,) in hashes)
        # sequences moved past the imported ids: new rows get new ids
        newcomer = add_user(
            target, tenant_id=source.annecy, email="new@annecy.fr", roles=["viewer"]
        )
        assert newcomer["id"] > max(json.loads(r)["id"] for r in after["users"][0])
    with psycopg.connect(source.url) as origin:
        assert origin.execute(hourly, (source.annecy,)).fetchone() == restored


def _one_action(audit_rows: Counter, action: str) -> Counter:
    """The one audit entry of `action` among the rows."""
    found = Counter(row for row in audit_rows if json.loads(row)["action"] == action)
    assert sum(found.values()) == 1, action
    return found


def _count_everything(url: str) -> tuple[int, int]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM audit_log)"
        ).fetchone()
    assert row is not None
    return row


def _rewrite(archive: Path, target: Path, change: dict[str, bytes]) -> None:
    """A copy of `archive` with some files' contents replaced (the manifest unchanged)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as out:
        for member in src.getmembers():
            content = src.extractfile(member).read()  # type: ignore[union-attr]
            content = change.get(member.name.split("/", 1)[1], content)
            member.size = len(content)
            out.addfile(member, io.BytesIO(content))


def test_altered_or_truncated_archive_is_refused_with_nothing_written(
    source: Source, empty_url: str, tmp_path: Path
) -> None:
    archive = export(source, tmp_path)
    devices = members(archive)["data/devices.csv"]
    altered = tmp_path / "altered.tar.gz"
    _rewrite(archive, altered, {"data/devices.csv": devices.replace(b"chaufferie", b"chaufferiE")})
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    before = _count_everything(empty_url)

    result = civicsense(empty_url, "import", str(altered))
    assert result.exit_code != 0
    assert "data/devices.csv does not match its checksum" in result.output
    result = civicsense(empty_url, "import", str(truncated))
    assert result.exit_code != 0
    assert "cannot be read" in result.output
    assert _count_everything(empty_url) == before


def test_importing_twice_is_refused(source: Source, empty_url: str, tmp_path: Path) -> None:
    archive = export(source, tmp_path)
    assert civicsense(empty_url, "import", str(archive)).exit_code == 0
    before = _count_everything(empty_url)

    result = civicsense(empty_url, "import", str(archive))
    assert result.exit_code != 0
    assert "tenant 'annecy' already exists" in result.output
    assert _count_everything(empty_url) == before


def test_overlapping_ids_are_refused(source: Source, empty_url: str, tmp_path: Path) -> None:
    """Another town already holds annecy's tenant id in the target: nothing is loaded."""
    archive = export(source, tmp_path)
    assert (
        civicsense(empty_url, "tenant", "create", "chamonix", "--name", "Chamonix").exit_code == 0
    )
    before = _count_everything(empty_url)

    result = civicsense(empty_url, "import", str(archive))
    assert result.exit_code != 0
    assert "tenants: rows collide with rows already in this instance" in result.output
    assert _count_everything(empty_url) == before


def test_every_column_that_looks_secret_is_reviewed(conn: psycopg.Connection) -> None:
    exported = tables.tenant_tables(conn)
    assert tables.unreviewed_columns(exported) == []
    columns = {(t.name, c.name) for t in exported for c in t.columns}
    listed = {(t, c) for t, cs in tables.SECRET_COLUMNS.items() for c in cs}
    assert listed | set(tables.ALLOWED_COLUMNS) <= columns, "stale entries in the review lists"


def test_export_stops_at_an_unreviewed_secret_looking_column(
    source: Source, conn: psycopg.Connection, tmp_path: Path
) -> None:
    conn.execute("ALTER TABLE devices ADD COLUMN nwk_key text")
    result = civicsense(source.url, "export", "--tenant", "annecy", "--output", str(tmp_path / "a"))
    assert result.exit_code != 0
    assert "devices.nwk_key" in result.output
    assert not (tmp_path / "a").exists()
