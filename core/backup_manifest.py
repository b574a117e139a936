"""The manifest written beside a backup, and the database facts it records.

`<dump>.manifest.json` says what the dump holds (per-table row counts, applied
migrations, server and tool versions) and its sha256, so that a restore can refuse a
damaged or altered file before touching anything, then check what it restored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql

FORMAT = "civicsense-backup/1"

# Tables of the application: not the system's, not temporary, not an extension's own
# (TimescaleDB's catalogue is restored by the extension, not counted here).
_TABLES = """
SELECT n.nspname, c.relname
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
      SELECT FROM pg_depend d
      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""

# Roles the schema grants to or names in its policies: they live in the cluster, not in
# the dump, and must exist before a restore.
_GRANTEES = """
SELECT DISTINCT r.rolname
FROM (
    SELECT unnest(polroles) AS grantee, NULL::oid AS owner FROM pg_policy
    UNION ALL
    SELECT (aclexplode(c.relacl)).grantee, c.relowner
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
    UNION ALL
    SELECT (aclexplode(nspacl)).grantee, nspowner FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
) AS granted
JOIN pg_roles r ON r.oid = granted.grantee
WHERE r.oid IS DISTINCT FROM granted.owner AND r.rolname NOT LIKE 'pg\\_%'
ORDER BY 1
"""


def path_of(dump: Path) -> Path:
    """Where the manifest of `dump` lives."""
    return dump.with_name(dump.name + ".manifest.json")


def row_counts(conn: psycopg.Connection) -> dict[str, int]:
    """Rows of every application table (partitions one by one, `schema.table` -> rows)."""
    counts = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        query = sql.SQL("SELECT count(*) FROM ONLY {}").format(sql.Identifier(schema, table))
        row = conn.execute(query).fetchone()
        counts[f"{schema}.{table}"] = int(row[0]) if row else 0
    return counts


def is_empty(conn: psycopg.Connection) -> bool:
    """True when the database holds no application table yet."""
    return conn.execute(f"SELECT NOT EXISTS ({_TABLES})").fetchone() == (True,)


def database_facts(conn: psycopg.Connection) -> dict[str, Any]:
    """What a manifest says about the database (read in the dump's snapshot)."""
    version = conn.execute(
        "SELECT current_setting('server_version'), current_setting('server_version_num')::int"
    ).fetchone()
    assert version is not None
    timescaledb = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    has_yoyo = conn.execute("SELECT to_regclass('_yoyo_migration') IS NOT NULL").fetchone()
    migrations = (
        [
            row[0]
            for row in conn.execute(
                "SELECT migration_id FROM _yoyo_migration ORDER BY applied_at_utc, migration_id"
            )
        ]
        if has_yoyo == (True,)
        else []
    )
    return {
        "server_version": version[0],
        "server_version_num": version[1],
        "timescaledb": timescaledb[0] if timescaledb else None,
        "migrations": migrations,
        "roles": [row[0] for row in conn.execute(_GRANTEES)],
        "tables": row_counts(conn),
    }


def sha256_of(path: Path) -> str:
    """The sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def civicsense_version() -> str:
    """The installed civicsense distribution's version."""
    try:
        return metadata.version("civicsense")
    except metadata.PackageNotFoundError:
        return "unknown"


def write_private(path: Path, write: Any) -> None:
    """Create `path` with mode 0600, atomically: `write(temp_path)` fills a temporary file
    beside it, which then replaces `path` in one rename."""
    handle, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(handle)  # mkstemp makes it 0600
    try:
        write(Path(temp))
        with open(temp, "rb") as stream:
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def write(path: Path, manifest: dict[str, Any]) -> None:
    """Write the manifest of a dump (0600, atomic)."""
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_private(path, lambda temp: temp.write_text(text))


def read(dump: Path) -> dict[str, Any]:
    """The manifest of `dump`, or a clear error."""
    path = path_of(dump)
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise click.ClickException(
            f"no manifest {path}: it is written beside the dump by `civicsense backup`"
        ) from None
    except ValueError as exc:
        raise click.ClickException(f"manifest {path} is not valid JSON: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise click.ClickException(f"{path} is not a {FORMAT} manifest")
    return manifest
