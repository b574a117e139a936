"""`civicsense import`: a tenant's export archive loaded into this instance.

The archive is verified whole (manifest, every file's checksum) before anything is
written; then every file is loaded in one transaction, in foreign-key order, through a
text staging table per file (COPY FROM, then one INSERT ... SELECT that decodes the CSV
forms and writes placeholders for the secrets that were never exported).

The tenant's own rows keep their ids: the target must be an empty instance or one whose
ids do not overlap, and a collision refuses the whole import. Referenced rows (catalogue
versions, operators' accounts) are inserted when missing and must be equal otherwise.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import psycopg
from psycopg import errors, sql

from .. import audit, rollups
from . import archive
from .tables import INSTANCE_COLUMNS, Column, Table, load_order, schema_tables

_CHUNK = 1 << 20


class ImportRefused(RuntimeError):
    """The archive cannot be imported here; nothing was written."""


@dataclass(frozen=True)
class TableLoad:
    """What one file brought: the tenant's rows, and referenced rows added or found."""

    owned: int
    referenced_added: int
    referenced_present: int


@dataclass
class ImportSummary:
    """What an import wrote."""

    tenant: str
    tenant_id: int
    tables: dict[str, TableLoad] = field(default_factory=dict)

    def owned(self, table: str) -> int:
        """The tenant's own rows loaded into `table`."""
        load = self.tables.get(table)
        return load.owned if load else 0


def import_archive(conn: psycopg.Connection, path: Path, actor: audit.Actor) -> ImportSummary:
    """Verify and load the archive at `path`; `conn` is the owner's, in autocommit."""
    with tempfile.TemporaryDirectory(prefix="civicsense-import-") as tmp:
        folder = Path(tmp)
        manifest = archive.unpack(path, folder)
        slug, tenant_id = manifest.tenant["slug"], int(manifest.tenant["id"])
        summary = ImportSummary(slug, tenant_id)
        with conn.transaction():
            conn.execute("SET LOCAL TimeZone = 'UTC'")
            if conn.execute("SELECT 1 FROM tenants WHERE slug = %s", (slug,)).fetchone():
                raise ImportRefused(f"tenant {slug!r} already exists in this instance")
            tables = _target_tables(conn, manifest)
            entries = {entry.table: entry for entry in manifest.data_files}
            for table in tables:
                entry = entries[table.name]
                summary.tables[table.name] = _load(conn, table, entry, folder, tenant_id)
            for table in tables:
                _patch(conn, table, entries[table.name], tenant_id)
            for table in tables:
                _advance_sequences(conn, table)
            audit.record(
                conn, actor, "tenant.import", target=slug, tenant_id=tenant_id,
                details={"archive_sha256": archive.file_sha256(path),
                         "exported_at": manifest.exported_at,
                         "from_version": manifest.civicsense_version,
                         "rows": sum(load.owned for load in summary.tables.values())},
            )  # fmt: skip
    _refresh_rollups(conn, tenant_id)
    return summary


def _target_tables(conn: psycopg.Connection, manifest: archive.Manifest) -> list[Table]:
    """The archive's tables as this instance has them, in loading order."""
    schema = schema_tables(conn)
    unknown = []
    for entry in manifest.data_files:
        table = schema.get(str(entry.table))
        known = {c.name for c in table.columns if not c.generated} if table else set()
        unknown += [f"{entry.table}.{c}" for c in entry.columns or () if c not in known]
        if table is None:
            unknown.append(str(entry.table))
    if unknown:
        raise ImportRefused(
            "the archive has tables or columns this instance does not"
            f" (upgrade it first: civicsense db upgrade): {', '.join(unknown)}"
        )
    return load_order([schema[str(entry.table)] for entry in manifest.data_files])


def _stage(table: Table) -> sql.Identifier:
    return sql.Identifier(f"portability_stage_{table.name}")


def _columns(table: Table, entry: archive.FileEntry) -> list[Column]:
    by_name = {c.name: c for c in table.columns}
    return [by_name[name] for name in entry.columns or ()]


def _decoded(table: Table, entry: archive.FileEntry) -> sql.Composable:
    """The staged rows with their values decoded to the table's types, as `s`."""
    return sql.SQL("(SELECT {} FROM {}) s").format(
        sql.SQL(", ").join(c.import_sql() for c in _columns(table, entry)), _stage(table)
    )


def _owned(table: Table, tenant_id: int, *, negate: bool = False) -> sql.Composable:
    """The staged rows of the tenant; with `negate`, the others (of no tenant included)."""
    if table.tenant_column is None:
        return sql.SQL("true" if negate else "false")
    return sql.SQL("s.{} IS DISTINCT FROM {}" if negate else "s.{} = {}").format(
        sql.Identifier(table.tenant_column), sql.Literal(tenant_id)
    )


def _load(
    conn: psycopg.Connection, table: Table, entry: archive.FileEntry, folder: Path, tenant_id: int
) -> TableLoad:
    """Stage the CSV file, then insert its rows: the tenant's, then referenced ones."""
    columns = _columns(table, entry)
    conn.execute(
        sql.SQL("CREATE TEMP TABLE {} ({}) ON COMMIT DROP").format(
            _stage(table),
            sql.SQL(", ").join(sql.SQL("{} text").format(sql.Identifier(c.name)) for c in columns),
        )
    )
    copy_sql = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv, HEADER MATCH)").format(
        _stage(table), sql.SQL(", ").join(sql.Identifier(c.name) for c in columns)
    )
    with conn.cursor() as cur, (folder / entry.path).open("rb") as data:
        try:
            with cur.copy(copy_sql) as copy:
                while chunk := data.read(_CHUNK):
                    copy.write(chunk)
        except psycopg.DataError as exc:
            raise ImportRefused(f"{entry.path} cannot be read: {exc}") from None
        if cur.rowcount != entry.rows:
            raise ImportRefused(
                f"{entry.path} holds {cur.rowcount} rows, the manifest says {entry.rows}"
            )
    owned = _insert(conn, table, entry, _owned(table, tenant_id), referenced=False)
    added = _insert(conn, table, entry, _owned(table, tenant_id, negate=True),
                    referenced=True)  # fmt: skip
    _check_referenced(conn, table, entry, tenant_id)
    return TableLoad(owned, added, int(entry.rows or 0) - owned - added)


def _insert(
    conn: psycopg.Connection,
    table: Table,
    entry: archive.FileEntry,
    where: sql.Composable,
    *,
    referenced: bool,
) -> int:
    """Insert the staged rows matching `where`; the number inserted."""
    columns = _columns(table, entry)
    secrets = table.secret_columns
    values = [
        sql.SQL("NULL") if c.name in table.patched_columns else sql.Identifier("s", c.name)
        for c in columns
    ] + [sql.SQL(expression) for expression in secrets.values()]
    names = [c.name for c in columns] + list(secrets)
    overriding = (
        sql.SQL(" OVERRIDING SYSTEM VALUE")
        if any(c.identity_always for c in table.columns)
        else sql.SQL("")
    )
    query = sql.SQL("INSERT INTO {t} ({names}){overriding} SELECT {values} FROM {rows} WHERE {w}"
                    "{conflict}").format(
        t=sql.Identifier(table.name),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        overriding=overriding,
        values=sql.SQL(", ").join(values),
        rows=_decoded(table, entry),
        w=where,
        conflict=sql.SQL(" ON CONFLICT DO NOTHING" if referenced else ""),
    )  # fmt: skip
    try:
        with conn.transaction():
            return conn.execute(query).rowcount
    except errors.UniqueViolation as exc:
        raise ImportRefused(
            f"{table.name}: rows collide with rows already in this instance"
            f" ({exc.diag.constraint_name}). Import into an empty instance, or one whose"
            " ids do not overlap with the archive's."
        ) from None
    except errors.IntegrityError as exc:
        raise ImportRefused(f"{table.name}: {exc.diag.message_primary}") from None


def _check_referenced(
    conn: psycopg.Connection, table: Table, entry: archive.FileEntry, tenant_id: int
) -> None:
    """Referenced rows already here must be the archive's (instance-specific columns and
    columns set later aside)."""
    skip = INSTANCE_COLUMNS.get(table.name, frozenset()) | set(table.patched_columns)
    compared = [c for c in _columns(table, entry) if c.name not in skip]
    if not compared:
        return

    def side(alias: str) -> sql.Composable:
        return sql.SQL(", ").join(
            sql.SQL("{}::jsonb" if c.encoding == "json" else "{}").format(
                sql.Identifier(alias, c.name)
            )
            for c in compared
        )

    query = sql.SQL(
        "SELECT count(*) FROM {rows} WHERE {other} AND NOT EXISTS"
        " (SELECT 1 FROM {t} x WHERE ({x}) IS NOT DISTINCT FROM ({s}))"
    ).format(
        rows=_decoded(table, entry),
        other=_owned(table, tenant_id, negate=True),
        t=sql.Identifier(table.name),
        x=side("x"),
        s=side("s"),
    )
    row = conn.execute(query).fetchone()
    if row and row[0]:
        raise ImportRefused(
            f"{row[0]} referenced row(s) of {table.name} differ from the rows with the same"
            " keys in this instance"
        )


def _patch(
    conn: psycopg.Connection, table: Table, entry: archive.FileEntry, tenant_id: int
) -> None:
    """Set the columns loaded empty to break a cycle of foreign keys, now that every
    table is in."""
    if not table.patched_columns:
        return
    query = sql.SQL("UPDATE {t} x SET {sets} FROM {rows} WHERE ({xk}) = ({sk}) AND {owned}").format(
        t=sql.Identifier(table.name),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(c), sql.Identifier("s", c))
            for c in table.patched_columns
        ),
        rows=_decoded(table, entry),
        xk=sql.SQL(", ").join(sql.Identifier("x", c) for c in table.primary_key),
        sk=sql.SQL(", ").join(sql.Identifier("s", c) for c in table.primary_key),
        owned=_owned(table, tenant_id),
    )
    try:
        conn.execute(query)
    except errors.IntegrityError as exc:
        raise ImportRefused(f"{table.name}: {exc.diag.message_primary}") from None


def _advance_sequences(conn: psycopg.Connection, table: Table) -> None:
    """Move identity and serial sequences past the ids now in the table."""
    for column in table.columns:
        if column.sequence is None:
            continue
        conn.execute(
            sql.SQL(
                "SELECT setval({seq}, m) FROM (SELECT max({c}) AS m FROM {t}) AS x"
                " WHERE m >= coalesce(pg_sequence_last_value({seq}::regclass), 0)"
            ).format(
                seq=sql.Literal(column.sequence),
                c=sql.Identifier(column.name),
                t=sql.Identifier(table.name),
            )
        )


def _refresh_rollups(conn: psycopg.Connection, tenant_id: int) -> None:
    """Recompute the hourly rollups (not exported: derived) over the imported readings."""
    row = conn.execute(
        "SELECT min(time), max(time) FROM readings WHERE tenant_id = %s", (tenant_id,)
    ).fetchone()
    if row and row[0] is not None:
        rollups.refresh(conn, start=row[0], end=row[1] + timedelta(microseconds=1))
